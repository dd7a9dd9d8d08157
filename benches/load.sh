#!/usr/bin/env bash
# The load benchmark of the signed create path (BENCHMARKS.md): starts a
# release server on a fresh database and runs loadgen (src/bin/loadgen/)
# over a concurrency sweep; writes results.json, results.md and chart.svg.
# Usage: [STORE=sqlite|postgres] [CONNECTIONS=1,8,32,128] [WARMUP=3s] [OUT=benches/results]
#        [SERVE_FLAGS="--sqlite-max-batch 1"] benches/load.sh [seconds per step, default 15]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-15}
cargo build --release --quiet --features loadgen
source benches/server.sh
LABEL="${LABEL:-$STORE, $(nproc) cores, ${DURATION}s per step${SERVE_FLAGS:+, $SERVE_FLAGS}}"
LOADGEN_TOKEN=$TOKEN target/release/loadgen \
  --url "http://127.0.0.1:$PORT" --client-id "$CLIENT_ID" --private-key "$WORK/private.pem" \
  --connections "${CONNECTIONS:-1,8,32,128}" --duration "${DURATION}s" --warmup "${WARMUP:-3s}" \
  --server-pid "$SERVER" --out "${OUT:-benches/results}" --label "$LABEL"
if [ "$STORE" = sqlite ]; then
  orders=$($BIN order list --limit 1 --json | sed -nE 's/.*"order_number": "SO-0*([0-9]+)".*/\1/p' | head -1)
  size=$(du -b "$WORK/bench.db" "$WORK/bench.db-wal" 2>/dev/null | awk '{ s += $1 } END { print s }')
  echo "database: ${orders:-0} orders, $size bytes with its WAL ($(( size / ${orders:-1} )) bytes an order)"
fi
