use anyhow::{anyhow, Context};
use serde_json::Value;

/// A swarming.v2 pRPC client speaking JSON (the wire shape a browser uses).
#[derive(Clone)]
pub struct Prpc {
    pub url: String,
    http: reqwest::Client,
    /// Sent as `Authorization: Bearer <token>` when set.
    pub token: Option<String>,
}

/// A pRPC reply: the gRPC code and the decoded JSON (or the error text).
#[derive(Debug, Clone)]
pub struct Reply {
    pub code: i32,
    pub http_status: u16,
    pub json: Value,
    pub text: String,
}

impl Prpc {
    pub fn new(url: &str) -> Prpc {
        Prpc { url: url.trim_end_matches('/').to_string(), http: reqwest::Client::new(), token: None }
    }

    /// The same client authenticating with `token`.
    pub fn with_token(&self, token: &str) -> Prpc {
        Prpc { token: Some(token.to_string()), ..self.clone() }
    }

    /// Calls any service (`muster.v1.Tokens`, …) by its full name.
    pub async fn call_service(&self, service: &str, method: &str, body: &Value) -> anyhow::Result<Reply> {
        self.call_full(service, method, body).await
    }

    /// Calls `service.method` (e.g. "Tasks", "NewTask") with a JSON body.
    pub async fn call(&self, service: &str, method: &str, body: &Value) -> anyhow::Result<Reply> {
        self.call_full(&format!("swarming.v2.{service}"), method, body).await
    }

    /// Calls a method of a fully named service (e.g. "muster.v1.Fleet").
    pub async fn call_full(&self, service: &str, method: &str, body: &Value) -> anyhow::Result<Reply> {
        let mut req = self.http.post(format!("{}/prpc/{service}/{method}", self.url));
        if let Some(t) = &self.token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let resp = req
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(serde_json::to_vec(body)?)
            .send()
            .await
            .with_context(|| format!("calling {service}.{method}"))?;
        let http_status = resp.status().as_u16();
        let code = resp
            .headers()
            .get("x-prpc-grpc-code")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| anyhow!("{service}.{method}: no X-Prpc-Grpc-Code header (HTTP {http_status})"))?;
        let bytes = resp.bytes().await?;
        let text = String::from_utf8_lossy(&bytes).to_string();
        let json = if code == 0 {
            let body = text.strip_prefix(")]}'\n").ok_or_else(|| anyhow!("JSON reply without )]}}' prefix: {text}"))?;
            serde_json::from_str(body).with_context(|| format!("decoding {text}"))?
        } else {
            Value::Null
        };
        Ok(Reply { code, http_status, json, text })
    }

    /// Like [`Prpc::call`] but fails unless the code is OK.
    pub async fn ok(&self, service: &str, method: &str, body: &Value) -> anyhow::Result<Value> {
        let r = self.call(service, method, body).await?;
        if r.code != 0 {
            return Err(anyhow!("{service}.{method} failed: code {} {}", r.code, r.text.trim()));
        }
        Ok(r.json)
    }

    /// NewTask with one slice running `command` on `pool`; returns the summary id.
    pub async fn new_task(&self, name: &str, pool: &str, command: &[&str]) -> anyhow::Result<String> {
        let v = self
            .ok(
                "Tasks",
                "NewTask",
                &serde_json::json!({
                    "name": name, "priority": 100,
                    "taskSlices": [{"expirationSecs": 600, "properties": {
                        "command": command, "dimensions": [{"key": "pool", "value": pool}],
                        "executionTimeoutSecs": 60, "ioTimeoutSecs": 60, "gracePeriodSecs": 5}}],
                }),
            )
            .await?;
        v["taskId"].as_str().map(str::to_string).ok_or_else(|| anyhow!("no taskId in {v}"))
    }

    /// GetResult's JSON.
    pub async fn result(&self, task_id: &str) -> anyhow::Result<Value> {
        self.ok("Tasks", "GetResult", &serde_json::json!({"taskId": task_id})).await
    }

    /// The whole stdout of a task.
    pub async fn stdout(&self, task_id: &str) -> anyhow::Result<Vec<u8>> {
        let v = self.ok("Tasks", "GetStdout", &serde_json::json!({"taskId": task_id})).await?;
        let s = v["output"].as_str().unwrap_or_default();
        muster_api::bot::decode_b64(s).map_err(|e| anyhow!(e))
    }

    /// Polls GetResult until the state is final (fails after `limit`).
    pub async fn wait_final(&self, task_id: &str, limit: std::time::Duration) -> anyhow::Result<Value> {
        let last = std::cell::RefCell::new(Value::Null);
        let what = format!("task {task_id} to end");
        let r = crate::wait_for(&what, limit, || async {
            let r = self.result(task_id).await?;
            let running = matches!(r["state"].as_str().unwrap_or(""), "PENDING" | "RUNNING");
            *last.borrow_mut() = r.clone();
            Ok((!running).then_some(r))
        })
        .await;
        r.with_context(|| format!("last seen: {}", last.borrow()))
    }

    /// Polls GetResult until the task is RUNNING and its stdout contains
    /// `marker` (empty: any); fails if it ends first or after `limit`. The
    /// one way tests wait for "the task has really started".
    pub async fn wait_running(&self, task_id: &str, marker: &str, limit: std::time::Duration) -> anyhow::Result<Value> {
        let last = std::cell::RefCell::new(Value::Null);
        let what = format!("task {task_id} to run and print {marker:?}");
        let r = crate::wait_for(&what, limit, || async {
            let r = self.result(task_id).await?;
            *last.borrow_mut() = r.clone();
            match r["state"].as_str().unwrap_or("") {
                "PENDING" => Ok(None),
                "RUNNING" => {
                    let printed =
                        marker.is_empty() || String::from_utf8_lossy(&self.stdout(task_id).await?).contains(marker);
                    Ok(printed.then_some(r))
                }
                other => Err(anyhow!("task {task_id} ended {other} before it was seen running: {r}")),
            }
        })
        .await;
        r.with_context(|| format!("last seen: {}", last.borrow()))
    }
}
