//! muster-store: durable state behind one async [`Store`] trait.
//!
//! Owns: SQL, schemas, migrations, the group-commit writer. Exposes domain
//! types from muster-core only; no driver type crosses this API.
//! Must not: hold business rules (which state follows which lives in
//! muster-sched) or know wire formats.
//!
//! Writes are [`Txn`]s: an ordered list of [`Write`]s applied atomically.
//! A `Txn` whose compare-and-set fails is rolled back alone and reported as
//! [`CommitOutcome::Conflict`]; other transactions of the same group commit
//! are unaffected. Nothing is acknowledged before it is durable.

pub mod conformance;
pub mod jobs;
pub mod outbox;
pub mod postgres;
mod shared;
pub mod sqlite;

use async_trait::async_trait;
use muster_core::bot::BotToken;
use muster_core::dims::DimFilter;
use muster_core::state::{SortQuery, StateQuery};
use muster_core::{BotEvent, BotInfo, TaskId, TaskRequest, TaskResult, Time};

#[doc(hidden)]
pub use async_trait::async_trait as __async_trait;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// Output is stored in chunks of this many bytes (Swarming's 100 KiB).
pub const OUTPUT_CHUNK_SIZE: u64 = 100 * 1024;
/// At most this many chunks per task (~100 MiB); bytes past that are dropped.
pub const OUTPUT_MAX_CHUNKS: u64 = 1024;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// The database was written by a newer muster.
    #[error("database schema version {found} is newer than this binary supports ({supported})")]
    TooNew { found: i64, supported: i64 },
    #[error("store: {0}")]
    Other(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl From<StoreError> for muster_core::Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => muster_core::Error::not_found("not found"),
            other => muster_core::Error::internal(other.to_string()),
        }
    }
}

/// One mutation inside a [`Txn`].
#[derive(Debug, Clone)]
pub enum Write {
    /// Insert a new task: request + result. Conflict if the id exists.
    InsertTask { request: Box<TaskRequest>, result: Box<TaskResult> },
    /// Compare-and-set a result: applies only if the stored version equals
    /// `result.version`; the stored version becomes `result.version + 1`.
    UpdateResult(Box<TaskResult>),
    /// Map an idempotency key (already scoped by caller) to a task.
    /// Conflict if the key exists.
    PutRequestUuid { key: String, task: TaskId, created: Time },
    /// Write output bytes at a byte offset: overwrite, zero-fill any gap,
    /// drop bytes past the cap. Idempotent.
    WriteOutput { task: TaskId, offset: u64, data: Vec<u8> },
    /// Insert or replace a bot.
    PutBot(Box<BotInfo>),
    /// Forget a bot's current record (its events stay).
    DeleteBot(String),
    /// Append to a bot's history.
    AppendEvent(Box<BotEvent>),
    /// Store a named value shared by every server on this database (e.g. the
    /// session key) unless one is already there. Never a conflict: read the
    /// winner back with [`Store::get_meta`].
    PutMetaIfAbsent { name: String, value: Vec<u8> },
    /// Insert or replace a drain (keyed by its target).
    PutDrain(Box<muster_core::Drain>),
    /// Remove a drain by its target key (no-op when absent).
    DeleteDrain(String),
    /// Store a machine token unless its id exists (then a no-op: ids are
    /// random, a retry is the same token).
    PutBotToken(Box<BotToken>),
    /// Mark a machine token revoked at `at`; a no-op if unknown or already
    /// revoked.
    RevokeBotToken { id: String, at: Time },
    /// Record that the bootstrap token whose SHA-256 is `token_sha256` was
    /// exchanged by `bot_id` for machine token `bot_token_id`. Conflict if
    /// it already was: a bootstrap token is good once.
    UseBootstrapToken { token_sha256: String, bot_id: String, bot_token_id: String, at: Time },
    /// Scheduled-job state (see [`jobs::JobWrite`]).
    Jobs(Box<jobs::JobWrite>),
    /// Notification outbox rows (see [`outbox::OutboxWrite`]).
    Outbox(Box<outbox::OutboxWrite>),
    /// Insert an API token. Conflict if the id exists.
    PutApiToken(Box<ApiToken>),
    /// Mark a token revoked at `at` unless it already is (idempotent).
    RevokeApiToken { id: String, at: Time },
    /// Record a token's last use.
    TouchApiToken { id: String, at: Time },
    /// Insert a web UI session. Conflict if the id hash exists.
    PutUiSession(Box<UiSession>),
    /// End a web UI session (no-op when absent).
    DeleteUiSession { id_sha256: Vec<u8> },
    /// Forget every web UI session that expired before `before`.
    PurgeUiSessions { before: Time },
}

