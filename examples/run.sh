#!/usr/bin/env bash
# Runs every example client against a live server on a fresh SQLite file:
# for each, a new partner with a key made by `keygen`, then the client's
# login -> sign -> create -> read back -> refresh -> amend -> batch. Then the
# quick start of docs/api-guide.md (the /docs page), pasted as written: with
# `send`, and with curl. Then each webhook receiver (Python, Node) end to end,
# against the same server. Fails if any of them fails.
# Needs curl, openssl, jq, python3 (with venv), java 17+, node 20+ and npm.
# Usage: examples/run.sh [bash python python-v2 java node guide-send guide-curl
#                         webhook-python webhook-node]
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

# Python's three libraries, pinned, in a venv of their own.
VENV=target/examples-venv
if [ ! -x "$VENV/bin/python" ] || ! cmp -s examples/python/requirements.txt "$VENV/requirements.txt"; then
  python3 -m venv "$VENV" && "$VENV/bin/pip" install --quiet -r examples/python/requirements.txt \
    && cp examples/python/requirements.txt "$VENV/requirements.txt" || exit 1
fi

# Node's one package (the webhook receiver's), exactly as its lock file pins
# it, in a directory of its own. Node looks for packages beside the module,
# so the receiver is run from there.
NODE_DIR=target/examples-node
if [ ! -d "$NODE_DIR/node_modules" ] || ! cmp -s examples/node/package-lock.json "$NODE_DIR/installed-lock.json"; then
  mkdir -p "$NODE_DIR" && rm -f "$NODE_DIR/installed-lock.json" \
    && cp examples/node/package.json examples/node/package-lock.json "$NODE_DIR/" \
    && (cd "$NODE_DIR" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) \
    && cp examples/node/package-lock.json "$NODE_DIR/installed-lock.json" || exit 1
fi

# --allow-insecure-webhooks: the example receivers listen on http://127.0.0.1.
RUST_LOG=warn "$BIN" serve --listen "127.0.0.1:$PORT" --metrics-listen off --allow-insecure-webhooks &
SERVER=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
export BASE_URL="http://127.0.0.1:$PORT"

