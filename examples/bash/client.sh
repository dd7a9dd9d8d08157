#!/usr/bin/env bash
# A partner client in bash with curl, openssl and jq: log in, sign, create an
# order, read it back, refresh the token. See examples/README.md.
#
#   BASE_URL=http://127.0.0.1:8080 CLIENT_ID=... CLIENT_SECRET=... \
#   PRIVATE_KEY=private.pem examples/bash/client.sh
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

# A signed request: METHOD PATH [BODY]. The timestamp is read once and used
# for both the string to sign and the header. The headers go to curl through
# a file descriptor, keeping the token off the command line too.
signed() {
  local timestamp
  timestamp=$(date +%s)
  curl -sS --fail-with-body -X "$1" "$BASE_URL$2" -H 'Content-Type: application/json' \
    -H @<(printf 'Authorization: Bearer %s\nX-CLIENT-ID: %s\nX-TIMESTAMP: %s\nX-SIGNATURE: %s\n' \
      "$token" "$CLIENT_ID" "$timestamp" "$(sign "$timestamp")") \
    ${3:+--data-binary "$3"}
}

# 3. Create an order.
purchase_order="PO-BASH-$(date +%s%N)"
order=$(jq -n --arg po "$purchase_order" '{
  customer_code: "CUST-001", site_code: "SITE-001", sales_name: "John Doe",
  address: "Jl. Sudirman No. 1, Jakarta", purchase_order_no: $po,
  products: [{product_code: "PRD-001", quantity: 2, uom: "PCS", unit_price: "150000.50"}]}')
id=$(signed POST /api/v1/sales-orders "$order" | jq -r .data.id)
echo "created $id"

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
