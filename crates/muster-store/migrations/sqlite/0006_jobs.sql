-- muster SQLite schema, version 6: scheduled jobs (muster-jobs).
-- Rows carry the columns queries need and a JSON `data` document.
CREATE TABLE job (
    job_id  TEXT    PRIMARY KEY,
    project TEXT    NOT NULL,
    version INTEGER NOT NULL,
    data    TEXT    NOT NULL
);

CREATE TABLE job_trigger (
    job_id         TEXT    NOT NULL,
    trigger_id     TEXT    NOT NULL,
    created        INTEGER NOT NULL,
    order_in_batch INTEGER NOT NULL,
    consumed_by    INTEGER,
    consumed_at    INTEGER,
    data           TEXT    NOT NULL,
    PRIMARY KEY (job_id, trigger_id)
);
CREATE INDEX job_trigger_pending ON job_trigger (job_id, created, order_in_batch, trigger_id)
    WHERE consumed_by IS NULL;
CREATE INDEX job_trigger_consumed_at ON job_trigger (consumed_at) WHERE consumed_at IS NOT NULL;

CREATE TABLE job_invocation (
    inv_id         INTEGER PRIMARY KEY,
    job_id         TEXT    NOT NULL,
    started        INTEGER NOT NULL,
    status         TEXT    NOT NULL,
    finished       INTEGER NOT NULL,
    mutation_count INTEGER NOT NULL,
    aborted_by     TEXT,
    data           TEXT    NOT NULL
);
CREATE INDEX job_invocation_by_job ON job_invocation (job_id, inv_id);
CREATE INDEX job_invocation_active ON job_invocation (inv_id) WHERE finished = 0;

CREATE TABLE job_timer (
    timer_id TEXT    PRIMARY KEY,
    job_id   TEXT    NOT NULL,
    inv_id   INTEGER NOT NULL,
    due      INTEGER NOT NULL,
    data     TEXT    NOT NULL
);
CREATE INDEX job_timer_due ON job_timer (due);
CREATE INDEX job_timer_inv ON job_timer (inv_id);
