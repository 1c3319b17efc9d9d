-- muster SQLite schema, version 1. Append-only: never edit a released
-- migration, add 0002_*.sql instead.
-- Times are microseconds since the Unix epoch (INTEGER).
-- Each row keeps the columns that are filtered or sorted on, plus a
-- versioned JSON blob with the rest of the record.

CREATE TABLE task_request (
    id      INTEGER PRIMARY KEY,
    created INTEGER NOT NULL,
    blob    BLOB    NOT NULL
);

CREATE TABLE task_result (
    id         INTEGER PRIMARY KEY,
    version    INTEGER NOT NULL,
    state      INTEGER NOT NULL,
    failure    INTEGER NOT NULL,
    try_number INTEGER,
    created    INTEGER NOT NULL,
    started    INTEGER,
    completed  INTEGER,
    abandoned  INTEGER,
    bot_id     TEXT    NOT NULL,
    dedup_hash TEXT,
    tags       TEXT    NOT NULL,
    blob       BLOB    NOT NULL
);
CREATE INDEX task_result_state ON task_result (state, id);
CREATE INDEX task_result_created ON task_result (created);
CREATE INDEX task_result_started ON task_result (started, id) WHERE started IS NOT NULL;
CREATE INDEX task_result_completed ON task_result (completed, id) WHERE completed IS NOT NULL;
CREATE INDEX task_result_abandoned ON task_result (abandoned, id) WHERE abandoned IS NOT NULL;
CREATE INDEX task_result_bot ON task_result (bot_id, id) WHERE bot_id <> '';
CREATE INDEX task_result_dedup ON task_result (dedup_hash, id) WHERE dedup_hash IS NOT NULL;

CREATE TABLE task_tag (
    tag     TEXT    NOT NULL,
    task_id INTEGER NOT NULL,
    PRIMARY KEY (tag, task_id)
) WITHOUT ROWID;
CREATE INDEX task_tag_task ON task_tag (task_id);

CREATE TABLE request_uuid (
    key     TEXT    PRIMARY KEY,
    task_id INTEGER NOT NULL,
    created INTEGER NOT NULL
);
CREATE INDEX request_uuid_task ON request_uuid (task_id);

CREATE TABLE output_chunk (
    task_id INTEGER NOT NULL,
    idx     INTEGER NOT NULL,
    data    BLOB    NOT NULL,
    PRIMARY KEY (task_id, idx)
) WITHOUT ROWID;

CREATE TABLE bot (
    bot_id TEXT PRIMARY KEY,
    blob   BLOB NOT NULL
);

CREATE TABLE bot_event (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    bot_id TEXT    NOT NULL,
    ts     INTEGER NOT NULL,
    blob   BLOB    NOT NULL
);
CREATE INDEX bot_event_bot_ts ON bot_event (bot_id, ts);
CREATE INDEX bot_event_ts ON bot_event (ts);
