"""Compare the fitted models in a Markdown table (a reproducible result)."""

import json
from pathlib import Path

models = sorted(
    (json.loads(p.read_text()) for p in Path("models").glob("degree-*.json")),
    key=lambda m: m["degree"],
)
lines = ["| degree | slope | intercept | rmse |", "|---|---|---|---|"]
lines += [
    f"| {m['degree']} | {m['slope']:.4f} | {m['intercept']:.4f} | {m['rmse']:.4f} |" for m in models
]
best = min(models, key=lambda m: m["rmse"])
lines += ["", f"Best fit: degree {best['degree']} (rmse {best['rmse']:.4f})."]
Path("results").mkdir(exist_ok=True)
Path("results/report.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
