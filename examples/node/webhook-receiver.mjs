// A webhook receiver in Node.js 20 with the Standard Webhooks library (npm
// `standardwebhooks`): verify each delivery, handle each event once, print it.
// See "Order events and webhooks" in the guide (/docs/guide).
//
//   npm ci    # beside this file's package.json and package-lock.json
//   WEBHOOK_SECRET=whsec_... node webhook-receiver.mjs --port 8000
//
// WEBHOOK_SECRET is the `secret` the endpoint's registration answered with. A
// delivery is answered 204 when its signature verifies and 400 when it does
// not (we then retry it later). With --expect N the receiver stops after N
// distinct events, with exit status 0; a delivery that fails verification, or
// --timeout seconds without N events, stops it with status 1.
import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { Webhook } from "standardwebhooks";

const { values: options } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "8000" },
    expect: { type: "string" },
    timeout: { type: "string", default: "60" },
  },
});
const expect = options.expect === undefined ? undefined : Number(options.expect);
const webhook = new Webhook(process.env.WEBHOOK_SECRET);

// What has been handled. A real receiver keeps both in its database, and
// records the webhook-id in the same transaction as the change it makes.
const handledIds = new Set(); // the webhook-id (= event id) of every event handled
const appliedSequence = new Map(); // order id -> sequence of the last event applied to it

function handle(event) {
  if (event.type === "ping") {
    console.log(`verified ${event.id} ping for endpoint ${event.data.endpoint_id}`);
    return;
  }
  const order = event.data.order;
  const last = appliedSequence.get(order.id) ?? 0;
  if (event.sequence <= last) {
    // A retry can arrive after a later event: its order is older than the
    // one already applied, so it changes nothing.
    console.log(`verified ${event.id} ${event.type} #${event.sequence}: older than #${last}, not applied`);
    return;
  }
  appliedSequence.set(order.id, event.sequence);
  console.log(`verified ${event.id} ${event.type} #${event.sequence}: order ${order.id} is ${order.status}`);
}

const server = createServer((request, response) => {
  if (request.method !== "POST") {
    response.writeHead(405, { Allow: "POST" }).end();
    return;
  }
  const chunks = [];
  request.on("data", (chunk) => chunks.push(chunk));
  request.on("end", () => {
    const body = Buffer.concat(chunks);
    let event;
    try {
      // Checks the signature over webhook-id, webhook-timestamp and these
      // exact body bytes, and that webhook-timestamp is within 5 minutes.
      event = webhook.verify(body, request.headers);
    } catch (error) {
      console.log(`rejected a delivery: ${error.message}`);
      response.writeHead(400).end(() => expect !== undefined && stop(1, "a delivery failed verification"));
      return;
    }
    const webhookId = request.headers["webhook-id"];
    if (handledIds.has(webhookId)) {
      // Delivery is at least once: a retry or a redelivery is answered 2xx
      // again and changes nothing.
      console.log(`duplicate ${webhookId}: already handled`);
    } else {
      handle(event);
      handledIds.add(webhookId);
    }
    response.writeHead(204).end(() => {
      if (expect !== undefined && handledIds.size >= expect) stop(0, `received ${handledIds.size} events`);
    });
  });
});

function stop(status, message) {
  (status === 0 ? console.log : console.error)(message);
  process.exit(status);
}

server.listen(Number(options.port), options.host, () => {
  console.log(`listening on http://${options.host}:${server.address().port}`);
  if (expect !== undefined) {
    const seconds = Number(options.timeout);
    setTimeout(() => stop(1, `timed out: ${handledIds.size} of ${expect} events in ${seconds} s`), seconds * 1000);
  }
});
