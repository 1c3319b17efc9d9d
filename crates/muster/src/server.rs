//! `muster server`.

use crate::config::{parse_dims, FileConfig};
use anyhow::Context;
use clap::Args;
use muster_core::time::SystemClock;
use muster_core::Clock;
use muster_sched::{SchedConfig, Scheduler};
use muster_server::config::BotAuth;
use muster_server::config::{DEFAULT_RESYNC_SECS, DEFAULT_RETENTION_DAYS};
use muster_server::{Deps, ServerConfig};
use muster_store::{PostgresStore, SqliteStore, Store, Txn, Write};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Run the coordinator.
///
/// Examples:
///   muster server --listen 127.0.0.1:8080 --data-dir /var/lib/muster
///   muster server --listen 0.0.0.0:8080 --external-url http://muster.example:8080 --bot-token s3cret
///
/// With TLS (--tls-cert/--tls-key) it serves HTTPS; behind a reverse proxy,
/// --trusted-proxy says whose X-Forwarded-For to believe (docs/edge.md).
///
/// With port 0 the first line on stdout is `listening on http://ADDR`
/// (https:// with TLS).
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct ServerArgs {
    /// TOML config file (keys mirror these flags).
    #[arg(long, env = "MUSTER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "MUSTER_LISTEN")]
    pub listen: Option<String>,
    /// Directory for the SQLite database [default: ./muster-data].
    #[arg(long, env = "MUSTER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database: `sqlite://PATH` or `postgres://user@host:port/db` (several
    /// replicas may share one PostgreSQL) [default: sqlite://<data-dir>/muster.db].
    #[arg(long, env = "MUSTER_DATABASE", hide_env_values = true)]
    pub database: Option<String>,
    /// URL bots and users reach this server at [default: http://<listen address>].
    #[arg(long, env = "MUSTER_EXTERNAL_URL")]
    pub external_url: Option<String>,
    /// Executable served to bots at /bot_code [default: this executable].
    #[arg(long, env = "MUSTER_BOT_EXE")]
    pub bot_exe: Option<PathBuf>,
    /// Directory of bot builds for other platforms, named `muster-<os>-<arch>`
    /// (e.g. muster-linux-aarch64); bots get theirs from /bot_code?platform=<os>-<arch>.
    #[arg(long, env = "MUSTER_BOT_PLATFORM_DIR")]
    pub bot_platform_dir: Option<PathBuf>,
    /// Hook script delivered to muster bots with their executable; called as
    /// `<hook> get_dimensions|get_state|on_before_task|on_after_task|health` with JSON on stdin.
    #[arg(long, env = "MUSTER_BOT_HOOK")]
    pub bot_hook: Option<PathBuf>,
    /// Checkout of upstream luci-py `appengine/swarming/swarming_bot`: serve
    /// unmodified Python Swarming bots a `swarming_bot.zip` built from it
    /// (at /bot_code?bot=python); rebuilt when the files change.
    #[arg(long, env = "MUSTER_PYTHON_BOT_DIR")]
    pub python_bot_dir: Option<PathBuf>,
    /// Hooks script injected as `config/bot_config.py` in that zip
    /// [default: the one in --python-bot-dir].
    #[arg(long, env = "MUSTER_PYTHON_BOT_CONFIG")]
    pub python_bot_config: Option<PathBuf>,
    /// Configuration directory: bots.cfg (bot groups), ip_allowlist.cfg,
    /// access.toml, scripts/*.py, jobs.toml (scheduled jobs, see docs/jobs.md);
    /// reloaded when files change
    /// [default: <data-dir>/config]. See docs/bot-groups.md.
    #[arg(long, env = "MUSTER_CONFIG_DIR")]
    pub config_dir: Option<PathBuf>,
    /// Server-enforced bot dimension key=value (repeatable; in the environment
    /// comma-separated); overrides what bots report.
    #[arg(long = "bot-dimension", value_name = "KEY=VALUE", env = "MUSTER_BOT_DIMENSION", value_delimiter = ',')]
    pub bot_dimensions: Vec<String>,
    /// Shared token bots must send as `Authorization: Bearer`.
    #[arg(long, env = "MUSTER_BOT_TOKEN", hide_env_values = true)]
    pub bot_token: Option<String>,
    /// CIDR bots may connect from (repeatable; in the environment
    /// comma-separated) [default: loopback only].
    #[arg(long = "bot-allow", value_name = "CIDR", env = "MUSTER_BOT_ALLOW", value_delimiter = ',')]
    pub bot_allow: Vec<String>,
    /// Accept bots from any address without a token. Only for trusted networks.
    #[arg(long, env = "MUSTER_INSECURE_ALLOW_ANY_BOT")]
    pub insecure_allow_any_bot: bool,
    /// Longest a bot poll is held open, seconds [default: 25].
    #[arg(long, env = "MUSTER_LONG_POLL_SECS")]
    pub long_poll_secs: Option<u64>,
    /// A bot silent this long is dead, seconds [default: 600].
    #[arg(long, env = "MUSTER_BOT_DEATH_TIMEOUT_SECS")]
    pub bot_death_timeout_secs: Option<u64>,
    /// Delete finished tasks (and their output) and bot events older than
    /// this many days; 0 keeps everything [default: 180].
    #[arg(long, env = "MUSTER_RETENTION_DAYS")]
    pub retention_days: Option<u64>,
    /// Replicas on one PostgreSQL: seconds between full reconciliations of
    /// this server's in-memory index with the database, in case a change
    /// announcement was missed [default: 30].
    #[arg(long, env = "MUSTER_RESYNC_INTERVAL_SECS")]
    pub resync_interval_secs: Option<u64>,
    /// When another server holds the data dir (SQLite), wait for it to exit
    /// instead of refusing to start: for supervisors that start the new
    /// process before the old one has finished.
    #[arg(long, env = "MUSTER_WAIT_FOR_LOCK")]
    pub wait_for_lock: bool,
    /// Log format on stderr: `text` (no colors unless stderr is a terminal)
    /// or `json` (one object per line) [default: text].
    #[arg(long, env = "MUSTER_LOG_FORMAT", value_enum)]
    pub log_format: Option<crate::LogFormat>,
    /// `muster dev`: anonymous callers are administrators.
    #[arg(skip)]
    pub dev: bool,
    /// Seconds between checks of the config dir for changes [default: 10].
    #[arg(long, env = "MUSTER_JOBS_RELOAD_SECS", hide = true)]
    pub jobs_reload_secs: Option<u64>,
    /// Seconds a replica's claim on launching a job invocation lasts; after a
    /// crash the launch is retried (with the same idempotency key) when it
    /// expires [default: 30].
    #[arg(long, env = "MUSTER_JOBS_LAUNCH_LEASE_SECS", hide = true)]
    pub jobs_launch_lease_secs: Option<u64>,
    /// Test hook: `exit-after-launch` makes the server exit right after a job
    /// launch and before recording it (crash tests).
    #[arg(long, env = "MUSTER_JOBS_FAILPOINT", hide = true)]
    pub jobs_failpoint: Option<String>,
    #[command(flatten)]
    pub edge: crate::edge::EdgeArgs,
}

