//! The notification outbox on PostgreSQL: writes (inside the Txn's
//! transaction) and the reads of [`OutboxStore`].

use super::write::{db, Fail};
use super::{pg_err, PostgresStore};
use crate::outbox::{OutboxRow, OutboxStore, OutboxWrite, DEAD, DELIVERED, PENDING};
use crate::Result;
use async_trait::async_trait;
use deadpool_postgres::Transaction;
use muster_core::time::{from_micros, to_micros};
use muster_core::Time;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

/// Never a conflict (see [`OutboxWrite`]).
pub(crate) async fn apply(tx: &Transaction<'_>, w: &OutboxWrite) -> Result<bool, Fail> {
    let run = |sql: &'static str, ctx: &'static str, p: Vec<Box<dyn ToSql + Sync + Send>>| async move {
        let st = tx.prepare_cached(sql).await.map_err(db(ctx))?;
        let refs: Vec<&(dyn ToSql + Sync)> = p.iter().map(|b| b.as_ref() as &(dyn ToSql + Sync)).collect();
        tx.execute(&st, &refs).await.map_err(db(ctx))?;
        Ok::<_, Fail>(())
    };
    match w {
        OutboxWrite::Enqueue(r) => {
            run(
                "INSERT INTO outbox (delivery_id, sink, topic, subject, event, update_id, created, since, state, \
                 attempts, next_attempt_at, last_error, finished_at, data) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
                 ON CONFLICT (delivery_id) DO NOTHING",
                "enqueueing notification",
                vec![
                    Box::new(r.delivery_id.clone()),
                    Box::new(r.sink.clone()),
                    Box::new(r.topic.clone()),
                    Box::new(r.subject.clone()),
                    Box::new(r.event.clone()),
                    Box::new(r.update_id),
                    Box::new(to_micros(r.created)),
                    Box::new(to_micros(r.since)),
                    Box::new(r.state.clone()),
                    Box::new(r.attempts),
                    Box::new(to_micros(r.next_attempt_at)),
                    Box::new(r.last_error.clone()),
                    Box::new(r.finished_at.map(to_micros)),
                    Box::new(r.data.clone()),
                ],
            )
            .await?
        }
        OutboxWrite::Failed { delivery_id, attempts, next, error } => {
            run(
                "UPDATE outbox SET attempts = $2, next_attempt_at = $3, last_error = $4 \
                 WHERE delivery_id = $1 AND state = $5",
                "recording a failed notification",
                vec![
                    Box::new(delivery_id.clone()),
                    Box::new(*attempts),
                    Box::new(to_micros(*next)),
                    Box::new(error.clone()),
                    Box::new(PENDING),
                ],
            )
            .await?
        }
        OutboxWrite::Delivered { delivery_id, attempts, at } => {
            run(
                "UPDATE outbox SET state = $4, attempts = $2, finished_at = $3, last_error = '' \
                 WHERE delivery_id = $1 AND state = $5",
                "recording a delivered notification",
                vec![
                    Box::new(delivery_id.clone()),
                    Box::new(*attempts),
                    Box::new(to_micros(*at)),
                    Box::new(DELIVERED),
                    Box::new(PENDING),
                ],
            )
            .await?
        }
        OutboxWrite::Dead { delivery_id, attempts, at, error } => {
            run(
                "UPDATE outbox SET state = $5, attempts = $2, finished_at = $3, last_error = $4 \
                 WHERE delivery_id = $1 AND state = $6",
                "recording a dead notification",
                vec![
                    Box::new(delivery_id.clone()),
                    Box::new(*attempts),
                    Box::new(to_micros(*at)),
                    Box::new(error.clone()),
                    Box::new(DEAD),
                    Box::new(PENDING),
                ],
            )
            .await?
        }
        OutboxWrite::Retry { delivery_id, at } => {
            run(
                "UPDATE outbox SET state = $3, since = $2, next_attempt_at = $2, finished_at = NULL \
                 WHERE delivery_id = $1 AND state = $4",
                "retrying a notification",
                vec![Box::new(delivery_id.clone()), Box::new(to_micros(*at)), Box::new(PENDING), Box::new(DEAD)],
            )
            .await?
        }
        OutboxWrite::PruneDelivered { before } => {
            run(
                "DELETE FROM outbox WHERE state = $2 AND finished_at < $1",
                "pruning delivered notifications",
                vec![Box::new(to_micros(*before)), Box::new(DELIVERED)],
            )
            .await?
        }
    }
    Ok(true)
}