/// A signed-in browser's session as stored: never the session id (the
/// cookie), only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UiSession {
    pub id_sha256: Vec<u8>,
    pub identity: String,
    pub created_at: Time,
    pub expires_at: Time,
}

/// A client API token as stored: never the secret, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: String,
    pub identity: String,
    pub secret_sha256: Vec<u8>,
    pub description: String,
    pub created_by: String,
    pub created_at: Time,
    pub expires_at: Time,
    pub last_used_at: Option<Time>,
    pub revoked_at: Option<Time>,
}

/// Writes applied atomically, in order.
///
/// A committed Txn is announced to the other server processes sharing the
/// database ([`Store::subscribe`]) with the tasks and bots it touched,
/// unless it is `quiet` (the periodic flush of bot liveness, which peers pick
/// up at their next resync instead).
#[derive(Debug, Clone, Default)]
pub struct Txn {
    pub writes: Vec<Write>,
    pub quiet: bool,
}

impl Txn {
    pub fn new() -> Txn {
        Txn::default()
    }
    pub fn push(&mut self, w: Write) -> &mut Txn {
        self.writes.push(w);
        self
    }
    pub fn with(mut self, w: Write) -> Txn {
        self.writes.push(w);
        self
    }
    /// Not announced to peers.
    pub fn quiet(mut self) -> Txn {
        self.quiet = true;
        self
    }
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// The tasks and bots this Txn touches, as announced to peers.
    pub fn changes(&self) -> Changes {
        let mut c = Changes::default();
        for w in &self.writes {
            match w {
                Write::InsertTask { result, .. } => c.tasks.push(result.id),
                Write::UpdateResult(r) => c.tasks.push(r.id),
                Write::PutBot(b) => c.bots.push(b.bot_id.clone()),
                Write::DeleteBot(id) => c.bots.push(id.clone()),
                Write::PutDrain(_) | Write::DeleteDrain(_) => c.drains = true,
                Write::PutRequestUuid { .. }
                | Write::WriteOutput { .. }
                | Write::AppendEvent(_)
                | Write::PutMetaIfAbsent { .. }
                | Write::PutApiToken(_)
                | Write::RevokeApiToken { .. }
                | Write::TouchApiToken { .. }
                | Write::PutUiSession(_)
                | Write::DeleteUiSession { .. }
                | Write::PurgeUiSessions { .. } => {}
                Write::PutBotToken(_)
                | Write::RevokeBotToken { .. }
                | Write::UseBootstrapToken { .. }
                | Write::Jobs(_)
                | Write::Outbox(_) => {}
            }
        }
        c.tasks.sort_unstable();
        c.tasks.dedup();
        c.bots.sort_unstable();
        c.bots.dedup();
        c
    }
}

/// Tasks and bots changed by another server process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub tasks: Vec<TaskId>,
    pub bots: Vec<String>,
    /// A drain was put or lifted: peers reload the drains.
    pub drains: bool,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty() && self.bots.is_empty() && !self.drains
    }
}

/// What a subscription delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feed {
    /// Another process committed these changes.
    Changed(Changes),
    /// Announcements may have been lost (the listening connection dropped):
    /// reconcile everything with the store.
    Missed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Everything is durable.
    Committed,
    /// The write at `index` failed its precondition; nothing was applied.
    Conflict { index: usize },
}

/// Filter for task listings (ListTasks, ListTaskRequests, CountTasks,
/// ListBotTasks, CancelTasks). Results are newest-created first.
#[derive(Debug, Clone, Default)]
pub struct TaskQuery {
    pub state: StateQuery,
    pub sort: SortQuery,
    /// ANDed `key:v1|v2` tag filters.
    pub tags: Vec<DimFilter>,
    /// Inclusive lower bound on the sort timestamp.
    pub start: Option<Time>,
    /// Exclusive upper bound on the sort timestamp.
    pub end: Option<Time>,
    /// Only tasks run by this bot.
    pub bot_id: Option<String>,
    /// Page size; 0 means no limit (counts).
    pub limit: usize,
    /// Resume after this opaque position (from a previous page).
    pub cursor: Option<String>,
}

/// A page of results plus the cursor for the next one (None = no more).
#[derive(Debug, Clone, Default)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub cursor: Option<String>,
}

/// Filter for bot event listings. Newest first.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub bot_id: String,
    pub start: Option<Time>,
    pub end: Option<Time>,
    pub limit: usize,
    pub cursor: Option<String>,
}

