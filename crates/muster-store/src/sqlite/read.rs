//! Read queries, run on a pooled read-only connection.
//!
//! Listings build one SQL statement per query shape (cached by SQL text),
//! order newest first, and page with an opaque cursor: `i<id>` for created
//! order, `t<ts>.<id>` for the other sort columns, `e<ts>.<row>` for events.

use super::{blob, sql_err};
use crate::{EventQuery, Page, Result, StoreError, TaskQuery, OUTPUT_CHUNK_SIZE, OUTPUT_MAX_CHUNKS};
use muster_core::bot::BotToken;
use muster_core::state::{SortQuery, TaskState};
use muster_core::time::{from_micros, to_micros};
use muster_core::{BotEvent, BotInfo, TaskId, TaskRequest, TaskResult, Time};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

pub(crate) fn get_request(c: &Connection, id: TaskId) -> Result<Option<TaskRequest>> {
    let b: Option<Vec<u8>> = c
        .prepare_cached("SELECT blob FROM task_request WHERE id = ?1")
        .and_then(|mut s| s.query_row(params![id.0], |r| r.get(0)).optional())
        .map_err(sql_err("reading task request"))?;
    b.map(|b| blob::decode_request(&b)).transpose()
}

pub(crate) fn get_result(c: &Connection, id: TaskId) -> Result<Option<TaskResult>> {
    let row: Option<(i64, Vec<u8>)> = c
        .prepare_cached("SELECT version, blob FROM task_result WHERE id = ?1")
        .and_then(|mut s| s.query_row(params![id.0], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .map_err(sql_err("reading task result"))?;
    row.map(|(v, b)| blob::decode_result(&b, v)).transpose()
}

pub(crate) fn get_results(c: &Connection, ids: &[TaskId]) -> Result<Vec<Option<TaskResult>>> {
    let mut found = std::collections::HashMap::with_capacity(ids.len());
    for part in ids.chunks(256) {
        let marks = vec!["?"; part.len()].join(",");
        let sql = format!("SELECT version, blob FROM task_result WHERE id IN ({marks})");
        let mut st = c.prepare_cached(&sql).map_err(sql_err("preparing task results read"))?;
        let rows = st
            .query_map(params_from_iter(part.iter().map(|i| i.0)), |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
            })
            .map_err(sql_err("reading task results"))?;
        for row in rows {
            let (v, b) = row.map_err(sql_err("reading task results"))?;
            let r = blob::decode_result(&b, v)?;
            found.insert(r.id, r);
        }
    }
    Ok(ids.iter().map(|i| found.get(i).cloned()).collect())
}

pub(crate) fn lookup_request_uuid(c: &Connection, key: &str) -> Result<Option<TaskId>> {
    c.prepare_cached("SELECT task_id FROM request_uuid WHERE key = ?1")
        .and_then(|mut s| s.query_row(params![key], |r| r.get(0)).optional())
        .map(|o| o.map(TaskId))
        .map_err(sql_err("reading request uuid"))
}

pub(crate) fn find_dedup(c: &Connection, hash: &str, since: Time) -> Result<Option<TaskResult>> {
    let row: Option<(i64, Vec<u8>)> = c
        .prepare_cached(
            "SELECT version, blob FROM task_result WHERE dedup_hash = ?1 AND created >= ?2 ORDER BY id DESC LIMIT 1",
        )
        .and_then(|mut s| s.query_row(params![hash, to_micros(since)], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .map_err(sql_err("finding dedup candidate"))?;
    row.map(|(v, b)| blob::decode_result(&b, v)).transpose()
}

/// The SQL pieces of a task listing.
struct Listing {
    /// `WHERE ...` over `task_result r` (without cursor).
    filter: String,
    params: Vec<Value>,
    /// The sort timestamp column (None = created order by id).
    sort_col: Option<&'static str>,
}

fn listing(q: &TaskQuery) -> Listing {
    let mut conds: Vec<String> = Vec::new();
    let mut params: Vec<Value> = Vec::new();
    if let Some(s) = crate::shared::state_clause(q.state) {
        conds.push(s);
    }
    let sort_col = match q.sort {
        SortQuery::CreatedTs => None,
        SortQuery::CompletedTs => Some("completed"),
        SortQuery::AbandonedTs => Some("abandoned"),
        SortQuery::StartedTs => Some("started"),
    };
    let time_col = sort_col.unwrap_or("created");
    if let Some(col) = sort_col {
        conds.push(format!("r.{col} IS NOT NULL"));
    }
    if let Some(s) = q.start {
        conds.push(format!("r.{time_col} >= ?"));
        params.push(Value::Integer(to_micros(s)));
    }
    if let Some(e) = q.end {
        conds.push(format!("r.{time_col} < ?"));
        params.push(Value::Integer(to_micros(e)));
    }
    if let Some(b) = &q.bot_id {
        conds.push("r.bot_id = ?".into());
        params.push(Value::Text(b.clone()));
    }
    for f in &q.tags {
        if f.values.is_empty() {
            conds.push("0".into());
            continue;
        }
        let marks = vec!["?"; f.values.len()].join(",");
        conds.push(format!("EXISTS (SELECT 1 FROM task_tag t WHERE t.task_id = r.id AND t.tag IN ({marks}))"));
        for v in &f.values {
            params.push(Value::Text(format!("{}:{}", f.key, v)));
        }
    }
    let filter = if conds.is_empty() { String::new() } else { format!("WHERE {}", conds.join(" AND ")) };
    Listing { filter, params, sort_col }
}

fn bad_cursor() -> StoreError {
    StoreError::Other("invalid cursor".into())
}

/// Adds the cursor condition and returns (full WHERE, ORDER BY, LIMIT).
fn paged(l: &Listing, q: &TaskQuery) -> Result<(String, Vec<Value>, String, String)> {
    let mut filter = l.filter.clone();
    let mut params = l.params.clone();
    let join = if filter.is_empty() { "WHERE" } else { " AND" };
    let order = match l.sort_col {
        None => {
            if let Some(c) = &q.cursor {
                let id: i64 = c.strip_prefix('i').and_then(|s| s.parse().ok()).ok_or_else(bad_cursor)?;
                filter.push_str(&format!("{join} r.id < ?"));
                params.push(Value::Integer(id));
            }
            "ORDER BY r.id DESC".to_string()
        }
        Some(col) => {
            if let Some(c) = &q.cursor {
                let (ts, id) = parse_pair(c, 't')?;
                filter.push_str(&format!("{join} (r.{col} < ? OR (r.{col} = ? AND r.id < ?))"));
                params.extend([Value::Integer(ts), Value::Integer(ts), Value::Integer(id)]);
            }
            format!("ORDER BY r.{col} DESC, r.id DESC")
        }
    };
    let limit = if q.limit == 0 { String::new() } else { format!("LIMIT {}", q.limit + 1) };
    Ok((filter, params, order, limit))
}

fn parse_pair(c: &str, prefix: char) -> Result<(i64, i64)> {
    let (a, b) = c.strip_prefix(prefix).and_then(|s| s.split_once('.')).ok_or_else(bad_cursor)?;
    Ok((a.parse().map_err(|_| bad_cursor())?, b.parse().map_err(|_| bad_cursor())?))
}

/// Trims the extra look-ahead row and makes the cursor of a full page.
fn finish<T>(mut rows: Vec<(T, i64, i64)>, limit: usize, sort: Option<&str>) -> Page<T> {
    let more = limit > 0 && rows.len() > limit;
    if more {
        rows.truncate(limit);
    }
    let cursor = if more {
        rows.last().map(|(_, id, ts)| match sort {
            None => format!("i{id}"),
            Some(_) => format!("t{ts}.{id}"),
        })
    } else {
        None
    };
    Page { items: rows.into_iter().map(|(t, _, _)| t).collect(), cursor }
}

pub(crate) fn list_results(c: &Connection, q: &TaskQuery) -> Result<Page<TaskResult>> {
    let l = listing(q);
    let (filter, params, order, limit) = paged(&l, q)?;
    let ts = l.sort_col.unwrap_or("created");
    let sql = format!("SELECT r.id, r.version, r.blob, r.{ts} FROM task_result r {filter} {order} {limit}");
    let mut st = c.prepare_cached(&sql).map_err(sql_err("preparing task listing"))?;
    let rows = st
        .query_map(params_from_iter(params), |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, Vec<u8>>(2)?, r.get::<_, i64>(3)?))
        })
        .map_err(sql_err("listing tasks"))?;
    let mut out = Vec::new();
    for row in rows {
        let (id, v, b, t) = row.map_err(sql_err("listing tasks"))?;
        out.push((blob::decode_result(&b, v)?, id, t));
    }
    Ok(finish(out, q.limit, l.sort_col))
}

