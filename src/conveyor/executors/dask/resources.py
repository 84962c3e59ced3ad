"""A step's ``resources`` as Dask worker resources (``--resources`` on the workers,
``resources=`` on submit). Pure.

Dask resources are names and numbers a worker declares; a task asking for them runs only
on a worker that has them free. The names here are ``CPU`` (cores), ``MEMORY`` (bytes)
and ``GPU`` (devices). CPU and memory are asked for only where some worker of the
cluster declares that name (a cluster that does not count them runs steps as before); a
step asking for GPUs always asks, since running it on a worker without one would be
wrong, not merely slower.
"""

from __future__ import annotations

from collections.abc import Mapping

from conveyor.domain.types import Resources

CPU, MEMORY, GPU = "CPU", "MEMORY", "GPU"
Offers = Mapping[str, Mapping[str, float]]
"""Worker address -> the resources it declares."""


def request(resources: Resources, declared: set[str]) -> dict[str, float]:
    """What to ask Dask for a step with ``resources`` on a cluster whose workers declare
    the names in ``declared``."""
    asked: dict[str, float] = {}
    if CPU in declared:
        asked[CPU] = resources.cpus
    if resources.memory_mb and MEMORY in declared:
        asked[MEMORY] = float(resources.memory_mb << 20)
    if resources.gpus > 0:
        asked[GPU] = float(resources.gpus)
    return asked


def declared_names(offers: Offers) -> set[str]:
    return {name for offer in offers.values() for name in offer}


def fits(asked: Mapping[str, float], offers: Offers) -> bool:
    """Whether one worker declares at least ``asked`` of every resource (free or not)."""
    return any(all(offer.get(k, 0) >= v for k, v in asked.items()) for offer in offers.values())


def describe(asked: Mapping[str, float]) -> str:
    """``CPU=2, MEMORY=4096 MiB, GPU=1``."""
    parts = []
    for name in sorted(asked):
        value = asked[name]
        if name == MEMORY:
            parts.append(f"{MEMORY}={value / (1 << 20):g} MiB")
        else:
            parts.append(f"{name}={value:g}")
    return ", ".join(parts)


def describe_offers(offers: Offers) -> str:
    """What the workers declare, for the reason a step cannot run: at most three."""
    shown = [f"{addr} ({describe(offer) or 'nothing'})" for addr, offer in list(offers.items())[:3]]
    more = len(offers) - len(shown)
    return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")
