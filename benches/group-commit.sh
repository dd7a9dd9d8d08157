#!/usr/bin/env bash
# Group commit against the plain path, in one run (BENCHMARKS.md): the same
# load on a fresh SQLite store with `--sqlite-max-batch 1` (every order its own
# transaction and fsync) and with the default batching.
# Usage: [CONNECTIONS=32] [OUT=benches/results/group-commit] benches/group-commit.sh [seconds, default 15]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-15}
OUT=${OUT:-benches/results/group-commit}
export CONNECTIONS=${CONNECTIONS:-32}
for mode in plain grouped; do
  flags="--sqlite-max-batch 1"; [ "$mode" = grouped ] && flags="--sqlite-max-batch 256"
  echo "== $mode ($flags)"
  SERVE_FLAGS="$flags" OUT="$OUT/$mode" benches/load.sh "$DURATION" | sed -n '1,2p'
done
python3 - "$OUT" <<'PY'
import json, sys
plain, grouped = (json.load(open(f"{sys.argv[1]}/{m}/results.json"))["steps"] for m in ("plain", "grouped"))
for p, g in zip(plain, grouped):
    print(f"{p['connections']} connections: {p['orders_per_second']:.0f} -> {g['orders_per_second']:.0f} orders/s "
          f"({g['orders_per_second'] / p['orders_per_second']:.2f}x), p99 {p['p99_ms']:.2f} -> {g['p99_ms']:.2f} ms")
PY
