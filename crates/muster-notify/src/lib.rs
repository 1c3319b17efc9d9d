//! muster-notify: task completion notifications (docs/notifications.md).
//!
//! Owns: which task transitions are announced, the outbox rows that carry
//! them ([`NotifyingStore`] adds them to the very Txn that commits the
//! transition, so a row exists iff the transition committed), delivery to
//! the sinks of `<config-dir>/notifications.toml` with retries, backoff and
//! dead letters ([`Deliverer`], run only by the holder of the store's
//! lease), the signed webhook and Pub/Sub push bodies ([`message`]), and the
//! operator's list/retry ([`admin`]).
//! Must not: serve HTTP, know SQL, call a URL a request named.

pub mod admin;
mod deliver;
pub mod message;
mod record;

pub use deliver::Deliverer;
pub use record::NotifyingStore;

use std::sync::Arc;

/// What ties the recorder and the deliverer together: the configuration in
/// force and a wake-up for fresh rows.
#[derive(Clone)]
pub struct Notifier {
    config: Arc<muster_config::ConfigHolder>,
    wake: Arc<tokio::sync::Notify>,
}

impl Notifier {
    pub fn new(config: Arc<muster_config::ConfigHolder>) -> Notifier {
        Notifier { config, wake: Arc::new(tokio::sync::Notify::new()) }
    }

    fn notifications(&self) -> Arc<muster_config::Snapshot> {
        self.config.get()
    }
}

/// Checks a NewTask's `pubsub_topic` against the configured sinks: empty is
/// fine, anything else must be a topic name some sink maps (unless
/// `allow_unmapped`).
pub fn check_topic(
    n: &muster_config::notifications_toml::Notifications,
    topic: &str,
) -> muster_core::error::Result<()> {
    if topic.is_empty() {
        return Ok(());
    }
    if !muster_config::notifications_toml::topic_name_ok(topic) {
        return Err(muster_core::Error::invalid(format!(
            "pubsub_topic {topic:?}: expected projects/<project>/topics/<name>"
        )));
    }
    if !n.allow_unmapped && n.sinks_for(topic).next().is_none() {
        return Err(muster_core::Error::invalid(format!(
            "pubsub_topic {topic:?}: no notification sink on this server takes this topic \
             (see notifications.toml in the server's config directory)"
        )));
    }
    Ok(())
}
