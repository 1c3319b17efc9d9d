//! Job state on PostgreSQL: the writes (inside the Txn's transaction; the
//! compare-and-set `UPDATE`s take row locks, so racing replicas serialize and
//! the loser updates nothing) and the reads of [`JobStore`].

use super::write::{db, Fail};
use super::{pg_err, PostgresStore};
use crate::jobs::{InvocationRow, JobRow, JobStore, JobWrite, TimerRow, TriggerRow};
use crate::Result;
use async_trait::async_trait;
use deadpool_postgres::Transaction;
use muster_core::time::{from_micros, to_micros};
use muster_core::Time;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

/// Returns false when the write's precondition fails.
pub(crate) async fn apply(tx: &Transaction<'_>, w: &JobWrite) -> Result<bool, Fail> {
    let exec = |sql: &'static str, ctx: &'static str| async move {
        let st = tx.prepare_cached(sql).await.map_err(db(ctx))?;
        Ok::<_, Fail>(st)
    };
    match w {
        JobWrite::PutJob { row, expect: None } => {
            let st = exec(
                "INSERT INTO job (job_id, project, version, data) VALUES ($1, $2, 1, $3) ON CONFLICT (job_id) DO NOTHING",
                "preparing job insert",
            )
            .await?;
            let n = tx.execute(&st, &[&row.job_id, &row.project, &row.data]).await.map_err(db("inserting job"))?;
            Ok(n == 1)
        }
        JobWrite::PutJob { row, expect: Some(v) } => {
            let st = exec(
                "UPDATE job SET project = $2, version = $3 + 1, data = $4 WHERE job_id = $1 AND version = $3",
                "preparing job update",
            )
            .await?;
            let n = tx.execute(&st, &[&row.job_id, &row.project, v, &row.data]).await.map_err(db("updating job"))?;
            Ok(n == 1)
        }
        JobWrite::AddTrigger(t) => {
            let st = exec(
                "INSERT INTO job_trigger (job_id, trigger_id, created, order_in_batch, consumed_by, consumed_at, data) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (job_id, trigger_id) DO NOTHING",
                "preparing trigger insert",
            )
            .await?;
            tx.execute(
                &st,
                &[
                    &t.job_id,
                    &t.trigger_id,
                    &to_micros(t.created),
                    &t.order_in_batch,
                    &t.consumed_by,
                    &t.consumed_at.map(to_micros),
                    &t.data,
                ],
            )
            .await
            .map_err(db("adding trigger"))?;
            Ok(true)
        }
        JobWrite::ConsumeTriggers { job_id, ids, by, at } => {
            let st = exec(
                "UPDATE job_trigger SET consumed_by = $3, consumed_at = $4 \
                 WHERE job_id = $1 AND trigger_id = $2 AND consumed_by IS NULL",
                "preparing trigger consumption",
            )
            .await?;
            for id in ids {
                let n = tx.execute(&st, &[job_id, id, by, &to_micros(*at)]).await.map_err(db("consuming trigger"))?;
                if n != 1 {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        JobWrite::InsertInvocation(r) => {
            let st = exec(
                "INSERT INTO job_invocation (inv_id, job_id, started, status, finished, mutation_count, aborted_by, data) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (inv_id) DO NOTHING",
                "preparing invocation insert",
            )
            .await?;
            let n = tx
                .execute(
                    &st,
                    &[
                        &r.inv_id,
                        &r.job_id,
                        &to_micros(r.started),
                        &r.status,
                        &r.finished,
                        &r.mutation_count,
                        &r.aborted_by,
                        &r.data,
                    ],
                )
                .await
                .map_err(db("inserting invocation"))?;
            Ok(n == 1)
        }
        JobWrite::UpdateInvocation(r) => {
            let st = exec(
                "UPDATE job_invocation SET status = $3, finished = $4, mutation_count = $2 + 1, data = $5 \
                 WHERE inv_id = $1 AND mutation_count = $2",
                "preparing invocation update",
            )
            .await?;
            let n = tx
                .execute(&st, &[&r.inv_id, &r.mutation_count, &r.status, &r.finished, &r.data])
                .await
                .map_err(db("updating invocation"))?;
            Ok(n == 1)
        }
        JobWrite::SetAbortedBy { inv_id, by } => {
            let st =
                exec("UPDATE job_invocation SET aborted_by = $2 WHERE inv_id = $1", "preparing abort mark").await?;
            tx.execute(&st, &[inv_id, by]).await.map_err(db("marking invocation aborted"))?;
            Ok(true)
        }
        JobWrite::PutTimer(t) => {
            let st = exec(
                "INSERT INTO job_timer (timer_id, job_id, inv_id, due, data) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (timer_id) DO NOTHING",
                "preparing timer insert",
            )
            .await?;
            tx.execute(&st, &[&t.timer_id, &t.job_id, &t.inv_id, &to_micros(t.due), &t.data])
                .await
                .map_err(db("adding timer"))?;
            Ok(true)
        }
        JobWrite::DeleteTimer(id) => {
            let st = exec("DELETE FROM job_timer WHERE timer_id = $1", "preparing timer delete").await?;
            let n = tx.execute(&st, &[id]).await.map_err(db("consuming timer"))?;
            Ok(n == 1)
        }
        JobWrite::PruneTriggers { before } => {
            let st = exec(
                "DELETE FROM job_trigger WHERE consumed_at IS NOT NULL AND consumed_at < $1",
                "preparing trigger prune",
            )
            .await?;
            tx.execute(&st, &[&to_micros(*before)]).await.map_err(db("pruning triggers"))?;
            Ok(true)
        }
    }
}

fn get<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a Row, i: usize) -> Result<T> {
    row.try_get(i).map_err(pg_err("decoding job row"))
}

fn job_of(r: &Row) -> Result<JobRow> {
    Ok(JobRow { job_id: get(r, 0)?, project: get(r, 1)?, version: get(r, 2)?, data: get(r, 3)? })
}

const TRIGGER_COLS: &str = "job_id, trigger_id, created, order_in_batch, consumed_by, consumed_at, data";

fn trigger_of(r: &Row) -> Result<TriggerRow> {
    Ok(TriggerRow {
        job_id: get(r, 0)?,
        trigger_id: get(r, 1)?,
        created: from_micros(get(r, 2)?),
        order_in_batch: get(r, 3)?,
        consumed_by: get(r, 4)?,
        consumed_at: get::<Option<i64>>(r, 5)?.map(from_micros),
        data: get(r, 6)?,
    })
}

const INV_COLS: &str = "inv_id, job_id, started, status, finished, mutation_count, aborted_by, data";

fn inv_of(r: &Row) -> Result<InvocationRow> {
    Ok(InvocationRow {
        inv_id: get(r, 0)?,
        job_id: get(r, 1)?,
        started: from_micros(get(r, 2)?),
        status: get(r, 3)?,
        finished: get(r, 4)?,
        mutation_count: get(r, 5)?,
        aborted_by: get(r, 6)?,
        data: get(r, 7)?,
    })
}

fn timer_of(r: &Row) -> Result<TimerRow> {
    Ok(TimerRow {
        timer_id: get(r, 0)?,
        job_id: get(r, 1)?,
        inv_id: get(r, 2)?,
        due: from_micros(get(r, 3)?),
        data: get(r, 4)?,
    })
}

impl PostgresStore {
    async fn rows<T>(
        &self,
        sql: &str,
        p: &[&(dyn ToSql + Sync)],
        f: fn(&Row) -> Result<T>,
        ctx: &'static str,
    ) -> Result<Vec<T>> {
        let c = self.client().await?;
        let st = c.prepare_cached(sql).await.map_err(pg_err(ctx))?;
        let rows = c.query(&st, p).await.map_err(pg_err(ctx))?;
        rows.iter().map(f).collect()
    }

    async fn row<T>(
        &self,
        sql: &str,
        p: &[&(dyn ToSql + Sync)],
        f: fn(&Row) -> Result<T>,
        ctx: &'static str,
    ) -> Result<Option<T>> {
        Ok(self.rows(sql, p, f, ctx).await?.into_iter().next())
    }
}

fn limit(n: usize) -> i64 {
    if n == 0 {
        i64::MAX
    } else {
        n as i64
    }
}

#[async_trait]
impl JobStore for PostgresStore {
    async fn list_jobs(&self) -> Result<Vec<JobRow>> {
        self.rows("SELECT job_id, project, version, data FROM job ORDER BY job_id", &[], job_of, "listing jobs").await
    }

    async fn get_job(&self, job_id: &str) -> Result<Option<JobRow>> {
        self.row("SELECT job_id, project, version, data FROM job WHERE job_id = $1", &[&job_id], job_of, "reading job")
            .await
    }

    async fn pending_triggers(&self, job_id: &str) -> Result<Vec<TriggerRow>> {
        let sql = format!(
            "SELECT {TRIGGER_COLS} FROM job_trigger WHERE job_id = $1 AND consumed_by IS NULL \
             ORDER BY created, order_in_batch, trigger_id"
        );
        self.rows(&sql, &[&job_id], trigger_of, "listing pending triggers").await
    }

    async fn jobs_with_pending_triggers(&self) -> Result<Vec<String>> {
        self.rows(
            "SELECT DISTINCT job_id FROM job_trigger WHERE consumed_by IS NULL ORDER BY job_id",
            &[],
            |r| get(r, 0),
            "listing jobs with triggers",
        )
        .await
    }

    async fn get_trigger(&self, job_id: &str, trigger_id: &str) -> Result<Option<TriggerRow>> {
        let sql = format!("SELECT {TRIGGER_COLS} FROM job_trigger WHERE job_id = $1 AND trigger_id = $2");
        self.row(&sql, &[&job_id, &trigger_id], trigger_of, "reading trigger").await
    }

    async fn get_invocation(&self, inv_id: i64) -> Result<Option<InvocationRow>> {
        let sql = format!("SELECT {INV_COLS} FROM job_invocation WHERE inv_id = $1");
        self.row(&sql, &[&inv_id], inv_of, "reading invocation").await
    }

    async fn list_invocations(&self, job_id: &str, after: Option<i64>, lim: usize) -> Result<Vec<InvocationRow>> {
        let sql =
            format!("SELECT {INV_COLS} FROM job_invocation WHERE job_id = $1 AND inv_id > $2 ORDER BY inv_id LIMIT $3");
        self.rows(&sql, &[&job_id, &after.unwrap_or(i64::MIN), &limit(lim)], inv_of, "listing invocations").await
    }

    async fn active_invocations(&self) -> Result<Vec<InvocationRow>> {
        let sql = format!("SELECT {INV_COLS} FROM job_invocation WHERE NOT finished ORDER BY inv_id");
        self.rows(&sql, &[], inv_of, "listing active invocations").await
    }

    async fn due_timers(&self, now: Time, lim: usize) -> Result<Vec<TimerRow>> {
        self.rows(
            "SELECT timer_id, job_id, inv_id, due, data FROM job_timer WHERE due <= $1 ORDER BY due, timer_id LIMIT $2",
            &[&to_micros(now), &limit(lim)],
            timer_of,
            "listing due timers",
        )
        .await
    }

    async fn invocation_timers(&self, inv_id: i64) -> Result<Vec<TimerRow>> {
        self.rows(
            "SELECT timer_id, job_id, inv_id, due, data FROM job_timer WHERE inv_id = $1 ORDER BY due, timer_id",
            &[&inv_id],
            timer_of,
            "listing invocation timers",
        )
        .await
    }
}
