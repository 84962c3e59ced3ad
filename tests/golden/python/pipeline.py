"""The golden Python pipeline: its plan is the plan of conveyor.yml beside it."""

from pathlib import Path

import features

import conveyor


@conveyor.step
def load(rows: int, source: Path) -> list[float]:
    lines = source.read_text(encoding="utf-8").split()[:rows]
    return [float(x) for x in lines]


@conveyor.step(retries=1)
def prepare(values: list[float]) -> list[float]:
    return features.normalise(values)


@conveyor.step
def score(values: list[float], weight: float, name: str) -> dict[str, float]:
    return {name: weight * sum(values)}


@conveyor.step(cache=False)
def report(scores: dict[str, float], out: str) -> Path:
    path = Path(out)
    path.write_text(repr(scores), encoding="utf-8")
    return path


@conveyor.pipeline
def golden(rows: int = 10, name: str = "total") -> None:
    values = prepare(load(rows, Path("data/values.txt")))
    report(score(values, 2, name), "report.txt")
