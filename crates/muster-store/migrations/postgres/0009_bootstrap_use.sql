-- muster PostgreSQL schema, version 9: one-time bot bootstrap tokens. A row
-- records that a bootstrap token (by the SHA-256 of the whole token) was
-- exchanged for a machine token, so it can never be used again.
CREATE TABLE bootstrap_use (
    token_sha256  TEXT PRIMARY KEY,
    bot_id        TEXT NOT NULL,
    bot_token_id  TEXT NOT NULL,
    used          BIGINT NOT NULL
);
