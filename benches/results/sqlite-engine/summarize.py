"""Per-order figures of one folder's criterion rounds (round-N.txt), each
against the same round's RSA-2048 verify: µs an order (a 256-order bench's
time / 256; other benches as they are), and its ratio to RSA; medians over
the rounds.

Usage: python3 summarize.py FOLDER ROUNDS
"""
import re
import sys

folder, rounds = sys.argv[1], int(sys.argv[2])
figures = {}
for r in range(1, rounds + 1):
    text = open(f"{folder}/round-{r}.txt").read()
    for name, value, unit in re.findall(r"^(\w+)\s*\n?\s*time:\s+\[\S+ \S+ (\S+) (\S+)", text, re.M):
        us = float(value) * (1 if unit == "µs" else 1000)
        if "_256_" in name:
            us /= 256
        figures.setdefault(name, []).append(us)
rsa = figures["rsa2048_verify"]
for name, values in figures.items():
    ratios = [v / r for v, r in zip(values, rsa)]
    median = sorted(values)[len(values) // 2]
    median_ratio = sorted(ratios)[len(ratios) // 2]
    print(f"{name:52s}", " ".join(f"{v:6.2f}" for v in values), f" median {median:.2f}",
          " /RSA", " ".join(f"{r:.2f}" for r in ratios), f"median {median_ratio:.2f}")
