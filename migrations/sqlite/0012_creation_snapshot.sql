-- An `order.created` event no longer stores its snapshot: the order's own
-- rows hold it until the order first changes, and that change stores it
-- here (src/store/feed.rs). SQLite cannot drop a NOT NULL, so the table is
-- made again with the same columns, key and constraint.
CREATE TABLE order_events_new (
    id         TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL,
    sequence   INTEGER NOT NULL,
    type       TEXT NOT NULL,
    created_at TEXT NOT NULL, -- RFC 3339 UTC, fixed width (as every time here)
    -- `{"order": ...}` as the API shows it, kept as written; NULL for an
    -- `order.created` event whose order has not changed since.
    data       TEXT,
    CONSTRAINT order_events_sequence UNIQUE (client_id, sequence)
);
INSERT INTO order_events_new (id, client_id, sequence, type, created_at, data)
    SELECT id, client_id, sequence, type, created_at, data FROM order_events;
DROP TABLE order_events;
ALTER TABLE order_events_new RENAME TO order_events;
