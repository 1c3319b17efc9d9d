-- muster PostgreSQL schema, version 2: named values shared by every server
-- replica on this database (the bot session key).
CREATE TABLE meta (
    name  TEXT  PRIMARY KEY,
    value BYTEA NOT NULL
);