pub(crate) fn list_requests(c: &Connection, q: &TaskQuery) -> Result<Page<TaskRequest>> {
    let l = listing(q);
    let (filter, params, order, limit) = paged(&l, q)?;
    let ts = l.sort_col.unwrap_or("created");
    let sql = format!(
        "SELECT r.id, q.blob, r.{ts} FROM task_result r JOIN task_request q ON q.id = r.id {filter} {order} {limit}"
    );
    let mut st = c.prepare_cached(&sql).map_err(sql_err("preparing request listing"))?;
    let rows = st
        .query_map(params_from_iter(params), |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, i64>(2)?))
        })
        .map_err(sql_err("listing requests"))?;
    let mut out = Vec::new();
    for row in rows {
        let (id, b, t) = row.map_err(sql_err("listing requests"))?;
        out.push((blob::decode_request(&b)?, id, t));
    }
    Ok(finish(out, q.limit, l.sort_col))
}

/// Counts every match (limit and cursor are ignored).
pub(crate) fn count_results(c: &Connection, q: &TaskQuery) -> Result<u64> {
    let l = listing(q);
    let sql = format!("SELECT COUNT(*) FROM task_result r {}", l.filter);
    let n: i64 = c
        .prepare_cached(&sql)
        .and_then(|mut s| s.query_row(params_from_iter(l.params), |r| r.get(0)))
        .map_err(sql_err("counting tasks"))?;
    Ok(n.max(0) as u64)
}

