"""Fit a ridge regression in closed form (numpy only) with penalty ALPHA; write the model
and its error on the held-out rows (a metrics file Conveyor reads)."""

import json
import os
import sys

import numpy as np

alpha = float(sys.argv[1])


def load(path):
    table = np.loadtxt(path, delimiter=",", skiprows=1)
    features, target = table[:, :-1], table[:, -1]
    return np.column_stack([np.ones(len(target)), features]), target


x, y = load("data/train.csv")
penalty = alpha * np.eye(x.shape[1])
penalty[0, 0] = 0.0  # the intercept is not shrunk
weights = np.linalg.solve(x.T @ x + penalty, x.T @ y)
x_test, y_test = load("data/test.csv")
errors = x_test @ weights - y_test
rmse = float(np.sqrt(np.mean(errors**2)))
r2 = float(1 - np.sum(errors**2) / np.sum((y_test - y_test.mean()) ** 2))
os.makedirs("models", exist_ok=True)
os.makedirs("metrics", exist_ok=True)
with open("models/ridge.json", "w") as handle:
    json.dump({"alpha": alpha, "weights": weights.round(6).tolist()}, handle)
with open("metrics/eval.json", "w") as handle:
    json.dump({"rmse": round(rmse, 4), "r2": round(r2, 4)}, handle)
print(f"alpha={alpha}: rmse {rmse:.2f}, r2 {r2:.3f}")
