//! Drains: an operator takes a bot, a pool or every bot matching some
//! dimensions out of service. A covered bot finishes the task it runs and
//! then gets `sleep` (as a bot reporting maintenance does) until the drain is
//! lifted; it still counts for capacity (it comes back), so NewTask does not
//! answer NO_RESOURCE because of a drain.
//!
//! Drains are durable (the store's `drain` table) and loaded at start; other
//! replicas pick a change up at their next full resync. Draining something
//! that matches no known bot is an error (a typo must not pass silently);
//! draining twice or undraining what is not drained changes nothing and
//! says so.

use crate::state::State;
use crate::{Result, Scheduler};
use muster_core::{BotInfo, Drain, DrainTarget, Error, Time};
use muster_store::{Txn, Write};

/// What a drain or undrain did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainOutcome {
    /// The drain as stored (for undrain: as it was).
    pub drain: Drain,
    /// False when it was already so (drain twice, undrain of nothing).
    pub changed: bool,
    /// Known bots the target covers, sorted.
    pub bots: Vec<String>,
}

impl State {
    /// The first drain covering this bot, if any.
    pub fn drain_of(&self, info: &BotInfo) -> Option<&Drain> {
        self.drains.values().find(|d| d.target.covers(&info.bot_id, &info.dimensions))
    }

    fn covered(&self, target: &DrainTarget) -> Vec<String> {
        match target {
            DrainTarget::Bot(b) => {
                if self.bots.contains_key(b) {
                    vec![b.clone()]
                } else {
                    Vec::new()
                }
            }
            _ => self
                .bots
                .iter()
                .filter(|(id, e)| target.covers(id, &e.info.dimensions))
                .map(|(id, _)| id.clone())
                .collect(),
        }
    }
}

impl Scheduler {
    /// Puts `target` into maintenance. Idempotent: draining a drained
    /// target keeps the first drain and reports `changed: false`.
    pub async fn drain(&self, target: DrainTarget, reason: &str, by: &str, now: Time) -> Result<DrainOutcome> {
        let (existing, bots) = {
            let st = self.state.lock();
            (st.drains.get(&target.key()).cloned(), st.covered(&target))
        };
        if let Some(drain) = existing {
            return Ok(DrainOutcome { drain, changed: false, bots });
        }
        if bots.is_empty() {
            return Err(Error::not_found(match &target {
                DrainTarget::Bot(b) => format!("no bot {b:?} is known"),
                DrainTarget::Pool(p) => format!("no known bot is in pool {p:?}"),
                DrainTarget::Dimensions(_) => format!("no known bot matches: {}", target.describe()),
            }));
        }
        let drain = Drain { target, reason: reason.to_string(), created_by: by.to_string(), created: now };
        self.store.commit(Txn::new().with(Write::PutDrain(Box::new(drain.clone())))).await?;
        let woken = {
            let mut st = self.state.lock();
            st.drains.insert(drain.target.key(), drain.clone());
            // Parked polls of covered bots answer now; their next poll sleeps.
            let parked: Vec<String> = bots.iter().filter(|b| st.parked.contains_key(*b)).cloned().collect();
            parked.iter().filter_map(|b| st.parked.remove(b)).collect::<Vec<_>>()
        };
        drop(woken);
        tracing::info!(target = %drain.target.describe(), reason = %drain.reason, by, bots = bots.len(), "drained");
        Ok(DrainOutcome { drain, changed: true, bots })
    }

    /// Lifts a drain. Idempotent: `changed: false` when it was not drained.
    pub async fn undrain(&self, target: DrainTarget, by: &str, now: Time) -> Result<DrainOutcome> {
        let (existing, bots) = {
            let st = self.state.lock();
            (st.drains.get(&target.key()).cloned(), st.covered(&target))
        };
        let Some(drain) = existing else {
            let drain = Drain { target, reason: String::new(), created_by: by.to_string(), created: now };
            return Ok(DrainOutcome { drain, changed: false, bots });
        };
        self.store.commit(Txn::new().with(Write::DeleteDrain(drain.target.key()))).await?;
        self.state.lock().drains.remove(&drain.target.key());
        tracing::info!(target = %drain.target.describe(), by, bots = bots.len(), "undrained");
        Ok(DrainOutcome { drain, changed: true, bots })
    }

    /// Every drain, ordered by target key.
    pub fn list_drains(&self) -> Vec<Drain> {
        self.state.lock().drains.values().cloned().collect()
    }

    /// Replaces the in-memory drains with the store's (start, resync).
    pub(crate) async fn reload_drains(&self) -> Result<()> {
        let drains = self.store.load_drains().await?;
        self.state.lock().drains = drains.into_iter().map(|d| (d.target.key(), d)).collect();
        Ok(())
    }
}
