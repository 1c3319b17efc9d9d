//! muster bot agent (docs/design.md#the-bot; docs/bot-protocol.md).
//!
//! Owns everything a worker machine does: the bot directory (lock, cleaning),
//! dimensions and state, hooks, the handshake/poll loop, running tasks with
//! output streaming and timeouts, events and self-update. It talks to the
//! server over HTTP only and never depends on server-side crates.
//!
//! Entry point: [`run`]. The `muster bot` subcommand cancels the shutdown
//! token on SIGTERM/SIGINT and re-execs on [`BotExit::Restart`].
//!
//! Modules: [`agent`] (the loop), [`runner`] (one task), [`remote`] (HTTP),
//! [`host`] (dimensions, state), [`hooks`], [`dirs`] (lock, cleaning),
//! [`update`] (self-update).

pub mod agent;
pub mod dirs;
pub mod hooks;
pub mod host;
pub mod remote;
pub mod runner;
pub mod update;

pub use hooks::{Hook, HookError};
pub use runner::{RunnerConfig, SinkError, TaskRunner, TaskSummary, UpdateSink};

use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How to run the bot. Explicit values win over the config trailer of the
/// running executable (see [`muster_api::trailer`]); the trailer's dimensions
/// are server-enforced and always override.
#[derive(Debug, Clone)]
pub struct BotOptions {
    /// Server URLs: replicas of one muster deployment, in failover order (the
    /// bot sticks to one and moves to the next when it cannot reach it).
    /// Empty: take the one URL of the trailer.
    pub servers: Vec<String>,
    /// The bot directory (created; cleaned at start; one bot per directory).
    pub dir: PathBuf,
    /// Bot id; else env `SWARMING_BOT_ID`; else the short host name.
    pub bot_id: Option<String>,
    /// Dimensions added to (and replacing) the auto-detected ones.
    pub extra_dimensions: BTreeMap<String, Vec<String>>,
    /// Hook executable; else the trailer's `hook_script`, written to `<dir>/hook`.
    pub hook: Option<PathBuf>,
    /// Time a hook call may take before it is killed.
    pub hook_timeout: Duration,
    /// Credential sent as `Authorization: Bearer` (a group token or a
    /// machine token `msm_…`). Never taken from the served executable.
    pub token: Option<String>,
    /// A one-time bootstrap token, used when there is no `token` and no
    /// machine token stored in the bot directory yet: presented at the first
    /// handshake, it is exchanged for a machine token that the bot stores as
    /// `<dir>/machine.token` (mode 0600) and uses from then on.
    pub bootstrap_token: Option<String>,
    /// Obey `update` commands. When false, `update` is treated as a sleep and
    /// reported once as a `bot_error`.
    pub self_update: bool,
    /// The bot quarantines itself when its partition has less free space (MiB).
    pub min_free_disk_mb: u64,
    /// Packet cadence of the task runner.
    pub runner: RunnerConfig,
    /// PEM file of CA certificates trusted for an https:// server, in
    /// addition to the system's (e.g. a private CA).
    pub ca_file: Option<PathBuf>,
}

impl BotOptions {
    /// Options with defaults for everything but one server URL (empty: from
    /// the trailer) and the directory.
    pub fn new(server: impl Into<String>, dir: impl Into<PathBuf>) -> Self {
        let server = server.into();
        let servers = if server.trim().is_empty() { Vec::new() } else { vec![server] };
        Self::with_servers(servers, dir)
    }

    /// Options with defaults for everything but the server URLs (replicas of
    /// one deployment, in failover order; empty: from the trailer) and the
    /// directory.
    pub fn with_servers(servers: Vec<String>, dir: impl Into<PathBuf>) -> Self {
        BotOptions {
            servers,
            dir: dir.into(),
            bot_id: None,
            extra_dimensions: BTreeMap::new(),
            hook: None,
            hook_timeout: hooks::DEFAULT_HOOK_TIMEOUT,
            token: None,
            bootstrap_token: None,
            self_update: true,
            min_free_disk_mb: 1024,
            runner: RunnerConfig::default(),
            ca_file: None,
        }
    }
}

/// Why [`run`] returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BotExit {
    /// The server said `terminate`.
    Terminated,
    /// The shutdown token was cancelled (a signal).
    Shutdown,
    /// Re-exec `exe` with the same arguments (self-update or `bot_restart`).
    Restart { exe: PathBuf },
}

/// Failures that stop the bot before it can serve.
#[derive(Debug, thiserror::Error)]
pub enum BotError {
    #[error("another bot is already running in {0} (its lock file muster-bot.lck is held)")]
    AlreadyRunning(PathBuf),
    #[error("refusing to use {0} as the bot directory: {1}; it is emptied at start")]
    UnsafeDir(PathBuf, String),
    #[error("no server URL: pass one, or run a binary downloaded from the server's /bot_code")]
    NoServer,
    #[error("invalid server URL {0:?}: it must start with http:// or https://")]
    BadServer(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("creating the HTTP client: {0}")]
    Http(String),
}

impl BotError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        BotError::Io { context: context.into(), source }
    }
}

/// SHA-256 hex of the running executable's bytes (the bot's version).
pub fn own_version() -> std::io::Result<String> {
    let mut f = std::fs::File::open(std::env::current_exe()?)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// The config trailer of the running executable, if it has one.
pub fn own_trailer() -> std::io::Result<Option<muster_api::trailer::BotConfig>> {
    read_trailer(&std::env::current_exe()?)
}

/// Reads the config trailer of an executable from its last bytes only (the
/// executable itself can be tens of MiB). None when it has no valid trailer.
pub fn read_trailer(path: &std::path::Path) -> std::io::Result<Option<muster_api::trailer::BotConfig>> {
    use std::io::{Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    if len < 16 {
        return Ok(None);
    }
    let mut tail = [0u8; 16];
    f.seek(SeekFrom::Start(len - 16))?;
    f.read_exact(&mut tail)?;
    if &tail[8..] != muster_api::trailer::MAGIC {
        return Ok(None);
    }
    let mut n = [0u8; 8];
    n.copy_from_slice(&tail[..8]);
    let n = u64::from_le_bytes(n);
    if n > 1 << 20 || n > len - 16 {
        return Ok(None);
    }
    let mut json = vec![0u8; n as usize];
    f.seek(SeekFrom::Start(len - 16 - n))?;
    f.read_exact(&mut json)?;
    Ok(serde_json::from_slice(&json).ok())
}

/// Runs the bot until the server terminates it, `shutdown` is cancelled, or it
/// must restart. Fails fast if another bot holds the directory.
pub async fn run(opts: BotOptions, shutdown: CancellationToken) -> Result<BotExit, BotError> {
    agent::run(opts, shutdown).await
}
