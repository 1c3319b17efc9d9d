//! Server replicas sharing one PostgreSQL database: change announcements
//! and the background-work lease.
//!
//! Announcements: every non-quiet commit sends `NOTIFY muster_changes` with
//! the ids of the tasks and bots it touched, inside its transaction (so
//! peers hear of it only once it is durable). Each store LISTENs on a
//! dedicated connection and forwards what other processes announced; when
//! that connection drops it reconnects and reports [`Feed::Missed`], since
//! notifications sent meanwhile are lost.
//!
//! Lease: a session-level advisory lock held on a dedicated connection. The
//! holder runs the once-per-deployment sweeps; if its process dies the
//! connection closes, PostgreSQL releases the lock, and the next replica to
//! ask takes it.

use crate::{Changes, Feed, Result, StoreError};
use muster_core::TaskId;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio_postgres::{AsyncMessage, NoTls};

/// The LISTEN/NOTIFY channel.
pub(crate) const CHANNEL: &str = "muster_changes";

/// NOTIFY payloads must stay under 8000 bytes; keep a margin.
const MAX_PAYLOAD: usize = 7000;

/// Advisory lock key of the sweep lease ("muster" + 1).
const LEASE_KEY: i64 = 0x006d_7573_7465_7201;

/// Pause between reconnection attempts of the listener.
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

/// One NOTIFY payload (JSON).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Payload {
    /// The announcing process (its own announcements are ignored).
    o: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    t: Vec<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    b: Vec<String>,
    /// The drains changed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    d: bool,
    /// Too much to list: reconcile everything.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    m: bool,
}

impl Payload {
    fn encode(&self) -> Result<String> {
        serde_json::to_string(self).map_err(|e| StoreError::Other(format!("encoding a change notice: {e}")))
    }
}

/// The payloads announcing `c`, each under the NOTIFY size limit.
pub(crate) fn payloads(origin: u64, c: &Changes) -> Result<Vec<String>> {
    if c.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    let mut cur = Payload { o: origin, d: c.drains, ..Default::default() };
    let mut size = 64;
    for id in &c.tasks {
        if size + 21 > MAX_PAYLOAD {
            out.push(cur.encode()?);
            cur = Payload { o: origin, ..Default::default() };
            size = 64;
        }
        cur.t.push(id.0);
        size += 21;
    }
    for bot in &c.bots {
        // JSON-escaped length, at most 6 bytes per input byte.
        let len = bot.len() * 6 + 3;
        if len + 64 > MAX_PAYLOAD {
            // Cannot be listed: peers reconcile everything instead.
            return Ok(vec![Payload { o: origin, m: true, ..Default::default() }.encode()?]);
        }
        if size + len > MAX_PAYLOAD {
            out.push(cur.encode()?);
            cur = Payload { o: origin, ..Default::default() };
            size = 64;
        }
        cur.b.push(bot.clone());
        size += len;
    }
    out.push(cur.encode()?);
    Ok(out)
}

/// What a payload means to the process `me`: None for its own or garbage.
pub(crate) fn parse(me: u64, payload: &str) -> Option<Feed> {
    let p: Payload = match serde_json::from_str(payload) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "ignoring a malformed change notice");
            return None;
        }
    };
    if p.o == me {
        return None;
    }
    if p.m {
        return Some(Feed::Missed);
    }
    Some(Feed::Changed(Changes { tasks: p.t.into_iter().map(TaskId).collect(), bots: p.b, drains: p.d }))
}

/// A random id for this process's announcements.
pub(crate) fn new_origin() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish()
}

/// Starts listening; returns once LISTEN is in effect.
pub(crate) async fn listen(config: tokio_postgres::Config, origin: u64) -> Result<UnboundedReceiver<Feed>> {
    let (tx, rx) = unbounded_channel();
    let first = connect_listener(&config, origin, tx.clone()).await?;
    tokio::spawn(async move {
        let mut session = first;
        loop {
            let _ = session.await;
            if tx.is_closed() {
                return;
            }
            tracing::warn!("lost the postgres LISTEN connection; reconnecting");
            session = loop {
                tokio::time::sleep(RECONNECT_PAUSE).await;
                if tx.is_closed() {
                    return;
                }
                match connect_listener(&config, origin, tx.clone()).await {
                    Ok(s) => break s,
                    Err(e) => tracing::warn!(error = %e, "reconnecting the postgres LISTEN connection"),
                }
            };
            if tx.send(Feed::Missed).is_err() {
                return;
            }
        }
    });
    Ok(rx)
}

