//! `http`: one HTTP request per invocation (upstream's `url_fetch`).
//!
//! Parameters: `url` (absolute http/https), `method` (GET, POST or PUT;
//! default GET), `headers` (table), `body` (POST/PUT), `timeout` (Go
//! duration, 1s–8m, default 60s). Single stage: the invocation succeeds on a
//! status below 400 and fails on anything else, on a timeout or a connection
//! error. Sends `Idempotency-Key: <job>/<invocation>` so a receiver can drop
//! the repeat after a crash between the request and its recording.

use super::{duration_param, Controller, ManagerError, TaskManager, Traits};
use crate::model::Status;
use async_trait::async_trait;
use chrono::Duration;
use std::collections::BTreeMap;

pub struct Http;

impl Http {
    pub fn new() -> Http {
        Http
    }
}

impl Default for Http {
    fn default() -> Self {
        Http::new()
    }
}

const KEYS: &[&str] = &["url", "method", "headers", "body", "timeout"];
/// At most this much of the response body goes into the debug log.
const LOGGED_BODY: usize = 4096;

struct Params {
    url: String,
    method: reqwest::Method,
    headers: BTreeMap<String, String>,
    body: Option<String>,
    timeout: Duration,
}

fn params(p: &serde_json::Value) -> Result<Params, String> {
    let obj = p.as_object().ok_or("http: parameters must be a table with at least `url`")?;
    if let Some(k) = obj.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(format!("http: unknown parameter {k:?} (known: {})", KEYS.join(", ")));
    }
    let url = obj.get("url").and_then(|v| v.as_str()).ok_or("http: `url` is required")?.to_string();
    let parsed = reqwest::Url::parse(&url).map_err(|e| format!("http: bad url {url:?}: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("http: url {url:?} must be http:// or https://"));
    }
    let method = match obj.get("method").and_then(|v| v.as_str()).unwrap_or("GET").to_ascii_uppercase().as_str() {
        "GET" => reqwest::Method::GET,
        "POST" => reqwest::Method::POST,
        "PUT" => reqwest::Method::PUT,
        other => return Err(format!("http: method {other:?} is not supported (GET, POST or PUT)")),
    };
    let mut headers = BTreeMap::new();
    if let Some(h) = obj.get("headers") {
        let h = h.as_object().ok_or("http: `headers` must be a table of strings")?;
        for (k, v) in h {
            let v = v.as_str().ok_or_else(|| format!("http: header {k:?} must be a string"))?;
            reqwest::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| format!("http: bad header name {k:?}"))?;
            headers.insert(k.clone(), v.to_string());
        }
    }
    let body = match obj.get("body") {
        None => None,
        Some(v) => Some(v.as_str().ok_or("http: `body` must be a string")?.to_string()),
    };
    if body.is_some() && method == reqwest::Method::GET {
        return Err("http: `body` needs method POST or PUT".into());
    }
    let timeout = duration_param(p, "timeout", Duration::seconds(60)).map_err(|e| format!("http: {e}"))?;
    if timeout < Duration::seconds(1) || timeout > Duration::minutes(8) {
        return Err("http: timeout must be between 1s and 8m".into());
    }
    Ok(Params { url, method, headers, body, timeout })
}

#[async_trait]
impl TaskManager for Http {
    fn name(&self) -> &'static str {
        "http"
    }
    fn traits(&self) -> Traits {
        Traits { multistage: false }
    }
    fn validate(&self, p: &serde_json::Value, _realm: &str) -> Result<(), String> {
        params(p).map(|_| ())
    }
    async fn launch(&self, ctl: &mut Controller<'_>) -> Result<(), ManagerError> {
        let p = params(&ctl.task().params.clone()).map_err(ManagerError::Fatal)?;
        ctl.log(&format!("{} {}", p.method, p.url));
        let key = format!("{}/{}", ctl.job_id(), ctl.invocation_id());
        let mut req = ctl
            .http()
            .request(p.method.clone(), &p.url)
            .timeout(p.timeout.to_std().unwrap_or(std::time::Duration::from_secs(60)))
            .header("Idempotency-Key", key);
        for (k, v) in &p.headers {
            req = req.header(k, v);
        }
        if let Some(b) = p.body {
            req = req.body(b);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                let why = if e.is_timeout() {
                    format!("no answer from {} within {}", p.url, crate::schedule::format_duration(p.timeout))
                } else {
                    format!("request to {} failed: {e}", p.url)
                };
                ctl.log(&why);
                ctl.set_summary(&why);
                ctl.set_status(Status::Failed);
                return Ok(());
            }
        };
        let status = resp.status();
        ctl.log(&format!("HTTP {status}"));
        for (k, v) in resp.headers() {
            ctl.log(&format!("  {k}: {}", v.to_str().unwrap_or("<binary>")));
        }
        match resp.bytes().await {
            Ok(b) => {
                let shown = &b[..b.len().min(LOGGED_BODY)];
                if let Ok(text) = std::str::from_utf8(shown) {
                    if !text.is_empty() {
                        ctl.log(text);
                    }
                }
            }
            Err(e) => ctl.log(&format!("reading the body failed: {e}")),
        }
        if status.as_u16() < 400 {
            ctl.set_status(Status::Succeeded);
        } else {
            ctl.set_summary(&format!("HTTP {status} from {}", p.url));
            ctl.set_status(Status::Failed);
        }
        Ok(())
    }
    async fn abort(&self, _ctl: &mut Controller<'_>) -> Result<(), ManagerError> {
        Ok(())
    }
    async fn handle_timer(&self, _ctl: &mut Controller<'_>, title: &str, _p: &[u8]) -> Result<(), ManagerError> {
        Err(ManagerError::Fatal(format!("http: unexpected timer {title:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_parameters_are_explained() {
        let cases = [
            (serde_json::json!({}), "`url` is required"),
            (serde_json::json!({"url": "ftp://x"}), "http:// or https://"),
            (serde_json::json!({"url": "http://x", "method": "DELETE"}), "not supported"),
            (serde_json::json!({"url": "http://x", "timeout": "10m"}), "between 1s and 8m"),
            (serde_json::json!({"url": "http://x", "body": "b"}), "POST or PUT"),
            (serde_json::json!({"url": "http://x", "colour": "red"}), "unknown parameter"),
        ];
        for (p, needle) in cases {
            let e = Http.validate(&p, "p:r").expect_err(&p.to_string());
            assert!(e.contains(needle), "{p}: {e}");
        }
        assert!(Http.validate(&serde_json::json!({"url": "https://x/y", "timeout": "5s"}), "p:r").is_ok());
    }
}
