#!/usr/bin/env bash
# Webhook fan-out (BENCHMARKS.md, "Webhooks"): a release server on a fresh
# database with ENDPOINTS webhook endpoints on one local receiver
# (src/bin/webhook-sink.rs), loadgen creating orders at CONNECTIONS for the
# given time, then the receiver's count: deliveries per second and the time
# from each change's commit to its delivery. Deliveries may trail the
# creates; the script waits until every event of every endpoint arrived (or
# DRAIN seconds pass).
# Usage: [STORE=sqlite|postgres] [ENDPOINTS=4] [CONNECTIONS=32] [DRAIN=60]
#        [OUT=benches/results/webhooks] benches/webhooks.sh [seconds, default 15]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-15}
ENDPOINTS=${ENDPOINTS:-4}
DRAIN=${DRAIN:-60}
OUT=${OUT:-benches/results/webhooks}
mkdir -p "$OUT"
cargo build --release --quiet --features loadgen
SERVE_FLAGS="--allow-insecure-webhooks ${SERVE_FLAGS:-}"
# shellcheck source=benches/server.sh
source benches/server.sh
SINK_PORT=$((PORT + 1))
target/release/webhook-sink --listen "127.0.0.1:$SINK_PORT" >"$WORK/sink.json" &
SINK=$!
trap 'kill $SINK 2>/dev/null || true; cleanup' EXIT
for n in $(seq "$ENDPOINTS"); do
  headers=$($BIN sign --client-id "$CLIENT_ID" --private-key "$WORK/private.pem" --json)
  timestamp=$(echo "$headers" | python3 -c 'import json,sys; print(json.load(sys.stdin)["timestamp"])')
  signature=$(echo "$headers" | python3 -c 'import json,sys; print(json.load(sys.stdin)["signature"])')
  curl -sf "http://127.0.0.1:$PORT/api/v1/webhook-endpoints" -H "Authorization: Bearer $TOKEN" \
    -H "X-CLIENT-ID: $CLIENT_ID" -H "X-TIMESTAMP: $timestamp" -H "X-SIGNATURE: $signature" \
    -H 'Content-Type: application/json' \
    -d "{\"url\": \"http://127.0.0.1:$SINK_PORT/hook/$n\"}" >/dev/null
done
LOADGEN_TOKEN=$TOKEN target/release/loadgen --scenario create --lines 1 \
  --url "http://127.0.0.1:$PORT" --client-id "$CLIENT_ID" --private-key "$WORK/private.pem" \
  --connections "${CONNECTIONS:-32}" --duration "${DURATION}s" --warmup 0s \
  --server-pid "$SERVER" --out "$OUT/load" --label "creates with $ENDPOINTS webhook endpoints, $STORE" >/dev/null
orders=$($BIN order list --limit 1 --json | python3 -c 'import json,sys; o=json.load(sys.stdin); print(int(o[0]["order_number"][3:]) if o else 0)')
expected=$((orders * ENDPOINTS))
# Wait for the outbox to drain: every order's event delivered to every endpoint.
for _ in $(seq "$DRAIN"); do
  delivered=$(python3 - "$DATABASE_URL" <<'PY'
import sqlite3, subprocess, sys
url = sys.argv[1]
sql = "SELECT count(*) FROM webhook_deliveries WHERE outcome = 'delivered'"
if url.startswith("sqlite://"):
    print(sqlite3.connect(url[len("sqlite://"):]).execute(sql).fetchone()[0])
else:
    print(subprocess.run(["psql", url, "-tAc", sql], capture_output=True, text=True).stdout.strip() or 0)
PY
)
  [ "$delivered" -ge "$expected" ] && break
  sleep 1
done
kill -TERM $SINK; wait $SINK || true
python3 - "$OUT" "$WORK/sink.json" "$orders" "$ENDPOINTS" "$DURATION" <<'PY'
import json, sys
out, sink, orders, endpoints, duration = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
s = json.load(open(sink))
load = json.load(open(f"{out}/load/results.json"))["steps"][0]
s.update({"orders": orders, "endpoints": endpoints, "expected_deliveries": orders * endpoints,
          "creates_per_second": load["orders_per_second"], "create_p99_ms": load["p99_ms"]})
json.dump(s, open(f"{out}/webhooks.json", "w"), indent=2)
print(json.dumps(s, indent=2))
PY