/// The durable state of muster.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies `txn` atomically and durably (group commit).
    async fn commit(&self, txn: Txn) -> Result<CommitOutcome>;

    async fn get_request(&self, id: TaskId) -> Result<Option<TaskRequest>>;
    /// The requests among `ids` that exist, in no particular order.
    async fn get_requests(&self, ids: &[TaskId]) -> Result<Vec<TaskRequest>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.extend(self.get_request(*id).await?);
        }
        Ok(out)
    }
    async fn get_result(&self, id: TaskId) -> Result<Option<TaskResult>>;
    /// Results for `ids`, in the same order (None where unknown).
    async fn get_results(&self, ids: &[TaskId]) -> Result<Vec<Option<TaskResult>>>;
    async fn lookup_request_uuid(&self, key: &str) -> Result<Option<TaskId>>;
    /// The newest reusable result with this properties hash created at or
    /// after `since` (docs/client-api.md#deduplication).
    async fn find_dedup(&self, properties_hash: &str, since: Time) -> Result<Option<TaskResult>>;

    async fn list_results(&self, q: &TaskQuery) -> Result<Page<TaskResult>>;
    async fn list_requests(&self, q: &TaskQuery) -> Result<Page<TaskRequest>>;
    async fn count_results(&self, q: &TaskQuery) -> Result<u64>;

    /// Up to `length` bytes of a task's output from `offset`.
    async fn read_output(&self, task: TaskId, offset: u64, length: u64) -> Result<Vec<u8>>;

    async fn get_bot(&self, bot_id: &str) -> Result<Option<BotInfo>>;
    /// The bots among `ids` that exist, in no particular order.
    async fn get_bots(&self, ids: &[String]) -> Result<Vec<BotInfo>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.extend(self.get_bot(id).await?);
        }
        Ok(out)
    }
    /// Every bot record (startup rebuild).
    async fn load_bots(&self) -> Result<Vec<BotInfo>>;
    async fn list_bot_events(&self, q: &EventQuery) -> Result<Page<BotEvent>>;

    /// Every PENDING or RUNNING task with its request (startup rebuild).
    async fn load_active(&self) -> Result<Vec<(TaskRequest, TaskResult)>>;

    /// Deletes finished tasks created before `before` and bot events older
    /// than `before`, at most `limit` rows of each; returns rows deleted.
    async fn evict(&self, before: Time, limit: usize) -> Result<u64>;

    /// A value stored with [`Write::PutMetaIfAbsent`].
    async fn get_meta(&self, name: &str) -> Result<Option<Vec<u8>>>;
    /// An API token by id.
    async fn get_api_token(&self, id: &str) -> Result<Option<ApiToken>>;
    /// Every API token (revoked and expired included), oldest first.
    async fn list_api_tokens(&self) -> Result<Vec<ApiToken>>;
    /// A web UI session by the SHA-256 of its id (expired ones included).
    async fn get_ui_session(&self, id_sha256: &[u8]) -> Result<Option<UiSession>>;

    /// Every drain ([`Write::PutDrain`]), ordered by target key.
    async fn load_drains(&self) -> Result<Vec<muster_core::Drain>>;
    /// A machine token by id (revoked ones included).
    async fn get_bot_token(&self, id: &str) -> Result<Option<BotToken>>;
    /// Every machine token, by host then id.
    async fn list_bot_tokens(&self) -> Result<Vec<BotToken>>;

    /// Changes committed by OTHER server processes on this database, for
    /// keeping an in-memory index in sync. `None` when the database cannot be
    /// shared (SQLite: one server per file). Once listening has started,
    /// nothing committed afterwards is missed without a [`Feed::Missed`].
    async fn subscribe(&self) -> Result<Option<tokio::sync::mpsc::UnboundedReceiver<Feed>>> {
        Ok(None)
    }

    /// Whether this process holds (or just took) the lease to run the
    /// once-per-deployment background work (expiry, dead bots, retention).
    /// Always true for a store only one process uses.
    async fn lead(&self) -> Result<bool> {
        Ok(true)
    }

    /// Reads of scheduled-job state, where the backend has them.
    fn jobs(&self) -> Option<&dyn jobs::JobStore> {
        None
    }

    /// Reads of the notification outbox, where the backend has it.
    fn outbox(&self) -> Option<&dyn outbox::OutboxStore> {
        None
    }
}

