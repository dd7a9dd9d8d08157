-- Partners, their keys, token lineage, orders, and server settings.
-- Times of the auth tables are unix seconds; order times are RFC 3339 UTC text.

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

CREATE TABLE partners (
    client_id      TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    secret_hash    TEXT NOT NULL,
    secret_version INTEGER NOT NULL DEFAULT 1,
    enabled        INTEGER NOT NULL DEFAULT 1,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);

CREATE TABLE partner_keys (
    key_id      TEXT PRIMARY KEY,
    client_id   TEXT NOT NULL REFERENCES partners (client_id),
    spki_der    BLOB NOT NULL,
    fingerprint TEXT NOT NULL,
    bits        INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER,
    UNIQUE (client_id, fingerprint)
);

-- One row per login; every token refreshed from it shares the session.
CREATE TABLE auth_sessions (
    id             TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL REFERENCES partners (client_id),
    authenticated_at INTEGER NOT NULL,
    revoked_at     INTEGER,
    revoked_reason TEXT
);

CREATE TABLE auth_tokens (
    jti          TEXT PRIMARY KEY,
    session_id   TEXT NOT NULL REFERENCES auth_sessions (id),
    issued_at    INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    refreshed_at INTEGER,
    replaced_by  TEXT
);
CREATE INDEX auth_tokens_session ON auth_tokens (session_id);

CREATE TABLE sales_orders (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    id                TEXT NOT NULL UNIQUE,
    client_id         TEXT NOT NULL REFERENCES partners (client_id),
    status            TEXT NOT NULL,
    status_reason     TEXT,
    customer_code     TEXT NOT NULL,
    site_code         TEXT NOT NULL,
    sales_name        TEXT NOT NULL,
    address           TEXT NOT NULL,
    purchase_order_no TEXT,
    total_amount      TEXT,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    -- NULLs are distinct, so orders without a PO number never collide.
    CONSTRAINT sales_orders_po_unique UNIQUE (client_id, purchase_order_no)
);
CREATE INDEX sales_orders_client_seq ON sales_orders (client_id, seq);

CREATE TABLE sales_order_lines (
    order_seq    INTEGER NOT NULL REFERENCES sales_orders (seq) ON DELETE CASCADE,
    line_no      INTEGER NOT NULL,
    product_code TEXT NOT NULL,
    quantity     TEXT NOT NULL,
    uom          TEXT,
    unit_price   TEXT,
    line_amount  TEXT,
    notes        TEXT,
    PRIMARY KEY (order_seq, line_no)
);
