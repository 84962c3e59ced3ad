"""Generate a noisy sample of y = 3x + 1 (the "raw data" of this example)."""

import csv
import random
import sys
from pathlib import Path

rows, noise, seed = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
random.seed(seed)
Path("data").mkdir(exist_ok=True)
with open("data/points.csv", "w", newline="") as handle:
    writer = csv.writer(handle)
    writer.writerow(["x", "y"])
    for i in range(rows):
        x = i / 10
        writer.writerow([f"{x:.3f}", f"{3 * x + 1 + random.gauss(0, noise):.5f}"])
print(f"wrote {rows} points")
