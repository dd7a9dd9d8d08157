-- A partner can be required to sign with v2, which covers method, path, query
-- and the SHA-256 of the body.
ALTER TABLE partners ADD COLUMN require_body_signature INTEGER NOT NULL DEFAULT 0;
