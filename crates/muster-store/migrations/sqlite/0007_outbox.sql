-- muster SQLite schema, version 7: the notification outbox (muster-notify).
-- One row per message to one sink, written with the change that causes it.
CREATE TABLE outbox (
    delivery_id     TEXT    PRIMARY KEY,
    sink            TEXT    NOT NULL,
    topic           TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    event           TEXT    NOT NULL,
    update_id       INTEGER NOT NULL,
    created         INTEGER NOT NULL,
    since           INTEGER NOT NULL,
    state           TEXT    NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT    NOT NULL,
    finished_at     INTEGER,
    data            TEXT    NOT NULL
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
CREATE INDEX outbox_created ON outbox (created, delivery_id);
