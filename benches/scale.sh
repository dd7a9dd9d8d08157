#!/usr/bin/env bash
# Reads at scale (BENCHMARKS.md): get-by-id and list-by-cursor latency on a
# small store and again after filling it to ORDERS orders (default 1 000 000)
# through the API, plus the database's size per order and the query plans.
# Usage: [ORDERS=1000000] [CONNECTIONS=32] [OUT=benches/results/scale] benches/scale.sh [seconds per step, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
ORDERS=${ORDERS:-1000000}
OUT=${OUT:-benches/results/scale}
cargo build --release --quiet --features loadgen
source benches/server.sh
DB="$WORK/bench.db"
loadgen() { LOADGEN_TOKEN=$TOKEN target/release/loadgen --url "http://127.0.0.1:$PORT" --client-id "$CLIENT_ID" \
  --private-key "$WORK/private.pem" --server-pid "$SERVER" --warmup 2s "$@"; }
count() { sqlite3 "$DB" 'SELECT count(*) FROM sales_orders'; }
reads() {
  local at=$1
  sqlite3 "$DB" "SELECT id FROM sales_orders ORDER BY random() LIMIT 20000" > "$WORK/ids.txt"
  local max_seq; max_seq=$(sqlite3 "$DB" 'SELECT max(seq) FROM sales_orders')
  echo "== get by id, $at orders"
  loadgen --scenario get --ids "$WORK/ids.txt" --connections "${CONNECTIONS:-32}" --duration "${DURATION}s" \
    --out "$OUT/get-$at" --label "get by id, $at orders" | sed -n '1,2p'
  echo "== list by cursor (50 a page), $at orders"
  loadgen --scenario list --max-seq "$max_seq" --connections "${CONNECTIONS:-32}" --duration "${DURATION}s" \
    --out "$OUT/list-$at" --label "list by cursor, $at orders" | sed -n '1,2p'
}

# A small store first.
loadgen --connections 32 --duration 2s --out "$WORK/fill" >/dev/null
reads "$(count)"

echo "== filling to $ORDERS orders through the API (128 connections)"
while [ "$(count)" -lt "$ORDERS" ]; do
  remaining=$(( ORDERS - $(count) ))
  seconds=$(( remaining / 9000 + 1 )); [ "$seconds" -gt 60 ] && seconds=60
  loadgen --connections 128 --duration "${seconds}s" --out "$WORK/fill" | sed -n '2p'
done
reads "$(count)"

echo "== database size"
sqlite3 "$DB" 'PRAGMA wal_checkpoint(TRUNCATE)' >/dev/null
bytes=$(stat -c %s "$DB"); orders=$(count)
echo "$orders orders, $bytes bytes: $(( bytes / orders )) bytes an order (order, 2 lines, history, indexes)"
echo "== query plans"
client=$CLIENT_ID
for sql in \
  "SELECT * FROM sales_orders WHERE id = 'x' AND client_id = '$client'" \
  "SELECT * FROM sales_orders WHERE 1 = 1 AND client_id = '$client' AND seq < 500000 ORDER BY seq DESC LIMIT 51" \
  "SELECT * FROM sales_order_lines WHERE order_seq IN (1, 2, 3) ORDER BY order_seq, line_no"; do
  echo "$sql"; sqlite3 "$DB" "EXPLAIN QUERY PLAN $sql" | sed 's/^/    /'
done
echo "server peak RSS: $(grep VmHWM /proc/$SERVER/status | awk '{print $2, $3}')"
