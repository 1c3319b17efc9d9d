use anyhow::{anyhow, Context};
use serde_json::{json, Value};

/// A protocol-level bot: speaks the Swarming bot API over HTTP exactly as a
/// bot would, one call per method, so tests control every packet.
pub struct TestBot {
    pub url: String,
    pub id: String,
    pub dimensions: Value,
    pub state: Value,
    pub version: String,
    pub session: Option<String>,
    /// Sent as `Authorization: Bearer` when set (group or machine token).
    pub bearer: Option<String>,
    http: reqwest::Client,
}

impl TestBot {
    /// A bot with dimensions `{id: [id], pool: [pool]}` plus `extra`.
    pub fn new(url: &str, id: &str, pool: &str, extra: &[(&str, &[&str])]) -> TestBot {
        let mut dims = serde_json::Map::new();
        dims.insert("id".into(), json!([id]));
        dims.insert("pool".into(), json!([pool]));
        for (k, vs) in extra {
            dims.insert((*k).to_string(), json!(vs));
        }
        TestBot {
            url: url.trim_end_matches('/').to_string(),
            id: id.to_string(),
            dimensions: Value::Object(dims),
            state: json!({"running_time": 1, "sleep_streak": 0}),
            version: String::new(),
            session: None,
            bearer: None,
            http: reqwest::Client::new(),
        }
    }

    /// POSTs `body` to `/swarming/api/v1/bot/<path>`; returns (status, JSON).
    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        let mut req = self
            .http
            .post(format!("{}/swarming/api/v1/bot/{path}", self.url))
            .header("content-type", "application/json; charset=utf-8")
            .header("x-luci-swarming-bot-id", &self.id);
        if let Some(b) = &self.bearer {
            req = req.bearer_auth(b);
        }
        let resp = req.json(body).send().await.with_context(|| format!("POST {path}"))?;
        let status = resp.status().as_u16();
        let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let bytes = resp.bytes().await?;
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
            anyhow!("{path}: non-JSON reply ({status}, {ct}): {e}: {}", String::from_utf8_lossy(&bytes))
        })?;
        Ok((status, v))
    }

    fn remember_session(&mut self, v: &Value) {
        if let Some(s) = v.get("session").and_then(Value::as_str) {
            if !s.is_empty() {
                self.session = Some(s.to_string());
            }
        }
    }

    pub async fn handshake(&mut self) -> anyhow::Result<Value> {
        let body = json!({"dimensions": self.dimensions, "state": self.state, "version": self.version,
                          "session_id": format!("{}-session/1", self.id.to_lowercase())});
        let (status, v) = self.post("handshake", &body).await?;
        if status != 200 {
            return Err(anyhow!("handshake: HTTP {status}: {v}"));
        }
        self.remember_session(&v);
        Ok(v)
    }

    /// One poll with the given request_uuid.
    pub async fn poll_with(&mut self, request_uuid: &str) -> anyhow::Result<Value> {
        let body = json!({"dimensions": self.dimensions, "state": self.state, "version": self.version,
                          "session": self.session, "request_uuid": request_uuid});
        let (status, v) = self.post("poll", &body).await?;
        if status != 200 {
            return Err(anyhow!("poll: HTTP {status}: {v}"));
        }
        self.remember_session(&v);
        Ok(v)
    }

    /// One poll with a fresh request_uuid.
    pub async fn poll(&mut self) -> anyhow::Result<Value> {
        let uuid = uuid::Uuid::new_v4().to_string();
        self.poll_with(&uuid).await
    }

    /// Polls until the reply is `run`, returning the manifest (hang guard: `tries`).
    pub async fn poll_until_run(&mut self, tries: usize) -> anyhow::Result<Value> {
        for _ in 0..tries {
            let v = self.poll().await?;
            if v["cmd"] == "run" {
                return Ok(v["manifest"].clone());
            }
        }
        Err(anyhow!("bot {} got no task in {tries} polls", self.id))
    }

    /// A task_update with the given extra fields; returns (status, reply).
    pub async fn update(&mut self, run_id: &str, fields: Value) -> anyhow::Result<(u16, Value)> {
        let mut body = json!({"id": self.id, "task_id": run_id, "session": self.session});
        if let (Some(b), Some(f)) = (body.as_object_mut(), fields.as_object()) {
            for (k, v) in f {
                b.insert(k.clone(), v.clone());
            }
        }
        let (status, v) = self.post(&format!("task_update/{run_id}"), &body).await?;
        self.remember_session(&v);
        Ok((status, v))
    }

    /// Sends `data` at `offset`.
    pub async fn output(&mut self, run_id: &str, offset: u64, data: &[u8]) -> anyhow::Result<Value> {
        let (status, v) = self
            .update(
                run_id,
                json!({"output": muster_api::bot::encode_b64(data), "output_chunk_start": offset, "cost_usd": 0.001}),
            )
            .await?;
        if status != 200 {
            return Err(anyhow!("task_update: HTTP {status}: {v}"));
        }
        Ok(v)
    }

    /// The final packet.
    pub async fn complete(&mut self, run_id: &str, exit_code: i64, duration: f64) -> anyhow::Result<Value> {
        let (status, v) = self
            .update(
                run_id,
                json!({"exit_code": exit_code, "duration": duration, "hard_timeout": false,
                                   "io_timeout": false, "bot_overhead": 0.01}),
            )
            .await?;
        if status != 200 {
            return Err(anyhow!("task_update: HTTP {status}: {v}"));
        }
        Ok(v)
    }
}