/// Everything resolved from flags, env and file.
pub(crate) struct Resolved {
    pub listen: String,
    pub data_dir: PathBuf,
    pub database: Option<String>,
    pub external_url: Option<String>,
    pub bot_exe: Option<PathBuf>,
    pub bot_platform_dir: Option<PathBuf>,
    pub bot_hook: Option<PathBuf>,
    pub python_bot_dir: Option<PathBuf>,
    pub python_bot_config: Option<PathBuf>,
    pub config_dir: Option<PathBuf>,
    pub bot_dimensions: Vec<String>,
    pub bot_token: Option<String>,
    pub bot_allow: Vec<String>,
    pub insecure_allow_any_bot: bool,
    pub long_poll: Duration,
    pub bot_death_timeout: Duration,
    pub retention: Option<Duration>,
    pub resync_interval: Duration,
    pub wait_for_lock: bool,
    pub dev: bool,
    pub jobs: muster_server::jobs::JobsSettings,
    pub edge: muster_server::edge::EdgeConfig,
}

impl ServerArgs {
    pub(crate) fn resolve(self) -> anyhow::Result<Resolved> {
        let f = FileConfig::load(self.config.as_ref())?;
        let data_dir = self.data_dir.clone().or(f.data_dir.clone()).unwrap_or_else(|| PathBuf::from("muster-data"));
        let defaults = muster_server::jobs::JobsSettings::default();
        let jobs = muster_server::jobs::JobsSettings {
            config_dir: Some(self.config_dir.clone().unwrap_or_else(|| data_dir.join("config"))),
            reload_interval: self
                .jobs_reload_secs
                .map(|s| Duration::from_secs(s.max(1)))
                .unwrap_or(defaults.reload_interval),
            launch_lease: self
                .jobs_launch_lease_secs
                .map(|s| Duration::from_secs(s.max(1)))
                .unwrap_or(defaults.launch_lease),
            failpoint: self.jobs_failpoint.clone(),
        };
        let edge = self.edge.resolve(&f)?;
        Ok(Resolved {
            jobs,
            edge,
            dev: self.dev,
            listen: self.listen.or(f.listen).unwrap_or_else(|| "127.0.0.1:8080".to_string()),
            data_dir: self.data_dir.or(f.data_dir).unwrap_or_else(|| PathBuf::from("muster-data")),
            database: self.database.or(f.database),
            external_url: self.external_url.or(f.external_url),
            bot_exe: self.bot_exe.or(f.bot_exe),
            bot_platform_dir: self.bot_platform_dir.or(f.bot_platform_dir),
            bot_hook: self.bot_hook.or(f.bot_hook),
            python_bot_dir: self.python_bot_dir.or(f.python_bot_dir),
            python_bot_config: self.python_bot_config.or(f.python_bot_config),
            config_dir: self.config_dir,
            bot_dimensions: if self.bot_dimensions.is_empty() {
                f.bot_dimensions.unwrap_or_default()
            } else {
                self.bot_dimensions
            },
            bot_token: self.bot_token.or(f.bot_token),
            bot_allow: if self.bot_allow.is_empty() { f.bot_allow.unwrap_or_default() } else { self.bot_allow },
            insecure_allow_any_bot: self.insecure_allow_any_bot || f.insecure_allow_any_bot.unwrap_or(false),
            long_poll: Duration::from_secs(self.long_poll_secs.or(f.long_poll_secs).unwrap_or(25).clamp(1, 50)),
            bot_death_timeout: Duration::from_secs(
                self.bot_death_timeout_secs.or(f.bot_death_timeout_secs).unwrap_or(600).max(10),
            ),
            retention: match self.retention_days.or(f.retention_days).unwrap_or(DEFAULT_RETENTION_DAYS) {
                0 => None,
                days => Some(Duration::from_secs(days.saturating_mul(86_400))),
            },
            resync_interval: Duration::from_secs(
                self.resync_interval_secs.or(f.resync_interval_secs).unwrap_or(DEFAULT_RESYNC_SECS).max(1),
            ),
            wait_for_lock: self.wait_for_lock,
        })
    }
}

