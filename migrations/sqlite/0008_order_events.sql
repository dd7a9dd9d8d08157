-- Order events: every change to an order, written in the transaction that
-- makes it, numbered per partner 1, 2, 3, ... without gaps, in commit order.
--
-- A partner's numbers come from its row here, taken with an upsert in the
-- writing transaction. SQLite has one writer, so transactions commit in the
-- order they take their numbers (PostgreSQL gets the same from the row lock).
CREATE TABLE event_sequences (
    client_id TEXT PRIMARY KEY REFERENCES partners (client_id) ON DELETE CASCADE,
    last      INTEGER NOT NULL
);

-- No foreign keys: each would cost a lookup per event in the group commit,
-- and the rows they would point at are written in the same transaction.
-- Ids begin with their time, so the purge of old events needs no index on
-- created_at (one more index entry written per event).
CREATE TABLE order_events (
    id         TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL,
    sequence   INTEGER NOT NULL,
    type       TEXT NOT NULL,
    created_at TEXT NOT NULL, -- RFC 3339 UTC, fixed width (as every time here)
    -- `{"order": ...}` as the API shows it, kept as written.
    data       TEXT NOT NULL,
    CONSTRAINT order_events_sequence UNIQUE (client_id, sequence)
);

-- The order list's `updated_from` / `updated_to`.
CREATE INDEX sales_orders_client_updated ON sales_orders (client_id, updated_at);
