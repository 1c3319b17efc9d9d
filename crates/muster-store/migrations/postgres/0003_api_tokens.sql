-- muster PostgreSQL schema, version 3: API tokens for clients. Only the
-- SHA-256 of the secret is stored; the token itself is shown once.
CREATE TABLE api_token (
    id            TEXT   PRIMARY KEY,
    identity      TEXT   NOT NULL,
    secret_sha256 BYTEA  NOT NULL,
    description   TEXT   NOT NULL,
    created_by    TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    revoked_at    BIGINT
);
CREATE INDEX api_token_identity ON api_token (identity);
