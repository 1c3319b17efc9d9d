//! Read queries on a pooled connection.
//!
//! Same semantics as the SQLite backend: listings are newest first and page
//! with the same opaque cursors (`i<id>` for created order, `t<ts>.<id>` for
//! the other sort columns, `e<ts>.<row>` for events); a page carries a
//! cursor only when more rows exist (one look-ahead row is fetched).

use super::{blob, pg_err};
use crate::{EventQuery, Page, Result, StoreError, TaskQuery, OUTPUT_CHUNK_SIZE, OUTPUT_MAX_CHUNKS};
use deadpool_postgres::ClientWrapper;
use muster_core::bot::BotToken;
use muster_core::state::{SortQuery, TaskState};
use muster_core::time::{from_micros, to_micros};
use muster_core::{BotEvent, BotInfo, TaskId, TaskRequest, TaskResult, Time};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

type Client = ClientWrapper;

fn col<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a Row, i: usize, ctx: &'static str) -> Result<T> {
    row.try_get(i).map_err(pg_err(ctx))
}

fn result_of(row: &Row, ctx: &'static str) -> Result<TaskResult> {
    let v: i64 = col(row, 0, ctx)?;
    let b: &str = col(row, 1, ctx)?;
    blob::decode_result(b.as_bytes(), v)
}

pub(crate) async fn get_request(c: &Client, id: TaskId) -> Result<Option<TaskRequest>> {
    let st = c
        .prepare_cached("SELECT blob FROM task_request WHERE id = $1")
        .await
        .map_err(pg_err("preparing task request read"))?;
    let row = c.query_opt(&st, &[&id.0]).await.map_err(pg_err("reading task request"))?;
    match row {
        Some(row) => Ok(Some(blob::decode_request(col::<&str>(&row, 0, "reading task request")?.as_bytes())?)),
        None => Ok(None),
    }
}

pub(crate) async fn get_result(c: &Client, id: TaskId) -> Result<Option<TaskResult>> {
    let st = c
        .prepare_cached("SELECT version, blob FROM task_result WHERE id = $1")
        .await
        .map_err(pg_err("preparing task result read"))?;
    let row = c.query_opt(&st, &[&id.0]).await.map_err(pg_err("reading task result"))?;
    row.map(|r| result_of(&r, "reading task result")).transpose()
}

pub(crate) async fn get_results(c: &Client, ids: &[TaskId]) -> Result<Vec<Option<TaskResult>>> {
    let mut found = std::collections::HashMap::with_capacity(ids.len());
    let st = c
        .prepare_cached("SELECT version, blob FROM task_result WHERE id = ANY($1)")
        .await
        .map_err(pg_err("preparing task results read"))?;
    for part in ids.chunks(1024) {
        let raw: Vec<i64> = part.iter().map(|i| i.0).collect();
        for row in c.query(&st, &[&raw]).await.map_err(pg_err("reading task results"))? {
            let r = result_of(&row, "reading task results")?;
            found.insert(r.id, r);
        }
    }
    Ok(ids.iter().map(|i| found.get(i).cloned()).collect())
}

pub(crate) async fn lookup_request_uuid(c: &Client, key: &str) -> Result<Option<TaskId>> {
    let st = c
        .prepare_cached("SELECT task_id FROM request_uuid WHERE key = $1")
        .await
        .map_err(pg_err("preparing request uuid read"))?;
    let row = c.query_opt(&st, &[&key]).await.map_err(pg_err("reading request uuid"))?;
    row.map(|r| col::<i64>(&r, 0, "reading request uuid").map(TaskId)).transpose()
}

pub(crate) async fn find_dedup(c: &Client, hash: &str, since: Time) -> Result<Option<TaskResult>> {
    let st = c
        .prepare_cached(
            "SELECT version, blob FROM task_result WHERE dedup_hash = $1 AND created >= $2 ORDER BY id DESC LIMIT 1",
        )
        .await
        .map_err(pg_err("preparing dedup read"))?;
    let row = c.query_opt(&st, &[&hash, &to_micros(since)]).await.map_err(pg_err("finding dedup candidate"))?;
    row.map(|r| result_of(&r, "finding dedup candidate")).transpose()
}

/// Positional parameters of a query built at run time.
#[derive(Default)]
struct Params(Vec<Box<dyn ToSql + Sync + Send>>);

