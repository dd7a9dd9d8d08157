// A partner client in Node.js 20 with the built-in `crypto` and `fetch`: log
// in, sign, create an order, read it back, refresh the token, amend the order,
// send a batch. See "Signing in your language" in the guide (/docs/guide).
//
//   BASE_URL=http://127.0.0.1:8080 CLIENT_ID=... CLIENT_SECRET=... \
//   PRIVATE_KEY=private.pem node client.mjs
import { createPrivateKey, randomUUID, sign as rsaSign } from "node:crypto";
import { readFileSync } from "node:fs";

const BASE_URL = process.env.BASE_URL.replace(/\/$/, "");
const CLIENT_ID = process.env.CLIENT_ID;
const privateKey = createPrivateKey(readFileSync(process.env.PRIVATE_KEY));

// SHA256withRSA (PKCS#1 v1.5) over "client_id|timestamp", standard base64.
function sign(timestamp) {
  return rsaSign("sha256", Buffer.from(`${CLIENT_ID}|${timestamp}`), privateKey).toString("base64");
}

// A request (signed when given a token), with extra `headers`; its answer must
// have status `expect` (any 2xx if not given). A `body` string is sent as it
// is: a batch sent again must be the same bytes.
async function exchange(method, path, { token, body, headers: extra = {}, expect } = {}) {
  const headers = { ...extra, "Content-Type": "application/json" };
  if (token) {
    // The timestamp is read once, for the string to sign and the header.
    const timestamp = Math.floor(Date.now() / 1000).toString();
    Object.assign(headers, {
      Authorization: `Bearer ${token}`,
      "X-CLIENT-ID": CLIENT_ID,
      "X-TIMESTAMP": timestamp,
      "X-SIGNATURE": sign(timestamp),
    });
  }
  const response = await fetch(BASE_URL + path, {
    method,
    headers,
    body: body === undefined || typeof body === "string" ? body : JSON.stringify(body),
  });
  const answer = await response.json();
  if (expect === undefined ? !response.ok : response.status !== expect) {
    throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(answer)}`);
  }
  return { answer, headers: response.headers };
}

// Most calls want only the JSON answer.
async function call(method, path, options) {
  return (await exchange(method, path, options)).answer;
}

// A create body (also an amendment's, and each order of a batch).
function order(purchaseOrderNo, quantity) {
  return {
    customer_code: "CUST-001",
    site_code: "SITE-001",
    sales_name: "John Doe",
    address: "Jl. Sudirman No. 1, Jakarta",
    purchase_order_no: purchaseOrderNo,
    products: [{ product_code: "PRD-001", quantity, uom: "PCS", unit_price: "150000.50" }],
  };
}

// 1. Log in (login and refresh are not signed).
let { token } = await call("POST", "/api/v1/auth/login", {
  body: { client_id: CLIENT_ID, client_secret: process.env.CLIENT_SECRET },
});
console.log(`logged in as ${CLIENT_ID}`);

// 2-3. Sign and create an order. Its ETag (its version, "1") is kept for the
// amendment.
const purchaseOrder = `PO-NODE-${process.hrtime.bigint()}`;
const created = await exchange("POST", "/api/v1/sales-orders", {
  token,
  body: order(purchaseOrder, 2),
  expect: 201,
});
const id = created.answer.data.id;
const etag = created.headers.get("ETag");
if (etag !== '"1"') throw new Error(`created with ETag ${etag}`);
console.log(`created ${id} (ETag ${etag})`);

// 4. Read it back.
const readBack = await call("GET", `/api/v1/sales-orders/${id}`, { token });
if (readBack.data.purchase_order_no !== purchaseOrder) {
  throw new Error(`read back a different order: ${JSON.stringify(readBack)}`);
}
console.log(`read back ${id}: purchase order ${purchaseOrder}`);

// 5. Refresh the token (each token refreshes once), and use the new one.
({ token } = await call("POST", "/api/v1/auth/refresh", { body: { token } }));
const page = await call("GET", "/api/v1/sales-orders?limit=1", { token });
if (page.data.length !== 1) throw new Error("the refreshed token listed no orders");
console.log("refreshed the token and listed orders with it");

// 6. Amend the order: a whole create body (the lines to keep too), here with
// quantity 3, made only if the order is still at the version we read
// (If-Match with the create's ETag).
const amended = JSON.stringify(order(purchaseOrder, 3));
const amendment = await exchange("PUT", `/api/v1/sales-orders/${id}`, {
  token,
  body: amended,
  headers: { "If-Match": etag },
  expect: 200,
});
const { data: amendedOrder } = amendment.answer;
const newEtag = amendment.headers.get("ETag");
if (amendedOrder.version !== 2 || amendedOrder.products[0].quantity !== 3 || newEtag !== '"2"') {
  throw new Error(`not version 2 with quantity 3: ETag ${newEtag}, ${JSON.stringify(amendedOrder)}`);
}
console.log(`amended ${id}: quantity 3, ETag ${newEtag}`);

// The same amendment with the old ETag is refused: someone (here, we) changed
// the order since version 1, and nothing is overwritten.
const stale = await exchange("PUT", `/api/v1/sales-orders/${id}`, {
  token,
  body: amended,
  headers: { "If-Match": etag },
  expect: 412,
});
if (stale.answer.error?.code !== "VERSION_MISMATCH") {
  throw new Error(`a stale If-Match answered ${JSON.stringify(stale.answer)}`);
}
const current = stale.headers.get("ETag");
console.log(`stale If-Match ${etag} refused as expected: 412 VERSION_MISMATCH (the order is at ${current})`);

// 7. A batch of two orders with one Idempotency-Key. The body is serialised
// once: a retry must send the same bytes with the same key.
const batch = JSON.stringify({
  orders: [order(`${purchaseOrder}-1`, 1), order(`${purchaseOrder}-2`, 2)],
  atomic: false,
});
const idempotency = { "Idempotency-Key": randomUUID() };
const first = await call("POST", "/api/v1/sales-orders/batch", {
  token,
  body: batch,
  headers: idempotency,
  expect: 200,
});
if (first.data.map((item) => `${item.index}:${item.status}`).join() !== "0:201,1:201") {
  throw new Error(`the batch did not store both orders: ${JSON.stringify(first)}`);
}
const ids = first.data.map((item) => item.data.id);
console.log(`sent a batch: created ${ids.join(", ")}`);

// Sent again (as after a lost answer): the same orders, not two more.
const again = await exchange("POST", "/api/v1/sales-orders/batch", {
  token,
  body: batch,
  headers: idempotency,
  expect: 200,
});
const replayedIds = again.answer.data.map((item) => item.data.id);
if (again.headers.get("Idempotent-Replayed") !== "true" || replayedIds.join() !== ids.join()) {
  throw new Error(`the batch sent again answered ${JSON.stringify(again.answer)}`);
}
console.log("sent the batch again: Idempotent-Replayed, the same orders");