/// Bytes `[offset, offset+length)` of the stream, clamped to its logical
/// length (the highest byte ever written). Missing chunks are zeros.
pub(crate) fn read_output(c: &Connection, task: TaskId, offset: u64, length: u64) -> Result<Vec<u8>> {
    let last: Option<(i64, i64)> = c
        .prepare_cached("SELECT idx, length(data) FROM output_chunk WHERE task_id = ?1 ORDER BY idx DESC LIMIT 1")
        .and_then(|mut s| s.query_row(params![task.0], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .map_err(sql_err("reading output length"))?;
    let Some((last_idx, last_len)) = last else {
        return Ok(Vec::new());
    };
    let total = (last_idx.max(0) as u64) * OUTPUT_CHUNK_SIZE + last_len.max(0) as u64;
    let total = total.min(OUTPUT_CHUNK_SIZE * OUTPUT_MAX_CHUNKS);
    if offset >= total || length == 0 {
        return Ok(Vec::new());
    }
    let end = offset.saturating_add(length).min(total);
    let mut out = vec![0u8; (end - offset) as usize];
    let first = (offset / OUTPUT_CHUNK_SIZE) as i64;
    let lastc = ((end - 1) / OUTPUT_CHUNK_SIZE) as i64;
    let mut st = c
        .prepare_cached("SELECT idx, data FROM output_chunk WHERE task_id = ?1 AND idx BETWEEN ?2 AND ?3 ORDER BY idx")
        .map_err(sql_err("preparing output read"))?;
    let rows = st
        .query_map(params![task.0, first, lastc], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))
        .map_err(sql_err("reading output"))?;
    for row in rows {
        let (idx, data) = row.map_err(sql_err("reading output"))?;
        let cstart = idx.max(0) as u64 * OUTPUT_CHUNK_SIZE;
        let from = offset.max(cstart);
        let to = end.min(cstart + data.len() as u64);
        if from >= to {
            continue;
        }
        out[(from - offset) as usize..(to - offset) as usize]
            .copy_from_slice(&data[(from - cstart) as usize..(to - cstart) as usize]);
    }
    Ok(out)
}

pub(crate) fn get_bot(c: &Connection, id: &str) -> Result<Option<BotInfo>> {
    let b: Option<Vec<u8>> = c
        .prepare_cached("SELECT blob FROM bot WHERE bot_id = ?1")
        .and_then(|mut s| s.query_row(params![id], |r| r.get(0)).optional())
        .map_err(sql_err("reading bot"))?;
    b.map(|b| blob::decode_bot(&b)).transpose()
}

pub(crate) fn get_meta(c: &Connection, name: &str) -> Result<Option<Vec<u8>>> {
    c.prepare_cached("SELECT value FROM meta WHERE name = ?1")
        .and_then(|mut s| s.query_row(params![name], |r| r.get(0)).optional())
        .map_err(sql_err("reading meta"))
}

fn bot_token_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<BotToken> {
    Ok(BotToken {
        id: r.get(0)?,
        host: r.get(1)?,
        secret_sha256: r.get(2)?,
        created: from_micros(r.get(3)?),
        created_by: r.get(4)?,
        revoked: r.get::<_, Option<i64>>(5)?.map(from_micros),
    })
}

const BOT_TOKEN_COLUMNS: &str = "id, host, secret_sha256, created, created_by, revoked";

pub(crate) fn get_bot_token(c: &Connection, id: &str) -> Result<Option<BotToken>> {
    c.prepare_cached(&format!("SELECT {BOT_TOKEN_COLUMNS} FROM bot_token WHERE id = ?1"))
        .and_then(|mut s| s.query_row(params![id], bot_token_row).optional())
        .map_err(sql_err("reading bot token"))
}

pub(crate) fn list_bot_tokens(c: &Connection) -> Result<Vec<BotToken>> {
    let mut st = c
        .prepare_cached(&format!("SELECT {BOT_TOKEN_COLUMNS} FROM bot_token ORDER BY host, id"))
        .map_err(sql_err("preparing bot tokens read"))?;
    let rows = st.query_map([], bot_token_row).map_err(sql_err("reading bot tokens"))?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql_err("reading bot tokens"))
}

