#!/usr/bin/env bash
# Orders per second through batches against single creates, at the same
# concurrency, on one server in one run (BENCHMARKS.md, issue 17's target:
# batches of 100 at least 5x). Each loadgen step writes results.json under OUT.
# Usage: [STORE=sqlite|postgres] [CONNECTIONS=8] [BATCH_SIZE=100] [LINES=2]
#        [OUT=benches/results/batch] benches/batch.sh [seconds per step, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
CONNECTIONS=${CONNECTIONS:-8}
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
single, batch = (json.load(open(path))["steps"][0] for path in sys.argv[1:3])
print(f"single creates: {single['orders_per_second']:.0f} orders/s, p99 {single['p99_ms']:.1f} ms, {single['errors']} errors")
print(f"batches of {sys.argv[3]}: {batch['orders_per_second']:.0f} orders/s, p99 {batch['p99_ms']:.1f} ms a batch, {batch['errors']} errors")
print(f"batch / single: {batch['orders_per_second'] / single['orders_per_second']:.2f}x")
PY
