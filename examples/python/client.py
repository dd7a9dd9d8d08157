"""A partner client in Python with `cryptography` and `requests`: log in,
sign, create an order, read it back, refresh the token. See examples/README.md.

    BASE_URL=http://127.0.0.1:8080 CLIENT_ID=... CLIENT_SECRET=... \
    PRIVATE_KEY=private.pem python3 examples/python/client.py

SIGNATURE_VERSION=2 signs the create with version 2 (method, path and body).
"""

import base64
import hashlib
import json
import os
import time

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


def signed(session: requests.Session, token: str, method: str, path: str, body: bytes = b""):
    """A signed request. The timestamp is read once, for the string and the header."""
    timestamp = str(int(time.time()))
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "X-CLIENT-ID": CLIENT_ID,
        "X-TIMESTAMP": timestamp,
    }
    if VERSION_2:
        # Version 2 also covers the method, the path with query, and the exact body bytes.
        digest = hashlib.sha256(body).hexdigest()
        headers["X-SIGNATURE"] = sign(f"{CLIENT_ID}|{timestamp}|{method}|{path}|{digest}")
        headers["X-SIGNATURE-VERSION"] = "2"
    else:
        headers["X-SIGNATURE"] = sign(f"{CLIENT_ID}|{timestamp}")
    response = session.request(method, BASE_URL + path, headers=headers, data=body)
    if not response.ok:
        raise SystemExit(f"{method} {path}: {response.status_code} {response.text}")
    return response.json()


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
    # signs these exact bytes.
    purchase_order = f"PO-PY-{time.time_ns()}"
    body = json.dumps({
        "customer_code": "CUST-001",
        "site_code": "SITE-001",
        "sales_name": "John Doe",
        "address": "Jl. Sudirman No. 1, Jakarta",
        "purchase_order_no": purchase_order,
        "products": [{"product_code": "PRD-001", "quantity": 2, "uom": "PCS", "unit_price": "150000.50"}],
    }).encode()
    order = signed(session, token, "POST", "/api/v1/sales-orders", body)["data"]
    print(f"created {order['id']} (signature version {2 if VERSION_2 else 1})")

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


if __name__ == "__main__":
    main()
