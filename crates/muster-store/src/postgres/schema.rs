//! Append-only PostgreSQL migrations and the `schema_version` table.
//!
//! Migration N is `migrations/postgres/000N_*.sql`, embedded at build time.
//! Never edit a released migration; append a new one and bump
//! [`SCHEMA_VERSION`] by listing it in [`MIGRATIONS`]. Migrations run under
//! a transaction-scoped advisory lock, so concurrent `connect`s are safe.

use super::pg_err;
use crate::{Result, StoreError};
use deadpool_postgres::Object;

/// (version, SQL) in order.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/postgres/0001_init.sql")),
    (2, include_str!("../../migrations/postgres/0002_meta.sql")),
    (3, include_str!("../../migrations/postgres/0003_api_tokens.sql")),
    (4, include_str!("../../migrations/postgres/0004_bot_token.sql")),
    (5, include_str!("../../migrations/postgres/0005_drain.sql")),
    (6, include_str!("../../migrations/postgres/0006_jobs.sql")),
    (7, include_str!("../../migrations/postgres/0007_outbox.sql")),
    (8, include_str!("../../migrations/postgres/0008_ui_sessions.sql")),
    (9, include_str!("../../migrations/postgres/0009_bootstrap_use.sql")),
];

/// The newest schema version this binary knows.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// Every migration version this binary knows, in order (numbers are
/// assigned per feature, so the list may have gaps).
pub fn migration_versions() -> Vec<i64> {
    MIGRATIONS.iter().map(|(v, _)| *v).collect()
}

/// Advisory lock key held while migrating ("muster" in ASCII).
const MIGRATION_LOCK: i64 = 0x6d75_7374_6572;

/// Applies every migration the database lacks, in one transaction.
/// Refuses a database newer than this binary.
pub(crate) async fn migrate(client: &mut Object) -> Result<()> {
    let tx = client.transaction().await.map_err(pg_err("beginning migration"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg_err("locking for migration"))?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL, applied_at TEXT)")
        .await
        .map_err(pg_err("creating schema_version"))?;
    let found: i64 = tx
        .query_one("SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_version", &[])
        .await
        .map_err(pg_err("reading schema version"))?
        .get(0);
    if found > SCHEMA_VERSION {
        let _ = tx.rollback().await;
        return Err(StoreError::TooNew { found, supported: SCHEMA_VERSION });
    }
    // Every known version not yet applied, not only those above the newest:
    // features take their numbers as they are written, so a database may
    // have a later one without an earlier one.
    let applied: Vec<i64> = tx
        .query("SELECT version FROM schema_version", &[])
        .await
        .map_err(pg_err("reading applied migrations"))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| !applied.contains(v)) {
        tx.batch_execute(sql)
            .await
            .map_err(|e| StoreError::Other(format!("applying postgres migration {version}: {e}")))?;
        tx.execute("INSERT INTO schema_version (version, applied_at) VALUES ($1, NULL)", &[version])
            .await
            .map_err(pg_err("recording schema version"))?;
        tracing::info!(version, "applying postgres migration");
    }
    tx.commit().await.map_err(pg_err("committing migration"))
}