# The shell block indented by $2 spaces (default 7, as in the quick start's
# list) after the first line of the guide holding $1: the guide's commands
# are run as a partner would paste them.
guide_block() {
  awk -v marker="$1" -v indent="${2:-7}" '
    found && substr($0, 1, indent) == sprintf("%" indent "s", "") { print substr($0, indent + 1); started = 1; next }
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

# A signed request for the webhook scenarios, made as examples/bash/client.sh
# makes it: METHOD PATH [BODY], with $TOKEN, $CLIENT_ID and $PRIVATE_KEY.
signed() {
  local timestamp signature
  timestamp=$(date +%s)
  signature=$(printf '%s|%s' "$CLIENT_ID" "$timestamp" | openssl dgst -sha256 -sign "$PRIVATE_KEY" | openssl base64 -A)
  curl -sS --fail-with-body -X "$1" "$BASE_URL$2" -H 'Content-Type: application/json' \
    -H @<(printf 'Authorization: Bearer %s\nX-CLIENT-ID: %s\nX-TIMESTAMP: %s\nX-SIGNATURE: %s\n' \
      "$TOKEN" "$CLIENT_ID" "$timestamp" "$signature") \
    ${3:+--data-binary "$3"}
}

# A webhook receiver end to end (webhook-python, webhook-node), on port
# EXAMPLES_PORT + 1 or + 2. The partner registers an endpoint for it and
# starts it with the secret; then a ping, an order created (its event read
# by a long poll that was waiting for it), sent again by the operator (the
# same webhook-id: the receiver must see a duplicate) and cancelled. The
# receiver must verify the three events and exit 0. Last, the guide's
# openssl recipe signs a test delivery that the receiver must verify, and
# one with another key must be refused with 400 (exit status 1).
webhook() {
  local port receiver endpoint secret order created poll
  # Not local: the trap below, run as this scenario's subshell exits, uses them.
  dir="$WORK/$1" pid=
  mkdir -p "$dir" || return 1
  case "$1" in
    webhook-python)
      port=$((PORT + 1)) receiver=("$VENV/bin/python" examples/python/webhook_receiver.py) ;;
    webhook-node)
      cp examples/node/webhook-receiver.mjs "$NODE_DIR/" || return 1
      port=$((PORT + 2)) receiver=(node "$NODE_DIR/webhook-receiver.mjs") ;;
  esac
  # Start RECEIVER-ARGS...: the receiver in the background, printing to
  # $dir/receiver.out (shown when this scenario ends); waits until it listens.
  start() {
    : > "$dir/receiver.out"
    "${receiver[@]}" --port "$port" "$@" >> "$dir/receiver.out" 2>&1 &
    pid=$!
    for _ in $(seq 100); do
      grep -q '^listening' "$dir/receiver.out" && return
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    echo "the receiver is not listening" >&2; return 1
  }
  shown() {
    sed 's/^/  receiver: /' "$dir/receiver.out"
  }
  trap 'kill "$pid" 2>/dev/null; shown' EXIT

  TOKEN=$(jq -n '{client_id: env.CLIENT_ID, client_secret: env.CLIENT_SECRET}' |
    curl -sS --fail-with-body "$BASE_URL/api/v1/auth/login" \
      -H 'Content-Type: application/json' --data-binary @- | jq -r .token) || return 1
  endpoint=$(signed POST /api/v1/webhook-endpoints \
    "{\"url\": \"http://127.0.0.1:$port/webhooks\", \"description\": \"examples/run.sh $1\"}") || return 1
  secret=$(jq -r .data.secret <<<"$endpoint") endpoint=$(jq -r .data.id <<<"$endpoint")
  echo "registered $endpoint for http://127.0.0.1:$port/webhooks"
  WEBHOOK_SECRET=$secret start --expect 3 --timeout 30 || return 1

  # The partner has no event yet: this long poll holds until the order's commits.
  signed GET '/api/v1/events?after=0&wait=5' > "$dir/poll.json" &
  poll=$!
  signed POST "/api/v1/webhook-endpoints/$endpoint/test" | jq -e '.data.event_id' >/dev/null || return 1
  order=$(jq -n --arg po "PO-${1^^}-$(date +%s%N)" '{
    customer_code: "CUST-001", site_code: "SITE-001", sales_name: "John Doe",
    address: "Jl. Sudirman No. 1, Jakarta", purchase_order_no: $po,
    products: [{product_code: "PRD-001", quantity: 2, uom: "PCS", unit_price: "150000.50"}]}')
  order=$(signed POST /api/v1/sales-orders "$order" | jq -r .data.id) || return 1
  wait "$poll" && jq -e '[.data[].type] == ["order.created"] and .next_after == 1' "$dir/poll.json" >/dev/null \
    || { echo "the long poll answered: $(cat "$dir/poll.json")" >&2; return 1; }
  created=$(jq -r '.data[0].id' "$dir/poll.json")
  echo "created $order; the long poll answered with its event $created"

  # Once the ping and order.created are delivered, the operator sends
  # order.created again; then the order is cancelled.
  delivered() {
    for _ in $(seq 100); do
      signed GET "/api/v1/webhook-endpoints/$endpoint" | jq -e --argjson n "$1" '.data.attempts | length >= $n' >/dev/null && return
      sleep 0.1
    done
    echo "fewer than $1 delivery attempts: $(signed GET "/api/v1/webhook-endpoints/$endpoint")" >&2; return 1
  }
  delivered 2 && "$BIN" event redeliver "$created" >/dev/null && delivered 3 || return 1
  signed POST "/api/v1/sales-orders/$order/cancel" | jq -e '.data.status == "cancelled"' >/dev/null || return 1
  echo "sent $created again, then cancelled $order"
  wait "$pid" || { echo "the receiver failed (exit status $?)" >&2; return 1; }
  grep -q "^duplicate $created" "$dir/receiver.out" || { echo "the receiver saw no duplicate" >&2; return 1; }
  signed GET '/api/v1/events?after=1' | jq -e '[.data[].type] == ["order.cancelled"] and .next_after == 2' >/dev/null \
    && signed GET "/api/v1/events/$created" | jq -e '.data.data.order.status == "received"' >/dev/null \
    && signed GET "/api/v1/webhook-endpoints/$endpoint" | jq -e '[.data.attempts[].status] == [204, 204, 204, 204]' >/dev/null \
    || return 1
  echo "the receiver verified the ping, order.created and order.cancelled, and order.created once more"

  # The guide's openssl recipe: a test delivery signed with the secret is
  # verified; one signed with another key is refused.
  shown && : > "$dir/receiver.out"
  printf '{"id":"evt_test_1","type":"ping","created_at":"%s","livemode":false,"data":{"endpoint_id":"%s"}}' \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$endpoint" > "$dir/body.json"
  guide_block 'sign a test delivery' 4 | sed "s#http://127.0.0.1:8000/webhooks#http://127.0.0.1:$port/webhooks#" \
    > "$dir/test-delivery.sh"
  WEBHOOK_SECRET=$secret start --expect 1 --timeout 10 || return 1
  [ "$(cd "$dir" && WEBHOOK_SECRET=$secret bash -euo pipefail test-delivery.sh)" = 204 ] && wait "$pid" \
    || { echo "the guide's test delivery was not verified" >&2; return 1; }
  shown && : > "$dir/receiver.out"
  WEBHOOK_SECRET=$secret start --expect 1 --timeout 10 || return 1
  [ "$(cd "$dir" && WEBHOOK_SECRET=whsec_$(openssl rand -base64 32) bash -euo pipefail test-delivery.sh)" = 400 ] \
    || { echo "a delivery signed with another key was not refused with 400" >&2; return 1; }
  wait "$pid"
  [ $? = 1 ] || { echo "the receiver did not exit 1 after a failed verification" >&2; return 1; }
  echo "the guide's openssl recipe signed a test delivery it verified; another key's was refused"
}

run() {
  case "$1" in
    bash) examples/bash/client.sh ;;
    python) "$VENV/bin/python" examples/python/client.py ;;
    python-v2) SIGNATURE_VERSION=2 "$VENV/bin/python" examples/python/client.py ;;
    java) java examples/java/Client.java ;;
    node) node examples/node/client.mjs ;;
    guide-send | guide-curl) (guide "$1") ;;
    webhook-python | webhook-node) (webhook "$1") ;;
    *) echo "no example named $1" >&2; return 2 ;;
  esac
}

failed=()
for example in "${@:-bash python python-v2 java node guide-send guide-curl webhook-python webhook-node}"; do
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
