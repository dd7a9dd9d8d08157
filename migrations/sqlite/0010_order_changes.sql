-- Order changes: a purchase order number is unique among a partner's live
-- orders only (cancelling or rejecting an order frees it), every order has a
-- version and a currency, history rows can hold an amendment, and one
-- Idempotency-Key can stand for a whole batch.
--
-- SQLite cannot drop a table's UNIQUE constraint, so sales_orders is rebuilt.
-- With foreign keys on (and a migration's transaction cannot turn them off),
-- dropping the old table would delete, by cascade, the rows of every table
-- that refers to it. So the three that do are rebuilt too, first, referring
-- to the new table; the old ones are then dropped with nothing referring to
-- them, and renaming the new table points the references at its final name.

CREATE TABLE sales_orders_new (
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
    -- ISO 4217. Orders from before currencies were recorded are IDR, the
    -- default `serve --default-currency` has always implied.
    currency          TEXT NOT NULL,
    total_amount      TEXT,
    -- 1 at creation, +1 on every change.
    version           INTEGER NOT NULL,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);
INSERT INTO sales_orders_new
    (seq, id, client_id, status, status_reason, customer_code, site_code, sales_name,
     address, purchase_order_no, currency, total_amount, version, created_at, updated_at)
SELECT seq, id, client_id, status, status_reason, customer_code, site_code, sales_name,
       address, purchase_order_no, 'IDR', total_amount, 1, created_at, updated_at
FROM sales_orders;
-- AUTOINCREMENT never hands out a number twice: the new table goes on from
-- where the old one was, not from its highest surviving row (nor from 1 when
-- no row survives, in which case the copy made no counter row at all).
DELETE FROM sqlite_sequence WHERE name = 'sales_orders_new';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'sales_orders_new', seq FROM sqlite_sequence WHERE name = 'sales_orders';

CREATE TABLE sales_order_lines_new (
    order_seq    INTEGER NOT NULL REFERENCES sales_orders_new (seq) ON DELETE CASCADE,
    line_no      INTEGER NOT NULL,
    product_code TEXT NOT NULL,
    quantity     TEXT NOT NULL,
    uom          TEXT,
    unit_price   TEXT,
    line_amount  TEXT,
    notes        TEXT,
    PRIMARY KEY (order_seq, line_no)
);
INSERT INTO sales_order_lines_new SELECT * FROM sales_order_lines;

CREATE TABLE sales_order_history_new (
    id          INTEGER PRIMARY KEY,
    order_seq   INTEGER NOT NULL REFERENCES sales_orders_new (seq) ON DELETE CASCADE,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL CHECK (actor IN ('partner', 'operator')),
    actor_name  TEXT NOT NULL,
    from_status TEXT,
    to_status   TEXT NOT NULL,
    reason      TEXT,
    -- The version the entry made (NULL: made before versions existed).
    version     INTEGER,
    -- An amendment: what it changed, as JSON (`domain::Amendment`).
    changes     TEXT
);
INSERT INTO sales_order_history_new
    (id, order_seq, at, actor, actor_name, from_status, to_status, reason)
SELECT id, order_seq, at, actor, actor_name, from_status, to_status, reason
FROM sales_order_history;

-- A key stands for one order (order_seq) or for a batch (outcome: each
-- item's result, as JSON).
CREATE TABLE idempotency_keys_new (
    client_id    TEXT NOT NULL REFERENCES partners (client_id),
    key          TEXT NOT NULL,
    request_hash BLOB NOT NULL,
    order_seq    INTEGER REFERENCES sales_orders_new (seq) ON DELETE CASCADE,
    outcome      TEXT,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (client_id, key)
);
INSERT INTO idempotency_keys_new (client_id, key, request_hash, order_seq, created_at)
SELECT client_id, key, request_hash, order_seq, created_at FROM idempotency_keys;

DROP TABLE sales_order_lines;
DROP TABLE sales_order_history;
DROP TABLE idempotency_keys;
DROP TABLE sales_orders;
ALTER TABLE sales_orders_new RENAME TO sales_orders;
ALTER TABLE sales_order_lines_new RENAME TO sales_order_lines;
ALTER TABLE sales_order_history_new RENAME TO sales_order_history;
ALTER TABLE idempotency_keys_new RENAME TO idempotency_keys;

-- Unique among live orders only; the ON CONFLICT of an insert names this
-- predicate. Orders without a number take no entry.
CREATE UNIQUE INDEX sales_orders_live_po ON sales_orders (client_id, purchase_order_no)
    WHERE purchase_order_no IS NOT NULL AND status NOT IN ('cancelled', 'rejected');
-- The list's purchase_order_no filter, which finds freed numbers too.
CREATE INDEX sales_orders_client_po ON sales_orders (client_id, purchase_order_no)
    WHERE purchase_order_no IS NOT NULL;
CREATE INDEX sales_orders_client_seq ON sales_orders (client_id, seq);
CREATE INDEX sales_orders_client_status_seq ON sales_orders (client_id, status, seq);
CREATE INDEX sales_orders_client_created ON sales_orders (client_id, created_at);
CREATE INDEX sales_orders_client_updated ON sales_orders (client_id, updated_at);
CREATE INDEX sales_order_history_order ON sales_order_history (order_seq);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
