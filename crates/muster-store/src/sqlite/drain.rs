//! The `drain` table (SQLite).

use super::sql_err;
use crate::{Result, StoreError};
use muster_core::time::{from_micros, to_micros};
use muster_core::{Drain, DrainTarget};
use rusqlite::{params, Connection};

pub(crate) fn put(conn: &Connection, d: &Drain) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO drain (target, reason, created_by, created) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (target) DO UPDATE SET reason = excluded.reason, created_by = excluded.created_by, \
         created = excluded.created",
    )
    .and_then(|mut s| s.execute(params![d.target.key(), d.reason, d.created_by, to_micros(d.created)]))
    .map_err(sql_err("putting drain"))?;
    Ok(())
}

pub(crate) fn delete(conn: &Connection, target: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM drain WHERE target = ?1")
        .and_then(|mut s| s.execute(params![target]))
        .map_err(sql_err("deleting drain"))?;
    Ok(())
}

pub(crate) fn load(conn: &Connection) -> Result<Vec<Drain>> {
    let mut st = conn
        .prepare_cached("SELECT target, reason, created_by, created FROM drain ORDER BY target")
        .map_err(sql_err("preparing drains read"))?;
    let rows = st
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get::<_, i64>(3)?)))
        .map_err(sql_err("reading drains"))?;
    let mut out = Vec::new();
    for row in rows {
        let (key, reason, created_by, created) = row.map_err(sql_err("reading drains"))?;
        out.push(decode(&key, reason, created_by, created)?);
    }
    Ok(out)
}

/// A drain row back into the domain type (shared with PostgreSQL).
pub(crate) fn decode(key: &str, reason: String, created_by: String, created: i64) -> Result<Drain> {
    let target = DrainTarget::from_key(key).ok_or_else(|| StoreError::Other(format!("bad drain target {key:?}")))?;
    Ok(Drain { target, reason, created_by, created: from_micros(created) })
}
