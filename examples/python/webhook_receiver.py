"""A webhook receiver in Python with the Standard Webhooks library
(`standardwebhooks`): verify each delivery, handle each event once, print it.
See "Order events and webhooks" in the guide (/docs/guide).

    WEBHOOK_SECRET=whsec_... python3 webhook_receiver.py --port 8000

WEBHOOK_SECRET is the `secret` the endpoint's registration answered with. A
delivery is answered 204 when its signature verifies and 400 when it does not
(we then retry it later). With --expect N the receiver stops after N distinct
events, with exit status 0; a delivery that fails verification, or --timeout
seconds without N events, stops it with status 1.
"""

import argparse
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks import Webhook, WebhookVerificationError

WEBHOOK = Webhook(os.environ["WEBHOOK_SECRET"])

# What has been handled. A real receiver keeps both in its database, and
# records the webhook-id in the same transaction as the change it makes.
handled_ids = set()  # the webhook-id (= event id) of every event handled
applied_sequence = {}  # order id -> sequence of the last event applied to it
failures = 0


def handle(event: dict) -> None:
    if event["type"] == "ping":
        print(f"verified {event['id']} ping for endpoint {event['data']['endpoint_id']}")
        return
    order = event["data"]["order"]
    last = applied_sequence.get(order["id"], 0)
    if event["sequence"] <= last:
        # A retry can arrive after a later event: its order is older than the
        # one already applied, so it changes nothing.
        print(f"verified {event['id']} {event['type']} #{event['sequence']}: older than #{last}, not applied")
        return
    applied_sequence[order["id"]] = event["sequence"]
    print(f"verified {event['id']} {event['type']} #{event['sequence']}: order {order['id']} is {order['status']}")


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        global failures
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            # Checks the signature over webhook-id, webhook-timestamp and these
            # exact body bytes, and that webhook-timestamp is within 5 minutes.
            event = WEBHOOK.verify(body, dict(self.headers))
        except (WebhookVerificationError, ValueError) as error:
            failures += 1
            print(f"rejected a delivery: {error}")
            self.answer(400)
            return
        webhook_id = self.headers["webhook-id"]
        if webhook_id in handled_ids:
            # Delivery is at least once: a retry or a redelivery is answered
            # 2xx again and changes nothing.
            print(f"duplicate {webhook_id}: already handled")
        else:
            handle(event)
            handled_ids.add(webhook_id)
        self.answer(204)

    def answer(self, status: int) -> None:
        self.send_response(status)
        self.end_headers()

    def log_message(self, format, *args) -> None:
        pass  # one line per delivery is printed above instead


def main() -> None:
    parser = argparse.ArgumentParser(description="Verify and print webhook deliveries.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--expect", type=int, help="stop after this many distinct events (exit status 0)")
    parser.add_argument("--timeout", type=float, default=60, help="with --expect: give up after this many seconds")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)

    server = HTTPServer((args.host, args.port), Receiver)
    print(f"listening on http://{args.host}:{server.server_port}")
    if args.expect is None:
        server.serve_forever()
    deadline = time.monotonic() + args.timeout
    while len(handled_ids) < args.expect and not failures and time.monotonic() < deadline:
        server.timeout = deadline - time.monotonic()
        server.handle_request()
    if failures:
        sys.exit("a delivery failed verification")
    if len(handled_ids) < args.expect:
        sys.exit(f"timed out: {len(handled_ids)} of {args.expect} events in {args.timeout:g} s")
    print(f"received {len(handled_ids)} events")


if __name__ == "__main__":
    main()