/// Loads the configuration directory once (it must be valid to start): one
/// hot-reloaded snapshot serves access control and bot groups alike. With
/// bot groups there (bots.cfg or `[[bot_auth]]`), the bot flags would be a
/// second source for the same thing: refused.
fn load_config_dir(r: &Resolved, loopback: bool) -> anyhow::Result<Arc<muster_config::ConfigHolder>> {
    let dir = r.config_dir.clone().unwrap_or_else(|| r.data_dir.join("config"));
    let holder = crate::access::load_config(&dir, r.dev, loopback)?;
    let snap = holder.get();
    if snap.bot_groups.is_some() {
        let mut flags = Vec::new();
        if r.bot_token.is_some() {
            flags.push("--bot-token");
        }
        if !r.bot_allow.is_empty() {
            flags.push("--bot-allow");
        }
        if !r.bot_dimensions.is_empty() {
            flags.push("--bot-dimension");
        }
        if r.insecure_allow_any_bot {
            flags.push("--insecure-allow-any-bot");
        }
        if !flags.is_empty() {
            anyhow::bail!(
                "{} define bot groups, so {} cannot be used too: move them into bots.cfg (see docs/bot-groups.md)",
                dir.display(),
                flags.join(", ")
            );
        }
    }
    Ok(Arc::new(holder))
}

