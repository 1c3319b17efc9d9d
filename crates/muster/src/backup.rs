//! `muster backup FILE` and `muster restore FILE`: a consistent copy of the
//! SQLite database taken while the server runs, and putting one back while
//! it does not. PostgreSQL has its own tools (pg_dump / pg_restore; see
//! docs/operations.md).

use crate::server::sqlite_path;
use anyhow::Context;
use clap::Args;
use std::path::{Path, PathBuf};

/// Where the database is: the same flags as `muster server`.
#[derive(Args, Debug, Clone)]
pub(crate) struct DatabaseArgs {
    /// Directory of the SQLite database [default: ./muster-data].
    #[arg(long, env = "MUSTER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database `sqlite://PATH` [default: sqlite://<data-dir>/muster.db].
    #[arg(long, env = "MUSTER_DATABASE", hide_env_values = true)]
    pub database: Option<String>,
}

impl DatabaseArgs {
    fn sqlite(&self) -> anyhow::Result<PathBuf> {
        let dir = self.data_dir.clone().unwrap_or_else(|| PathBuf::from("muster-data"));
        sqlite_path(self.database.as_deref(), &dir).context(
            "backup and restore work on SQLite; for PostgreSQL use pg_dump and pg_restore (see docs/operations.md)",
        )
    }
}

/// Copy the database into FILE while the server keeps running.
///
/// Examples:
///   muster backup --data-dir /var/lib/muster /backups/muster-$(date +%F).db
///   muster backup --database sqlite:///srv/muster.db /backups/muster.db
///
/// The copy is one consistent snapshot (SQLite's online backup API): every
/// task acknowledged before the backup started is in it. FILE must not exist.
#[derive(Args, Debug, Clone)]
pub(crate) struct BackupArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// The backup file to create.
    pub file: PathBuf,
}

/// Replace the database with a backup (the server must be stopped).
///
/// Example:
///   systemctl stop muster
///   muster restore --data-dir /var/lib/muster /backups/muster-2026-01-01.db
///   systemctl start muster
///
/// Refuses while a server holds the data dir. Bots keep their sessions (the
/// session key is in the database); tasks created after the backup are gone.
#[derive(Args, Debug, Clone)]
pub(crate) struct RestoreArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// The backup file (from `muster backup`).
    pub file: PathBuf,
}

pub(crate) fn backup(a: BackupArgs) -> anyhow::Result<()> {
    let db = a.db.sqlite()?;
    let version = muster_store::sqlite::backup(&db, &a.file)
        .with_context(|| format!("backing up {} to {}", db.display(), a.file.display()))?;
    println!("backed up {} to {} (schema version {version})", db.display(), a.file.display());
    Ok(())
}

pub(crate) fn restore(a: RestoreArgs) -> anyhow::Result<()> {
    let db = a.db.sqlite()?;
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let dir = db.parent().unwrap_or(Path::new(".")).to_path_buf();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // Held for the whole restore: no server may start on the dir meanwhile.
    let _lock = rt.block_on(crate::lock::acquire(&crate::lock::lock_path_for(&db), false))?;
    let version = muster_store::sqlite::restore(&a.file, &db)
        .with_context(|| format!("restoring {} into {}", a.file.display(), db.display()))?;
    println!("restored {} into {} (schema version {version})", a.file.display(), db.display());
    Ok(())
}
