//! The notification outbox (`muster-notify`): one row per message to send,
//! written in the same [`crate::Txn`] as the state change that causes it, so
//! a row exists if and only if that change committed.
//!
//! A row is keyed by its delivery id (stable across retries: receivers
//! deduplicate on it) and moves `pending` → `delivered` or `dead`; a dead row
//! can be put back to `pending`. The message itself is an opaque JSON `data`
//! document owned by muster-notify; this crate knows no delivery rules.

use crate::Result;
use async_trait::async_trait;
use muster_core::Time;

/// Waiting to be sent (again).
pub const PENDING: &str = "pending";
/// Acknowledged by the receiver.
pub const DELIVERED: &str = "delivered";
/// Given up (a permanent refusal or too old); kept for inspection and retry.
pub const DEAD: &str = "dead";

/// One message to one sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub delivery_id: String,
    /// The configured sink's name.
    pub sink: String,
    pub topic: String,
    /// What the message is about (a task id).
    pub subject: String,
    pub event: String,
    /// Orders messages about one subject (the task result's version).
    pub update_id: i64,
    pub created: Time,
    /// Start of the current series of attempts (reset by a retry); the age
    /// limit counts from here.
    pub since: Time,
    /// `pending`, `delivered` or `dead`.
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: Time,
    pub last_error: String,
    /// When it was delivered or declared dead.
    pub finished_at: Option<Time>,
    pub data: String,
}

/// An outbox mutation inside a [`crate::Txn`]. None of them is ever a
/// conflict: a duplicate enqueue and an update of a row in another state are
/// no-ops.
#[derive(Debug, Clone)]
pub enum OutboxWrite {
    /// Adds the row unless its delivery id exists.
    Enqueue(OutboxRow),
    /// A failed attempt of a pending row: try again at `next`.
    Failed { delivery_id: String, attempts: i64, next: Time, error: String },
    /// A pending row was acknowledged.
    Delivered { delivery_id: String, attempts: i64, at: Time },
    /// A pending row is given up.
    Dead { delivery_id: String, attempts: i64, at: Time, error: String },
    /// Puts a dead row back to pending, due at `at` (a new series of attempts).
    Retry { delivery_id: String, at: Time },
    /// Deletes delivered rows finished before `before`.
    PruneDelivered { before: Time },
}

/// Reads of the outbox (the writes are [`crate::Write::Outbox`]).
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Pending rows due at or before `now`, earliest first.
    async fn due_outbox(&self, now: Time, limit: usize) -> Result<Vec<OutboxRow>>;
    async fn get_outbox(&self, delivery_id: &str) -> Result<Option<OutboxRow>>;
    /// Up to `limit` rows in `state` (every state when None), newest first.
    async fn list_outbox(&self, state: Option<&str>, limit: usize) -> Result<Vec<OutboxRow>>;
}
