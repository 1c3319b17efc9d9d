//! Integration tests of the stores: the conformance suite on a real SQLite
//! file and on a real PostgreSQL server (started by `muster_testkit::TempPostgres`), plus
//! backend-specific behaviour (group commit, racing compare-and-sets,
//! reopen, schema version).

mod durability;
mod postgres;
mod sqlite;
