#!/usr/bin/env bash
# Runs every example client against a live server on a fresh SQLite file:
# for each, a new partner with a key made by `keygen`, then the client's
# login -> sign -> create -> read back -> refresh. Then the quick start of
# docs/api-guide.md (the /docs page), pasted as written: with `send`, and with
# curl. Fails if any of them fails.
# Needs curl, openssl, jq, python3 (with venv), java 17+ and node 20+.
# Usage: examples/run.sh [bash python python-v2 java node ...]
set -uo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --bin sales-order-api || exit 1
BIN=$PWD/target/debug/sales-order-api
GUIDE=$PWD/docs/api-guide.md
PORT=${EXAMPLES_PORT:-18282}
WORK=$(mktemp -d)
export DATABASE_URL="sqlite://$WORK/examples.db"
SERVER=
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

# Python's two libraries, pinned, in a venv of their own.
VENV=target/examples-venv
if [ ! -x "$VENV/bin/python" ] || ! cmp -s examples/python/requirements.txt "$VENV/requirements.txt"; then
  python3 -m venv "$VENV" && "$VENV/bin/pip" install --quiet -r examples/python/requirements.txt \
    && cp examples/python/requirements.txt "$VENV/requirements.txt" || exit 1
fi

RUST_LOG=warn "$BIN" serve --listen "127.0.0.1:$PORT" --metrics-listen off &
SERVER=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
export BASE_URL="http://127.0.0.1:$PORT"

# The indented shell block after the first line of the guide holding $1: the
# guide's quick start is run as a partner would paste it.
guide_block() {
  awk -v marker="$1" '
    found && /^       / { print substr($0, 8); started = 1; next }
    found && started { exit }
    index($0, marker) { found = 1 }
  ' "$GUIDE"
}

# The quick start of docs/api-guide.md, in a fresh directory: its keygen
# block, registration by the operator, then its `send` or its curl block.
guide() {
  local dir="$WORK/$1" secret
  mkdir -p "$dir" && cd "$dir" || return 1
  PATH="$(dirname "$BIN"):$PATH" bash -euo pipefail -c "$(guide_block 'Make a key pair')" >/dev/null || return 1
  secret=$("$BIN" partner create --name "Guide" --client-id "$CLIENT_ID" \
    --public-key keys/public.pem --json | jq -r .client_secret) || return 1
  curl -sf "$BASE_URL/openapi.json" \
    | jq '.paths["/api/v1/sales-orders"].post.requestBody.content["application/json"].example' > order.json
  case "$1" in
    guide-send)
      guide_block 'one command logs in' | sed "s#https://orders.example.com#$BASE_URL#; s#YOUR_ID#$CLIENT_ID#" \
        > steps.sh
      printf '%s\n' "$secret" | PATH="$(dirname "$BIN"):$PATH" XDG_CACHE_HOME="$dir/cache" bash -euo pipefail steps.sh ;;
    guide-curl)
      guide_block 'the same in three steps' > steps.sh
      CLIENT_SECRET=$secret bash -euo pipefail steps.sh > answer.json
      jq . answer.json
      jq -e '.data.id' answer.json >/dev/null ;;
  esac
}

run() {
  case "$1" in
    bash) examples/bash/client.sh ;;
    python) "$VENV/bin/python" examples/python/client.py ;;
    python-v2) SIGNATURE_VERSION=2 "$VENV/bin/python" examples/python/client.py ;;
    java) java examples/java/Client.java ;;
    node) node examples/node/client.mjs ;;
    guide-send | guide-curl) (guide "$1") ;;
    *) echo "no example named $1" >&2; return 2 ;;
  esac
}

failed=()
for example in "${@:-bash python python-v2 java node guide-send guide-curl}"; do
  for name in $example; do
    echo "== example: $name"
    secret=
    if [[ $name != guide-* ]]; then
      "$BIN" keygen --out "$WORK/$name" >/dev/null || exit 1
      secret=$("$BIN" partner create --name "Example $name" --client-id "example-$name" \
        --public-key "$WORK/$name/public.pem" --json | jq -r .client_secret) || exit 1
    fi
    if CLIENT_ID="example-$name" CLIENT_SECRET="$secret" PRIVATE_KEY="$WORK/$name/private.pem" run "$name"; then
      echo "== example $name: ok"
    else
      echo "== example $name: FAILED"
      failed+=("$name")
    fi
  done
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "examples failed: ${failed[*]}"
  exit 1
fi
echo "examples: all passed"