/// Implements [`Store`] for a decorator that holds another store in field
/// `$inner`: the items given (at least `commit` and `load_active`, the two
/// a decorator has reasons to change) come first, every other method
/// forwards to the inner store. A method added to [`Store`] is forwarded by
/// every decorator from here.
#[macro_export]
macro_rules! decorate_store {
    ($ty:ty, $inner:ident, { $($own:tt)* }) => {
        #[$crate::__async_trait]
        impl $crate::Store for $ty {
            $($own)*

            async fn get_request(&self, id: muster_core::TaskId) -> $crate::Result<Option<muster_core::TaskRequest>> {
                self.$inner.get_request(id).await
            }
            async fn get_requests(&self, ids: &[muster_core::TaskId]) -> $crate::Result<Vec<muster_core::TaskRequest>> {
                self.$inner.get_requests(ids).await
            }
            async fn get_result(&self, id: muster_core::TaskId) -> $crate::Result<Option<muster_core::TaskResult>> {
                self.$inner.get_result(id).await
            }
            async fn get_results(
                &self,
                ids: &[muster_core::TaskId],
            ) -> $crate::Result<Vec<Option<muster_core::TaskResult>>> {
                self.$inner.get_results(ids).await
            }
            async fn lookup_request_uuid(&self, key: &str) -> $crate::Result<Option<muster_core::TaskId>> {
                self.$inner.lookup_request_uuid(key).await
            }
            async fn find_dedup(
                &self,
                properties_hash: &str,
                since: muster_core::Time,
            ) -> $crate::Result<Option<muster_core::TaskResult>> {
                self.$inner.find_dedup(properties_hash, since).await
            }
            async fn list_results(&self, q: &$crate::TaskQuery) -> $crate::Result<$crate::Page<muster_core::TaskResult>> {
                self.$inner.list_results(q).await
            }
            async fn list_requests(
                &self,
                q: &$crate::TaskQuery,
            ) -> $crate::Result<$crate::Page<muster_core::TaskRequest>> {
                self.$inner.list_requests(q).await
            }
            async fn count_results(&self, q: &$crate::TaskQuery) -> $crate::Result<u64> {
                self.$inner.count_results(q).await
            }
            async fn read_output(&self, task: muster_core::TaskId, offset: u64, length: u64) -> $crate::Result<Vec<u8>> {
                self.$inner.read_output(task, offset, length).await
            }
            async fn get_bot(&self, bot_id: &str) -> $crate::Result<Option<muster_core::BotInfo>> {
                self.$inner.get_bot(bot_id).await
            }
            async fn get_bots(&self, ids: &[String]) -> $crate::Result<Vec<muster_core::BotInfo>> {
                self.$inner.get_bots(ids).await
            }
            async fn load_bots(&self) -> $crate::Result<Vec<muster_core::BotInfo>> {
                self.$inner.load_bots().await
            }
            async fn list_bot_events(&self, q: &$crate::EventQuery) -> $crate::Result<$crate::Page<muster_core::BotEvent>> {
                self.$inner.list_bot_events(q).await
            }
            async fn evict(&self, before: muster_core::Time, limit: usize) -> $crate::Result<u64> {
                self.$inner.evict(before, limit).await
            }
            async fn get_meta(&self, name: &str) -> $crate::Result<Option<Vec<u8>>> {
                self.$inner.get_meta(name).await
            }
            async fn load_drains(&self) -> $crate::Result<Vec<muster_core::Drain>> {
                self.$inner.load_drains().await
            }
            async fn get_api_token(&self, id: &str) -> $crate::Result<Option<$crate::ApiToken>> {
                self.$inner.get_api_token(id).await
            }
            async fn list_api_tokens(&self) -> $crate::Result<Vec<$crate::ApiToken>> {
                self.$inner.list_api_tokens().await
            }
            async fn get_ui_session(&self, id_sha256: &[u8]) -> $crate::Result<Option<$crate::UiSession>> {
                self.$inner.get_ui_session(id_sha256).await
            }
            async fn get_bot_token(&self, id: &str) -> $crate::Result<Option<muster_core::bot::BotToken>> {
                self.$inner.get_bot_token(id).await
            }
            async fn list_bot_tokens(&self) -> $crate::Result<Vec<muster_core::bot::BotToken>> {
                self.$inner.list_bot_tokens().await
            }
            async fn subscribe(
                &self,
            ) -> $crate::Result<Option<tokio::sync::mpsc::UnboundedReceiver<$crate::Feed>>> {
                self.$inner.subscribe().await
            }
            async fn lead(&self) -> $crate::Result<bool> {
                self.$inner.lead().await
            }
            fn jobs(&self) -> Option<&dyn $crate::jobs::JobStore> {
                self.$inner.jobs()
            }
            fn outbox(&self) -> Option<&dyn $crate::outbox::OutboxStore> {
                self.$inner.outbox()
            }
        }
    };
}
