//! Transactional writes: one database transaction per [`Txn`].
//!
//! Each write runs in order inside `BEGIN ... COMMIT` (READ COMMITTED). A
//! failed precondition (existing task id or idempotency key, stale result
//! version) rolls the whole transaction back and is reported as
//! [`CommitOutcome::Conflict`]. Row locks taken by the compare-and-set make
//! racing claims serialize: the loser re-reads the new version and updates
//! nothing. Output writes to one task are serialized by a transaction-scoped
//! advisory lock on the task id. Deadlocks and serialization failures are
//! retried a few times before they surface as errors.

use super::blob;
use crate::shared::ResultColumns;
use crate::{CommitOutcome, Result, StoreError, Txn, Write};
use deadpool_postgres::{Object, Transaction};
use muster_core::state::TaskState;
use muster_core::time::to_micros;
use muster_core::{TaskId, TaskResult, Time};
use tokio_postgres::error::SqlState;

/// Attempts of a transaction that hit a deadlock or serialization failure.
const ATTEMPTS: usize = 5;

/// Why a transaction attempt failed.
pub(crate) enum Fail {
    /// A transient conflict between transactions: try again.
    Retry(String),
    Fatal(StoreError),
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Fatal(e)
    }
}

impl Fail {
    fn into_store(self) -> StoreError {
        match self {
            Fail::Retry(m) => StoreError::Other(m),
            Fail::Fatal(e) => e,
        }
    }
}

/// Maps a driver error, marking deadlocks and serialization failures.
pub(crate) fn db(ctx: &'static str) -> impl Fn(tokio_postgres::Error) -> Fail {
    move |e| {
        let msg = format!("{ctx}: {e}");
        match e.code() {
            Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE => {
                Fail::Retry(msg)
            }
            _ => Fail::Fatal(StoreError::Other(msg)),
        }
    }
}

/// A JSON blob as the TEXT stored in the row.
pub(crate) fn text(bytes: Vec<u8>) -> Result<String> {
    String::from_utf8(bytes).map_err(|e| StoreError::Other(format!("encoding blob as text: {e}")))
}

/// Applies `txn` atomically; retries transient failures. `announce` are the
/// NOTIFY payloads sent inside the transaction (delivered only on commit).
pub(crate) async fn commit(client: &mut Object, txn: &Txn, announce: &[String]) -> Result<CommitOutcome> {
    let mut attempt = 1;
    loop {
        match commit_once(client, txn, announce).await {
            Ok(o) => return Ok(o),
            Err(Fail::Retry(msg)) if attempt < ATTEMPTS => {
                tracing::debug!(attempt, "postgres commit retried: {msg}");
                attempt += 1;
            }
            Err(f) => return Err(f.into_store()),
        }
    }
}

async fn commit_once(client: &mut Object, txn: &Txn, announce: &[String]) -> Result<CommitOutcome, Fail> {
    let tx = client.transaction().await.map_err(db("beginning transaction"))?;
    for (index, w) in txn.writes.iter().enumerate() {
        // On error the dropped transaction rolls back.
        if !apply(&tx, w).await? {
            tx.rollback().await.map_err(db("rolling back a conflicting transaction"))?;
            return Ok(CommitOutcome::Conflict { index });
        }
    }
    if !announce.is_empty() {
        let st = tx.prepare_cached("SELECT pg_notify($1, $2)").await.map_err(db("preparing notify"))?;
        for payload in announce {
            tx.execute(&st, &[&super::notify::CHANNEL, payload]).await.map_err(db("notifying peers"))?;
        }
    }
    tx.commit().await.map_err(db("committing"))?;
    Ok(CommitOutcome::Committed)
}

/// Joins tags for the `task_result.tags` column (change detection).
async fn put_tags(tx: &Transaction<'_>, id: TaskId, tags: &[String]) -> Result<(), Fail> {
    if tags.is_empty() {
        return Ok(());
    }
    let st = tx
        .prepare_cached(
            "INSERT INTO task_tag (tag, task_id) SELECT t, $2 FROM unnest($1::TEXT[]) AS t \
             ON CONFLICT DO NOTHING",
        )
        .await
        .map_err(db("preparing tag insert"))?;
    tx.execute(&st, &[&tags, &id.0]).await.map_err(db("inserting task tags"))?;
    Ok(())
}

