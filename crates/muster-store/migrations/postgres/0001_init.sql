-- muster PostgreSQL schema, version 1. Append-only: never edit a released
-- migration, add 0002_*.sql instead.
-- Times are microseconds since the Unix epoch (BIGINT).
-- Each row keeps the columns that are filtered or sorted on, plus a
-- versioned JSON blob (TEXT, the same encoding as the SQLite backend) with
-- the rest of the record.

CREATE TABLE task_request (
    id      BIGINT PRIMARY KEY,
    created BIGINT NOT NULL,
    blob    TEXT   NOT NULL
);

CREATE TABLE task_result (
    id         BIGINT  PRIMARY KEY,
    version    BIGINT  NOT NULL,
    state      INTEGER NOT NULL,
    failure    BOOLEAN NOT NULL,
    try_number INTEGER,
    created    BIGINT  NOT NULL,
    started    BIGINT,
    completed  BIGINT,
    abandoned  BIGINT,
    bot_id     TEXT    NOT NULL,
    dedup_hash TEXT,
    tags       TEXT    NOT NULL,
    blob       TEXT    NOT NULL
);
CREATE INDEX task_result_state ON task_result (state, id);
CREATE INDEX task_result_created ON task_result (created);
CREATE INDEX task_result_started ON task_result (started, id) WHERE started IS NOT NULL;
CREATE INDEX task_result_completed ON task_result (completed, id) WHERE completed IS NOT NULL;
CREATE INDEX task_result_abandoned ON task_result (abandoned, id) WHERE abandoned IS NOT NULL;
CREATE INDEX task_result_bot ON task_result (bot_id, id) WHERE bot_id <> '';
CREATE INDEX task_result_dedup ON task_result (dedup_hash, id) WHERE dedup_hash IS NOT NULL;

CREATE TABLE task_tag (
    tag     TEXT   NOT NULL,
    task_id BIGINT NOT NULL,
    PRIMARY KEY (tag, task_id)
);
CREATE INDEX task_tag_task ON task_tag (task_id);

CREATE TABLE request_uuid (
    key     TEXT   PRIMARY KEY,
    task_id BIGINT NOT NULL,
    created BIGINT NOT NULL
);
CREATE INDEX request_uuid_task ON request_uuid (task_id);

CREATE TABLE output_chunk (
    task_id BIGINT NOT NULL,
    idx     BIGINT NOT NULL,
    data    BYTEA  NOT NULL,
    PRIMARY KEY (task_id, idx)
);

CREATE TABLE bot (
    bot_id TEXT PRIMARY KEY,
    blob   TEXT NOT NULL
);

CREATE TABLE bot_event (
    id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bot_id TEXT   NOT NULL,
    ts     BIGINT NOT NULL,
    blob   TEXT   NOT NULL
);
CREATE INDEX bot_event_bot_ts ON bot_event (bot_id, ts);
CREATE INDEX bot_event_ts ON bot_event (ts);