pub(crate) fn load_bots(c: &Connection) -> Result<Vec<BotInfo>> {
    let mut st = c.prepare_cached("SELECT blob FROM bot ORDER BY bot_id").map_err(sql_err("preparing bots read"))?;
    let rows = st.query_map([], |r| r.get::<_, Vec<u8>>(0)).map_err(sql_err("reading bots"))?;
    let mut out = Vec::new();
    for row in rows {
        out.push(blob::decode_bot(&row.map_err(sql_err("reading bots"))?)?);
    }
    Ok(out)
}

pub(crate) fn list_bot_events(c: &Connection, q: &EventQuery) -> Result<Page<BotEvent>> {
    let mut conds = vec!["bot_id = ?".to_string()];
    let mut params = vec![Value::Text(q.bot_id.clone())];
    if let Some(s) = q.start {
        conds.push("ts >= ?".into());
        params.push(Value::Integer(to_micros(s)));
    }
    if let Some(e) = q.end {
        conds.push("ts < ?".into());
        params.push(Value::Integer(to_micros(e)));
    }
    if let Some(cur) = &q.cursor {
        let (ts, id) = parse_pair(cur, 'e')?;
        conds.push("(ts < ? OR (ts = ? AND id < ?))".into());
        params.extend([Value::Integer(ts), Value::Integer(ts), Value::Integer(id)]);
    }
    let limit = if q.limit == 0 { String::new() } else { format!("LIMIT {}", q.limit + 1) };
    let sql =
        format!("SELECT id, ts, blob FROM bot_event WHERE {} ORDER BY ts DESC, id DESC {limit}", conds.join(" AND "));
    let mut st = c.prepare_cached(&sql).map_err(sql_err("preparing bot events read"))?;
    let rows = st
        .query_map(params_from_iter(params), |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, Vec<u8>>(2)?))
        })
        .map_err(sql_err("reading bot events"))?;
    let mut out = Vec::new();
    for row in rows {
        let (id, ts, b) = row.map_err(sql_err("reading bot events"))?;
        out.push((blob::decode_event(&b)?, id, ts));
    }
    let more = q.limit > 0 && out.len() > q.limit;
    if more {
        out.truncate(q.limit);
    }
    let cursor = if more { out.last().map(|(_, id, ts)| format!("e{ts}.{id}")) } else { None };
    Ok(Page { items: out.into_iter().map(|(e, _, _)| e).collect(), cursor })
}

/// Raw rows of `load_active`: (request blob, result version, result blob).
type ActiveRaw = (Vec<u8>, i64, Vec<u8>);
/// Decoded batches of `load_active`, tagged with their position.
type ActiveParts = Vec<(usize, Vec<(TaskRequest, TaskResult)>)>;

