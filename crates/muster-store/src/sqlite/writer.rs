//! The single writer thread and its group commit.
//!
//! One `std::thread` owns the only write connection. Callers send a
//! [`Job`] over a channel with a oneshot for the reply. The thread drains
//! whatever is queued (up to [`BATCH_CAP`]), opens one `BEGIN IMMEDIATE`
//! transaction, runs each job inside its own `SAVEPOINT` (a failed
//! precondition or SQL error rolls back that job alone), commits once (one
//! fsync) and only then replies to every waiter.

use super::{blob, sql_err};
use crate::shared::ResultColumns;
use crate::{CommitOutcome, Result, StoreError, Txn, Write};
use muster_core::time::to_micros;
use muster_core::{TaskId, TaskResult, Time};
use rusqlite::{params, Connection, OptionalExtension};
use std::sync::mpsc::{Receiver, TryRecvError};
use tokio::sync::oneshot;

/// At most this many jobs share one transaction.
pub(crate) const BATCH_CAP: usize = 512;

/// Work for the writer thread.
pub(crate) enum Job {
    Commit(Txn, oneshot::Sender<Result<CommitOutcome>>),
    Evict {
        before: Time,
        limit: usize,
        reply: oneshot::Sender<Result<u64>>,
    },
    /// Reads back the writer connection's durability pragmas.
    Durability(oneshot::Sender<Result<Vec<(String, String)>>>),
}

/// What one job produced inside the batch, before the final COMMIT.
enum Done {
    Commit(oneshot::Sender<Result<CommitOutcome>>, Result<CommitOutcome>),
    Evict(oneshot::Sender<Result<u64>>, Result<u64>),
    Durability(oneshot::Sender<Result<Vec<(String, String)>>>, Result<Vec<(String, String)>>),
}

impl Done {
    /// Replies; a failed COMMIT turns every applied job into an error.
    fn reply(self, commit_err: Option<&str>) {
        // A dropped receiver means the caller gave up; nothing to do.
        match self {
            Done::Commit(tx, r) => {
                let r = match (commit_err, r) {
                    (Some(e), Ok(CommitOutcome::Committed)) => Err(StoreError::Other(e.to_string())),
                    (_, r) => r,
                };
                let _ = tx.send(r);
            }
            Done::Evict(tx, r) => {
                let r = match (commit_err, r) {
                    (Some(e), Ok(_)) => Err(StoreError::Other(e.to_string())),
                    (_, r) => r,
                };
                let _ = tx.send(r);
            }
            Done::Durability(tx, r) => {
                let _ = tx.send(r);
            }
        }
    }
}

/// Runs until every sender is dropped.
pub(crate) fn run(conn: Connection, rx: Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut batch = Vec::with_capacity(16);
        batch.push(first);
        while batch.len() < BATCH_CAP {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => break,
            }
        }
        run_batch(&conn, batch);
    }
    tracing::debug!("sqlite writer: all senders gone, stopping");
}

