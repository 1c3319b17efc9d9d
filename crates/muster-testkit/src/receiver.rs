//! [`Receiver`]: a real HTTP endpoint on a loopback port 0 that records every
//! POST and answers by a script (a status per request, or never), for
//! notification tests.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// How to answer one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Status(u16),
    /// Keep the connection open and never answer.
    Hang,
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// What it was answered (None: hung).
    pub reply: Option<u16>,
}

impl Received {
    pub fn header(&self, name: &str) -> String {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

#[derive(Default)]
struct Inner {
    script: VecDeque<Reply>,
    /// After the script runs out.
    then: Option<Reply>,
    got: Vec<Received>,
}

/// See the module doc. Stops when dropped.
pub struct Receiver {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
    stop: CancellationToken,
}

impl Receiver {
    /// Answers the first requests by `script`, then always `then`.
    pub async fn start(script: &[Reply], then: Reply) -> anyhow::Result<Receiver> {
        let inner =
            Arc::new(Mutex::new(Inner { script: script.iter().copied().collect(), then: Some(then), got: Vec::new() }));
        let state = inner.clone();
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
            let state = state.clone();
            async move {
                let reply = {
                    let mut s = state.lock();
                    let r = s.script.pop_front().or(s.then).unwrap_or(Reply::Status(200));
                    s.got.push(Received {
                        path: uri.path().to_string(),
                        headers,
                        body,
                        reply: match r {
                            Reply::Status(c) => Some(c),
                            Reply::Hang => None,
                        },
                    });
                    r
                };
                match reply {
                    Reply::Status(c) => StatusCode::from_u16(c).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    Reply::Hang => std::future::pending().await,
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let stop = CancellationToken::new();
        let s = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(s.cancelled_owned()).await;
        });
        Ok(Receiver { url, inner, stop })
    }

    /// Every request so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().got.clone()
    }

    /// Changes what later requests (after the script) are answered.
    pub fn then(&self, r: Reply) {
        self.inner.lock().then = Some(r);
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