impl Params {
    /// Adds a value and returns its placeholder (`$n`).
    fn push(&mut self, v: impl ToSql + Sync + Send + 'static) -> String {
        self.0.push(Box::new(v));
        format!("${}", self.0.len())
    }
    fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.0.iter().map(|b| b.as_ref() as &(dyn ToSql + Sync)).collect()
    }
}

/// The SQL pieces of a task listing.
struct Listing {
    /// Conditions over `task_result r`, ANDed (cursor included when paged).
    conds: Vec<String>,
    params: Params,
    /// The sort timestamp column (None = created order by id).
    sort_col: Option<&'static str>,
}

impl Listing {
    fn filter(&self) -> String {
        if self.conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.conds.join(" AND "))
        }
    }
}

fn listing(q: &TaskQuery) -> Listing {
    let mut conds: Vec<String> = Vec::new();
    let mut params = Params::default();
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
        let p = params.push(to_micros(s));
        conds.push(format!("r.{time_col} >= {p}"));
    }
    if let Some(e) = q.end {
        let p = params.push(to_micros(e));
        conds.push(format!("r.{time_col} < {p}"));
    }
    if let Some(b) = &q.bot_id {
        let p = params.push(b.clone());
        conds.push(format!("r.bot_id = {p}"));
    }
    for f in &q.tags {
        if f.values.is_empty() {
            conds.push("FALSE".into());
            continue;
        }
        let tags: Vec<String> = f.values.iter().map(|v| format!("{}:{}", f.key, v)).collect();
        let p = params.push(tags);
        conds.push(format!("EXISTS (SELECT 1 FROM task_tag t WHERE t.task_id = r.id AND t.tag = ANY({p}))"));
    }
    Listing { conds, params, sort_col }
}

fn bad_cursor() -> StoreError {
    StoreError::Other("invalid cursor".into())
}

/// Adds the cursor condition; returns (ORDER BY, LIMIT).
fn paged(l: &mut Listing, q: &TaskQuery) -> Result<(String, String)> {
    let order = match l.sort_col {
        None => {
            if let Some(c) = &q.cursor {
                let id: i64 = c.strip_prefix('i').and_then(|s| s.parse().ok()).ok_or_else(bad_cursor)?;
                let p = l.params.push(id);
                l.conds.push(format!("r.id < {p}"));
            }
            "ORDER BY r.id DESC".to_string()
        }
        Some(col) => {
            if let Some(c) = &q.cursor {
                let (ts, id) = parse_pair(c, 't')?;
                let pt = l.params.push(ts);
                let pi = l.params.push(id);
                l.conds.push(format!("(r.{col} < {pt} OR (r.{col} = {pt} AND r.id < {pi}))"));
            }
            format!("ORDER BY r.{col} DESC, r.id DESC")
        }
    };
    Ok((order, limit_clause(&mut l.params, q.limit)))
}

/// `LIMIT $n` fetching one look-ahead row (none for 0 = no limit). The
/// limit is a parameter so statements cached per connection stay few.
fn limit_clause(params: &mut Params, limit: usize) -> String {
    if limit == 0 {
        return String::new();
    }
    let p = params.push(i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1);
    format!("LIMIT {p}")
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

pub(crate) async fn list_results(c: &Client, q: &TaskQuery) -> Result<Page<TaskResult>> {
    let mut l = listing(q);
    let (order, limit) = paged(&mut l, q)?;
    let ts = l.sort_col.unwrap_or("created");
    let sql = format!("SELECT r.version, r.blob, r.id, r.{ts} FROM task_result r {} {order} {limit}", l.filter());
    let st = c.prepare_cached(&sql).await.map_err(pg_err("preparing task listing"))?;
    let rows = c.query(&st, &l.params.refs()).await.map_err(pg_err("listing tasks"))?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let r = result_of(&row, "listing tasks")?;
        out.push((r, col(&row, 2, "listing tasks")?, col(&row, 3, "listing tasks")?));
    }
    Ok(finish(out, q.limit, l.sort_col))
}