pub(crate) fn run_batch(conn: &Connection, batch: Vec<Job>) {
    metrics::histogram!("muster_store_batch_size").record(batch.len() as f64);
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        let msg = format!("beginning write transaction: {e}");
        tracing::error!("{msg}");
        for job in batch {
            fail(job, &msg);
        }
        return;
    }
    let mut done = Vec::with_capacity(batch.len());
    let mut broken: Option<String> = None;
    for job in batch {
        if let Some(msg) = &broken {
            fail(job, msg);
            continue;
        }
        if let Err(e) = exec(conn, "SAVEPOINT job") {
            let msg = format!("opening savepoint: {e}");
            fail(job, &msg);
            broken = Some(msg);
            continue;
        }
        let (d, keep) = match job {
            Job::Commit(txn, tx) => {
                let r = apply_txn(conn, &txn);
                let keep = matches!(r, Ok(CommitOutcome::Committed));
                (Done::Commit(tx, r), keep)
            }
            Job::Evict { before, limit, reply } => {
                let r = evict(conn, before, limit);
                let keep = r.is_ok();
                (Done::Evict(reply, r), keep)
            }
            Job::Durability(reply) => (Done::Durability(reply, durability(conn)), true),
        };
        let end =
            if keep { exec(conn, "RELEASE job") } else { exec(conn, "ROLLBACK TO job").and(exec(conn, "RELEASE job")) };
        if let Err(e) = end {
            broken = Some(format!("closing savepoint: {e}"));
        }
        done.push(d);
    }
    let commit_err = match &broken {
        Some(msg) => {
            let _ = exec(conn, "ROLLBACK");
            Some(msg.clone())
        }
        None => match exec(conn, "COMMIT") {
            Ok(()) => None,
            Err(e) => {
                let _ = exec(conn, "ROLLBACK");
                Some(format!("committing: {e}"))
            }
        },
    };
    if let Some(msg) = &commit_err {
        tracing::error!("sqlite group commit failed: {msg}");
    }
    for d in done {
        d.reply(commit_err.as_deref());
    }
}

/// Runs one statement through the statement cache: the transaction control
/// statements run for every job, and re-parsing them showed in the profile.
fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn fail(job: Job, msg: &str) {
    match job {
        Job::Commit(_, tx) => {
            let _ = tx.send(Err(StoreError::Other(msg.to_string())));
        }
        Job::Evict { reply, .. } => {
            let _ = reply.send(Err(StoreError::Other(msg.to_string())));
        }
        Job::Durability(reply) => {
            let _ = reply.send(Err(StoreError::Other(msg.to_string())));
        }
    }
}

/// `journal_mode` and `synchronous` as this connection runs with them.
fn durability(conn: &Connection) -> Result<Vec<(String, String)>> {
    let read = |pragma: &str| -> Result<String> {
        conn.query_row(&format!("PRAGMA {pragma}"), [], |r| r.get::<_, rusqlite::types::Value>(0))
            .map(|v| match v {
                rusqlite::types::Value::Text(t) => t.to_lowercase(),
                rusqlite::types::Value::Integer(i) => i.to_string(),
                other => format!("{other:?}"),
            })
            .map_err(|e| StoreError::Other(format!("reading PRAGMA {pragma}: {e}")))
    };
    let synchronous = match read("synchronous")?.as_str() {
        "0" => "off".to_string(),
        "1" => "normal".to_string(),
        "2" => "full".to_string(),
        "3" => "extra".to_string(),
        other => other.to_string(),
    };
    Ok(vec![("journal_mode".into(), read("journal_mode")?), ("synchronous".into(), synchronous)])
}

/// Applies every write; stops at the first failed precondition.
fn apply_txn(conn: &Connection, txn: &Txn) -> Result<CommitOutcome> {
    for (index, w) in txn.writes.iter().enumerate() {
        if !apply(conn, w)? {
            return Ok(CommitOutcome::Conflict { index });
        }
    }
    Ok(CommitOutcome::Committed)
}

/// Joins tags for the `task_result.tags` column (change detection).
fn put_tags(conn: &Connection, id: TaskId, tags: &[String]) -> Result<()> {
    let mut st = conn
        .prepare_cached("INSERT OR IGNORE INTO task_tag (tag, task_id) VALUES (?1, ?2)")
        .map_err(sql_err("preparing tag insert"))?;
    for tag in tags {
        st.execute(params![tag, id.0]).map_err(sql_err("inserting task tag"))?;
    }
    Ok(())
}

