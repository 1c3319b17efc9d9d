//! Server settings. The binary builds this from flags, a TOML file and
//! `MUSTER__*` environment variables; tests build it directly.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// How bots must authenticate (docs/bot-protocol.md#authentication; docs/design.md#security).
#[derive(Clone, Default)]
pub struct BotAuth {
    /// Peers allowed by address: CIDRs like `127.0.0.0/8`, `::1/128`.
    /// Empty = any address.
    pub ip_allowlist: Vec<String>,
    /// Shared token bots send as `Authorization: Bearer <token>`. None = not required.
    pub token: Option<String>,
}

impl std::fmt::Debug for BotAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BotAuth")
            .field("ip_allowlist", &self.ip_allowlist)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Default [`ServerConfig::retention`], in days.
pub const DEFAULT_RETENTION_DAYS: u64 = 180;

/// Default [`ServerConfig::resync_interval`], in seconds.
pub const DEFAULT_RESYNC_SECS: u64 = 30;

#[derive(Clone)]
pub struct ServerConfig {
    /// URL bots and users reach this server at (no trailing slash).
    pub external_url: String,
    /// The executable served at /bot_code (with a config trailer appended).
    /// None = the running executable.
    pub bot_exe: Option<PathBuf>,
    /// Builds for other platforms, files named `muster-<os>-<arch>`.
    pub bot_platform_dir: Option<PathBuf>,
    /// Server-enforced bot dimensions (override what bots report).
    pub bot_dimensions: BTreeMap<String, Vec<String>>,
    /// Hook script delivered to muster bots in the trailer.
    pub bot_hook_script: Option<String>,
    /// Checkout of upstream luci-py `appengine/swarming/swarming_bot`: when
    /// set, `swarming_bot.zip` is built from it for Python bots (docs/bot-protocol.md#python-bot-code).
    pub python_bot_dir: Option<PathBuf>,
    /// Operator hooks injected as `config/bot_config.py` in that zip.
    pub python_bot_config: Option<PathBuf>,
    pub bot_auth: BotAuth,
    /// Bot groups from bots.cfg / access.toml. None: one default group made
    /// from `bot_auth`, `bot_dimensions` (the flags).
    pub bot_groups: Option<std::sync::Arc<muster_botauth::BotGroups>>,
    /// The config directory (hot-reloaded): its bots.cfg / `[[bot_auth]]`
    /// groups, when it has any, win over `bot_groups` and the flags.
    pub bot_config: Option<std::sync::Arc<muster_config::ConfigHolder>>,
    /// HMAC key for bot session tokens (shared by replicas through the database).
    pub session_secret: Vec<u8>,
    /// How long a bot session token is valid (refreshed on every call).
    pub session_expiry: Duration,
    pub sweep_interval: Duration,
    /// With replicas: how often the in-memory state is reconciled with the
    /// database in full, in case an announcement was missed.
    pub resync_interval: Duration,
    /// Finished tasks (with their output) and bot events older than this
    /// are deleted. None = keep forever.
    pub retention: Option<Duration>,
    pub server_version: String,
    /// Extra conditions of `/readyz` (e.g. a valid config snapshot).
    pub ready_checks: crate::health::ReadyChecks,
    /// The access configuration (config directory snapshot, hot-reloaded).
    /// Default: nothing configured — loopback callers are administrators.
    pub access: std::sync::Arc<muster_config::ConfigHolder>,
    /// Scheduled jobs: where their definitions live, reload and lease.
    pub jobs: crate::jobs::JobsSettings,
    /// Listener, TLS, proxies, timeouts, limits, CORS (`docs/edge.md`).
    pub edge: crate::edge::EdgeConfig,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("external_url", &self.external_url)
            .field("bot_exe", &self.bot_exe)
            .field("bot_dimensions", &self.bot_dimensions)
            .field("python_bot_dir", &self.python_bot_dir)
            .field("python_bot_config", &self.python_bot_config)
            .field("bot_auth", &self.bot_auth)
            .field("bot_groups", &self.bot_groups.as_ref().map(|g| g.groups().len()))
            .field("session_secret", &"<redacted>")
            .field("session_expiry", &self.session_expiry)
            .field("sweep_interval", &self.sweep_interval)
            .field("resync_interval", &self.resync_interval)
            .field("retention", &self.retention)
            .field("access_digest", &self.access.get().digest)
            .field("jobs", &self.jobs)
            .field("edge", &self.edge)
            .finish()
    }
}

impl ServerConfig {
    pub fn new(external_url: &str, session_secret: Vec<u8>) -> ServerConfig {
        ServerConfig {
            external_url: external_url.trim_end_matches('/').to_string(),
            bot_exe: None,
            bot_platform_dir: None,
            bot_dimensions: BTreeMap::new(),
            bot_hook_script: None,
            python_bot_dir: None,
            python_bot_config: None,
            bot_auth: BotAuth::default(),
            bot_groups: None,
            bot_config: None,
            session_secret,
            session_expiry: Duration::from_secs(3600),
            sweep_interval: Duration::from_secs(1),
            resync_interval: Duration::from_secs(DEFAULT_RESYNC_SECS),
            retention: Some(Duration::from_secs(DEFAULT_RETENTION_DAYS * 86_400)),
            server_version: concat!("muster-", env!("CARGO_PKG_VERSION")).to_string(),
            ready_checks: Vec::new(),
            access: std::sync::Arc::new(muster_config::ConfigHolder::fixed(muster_config::Snapshot::empty(
                muster_config::snapshot::LoadOptions::default(),
            ))),
            jobs: crate::jobs::JobsSettings::default(),
            edge: Default::default(),
        }
    }
}
