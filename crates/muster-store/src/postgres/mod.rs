//! The PostgreSQL backend: [`PostgresStore`].
//!
//! Owns a pool of tokio-postgres connections (deadpool-postgres, no TLS),
//! its append-only migrations ([`schema`]), the transactional writes
//! ([`write`]: one database transaction per [`Txn`], compare-and-set by
//! `UPDATE ... WHERE version = $n`) and the read queries ([`read`]). Rows
//! hold the same indexed columns and JSON blobs as the SQLite backend
//! (`crate::sqlite::blob` is shared), so both behave alike; the
//! conformance suite is the judge.

mod drain;
mod jobs;
mod notify;
mod outbox;
mod read;
mod schema;
mod write;

use crate::{CommitOutcome, EventQuery, Feed, Page, Result, Store, StoreError, TaskQuery, Txn};
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use muster_core::bot::BotToken;
use muster_core::{BotEvent, BotInfo, TaskId, TaskRequest, TaskResult, Time};
use tokio_postgres::NoTls;

// The JSON blob encoding is shared with the SQLite backend.
use crate::sqlite::blob;

pub use schema::{migration_versions, SCHEMA_VERSION};

/// Connections in the pool.
const POOL_SIZE: usize = 16;

/// Maps a driver error to [`StoreError::Other`] with context.
pub(crate) fn pg_err(ctx: &'static str) -> impl Fn(tokio_postgres::Error) -> StoreError {
    move |e| StoreError::Other(format!("{ctx}: {e}"))
}

