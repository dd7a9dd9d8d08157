#!/usr/bin/env bash
# A partner client in bash with curl, openssl and jq: log in, sign, create an
# order, read it back, refresh the token, amend the order, send a batch. See
# "Signing in your language" in the guide (/docs/guide).
#
#   BASE_URL=http://127.0.0.1:8080 CLIENT_ID=... CLIENT_SECRET=... \
#   PRIVATE_KEY=private.pem bash client.sh
set -euo pipefail
: "${BASE_URL:?}" "${CLIENT_ID:?}" "${CLIENT_SECRET:?}" "${PRIVATE_KEY:?}"

# 1. Log in. jq reads the secret from the environment, so it never appears
#    on a command line (where `ps` would show it).
token=$(jq -n '{client_id: env.CLIENT_ID, client_secret: env.CLIENT_SECRET}' |
  curl -sS --fail-with-body "$BASE_URL/api/v1/auth/login" \
    -H 'Content-Type: application/json' --data-binary @- | jq -r .token)
echo "logged in as $CLIENT_ID"

# 2. Sign: SHA256withRSA over "client_id|timestamp", base64 on one line.
#    printf, not echo: a trailing newline would be signed too.
sign() {
  printf '%s|%s' "$CLIENT_ID" "$1" | openssl dgst -sha256 -sign "$PRIVATE_KEY" | openssl base64 -A
}

# The answer's headers of the last signed request (ETag, Idempotent-Replayed):
# curl writes them here, as the body goes to stdout.
answer_headers=$(mktemp)
trap 'rm -f "$answer_headers"' EXIT

# A signed request: METHOD PATH [BODY [CURL-ARGS...]], e.g. -H 'If-Match: "1"'
# after the body. The timestamp is read once and used for both the string to
# sign and the header. The headers go to curl through a file descriptor,
# keeping the token off the command line too.
signed() {
  local timestamp
  timestamp=$(date +%s)
  curl -sS --fail-with-body -D "$answer_headers" -X "$1" "$BASE_URL$2" -H 'Content-Type: application/json' \
    -H @<(printf 'Authorization: Bearer %s\nX-CLIENT-ID: %s\nX-TIMESTAMP: %s\nX-SIGNATURE: %s\n' \
      "$token" "$CLIENT_ID" "$timestamp" "$(sign "$timestamp")") \
    ${3:+--data-binary "$3"} "${@:4}"
}

# The status, or a header's value ($1), of the last signed request's answer.
answer_status() { head -n 1 "$answer_headers" | cut -d ' ' -f 2; }
answer_header() {
  awk -v name="$1" 'tolower($1) == tolower(name) ":" { sub(/^[^:]*: */, ""); sub(/\r$/, ""); print }' "$answer_headers"
}

# A create body: purchase order $1, $2 of the one product.
order_body() {
  jq -n --arg po "$1" --argjson quantity "$2" '{
    customer_code: "CUST-001", site_code: "SITE-001", sales_name: "John Doe",
    address: "Jl. Sudirman No. 1, Jakarta", purchase_order_no: $po,
    products: [{product_code: "PRD-001", quantity: $quantity, uom: "PCS", unit_price: "150000.50"}]}'
}

# 3. Create an order. Its ETag (its version, "1") is kept for the amendment.
purchase_order="PO-BASH-$(date +%s%N)"
order=$(order_body "$purchase_order" 2)
id=$(signed POST /api/v1/sales-orders "$order" | jq -r .data.id)
etag=$(answer_header ETag)
[ "$etag" = '"1"' ] || { echo "created $id with ETag $etag, expected \"1\"" >&2; exit 1; }
echo "created $id (ETag $etag)"

# 4. Read it back.
read_back=$(signed GET "/api/v1/sales-orders/$id" | jq -r .data.purchase_order_no)
[ "$read_back" = "$purchase_order" ] || { echo "read back $read_back, expected $purchase_order" >&2; exit 1; }
echo "read back $id: purchase order $read_back"

# 5. Refresh the token (each token refreshes once), and use the new one.
token=$(TOKEN=$token jq -n '{token: env.TOKEN}' |
  curl -sS --fail-with-body "$BASE_URL/api/v1/auth/refresh" \
    -H 'Content-Type: application/json' --data-binary @- | jq -r .token)
signed GET '/api/v1/sales-orders?limit=1' | jq -e '.data | length == 1' >/dev/null
echo "refreshed the token and listed orders with it"

# 6. Amend the order: a whole create body (the lines to keep too), here with
#    quantity 3, made only if the order is still at the version we read
#    (If-Match with the create's ETag).
amended=$(order_body "$purchase_order" 3)
answer=$(signed PUT "/api/v1/sales-orders/$id" "$amended" -H "If-Match: $etag")
jq -e '.data.version == 2 and .data.products[0].quantity == 3' <<<"$answer" >/dev/null &&
  [ "$(answer_header ETag)" = '"2"' ] ||
  { echo "the amendment is not version 2 with quantity 3: ETag $(answer_header ETag), $answer" >&2; exit 1; }
echo "amended $id: quantity 3, ETag $(answer_header ETag)"

#    The same amendment with the old ETag is refused: someone (here, we)
#    changed the order since version 1, and nothing is overwritten. The 412
#    is the answer we want, so curl is told not to fail on it.
stale=$(signed PUT "/api/v1/sales-orders/$id" "$amended" -H "If-Match: $etag" --no-fail-with-body)
[ "$(answer_status)" = 412 ] && jq -e '.error.code == "VERSION_MISMATCH"' <<<"$stale" >/dev/null ||
  { echo "a stale If-Match answered $(answer_status): $stale" >&2; exit 1; }
echo "stale If-Match $etag refused as expected: 412 VERSION_MISMATCH (the order is at $(answer_header ETag))"

# 7. A batch of two orders with one Idempotency-Key. The body is made once:
#    a retry must send the same bytes with the same key.
batch=$(jq -n --argjson one "$(order_body "$purchase_order-1" 1)" \
  --argjson two "$(order_body "$purchase_order-2" 2)" '{orders: [$one, $two], atomic: false}')
key=$(openssl rand -hex 16)
answer=$(signed POST /api/v1/sales-orders/batch "$batch" -H "Idempotency-Key: $key")
ids=$(jq -ec 'select([.data[] | [.index, .status]] == [[0, 201], [1, 201]]) | [.data[].data.id]' <<<"$answer") ||
  { echo "the batch did not store both orders: $answer" >&2; exit 1; }
echo "sent a batch: created $(jq -r 'join(", ")' <<<"$ids")"

#    Sent again (as after a lost answer): the same orders, not two more.
answer=$(signed POST /api/v1/sales-orders/batch "$batch" -H "Idempotency-Key: $key")
[ "$(answer_header Idempotent-Replayed)" = true ] && [ "$(jq -c '[.data[].data.id]' <<<"$answer")" = "$ids" ] ||
  { echo "the batch sent again answered (Idempotent-Replayed: $(answer_header Idempotent-Replayed)) $answer" >&2
    exit 1; }
echo "sent the batch again: Idempotent-Replayed, the same orders"
