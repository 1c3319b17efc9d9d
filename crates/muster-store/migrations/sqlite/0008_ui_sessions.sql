-- muster SQLite schema, version 8: web UI sign-in sessions. Only the
-- SHA-256 of the session id (the browser's cookie) is stored.
CREATE TABLE ui_session (
    id_sha256  BLOB PRIMARY KEY,
    identity   TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX ui_session_expires ON ui_session (expires_at);
