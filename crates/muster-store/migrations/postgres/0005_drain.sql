-- muster PostgreSQL schema, version 5: drains, the bots, pools or dimension
-- filters an operator has put into maintenance (no new tasks).
-- `target` is the drain's unique key: `bot:<id>`, `pool:<name>` or
-- `dimensions:<key:value lines>`.
CREATE TABLE drain (
    target     TEXT   PRIMARY KEY,
    reason     TEXT   NOT NULL,
    created_by TEXT   NOT NULL,
    created    BIGINT NOT NULL
);