/// One LISTEN connection; the handle ends when the connection does.
async fn connect_listener(
    config: &tokio_postgres::Config,
    origin: u64,
    tx: UnboundedSender<Feed>,
) -> Result<tokio::task::JoinHandle<()>> {
    let (client, mut connection) =
        config.connect(NoTls).await.map_err(|e| StoreError::Other(format!("connecting to listen: {e}")))?;
    let driver = tokio::spawn(async move {
        loop {
            tokio::select! {
                msg = std::future::poll_fn(|cx| connection.poll_message(cx)) => match msg {
                    Some(Ok(AsyncMessage::Notification(n))) => {
                        if let Some(feed) = parse(origin, n.payload()) {
                            if tx.send(feed).is_err() {
                                return;
                            }
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "postgres LISTEN connection failed");
                        return;
                    }
                    None => return,
                },
                _ = tx.closed() => return,
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .await
        .map_err(|e| StoreError::Other(format!("starting to listen: {e}")))?;
    // The client lives as long as its connection.
    Ok(tokio::spawn(async move {
        let _client = client;
        let _ = driver.await;
    }))
}

/// The sweep lease; see the module doc.
pub(crate) struct Lease {
    config: tokio_postgres::Config,
    /// The dedicated connection and whether it holds the lock.
    conn: tokio::sync::Mutex<Option<(tokio_postgres::Client, bool)>>,
}

impl Lease {
    pub(crate) fn new(config: tokio_postgres::Config) -> Lease {
        Lease { config, conn: tokio::sync::Mutex::new(None) }
    }

    /// Whether this process holds the lease, taking it if it is free.
    pub(crate) async fn hold(&self) -> Result<bool> {
        let mut guard = self.conn.lock().await;
        if guard.as_ref().is_none_or(|(c, _)| c.is_closed()) {
            *guard = None;
            let (client, connection) = self
                .config
                .connect(NoTls)
                .await
                .map_err(|e| StoreError::Other(format!("connecting for the sweep lease: {e}")))?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!(error = %e, "postgres lease connection ended");
                }
            });
            *guard = Some((client, false));
        }
        let Some((client, held)) = guard.as_mut() else { return Ok(false) };
        if *held {
            return Ok(true);
        }
        let row = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&LEASE_KEY])
            .await
            .map_err(|e| StoreError::Other(format!("taking the sweep lease: {e}")))?;
        *held = row.try_get(0).map_err(|e| StoreError::Other(format!("reading the sweep lease: {e}")))?;
        Ok(*held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_reads_back_what_was_announced_and_ignores_its_own() {
        let c = Changes { tasks: vec![TaskId(7), TaskId(9)], bots: vec!["bot \"1\"".to_string()], drains: false };
        let p = payloads(1, &c).expect("encodes");
        assert_eq!(p.len(), 1);
        assert_eq!(parse(2, &p[0]), Some(Feed::Changed(c)));
        assert_eq!(parse(1, &p[0]), None);
        assert_eq!(parse(2, "not json"), None);
    }

    #[test]
    fn large_changes_are_split_under_the_notify_limit() {
        let c = Changes {
            tasks: (0..2000).map(|i| TaskId(i64::MAX - i)).collect(),
            bots: (0..2000).map(|i| format!("bot-{i:05}\u{1}")).collect(),
            drains: true,
        };
        let p = payloads(1, &c).expect("encodes");
        assert!(p.len() > 2);
        let mut back = Changes::default();
        for s in &p {
            assert!(s.len() < 8000, "payload of {} bytes", s.len());
            match parse(2, s) {
                Some(Feed::Changed(part)) => {
                    back.tasks.extend(part.tasks);
                    back.bots.extend(part.bots);
                    back.drains |= part.drains;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(back, c);
    }

    #[test]
    fn a_bot_id_too_long_to_list_asks_peers_to_reconcile() {
        let c = Changes { tasks: vec![], bots: vec!["x".repeat(5000)], drains: false };
        let p = payloads(1, &c).expect("encodes");
        assert_eq!(p.len(), 1);
        assert_eq!(parse(2, &p[0]), Some(Feed::Missed));
    }
}
