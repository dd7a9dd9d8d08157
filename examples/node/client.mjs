// A partner client in Node.js 20 with the built-in `crypto` and `fetch`: log
// in, sign, create an order, read it back, refresh the token. See
// examples/README.md.
//
//   BASE_URL=http://127.0.0.1:8080 CLIENT_ID=... CLIENT_SECRET=... \
//   PRIVATE_KEY=private.pem node examples/node/client.mjs
import { createPrivateKey, sign as rsaSign } from "node:crypto";
import { readFileSync } from "node:fs";

const BASE_URL = process.env.BASE_URL.replace(/\/$/, "");
const CLIENT_ID = process.env.CLIENT_ID;
const privateKey = createPrivateKey(readFileSync(process.env.PRIVATE_KEY));

// SHA256withRSA (PKCS#1 v1.5) over "client_id|timestamp", standard base64.
function sign(timestamp) {
  return rsaSign("sha256", Buffer.from(`${CLIENT_ID}|${timestamp}`), privateKey).toString("base64");
}

async function call(method, path, { token, body } = {}) {
  const headers = { "Content-Type": "application/json" };
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
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = await response.json();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(answer)}`);
  return answer;
}

// 1. Log in (login and refresh are not signed).
let { token } = await call("POST", "/api/v1/auth/login", {
  body: { client_id: CLIENT_ID, client_secret: process.env.CLIENT_SECRET },
});
console.log(`logged in as ${CLIENT_ID}`);

// 2-3. Sign and create an order.
const purchaseOrder = `PO-NODE-${process.hrtime.bigint()}`;
const created = await call("POST", "/api/v1/sales-orders", {
  token,
  body: {
    customer_code: "CUST-001",
    site_code: "SITE-001",
    sales_name: "John Doe",
    address: "Jl. Sudirman No. 1, Jakarta",
    purchase_order_no: purchaseOrder,
    products: [{ product_code: "PRD-001", quantity: 2, uom: "PCS", unit_price: "150000.50" }],
  },
});
const id = created.data.id;
console.log(`created ${id}`);

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
