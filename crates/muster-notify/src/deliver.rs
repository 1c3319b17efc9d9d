//! [`Deliverer`]: sends due outbox rows (docs/notifications.md#delivery).
//!
//! Only the holder of the store's lease delivers (one replica at a time).
//! No row is claimed in the database: this process remembers what it has in
//! flight, so a crash leaves the row pending and the next holder sends it
//! again with the same delivery id.

use crate::message::{pubsub_body, signature, webhook_body, Payload};
use crate::Notifier;
use muster_config::notifications_toml::{Delivery, Sink, SinkKind};
use muster_core::{Clock, Time};
use muster_store::outbox::{OutboxRow, OutboxWrite};
use muster_store::{Store, Txn, Write};
use parking_lot::Mutex;
use rand::Rng;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often due rows are looked for when nothing wakes the loop.
const POLL_EVERY: Duration = Duration::from_millis(500);
/// Due rows read per round.
const BATCH: usize = 256;
/// Delivered rows are kept this long (for `muster notifications list`).
const KEEP_DELIVERED: chrono::Duration = chrono::Duration::days(7);
/// Error texts stored on a row are cut to this many bytes.
const MAX_ERROR: usize = 300;

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Worth another try (network, timeout, 408/409/425/429/5xx).
    Retry(String),
    /// A permanent refusal (other 4xx, a redirect elsewhere).
    Dead(String),
}

/// The delivery loop; see the module doc.
pub struct Deliverer {
    store: Arc<dyn Store>,
    notifier: Notifier,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
    in_flight: Mutex<HashSet<String>>,
    per_sink: Mutex<HashMap<String, usize>>,
}

impl Deliverer {
    pub fn new(store: Arc<dyn Store>, notifier: Notifier, clock: Arc<dyn Clock>) -> Arc<Deliverer> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::custom(|a| {
                // Only to the same host and port (never elsewhere: a sink
                // must not become a way to reach other addresses).
                let same = a.previous().first().is_some_and(|first| {
                    first.host_str() == a.url().host_str()
                        && first.port_or_known_default() == a.url().port_or_known_default()
                });
                if same && a.previous().len() < 5 {
                    a.follow()
                } else {
                    a.stop()
                }
            }))
            .user_agent(concat!("muster-notify/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Arc::new(Deliverer {
            store,
            notifier,
            clock,
            http,
            in_flight: Mutex::new(HashSet::new()),
            per_sink: Mutex::new(HashMap::new()),
        })
    }

    /// Runs until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut next_prune: Option<Time> = None;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.notifier.wake.notified() => {}
                _ = tokio::time::sleep(POLL_EVERY) => {}
            }
            match self.store.lead().await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "notifications: could not check the lease");
                    continue;
                }
            }
            let now = self.clock.now();
            if next_prune.is_none_or(|t| now >= t) {
                next_prune = Some(now + chrono::Duration::minutes(10));
                let w = Write::Outbox(Box::new(OutboxWrite::PruneDelivered { before: now - KEEP_DELIVERED }));
                if let Err(e) = self.store.commit(Txn::new().with(w).quiet()).await {
                    tracing::warn!(error = %e, "notifications: pruning delivered rows failed");
                }
            }
            self.clone().round(now).await;
        }
    }

    /// Starts an attempt for every due row not already in flight.
    async fn round(self: Arc<Self>, now: Time) {
        let Some(ob) = self.store.outbox() else { return };
        let due = match ob.due_outbox(now, BATCH).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "notifications: reading due rows failed");
                return;
            }
        };
        let limit = self.notifier.notifications().notifications.delivery.in_flight;
        for row in due {
            {
                let mut fl = self.in_flight.lock();
                let mut ps = self.per_sink.lock();
                let n = ps.entry(row.sink.clone()).or_default();
                if fl.contains(&row.delivery_id) || *n >= limit {
                    continue;
                }
                *n += 1;
                fl.insert(row.delivery_id.clone());
            }
            let this = self.clone();
            tokio::spawn(async move {
                let (id, sink) = (row.delivery_id.clone(), row.sink.clone());
                this.attempt(row).await;
                this.in_flight.lock().remove(&id);
                if let Some(n) = this.per_sink.lock().get_mut(&sink) {
                    *n = n.saturating_sub(1);
                }
            });
        }
    }

    /// One attempt of one row, and its record.
    async fn attempt(&self, row: OutboxRow) {
        let snap = self.notifier.notifications();
        let n = &snap.notifications;
        let attempts = row.attempts + 1;
        let started = self.clock.now();
        let outcome = match n.sink(&row.sink) {
            None => Outcome::Dead(format!("sink {:?} is no longer configured", row.sink)),
            Some(_) if over_age(&row, started, &n.delivery) => {
                Outcome::Dead(format!("not delivered within {}s", n.delivery.max_age.as_secs()))
            }
            Some(sink) => self.send(&row, sink, &n.delivery, self.config_dir().as_ref()).await,
        };
        let now = self.clock.now();
        let w = match &outcome {
            Outcome::Delivered => {
                metrics::counter!("muster_notifications_delivered_total").increment(1);
                tracing::info!(delivery_id = %row.delivery_id, sink = %row.sink, attempts, "notification delivered");
                OutboxWrite::Delivered { delivery_id: row.delivery_id.clone(), attempts, at: now }
            }
            Outcome::Retry(e) => {
                metrics::counter!("muster_notifications_failed_attempts_total").increment(1);
                let wait = backoff(&n.delivery, attempts);
                tracing::info!(delivery_id = %row.delivery_id, sink = %row.sink, attempts, error = %e, retry_in_ms = wait.as_millis() as u64, "notification attempt failed");
                let next = now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::minutes(10));
                OutboxWrite::Failed { delivery_id: row.delivery_id.clone(), attempts, next, error: cut(e) }
            }
            Outcome::Dead(e) => {
                metrics::counter!("muster_notifications_dead_total").increment(1);
                tracing::warn!(delivery_id = %row.delivery_id, sink = %row.sink, attempts, error = %e, "notification dead");
                OutboxWrite::Dead { delivery_id: row.delivery_id.clone(), attempts, at: now, error: cut(e) }
            }
        };
        if let Err(e) = self.store.commit(Txn::new().with(Write::Outbox(Box::new(w))).quiet()).await {
            tracing::warn!(delivery_id = %row.delivery_id, error = %e, "notifications: recording an attempt failed");
        }
    }

    fn config_dir(&self) -> Option<PathBuf> {
        self.notifier.config.dir().map(|d| d.to_path_buf())
    }

    async fn send(&self, row: &OutboxRow, sink: &Sink, d: &Delivery, dir: Option<&PathBuf>) -> Outcome {
        let Some(p) = Payload::of(row) else {
            return Outcome::Dead("the stored message is unreadable".into());
        };
        let mut req = self.http.post(&sink.url).timeout(d.timeout).header("content-type", "application/json");
        let body = match sink.kind {
            SinkKind::Webhook => {
                let secret = match read_secret(sink, dir) {
                    Ok(s) => s,
                    Err(e) => return Outcome::Retry(e),
                };
                let body = webhook_body(row, &p);
                let t = self.clock.now().timestamp();
                req = req
                    .header("Muster-Delivery-Id", &row.delivery_id)
                    .header("Muster-Signature", signature(&secret, t, &body));
                if !p.auth_token.is_empty() {
                    req = req.header("Muster-Auth-Token", &p.auth_token);
                }
                body
            }
            SinkKind::PubsubPush => pubsub_body(row, &p, &sink.subscription),
        };
        match req.body(body).send().await {
            Ok(resp) => classify(resp.status().as_u16(), resp.headers().get("location").and_then(|l| l.to_str().ok())),
            Err(e) if e.is_timeout() => Outcome::Retry(format!("no answer within {}ms", d.timeout.as_millis())),
            Err(e) => Outcome::Retry(error_chain(&e)),
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s.push_str(": ");
        s.push_str(&x.to_string());
        src = x.source();
    }
    s
}

