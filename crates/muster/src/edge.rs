//! `muster server` flags for the network edge: TLS, proxies, timeouts,
//! limits, CORS (`docs/edge.md`).

use crate::config::FileConfig;
use clap::Args;
use muster_server::edge::{self, EdgeConfig, TlsFiles};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Debug, Clone, Default)]
pub(crate) struct EdgeArgs {
    /// Serve HTTPS with this PEM certificate chain (server certificate
    /// first); needs --tls-key. Re-read when it changes or on SIGHUP.
    #[arg(long, env = "MUSTER_TLS_CERT", value_name = "FILE", help_heading = "TLS and proxies")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "MUSTER_TLS_KEY", value_name = "FILE", help_heading = "TLS and proxies")]
    pub tls_key: Option<PathBuf>,
    /// Reverse proxy address range whose X-Forwarded-For header is believed
    /// (repeatable or comma-separated). Bot allowlists and per-caller limits
    /// then use the forwarded client address. Without it the header is ignored.
    #[arg(
        long = "trusted-proxy",
        env = "MUSTER_TRUSTED_PROXY",
        value_name = "CIDR",
        value_delimiter = ',',
        help_heading = "TLS and proxies"
    )]
    pub trusted_proxies: Vec<String>,
    /// Browser origin allowed to call the API from its pages (repeatable or
    /// comma-separated), e.g. https://ui.example.com; `*` = any origin,
    /// without cookies [default: none].
    #[arg(
        long = "cors-origin",
        env = "MUSTER_CORS_ORIGIN",
        value_name = "ORIGIN",
        value_delimiter = ',',
        help_heading = "TLS and proxies"
    )]
    pub cors_origins: Vec<String>,
    /// Seconds a connection has to send a complete request head (after it
    /// opens, including the TLS handshake, or after its previous response)
    /// [default: 20].
    #[arg(long, env = "MUSTER_HEADER_TIMEOUT_SECS", value_name = "SECS", help_heading = "Limits")]
    pub header_timeout_secs: Option<u64>,
    /// Seconds a connection may stay open with no request in flight; parked
    /// bot polls are in flight [default: 90].
    #[arg(long, env = "MUSTER_IDLE_TIMEOUT_SECS", value_name = "SECS", help_heading = "Limits")]
    pub idle_timeout_secs: Option<u64>,
    /// Open connections at most; more wait for a free slot. Also kept below
    /// the open-file limit (ulimit -n) [default: 20000].
    #[arg(long, env = "MUSTER_MAX_CONNECTIONS", value_name = "N", help_heading = "Limits")]
    pub max_connections: Option<usize>,
    /// Concurrent requests on one HTTP/2 connection [default: 128].
    #[arg(long, env = "MUSTER_MAX_STREAMS_PER_CONNECTION", value_name = "N", help_heading = "Limits")]
    pub max_streams_per_connection: Option<u32>,
    /// NewTask calls per second per caller (identity, else address); 0 =
    /// unlimited [default: 100].
    #[arg(long, env = "MUSTER_NEW_TASK_RATE", value_name = "PER_SEC", help_heading = "Limits")]
    pub new_task_rate: Option<f64>,
    /// NewTask calls a caller may make at once before the rate applies [default: 1000].
    #[arg(long, env = "MUSTER_NEW_TASK_BURST", value_name = "N", help_heading = "Limits")]
    pub new_task_burst: Option<u32>,
    /// MiB of NewTask requests one caller may have waiting for bots; 0 =
    /// unlimited [default: 256].
    #[arg(long, env = "MUSTER_PENDING_QUOTA_MB", value_name = "MIB", help_heading = "Limits")]
    pub pending_quota_mb: Option<u64>,
}

impl EdgeArgs {
    /// Flags over the file's keys over the defaults.
    pub(crate) fn resolve(&self, f: &FileConfig) -> anyhow::Result<EdgeConfig> {
        let d = EdgeConfig::default();
        let cert = self.tls_cert.clone().or(f.tls_cert.clone());
        let key = self.tls_key.clone().or(f.tls_key.clone());
        let tls = match (cert, key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            _ => anyhow::bail!("--tls-cert and --tls-key go together: pass both (PEM files) or neither"),
        };
        let list = |flag: &Vec<String>, file: &Option<Vec<String>>| {
            if flag.is_empty() {
                file.clone().unwrap_or_default()
            } else {
                flag.clone()
            }
        };
        let trusted = list(&self.trusted_proxies, &f.trusted_proxies);
        let trusted_proxies =
            edge::proxy::parse_cidrs(&trusted).map_err(|e| anyhow::anyhow!("--trusted-proxy: {e}"))?;
        let cors_origins = list(&self.cors_origins, &f.cors_origins);
        if let Some(bad) =
            cors_origins.iter().find(|o| *o != "*" && !(o.starts_with("https://") || o.starts_with("http://")))
        {
            anyhow::bail!("--cors-origin {bad:?}: expected an origin like https://ui.example.com, or *");
        }
        let secs = |flag: Option<u64>, file: Option<u64>, default: Duration| {
            flag.or(file).map(|s| Duration::from_secs(s.max(1))).unwrap_or(default)
        };
        Ok(EdgeConfig {
            tls,
            trusted_proxies,
            cors_origins,
            header_timeout: secs(self.header_timeout_secs, f.header_timeout_secs, d.header_timeout),
            idle_timeout: secs(self.idle_timeout_secs, f.idle_timeout_secs, d.idle_timeout),
            max_connections: self.max_connections.or(f.max_connections).unwrap_or(d.max_connections).max(1),
            max_streams_per_connection: self
                .max_streams_per_connection
                .or(f.max_streams_per_connection)
                .unwrap_or(d.max_streams_per_connection)
                .max(1),
            new_task_rate: self.new_task_rate.or(f.new_task_rate).unwrap_or(d.new_task_rate).max(0.0),
            new_task_burst: self.new_task_burst.or(f.new_task_burst).unwrap_or(d.new_task_burst).max(1),
            pending_bytes_quota: self
                .pending_quota_mb
                .or(f.pending_quota_mb)
                .map(|mb| mb.saturating_mul(1024 * 1024))
                .unwrap_or(d.pending_bytes_quota),
            ..d
        })
    }
}