/// Every PENDING/RUNNING task with its request, in id order. One query;
/// the blobs are decoded on several threads (startup with 100k pending
/// tasks is dominated by decoding).
pub(crate) fn load_active(c: &Connection) -> Result<Vec<(TaskRequest, TaskResult)>> {
    const BATCH: usize = 2048;
    let sql = format!(
        "SELECT q.blob, r.version, r.blob FROM task_result r JOIN task_request q ON q.id = r.id \
         WHERE r.state IN ({}, {})",
        TaskState::Pending.as_i32(),
        TaskState::Running.as_i32()
    );
    let mut st = c.prepare_cached(&sql).map_err(sql_err("preparing active tasks read"))?;
    let rows = st
        .query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?, r.get::<_, Vec<u8>>(2)?)))
        .map_err(sql_err("reading active tasks"))?;
    let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).clamp(1, 8);
    let decode_batch = |batch: Vec<ActiveRaw>| -> Result<Vec<(TaskRequest, TaskResult)>> {
        batch.into_iter().map(|(qb, v, rb)| Ok((blob::decode_request(&qb)?, blob::decode_result(&rb, v)?))).collect()
    };
    let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, Vec<ActiveRaw>)>(workers * 2);
    let rx = std::sync::Mutex::new(rx);
    std::thread::scope(|s| {
        let mut handles = Vec::with_capacity(workers);
        for _ in 0..workers {
            let rx = &rx;
            handles.push(s.spawn(move || -> Result<ActiveParts> {
                let mut done = Vec::new();
                loop {
                    let next = match rx.lock() {
                        Ok(guard) => guard.recv(),
                        Err(_) => return Err(StoreError::Other("decoder pool poisoned".into())),
                    };
                    let Ok((i, batch)) = next else { return Ok(done) };
                    done.push((i, decode_batch(batch)?));
                }
            }));
        }
        // Scan on this thread, feeding batches to the decoders.
        let scan = || -> Result<()> {
            let mut batch = Vec::with_capacity(BATCH);
            let mut n = 0;
            for row in rows {
                batch.push(row.map_err(sql_err("reading active tasks"))?);
                if batch.len() == BATCH {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                    if tx.send((n, full)).is_err() {
                        return Ok(()); // a decoder failed; its error is reported below
                    }
                    n += 1;
                }
            }
            if !batch.is_empty() {
                let _ = tx.send((n, batch));
            }
            Ok(())
        };
        let scanned = scan();
        drop(tx);
        let mut parts = Vec::new();
        for h in handles {
            match h.join() {
                Ok(r) => parts.extend(r?),
                Err(_) => return Err(StoreError::Other("decoder thread panicked".into())),
            }
        }
        scanned?;
        parts.sort_by_key(|(i, _)| *i);
        Ok(parts.into_iter().flat_map(|(_, v)| v).collect())
    })
}

const API_TOKEN_COLUMNS: &str =
    "id, identity, secret_sha256, description, created_by, created_at, expires_at, last_used_at, revoked_at";

fn api_token_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<crate::ApiToken> {
    use muster_core::time::from_micros;
    Ok(crate::ApiToken {
        id: r.get(0)?,
        identity: r.get(1)?,
        secret_sha256: r.get(2)?,
        description: r.get(3)?,
        created_by: r.get(4)?,
        created_at: from_micros(r.get(5)?),
        expires_at: from_micros(r.get(6)?),
        last_used_at: r.get::<_, Option<i64>>(7)?.map(from_micros),
        revoked_at: r.get::<_, Option<i64>>(8)?.map(from_micros),
    })
}

pub(crate) fn get_api_token(c: &Connection, id: &str) -> Result<Option<crate::ApiToken>> {
    c.prepare_cached(&format!("SELECT {API_TOKEN_COLUMNS} FROM api_token WHERE id = ?1"))
        .and_then(|mut s| s.query_row(params![id], api_token_row).optional())
        .map_err(sql_err("reading api token"))
}

pub(crate) fn list_api_tokens(c: &Connection) -> Result<Vec<crate::ApiToken>> {
    let mut st = c
        .prepare_cached(&format!("SELECT {API_TOKEN_COLUMNS} FROM api_token ORDER BY created_at, id"))
        .map_err(sql_err("preparing api tokens read"))?;
    let rows = st.query_map([], api_token_row).map_err(sql_err("reading api tokens"))?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql_err("reading api tokens"))
}

pub(crate) fn get_ui_session(c: &Connection, id_sha256: &[u8]) -> Result<Option<crate::UiSession>> {
    use muster_core::time::from_micros;
    c.prepare_cached("SELECT id_sha256, identity, created_at, expires_at FROM ui_session WHERE id_sha256 = ?1")
        .and_then(|mut s| {
            s.query_row(params![id_sha256], |r| {
                Ok(crate::UiSession {
                    id_sha256: r.get(0)?,
                    identity: r.get(1)?,
                    created_at: from_micros(r.get(2)?),
                    expires_at: from_micros(r.get(3)?),
                })
            })
            .optional()
        })
        .map_err(sql_err("reading ui session"))
}
