-- Order events: every change to an order, written in the transaction that
-- makes it, numbered per partner 1, 2, 3, ... without gaps, in commit order.
--
-- A partner's numbers come from its row here, taken with an upsert in the
-- writing transaction: the row stays locked until that transaction ends, so
-- the next writer for the partner gets the next number only after this one
-- committed (or, rolled back, hands the same numbers on). No sequence object
-- could promise that: sequences leave gaps and hand out numbers out of
-- commit order.
CREATE TABLE event_sequences (
    client_id text PRIMARY KEY REFERENCES partners (client_id) ON DELETE CASCADE,
    last      bigint NOT NULL
);

-- No foreign keys: each would cost a lookup per event in the group commit,
-- and the rows they would point at are written in the same transaction.
-- Ids begin with their time, so the purge of old events needs no index on
-- created_at (one more index entry written per event).
CREATE TABLE order_events (
    id         text PRIMARY KEY,
    client_id  text NOT NULL,
    sequence   bigint NOT NULL,
    type       text NOT NULL,
    created_at timestamptz NOT NULL,
    -- `{"order": ...}` as the API shows it, kept as written.
    data       text NOT NULL,
    CONSTRAINT order_events_sequence UNIQUE (client_id, sequence)
);

-- The order list's `updated_from` / `updated_to`.
CREATE INDEX sales_orders_client_updated ON sales_orders (client_id, updated_at);
