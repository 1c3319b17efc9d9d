//! Job state on SQLite: the writes (run by the writer thread inside a
//! group-commit savepoint) and the reads of [`JobStore`].

use super::{sql_err, SqliteStore};
use crate::jobs::{InvocationRow, JobRow, JobStore, JobWrite, TimerRow, TriggerRow};
use crate::Result;
use async_trait::async_trait;
use muster_core::time::{from_micros, to_micros};
use muster_core::Time;
use rusqlite::{params, Connection, OptionalExtension, Row};

/// Returns false when the write's precondition fails.
pub(crate) fn apply(conn: &Connection, w: &JobWrite) -> Result<bool> {
    match w {
        JobWrite::PutJob { row, expect: None } => {
            let n = conn
                .prepare_cached(
                    "INSERT INTO job (job_id, project, version, data) VALUES (?1, ?2, 1, ?3) \
                     ON CONFLICT (job_id) DO NOTHING",
                )
                .and_then(|mut s| s.execute(params![row.job_id, row.project, row.data]))
                .map_err(sql_err("inserting job"))?;
            Ok(n == 1)
        }
        JobWrite::PutJob { row, expect: Some(v) } => {
            let n = conn
                .prepare_cached(
                    "UPDATE job SET project = ?2, version = ?3 + 1, data = ?4 WHERE job_id = ?1 AND version = ?3",
                )
                .and_then(|mut s| s.execute(params![row.job_id, row.project, v, row.data]))
                .map_err(sql_err("updating job"))?;
            Ok(n == 1)
        }
        JobWrite::AddTrigger(t) => {
            conn.prepare_cached(
                "INSERT INTO job_trigger (job_id, trigger_id, created, order_in_batch, consumed_by, consumed_at, data) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (job_id, trigger_id) DO NOTHING",
            )
            .and_then(|mut s| {
                s.execute(params![
                    t.job_id,
                    t.trigger_id,
                    to_micros(t.created),
                    t.order_in_batch,
                    t.consumed_by,
                    t.consumed_at.map(to_micros),
                    t.data
                ])
            })
            .map_err(sql_err("adding trigger"))?;
            Ok(true)
        }
        JobWrite::ConsumeTriggers { job_id, ids, by, at } => {
            let mut st = conn
                .prepare_cached(
                    "UPDATE job_trigger SET consumed_by = ?3, consumed_at = ?4 \
                     WHERE job_id = ?1 AND trigger_id = ?2 AND consumed_by IS NULL",
                )
                .map_err(sql_err("preparing trigger consumption"))?;
            for id in ids {
                let n = st.execute(params![job_id, id, by, to_micros(*at)]).map_err(sql_err("consuming trigger"))?;
                if n != 1 {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        JobWrite::InsertInvocation(r) => {
            let n = conn
                .prepare_cached(
                    "INSERT INTO job_invocation (inv_id, job_id, started, status, finished, mutation_count, aborted_by, data) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (inv_id) DO NOTHING",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        r.inv_id,
                        r.job_id,
                        to_micros(r.started),
                        r.status,
                        r.finished,
                        r.mutation_count,
                        r.aborted_by,
                        r.data
                    ])
                })
                .map_err(sql_err("inserting invocation"))?;
            Ok(n == 1)
        }
        JobWrite::UpdateInvocation(r) => {
            let n = conn
                .prepare_cached(
                    "UPDATE job_invocation SET status = ?3, finished = ?4, mutation_count = ?2 + 1, data = ?5 \
                     WHERE inv_id = ?1 AND mutation_count = ?2",
                )
                .and_then(|mut s| s.execute(params![r.inv_id, r.mutation_count, r.status, r.finished, r.data]))
                .map_err(sql_err("updating invocation"))?;
            Ok(n == 1)
        }
        JobWrite::SetAbortedBy { inv_id, by } => {
            conn.prepare_cached("UPDATE job_invocation SET aborted_by = ?2 WHERE inv_id = ?1")
                .and_then(|mut s| s.execute(params![inv_id, by]))
                .map_err(sql_err("marking invocation aborted"))?;
            Ok(true)
        }
        JobWrite::PutTimer(t) => {
            conn.prepare_cached(
                "INSERT INTO job_timer (timer_id, job_id, inv_id, due, data) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (timer_id) DO NOTHING",
            )
            .and_then(|mut s| s.execute(params![t.timer_id, t.job_id, t.inv_id, to_micros(t.due), t.data]))
            .map_err(sql_err("adding timer"))?;
            Ok(true)
        }
        JobWrite::DeleteTimer(id) => {
            let n = conn
                .prepare_cached("DELETE FROM job_timer WHERE timer_id = ?1")
                .and_then(|mut s| s.execute(params![id]))
                .map_err(sql_err("consuming timer"))?;
            Ok(n == 1)
        }
        JobWrite::PruneTriggers { before } => {
            conn.prepare_cached("DELETE FROM job_trigger WHERE consumed_at IS NOT NULL AND consumed_at < ?1")
                .and_then(|mut s| s.execute(params![to_micros(*before)]))
                .map_err(sql_err("pruning triggers"))?;
            Ok(true)
        }
    }
}

