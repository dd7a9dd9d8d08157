-- Order management: status history, idempotency keys, and indexes for the
-- list filters and the export.

-- Every creation and status change of an order, oldest first.
CREATE TABLE sales_order_history (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_seq   bigint NOT NULL REFERENCES sales_orders (seq) ON DELETE CASCADE,
    at          timestamptz NOT NULL,
    actor       text NOT NULL CHECK (actor IN ('partner', 'operator')),
    actor_name  text NOT NULL,
    from_status text,
    to_status   text NOT NULL,
    reason      text
);
CREATE INDEX sales_order_history_order ON sales_order_history (order_seq);

-- Idempotency-Key of a create, per partner: the hash of the request it came
-- with and the order it created. Purged after the retention period.
CREATE TABLE idempotency_keys (
    client_id    text NOT NULL REFERENCES partners (client_id),
    key          text NOT NULL,
    request_hash bytea NOT NULL,
    order_seq    bigint NOT NULL REFERENCES sales_orders (seq) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (client_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

CREATE INDEX sales_orders_client_status_seq ON sales_orders (client_id, status, seq);
CREATE INDEX sales_orders_client_created ON sales_orders (client_id, created_at);