const COLS: &str = "delivery_id, sink, topic, subject, event, update_id, created, since, state, attempts, \
                    next_attempt_at, last_error, finished_at, data";

fn row_of(r: &Row) -> Result<OutboxRow> {
    let e = |e: tokio_postgres::Error| crate::StoreError::Other(format!("reading an outbox row: {e}"));
    Ok(OutboxRow {
        delivery_id: r.try_get(0).map_err(e)?,
        sink: r.try_get(1).map_err(e)?,
        topic: r.try_get(2).map_err(e)?,
        subject: r.try_get(3).map_err(e)?,
        event: r.try_get(4).map_err(e)?,
        update_id: r.try_get(5).map_err(e)?,
        created: from_micros(r.try_get(6).map_err(e)?),
        since: from_micros(r.try_get(7).map_err(e)?),
        state: r.try_get(8).map_err(e)?,
        attempts: r.try_get(9).map_err(e)?,
        next_attempt_at: from_micros(r.try_get(10).map_err(e)?),
        last_error: r.try_get(11).map_err(e)?,
        finished_at: r.try_get::<_, Option<i64>>(12).map_err(e)?.map(from_micros),
        data: r.try_get(13).map_err(e)?,
    })
}

fn limit_of(n: usize) -> i64 {
    if n == 0 {
        i64::MAX
    } else {
        n as i64
    }
}

impl PostgresStore {
    async fn outbox_rows(&self, sql: &str, p: &[&(dyn ToSql + Sync)], ctx: &'static str) -> Result<Vec<OutboxRow>> {
        let c = self.client().await?;
        let st = c.prepare_cached(sql).await.map_err(pg_err(ctx))?;
        let rows = c.query(&st, p).await.map_err(pg_err(ctx))?;
        rows.iter().map(row_of).collect()
    }
}

#[async_trait]
impl OutboxStore for PostgresStore {
    async fn due_outbox(&self, now: Time, limit: usize) -> Result<Vec<OutboxRow>> {
        let sql = format!(
            "SELECT {COLS} FROM outbox WHERE state = $1 AND next_attempt_at <= $2 \
             ORDER BY next_attempt_at, delivery_id LIMIT $3"
        );
        self.outbox_rows(&sql, &[&PENDING, &to_micros(now), &limit_of(limit)], "listing due notifications").await
    }

    async fn get_outbox(&self, delivery_id: &str) -> Result<Option<OutboxRow>> {
        let sql = format!("SELECT {COLS} FROM outbox WHERE delivery_id = $1");
        Ok(self.outbox_rows(&sql, &[&delivery_id], "reading notification").await?.into_iter().next())
    }

    async fn list_outbox(&self, state: Option<&str>, limit: usize) -> Result<Vec<OutboxRow>> {
        let lim = limit_of(limit);
        match state {
            Some(s) => {
                let sql = format!(
                    "SELECT {COLS} FROM outbox WHERE state = $1 ORDER BY created DESC, delivery_id DESC LIMIT $2"
                );
                self.outbox_rows(&sql, &[&s, &lim], "listing notifications").await
            }
            None => {
                let sql = format!("SELECT {COLS} FROM outbox ORDER BY created DESC, delivery_id DESC LIMIT $1");
                self.outbox_rows(&sql, &[&lim], "listing notifications").await
            }
        }
    }
}