fn job_of(r: &Row) -> rusqlite::Result<JobRow> {
    Ok(JobRow { job_id: r.get(0)?, project: r.get(1)?, version: r.get(2)?, data: r.get(3)? })
}

const TRIGGER_COLS: &str = "job_id, trigger_id, created, order_in_batch, consumed_by, consumed_at, data";

fn trigger_of(r: &Row) -> rusqlite::Result<TriggerRow> {
    Ok(TriggerRow {
        job_id: r.get(0)?,
        trigger_id: r.get(1)?,
        created: from_micros(r.get(2)?),
        order_in_batch: r.get(3)?,
        consumed_by: r.get(4)?,
        consumed_at: r.get::<_, Option<i64>>(5)?.map(from_micros),
        data: r.get(6)?,
    })
}

const INV_COLS: &str = "inv_id, job_id, started, status, finished, mutation_count, aborted_by, data";

fn inv_of(r: &Row) -> rusqlite::Result<InvocationRow> {
    Ok(InvocationRow {
        inv_id: r.get(0)?,
        job_id: r.get(1)?,
        started: from_micros(r.get(2)?),
        status: r.get(3)?,
        finished: r.get(4)?,
        mutation_count: r.get(5)?,
        aborted_by: r.get(6)?,
        data: r.get(7)?,
    })
}

fn timer_of(r: &Row) -> rusqlite::Result<TimerRow> {
    Ok(TimerRow {
        timer_id: r.get(0)?,
        job_id: r.get(1)?,
        inv_id: r.get(2)?,
        due: from_micros(r.get(3)?),
        data: r.get(4)?,
    })
}

fn all<T>(
    c: &Connection,
    sql: &str,
    p: impl rusqlite::Params,
    f: fn(&Row) -> rusqlite::Result<T>,
    ctx: &'static str,
) -> Result<Vec<T>> {
    let mut st = c.prepare_cached(sql).map_err(sql_err(ctx))?;
    let rows = st.query_map(p, f).map_err(sql_err(ctx))?;
    rows.collect::<rusqlite::Result<Vec<T>>>().map_err(sql_err(ctx))
}

#[async_trait]
impl JobStore for SqliteStore {
    async fn list_jobs(&self) -> Result<Vec<JobRow>> {
        self.read(|c| {
            all(c, "SELECT job_id, project, version, data FROM job ORDER BY job_id", [], job_of, "listing jobs")
        })
        .await
    }

