-- Webhooks: a partner's endpoints, the outbox of deliveries to them, and
-- every attempt made.
CREATE TABLE webhook_endpoints (
    id                    TEXT PRIMARY KEY,
    client_id             TEXT NOT NULL REFERENCES partners (client_id) ON DELETE CASCADE,
    url                   TEXT NOT NULL,
    -- Space-separated event types; NULL for all.
    types                 TEXT,
    description           TEXT,
    -- `whsec_…`: the server signs with it, so it is kept as issued.
    secret                TEXT NOT NULL,
    -- The secret before the last rotation, still signed with until then.
    previous_secret       TEXT,
    previous_secret_until TEXT,
    enabled               BOOLEAN NOT NULL,
    disabled_reason       TEXT,
    -- Since when every delivery failed (NULL after a success): 5 days of
    -- that disables the endpoint.
    failing_since         TEXT,
    -- The partner's events up to this sequence are in the outbox (or were
    -- not for this endpoint's types).
    last_sequence         INTEGER NOT NULL,
    created_at            TEXT NOT NULL
);
CREATE INDEX webhook_endpoints_client ON webhook_endpoints (client_id);

-- The outbox: one row per event and endpoint, made by the dispatcher from
-- the events table and claimed by one instance at a time (a lease: the
-- claim moves `next_attempt_at` past the attempt's timeout).
CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint_id     TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id        TEXT NOT NULL,
    -- The body sent, the same on every attempt.
    payload         TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    -- NULL once delivered or given up.
    next_attempt_at TEXT,
    outcome         TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    CONSTRAINT webhook_deliveries_once UNIQUE (endpoint_id, event_id)
);
-- `event redeliver` finds an event's deliveries; the purge, old finished ones.
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);
CREATE INDEX webhook_deliveries_created ON webhook_deliveries (created_at);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE next_attempt_at IS NOT NULL;

CREATE TABLE webhook_attempts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id    TEXT NOT NULL,
    at          TEXT NOT NULL,
    -- The HTTP status answered, or NULL with `error` when none was.
    status      INTEGER,
    error       TEXT,
    duration_ms INTEGER NOT NULL
);
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint_id, id);
CREATE INDEX webhook_attempts_at ON webhook_attempts (at);
