"""Split the table: every fourth row is held out for the test set (deterministic)."""

import os

with open("data/houses.csv") as handle:
    header, *rows = handle.read().splitlines()
train = [r for i, r in enumerate(rows) if i % 4]
test = [r for i, r in enumerate(rows) if not i % 4]
os.makedirs("data", exist_ok=True)
for name, part in (("train", train), ("test", test)):
    with open(f"data/{name}.csv", "w") as handle:
        handle.write("\n".join([header, *part]) + "\n")
print(f"{len(train)} rows to train on, {len(test)} to test with")
