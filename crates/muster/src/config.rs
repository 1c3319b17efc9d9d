//! Server configuration: defaults → TOML file (`--config`) → `MUSTER_*`
//! environment variables → flags (each later layer wins).

use serde::Deserialize;
use std::path::PathBuf;

/// The TOML file. Every key mirrors a `muster server` flag.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    /// Address to listen on, e.g. "0.0.0.0:8080".
    pub listen: Option<String>,
    /// Where the SQLite database lives.
    pub data_dir: Option<PathBuf>,
    /// `sqlite://PATH` or `postgres://...` (default: SQLite in data_dir).
    pub database: Option<String>,
    /// URL bots and users reach the server at.
    pub external_url: Option<String>,
    /// Executable served to bots at /bot_code (default: this one).
    pub bot_exe: Option<PathBuf>,
    /// Directory of bot builds for other platforms (`muster-<os>-<arch>`).
    pub bot_platform_dir: Option<PathBuf>,
    /// Hook script delivered to muster bots.
    pub bot_hook: Option<PathBuf>,
    /// Checkout of luci-py `appengine/swarming/swarming_bot` to serve Python bots from.
    pub python_bot_dir: Option<PathBuf>,
    /// Hooks injected as `config/bot_config.py` into the Python bot zip.
    pub python_bot_config: Option<PathBuf>,
    /// Server-enforced bot dimensions, "key=value".
    pub bot_dimensions: Option<Vec<String>>,
    /// Shared token bots must send.
    pub bot_token: Option<String>,
    /// CIDRs bots may connect from.
    pub bot_allow: Option<Vec<String>>,
    /// Allow any bot from any address without a token (not on a public address!).
    pub insecure_allow_any_bot: Option<bool>,
    /// Longest a bot poll is held, seconds.
    pub long_poll_secs: Option<u64>,
    /// A bot silent this long is dead, seconds.
    pub bot_death_timeout_secs: Option<u64>,
    /// Days finished tasks and bot events are kept (0 = forever).
    pub retention_days: Option<u64>,
    /// Seconds between full resyncs of a replica with the database.
    pub resync_interval_secs: Option<u64>,
    /// PEM certificate chain and key for HTTPS.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// CIDRs of reverse proxies whose X-Forwarded-For is believed.
    pub trusted_proxies: Option<Vec<String>>,
    /// Browser origins allowed to call the API cross-origin.
    pub cors_origins: Option<Vec<String>>,
    /// Edge timeouts and limits (docs/edge.md).
    pub header_timeout_secs: Option<u64>,
    pub idle_timeout_secs: Option<u64>,
    pub max_connections: Option<usize>,
    pub max_streams_per_connection: Option<u32>,
    pub new_task_rate: Option<f64>,
    pub new_task_burst: Option<u32>,
    pub pending_quota_mb: Option<u64>,
}

impl FileConfig {
    pub(crate) fn load(path: Option<&PathBuf>) -> anyhow::Result<FileConfig> {
        let Some(path) = path else { return Ok(FileConfig::default()) };
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading config file {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("parsing config file {}: {e}", path.display()))
    }
}

/// Parses `key=value` pairs into a dimension map.
pub(crate) fn parse_dims(pairs: &[String]) -> anyhow::Result<std::collections::BTreeMap<String, Vec<String>>> {
    let mut m: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for p in pairs {
        let (k, v) = p
            .split_once('=')
            .filter(|(k, v)| !k.is_empty() && !v.is_empty())
            .ok_or_else(|| anyhow::anyhow!("bad dimension {p:?}: expected key=value"))?;
        m.entry(k.to_string()).or_default().push(v.to_string());
    }
    Ok(m)
}
