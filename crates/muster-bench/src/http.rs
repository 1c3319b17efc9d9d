//! The two wire protocols spoken by the bench, over one shared HTTP client:
//! the Swarming bot API (JSON POSTs under /swarming/api/v1/bot) and JSON
//! pRPC (swarming.v2).

use anyhow::{anyhow, Context};
use serde_json::{json, Value};
use std::time::Duration;

/// A cheap-to-clone HTTP client bound to one server.
#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    pub url: String,
}

impl Http {
    /// A client with a connection pool big enough for every simulated bot to
    /// keep its own keep-alive connection (one long poll in flight per bot).
    pub fn new(url: &str, timeout: Duration) -> anyhow::Result<Http> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(usize::MAX)
            .pool_idle_timeout(Duration::from_secs(120))
            .tcp_nodelay(true)
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(30))
            .user_agent("muster-bench")
            .build()
            .context("building the HTTP client")?;
        Ok(Http { client, url: url.trim_end_matches('/').to_string() })
    }

    /// POSTs a bot API call; fails unless HTTP 200 with a JSON body.
    pub async fn bot(&self, bot_id: &str, path: &str, body: &Value) -> anyhow::Result<Value> {
        let resp = self
            .client
            .post(format!("{}/swarming/api/v1/bot/{path}", self.url))
            .header("content-type", "application/json; charset=utf-8")
            .header("x-luci-swarming-bot-id", bot_id)
            .body(serde_json::to_vec(body)?)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.with_context(|| format!("reading the {path} reply"))?;
        if status != 200 {
            return Err(anyhow!("{path}: HTTP {status}: {}", String::from_utf8_lossy(&bytes)));
        }
        serde_json::from_slice(&bytes).with_context(|| format!("{path}: non-JSON reply"))
    }

    /// Calls `swarming.v2.<service>/<method>` with JSON; fails unless code 0.
    pub async fn prpc(&self, service: &str, method: &str, body: &Value) -> anyhow::Result<Value> {
        let resp = self
            .client
            .post(format!("{}/prpc/swarming.v2.{service}/{method}", self.url))
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(serde_json::to_vec(body)?)
            .send()
            .await
            .with_context(|| format!("calling {service}.{method}"))?;
        let code =
            resp.headers().get("x-prpc-grpc-code").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<i32>().ok());
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.with_context(|| format!("reading the {method} reply"))?;
        let text = String::from_utf8_lossy(&bytes);
        match code {
            Some(0) => {
                let body =
                    text.strip_prefix(")]}'\n").ok_or_else(|| anyhow!("{method}: reply without )]}}' prefix"))?;
                serde_json::from_str(body).with_context(|| format!("{method}: decoding the reply"))
            }
            Some(c) => Err(anyhow!("{service}.{method}: code {c}: {}", text.trim())),
            None => Err(anyhow!("{service}.{method}: HTTP {status} without X-Prpc-Grpc-Code: {}", text.trim())),
        }
    }

    /// GETs a page; returns (status, body length).
    pub async fn get(&self, path: &str) -> anyhow::Result<(u16, usize)> {
        let resp =
            self.client.get(format!("{}{path}", self.url)).send().await.with_context(|| format!("GET {path}"))?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.with_context(|| format!("reading GET {path}"))?;
        Ok((status, bytes.len()))
    }

    /// GET returning the status and the body as text.
    pub async fn get_text(&self, path: &str) -> anyhow::Result<(u16, String)> {
        let resp =
            self.client.get(format!("{}{path}", self.url)).send().await.with_context(|| format!("GET {path}"))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.with_context(|| format!("reading GET {path}"))?;
        Ok((status, text))
    }

    /// NewTask running `true` on bots with `dims` (pool first); returns the task id.
    /// `waitForCapacity` so tasks may be queued before any bot matches.
    pub async fn new_task(&self, name: &str, dims: &[(String, String)], request_uuid: &str) -> anyhow::Result<String> {
        let dimensions: Vec<Value> = dims.iter().map(|(k, v)| json!({"key": k, "value": v})).collect();
        let body = json!({
            "name": name, "priority": 100, "requestUuid": request_uuid, "tags": ["bench:1"],
            "taskSlices": [{"expirationSecs": 3600, "waitForCapacity": true, "properties": {
                "command": ["true"], "dimensions": dimensions,
                "executionTimeoutSecs": 60, "ioTimeoutSecs": 60, "gracePeriodSecs": 5}}],
        });
        let v = self.prpc("Tasks", "NewTask", &body).await?;
        v["taskId"].as_str().map(str::to_string).ok_or_else(|| anyhow!("NewTask: no taskId in {v}"))
    }
}

/// The summary id (`…0`) of a run id (`…1`).
pub fn summary_of(run_id: &str) -> String {
    let mut s = run_id.to_string();
    s.pop();
    s.push('0');
    s
}