pub(crate) async fn list_requests(c: &Client, q: &TaskQuery) -> Result<Page<TaskRequest>> {
    let mut l = listing(q);
    let (order, limit) = paged(&mut l, q)?;
    let ts = l.sort_col.unwrap_or("created");
    let sql = format!(
        "SELECT q.blob, r.id, r.{ts} FROM task_result r JOIN task_request q ON q.id = r.id {} {order} {limit}",
        l.filter()
    );
    let st = c.prepare_cached(&sql).await.map_err(pg_err("preparing request listing"))?;
    let rows = c.query(&st, &l.params.refs()).await.map_err(pg_err("listing requests"))?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let b: &str = col(&row, 0, "listing requests")?;
        out.push((
            blob::decode_request(b.as_bytes())?,
            col(&row, 1, "listing requests")?,
            col(&row, 2, "listing requests")?,
        ));
    }
    Ok(finish(out, q.limit, l.sort_col))
}

/// Counts every match (limit and cursor are ignored).
pub(crate) async fn count_results(c: &Client, q: &TaskQuery) -> Result<u64> {
    let l = listing(q);
    let sql = format!("SELECT COUNT(*) FROM task_result r {}", l.filter());
    let st = c.prepare_cached(&sql).await.map_err(pg_err("preparing task count"))?;
    let row = c.query_one(&st, &l.params.refs()).await.map_err(pg_err("counting tasks"))?;
    let n: i64 = col(&row, 0, "counting tasks")?;
    Ok(n.max(0) as u64)
}