/// Opens the configured database (SQLite in the data dir by default).
pub(crate) async fn open_store(database: Option<&str>, data_dir: &Path) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match database {
        None => Arc::new(
            SqliteStore::open(&data_dir.join("muster.db"))
                .with_context(|| format!("opening the database in {}", data_dir.display()))?,
        ),
        Some(url) if url.starts_with("sqlite://") => {
            let path = PathBuf::from(&url["sqlite://".len()..]);
            Arc::new(SqliteStore::open(&path).with_context(|| format!("opening {}", path.display()))?)
        }
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Arc::new(PostgresStore::connect(url).await.context("connecting to PostgreSQL")?)
        }
        Some(other) => {
            let scheme = other.split("://").next().unwrap_or(other);
            anyhow::bail!("unsupported database {scheme:?}: use sqlite://PATH or postgres://...")
        }
    })
}

/// The SQLite file a database setting refers to (None for PostgreSQL).
pub(crate) fn sqlite_path(database: Option<&str>, data_dir: &Path) -> Option<PathBuf> {
    match database {
        None => Some(data_dir.join("muster.db")),
        Some(url) => url.strip_prefix("sqlite://").map(PathBuf::from),
    }
}

/// Takes the exclusive lock of a SQLite database's directory (one server
/// per file); nothing for PostgreSQL, which replicas share.
pub(crate) async fn lock_data(r: &Resolved) -> anyhow::Result<Option<crate::lock::DirLock>> {
    let Some(db) = sqlite_path(r.database.as_deref(), &r.data_dir) else { return Ok(None) };
    let dir = db.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(Some(crate::lock::acquire(&crate::lock::lock_path_for(&db), r.wait_for_lock).await?))
}

/// Name of the session HMAC key in the store's shared values.
pub(crate) const SESSION_KEY: &str = "session_key";

/// The session HMAC key, shared by every server on the database so that a
/// bot's token is good on any replica. Created on first start; a
/// `<data-dir>/session.key` left by an older muster is adopted so existing
/// sessions stay valid.
async fn session_key(store: &dyn Store, data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    if let Some(k) = store.get_meta(SESSION_KEY).await.context("reading the session key")? {
        return Ok(k);
    }
    let candidate = legacy_session_key(data_dir)?.unwrap_or_else(|| rand::random::<[u8; 32]>().to_vec());
    put_session_key(store, candidate).await?;
    // Another replica starting at the same time may have won.
    store.get_meta(SESSION_KEY).await.context("reading the session key")?.context("the session key was not stored")
}

/// The `session.key` an older muster kept in `dir`, if any.
pub(crate) fn legacy_session_key(dir: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    let legacy = dir.join("session.key");
    match std::fs::read(&legacy) {
        Ok(k) if k.len() >= 32 => Ok(Some(k)),
        Ok(_) => anyhow::bail!("{} is too short; delete it to generate a new key", legacy.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", legacy.display())),
    }
}

/// Stores `key` as the session key unless the database has one.
pub(crate) async fn put_session_key(store: &dyn Store, key: Vec<u8>) -> anyhow::Result<()> {
    let put = Txn::new().with(Write::PutMetaIfAbsent { name: SESSION_KEY.to_string(), value: key });
    store.commit(put).await.context("storing the session key")?;
    Ok(())
}

pub(crate) fn main(args: ServerArgs) -> anyhow::Result<()> {
    crate::init_tracing_as("info", args.log_format.unwrap_or_default());
    let r = args.resolve()?;
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async move {
        let shutdown = crate::signals::shutdown_token();
        // Before binding: with --wait-for-lock the old server still has the port.
        let _lock = lock_data(&r).await?;
        let listener =
            tokio::net::TcpListener::bind(&r.listen).await.with_context(|| format!("listening on {}", r.listen))?;
        serve(r, listener, shutdown).await
    })
}

