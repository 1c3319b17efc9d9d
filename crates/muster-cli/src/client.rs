//! The pRPC client of swarming.v2 over reqwest.
//!
//! Owns: server URL normalization ([`normalize_server`]), the bearer token
//! lookup ([`find_token`]), one call = POST `<server>/prpc/swarming.v2.<S>/<M>`
//! in binary protobuf with retries and exponential backoff on transient
//! failures ([`Retry`]), failover between server replicas, and one typed
//! method per RPC the verbs use.
//!
//! Failover: `-S` may name several URLs (comma-separated), replicas of one
//! muster deployment. The client sticks to the current URL; when it cannot
//! reach it (connection refused or reset, timeout, HTTP 502/503/504) it moves
//! to the next URL and retries the call there. A URL not yet tried by the call
//! is tried at once; once every URL failed, the usual backoff applies. Calls
//! are idempotent (NewTask carries one `request_uuid` across all tries).

use crate::error::RpcError;
use muster_api::pb;
use muster_api::prpc::{self, Format, Message, HEADER_GRPC_CODE, HEADER_TIMEOUT};
use muster_api::replicas::Replicas;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The User-Agent sent with every call.
pub const USER_AGENT: &str = concat!("muster-cli ", env!("CARGO_PKG_VERSION"));

/// Retry policy for transient failures (transport errors and
/// INTERNAL/UNKNOWN/UNAVAILABLE): `attempts` tries in all, sleeping
/// `initial`, `2·initial`, ... capped at `max` between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Total tries (≥ 1).
    pub attempts: u32,
    /// First sleep.
    pub initial: Duration,
    /// Longest sleep.
    pub max: Duration,
}

impl Default for Retry {
    fn default() -> Retry {
        Retry { attempts: 5, initial: Duration::from_millis(500), max: Duration::from_secs(5) }
    }
}

impl Retry {
    /// No retries (one try).
    pub fn none() -> Retry {
        Retry { attempts: 1, initial: Duration::ZERO, max: Duration::ZERO }
    }

    /// The sleep before try number `n + 1` (n ≥ 1).
    pub fn backoff(&self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }
}

