//! Append-only SQLite migrations and the `schema_version` table.
//!
//! Migration N is `migrations/sqlite/000N_*.sql`, embedded at build time.
//! Never edit a released migration; append a new one and bump
//! [`SCHEMA_VERSION`] by listing it in [`MIGRATIONS`].

use super::sql_err;
use crate::{Result, StoreError};
use rusqlite::{params, Connection, TransactionBehavior};

/// (version, SQL) in order.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../../migrations/sqlite/0002_meta.sql")),
    (3, include_str!("../../migrations/sqlite/0003_api_tokens.sql")),
    (4, include_str!("../../migrations/sqlite/0004_bot_token.sql")),
    (5, include_str!("../../migrations/sqlite/0005_drain.sql")),
    (6, include_str!("../../migrations/sqlite/0006_jobs.sql")),
    (7, include_str!("../../migrations/sqlite/0007_outbox.sql")),
    (8, include_str!("../../migrations/sqlite/0008_ui_sessions.sql")),
    (9, include_str!("../../migrations/sqlite/0009_bootstrap_use.sql")),
];

/// The newest schema version this binary knows.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// Every migration version this binary knows, in order (numbers are
/// assigned per feature, so the list may have gaps).
pub fn migration_versions() -> Vec<i64> {
    MIGRATIONS.iter().map(|(v, _)| *v).collect()
}

/// The database's schema version (0 when empty).
pub(crate) fn current_version(conn: &Connection) -> Result<i64> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at TEXT)")
        .map_err(sql_err("creating schema_version"))?;
    conn.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_version", [], |r| r.get(0))
        .map_err(sql_err("reading schema version"))
}

/// Applies every migration the database lacks, each in its own
/// transaction. Refuses a database newer than this binary.
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    let found = current_version(conn)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew { found, supported: SCHEMA_VERSION });
    }
    // Every known version not yet applied, not only those above the newest:
    // features take their numbers as they are written, so a database may
    // have a later one without an earlier one.
    let applied: Vec<i64> = {
        let mut st =
            conn.prepare("SELECT version FROM schema_version").map_err(sql_err("reading applied migrations"))?;
        let rows = st.query_map([], |r| r.get(0)).map_err(sql_err("reading applied migrations"))?;
        rows.collect::<std::result::Result<_, _>>().map_err(sql_err("reading applied migrations"))?
    };
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| !applied.contains(v)) {
        let tx =
            conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_err("beginning migration"))?;
        // Checked inside the transaction: another process may migrate too.
        let done: bool = tx
            .query_row("SELECT EXISTS (SELECT 1 FROM schema_version WHERE version = ?1)", params![version], |r| {
                r.get(0)
            })
            .map_err(sql_err("reading applied migrations"))?;
        if done {
            continue;
        }
        tx.execute_batch(sql).map_err(|e| StoreError::Other(format!("applying sqlite migration {version}: {e}")))?;
        tx.execute("INSERT INTO schema_version (version, applied_at) VALUES (?1, NULL)", params![version])
            .map_err(sql_err("recording schema version"))?;
        tx.commit().map_err(sql_err("committing migration"))?;
        tracing::info!(version, "applied sqlite migration");
    }
    Ok(())
}
