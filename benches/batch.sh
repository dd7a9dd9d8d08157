#!/usr/bin/env bash
# Orders per second through batches against single creates, at the same
# concurrency, on one server in one run (BENCHMARKS.md, issue 17's target:
# batches of 100 at least 5x). Each loadgen step writes results.json under OUT.
# Usage: [STORE=sqlite|postgres] [CONNECTIONS=1,8,32] [BATCH_SIZE=100] [LINES=2]
#        [OUT=benches/results/batch] benches/batch.sh [seconds per step, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
CONNECTIONS=${CONNECTIONS:-1,8,32}
BATCH_SIZE=${BATCH_SIZE:-100}
LINES=${LINES:-2}
OUT=${OUT:-benches/results/batch}
cargo build --release --quiet --features loadgen
source benches/server.sh
run() {
  LOADGEN_TOKEN=$TOKEN target/release/loadgen --scenario "$1" --batch-size "$BATCH_SIZE" \
    --url "http://127.0.0.1:$PORT" --client-id "$CLIENT_ID" --private-key "$WORK/private.pem" \
    --connections "$CONNECTIONS" --duration "${DURATION}s" --warmup 2s --lines "$LINES" \
    --server-pid "$SERVER" --out "$OUT/$1-$STORE" \
    --label "$1, $STORE, $LINES lines an order, $(nproc) cores, ${DURATION}s"
}
run create
run batch
python3 - "$OUT/create-$STORE/results.json" "$OUT/batch-$STORE/results.json" "$BATCH_SIZE" <<'PY'
import json, sys
singles, batches = (json.load(open(path))["steps"] for path in sys.argv[1:3])
print(f"{'conns':>5} {'single orders/s':>16} {'p99 ms':>7} {'batch orders/s':>15} {'p99 ms/batch':>13} {'errors':>7} {'batch/single':>13}")
for single, batch in zip(singles, batches):
    print(f"{single['connections']:>5} {single['orders_per_second']:>16.0f} {single['p99_ms']:>7.1f} "
          f"{batch['orders_per_second']:>15.0f} {batch['p99_ms']:>13.1f} {single['errors'] + batch['errors']:>7} "
          f"{batch['orders_per_second'] / single['orders_per_second']:>12.2f}x")
PY
