//! Integration tests of the stores: the conformance suite on a real SQLite
//! file and on a real PostgreSQL server (started by [`pg_harness`]), plus
//! backend-specific behaviour (group commit, racing compare-and-sets,
//! reopen, schema version).

mod pg_harness;
mod postgres;
mod sqlite;
