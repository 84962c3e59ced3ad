"""A project module the steps of pipeline.py import (its file keys their cache)."""


def normalise(values: list[float]) -> list[float]:
    top = max(values) or 1.0
    return [v / top for v in values]
