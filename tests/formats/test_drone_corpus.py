"""Drone and Dotscience files as users write them (``drone_corpus/``, sources in its README).

Each file is loaded as ``conveyor validate`` loads it (the format from the file's name, then
the plan compiled): it must validate. Drone 0.8 files (``pipeline:`` at the top) must be
refused with a message naming the 0.8 format and ``drone convert``. Files that do not
validate yet wait in ``PENDING`` with the reason: a strict xfail, so an entry must leave
the list as soon as its feature lands.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.errors import SpecError
from conveyor.plan.compile import compile_plan
from conveyor.spec.formats import load_file

CORPUS = Path(__file__).parent / "drone_corpus"
NAMES = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())
DRONE_08 = {"127labs-blog", "drone-ssh", "gorush", "ossec-local", "sledium"}
PENDING: dict[str, str] = {}


def pipeline_file(name: str) -> Path:
    (path,) = [p for p in (CORPUS / name).iterdir() if p.name.endswith(".yml")]
    return path


def cases() -> list[object]:
    return [
        pytest.param(
            n, marks=pytest.mark.xfail(strict=True, reason=PENDING[n]) if n in PENDING else ()
        )
        for n in NAMES
    ]


def test_the_corpus_holds_30_drone_files_and_the_public_dotscience_ones() -> None:
    files = [pipeline_file(n).name for n in NAMES]
    assert files.count(".drone.yml") - len(DRONE_08) >= 30
    assert ".dotscience.yml" in files
    assert set(PENDING) <= set(NAMES)


def test_every_directory_is_listed_with_its_source() -> None:
    readme = (CORPUS / "README.md").read_text(encoding="utf-8")
    missing = [n for n in NAMES if f"| {n} " not in readme]
    assert missing == []


@pytest.mark.parametrize("name", cases())
def test_file_validates_or_is_refused_as_drone_08(name: str) -> None:
    path = pipeline_file(name)
    if name in DRONE_08:
        with pytest.raises(SpecError) as caught:
            compile_plan(load_file(path, f"{name}/{path.name}"))
        assert "0.8" in str(caught.value)
        assert "drone convert" in str(caught.value)
    else:
        plan = compile_plan(load_file(path, f"{name}/{path.name}"))
        assert plan.steps


def test_a_depends_on_that_names_no_pipeline_is_dropped_with_a_warning_as_drone_does() -> None:
    """drone-runner-docker's ``manifest`` waits on ``windows-1903`` and ``windows-1809``,
    typos of ``window-1903`` and ``window-1809``: Drone's DAG drops names that are no
    pipeline, so ``manifest`` waits on nothing (its trigger, branch ``none``, never
    matches anyway); the other pipelines keep theirs."""
    path = pipeline_file("drone-runner-docker")
    spec = load_file(path, f"drone-runner-docker/{path.name}")
    warnings = [w for w in spec.warnings if "depends_on names" in w]
    assert [w.split(":")[1] for w in warnings] == ["203", "204"]  # the lines of the names
    assert all(w.endswith("ignored, as Drone ignores it") for w in warnings)
    assert spec.jobs["manifest"].needs == []
    assert spec.jobs["window-1903"].needs == ["linux"]
