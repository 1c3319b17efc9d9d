//! HTTP transport to the server's bot API (docs/bot-protocol.md#transport).
//!
//! Owns the headers every call carries (bot id, JSON content type, optional
//! bearer token, a `muster-bot/...` user agent), the session token (taken from
//! any reply that has one and sent back in later bodies), and the retry policy:
//! network errors, 408, 429 and 5xx are retried with capped exponential backoff
//! and jitter within a time budget; other statuses fail at once. Once the
//! shutdown token is cancelled, the remaining budget shrinks to a few seconds so
//! that a bot whose server is gone still exits promptly.
//!
//! Failover: a [`Remote`] may hold several server URLs, replicas of one muster
//! deployment sharing the session-token key (any replica serves any call). It
//! sticks to the current URL while calls succeed; a transient failure (network
//! error, timeout, 408, 429, 5xx) moves it to the next URL for the next
//! attempt, both inside the retry loop and for single-attempt calls like
//! `/poll`, so the loop's next poll goes to the other replica.

use muster_api::replicas::Replicas;
use rand::Rng as _;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Path prefix of every bot endpoint.
pub const API: &str = "/swarming/api/v1/bot";

/// Per-request read timeout for JSON calls (the server long-polls up to ~25 s).
pub const JSON_TIMEOUT: Duration = Duration::from_secs(60);

/// Per-request timeout for bot code downloads.
pub const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(600);

/// Retry budget of task updates and other idempotent calls (docs/bot-protocol.md#constants: 240 s).
pub const TASK_UPDATE_BUDGET: Duration = Duration::from_secs(240);

/// At most this many attempts per call (docs/bot-protocol.md#constants).
const MAX_ATTEMPTS: u32 = 30;

/// Remaining budget once shutdown was requested.
const SHUTDOWN_BUDGET: Duration = Duration::from_secs(5);

/// How a call is retried.
#[derive(Debug, Clone, Copy)]
pub enum Retry {
    /// One attempt only (poll: the loop itself backs off).
    Once,
    /// Retry transient failures for up to this long.
    Budget(Duration),
}

/// A failed call.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// Network error, timeout, 408, 429 or 5xx after the retries ran out.
    #[error("calling {path}: {msg}")]
    Transient { path: String, msg: String },
    /// A status that retrying cannot fix (401, 403, 400, 404, ...).
    #[error("{path} answered HTTP {status}: {body}")]
    Rejected { path: String, status: u16, body: String },
    /// A 2xx whose body is not the expected JSON, or carries `error`.
    #[error("bad reply from {path}: {msg}")]
    BadReply { path: String, msg: String },
}

impl NetError {
    /// Whether retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, NetError::Transient { .. })
    }
}

/// The bot's connection to its server (one or several replicas of it).
#[derive(Debug)]
pub struct Remote {
    http: reqwest::Client,
    /// Server URLs (no trailing slash) and the one the next call goes to.
    servers: Replicas,
    bot_id: String,
    token: Mutex<Option<String>>,
    /// A bootstrap token sent (at handshake) until a machine token replaces it.
    bootstrap: Mutex<Option<String>>,
    user_agent: String,
    session: Mutex<Option<String>>,
    shutdown: CancellationToken,
}

impl Remote {
    /// A client for `servers` (replicas of one deployment, tried in this
    /// order; trailing slashes are dropped), speaking as `bot_id`. Every URL
    /// must be http:// or https://; the list must not be empty.
    pub fn new(
        servers: &[String],
        bot_id: &str,
        token: Option<String>,
        shutdown: CancellationToken,
    ) -> Result<Self, crate::BotError> {
        let servers = validate_servers(servers)?;
        let http = http_client(None)?;
        let host = crate::host::hostname();
        Ok(Remote {
            http,
            servers,
            bot_id: bot_id.to_string(),
            token: Mutex::new(token),
            bootstrap: Mutex::new(None),
            user_agent: format!("muster-bot/{}@{host}", env!("CARGO_PKG_VERSION")),
            session: Mutex::new(None),
            shutdown,
        })
    }

    /// The same client, also trusting the CA certificates in the PEM file
    /// `ca` (if any) when verifying an https:// server.
    pub fn with_ca_file(mut self, ca: Option<&std::path::Path>) -> Result<Self, crate::BotError> {
        if let Some(path) = ca {
            self.http = http_client(Some(path))?;
        }
        Ok(self)
    }

    /// The current server URL (the one the next call goes to), no trailing slash.
    pub fn server(&self) -> &str {
        self.servers.current()
    }

    /// Every server URL, in failover order.
    pub fn servers(&self) -> &[String] {
        self.servers.urls()
    }

