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
cargo build --release --quiet
source benches/server.sh
echo "store: $STORE"
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
