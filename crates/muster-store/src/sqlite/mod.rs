//! The SQLite backend: [`SqliteStore`].
//!
//! Owns the database file: WAL mode, `synchronous=FULL`, one writer thread
//! doing group commit ([`writer`]), a small pool of read-only connections
//! used from `spawn_blocking` ([`read`]), append-only migrations
//! ([`schema`]) and the blob encoding of records ([`blob`]).

mod backup;
pub(crate) mod blob;
pub(crate) mod drain;
mod jobs;
mod outbox;
mod read;
mod schema;
mod writer;

#[cfg(test)]
mod tests;

use crate::{CommitOutcome, EventQuery, Page, Result, Store, StoreError, TaskQuery, Txn};
use async_trait::async_trait;
use muster_core::bot::BotToken;
use muster_core::{BotEvent, BotInfo, TaskId, TaskRequest, TaskResult, Time};
use parking_lot::Mutex;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::oneshot;

pub use backup::{backup, restore};
pub use schema::{migration_versions, SCHEMA_VERSION};
use writer::Job;

/// Read-only connections in the pool.
const READERS: usize = 4;
/// How long a connection waits for a lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Maps a driver error to [`StoreError::Other`] with context.
pub(crate) fn sql_err(ctx: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| StoreError::Other(format!("{ctx}: {e}"))
}

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    inner: Arc<Readers>,
    tx: Option<mpsc::Sender<Job>>,
    writer: Option<JoinHandle<()>>,
}

/// The pool of read-only connections.
struct Readers {
    conns: Vec<Mutex<Connection>>,
    next: AtomicUsize,
}

impl Readers {
    fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        for c in &self.conns {
            if let Some(g) = c.try_lock() {
                return f(&g);
            }
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.conns.len();
        let g = self.conns[i].lock();
        f(&g)
    }
}

fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT).map_err(sql_err("setting busy timeout"))?;
    conn.set_prepared_statement_cache_capacity(64);
    // Reads map the file instead of copying pages through read(2).
    conn.execute_batch("PRAGMA mmap_size = 1073741824; PRAGMA cache_size = -16384;")
        .map_err(sql_err("setting cache pragmas"))?;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, creating parent
    /// directories, and migrates it to [`SCHEMA_VERSION`]. Fails with
    /// [`StoreError::TooNew`] on a database written by a newer muster.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| StoreError::Other(format!("creating directory {}: {e}", dir.display())))?;
            }
        }
        let mut wconn = Connection::open(path)
            .map_err(|e| StoreError::Other(format!("opening database {}: {e}", path.display())))?;
        configure(&wconn)?;
        wconn
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = OFF;")
            .map_err(sql_err("setting pragmas"))?;
        schema::migrate(&mut wconn)?;

        let mut conns = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let c = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
            )
            .map_err(|e| StoreError::Other(format!("opening read connection {}: {e}", path.display())))?;
            configure(&c)?;
            conns.push(Mutex::new(c));
        }

        let (tx, rx) = mpsc::channel();
        let writer = std::thread::Builder::new()
            .name("muster-sqlite-writer".into())
            .spawn(move || writer::run(wconn, rx))
            .map_err(|e| StoreError::Other(format!("spawning writer thread: {e}")))?;
        Ok(SqliteStore {
            inner: Arc::new(Readers { conns, next: AtomicUsize::new(0) }),
            tx: Some(tx),
            writer: Some(writer),
        })
    }

    /// The durability settings (`journal_mode`, `synchronous`) read back from
    /// the live connection that writes, for checks that fail when someone
    /// weakens them. Read-only.
    pub async fn durability(&self) -> Result<Vec<(String, String)>> {
        let (reply, rx) = oneshot::channel();
        self.send(Job::Durability(reply))?;
        replied(rx.await)
    }

    fn send(&self, job: Job) -> Result<()> {
        let tx = self.tx.as_ref().ok_or_else(|| StoreError::Other("store is closed".into()))?;
        tx.send(job).map_err(|_| StoreError::Other("sqlite writer thread is gone".into()))
    }

    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.with(f))
            .await
            .map_err(|e| StoreError::Other(format!("read task failed: {e}")))?
    }
}

impl Drop for SqliteStore {
    /// Stops the writer after it finishes queued work (everything already
    /// acknowledged is durable regardless).
    fn drop(&mut self) {
        self.tx.take();
        if let Some(h) = self.writer.take() {
            let _ = h.join();
        }
    }
}