    /// After a transient failure on `servers[failed]`, moves to the next URL
    /// (unless another call already moved on). Returns whether it switched.
    fn fail_over(&self, failed: usize, err: &NetError) {
        if !err.is_transient() {
            return;
        }
        if let Some(next) = self.servers.fail_over(failed) {
            tracing::warn!(error = %err, "switching to server {next} after error on {}", self.servers.url(failed));
        }
    }

    /// Sends `token` as `X-Muster-Bootstrap-Token` until
    /// [`Remote::adopt_machine_token`].
    pub fn with_bootstrap(self, token: Option<String>) -> Self {
        if let Ok(mut g) = self.bootstrap.lock() {
            *g = token;
        }
        self
    }

    /// Whether a bootstrap token is still being presented.
    pub fn bootstrapping(&self) -> bool {
        self.bootstrap.lock().map(|g| g.is_some()).unwrap_or(false)
    }

    /// From now on, authenticates with `token` (the machine token a
    /// bootstrap token was exchanged for) and no longer sends the bootstrap.
    pub fn adopt_machine_token(&self, token: &str) {
        if let Ok(mut g) = self.token.lock() {
            *g = Some(token.to_string());
        }
        if let Ok(mut g) = self.bootstrap.lock() {
            *g = None;
        }
    }

    /// The bot id sent in the `X-Luci-Swarming-Bot-ID` header.
    pub fn bot_id(&self) -> &str {
        &self.bot_id
    }

    /// The latest session token the server handed out.
    pub fn session(&self) -> Option<String> {
        self.session.lock().map(|g| g.clone()).unwrap_or(None)
    }

    fn remember_session(&self, reply: &Value) {
        if let Some(s) = reply.get("session").and_then(Value::as_str).filter(|s| !s.is_empty()) {
            if let Ok(mut g) = self.session.lock() {
                *g = Some(s.to_string());
            }
        }
    }

    fn request(&self, method: reqwest::Method, base: &str, path: &str, timeout: Duration) -> reqwest::RequestBuilder {
        let mut rb = self
            .http
            .request(method, format!("{base}{path}"))
            .timeout(timeout)
            .header("X-Luci-Swarming-Bot-ID", &self.bot_id)
            .header(USER_AGENT, &self.user_agent);
        if let Some(t) = self.token.lock().ok().and_then(|g| g.clone()) {
            rb = rb.header(AUTHORIZATION, format!("Bearer {t}"));
        }
        if let Some(t) = self.bootstrap.lock().ok().and_then(|g| g.clone()) {
            rb = rb.header("X-Muster-Bootstrap-Token", t);
        }
        rb
    }

    /// Runs `attempt` (given the base URL of the current server) until it
    /// succeeds, fails permanently or the budget ends. A transient failure
    /// moves to the next server; a server not yet tried by this call is tried
    /// at once, without the backoff pause.
    async fn with_retry<T, F, Fut>(&self, path: &str, retry: Retry, mut attempt: F) -> Result<T, NetError>
    where
        F: FnMut(String) -> Fut,
        Fut: std::future::Future<Output = Result<T, NetError>>,
    {
        let budget = match retry {
            Retry::Once => {
                let idx = self.servers.current_index();
                let res = attempt(self.servers.url(idx).to_string()).await;
                if let Err(e) = &res {
                    self.fail_over(idx, e);
                }
                return res;
            }
            Retry::Budget(b) => b,
        };
        let mut deadline = Instant::now() + budget;
        let mut shortened = false;
        let mut n: u32 = 0;
        let mut tried = vec![false; self.servers.urls().len()];
        loop {
            n += 1;
            let idx = self.servers.current_index();
            tried[idx] = true;
            let err = match attempt(self.servers.url(idx).to_string()).await {
                Ok(v) => return Ok(v),
                Err(e) if !e.is_transient() => return Err(e),
                Err(e) => e,
            };
            self.fail_over(idx, &err);
            if self.shutdown.is_cancelled() && !shortened {
                shortened = true;
                deadline = deadline.min(Instant::now() + SHUTDOWN_BUDGET);
            }
            let fresh = !tried[self.servers.current_index()];
            let pause = if fresh { Duration::ZERO } else { backoff_pause(n) };
            if n >= MAX_ATTEMPTS || Instant::now() + pause >= deadline {
                return Err(err);
            }
            tracing::debug!(path, attempt = n, error = %err, "retrying");
            if fresh {
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = self.shutdown.cancelled(), if !shortened => {}
            }
        }
    }

