#!/usr/bin/env bash
# Two builds of the server under the same load in one run: OLD_BIN (a release
# binary of an earlier commit, built in a worktree of its own) against this
# tree's, alternating, ROUNDS rounds each, every round on a fresh database.
# Machines and days differ by 2-3x, so only builds measured side by side
# compare; prints each round and the medians.
# Usage: OLD_BIN=PATH [ROUNDS=3] [CONNECTIONS=32] [STORE=sqlite|postgres]
#        benches/side-by-side.sh [seconds per round, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
ROUNDS=${ROUNDS:-3}
OUT=${OUT:-benches/results/side-by-side}
: "${OLD_BIN:?OLD_BIN must name the earlier build\'s server binary}"
export CONNECTIONS=${CONNECTIONS:-32} WARMUP=${WARMUP:-2s}
for round in $(seq "$ROUNDS"); do
  for build in old new; do
    bin=target/release/sales-order-api
    [ "$build" = old ] && bin=$OLD_BIN
    BIN=$bin OUT="$OUT/$build-$round" LABEL="$build, round $round" benches/load.sh "$DURATION" >/dev/null
  done
done
python3 - "$OUT" "$ROUNDS" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
rates = {}
for build in ("old", "new"):
    steps = [json.load(open(f"{out}/{build}-{r}/results.json"))["steps"][0] for r in range(1, rounds + 1)]
    rates[build] = [s["orders_per_second"] for s in steps]
    print(f"{build}: " + ", ".join(f"{s['orders_per_second']:.0f}/s (p99 {s['p99_ms']:.2f} ms, {s['errors']} errors)" for s in steps))
old, new = statistics.median(rates["old"]), statistics.median(rates["new"])
print(f"median: old {old:.0f}/s, new {new:.0f}/s, new/old {new / old:.3f}")
PY