/// Status → outcome (docs/notifications.md#delivery).
pub fn classify(status: u16, location: Option<&str>) -> Outcome {
    match status {
        200..=299 => Outcome::Delivered,
        408 | 409 | 425 | 429 | 500..=599 => Outcome::Retry(format!("HTTP {status}")),
        300..=399 => Outcome::Dead(format!("HTTP {status}: redirect to {} not followed", location.unwrap_or("?"))),
        _ => Outcome::Dead(format!("HTTP {status}")),
    }
}

fn over_age(row: &OutboxRow, now: Time, d: &Delivery) -> bool {
    chrono::Duration::from_std(d.max_age).is_ok_and(|max| now - row.since > max)
}

/// Wait before attempt `attempts + 1`: min_backoff doubling per attempt, at
/// most max_backoff, ± 20 %.
pub fn backoff(d: &Delivery, attempts: i64) -> Duration {
    let exp = attempts.clamp(1, 40) as u32 - 1;
    let base = d.min_backoff.saturating_mul(1u32.checked_shl(exp.min(31)).unwrap_or(u32::MAX)).min(d.max_backoff);
    let jitter = rand::rng().random_range(0.8..1.2);
    base.mul_f64(jitter)
}

fn read_secret(sink: &Sink, dir: Option<&PathBuf>) -> Result<Vec<u8>, String> {
    let Some(f) = &sink.secret_file else { return Err("no secret_file".into()) };
    let path = match dir {
        Some(d) => d.join(f),
        None => PathBuf::from(f),
    };
    let s = std::fs::read(&path).map_err(|e| format!("reading the secret {}: {e}", path.display()))?;
    let trimmed = s.trim_ascii().to_vec();
    if trimmed.is_empty() {
        return Err(format!("the secret {} is empty", path.display()));
    }
    Ok(trimmed)
}

fn cut(s: &str) -> String {
    if s.len() <= MAX_ERROR {
        return s.to_string();
    }
    let mut end = MAX_ERROR;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_outcomes() {
        assert_eq!(classify(204, None), Outcome::Delivered);
        assert!(matches!(classify(500, None), Outcome::Retry(_)));
        assert!(matches!(classify(429, None), Outcome::Retry(_)));
        assert!(matches!(classify(404, None), Outcome::Dead(_)));
        assert_eq!(
            classify(302, Some("http://10.0.0.1/")),
            Outcome::Dead("HTTP 302: redirect to http://10.0.0.1/ not followed".into())
        );
    }

    #[test]
    fn backoff_doubles_within_jitter_and_caps() {
        let d = Delivery {
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(600),
            ..Default::default()
        };
        for (attempt, base) in [(1, 1.0), (2, 2.0), (3, 4.0), (11, 600.0), (40, 600.0)] {
            let b = backoff(&d, attempt).as_secs_f64();
            assert!(b >= base * 0.8 && b <= base * 1.2, "attempt {attempt}: {b}");
        }
    }
}
