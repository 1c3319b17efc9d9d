//! Shared fixtures: a fixed clock, parsed commands, deterministic messages,
//! and a small pRPC responder on 127.0.0.1:0 for client-side tests.

use chrono::{DateTime, TimeZone, Utc};
use clap::Parser;
use muster_api::pb;
use muster_cli::Command;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// 2044-01-02T03:04:05Z: the pinned "now" of the tests.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2044, 1, 2, 3, 4, 5).single().expect("valid time")
}

pub struct FixedClock(pub DateTime<Utc>);
impl muster_core::Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

pub fn env() -> muster_cli::Env {
    muster_cli::Env::plain(Arc::new(FixedClock(now())), "alice")
}

#[derive(Parser, Debug)]
#[command(name = "muster")]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Command,
}

/// Parses a command line (without the program name).
pub fn parse(args: &[&str]) -> Result<Command, clap::Error> {
    let mut v = vec!["muster"];
    v.extend_from_slice(args);
    Cli::try_parse_from(v).map(|c| c.cmd)
}

pub fn ts(secs_before_now: i64) -> pb::Timestamp {
    pb::Timestamp::from_datetime(now() - chrono::Duration::seconds(secs_before_now))
}

pub fn completed_result(id: &str) -> pb::TaskResultResponse {
    pb::TaskResultResponse {
        task_id: id.to_string(),
        bot_id: "bot-1".into(),
        bot_dimensions: vec![
            pb::StringListPair { key: "os".into(), value: vec!["Linux".into()] },
            pb::StringListPair { key: "pool".into(), value: vec!["default".into()] },
        ],
        created_ts: Some(ts(300)),
        started_ts: Some(ts(290)),
        completed_ts: Some(ts(280)),
        modified_ts: Some(ts(280)),
        duration: 9.5,
        exit_code: 3,
        failure: true,
        state: pb::TaskState::Completed as i32,
        name: "alice/pool=default".into(),
        tags: vec!["pool:default".into(), "user:alice".into()],
        user: "alice".into(),
        run_id: format!("{}1", &id[..id.len() - 1]),
        costs_usd: vec![0.25],
        server_versions: vec!["v1".into()],
        ..Default::default()
    }
}

pub fn pending_result(id: &str) -> pb::TaskResultResponse {
    pb::TaskResultResponse {
        task_id: id.to_string(),
        created_ts: Some(ts(30)),
        modified_ts: Some(ts(30)),
        state: pb::TaskState::Pending as i32,
        name: "a-much-longer-task-name".into(),
        user: "alice".into(),
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------
// A pRPC responder
// ---------------------------------------------------------------------------

/// An answer: gRPC code and binary body (or error text).
pub struct Reply {
    pub code: i32,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn ok<M: prost::Message>(m: &M) -> Reply {
        Reply { code: 0, body: m.encode_to_vec() }
    }
    pub fn err(code: i32, msg: &str) -> Reply {
        Reply { code, body: format!("{msg}\n").into_bytes() }
    }
}

/// One recorded call: (path, lower-cased headers, body).
pub type Call = (String, HashMap<String, String>, Vec<u8>);

type Handler = dyn Fn(&str, &[u8]) -> Reply + Send + Sync;

/// A pRPC endpoint on 127.0.0.1:0 answering each call with `handler(method, body)`.
/// Records every call as (path, headers, body).
pub struct Responder {
    pub url: String,
    pub calls: Arc<Mutex<Vec<Call>>>,
}

impl Responder {
    pub async fn start(handler: impl Fn(&str, &[u8]) -> Reply + Send + Sync + 'static) -> Responder {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let calls = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let rec = calls.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let handler = handler.clone();
                let rec = rec.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut tmp = [0u8; 4096];
                    let head_end = loop {
                        let n = match sock.read(&mut tmp).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        buf.extend_from_slice(&tmp[..n]);
                        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break p + 4;
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let mut lines = head.lines();
                    let path = lines.next().unwrap_or("").split(' ').nth(1).unwrap_or("").to_string();
                    let headers: HashMap<String, String> = lines
                        .filter_map(|l| l.split_once(':'))
                        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                        .collect();
                    let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
                    while buf.len() < head_end + len {
                        match sock.read(&mut tmp).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&tmp[..n]),
                        }
                    }
                    let body = buf[head_end..head_end + len].to_vec();
                    let method = path.rsplit('/').next().unwrap_or("").to_string();
                    let reply = handler(&method, &body);
                    rec.lock().expect("lock").push((path, headers, body));
                    let ct =
                        if reply.code == 0 { "application/prpc; encoding=binary" } else { "text/plain; charset=utf-8" };
                    // The HTTP status the real server sends with this code (503 for UNAVAILABLE).
                    let status = match muster_api::prpc::Code::from_i32(reply.code) {
                        Some(c) if reply.code != 0 => format!("{} Error", c.http_status()),
                        _ => "200 OK".to_string(),
                    };
                    let head = format!(
                        "HTTP/1.1 {status}\r\nX-Prpc-Grpc-Code: {}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        reply.code,
                        reply.body.len()
                    );
                    let _ = sock.write_all(head.as_bytes()).await;
                    let _ = sock.write_all(&reply.body).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        Responder { url, calls }
    }

    pub fn client(&self) -> muster_cli::Client {
        muster_cli::Client::new(&self.url, Some("tok-123".into())).expect("client")
    }

    pub fn methods(&self) -> Vec<String> {
        self.calls.lock().expect("lock").iter().map(|c| c.0.rsplit('/').next().unwrap_or("").to_string()).collect()
    }
}
