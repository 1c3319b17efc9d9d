-- muster SQLite schema, version 2: named values shared by every server on
-- this database (the bot session key).
CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
