//! [`NotifyingStore`]: adds an outbox row per matching sink to every Txn
//! that commits an announced task transition (docs/notifications.md#when).

use crate::message::Payload;
use crate::Notifier;
use muster_core::{TaskId, TaskRequest, TaskResult, TaskState};
use muster_store::outbox::{OutboxRow, OutboxWrite, PENDING};
use muster_store::{CommitOutcome, Result, Store, Txn, Write};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;

/// Forget the subscription cache past this many tasks (it refills from the
/// store).
const MAX_CACHED: usize = 200_000;

/// The event name in bodies and rows.
pub const EVENT: &str = "task.state_changed";

/// A task's notification request (immutable once the task exists).
#[derive(Debug, Clone)]
struct Subscription {
    topic: String,
    auth_token: String,
    userdata: String,
}

/// Wraps a store; see the module doc. Reads pass through.
pub struct NotifyingStore {
    inner: Arc<dyn Store>,
    notifier: Notifier,
    /// Task → its subscription (None: the task asked for none).
    subs: Mutex<HashMap<TaskId, Option<Arc<Subscription>>>>,
}

impl NotifyingStore {
    pub fn new(inner: Arc<dyn Store>, notifier: Notifier) -> NotifyingStore {
        NotifyingStore { inner, notifier, subs: Mutex::new(HashMap::new()) }
    }

    fn remember(&self, id: TaskId, sub: Option<Arc<Subscription>>) {
        let mut subs = self.subs.lock();
        if subs.len() >= MAX_CACHED {
            subs.clear();
        }
        subs.insert(id, sub);
    }

    async fn subscription(&self, id: TaskId) -> Result<Option<Arc<Subscription>>> {
        if let Some(s) = self.subs.lock().get(&id) {
            return Ok(s.clone());
        }
        let sub = self.inner.get_request(id).await?.and_then(|r| subscription_of(&r));
        self.remember(id, sub.clone());
        Ok(sub)
    }

    /// The outbox rows `txn` must carry.
    async fn rows_for(&self, txn: &Txn) -> Result<Vec<Write>> {
        let snap = self.notifier.notifications();
        let n = &snap.notifications;
        let mut out = Vec::new();
        for w in &txn.writes {
            match w {
                Write::InsertTask { request, result } => {
                    let sub = subscription_of(request);
                    self.remember(result.id, sub.clone());
                    // Created already final: a deduplicated or NO_RESOURCE task.
                    if let (Some(sub), true) = (sub, result.state.is_final()) {
                        out.extend(rows(n, &sub, result, result.version));
                    }
                }
                Write::UpdateResult(next) => {
                    if n.sinks.is_empty() {
                        continue;
                    }
                    let Some(sub) = self.subscription(next.id).await? else { continue };
                    let Some(prior) = self.inner.get_result(next.id).await? else { continue };
                    // A stale version cannot commit (compare-and-set): no row.
                    if prior.version == next.version && announced(&prior, next) {
                        out.extend(rows(n, &sub, next, next.version + 1));
                    }
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

fn subscription_of(r: &TaskRequest) -> Option<Arc<Subscription>> {
    (!r.pubsub_topic.is_empty()).then(|| {
        Arc::new(Subscription {
            topic: r.pubsub_topic.clone(),
            auth_token: r.pubsub_auth_token.clone(),
            userdata: r.pubsub_userdata.clone(),
        })
    })
}

/// Whether `prior → next` is a transition upstream announces: the claim,
/// reaching a final state, and a cancel of a running task (the kill flag).
/// Output, heartbeats and moving to the next slice are not.
pub fn announced(prior: &TaskResult, next: &TaskResult) -> bool {
    if prior.state.is_final() {
        return false;
    }
    (prior.state == TaskState::Pending && next.state == TaskState::Running)
        || next.state.is_final()
        || (next.state == TaskState::Running && next.killing && !prior.killing)
}

/// The stable delivery id of one message to one sink.
fn delivery_id(task: &str, update_id: i64, sink: &str) -> String {
    let h = Sha256::digest(sink.as_bytes());
    format!("{task}-{update_id}-{}", hex::encode(&h[..4]))
}

fn rows(
    n: &muster_config::notifications_toml::Notifications,
    sub: &Subscription,
    r: &TaskResult,
    update_id: i64,
) -> Vec<Write> {
    let task_id = r.id.summary_id();
    let payload = Payload {
        task_id: task_id.clone(),
        state: r.state.name().to_string(),
        userdata: sub.userdata.clone(),
        auth_token: sub.auth_token.clone(),
    };
    let data = serde_json::to_string(&payload).unwrap_or_default();
    n.sinks_for(&sub.topic)
        .filter(|s| !s.final_only || r.state.is_final())
        .map(|s| {
            Write::Outbox(Box::new(OutboxWrite::Enqueue(OutboxRow {
                delivery_id: delivery_id(&task_id, update_id, &s.name),
                sink: s.name.clone(),
                topic: sub.topic.clone(),
                subject: task_id.clone(),
                event: EVENT.to_string(),
                update_id,
                created: r.modified,
                since: r.modified,
                state: PENDING.to_string(),
                attempts: 0,
                next_attempt_at: r.modified,
                last_error: String::new(),
                finished_at: None,
                data: data.clone(),
            })))
        })
        .collect()
}

muster_store::decorate_store!(NotifyingStore, inner, {
    async fn commit(&self, mut txn: Txn) -> Result<CommitOutcome> {
        let extra = self.rows_for(&txn).await?;
        let added = !extra.is_empty();
        txn.writes.extend(extra);
        let out = self.inner.commit(txn).await?;
        if added && out == CommitOutcome::Committed {
            self.notifier.wake.notify_one();
        }
        Ok(out)
    }
    async fn load_active(&self) -> Result<Vec<(TaskRequest, TaskResult)>> {
        self.inner.load_active().await
    }
});