/// Returns false when the write's precondition fails.
fn apply(conn: &Connection, w: &Write) -> Result<bool> {
    match w {
        Write::InsertTask { request, result } => {
            let req_blob = blob::encode(&blob::request_b(request))?;
            let n = conn
                .prepare_cached(
                    "INSERT INTO task_request (id, created, blob) VALUES (?1, ?2, ?3) ON CONFLICT (id) DO NOTHING",
                )
                .and_then(|mut s| s.execute(params![request.id.0, to_micros(request.created), req_blob]))
                .map_err(sql_err("inserting task request"))?;
            if n == 0 {
                return Ok(false);
            }
            if !insert_result(conn, result)? {
                return Ok(false);
            }
            put_tags(conn, result.id, &result.tags)?;
            Ok(true)
        }
        Write::UpdateResult(r) => update_result(conn, r),
        Write::PutRequestUuid { key, task, created } => {
            let n = conn
                .prepare_cached(
                    "INSERT INTO request_uuid (key, task_id, created) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (key) DO NOTHING",
                )
                .and_then(|mut s| s.execute(params![key, task.0, to_micros(*created)]))
                .map_err(sql_err("inserting request uuid"))?;
            Ok(n == 1)
        }
        Write::WriteOutput { task, offset, data } => {
            write_output(conn, *task, *offset, data)?;
            Ok(true)
        }
        Write::PutBot(b) => {
            let bytes = blob::encode_bot(b)?;
            conn.prepare_cached(
                "INSERT INTO bot (bot_id, blob) VALUES (?1, ?2) ON CONFLICT (bot_id) DO UPDATE SET blob = excluded.blob",
            )
            .and_then(|mut s| s.execute(params![b.bot_id, bytes]))
            .map_err(sql_err("putting bot"))?;
            Ok(true)
        }
        Write::DeleteBot(id) => {
            conn.prepare_cached("DELETE FROM bot WHERE bot_id = ?1")
                .and_then(|mut s| s.execute(params![id]))
                .map_err(sql_err("deleting bot"))?;
            Ok(true)
        }
        Write::AppendEvent(e) => {
            let bytes = blob::encode_event(e)?;
            conn.prepare_cached("INSERT INTO bot_event (bot_id, ts, blob) VALUES (?1, ?2, ?3)")
                .and_then(|mut s| s.execute(params![e.bot_id, to_micros(e.ts), bytes]))
                .map_err(sql_err("appending bot event"))?;
            Ok(true)
        }
        Write::PutMetaIfAbsent { name, value } => {
            conn.prepare_cached("INSERT INTO meta (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING")
                .and_then(|mut s| s.execute(params![name, value]))
                .map_err(sql_err("putting meta"))?;
            Ok(true)
        }
        Write::PutDrain(d) => super::drain::put(conn, d).map(|_| true),
        Write::DeleteDrain(target) => super::drain::delete(conn, target).map(|_| true),
        Write::PutApiToken(t) => {
            let n = conn
                .prepare_cached(
                    "INSERT INTO api_token (id, identity, secret_sha256, description, created_by, created_at, \
                     expires_at, last_used_at, revoked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
                     ON CONFLICT (id) DO NOTHING",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        t.id,
                        t.identity,
                        t.secret_sha256,
                        t.description,
                        t.created_by,
                        to_micros(t.created_at),
                        to_micros(t.expires_at),
                        t.last_used_at.map(to_micros),
                        t.revoked_at.map(to_micros)
                    ])
                })
                .map_err(sql_err("inserting api token"))?;
            Ok(n == 1)
        }
        Write::RevokeApiToken { id, at } => {
            conn.prepare_cached("UPDATE api_token SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL")
                .and_then(|mut s| s.execute(params![id, to_micros(*at)]))
                .map_err(sql_err("revoking api token"))?;
            Ok(true)
        }
        Write::TouchApiToken { id, at } => {
            conn.prepare_cached("UPDATE api_token SET last_used_at = ?2 WHERE id = ?1")
                .and_then(|mut s| s.execute(params![id, to_micros(*at)]))
                .map_err(sql_err("touching api token"))?;
            Ok(true)
        }
        Write::PutUiSession(u) => {
            let n = conn
                .prepare_cached(
                    "INSERT INTO ui_session (id_sha256, identity, created_at, expires_at) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (id_sha256) DO NOTHING",
                )
                .and_then(|mut s| {
                    s.execute(params![u.id_sha256, u.identity, to_micros(u.created_at), to_micros(u.expires_at)])
                })
                .map_err(sql_err("inserting ui session"))?;
            Ok(n == 1)
        }
        Write::DeleteUiSession { id_sha256 } => {
            conn.prepare_cached("DELETE FROM ui_session WHERE id_sha256 = ?1")
                .and_then(|mut s| s.execute(params![id_sha256]))
                .map_err(sql_err("deleting ui session"))?;
            Ok(true)
        }
        Write::PurgeUiSessions { before } => {
            conn.prepare_cached("DELETE FROM ui_session WHERE expires_at < ?1")
                .and_then(|mut s| s.execute(params![to_micros(*before)]))
                .map_err(sql_err("purging ui sessions"))?;
            Ok(true)
        }
        Write::PutBotToken(t) => {
            conn.prepare_cached(
                "INSERT INTO bot_token (id, host, secret_sha256, created, created_by, revoked) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id) DO NOTHING",
            )
            .and_then(|mut s| {
                s.execute(params![
                    t.id,
                    t.host,
                    t.secret_sha256,
                    to_micros(t.created),
                    t.created_by,
                    t.revoked.map(to_micros)
                ])
            })
            .map_err(sql_err("putting bot token"))?;
            Ok(true)
        }
        Write::RevokeBotToken { id, at } => {
            conn.prepare_cached("UPDATE bot_token SET revoked = ?2 WHERE id = ?1 AND revoked IS NULL")
                .and_then(|mut s| s.execute(params![id, to_micros(*at)]))
                .map_err(sql_err("revoking bot token"))?;
            Ok(true)
        }
        Write::UseBootstrapToken { token_sha256, bot_id, bot_token_id, at } => {
            let n = conn
                .prepare_cached(
                    "INSERT INTO bootstrap_use (token_sha256, bot_id, bot_token_id, used) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (token_sha256) DO NOTHING",
                )
                .and_then(|mut s| s.execute(params![token_sha256, bot_id, bot_token_id, to_micros(*at)]))
                .map_err(sql_err("recording bootstrap token use"))?;
            Ok(n == 1)
        }
        Write::Jobs(j) => super::jobs::apply(conn, j),
        Write::Outbox(o) => super::outbox::apply(conn, o),
    }
}

