//! The notification outbox on SQLite: writes (inside the group-commit
//! savepoint) and the reads of [`OutboxStore`].

use super::{sql_err, SqliteStore};
use crate::outbox::{OutboxRow, OutboxStore, OutboxWrite, DEAD, DELIVERED, PENDING};
use crate::Result;
use async_trait::async_trait;
use muster_core::time::{from_micros, to_micros};
use muster_core::Time;
use rusqlite::{params, Connection, OptionalExtension, Row};

/// Never a conflict (see [`OutboxWrite`]).
pub(crate) fn apply(conn: &Connection, w: &OutboxWrite) -> Result<bool> {
    let run = |sql: &str, p: &[&dyn rusqlite::ToSql], ctx: &'static str| {
        conn.prepare_cached(sql).and_then(|mut s| s.execute(p)).map_err(sql_err(ctx))
    };
    match w {
        OutboxWrite::Enqueue(r) => run(
            "INSERT INTO outbox (delivery_id, sink, topic, subject, event, update_id, created, since, state, \
             attempts, next_attempt_at, last_error, finished_at, data) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) ON CONFLICT (delivery_id) DO NOTHING",
            params![
                r.delivery_id,
                r.sink,
                r.topic,
                r.subject,
                r.event,
                r.update_id,
                to_micros(r.created),
                to_micros(r.since),
                r.state,
                r.attempts,
                to_micros(r.next_attempt_at),
                r.last_error,
                r.finished_at.map(to_micros),
                r.data
            ],
            "enqueueing notification",
        )?,
        OutboxWrite::Failed { delivery_id, attempts, next, error } => run(
            "UPDATE outbox SET attempts = ?2, next_attempt_at = ?3, last_error = ?4 \
             WHERE delivery_id = ?1 AND state = ?5",
            params![delivery_id, attempts, to_micros(*next), error, PENDING],
            "recording a failed notification",
        )?,
        OutboxWrite::Delivered { delivery_id, attempts, at } => run(
            "UPDATE outbox SET state = ?4, attempts = ?2, finished_at = ?3, last_error = '' \
             WHERE delivery_id = ?1 AND state = ?5",
            params![delivery_id, attempts, to_micros(*at), DELIVERED, PENDING],
            "recording a delivered notification",
        )?,
        OutboxWrite::Dead { delivery_id, attempts, at, error } => run(
            "UPDATE outbox SET state = ?5, attempts = ?2, finished_at = ?3, last_error = ?4 \
             WHERE delivery_id = ?1 AND state = ?6",
            params![delivery_id, attempts, to_micros(*at), error, DEAD, PENDING],
            "recording a dead notification",
        )?,
        OutboxWrite::Retry { delivery_id, at } => run(
            "UPDATE outbox SET state = ?3, since = ?2, next_attempt_at = ?2, finished_at = NULL \
             WHERE delivery_id = ?1 AND state = ?4",
            params![delivery_id, to_micros(*at), PENDING, DEAD],
            "retrying a notification",
        )?,
        OutboxWrite::PruneDelivered { before } => run(
            "DELETE FROM outbox WHERE state = ?2 AND finished_at < ?1",
            params![to_micros(*before), DELIVERED],
            "pruning delivered notifications",
        )?,
    };
    Ok(true)
}

const COLS: &str = "delivery_id, sink, topic, subject, event, update_id, created, since, state, attempts, \
                    next_attempt_at, last_error, finished_at, data";

fn row_of(r: &Row) -> rusqlite::Result<OutboxRow> {
    Ok(OutboxRow {
        delivery_id: r.get(0)?,
        sink: r.get(1)?,
        topic: r.get(2)?,
        subject: r.get(3)?,
        event: r.get(4)?,
        update_id: r.get(5)?,
        created: from_micros(r.get(6)?),
        since: from_micros(r.get(7)?),
        state: r.get(8)?,
        attempts: r.get(9)?,
        next_attempt_at: from_micros(r.get(10)?),
        last_error: r.get(11)?,
        finished_at: r.get::<_, Option<i64>>(12)?.map(from_micros),
        data: r.get(13)?,
    })
}

fn all(c: &Connection, sql: &str, p: impl rusqlite::Params, ctx: &'static str) -> Result<Vec<OutboxRow>> {
    let mut st = c.prepare_cached(sql).map_err(sql_err(ctx))?;
    let rows = st.query_map(p, row_of).map_err(sql_err(ctx))?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql_err(ctx))
}

fn limit_of(limit: usize) -> i64 {
    if limit == 0 {
        i64::MAX
    } else {
        limit as i64
    }
}

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn due_outbox(&self, now: Time, limit: usize) -> Result<Vec<OutboxRow>> {
        let lim = limit_of(limit);
        self.read(move |c| {
            let sql = format!(
                "SELECT {COLS} FROM outbox WHERE state = ?1 AND next_attempt_at <= ?2 \
                 ORDER BY next_attempt_at, delivery_id LIMIT ?3"
            );
            all(c, &sql, params![PENDING, to_micros(now), lim], "listing due notifications")
        })
        .await
    }

    async fn get_outbox(&self, delivery_id: &str) -> Result<Option<OutboxRow>> {
        let id = delivery_id.to_string();
        self.read(move |c| {
            c.prepare_cached(&format!("SELECT {COLS} FROM outbox WHERE delivery_id = ?1"))
                .and_then(|mut s| s.query_row(params![id], row_of).optional())
                .map_err(sql_err("reading notification"))
        })
        .await
    }

    async fn list_outbox(&self, state: Option<&str>, limit: usize) -> Result<Vec<OutboxRow>> {
        let state = state.map(str::to_string);
        let lim = limit_of(limit);
        self.read(move |c| match state {
            Some(s) => all(
                c,
                &format!("SELECT {COLS} FROM outbox WHERE state = ?1 ORDER BY created DESC, delivery_id DESC LIMIT ?2"),
                params![s, lim],
                "listing notifications",
            ),
            None => all(
                c,
                &format!("SELECT {COLS} FROM outbox ORDER BY created DESC, delivery_id DESC LIMIT ?1"),
                params![lim],
                "listing notifications",
            ),
        })
        .await
    }
}
