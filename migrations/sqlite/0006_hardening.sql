-- Version 2 signatures accepted within their timestamp window, so that each
-- is used once: a captured request sent again is refused, by every instance.
-- Keyed by a SHA-256 digest of the signed string, never the signature.
CREATE TABLE used_signatures (
    client_id  TEXT NOT NULL,
    digest     BLOB NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, digest)
) WITHOUT ROWID;
CREATE INDEX used_signatures_expires ON used_signatures (expires_at);

-- Disabling a partner (or revoke-sessions) ends every login it has.
CREATE INDEX auth_sessions_client ON auth_sessions (client_id);
