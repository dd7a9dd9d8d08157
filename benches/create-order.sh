#!/usr/bin/env bash
# Load benchmark of one signed create, at 1 and 32 connections, with wrk
# (apt-get install wrk). Starts a release server on a fresh database: a SQLite
# file, or with STORE=postgres a new database on PG_SERVER, dropped afterwards.
# With FLOOD=N, N connections send wrong-secret logins during every measured run
# (benches/login-flood.lua), to show orders keep flowing under a login flood.
# Usage: [STORE=sqlite|postgres] [PG_SERVER=postgres://USER@HOST:PORT] [FLOOD=200] [CONNECTIONS="1 32"]
#        benches/create-order.sh [seconds per run, default 15]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-15}
PORT=${PORT:-18181}
STORE=${STORE:-sqlite}
PG_SERVER=${PG_SERVER:-postgres://postgres@127.0.0.1:5432}
WORK=$(mktemp -d)
SERVER=
cleanup() {
  if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
  if [ "$STORE" = postgres ]; then psql "$PG_SERVER/postgres" -qc "DROP DATABASE IF EXISTS soa_bench_$$ WITH (FORCE)"; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

cargo build --release --quiet
BIN=target/release/sales-order-api
case "$STORE" in
  sqlite) export DATABASE_URL="sqlite://$WORK/bench.db" ;;
  postgres)
    psql "$PG_SERVER/postgres" -qc "CREATE DATABASE soa_bench_$$"
    export DATABASE_URL="$PG_SERVER/soa_bench_$$" ;;
  *) echo "STORE must be sqlite or postgres" >&2; exit 2 ;;
esac
echo "store: $STORE"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/private.pem" 2>/dev/null
openssl pkey -in "$WORK/private.pem" -pubout -out "$WORK/public.pem"
CLIENT_SECRET=$($BIN partner create --name Bench --client-id bench-client --public-key "$WORK/public.pem" --json \
  | sed -nE 's/.*"client_secret": "([^"]+)".*/\1/p')
# The load generator is one partner far above the default 100 requests/s.
$BIN partner set bench-client --rate-limit off >/dev/null
RUST_LOG=warn $BIN serve --listen "127.0.0.1:$PORT" &
SERVER=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done

export CLIENT_ID=bench-client
export TOKEN=$(curl -s "http://127.0.0.1:$PORT/api/v1/auth/login" -H 'Content-Type: application/json' \
  -d "{\"client_id\":\"$CLIENT_ID\",\"client_secret\":\"$CLIENT_SECRET\"}" | sed -E 's/.*"token":"([^"]+)".*/\1/')
export TS=$(date +%s)
export SIG=$(printf '%s' "$CLIENT_ID|$TS" | openssl dgst -sha256 -sign "$WORK/private.pem" | openssl base64 -A)

for CONNECTIONS in ${CONNECTIONS:-1 32}; do
  THREADS=$(( CONNECTIONS < 2 ? 1 : 2 ))
  # Warm-up, then the measured run.
  wrk -t"$THREADS" -c"$CONNECTIONS" -d3s -s benches/create-order.lua "http://127.0.0.1:$PORT/api/v1/sales-orders" >/dev/null
  if [ -n "${FLOOD:-}" ]; then
    wrk -t1 -c"$FLOOD" -d"$((DURATION + 2))s" -s benches/login-flood.lua "http://127.0.0.1:$PORT/api/v1/auth/login" \
      | tail -1 > "$WORK/flood.txt" &
    FLOODER=$!
    sleep 1
  fi
  printf 'connections=%-3s ' "$CONNECTIONS"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" -s benches/create-order.lua "http://127.0.0.1:$PORT/api/v1/sales-orders" | tail -1
  if [ -n "${FLOOD:-}" ]; then wait "$FLOODER"; cat "$WORK/flood.txt"; fi
done
echo "peak RSS of the server: $(grep VmHWM /proc/$SERVER/status | awk '{print $2, $3}')"