/// The bound values of a result row (see `ResultColumns`), then the blob.
// `&Vec<u8>`, not `&[u8]`: an unsized slice cannot become `&dyn ToSql`.
#[allow(clippy::ptr_arg)]
fn result_params<'a>(c: &'a ResultColumns, blob: &'a Vec<u8>) -> [&'a dyn rusqlite::ToSql; 13] {
    [
        &c.id,
        &c.version,
        &c.state,
        &c.failure,
        &c.try_number,
        &c.created,
        &c.started,
        &c.completed,
        &c.abandoned,
        &c.bot_id,
        &c.dedup_hash,
        &c.tags,
        blob,
    ]
}

fn insert_result(conn: &Connection, r: &TaskResult) -> Result<bool> {
    let bytes = blob::encode_result(r)?;
    let cols = ResultColumns::of(r);
    let n = conn
        .prepare_cached(
            "INSERT INTO task_result (id, version, state, failure, try_number, created, started, completed, \
             abandoned, bot_id, dedup_hash, tags, blob) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) ON CONFLICT (id) DO NOTHING",
        )
        .and_then(|mut s| s.execute(result_params(&cols, &bytes)))
        .map_err(sql_err("inserting task result"))?;
    Ok(n == 1)
}

fn update_result(conn: &Connection, r: &TaskResult) -> Result<bool> {
    let old_tags: Option<String> = conn
        .prepare_cached("SELECT tags FROM task_result WHERE id = ?1 AND version = ?2")
        .and_then(|mut s| s.query_row(params![r.id.0, r.version], |row| row.get(0)).optional())
        .map_err(sql_err("reading task result version"))?;
    let Some(old_tags) = old_tags else {
        return Ok(false);
    };
    let bytes = blob::encode_result(r)?;
    let cols = ResultColumns::of(r);
    let n = conn
        .prepare_cached(
            "UPDATE task_result SET version = ?2 + 1, state = ?3, failure = ?4, try_number = ?5, created = ?6, \
             started = ?7, completed = ?8, abandoned = ?9, bot_id = ?10, dedup_hash = ?11, tags = ?12, blob = ?13 \
             WHERE id = ?1 AND version = ?2",
        )
        .and_then(|mut s| s.execute(result_params(&cols, &bytes)))
        .map_err(sql_err("updating task result"))?;
    let new_tags = cols.tags;
    if n != 1 {
        return Ok(false);
    }
    if old_tags != new_tags {
        conn.prepare_cached("DELETE FROM task_tag WHERE task_id = ?1")
            .and_then(|mut s| s.execute(params![r.id.0]))
            .map_err(sql_err("deleting task tags"))?;
        put_tags(conn, r.id, &r.tags)?;
    }
    Ok(true)
}

