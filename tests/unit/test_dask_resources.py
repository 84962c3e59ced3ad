"""Step resources as Dask worker resources (no cluster needed)."""

from __future__ import annotations

from conveyor.domain.types import Resources
from conveyor.executors.dask import resources as dr

GIB = float(1 << 30)


def test_cpu_and_memory_are_asked_only_where_the_cluster_counts_them() -> None:
    step = Resources(cpus=2, memory_mb=1024)
    assert dr.request(step, set()) == {}
    assert dr.request(step, {"CPU"}) == {"CPU": 2.0}
    assert dr.request(step, {"CPU", "MEMORY"}) == {"CPU": 2.0, "MEMORY": GIB}
    assert dr.request(Resources(cpus=1), {"MEMORY"}) == {}  # no memory asked for


def test_gpus_are_always_asked_for() -> None:
    assert dr.request(Resources(gpus=1), set()) == {"GPU": 1.0}
    assert dr.request(Resources(gpus=2), {"CPU"}) == {"CPU": 1.0, "GPU": 2.0}


def test_a_request_fits_a_worker_that_declares_enough_of_everything() -> None:
    offers = {"tcp://a:1": {"CPU": 2.0, "MEMORY": 2 * GIB}, "tcp://b:1": {"GPU": 1.0}}
    assert dr.declared_names(offers) == {"CPU", "MEMORY", "GPU"}
    assert dr.fits({"CPU": 2.0, "MEMORY": GIB}, offers)
    assert dr.fits({"GPU": 1.0}, offers)
    assert not dr.fits({"CPU": 1.0, "GPU": 1.0}, offers)  # not both on one worker
    assert not dr.fits({"MEMORY": 4 * GIB}, offers)
    assert dr.fits({}, offers)
    assert not dr.fits({"CPU": 1.0}, {})


def test_reasons_name_the_request_and_the_offers() -> None:
    assert dr.describe({"GPU": 1.0, "MEMORY": 4 * GIB, "CPU": 0.5}) == (
        "CPU=0.5, GPU=1, MEMORY=4096 MiB"
    )
    offers = {f"tcp://w{i}:1": {"CPU": 2.0} for i in range(5)}
    text = dr.describe_offers(offers)
    assert text.startswith("tcp://w0:1 (CPU=2); ") and text.endswith("; and 2 more")
    assert dr.describe_offers({"tcp://x:1": {}}) == "tcp://x:1 (nothing)"
