//! Integration tests of the SQLite store: the conformance suite on a real
//! database file, plus SQLite-specific behaviour (group commit, reopen,
//! schema version).

mod sqlite;
