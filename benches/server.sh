# Sourced by the load benchmarks: starts a release server on a fresh database
# (a SQLite file, or with STORE=postgres a new database on PG_SERVER, dropped
# afterwards) with one partner, and logs it in. Sets BIN, WORK, PORT, SERVER
# (the pid), CLIENT_ID, TOKEN and WORK/private.pem; cleans up on exit.
# BIN may name another build of the server (benches/side-by-side.sh).
# Extra `serve` flags come from SERVE_FLAGS.
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

BIN=${BIN:-target/release/sales-order-api}
case "$STORE" in
  sqlite) export DATABASE_URL="sqlite://$WORK/bench.db" ;;
  postgres)
    psql "$PG_SERVER/postgres" -qc "CREATE DATABASE soa_bench_$$"
    export DATABASE_URL="$PG_SERVER/soa_bench_$$" ;;
  *) echo "STORE must be sqlite or postgres" >&2; exit 2 ;;
esac
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/private.pem" 2>/dev/null
openssl pkey -in "$WORK/private.pem" -pubout -out "$WORK/public.pem"
CLIENT_ID=bench-client
CLIENT_SECRET=$($BIN partner create --name Bench --client-id "$CLIENT_ID" --public-key "$WORK/public.pem" --json \
  | sed -nE 's/.*"client_secret": "([^"]+)".*/\1/p')
# The load generator is one partner far above the default 100 requests/s.
$BIN partner set "$CLIENT_ID" --rate-limit off >/dev/null
# shellcheck disable=SC2086
RUST_LOG=${RUST_LOG:-warn} $BIN serve --listen "127.0.0.1:$PORT" --metrics-listen off ${SERVE_FLAGS:-} &
SERVER=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
TOKEN=$(curl -s "http://127.0.0.1:$PORT/api/v1/auth/login" -H 'Content-Type: application/json' \
  -d "{\"client_id\":\"$CLIENT_ID\",\"client_secret\":\"$CLIENT_SECRET\"}" | sed -E 's/.*"token":"([^"]+)".*/\1/')
export CLIENT_ID TOKEN