/// `example.com` ⇒ `https://example.com`; `http://h:8080/x/` ⇒ `http://h:8080`.
/// A bare loopback address (`localhost:8080`, `127.0.0.1:8080`, `[::1]:8080`)
/// means plain http, as `muster dev` serves. Only http and https are
/// accepted; any path is dropped.
pub fn normalize_server(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty server URL".to_string());
    }
    let with_scheme = if s.contains("://") {
        s.to_string()
    } else if is_loopback_host(s) {
        format!("http://{s}")
    } else {
        format!("https://{s}")
    };
    let url = reqwest::Url::parse(&with_scheme).map_err(|e| format!("bad server URL {s:?}: {e}"))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(format!("bad server URL {s:?}: scheme must be http or https"));
    }
    let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| format!("bad server URL {s:?}: no host"))?;
    let host = if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host.to_string() };
    Ok(match url.port() {
        Some(p) => format!("{}://{host}:{p}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    })
}

/// Whether a scheme-less `host[:port][/path]` names this machine.
fn is_loopback_host(s: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(&format!("http://{s}")) else { return false };
    let host = url.host_str().unwrap_or_default();
    host.eq_ignore_ascii_case("localhost")
        || host.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>().is_ok_and(|a| a.is_loopback())
}

/// A comma-separated list of server URLs, each normalized by
/// [`normalize_server`]; blanks and duplicates are dropped; at least one.
pub fn normalize_servers(s: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let url = normalize_server(part)?;
        if !out.contains(&url) {
            out.push(url);
        }
    }
    if out.is_empty() {
        return Err("empty server URL".to_string());
    }
    Ok(out)
}

/// The credentials file: `$XDG_CONFIG_HOME/muster/credentials`, else
/// `$HOME/.config/muster/credentials`.
pub fn credentials_path(xdg_config_home: Option<&str>, home: Option<&str>) -> Option<PathBuf> {
    match (xdg_config_home.filter(|s| !s.is_empty()), home.filter(|s| !s.is_empty())) {
        (Some(x), _) => Some(Path::new(x).join("muster").join("credentials")),
        (None, Some(h)) => Some(Path::new(h).join(".config").join("muster").join("credentials")),
        (None, None) => None,
    }
}

/// The token in a credentials file's text: a line `token = "..."` (TOML
/// style, other lines and `#` comments ignored) or, failing that, the first
/// non-empty non-comment line as a plain token.
pub fn parse_credentials(text: &str) -> Option<String> {
    let lines = || text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'));
    for l in lines() {
        if let Some((k, v)) = l.split_once('=') {
            if k.trim() == "token" {
                let v = v.trim().trim_matches('"').trim_matches('\'').trim();
                return (!v.is_empty()).then(|| v.to_string());
            }
        }
    }
    lines().find(|l| !l.contains('=') && !l.starts_with('[')).map(str::to_string)
}

/// The bearer token: `--token`, else `$MUSTER_TOKEN` (both come in through
/// `flag`), else the credentials file. `None` means anonymous.
pub fn find_token(flag: Option<&str>, credentials_file: Option<&Path>) -> Result<Option<String>, String> {
    if let Some(t) = flag.map(str::trim).filter(|t| !t.is_empty()) {
        return Ok(Some(t.to_string()));
    }
    let Some(path) = credentials_file else { return Ok(None) };
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(parse_credentials(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("reading {}: {e}", path.display())),
    }
}

/// A swarming.v2 client of one deployment (one or several replica URLs).
/// Cheap to clone; clones share the current URL.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    /// Normalized URLs in failover order, and the one calls go to.
    servers: Replicas,
    token: Option<String>,
    retry: Retry,
    timeout: Duration,
    /// Some call got an answer: from then on a refused connection is a
    /// server restarting (retried), before it a wrong URL (fails at once).
    reached: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// One failed try: the error, and whether the server could not be reached
/// (so the next URL should be tried).
struct Failed {
    error: RpcError,
    unreachable: bool,
    /// For transport errors: why, without the URL.
    why: Option<String>,
}

impl Client {
    /// A client of `server`: one URL or a comma-separated list of replica URLs
    /// (each normalized by [`normalize_server`]).
    pub fn new(server: &str, token: Option<String>) -> Result<Client, String> {
        let servers = normalize_servers(server)?;
        let http = http_client(None)?;
        Ok(Client {
            http,
            servers: Replicas::new(servers).ok_or("empty server URL")?,
            token,
            retry: Retry::default(),
            timeout: Duration::from_secs(90),
            reached: Default::default(),
        })
    }

    /// The same client, also trusting the CA certificates in the PEM file
    /// `ca` (if any) when verifying an https:// server.
    pub fn with_ca_file(mut self, ca: Option<&std::path::Path>) -> Result<Client, String> {
        if let Some(path) = ca {
            self.http = http_client(Some(path))?;
        }
        Ok(self)
    }

    /// The same client with another retry policy.
    pub fn with_retry(mut self, retry: Retry) -> Client {
        self.retry = retry;
        self
    }

    /// The current normalized server URL, e.g. `https://example.com` (the
    /// one calls go to now).
    pub fn server(&self) -> &str {
        self.servers.current()
    }

    /// Every server URL, in failover order.
    pub fn servers(&self) -> &[String] {
        self.servers.urls()
    }

    /// After `servers[failed]` could not be reached, moves to the next URL
    /// (unless another call already moved on).
    fn fail_over(&self, failed: usize, error: &RpcError) {
        if let Some(next) = self.servers.fail_over(failed) {
            tracing::warn!(%error, "switching to server {next} after error on {}", self.servers.url(failed));
        }
    }

    /// The web page of a task.
    pub fn task_url(&self, task_id: &str) -> String {
        format!("{}/task?id={task_id}", self.server())
    }

    /// One RPC, retried on transient failures and moved to the next server
    /// URL when the current one cannot be reached.
    pub async fn call<Q: Message, R: Message>(&self, service: &str, method: &str, req: &Q) -> Result<R, RpcError> {
        let body = prpc::encode_request(Format::Binary, req).map_err(RpcError::Status)?;
        // "Tasks" means swarming.v2.Tasks; a dotted name is a full service name.
        let path = if service.contains('.') {
            format!("/prpc/{service}/{method}")
        } else {
            format!("/prpc/swarming.v2.{service}/{method}")
        };
        let mut attempt = 1;
        // URLs that could not be reached, in the order tried.
        let mut unreachable: Vec<usize> = Vec::new();
        loop {
            let idx = self.servers.current_index();
            let url = format!("{}{path}", self.servers.url(idx));
            let failed = match self.call_once(&url, self.servers.url(idx), body.clone()).await {
                Ok(r) => {
                    self.reached.store(true, std::sync::atomic::Ordering::Relaxed);
                    return Ok(r);
                }
                Err(f) => f,
            };
            if !matches!(failed.error, RpcError::Transport(_) | RpcError::UnknownHost(_)) {
                // The server answered (an error status is still an answer).
                self.reached.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            let refused = failed.why.as_deref().is_some_and(|w| w.starts_with("connection refused"));
            let never_reached = !self.reached.load(std::sync::atomic::Ordering::Relaxed);
            let mut fresh = false;
            if failed.unreachable {
                if !unreachable.contains(&idx) {
                    unreachable.push(idx);
                }
                self.fail_over(idx, &failed.error);
                fresh = !unreachable.contains(&self.servers.current_index());
            }
            if fresh {
                // Another replica, not tried yet: at once, without using up an attempt.
                tracing::debug!(%url, error = %failed.error, "trying the next server");
                continue;
            }
            if refused && never_reached {
                // Nothing listens there and nothing ever did for this client:
                // a wrong URL or a server not started. Say so now.
                return Err(self.final_error(failed, &unreachable));
            }
            if failed.error.is_transient() && attempt < self.retry.attempts.max(1) {
                tracing::debug!(%url, attempt, error = %failed.error, "retrying");
                tokio::time::sleep(self.retry.backoff(attempt)).await;
                attempt += 1;
                continue;
            }
            return Err(self.final_error(failed, &unreachable));
        }
    }

    /// The error of the last try; a transport error names every URL that
    /// could not be reached.
    fn final_error(&self, failed: Failed, unreachable: &[usize]) -> RpcError {
        if unreachable.len() < 2 {
            return failed.error;
        }
        let all = unreachable.iter().map(|&i| self.servers.url(i)).collect::<Vec<_>>().join(", ");
        match (failed.error, failed.why) {
            (RpcError::Transport(_), Some(why)) | (RpcError::UnknownHost(_), Some(why)) => {
                RpcError::Transport(format!("cannot reach any of {all}: {why}"))
            }
            (e, _) => e,
        }
    }

    async fn call_once<R: Message>(&self, url: &str, server: &str, body: Vec<u8>) -> Result<R, Failed> {
        let mut rb = self
            .http
            .post(url)
            .header("Content-Type", Format::Binary.media_type())
            .header("Accept", Format::Binary.media_type())
            .header(HEADER_TIMEOUT, prpc::format_timeout(self.timeout))
            .timeout(self.timeout + Duration::from_secs(5))
            .body(body);
        if let Some(t) = &self.token {
            rb = rb.bearer_auth(t);
        }
        let resp = rb.send().await.map_err(|e| transport_error(server, &e))?;
        let status = resp.status().as_u16();
        let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let code = header(HEADER_GRPC_CODE);
        let content_type = header("Content-Type");
        let bytes = resp.bytes().await.map_err(|e| transport_error(server, &e))?;
        prpc::parse_response(Format::Binary, status, code.as_deref(), content_type.as_deref(), &bytes).map_err(|s| {
            // A gateway or load balancer in front of a replica that is gone.
            let unreachable = matches!(status, 502..=504);
            let why = unreachable.then(|| format!("HTTP {status}"));
            Failed { error: RpcError::Status(s), unreachable, why }
        })
    }

    // --- swarming.v2.Tasks -------------------------------------------------

    /// Tasks.NewTask.
    pub async fn new_task(&self, req: &pb::NewTaskRequest) -> Result<pb::TaskRequestMetadataResponse, RpcError> {
        self.call("Tasks", "NewTask", req).await
    }

    /// Tasks.GetResult.
    pub async fn get_result(&self, task_id: &str, perf: bool) -> Result<pb::TaskResultResponse, RpcError> {
        let req = pb::TaskIdWithPerfRequest { task_id: task_id.to_string(), include_performance_stats: perf };
        self.call("Tasks", "GetResult", &req).await
    }

    /// Tasks.BatchGetResult.
    pub async fn batch_get_result(&self, ids: &[String], perf: bool) -> Result<pb::BatchGetResultResponse, RpcError> {
        let req = pb::BatchGetResultRequest { task_ids: ids.to_vec(), include_performance_stats: perf };
        self.call("Tasks", "BatchGetResult", &req).await
    }

    /// Tasks.GetRequest.
    pub async fn get_request(&self, task_id: &str) -> Result<pb::TaskRequestResponse, RpcError> {
        self.call("Tasks", "GetRequest", &pb::TaskIdRequest { task_id: task_id.to_string() }).await
    }

    /// Tasks.GetStdout from `offset` (length 0 = the server's maximum).
    pub async fn get_stdout(&self, task_id: &str, offset: i64) -> Result<pb::TaskOutputResponse, RpcError> {
        let req = pb::TaskIdWithOffsetRequest { task_id: task_id.to_string(), offset, length: STDOUT_CHUNK };
        self.call("Tasks", "GetStdout", &req).await
    }

    /// The whole output of a task: GetStdout from 0 until a short read.
    pub async fn get_all_stdout(&self, task_id: &str) -> Result<Vec<u8>, RpcError> {
        let mut out = Vec::new();
        loop {
            let r = self.get_stdout(task_id, out.len() as i64).await?;
            let n = r.output.len();
            out.extend_from_slice(&r.output);
            if (n as i64) < STDOUT_CHUNK || n == 0 {
                return Ok(out);
            }
        }
    }

    /// Tasks.CancelTask.
    pub async fn cancel_task(&self, task_id: &str, kill_running: bool) -> Result<pb::CancelResponse, RpcError> {
        self.call("Tasks", "CancelTask", &pb::TaskCancelRequest { task_id: task_id.to_string(), kill_running }).await
    }

    /// Tasks.CancelTasks.
    pub async fn cancel_tasks(&self, req: &pb::TasksCancelRequest) -> Result<pb::TasksCancelResponse, RpcError> {
        self.call("Tasks", "CancelTasks", req).await
    }

    /// Tasks.ListTasks.
    pub async fn list_tasks(&self, req: &pb::TasksWithPerfRequest) -> Result<pb::TaskListResponse, RpcError> {
        self.call("Tasks", "ListTasks", req).await
    }

    /// Tasks.CountTasks.
    pub async fn count_tasks(&self, req: &pb::TasksCountRequest) -> Result<pb::TasksCount, RpcError> {
        self.call("Tasks", "CountTasks", req).await
    }

    // --- swarming.v2.Bots --------------------------------------------------

    /// Bots.GetBot.
    pub async fn get_bot(&self, bot_id: &str) -> Result<pb::BotInfo, RpcError> {
        self.call("Bots", "GetBot", &pb::BotRequest { bot_id: bot_id.to_string() }).await
    }

    /// Bots.ListBots.
    pub async fn list_bots(&self, req: &pb::BotsRequest) -> Result<pb::BotInfoListResponse, RpcError> {
        self.call("Bots", "ListBots", req).await
    }

    /// Bots.CountBots.
    pub async fn count_bots(&self, req: &pb::BotsCountRequest) -> Result<pb::BotsCount, RpcError> {
        self.call("Bots", "CountBots", req).await
    }

    /// Bots.ListBotEvents.
    pub async fn list_bot_events(&self, req: &pb::BotEventsRequest) -> Result<pb::BotEventsResponse, RpcError> {
        self.call("Bots", "ListBotEvents", req).await
    }

    /// Bots.ListBotTasks.
    pub async fn list_bot_tasks(&self, req: &pb::BotTasksRequest) -> Result<pb::TaskListResponse, RpcError> {
        self.call("Bots", "ListBotTasks", req).await
    }

    /// Bots.TerminateBot.
    pub async fn terminate_bot(&self, bot_id: &str, reason: &str) -> Result<pb::TerminateResponse, RpcError> {
        let req = pb::TerminateRequest { bot_id: bot_id.to_string(), reason: reason.to_string() };
        self.call("Bots", "TerminateBot", &req).await
    }

    /// Bots.DeleteBot.
    pub async fn delete_bot(&self, bot_id: &str) -> Result<pb::DeleteResponse, RpcError> {
        self.call("Bots", "DeleteBot", &pb::BotRequest { bot_id: bot_id.to_string() }).await
    }
}

/// The `length` of each GetStdout call (the server's maximum, docs/client-api.md#stdout).
pub const STDOUT_CHUNK: i64 = 16_384_000;

/// A transport failure talking to `server`.
fn transport_error(server: &str, e: &reqwest::Error) -> Failed {
    let mut chain = Vec::new();
    let mut src: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = src {
        chain.push(s.to_string());
        src = s.source();
    }
    let all = chain.join(": ").to_ascii_lowercase();
    if all.contains("dns error") || all.contains("failed to lookup address") {
        let error = RpcError::UnknownHost(server.to_string());
        return Failed { error, unreachable: true, why: Some("unknown host".to_string()) };
    }
    let tls_mismatch = ["invalidcontenttype", "corrupt message", "wrong version number", "unexpected eof"]
        .iter()
        .any(|m| all.contains(m));
    let why = if e.is_timeout() {
        "timed out".to_string()
    } else if all.contains("connection refused") {
        "connection refused (is the server running? is the port right?)".to_string()
    } else if server.starts_with("https://") && tls_mismatch {
        let plain = server.replacen("https://", "http://", 1);
        format!("the TLS handshake failed; if the server speaks plain HTTP (as `muster dev` does), use -S {plain}")
    } else {
        // The innermost cause is the most specific.
        chain.last().cloned().unwrap_or_else(|| e.to_string())
    };
    let error = RpcError::Transport(format!("cannot reach {server}: {why}"));
    Failed { error, unreachable: true, why: Some(why) }
}

/// Largest page asked for in one listing call.
const PAGE_MAX: u32 = 1000;

/// Pages through a listing: `page(limit, cursor)` fetches up to `limit`
/// items after `cursor` and returns them with the next cursor (empty = no
/// more). Stops after `limit` items in all (None = everything).
pub async fn collect_pages<T, E, F, Fut>(limit: Option<u32>, mut page: F) -> Result<Vec<T>, E>
where
    F: FnMut(i32, String) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<T>, String), E>>,
{
    let mut items: Vec<T> = Vec::new();
    let mut cursor = String::new();
    loop {
        let want = match limit {
            Some(l) => l.saturating_sub(items.len() as u32).min(PAGE_MAX),
            None => PAGE_MAX,
        };
        if want == 0 {
            break;
        }
        let (got, next) = page(want as i32, cursor).await?;
        let n = got.len();
        items.extend(got);
        if next.is_empty() || n == 0 {
            break;
        }
        cursor = next;
    }
    if let Some(l) = limit {
        items.truncate(l as usize);
    }
    Ok(items)
}

/// The HTTP client of the CLI; `ca`: a PEM file of extra trusted CAs.
fn http_client(ca: Option<&std::path::Path>) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder().user_agent(USER_AGENT).connect_timeout(Duration::from_secs(10));
    if let Some(path) = ca {
        let pem = std::fs::read(path).map_err(|e| format!("reading the CA file {}: {e}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("the CA file {} is not PEM: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("no certificate in the CA file {}", path.display()));
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    b.build().map_err(|e| format!("creating the HTTP client: {e}"))
}