    async fn post_once(&self, base: &str, path: &str, body: &[u8]) -> Result<Value, NetError> {
        let resp = self
            .request(reqwest::Method::POST, base, path, JSON_TIMEOUT)
            .header(CONTENT_TYPE, "application/json; charset=utf-8")
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| transient(path, &e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| transient(path, &e))?;
        check_status(path, status, &bytes)?;
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| NetError::BadReply { path: path.to_string(), msg: format!("not JSON: {e}") })?;
        if let Some(err) = v.get("error").filter(|e| truthy(e)) {
            return Err(NetError::BadReply { path: path.to_string(), msg: format!("server error: {err}") });
        }
        self.remember_session(&v);
        Ok(v)
    }

    /// POSTs `body` as JSON to `API + path` and decodes the reply.
    pub async fn post_json<B: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        retry: Retry,
    ) -> Result<R, NetError> {
        let full = format!("{API}{path}");
        let bytes = serde_json::to_vec(body)
            .map_err(|e| NetError::BadReply { path: full.clone(), msg: format!("encoding the request: {e}") })?;
        let (full_ref, bytes_ref) = (&full, &bytes);
        let v = self
            .with_retry(&full, retry, |base| async move { self.post_once(&base, full_ref, bytes_ref).await })
            .await?;
        serde_json::from_value(v).map_err(|e| NetError::BadReply { path: full, msg: e.to_string() })
    }

    /// `GET /swarming/api/v1/bot/server_ping`.
    pub async fn ping(&self, retry: Retry) -> Result<(), NetError> {
        let path = &format!("{API}/server_ping");
        self.with_retry(path, retry, |base| async move {
            let resp = self
                .request(reqwest::Method::GET, &base, path, JSON_TIMEOUT)
                .send()
                .await
                .map_err(|e| transient(path, &e))?;
            let status = resp.status();
            let bytes = resp.bytes().await.map_err(|e| transient(path, &e))?;
            check_status(path, status, &bytes)
        })
        .await
    }

    /// GETs raw bytes at `API + path` (bot code).
    pub async fn download(&self, path: &str, retry: Retry) -> Result<Vec<u8>, NetError> {
        let full = &format!("{API}{path}");
        self.with_retry(full, retry, |base| async move {
            let resp = self
                .request(reqwest::Method::GET, &base, full, DOWNLOAD_TIMEOUT)
                .send()
                .await
                .map_err(|e| transient(full, &e))?;
            let status = resp.status();
            let bytes = resp.bytes().await.map_err(|e| transient(full, &e))?;
            check_status(full, status, &bytes)?;
            Ok(bytes.to_vec())
        })
        .await
    }
}

/// Trims trailing slashes, drops blanks and duplicates, and checks the scheme.
fn validate_servers(servers: &[String]) -> Result<Replicas, crate::BotError> {
    let mut out: Vec<String> = Vec::new();
    for s in servers {
        let s = s.trim().trim_end_matches('/');
        if s.is_empty() {
            continue;
        }
        if !(s.starts_with("http://") || s.starts_with("https://")) {
            return Err(crate::BotError::BadServer(s.to_string()));
        }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    }
    Replicas::new(out).ok_or(crate::BotError::NoServer)
}

fn transient(path: &str, e: &reqwest::Error) -> NetError {
    NetError::Transient { path: path.to_string(), msg: e.to_string() }
}

fn check_status(path: &str, status: StatusCode, body: &[u8]) -> Result<(), NetError> {
    if status.is_success() {
        return Ok(());
    }
    let text: String = String::from_utf8_lossy(body).chars().take(300).collect();
    if status == StatusCode::REQUEST_TIMEOUT || status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        return Err(NetError::Transient { path: path.to_string(), msg: format!("HTTP {}: {text}", status.as_u16()) });
    }
    Err(NetError::Rejected { path: path.to_string(), status: status.as_u16(), body: text })
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::String(s) => !s.is_empty(),
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// Pause before retry `n` (1-based): `min(10, U(0,1.5) + 1.5^(n-1))` seconds.
fn backoff_pause(n: u32) -> Duration {
    let base = 1.5f64.powi(n.saturating_sub(1).min(20) as i32);
    let jitter = rand::rng().random_range(0.0..1.5);
    Duration::from_secs_f64((base + jitter).min(10.0))
}

/// Loop backoff for attempt `n` (1-based): `factor^(n-1)` seconds ±20 %, capped.
pub fn loop_backoff(n: u32, factor: f64, cap: Duration) -> Duration {
    if n <= 1 {
        return Duration::ZERO;
    }
    let base = factor.powi((n - 1).min(40) as i32).min(cap.as_secs_f64());
    let jitter = rand::rng().random_range(0.8..1.2);
    Duration::from_secs_f64(base * jitter)
}

/// The HTTP client of the bot; `ca`: a PEM file of extra trusted CAs.
fn http_client(ca: Option<&std::path::Path>) -> Result<reqwest::Client, crate::BotError> {
    let mut b = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::limited(5));
    if let Some(path) = ca {
        let pem = std::fs::read(path)
            .map_err(|e| crate::BotError::Http(format!("reading the CA file {}: {e}", path.display())))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| crate::BotError::Http(format!("the CA file {} is not PEM: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(crate::BotError::Http(format!("no certificate in the CA file {}", path.display())));
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    b.build().map_err(|e| crate::BotError::Http(e.to_string()))
}
