"""A partner client in Python with `cryptography` and `requests`: log in,
sign, create an order, read it back, refresh the token, amend the order, send
a batch. See "Signing in your language" in the guide (/docs/guide).

    BASE_URL=http://127.0.0.1:8080 CLIENT_ID=... CLIENT_SECRET=... \
    PRIVATE_KEY=private.pem python3 client.py

SIGNATURE_VERSION=2 signs every request with version 2 (method, path and body).
"""

import base64
import hashlib
import json
import os
import time
import uuid
from typing import Optional

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

BASE_URL = os.environ["BASE_URL"].rstrip("/")
CLIENT_ID = os.environ["CLIENT_ID"]
VERSION_2 = os.environ.get("SIGNATURE_VERSION") == "2"

with open(os.environ["PRIVATE_KEY"], "rb") as file:
    PRIVATE_KEY = serialization.load_pem_private_key(file.read(), password=None)


def sign(string_to_sign: str) -> str:
    """SHA256withRSA (PKCS#1 v1.5), standard base64."""
    signature = PRIVATE_KEY.sign(string_to_sign.encode(), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode()


# The v2 strings signed so far for requests that change something.
SIGNED_CHANGES = set()


def signed_response(session: requests.Session, token: str, method: str, path: str, body: bytes = b"",
                    headers: Optional[dict] = None, expect: Optional[int] = None) -> requests.Response:
    """A signed request with extra `headers`, whose answer must have status
    `expect` (any 2xx if None). The timestamp is read once, for the string
    and the header."""
    timestamp = str(int(time.time()))
    if VERSION_2:
        # Version 2 also covers the method, the path with query, and the exact body bytes.
        digest = hashlib.sha256(body).hexdigest()
        string_to_sign = f"{CLIENT_ID}|{timestamp}|{method}|{path}|{digest}"
        if method != "GET":
            # Such a signature is good for one request: the same bytes sent
            # again within the second (a retry, a replayed batch) would sign
            # the same string, so they wait for the next second.
            while string_to_sign in SIGNED_CHANGES:
                time.sleep(1 - time.time() % 1)
                timestamp = str(int(time.time()))
                string_to_sign = f"{CLIENT_ID}|{timestamp}|{method}|{path}|{digest}"
            SIGNED_CHANGES.add(string_to_sign)
    else:
        string_to_sign = f"{CLIENT_ID}|{timestamp}"
    headers = {
        **(headers or {}),
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "X-CLIENT-ID": CLIENT_ID,
        "X-TIMESTAMP": timestamp,
        "X-SIGNATURE": sign(string_to_sign),
    }
    if VERSION_2:
        headers["X-SIGNATURE-VERSION"] = "2"
    response = session.request(method, BASE_URL + path, headers=headers, data=body)
    ok = response.status_code == expect if expect else response.ok
    if not ok:
        raise SystemExit(f"{method} {path}: {response.status_code} {response.text}")
    return response


def signed(session: requests.Session, token: str, method: str, path: str, body: bytes = b""):
    """A signed request answered with a 2xx; its JSON answer."""
    return signed_response(session, token, method, path, body).json()


def order_fields(purchase_order: str, quantity: int = 2) -> dict:
    """A create body (also an amendment's, and each order of a batch), to serialise once."""
    return {
        "customer_code": "CUST-001",
        "site_code": "SITE-001",
        "sales_name": "John Doe",
        "address": "Jl. Sudirman No. 1, Jakarta",
        "purchase_order_no": purchase_order,
        "products": [{"product_code": "PRD-001", "quantity": quantity, "uom": "PCS", "unit_price": "150000.50"}],
    }


def main() -> None:
    session = requests.Session()

    # 1. Log in.
    login = session.post(
        f"{BASE_URL}/api/v1/auth/login",
        json={"client_id": CLIENT_ID, "client_secret": os.environ["CLIENT_SECRET"]},
    )
    login.raise_for_status()
    token = login.json()["token"]
    print(f"logged in as {CLIENT_ID}")

    # 2-3. Sign and create an order. The body is serialised once: version 2
    # signs these exact bytes. Its ETag (its version, "1") is kept for the
    # amendment.
    purchase_order = f"PO-PY-{time.time_ns()}"
    body = json.dumps(order_fields(purchase_order)).encode()
    created = signed_response(session, token, "POST", "/api/v1/sales-orders", body, expect=201)
    order, etag = created.json()["data"], created.headers.get("ETag")
    assert etag == '"1"', f"created with ETag {etag}"
    print(f"created {order['id']} (signature version {2 if VERSION_2 else 1}, ETag {etag})")

    # 4. Read it back.
    read_back = signed(session, token, "GET", f"/api/v1/sales-orders/{order['id']}")["data"]
    assert read_back["purchase_order_no"] == purchase_order, read_back
    print(f"read back {order['id']}: purchase order {purchase_order}")

    # 5. Refresh the token (each token refreshes once), and use the new one.
    refreshed = session.post(f"{BASE_URL}/api/v1/auth/refresh", json={"token": token})
    refreshed.raise_for_status()
    token = refreshed.json()["token"]
    assert len(signed(session, token, "GET", "/api/v1/sales-orders?limit=1")["data"]) == 1
    print("refreshed the token and listed orders with it")

    # 6. Amend the order: a whole create body (the lines to keep too), here
    # with quantity 3, made only if the order is still at the version we read
    # (If-Match with the create's ETag).
    path = f"/api/v1/sales-orders/{order['id']}"
    amended = json.dumps(order_fields(purchase_order, quantity=3)).encode()
    answer = signed_response(session, token, "PUT", path, amended, {"If-Match": etag}, expect=200)
    data = answer.json()["data"]
    assert data["version"] == 2 and data["products"][0]["quantity"] == 3, data
    assert answer.headers.get("ETag") == '"2"', answer.headers
    print(f"amended {order['id']}: quantity 3, ETag {answer.headers['ETag']}")

    # The same amendment with the old ETag is refused: someone (here, we)
    # changed the order since version 1, and nothing is overwritten.
    stale = signed_response(session, token, "PUT", path, amended, {"If-Match": etag}, expect=412)
    assert stale.json()["error"]["code"] == "VERSION_MISMATCH", stale.text
    print(f"stale If-Match {etag} refused as expected: 412 VERSION_MISMATCH "
          f"(the order is at {stale.headers.get('ETag')})")

    # 7. A batch of two orders with one Idempotency-Key. The body is
    # serialised once: a retry must send the same bytes with the same key.
    batch = json.dumps({
        "orders": [order_fields(f"{purchase_order}-1", 1), order_fields(f"{purchase_order}-2")],
        "atomic": False,
    }).encode()
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = signed_response(session, token, "POST", "/api/v1/sales-orders/batch", batch, key, expect=200)
    items = first.json()["data"]
    assert [(item["index"], item["status"]) for item in items] == [(0, 201), (1, 201)], items
    ids = [item["data"]["id"] for item in items]
    print(f"sent a batch: created {', '.join(ids)}")

    # Sent again (as after a lost answer): the same orders, not two more.
    again = signed_response(session, token, "POST", "/api/v1/sales-orders/batch", batch, key, expect=200)
    assert again.headers.get("Idempotent-Replayed") == "true", again.headers
    assert [item["data"]["id"] for item in again.json()["data"]] == ids, again.text
    print("sent the batch again: Idempotent-Replayed, the same orders")


if __name__ == "__main__":
    main()