/// Opens the store, starts the scheduler and serves on `listener`.
pub(crate) async fn serve(
    r: Resolved,
    listener: tokio::net::TcpListener,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let addr: SocketAddr = listener.local_addr().context("reading the bound address")?;
    let loopback = addr.ip().is_loopback();
    let bot_config = load_config_dir(&r, loopback)?;
    let groups_from_config = bot_config.get().bot_groups.is_some();
    if !loopback && !groups_from_config && r.bot_token.is_none() && r.bot_allow.is_empty() && !r.insecure_allow_any_bot
    {
        anyhow::bail!(
            "refusing to serve bots on public address {addr} without authentication: \
             pass --bot-token, --bot-allow CIDR, or --insecure-allow-any-bot"
        );
    }
    std::fs::create_dir_all(&r.data_dir).with_context(|| format!("creating {}", r.data_dir.display()))?;
    let observed: Arc<dyn Store> =
        Arc::new(muster_observe::ObservedStore::new(open_store(r.database.as_deref(), &r.data_dir).await?));
    // Task notifications: outbox rows join the transitions' own Txns.
    let notifier = muster_notify::Notifier::new(bot_config.clone());
    let store: Arc<dyn Store> = Arc::new(muster_notify::NotifyingStore::new(observed, notifier.clone()));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    tokio::spawn(muster_notify::Deliverer::new(store.clone(), notifier, clock.clone()).run(shutdown.clone()));
    let sched_cfg =
        SchedConfig { long_poll: r.long_poll, bot_death_timeout: r.bot_death_timeout, ..Default::default() };
    // Listen to other replicas before loading state, so nothing committed in
    // between is missed.
    let feed = store.subscribe().await.context("following other replicas")?;
    let sched = Scheduler::start(store.clone(), sched_cfg, clock.now()).await.context("starting the scheduler")?;
    let scheme = if r.edge.tls.is_some() { "https" } else { "http" };
    let external_url = r.external_url.clone().unwrap_or_else(|| format!("{scheme}://{addr}"));
    let mut config = ServerConfig::new(&external_url, session_key(store.as_ref(), &r.data_dir).await?);
    config.edge = r.edge.clone();
    config.retention = r.retention;
    config.resync_interval = r.resync_interval;
    config.jobs = r.jobs.clone();
    config.bot_exe = r.bot_exe.clone();
    config.bot_platform_dir = r.bot_platform_dir.clone();
    if let Some(hook) = &r.bot_hook {
        config.bot_hook_script =
            Some(std::fs::read_to_string(hook).with_context(|| format!("reading the bot hook {}", hook.display()))?);
    }
    if r.python_bot_config.is_some() && r.python_bot_dir.is_none() {
        anyhow::bail!("--python-bot-config needs --python-bot-dir");
    }
    config.python_bot_dir = r.python_bot_dir.clone();
    config.python_bot_config = r.python_bot_config.clone();
    config.bot_dimensions = parse_dims(&r.bot_dimensions)?;
    // The same snapshot for access and bot groups; `run` watches it.
    config.access = bot_config.clone();
    config.bot_auth = BotAuth {
        ip_allowlist: if !r.bot_allow.is_empty() {
            r.bot_allow.clone()
        } else if r.insecure_allow_any_bot || r.bot_token.is_some() {
            Vec::new()
        } else {
            vec!["127.0.0.0/8".to_string(), "::1/128".to_string()]
        },
        token: r.bot_token.clone(),
    };
    config.bot_config = Some(bot_config.clone());
    config.ready_checks.push(Arc::new(muster_server::health::ConfigReady(bot_config.clone())));
    println!("listening on {scheme}://{addr}");
    let _ = std::io::stdout().flush();
    tracing::info!(%addr, data_dir = %r.data_dir.display(), "muster server started");
    muster_server::run(listener, Deps { store, sched, clock, config, feed }, shutdown).await.context("serving")?;
    Ok(())
}
