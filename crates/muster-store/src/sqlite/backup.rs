//! Online backup and restore of a SQLite database, with SQLite's backup
//! API: the copy is a consistent snapshot even while a server writes (the
//! copy restarts when a write lands mid-way; a few pages per step with a
//! short pause let the writer in between).

use super::schema;
use crate::{Result, StoreError};
use rusqlite::backup::Backup;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::time::Duration;

/// Pages copied per step, and the pause between steps.
const PAGES_PER_STEP: std::os::raw::c_int = 1024;
const PAUSE: Duration = Duration::from_millis(5);

fn open_ro(path: &Path) -> Result<Connection> {
    if !path.exists() {
        return Err(StoreError::Other(format!("{} does not exist", path.display())));
    }
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| StoreError::Other(format!("opening {}: {e}", path.display())))
}

fn copy(from: &Connection, to: &mut Connection, what: &str) -> Result<()> {
    Backup::new(from, to)
        .and_then(|b| b.run_to_completion(PAGES_PER_STEP, PAUSE, None))
        .map_err(|e| StoreError::Other(format!("{what}: {e}")))
}

/// Copies the database at `db` into a new file `dest` (which must not exist).
/// Returns the schema version of the copy.
pub fn backup(db: &Path, dest: &Path) -> Result<i64> {
    if dest.exists() {
        return Err(StoreError::Other(format!("{} already exists; choose a new file", dest.display())));
    }
    let src = open_ro(db)?;
    let tmp = dest.with_extension("partial");
    let _ = std::fs::remove_file(&tmp);
    let mut out = Connection::open(&tmp).map_err(|e| StoreError::Other(format!("creating {}: {e}", tmp.display())))?;
    copy(&src, &mut out, "copying the database")?;
    let version = schema::current_version(&out)?;
    out.execute_batch("PRAGMA journal_mode = DELETE")
        .map_err(|e| StoreError::Other(format!("finishing {}: {e}", tmp.display())))?;
    drop(out);
    std::fs::rename(&tmp, dest).map_err(|e| StoreError::Other(format!("renaming to {}: {e}", dest.display())))?;
    Ok(version)
}

/// Replaces the database at `db` with the backup `file`. The caller makes
/// sure no server uses `db`. Refuses a file that is not a muster database
/// or was written by a newer muster. Returns the backup's schema version
/// (the next `SqliteStore::open` migrates it forward).
pub fn restore(file: &Path, db: &Path) -> Result<i64> {
    let src = open_ro(file)?;
    let has_schema: bool = src
        .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'", [], |r| {
            r.get::<_, i64>(0)
        })
        .map(|n| n > 0)
        .map_err(|e| StoreError::Other(format!("{} is not a SQLite database: {e}", file.display())))?;
    if !has_schema {
        return Err(StoreError::Other(format!("{} is not a muster database (no schema_version)", file.display())));
    }
    let version: i64 = src
        .query_row("SELECT COALESCE(MAX(version), 0) FROM schema_version", [], |r| r.get(0))
        .map_err(|e| StoreError::Other(format!("reading the schema version of {}: {e}", file.display())))?;
    if version > schema::SCHEMA_VERSION {
        return Err(StoreError::TooNew { found: version, supported: schema::SCHEMA_VERSION });
    }
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Other(format!("creating {}: {e}", dir.display())))?;
    }
    let tmp = db.with_extension("restoring");
    let _ = std::fs::remove_file(&tmp);
    let mut out = Connection::open(&tmp).map_err(|e| StoreError::Other(format!("creating {}: {e}", tmp.display())))?;
    copy(&src, &mut out, "restoring the database")?;
    drop(out);
    for suffix in ["-wal", "-shm"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::Other(format!("removing {}: {e}", Path::new(&p).display()))),
        }
    }
    std::fs::rename(&tmp, db).map_err(|e| StoreError::Other(format!("replacing {}: {e}", db.display())))?;
    Ok(version)
}
