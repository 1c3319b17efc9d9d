-- muster PostgreSQL schema, version 7: the notification outbox (muster-notify).
-- One row per message to one sink, written with the change that causes it.
CREATE TABLE outbox (
    delivery_id     TEXT    PRIMARY KEY,
    sink            TEXT    NOT NULL,
    topic           TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    event           TEXT    NOT NULL,
    update_id       BIGINT  NOT NULL,
    created         BIGINT  NOT NULL,
    since           BIGINT  NOT NULL,
    state           TEXT    NOT NULL,
    attempts        BIGINT  NOT NULL,
    next_attempt_at BIGINT  NOT NULL,
    last_error      TEXT    NOT NULL,
    finished_at     BIGINT,
    data            TEXT    NOT NULL
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
CREATE INDEX outbox_created ON outbox (created, delivery_id);
