"""Load the table: 300 houses (area, rooms, age -> price), made with a fixed seed so every
run of the tutorial sees the same rows."""

import csv
import os
import sys

import numpy as np

seed = int(sys.argv[1])
rng = np.random.default_rng(seed)
area = rng.uniform(40, 200, 300)
rooms = rng.integers(1, 7, 300)
age = rng.uniform(0, 80, 300)
price = 3.1 * area + 12.0 * rooms - 0.8 * age + rng.normal(0, 25, 300) + 50
os.makedirs("data", exist_ok=True)
with open("data/houses.csv", "w", newline="") as handle:
    out = csv.writer(handle)
    out.writerow(["area", "rooms", "age", "price"])
    for row in zip(area, rooms, age, price, strict=True):
        out.writerow([f"{v:.3f}" for v in row])
print(f"loaded {len(price)} houses")