    async fn get_job(&self, job_id: &str) -> Result<Option<JobRow>> {
        let id = job_id.to_string();
        self.read(move |c| {
            c.prepare_cached("SELECT job_id, project, version, data FROM job WHERE job_id = ?1")
                .and_then(|mut s| s.query_row(params![id], job_of).optional())
                .map_err(sql_err("reading job"))
        })
        .await
    }

    async fn pending_triggers(&self, job_id: &str) -> Result<Vec<TriggerRow>> {
        let id = job_id.to_string();
        self.read(move |c| {
            let sql = format!(
                "SELECT {TRIGGER_COLS} FROM job_trigger WHERE job_id = ?1 AND consumed_by IS NULL \
                 ORDER BY created, order_in_batch, trigger_id"
            );
            all(c, &sql, params![id], trigger_of, "listing pending triggers")
        })
        .await
    }

    async fn jobs_with_pending_triggers(&self) -> Result<Vec<String>> {
        self.read(|c| {
            all(
                c,
                "SELECT DISTINCT job_id FROM job_trigger WHERE consumed_by IS NULL ORDER BY job_id",
                [],
                |r| r.get(0),
                "listing jobs with triggers",
            )
        })
        .await
    }

    async fn get_trigger(&self, job_id: &str, trigger_id: &str) -> Result<Option<TriggerRow>> {
        let (j, t) = (job_id.to_string(), trigger_id.to_string());
        self.read(move |c| {
            let sql = format!("SELECT {TRIGGER_COLS} FROM job_trigger WHERE job_id = ?1 AND trigger_id = ?2");
            c.prepare_cached(&sql)
                .and_then(|mut s| s.query_row(params![j, t], trigger_of).optional())
                .map_err(sql_err("reading trigger"))
        })
        .await
    }

    async fn get_invocation(&self, inv_id: i64) -> Result<Option<InvocationRow>> {
        self.read(move |c| {
            let sql = format!("SELECT {INV_COLS} FROM job_invocation WHERE inv_id = ?1");
            c.prepare_cached(&sql)
                .and_then(|mut s| s.query_row(params![inv_id], inv_of).optional())
                .map_err(sql_err("reading invocation"))
        })
        .await
    }

    async fn list_invocations(&self, job_id: &str, after: Option<i64>, limit: usize) -> Result<Vec<InvocationRow>> {
        let id = job_id.to_string();
        let lim = if limit == 0 { i64::MAX } else { limit as i64 };
        self.read(move |c| {
            let sql = format!(
                "SELECT {INV_COLS} FROM job_invocation WHERE job_id = ?1 AND inv_id > ?2 ORDER BY inv_id LIMIT ?3"
            );
            all(c, &sql, params![id, after.unwrap_or(i64::MIN), lim], inv_of, "listing invocations")
        })
        .await
    }

    async fn active_invocations(&self) -> Result<Vec<InvocationRow>> {
        self.read(|c| {
            let sql = format!("SELECT {INV_COLS} FROM job_invocation WHERE finished = 0 ORDER BY inv_id");
            all(c, &sql, [], inv_of, "listing active invocations")
        })
        .await
    }

    async fn due_timers(&self, now: Time, limit: usize) -> Result<Vec<TimerRow>> {
        let lim = if limit == 0 { i64::MAX } else { limit as i64 };
        self.read(move |c| {
            all(
                c,
                "SELECT timer_id, job_id, inv_id, due, data FROM job_timer WHERE due <= ?1 ORDER BY due, timer_id LIMIT ?2",
                params![to_micros(now), lim],
                timer_of,
                "listing due timers",
            )
        })
        .await
    }

    async fn invocation_timers(&self, inv_id: i64) -> Result<Vec<TimerRow>> {
        self.read(move |c| {
            all(
                c,
                "SELECT timer_id, job_id, inv_id, due, data FROM job_timer WHERE inv_id = ?1 ORDER BY due, timer_id",
                params![inv_id],
                timer_of,
                "listing invocation timers",
            )
        })
        .await
    }
}
