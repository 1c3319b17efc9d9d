//! The `drain` table (PostgreSQL).

use super::pg_err;
use crate::Result;
use deadpool_postgres::{ClientWrapper, Transaction};
use muster_core::time::to_micros;
use muster_core::Drain;

pub(crate) async fn put(tx: &Transaction<'_>, d: &Drain) -> Result<(), tokio_postgres::Error> {
    let st = tx
        .prepare_cached(
            "INSERT INTO drain (target, reason, created_by, created) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (target) DO UPDATE SET reason = excluded.reason, created_by = excluded.created_by, \
             created = excluded.created",
        )
        .await?;
    tx.execute(&st, &[&d.target.key(), &d.reason, &d.created_by, &to_micros(d.created)]).await?;
    Ok(())
}

pub(crate) async fn delete(tx: &Transaction<'_>, target: &str) -> Result<(), tokio_postgres::Error> {
    let st = tx.prepare_cached("DELETE FROM drain WHERE target = $1").await?;
    tx.execute(&st, &[&target]).await?;
    Ok(())
}

pub(crate) async fn load(c: &ClientWrapper) -> Result<Vec<Drain>> {
    let st = c
        .prepare_cached("SELECT target, reason, created_by, created FROM drain ORDER BY target")
        .await
        .map_err(pg_err("preparing drains read"))?;
    let mut out = Vec::new();
    for row in c.query(&st, &[]).await.map_err(pg_err("reading drains"))? {
        let key: String = row.try_get(0).map_err(pg_err("reading drains"))?;
        let reason: String = row.try_get(1).map_err(pg_err("reading drains"))?;
        let by: String = row.try_get(2).map_err(pg_err("reading drains"))?;
        let created: i64 = row.try_get(3).map_err(pg_err("reading drains"))?;
        out.push(crate::sqlite::drain::decode(&key, reason, by, created)?);
    }
    Ok(out)
}