/// Writes `data` at `offset`, chunk by chunk. A chunk row holds the bytes
/// of its chunk up to the highest byte written in it (zero-filled below);
/// missing chunks read as zeros. Bytes past the cap are dropped.
fn write_output(conn: &Connection, task: TaskId, offset: u64, data: &[u8]) -> Result<()> {
    for w in crate::shared::chunk_writes(offset, data) {
        let existing: Option<Vec<u8>> = conn
            .prepare_cached("SELECT data FROM output_chunk WHERE task_id = ?1 AND idx = ?2")
            .and_then(|mut s| s.query_row(params![task.0, w.idx as i64], |row| row.get(0)).optional())
            .map_err(sql_err("reading output chunk"))?;
        if let Some(buf) = crate::shared::merge_chunk(existing, &w) {
            conn.prepare_cached(
                "INSERT INTO output_chunk (task_id, idx, data) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (task_id, idx) DO UPDATE SET data = excluded.data",
            )
            .and_then(|mut s| s.execute(params![task.0, w.idx as i64, buf]))
            .map_err(sql_err("writing output chunk"))?;
        }
    }
    Ok(())
}

/// Deletes up to `limit` finished tasks created before `before` (with their
/// tags, output and request uuids) and up to `limit` bot events older than
/// `before`.
fn evict(conn: &Connection, before: Time, limit: usize) -> Result<u64> {
    let lim = if limit == 0 { i64::MAX } else { limit as i64 };
    let ids: Vec<i64> = conn
        .prepare_cached(
            "SELECT id FROM task_result WHERE created < ?1 AND state NOT IN (16, 32) ORDER BY created LIMIT ?2",
        )
        .and_then(|mut s| {
            s.query_map(params![to_micros(before), lim], |row| row.get::<_, i64>(0))
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<i64>>>())
        })
        .map_err(sql_err("selecting tasks to evict"))?;
    let mut deleted = 0u64;
    for id in ids {
        for sql in [
            "DELETE FROM task_tag WHERE task_id = ?1",
            "DELETE FROM output_chunk WHERE task_id = ?1",
            "DELETE FROM request_uuid WHERE task_id = ?1",
            "DELETE FROM task_request WHERE id = ?1",
        ] {
            conn.prepare_cached(sql).and_then(|mut s| s.execute(params![id])).map_err(sql_err("evicting task"))?;
        }
        deleted += conn
            .prepare_cached("DELETE FROM task_result WHERE id = ?1")
            .and_then(|mut s| s.execute(params![id]))
            .map_err(sql_err("evicting task result"))? as u64;
    }
    deleted += conn
        .prepare_cached(
            "DELETE FROM bot_event WHERE id IN (SELECT id FROM bot_event WHERE ts < ?1 ORDER BY ts LIMIT ?2)",
        )
        .and_then(|mut s| s.execute(params![to_micros(before), lim]))
        .map_err(sql_err("evicting bot events"))? as u64;
    Ok(deleted)
}