/// Bytes `[offset, offset+length)` of the stream, clamped to its logical
/// length (the highest byte ever written). Missing chunks are zeros.
pub(crate) async fn read_output(c: &Client, task: TaskId, offset: u64, length: u64) -> Result<Vec<u8>> {
    let st = c
        .prepare_cached(
            "SELECT idx, octet_length(data)::BIGINT FROM output_chunk WHERE task_id = $1 ORDER BY idx DESC LIMIT 1",
        )
        .await
        .map_err(pg_err("preparing output length read"))?;
    let Some(row) = c.query_opt(&st, &[&task.0]).await.map_err(pg_err("reading output length"))? else {
        return Ok(Vec::new());
    };
    let last_idx: i64 = col(&row, 0, "reading output length")?;
    let last_len: i64 = col(&row, 1, "reading output length")?;
    let total = (last_idx.max(0) as u64) * OUTPUT_CHUNK_SIZE + last_len.max(0) as u64;
    let total = total.min(OUTPUT_CHUNK_SIZE * OUTPUT_MAX_CHUNKS);
    if offset >= total || length == 0 {
        return Ok(Vec::new());
    }
    let end = offset.saturating_add(length).min(total);
    let mut out = vec![0u8; (end - offset) as usize];
    let first = (offset / OUTPUT_CHUNK_SIZE) as i64;
    let lastc = ((end - 1) / OUTPUT_CHUNK_SIZE) as i64;
    let st = c
        .prepare_cached("SELECT idx, data FROM output_chunk WHERE task_id = $1 AND idx BETWEEN $2 AND $3 ORDER BY idx")
        .await
        .map_err(pg_err("preparing output read"))?;
    for row in c.query(&st, &[&task.0, &first, &lastc]).await.map_err(pg_err("reading output"))? {
        let idx: i64 = col(&row, 0, "reading output")?;
        let data: &[u8] = col(&row, 1, "reading output")?;
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

pub(crate) async fn get_bot(c: &Client, id: &str) -> Result<Option<BotInfo>> {
    let st = c.prepare_cached("SELECT blob FROM bot WHERE bot_id = $1").await.map_err(pg_err("preparing bot read"))?;
    let row = c.query_opt(&st, &[&id]).await.map_err(pg_err("reading bot"))?;
    match row {
        Some(row) => Ok(Some(blob::decode_bot(col::<&str>(&row, 0, "reading bot")?.as_bytes())?)),
        None => Ok(None),
    }
}

pub(crate) async fn get_meta(c: &Client, name: &str) -> Result<Option<Vec<u8>>> {
    let st = c.prepare_cached("SELECT value FROM meta WHERE name = $1").await.map_err(pg_err("preparing meta read"))?;
    let row = c.query_opt(&st, &[&name]).await.map_err(pg_err("reading meta"))?;
    row.map(|r| col::<Vec<u8>>(&r, 0, "reading meta")).transpose()
}

const BOT_TOKEN_COLUMNS: &str = "id, host, secret_sha256, created, created_by, revoked";

fn bot_token_row(r: &tokio_postgres::Row) -> Result<BotToken> {
    Ok(BotToken {
        id: col(r, 0, "reading bot token")?,
        host: col(r, 1, "reading bot token")?,
        secret_sha256: col(r, 2, "reading bot token")?,
        created: from_micros(col(r, 3, "reading bot token")?),
        created_by: col(r, 4, "reading bot token")?,
        revoked: col::<Option<i64>>(r, 5, "reading bot token")?.map(from_micros),
    })
}

pub(crate) async fn get_bot_token(c: &Client, id: &str) -> Result<Option<BotToken>> {
    let st = c
        .prepare_cached(&format!("SELECT {BOT_TOKEN_COLUMNS} FROM bot_token WHERE id = $1"))
        .await
        .map_err(pg_err("preparing bot token read"))?;
    let row = c.query_opt(&st, &[&id]).await.map_err(pg_err("reading bot token"))?;
    row.as_ref().map(bot_token_row).transpose()
}

pub(crate) async fn list_bot_tokens(c: &Client) -> Result<Vec<BotToken>> {
    let st = c
        .prepare_cached(&format!("SELECT {BOT_TOKEN_COLUMNS} FROM bot_token ORDER BY host, id"))
        .await
        .map_err(pg_err("preparing bot tokens read"))?;
    c.query(&st, &[]).await.map_err(pg_err("reading bot tokens"))?.iter().map(bot_token_row).collect()
}

pub(crate) async fn get_bots(c: &Client, ids: &[String]) -> Result<Vec<BotInfo>> {
    let st =
        c.prepare_cached("SELECT blob FROM bot WHERE bot_id = ANY($1)").await.map_err(pg_err("preparing bots read"))?;
    let mut out = Vec::with_capacity(ids.len());
    for part in ids.chunks(1024) {
        for row in c.query(&st, &[&part]).await.map_err(pg_err("reading bots"))? {
            out.push(blob::decode_bot(col::<&str>(&row, 0, "reading bots")?.as_bytes())?);
        }
    }
    Ok(out)
}

pub(crate) async fn get_requests(c: &Client, ids: &[TaskId]) -> Result<Vec<TaskRequest>> {
    let st = c
        .prepare_cached("SELECT blob FROM task_request WHERE id = ANY($1)")
        .await
        .map_err(pg_err("preparing task requests read"))?;
    let mut out = Vec::with_capacity(ids.len());
    for part in ids.chunks(1024) {
        let raw: Vec<i64> = part.iter().map(|i| i.0).collect();
        for row in c.query(&st, &[&raw]).await.map_err(pg_err("reading task requests"))? {
            out.push(blob::decode_request(col::<&str>(&row, 0, "reading task requests")?.as_bytes())?);
        }
    }
    Ok(out)
}

pub(crate) async fn load_bots(c: &Client) -> Result<Vec<BotInfo>> {
    // COLLATE "C": byte order, as SQLite sorts text.
    let st = c
        .prepare_cached("SELECT blob FROM bot ORDER BY bot_id COLLATE \"C\"")
        .await
        .map_err(pg_err("preparing bots read"))?;
    let rows = c.query(&st, &[]).await.map_err(pg_err("reading bots"))?;
    rows.iter().map(|row| blob::decode_bot(col::<&str>(row, 0, "reading bots")?.as_bytes())).collect()
}

pub(crate) async fn list_bot_events(c: &Client, q: &EventQuery) -> Result<Page<BotEvent>> {
    let mut params = Params::default();
    let p = params.push(q.bot_id.clone());
    let mut conds = vec![format!("bot_id = {p}")];
    if let Some(s) = q.start {
        let p = params.push(to_micros(s));
        conds.push(format!("ts >= {p}"));
    }
    if let Some(e) = q.end {
        let p = params.push(to_micros(e));
        conds.push(format!("ts < {p}"));
    }
    if let Some(cur) = &q.cursor {
        let (ts, id) = parse_pair(cur, 'e')?;
        let pt = params.push(ts);
        let pi = params.push(id);
        conds.push(format!("(ts < {pt} OR (ts = {pt} AND id < {pi}))"));
    }
    let limit = limit_clause(&mut params, q.limit);
    let sql =
        format!("SELECT id, ts, blob FROM bot_event WHERE {} ORDER BY ts DESC, id DESC {limit}", conds.join(" AND "));
    let st = c.prepare_cached(&sql).await.map_err(pg_err("preparing bot events read"))?;
    let rows = c.query(&st, &params.refs()).await.map_err(pg_err("reading bot events"))?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let id: i64 = col(&row, 0, "reading bot events")?;
        let ts: i64 = col(&row, 1, "reading bot events")?;
        let b: &str = col(&row, 2, "reading bot events")?;
        out.push((blob::decode_event(b.as_bytes())?, id, ts));
    }
    let more = q.limit > 0 && out.len() > q.limit;
    if more {
        out.truncate(q.limit);
    }
    let cursor = if more { out.last().map(|(_, id, ts)| format!("e{ts}.{id}")) } else { None };
    Ok(Page { items: out.into_iter().map(|(e, _, _)| e).collect(), cursor })
}

/// Every PENDING/RUNNING task with its request, in id order.
pub(crate) async fn load_active(c: &Client) -> Result<Vec<(TaskRequest, TaskResult)>> {
    let sql = format!(
        "SELECT r.version, r.blob, q.blob FROM task_result r JOIN task_request q ON q.id = r.id \
         WHERE r.state IN ({}, {}) ORDER BY r.id",
        TaskState::Pending.as_i32(),
        TaskState::Running.as_i32()
    );
    let st = c.prepare_cached(&sql).await.map_err(pg_err("preparing active tasks read"))?;
    let rows = c.query(&st, &[]).await.map_err(pg_err("reading active tasks"))?;
    // Decoding 100k blobs is CPU work: keep it off the async workers.
    tokio::task::spawn_blocking(move || {
        rows.iter()
            .map(|row| {
                let qb: &str = col(row, 2, "reading active tasks")?;
                Ok((blob::decode_request(qb.as_bytes())?, result_of(row, "reading active tasks")?))
            })
            .collect::<Result<Vec<_>>>()
    })
    .await
    .map_err(|e| StoreError::Other(format!("decoding active tasks: {e}")))?
}

const API_TOKEN_COLUMNS: &str =
    "id, identity, secret_sha256, description, created_by, created_at, expires_at, last_used_at, revoked_at";

fn api_token_row(r: &tokio_postgres::Row) -> Result<crate::ApiToken> {
    use muster_core::time::from_micros;
    let what = "reading api token";
    Ok(crate::ApiToken {
        id: col(r, 0, what)?,
        identity: col(r, 1, what)?,
        secret_sha256: col(r, 2, what)?,
        description: col(r, 3, what)?,
        created_by: col(r, 4, what)?,
        created_at: from_micros(col(r, 5, what)?),
        expires_at: from_micros(col(r, 6, what)?),
        last_used_at: col::<Option<i64>>(r, 7, what)?.map(from_micros),
        revoked_at: col::<Option<i64>>(r, 8, what)?.map(from_micros),
    })
}

pub(crate) async fn get_api_token(c: &Client, id: &str) -> Result<Option<crate::ApiToken>> {
    let st = c
        .prepare_cached(&format!("SELECT {API_TOKEN_COLUMNS} FROM api_token WHERE id = $1"))
        .await
        .map_err(pg_err("preparing api token read"))?;
    let row = c.query_opt(&st, &[&id]).await.map_err(pg_err("reading api token"))?;
    row.as_ref().map(api_token_row).transpose()
}

pub(crate) async fn list_api_tokens(c: &Client) -> Result<Vec<crate::ApiToken>> {
    let st = c
        .prepare_cached(&format!("SELECT {API_TOKEN_COLUMNS} FROM api_token ORDER BY created_at, id"))
        .await
        .map_err(pg_err("preparing api tokens read"))?;
    let rows = c.query(&st, &[]).await.map_err(pg_err("reading api tokens"))?;
    rows.iter().map(api_token_row).collect()
}

pub(crate) async fn get_ui_session(c: &Client, id_sha256: &[u8]) -> Result<Option<crate::UiSession>> {
    use muster_core::time::from_micros;
    let what = "reading ui session";
    let st = c
        .prepare_cached("SELECT id_sha256, identity, created_at, expires_at FROM ui_session WHERE id_sha256 = $1")
        .await
        .map_err(pg_err("preparing ui session read"))?;
    let row = c.query_opt(&st, &[&id_sha256]).await.map_err(pg_err(what))?;
    row.map(|r| {
        Ok(crate::UiSession {
            id_sha256: col(&r, 0, what)?,
            identity: col(&r, 1, what)?,
            created_at: from_micros(col(&r, 2, what)?),
            expires_at: from_micros(col(&r, 3, what)?),
        })
    })
    .transpose()
}