fn replied<T>(r: std::result::Result<Result<T>, oneshot::error::RecvError>) -> Result<T> {
    r.map_err(|_| StoreError::Other("sqlite writer dropped the request".into()))?
}

#[async_trait]
impl Store for SqliteStore {
    async fn commit(&self, txn: Txn) -> Result<CommitOutcome> {
        if txn.is_empty() {
            return Ok(CommitOutcome::Committed);
        }
        let (tx, rx) = oneshot::channel();
        self.send(Job::Commit(txn, tx))?;
        replied(rx.await)
    }

    async fn get_request(&self, id: TaskId) -> Result<Option<TaskRequest>> {
        self.read(move |c| read::get_request(c, id)).await
    }

    async fn get_result(&self, id: TaskId) -> Result<Option<TaskResult>> {
        self.read(move |c| read::get_result(c, id)).await
    }

    async fn get_results(&self, ids: &[TaskId]) -> Result<Vec<Option<TaskResult>>> {
        let ids = ids.to_vec();
        self.read(move |c| read::get_results(c, &ids)).await
    }

    async fn lookup_request_uuid(&self, key: &str) -> Result<Option<TaskId>> {
        let key = key.to_string();
        self.read(move |c| read::lookup_request_uuid(c, &key)).await
    }

    async fn find_dedup(&self, properties_hash: &str, since: Time) -> Result<Option<TaskResult>> {
        let h = properties_hash.to_string();
        self.read(move |c| read::find_dedup(c, &h, since)).await
    }

    async fn list_results(&self, q: &TaskQuery) -> Result<Page<TaskResult>> {
        let q = q.clone();
        self.read(move |c| read::list_results(c, &q)).await
    }

    async fn list_requests(&self, q: &TaskQuery) -> Result<Page<TaskRequest>> {
        let q = q.clone();
        self.read(move |c| read::list_requests(c, &q)).await
    }

    async fn count_results(&self, q: &TaskQuery) -> Result<u64> {
        let q = q.clone();
        self.read(move |c| read::count_results(c, &q)).await
    }

    async fn read_output(&self, task: TaskId, offset: u64, length: u64) -> Result<Vec<u8>> {
        self.read(move |c| read::read_output(c, task, offset, length)).await
    }

    async fn get_bot(&self, bot_id: &str) -> Result<Option<BotInfo>> {
        let id = bot_id.to_string();
        self.read(move |c| read::get_bot(c, &id)).await
    }

    async fn load_bots(&self) -> Result<Vec<BotInfo>> {
        self.read(read::load_bots).await
    }

    async fn list_bot_events(&self, q: &EventQuery) -> Result<Page<BotEvent>> {
        let q = q.clone();
        self.read(move |c| read::list_bot_events(c, &q)).await
    }

    async fn load_active(&self) -> Result<Vec<(TaskRequest, TaskResult)>> {
        self.read(read::load_active).await
    }

    async fn evict(&self, before: Time, limit: usize) -> Result<u64> {
        let (reply, rx) = oneshot::channel();
        self.send(Job::Evict { before, limit, reply })?;
        replied(rx.await)
    }

    async fn get_meta(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let name = name.to_string();
        self.read(move |c| read::get_meta(c, &name)).await
    }

    async fn load_drains(&self) -> Result<Vec<muster_core::Drain>> {
        self.read(drain::load).await
    }

    async fn get_api_token(&self, id: &str) -> Result<Option<crate::ApiToken>> {
        let id = id.to_string();
        self.read(move |c| read::get_api_token(c, &id)).await
    }

    async fn list_api_tokens(&self) -> Result<Vec<crate::ApiToken>> {
        self.read(read::list_api_tokens).await
    }

    async fn get_ui_session(&self, id_sha256: &[u8]) -> Result<Option<crate::UiSession>> {
        let id = id_sha256.to_vec();
        self.read(move |c| read::get_ui_session(c, &id)).await
    }

    async fn get_bot_token(&self, id: &str) -> Result<Option<BotToken>> {
        let id = id.to_string();
        self.read(move |c| read::get_bot_token(c, &id)).await
    }

    async fn list_bot_tokens(&self) -> Result<Vec<BotToken>> {
        self.read(read::list_bot_tokens).await
    }

    fn jobs(&self) -> Option<&dyn crate::jobs::JobStore> {
        Some(self)
    }

    fn outbox(&self) -> Option<&dyn crate::outbox::OutboxStore> {
        Some(self)
    }
}
