"""Fit y = a * x**degree + b by least squares and save the model as JSON."""

import csv
import json
import statistics
import sys
from pathlib import Path

degree = int(sys.argv[1])
with open("data/points.csv", newline="") as handle:
    rows = list(csv.DictReader(handle))
xs = [float(r["x"]) ** degree for r in rows]
ys = [float(r["y"]) for r in rows]
fit = statistics.linear_regression(xs, ys)
residuals = [y - (fit.slope * x + fit.intercept) for x, y in zip(xs, ys, strict=True)]
rmse = (sum(r * r for r in residuals) / len(residuals)) ** 0.5
Path("models").mkdir(exist_ok=True)
model = {"degree": degree, "slope": fit.slope, "intercept": fit.intercept, "rmse": rmse}
Path(f"models/degree-{degree}.json").write_text(json.dumps(model, indent=2) + "\n")
print(f"degree {degree}: rmse {rmse:.4f}")
