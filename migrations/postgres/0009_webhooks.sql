-- Webhooks: a partner's endpoints, the outbox of deliveries to them, and
-- every attempt made.
CREATE TABLE webhook_endpoints (
    id                    text PRIMARY KEY,
    client_id             text NOT NULL REFERENCES partners (client_id) ON DELETE CASCADE,
    url                   text NOT NULL,
    -- Space-separated event types; NULL for all.
    types                 text,
    description           text,
    -- `whsec_…`: the server signs with it, so it is kept as issued.
    secret                text NOT NULL,
    -- The secret before the last rotation, still signed with until then.
    previous_secret       text,
    previous_secret_until timestamptz,
    enabled               boolean NOT NULL,
    disabled_reason       text,
    -- Since when every delivery failed (NULL after a success): 5 days of
    -- that disables the endpoint.
    failing_since         timestamptz,
    -- The partner's events up to this sequence are in the outbox (or were
    -- not for this endpoint's types).
    last_sequence         bigint NOT NULL,
    created_at            timestamptz NOT NULL
);
CREATE INDEX webhook_endpoints_client ON webhook_endpoints (client_id);

-- The outbox: one row per event and endpoint, made by the dispatcher from
-- the events table and claimed by one instance at a time (a lease: the
-- claim moves `next_attempt_at` past the attempt's timeout).
CREATE TABLE webhook_deliveries (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint_id     text NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id        text NOT NULL,
    -- The body sent, the same on every attempt.
    payload         text NOT NULL,
    attempts        integer NOT NULL,
    -- NULL once delivered or given up.
    next_attempt_at timestamptz,
    outcome         text NOT NULL,
    created_at      timestamptz NOT NULL,
    CONSTRAINT webhook_deliveries_once UNIQUE (endpoint_id, event_id)
);
-- `event redeliver` finds an event's deliveries; the purge, old finished ones.
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);
CREATE INDEX webhook_deliveries_created ON webhook_deliveries (created_at);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE next_attempt_at IS NOT NULL;

CREATE TABLE webhook_attempts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint_id text NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id    text NOT NULL,
    at          timestamptz NOT NULL,
    -- The HTTP status answered, or NULL with `error` when none was.
    status      integer,
    error       text,
    duration_ms integer NOT NULL
);
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint_id, id);
CREATE INDEX webhook_attempts_at ON webhook_attempts (at);
