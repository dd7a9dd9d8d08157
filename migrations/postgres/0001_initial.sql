-- Partners, their keys, token lineage, orders, and server settings: the same
-- shape as the SQLite schema, with PostgreSQL's own types (timestamptz,
-- numeric, bytea, an identity sequence for order numbers).

CREATE TABLE settings (
    name  text PRIMARY KEY,
    value bytea NOT NULL
);

CREATE TABLE partners (
    client_id      text PRIMARY KEY,
    name           text NOT NULL,
    secret_hash    text NOT NULL,
    secret_version bigint NOT NULL DEFAULT 1,
    enabled        boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);

CREATE TABLE partner_keys (
    key_id      text PRIMARY KEY,
    client_id   text NOT NULL REFERENCES partners (client_id),
    spki_der    bytea NOT NULL,
    fingerprint text NOT NULL,
    bits        bigint NOT NULL,
    created_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    UNIQUE (client_id, fingerprint)
);

-- One row per login; every token refreshed from it shares the session.
CREATE TABLE auth_sessions (
    id               text PRIMARY KEY,
    client_id        text NOT NULL REFERENCES partners (client_id),
    authenticated_at timestamptz NOT NULL,
    revoked_at       timestamptz,
    revoked_reason   text
);

CREATE TABLE auth_tokens (
    jti          text PRIMARY KEY,
    session_id   text NOT NULL REFERENCES auth_sessions (id),
    issued_at    timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    refreshed_at timestamptz,
    replaced_by  text
);
CREATE INDEX auth_tokens_session ON auth_tokens (session_id);

CREATE TABLE sales_orders (
    -- An identity column draws from a sequence: concurrent inserts on any
    -- number of instances get distinct numbers without reading max(seq).
    seq               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                text NOT NULL UNIQUE,
    client_id         text NOT NULL REFERENCES partners (client_id),
    status            text NOT NULL
        CHECK (status IN ('received', 'accepted', 'fulfilled', 'rejected', 'cancelled')),
    status_reason     text,
    customer_code     text NOT NULL,
    site_code         text NOT NULL,
    sales_name        text NOT NULL,
    address           text NOT NULL,
    purchase_order_no text,
    total_amount      numeric,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    -- NULLs are distinct, so orders without a PO number never collide.
    CONSTRAINT sales_orders_po_unique UNIQUE (client_id, purchase_order_no)
);
CREATE INDEX sales_orders_client_seq ON sales_orders (client_id, seq);

CREATE TABLE sales_order_lines (
    order_seq    bigint NOT NULL REFERENCES sales_orders (seq) ON DELETE CASCADE,
    line_no      integer NOT NULL,
    product_code text NOT NULL,
    quantity     numeric NOT NULL,
    uom          text,
    unit_price   numeric,
    line_amount  numeric,
    notes        text,
    PRIMARY KEY (order_seq, line_no)
);