/// Returns false when the write's precondition fails.
async fn apply(tx: &Transaction<'_>, w: &Write) -> Result<bool, Fail> {
    match w {
        Write::InsertTask { request, result } => {
            let req_blob = text(blob::encode(&blob::request_b(request))?)?;
            let st = tx
                .prepare_cached(
                    "INSERT INTO task_request (id, created, blob) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
                )
                .await
                .map_err(db("preparing task request insert"))?;
            let n = tx
                .execute(&st, &[&request.id.0, &to_micros(request.created), &req_blob])
                .await
                .map_err(db("inserting task request"))?;
            if n == 0 || !insert_result(tx, result).await? {
                return Ok(false);
            }
            put_tags(tx, result.id, &result.tags).await?;
            Ok(true)
        }
        Write::UpdateResult(r) => update_result(tx, r).await,
        Write::PutRequestUuid { key, task, created } => {
            let st = tx
                .prepare_cached(
                    "INSERT INTO request_uuid (key, task_id, created) VALUES ($1, $2, $3) \
                     ON CONFLICT (key) DO NOTHING",
                )
                .await
                .map_err(db("preparing request uuid insert"))?;
            let n =
                tx.execute(&st, &[key, &task.0, &to_micros(*created)]).await.map_err(db("inserting request uuid"))?;
            Ok(n == 1)
        }
        Write::WriteOutput { task, offset, data } => {
            write_output(tx, *task, *offset, data).await?;
            Ok(true)
        }
        Write::PutBot(b) => {
            let bytes = text(blob::encode_bot(b)?)?;
            let st = tx
                .prepare_cached(
                    "INSERT INTO bot (bot_id, blob) VALUES ($1, $2) \
                     ON CONFLICT (bot_id) DO UPDATE SET blob = excluded.blob",
                )
                .await
                .map_err(db("preparing bot upsert"))?;
            tx.execute(&st, &[&b.bot_id, &bytes]).await.map_err(db("putting bot"))?;
            Ok(true)
        }
        Write::DeleteBot(id) => {
            let st =
                tx.prepare_cached("DELETE FROM bot WHERE bot_id = $1").await.map_err(db("preparing bot delete"))?;
            tx.execute(&st, &[id]).await.map_err(db("deleting bot"))?;
            Ok(true)
        }
        Write::AppendEvent(e) => {
            let bytes = text(blob::encode_event(e)?)?;
            let st = tx
                .prepare_cached("INSERT INTO bot_event (bot_id, ts, blob) VALUES ($1, $2, $3)")
                .await
                .map_err(db("preparing bot event insert"))?;
            tx.execute(&st, &[&e.bot_id, &to_micros(e.ts), &bytes]).await.map_err(db("appending bot event"))?;
            Ok(true)
        }
        Write::PutMetaIfAbsent { name, value } => {
            let st = tx
                .prepare_cached("INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
                .await
                .map_err(db("preparing meta insert"))?;
            tx.execute(&st, &[name, value]).await.map_err(db("putting meta"))?;
            Ok(true)
        }
        Write::PutDrain(d) => super::drain::put(tx, d).await.map(|_| true).map_err(db("putting drain")),
        Write::DeleteDrain(target) => {
            super::drain::delete(tx, target).await.map(|_| true).map_err(db("deleting drain"))
        }
        Write::PutApiToken(t) => {
            let st = tx
                .prepare_cached(
                    "INSERT INTO api_token (id, identity, secret_sha256, description, created_by, created_at, \
                     expires_at, last_used_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     ON CONFLICT (id) DO NOTHING",
                )
                .await
                .map_err(db("preparing api token insert"))?;
            let n = tx
                .execute(
                    &st,
                    &[
                        &t.id,
                        &t.identity,
                        &t.secret_sha256,
                        &t.description,
                        &t.created_by,
                        &to_micros(t.created_at),
                        &to_micros(t.expires_at),
                        &t.last_used_at.map(to_micros),
                        &t.revoked_at.map(to_micros),
                    ],
                )
                .await
                .map_err(db("inserting api token"))?;
            Ok(n == 1)
        }
        Write::RevokeApiToken { id, at } => {
            let st = tx
                .prepare_cached("UPDATE api_token SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .await
                .map_err(db("preparing api token revoke"))?;
            tx.execute(&st, &[id, &to_micros(*at)]).await.map_err(db("revoking api token"))?;
            Ok(true)
        }
        Write::TouchApiToken { id, at } => {
            let st = tx
                .prepare_cached("UPDATE api_token SET last_used_at = $2 WHERE id = $1")
                .await
                .map_err(db("preparing api token touch"))?;
            tx.execute(&st, &[id, &to_micros(*at)]).await.map_err(db("touching api token"))?;
            Ok(true)
        }
        Write::PutUiSession(u) => {
            let st = tx
                .prepare_cached(
                    "INSERT INTO ui_session (id_sha256, identity, created_at, expires_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (id_sha256) DO NOTHING",
                )
                .await
                .map_err(db("preparing ui session insert"))?;
            let n = tx
                .execute(&st, &[&u.id_sha256, &u.identity, &to_micros(u.created_at), &to_micros(u.expires_at)])
                .await
                .map_err(db("inserting ui session"))?;
            Ok(n == 1)
        }
        Write::DeleteUiSession { id_sha256 } => {
            let st = tx
                .prepare_cached("DELETE FROM ui_session WHERE id_sha256 = $1")
                .await
                .map_err(db("preparing ui session delete"))?;
            tx.execute(&st, &[id_sha256]).await.map_err(db("deleting ui session"))?;
            Ok(true)
        }
        Write::PurgeUiSessions { before } => {
            let st = tx
                .prepare_cached("DELETE FROM ui_session WHERE expires_at < $1")
                .await
                .map_err(db("preparing ui session purge"))?;
            tx.execute(&st, &[&to_micros(*before)]).await.map_err(db("purging ui sessions"))?;
            Ok(true)
        }
        Write::PutBotToken(t) => {
            let st = tx
                .prepare_cached(
                    "INSERT INTO bot_token (id, host, secret_sha256, created, created_by, revoked) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
                )
                .await
                .map_err(db("preparing bot token insert"))?;
            let revoked = t.revoked.map(to_micros);
            tx.execute(&st, &[&t.id, &t.host, &t.secret_sha256, &to_micros(t.created), &t.created_by, &revoked])
                .await
                .map_err(db("putting bot token"))?;
            Ok(true)
        }
        Write::RevokeBotToken { id, at } => {
            let st = tx
                .prepare_cached("UPDATE bot_token SET revoked = $2 WHERE id = $1 AND revoked IS NULL")
                .await
                .map_err(db("preparing bot token revoke"))?;
            tx.execute(&st, &[id, &to_micros(*at)]).await.map_err(db("revoking bot token"))?;
            Ok(true)
        }
        Write::UseBootstrapToken { token_sha256, bot_id, bot_token_id, at } => {
            let st = tx
                .prepare_cached(
                    "INSERT INTO bootstrap_use (token_sha256, bot_id, bot_token_id, used) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (token_sha256) DO NOTHING",
                )
                .await
                .map_err(db("preparing bootstrap token use"))?;
            let n = tx
                .execute(&st, &[token_sha256, bot_id, bot_token_id, &to_micros(*at)])
                .await
                .map_err(db("recording bootstrap token use"))?;
            Ok(n == 1)
        }
        Write::Jobs(j) => super::jobs::apply(tx, j).await,
        Write::Outbox(o) => super::outbox::apply(tx, o).await,
    }
}

/// The bound values of a result row (see `ResultColumns`), then the blob.
fn result_params<'a>(c: &'a ResultColumns, blob: &'a String) -> [&'a (dyn tokio_postgres::types::ToSql + Sync); 13] {
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

async fn insert_result(tx: &Transaction<'_>, r: &TaskResult) -> Result<bool, Fail> {
    let bytes = text(blob::encode_result(r)?)?;
    let cols = ResultColumns::of(r);
    let st = tx
        .prepare_cached(
            "INSERT INTO task_result (id, version, state, failure, try_number, created, started, completed, \
             abandoned, bot_id, dedup_hash, tags, blob) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (id) DO NOTHING",
        )
        .await
        .map_err(db("preparing task result insert"))?;
    let n = tx.execute(&st, &result_params(&cols, &bytes)).await.map_err(db("inserting task result"))?;
    Ok(n == 1)
}

/// The compare-and-set: locks the row at the expected version (a racing
/// writer that committed first makes this find nothing), then updates it.
async fn update_result(tx: &Transaction<'_>, r: &TaskResult) -> Result<bool, Fail> {
    let st = tx
        .prepare_cached("SELECT tags FROM task_result WHERE id = $1 AND version = $2 FOR UPDATE")
        .await
        .map_err(db("preparing task result version read"))?;
    let Some(row) = tx.query_opt(&st, &[&r.id.0, &r.version]).await.map_err(db("reading task result version"))? else {
        return Ok(false);
    };
    let old_tags: String = row.try_get(0).map_err(db("reading task result tags"))?;
    let bytes = text(blob::encode_result(r)?)?;
    let cols = ResultColumns::of(r);
    let st = tx
        .prepare_cached(
            "UPDATE task_result SET version = $2 + 1, state = $3, failure = $4, try_number = $5, created = $6, \
             started = $7, completed = $8, abandoned = $9, bot_id = $10, dedup_hash = $11, tags = $12, blob = $13 \
             WHERE id = $1 AND version = $2",
        )
        .await
        .map_err(db("preparing task result update"))?;
    let n = tx.execute(&st, &result_params(&cols, &bytes)).await.map_err(db("updating task result"))?;
    let new_tags = cols.tags;
    if n != 1 {
        return Ok(false);
    }
    if old_tags != new_tags {
        let st = tx
            .prepare_cached("DELETE FROM task_tag WHERE task_id = $1")
            .await
            .map_err(db("preparing task tags delete"))?;
        tx.execute(&st, &[&r.id.0]).await.map_err(db("deleting task tags"))?;
        put_tags(tx, r.id, &r.tags).await?;
    }
    Ok(true)
}

/// Writes `data` at `offset`, chunk by chunk, with the SQLite backend's
/// layout: a chunk row holds the bytes of its chunk up to the highest byte
/// written in it (zero-filled below); missing chunks read as zeros; bytes
/// past the cap are dropped.
async fn write_output(tx: &Transaction<'_>, task: TaskId, offset: u64, data: &[u8]) -> Result<(), Fail> {
    let writes = crate::shared::chunk_writes(offset, data);
    if writes.is_empty() {
        return Ok(());
    }
    // Concurrent writers of one task would otherwise both build a new chunk
    // from nothing and the later upsert would drop the earlier bytes.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&task.0]).await.map_err(db("locking task output"))?;
    let read = tx
        .prepare_cached("SELECT data FROM output_chunk WHERE task_id = $1 AND idx = $2")
        .await
        .map_err(db("preparing output chunk read"))?;
    let upsert = tx
        .prepare_cached(
            "INSERT INTO output_chunk (task_id, idx, data) VALUES ($1, $2, $3) \
             ON CONFLICT (task_id, idx) DO UPDATE SET data = excluded.data",
        )
        .await
        .map_err(db("preparing output chunk write"))?;
    for w in writes {
        let existing = tx.query_opt(&read, &[&task.0, &(w.idx as i64)]).await.map_err(db("reading output chunk"))?;
        let existing: Option<Vec<u8>> = match existing {
            Some(row) => Some(row.try_get(0).map_err(db("reading output chunk"))?),
            None => None,
        };
        if let Some(buf) = crate::shared::merge_chunk(existing, &w) {
            tx.execute(&upsert, &[&task.0, &(w.idx as i64), &buf]).await.map_err(db("writing output chunk"))?;
        }
    }
    Ok(())
}

/// Deletes up to `limit` finished tasks created before `before` (with
/// their tags, output and request uuids) and up to `limit` bot events older
/// than `before`, in one transaction.
pub(crate) async fn evict(client: &mut Object, before: Time, limit: usize) -> Result<u64> {
    let mut attempt = 1;
    loop {
        match evict_once(client, before, limit).await {
            Ok(n) => return Ok(n),
            Err(Fail::Retry(msg)) if attempt < ATTEMPTS => {
                tracing::debug!(attempt, "postgres evict retried: {msg}");
                attempt += 1;
            }
            Err(f) => return Err(f.into_store()),
        }
    }
}

async fn evict_once(client: &mut Object, before: Time, limit: usize) -> Result<u64, Fail> {
    let lim = if limit == 0 { i64::MAX } else { limit as i64 };
    let before = to_micros(before);
    let tx = client.transaction().await.map_err(db("beginning eviction"))?;
    let select = format!(
        "SELECT id FROM task_result WHERE created < $1 AND state NOT IN ({}, {}) ORDER BY created LIMIT $2",
        TaskState::Running.as_i32(),
        TaskState::Pending.as_i32()
    );
    let ids: Vec<i64> = tx
        .query(&select, &[&before, &lim])
        .await
        .map_err(db("selecting tasks to evict"))?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<std::result::Result<_, _>>()
        .map_err(db("selecting tasks to evict"))?;
    let mut deleted = 0u64;
    if !ids.is_empty() {
        for sql in [
            "DELETE FROM task_tag WHERE task_id = ANY($1)",
            "DELETE FROM output_chunk WHERE task_id = ANY($1)",
            "DELETE FROM request_uuid WHERE task_id = ANY($1)",
            "DELETE FROM task_request WHERE id = ANY($1)",
        ] {
            tx.execute(sql, &[&ids]).await.map_err(db("evicting task"))?;
        }
        deleted += tx
            .execute("DELETE FROM task_result WHERE id = ANY($1)", &[&ids])
            .await
            .map_err(db("evicting task result"))?;
    }
    deleted += tx
        .execute(
            "DELETE FROM bot_event WHERE id IN (SELECT id FROM bot_event WHERE ts < $1 ORDER BY ts LIMIT $2)",
            &[&before, &lim],
        )
        .await
        .map_err(db("evicting bot events"))?;
    tx.commit().await.map_err(db("committing eviction"))?;
    Ok(deleted)
}