/// The PostgreSQL implementation of [`Store`]. Several server processes
/// may share one database (see [`notify`] for how they keep in step).
pub struct PostgresStore {
    pool: Pool,
    config: tokio_postgres::Config,
    /// Identifies this process's change announcements.
    origin: u64,
    /// Whether commits are announced to peers.
    announce: bool,
    lease: notify::Lease,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").field("pool", &self.pool.status()).finish()
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (a libpq-style connection string
    /// or `postgres://` URL, no TLS) and migrates it to [`SCHEMA_VERSION`].
    /// Fails with [`StoreError::TooNew`] on a database written by a newer
    /// muster.
    pub async fn connect(url: &str) -> Result<PostgresStore> {
        let config: tokio_postgres::Config =
            url.parse().map_err(|e| StoreError::Other(format!("parsing postgres url: {e}")))?;
        let manager =
            Manager::from_config(config.clone(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| StoreError::Other(format!("building postgres pool: {e}")))?;
        let store = PostgresStore {
            pool,
            lease: notify::Lease::new(config.clone()),
            config,
            origin: notify::new_origin(),
            announce: true,
        };
        let mut client = store.client().await?;
        schema::migrate(&mut client).await?;
        Ok(store)
    }

    /// Commits of this store are not announced to peers, which then learn
    /// of them only at their next periodic resync (tests of that path).
    pub fn without_announcements(mut self) -> PostgresStore {
        self.announce = false;
        self
    }

    /// The durability settings (`synchronous_commit`, `fsync`,
    /// `full_page_writes`) read back from a live connection of the pool the
    /// store writes through, for checks that fail when someone weakens
    /// them. Read-only.
    pub async fn durability(&self) -> Result<Vec<(String, String)>> {
        let client = self.client().await?;
        let mut out = Vec::new();
        for name in ["synchronous_commit", "fsync", "full_page_writes"] {
            let row = client
                .query_one(&format!("SHOW {name}"), &[])
                .await
                .map_err(|e| StoreError::Other(format!("reading {name}: {e}")))?;
            out.push((name.to_string(), row.get::<_, String>(0)));
        }
        Ok(out)
    }

    async fn client(&self) -> Result<Object> {
        self.pool.get().await.map_err(|e| StoreError::Other(format!("connecting to postgres: {e}")))
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn commit(&self, txn: Txn) -> Result<CommitOutcome> {
        if txn.is_empty() {
            return Ok(CommitOutcome::Committed);
        }
        let announce =
            if self.announce && !txn.quiet { notify::payloads(self.origin, &txn.changes())? } else { Vec::new() };
        let mut client = self.client().await?;
        write::commit(&mut client, &txn, &announce).await
    }

    async fn get_request(&self, id: TaskId) -> Result<Option<TaskRequest>> {
        read::get_request(&*self.client().await?, id).await
    }

    async fn get_result(&self, id: TaskId) -> Result<Option<TaskResult>> {
        read::get_result(&*self.client().await?, id).await
    }

    async fn get_results(&self, ids: &[TaskId]) -> Result<Vec<Option<TaskResult>>> {
        read::get_results(&*self.client().await?, ids).await
    }

    async fn lookup_request_uuid(&self, key: &str) -> Result<Option<TaskId>> {
        read::lookup_request_uuid(&*self.client().await?, key).await
    }

    async fn find_dedup(&self, properties_hash: &str, since: Time) -> Result<Option<TaskResult>> {
        read::find_dedup(&*self.client().await?, properties_hash, since).await
    }

    async fn list_results(&self, q: &TaskQuery) -> Result<Page<TaskResult>> {
        read::list_results(&*self.client().await?, q).await
    }

    async fn list_requests(&self, q: &TaskQuery) -> Result<Page<TaskRequest>> {
        read::list_requests(&*self.client().await?, q).await
    }

    async fn count_results(&self, q: &TaskQuery) -> Result<u64> {
        read::count_results(&*self.client().await?, q).await
    }

    async fn read_output(&self, task: TaskId, offset: u64, length: u64) -> Result<Vec<u8>> {
        read::read_output(&*self.client().await?, task, offset, length).await
    }

    async fn get_bot(&self, bot_id: &str) -> Result<Option<BotInfo>> {
        read::get_bot(&*self.client().await?, bot_id).await
    }

    async fn get_bots(&self, ids: &[String]) -> Result<Vec<BotInfo>> {
        read::get_bots(&*self.client().await?, ids).await
    }

    async fn get_requests(&self, ids: &[TaskId]) -> Result<Vec<TaskRequest>> {
        read::get_requests(&*self.client().await?, ids).await
    }

    async fn load_bots(&self) -> Result<Vec<BotInfo>> {
        read::load_bots(&*self.client().await?).await
    }

    async fn list_bot_events(&self, q: &EventQuery) -> Result<Page<BotEvent>> {
        read::list_bot_events(&*self.client().await?, q).await
    }

    async fn load_active(&self) -> Result<Vec<(TaskRequest, TaskResult)>> {
        read::load_active(&*self.client().await?).await
    }

    async fn evict(&self, before: Time, limit: usize) -> Result<u64> {
        let mut client = self.client().await?;
        write::evict(&mut client, before, limit).await
    }

    async fn get_meta(&self, name: &str) -> Result<Option<Vec<u8>>> {
        read::get_meta(&*self.client().await?, name).await
    }

    async fn load_drains(&self) -> Result<Vec<muster_core::Drain>> {
        drain::load(&*self.client().await?).await
    }

    async fn get_api_token(&self, id: &str) -> Result<Option<crate::ApiToken>> {
        read::get_api_token(&*self.client().await?, id).await
    }

    async fn list_api_tokens(&self) -> Result<Vec<crate::ApiToken>> {
        read::list_api_tokens(&*self.client().await?).await
    }

    async fn get_ui_session(&self, id_sha256: &[u8]) -> Result<Option<crate::UiSession>> {
        read::get_ui_session(&*self.client().await?, id_sha256).await
    }

    async fn get_bot_token(&self, id: &str) -> Result<Option<BotToken>> {
        read::get_bot_token(&*self.client().await?, id).await
    }

    async fn list_bot_tokens(&self) -> Result<Vec<BotToken>> {
        read::list_bot_tokens(&*self.client().await?).await
    }

    async fn subscribe(&self) -> Result<Option<tokio::sync::mpsc::UnboundedReceiver<Feed>>> {
        Ok(Some(notify::listen(self.config.clone(), self.origin).await?))
    }

    async fn lead(&self) -> Result<bool> {
        self.lease.hold().await
    }

    fn jobs(&self) -> Option<&dyn crate::jobs::JobStore> {
        Some(self)
    }

    fn outbox(&self) -> Option<&dyn crate::outbox::OutboxStore> {
        Some(self)
    }
}
