-- muster SQLite schema, version 4: per-machine bot tokens. Only the SHA-256
-- of each secret is stored; times are microseconds since the epoch.
CREATE TABLE bot_token (
    id            TEXT PRIMARY KEY,
    host          TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    created       INTEGER NOT NULL,
    created_by    TEXT NOT NULL,
    revoked       INTEGER
);
