//! The network edge: everything between the TCP socket and the router.
//!
//! Owns: the accept loop with TLS (rustls, certificate reloaded without a
//! restart), connection limits and timeouts ([`listen`]), which address a
//! request comes from when proxies forward it ([`proxy`]), the per-caller
//! NewTask rate limit and pending-bytes quota ([`quota`]), and the HTTP
//! response policies: compression, security headers on the UI, CORS for
//! configured origins only ([`headers`]). `docs/edge.md` describes the
//! behaviour for operators.
//! Must not: know any endpoint's business (handlers stay behind the router).

pub(crate) mod headers;
pub(crate) mod listen;
pub mod proxy;
pub(crate) mod quota;
pub mod tls;

use std::path::PathBuf;
use std::time::Duration;

/// Default [`EdgeConfig::header_timeout`], in seconds.
pub const DEFAULT_HEADER_TIMEOUT_SECS: u64 = 20;
/// Default [`EdgeConfig::idle_timeout`], in seconds.
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 90;
/// Default [`EdgeConfig::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 20_000;
/// Default [`EdgeConfig::max_streams_per_connection`].
pub const DEFAULT_MAX_STREAMS: u32 = 128;
/// Default [`EdgeConfig::new_task_rate`] (NewTask calls per second per caller).
pub const DEFAULT_NEW_TASK_RATE: f64 = 100.0;
/// Default [`EdgeConfig::new_task_burst`].
pub const DEFAULT_NEW_TASK_BURST: u32 = 1000;
/// Default [`EdgeConfig::pending_bytes_quota`] (per caller): 256 MiB.
pub const DEFAULT_PENDING_BYTES_QUOTA: u64 = 256 * 1024 * 1024;

/// The PEM files of the server's certificate chain and private key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Settings of the edge (`docs/edge.md`).
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// Serve HTTPS with these files (re-read when they change or on SIGHUP).
    pub tls: Option<TlsFiles>,
    /// How often the certificate files are checked for changes.
    pub tls_reload_interval: Duration,
    /// Peers whose `X-Forwarded-For` is believed (reverse proxies).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// A connection must complete its TLS handshake and a request head
    /// within this time after it opens, and each later request head within
    /// this time after the previous response (HTTP/1).
    pub header_timeout: Duration,
    /// A connection with no request in flight for this long is closed. A
    /// parked bot poll is a request in flight: it is never cut by this.
    pub idle_timeout: Duration,
    /// Open connections at most (further ones wait in the listen backlog);
    /// also kept below the process's open-file limit.
    pub max_connections: usize,
    /// Concurrent requests on one HTTP/2 connection (HTTP/1 has one).
    pub max_streams_per_connection: u32,
    /// NewTask calls per second per caller (token bucket); 0 = unlimited.
    pub new_task_rate: f64,
    /// Calls a caller may make at once before the rate applies.
    pub new_task_burst: u32,
    /// Bytes of NewTask requests a caller may have pending at once; 0 = unlimited.
    pub pending_bytes_quota: u64,
    /// Browser origins allowed to call the pRPC API cross-origin
    /// (`https://ui.example.com`); `*` allows any origin without credentials.
    pub cors_origins: Vec<String>,
}

impl Default for EdgeConfig {
    fn default() -> EdgeConfig {
        EdgeConfig {
            tls: None,
            tls_reload_interval: Duration::from_secs(10),
            trusted_proxies: Vec::new(),
            header_timeout: Duration::from_secs(DEFAULT_HEADER_TIMEOUT_SECS),
            idle_timeout: Duration::from_secs(DEFAULT_IDLE_TIMEOUT_SECS),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_streams_per_connection: DEFAULT_MAX_STREAMS,
            new_task_rate: DEFAULT_NEW_TASK_RATE,
            new_task_burst: DEFAULT_NEW_TASK_BURST,
            pending_bytes_quota: DEFAULT_PENDING_BYTES_QUOTA,
            cors_origins: Vec::new(),
        }
    }
}

/// Who a request is from for limits and quotas, set by the client
/// authentication layer when it knows (e.g. `user:alice@example.com`).
/// Without it, the client address ([`proxy::ClientAddr`]) is the caller.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CallerIdentity(pub String);

/// The key limits and quotas are counted under: the authenticated identity
/// if a layer above set one, else `ip:<client address>`.
pub(crate) fn caller_key(ext: &http::Extensions) -> String {
    if let Some(CallerIdentity(id)) = ext.get::<CallerIdentity>() {
        return id.clone();
    }
    match ext.get::<proxy::ClientAddr>() {
        Some(proxy::ClientAddr(a)) => format!("ip:{}", a.ip()),
        None => "ip:unknown".to_string(),
    }
}
