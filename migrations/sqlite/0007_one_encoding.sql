-- One encoding for every time, as the store's code writes them on both
-- databases: RFC 3339 UTC text to the millisecond (`2026-11-24T08:27:49.024Z`),
-- whose text order is time order. Order and audit times were already stored
-- so; the partner and login tables held unix seconds. Every row is kept, its
-- times converted. History rows get an id (their rowid), as on PostgreSQL,
-- so both read history in the same order with the same query.

-- Tables that no other table refers to are rebuilt with TEXT times.

CREATE TABLE partner_keys_new (
    key_id      TEXT PRIMARY KEY,
    client_id   TEXT NOT NULL REFERENCES partners (client_id),
    spki_der    BLOB NOT NULL,
    fingerprint TEXT NOT NULL,
    bits        INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT,
    UNIQUE (client_id, fingerprint)
);
INSERT INTO partner_keys_new
SELECT key_id, client_id, spki_der, fingerprint, bits,
       strftime('%Y-%m-%dT%H:%M:%fZ', created_at, 'unixepoch'),
       strftime('%Y-%m-%dT%H:%M:%fZ', revoked_at, 'unixepoch')
FROM partner_keys;
DROP TABLE partner_keys;
ALTER TABLE partner_keys_new RENAME TO partner_keys;

CREATE TABLE auth_tokens_new (
    jti          TEXT PRIMARY KEY,
    session_id   TEXT NOT NULL REFERENCES auth_sessions (id),
    issued_at    TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    refreshed_at TEXT,
    replaced_by  TEXT
);
INSERT INTO auth_tokens_new
SELECT jti, session_id,
       strftime('%Y-%m-%dT%H:%M:%fZ', issued_at, 'unixepoch'),
       strftime('%Y-%m-%dT%H:%M:%fZ', expires_at, 'unixepoch'),
       strftime('%Y-%m-%dT%H:%M:%fZ', refreshed_at, 'unixepoch'),
       replaced_by
FROM auth_tokens;
DROP TABLE auth_tokens;
ALTER TABLE auth_tokens_new RENAME TO auth_tokens;
CREATE INDEX auth_tokens_session ON auth_tokens (session_id);

CREATE TABLE idempotency_keys_new (
    client_id    TEXT NOT NULL REFERENCES partners (client_id),
    key          TEXT NOT NULL,
    request_hash BLOB NOT NULL,
    order_seq    INTEGER NOT NULL REFERENCES sales_orders (seq) ON DELETE CASCADE,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (client_id, key)
);
INSERT INTO idempotency_keys_new
SELECT client_id, key, request_hash, order_seq,
       strftime('%Y-%m-%dT%H:%M:%fZ', created_at, 'unixepoch')
FROM idempotency_keys;
DROP TABLE idempotency_keys;
ALTER TABLE idempotency_keys_new RENAME TO idempotency_keys;
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

CREATE TABLE used_signatures_new (
    client_id  TEXT NOT NULL,
    digest     BLOB NOT NULL,
    expires_at TEXT NOT NULL,
    PRIMARY KEY (client_id, digest)
) WITHOUT ROWID;
INSERT INTO used_signatures_new
SELECT client_id, digest, strftime('%Y-%m-%dT%H:%M:%fZ', expires_at, 'unixepoch')
FROM used_signatures;
DROP TABLE used_signatures;
ALTER TABLE used_signatures_new RENAME TO used_signatures;
CREATE INDEX used_signatures_expires ON used_signatures (expires_at);

CREATE TABLE sales_order_history_new (
    id          INTEGER PRIMARY KEY,
    order_seq   INTEGER NOT NULL REFERENCES sales_orders (seq) ON DELETE CASCADE,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL CHECK (actor IN ('partner', 'operator')),
    actor_name  TEXT NOT NULL,
    from_status TEXT,
    to_status   TEXT NOT NULL,
    reason      TEXT
);
INSERT INTO sales_order_history_new
SELECT rowid, order_seq, at, actor, actor_name, from_status, to_status, reason
FROM sales_order_history;
DROP TABLE sales_order_history;
ALTER TABLE sales_order_history_new RENAME TO sales_order_history;
CREATE INDEX sales_order_history_order ON sales_order_history (order_seq);

-- Partners and logins are referred to by other tables, so their time
-- columns are replaced in place (a rebuild would orphan the references).
-- The empty default only lets the column be added; every insert sets it.

ALTER TABLE partners RENAME COLUMN created_at TO created_at_unix;
ALTER TABLE partners ADD COLUMN created_at TEXT NOT NULL DEFAULT '';
UPDATE partners SET created_at = strftime('%Y-%m-%dT%H:%M:%fZ', created_at_unix, 'unixepoch');
ALTER TABLE partners DROP COLUMN created_at_unix;

ALTER TABLE partners RENAME COLUMN updated_at TO updated_at_unix;
ALTER TABLE partners ADD COLUMN updated_at TEXT NOT NULL DEFAULT '';
UPDATE partners SET updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', updated_at_unix, 'unixepoch');
ALTER TABLE partners DROP COLUMN updated_at_unix;

ALTER TABLE auth_sessions RENAME COLUMN authenticated_at TO authenticated_at_unix;
ALTER TABLE auth_sessions ADD COLUMN authenticated_at TEXT NOT NULL DEFAULT '';
UPDATE auth_sessions
SET authenticated_at = strftime('%Y-%m-%dT%H:%M:%fZ', authenticated_at_unix, 'unixepoch');
ALTER TABLE auth_sessions DROP COLUMN authenticated_at_unix;

ALTER TABLE auth_sessions RENAME COLUMN revoked_at TO revoked_at_unix;
ALTER TABLE auth_sessions ADD COLUMN revoked_at TEXT;
UPDATE auth_sessions SET revoked_at = strftime('%Y-%m-%dT%H:%M:%fZ', revoked_at_unix, 'unixepoch');
ALTER TABLE auth_sessions DROP COLUMN revoked_at_unix;
