//! The bot table: handshake, bot events, delete, and the read side
//! (GetBot, ListBots, CountBots, GetBotDimensions) served from memory.
//! `is_dead` is computed from the last contact vs the death timeout.

use crate::state::{BotEntry, State};
use crate::task_update::Abandon;
use crate::{BotHello, BotQuery, BotsCount, Result, Scheduler};
use muster_core::dims::DimFilter;
use muster_core::{BotEvent, BotInfo, Time};
use muster_store::{Page, Txn, Write};
use std::collections::{BTreeMap, BTreeSet};

/// Default ListBots page size.
const DEFAULT_LIMIT: usize = 100;

/// A bot as shown to callers: dead computed from its last contact, and an
/// operator drain shown as maintenance (unless the bot reports its own).
fn view(e: &BotEntry, now: Time, st: &State) -> BotInfo {
    let mut b = e.info.clone();
    b.is_dead = b.is_dead || now >= e.alive_until;
    if b.maintenance_msg.is_empty() {
        if let Some(d) = st.drain_of(&b) {
            b.maintenance_msg = d.message();
        }
    }
    b
}

impl Scheduler {
    /// A (re)starting bot: registers it under its new session. A task still
    /// assigned to the bot id died with the old process — unless that task
    /// reported within [`LIVE_TASK_WINDOW`](crate::LIVE_TASK_WINDOW): then
    /// another process of the same bot id is still running it (a duplicate
    /// or an impostor sharing the group's credential) and it is left to
    /// finish (or to go silent and die by its own deadline).
    pub async fn handshake(&self, hello: BotHello, now: Time) -> Result<BotInfo> {
        if self.arrived_from_elsewhere(&hello.bot_id) {
            self.adopt_running(&hello.bot_id, now).await?;
        }
        let previous = {
            let mut st = self.state.lock();
            st.apply_hello(&hello, now, self.death_timeout());
            st.bots.get(&hello.bot_id).and_then(|e| e.info.task_id).filter(|t| !st.task_live(*t, now))
        };
        if let Some(task) = previous {
            self.abandon(task, &hello.bot_id, Abandon::BotDied, "bot reconnected", now).await?;
        }
        self.record_bot_event(&hello.bot_id, "bot_connected", "", now).await
    }

    /// Records a bot-posted event; `bot_shutdown`/`bot_rebooting` abandon
    /// the bot's current task.
    pub async fn bot_event(&self, hello: BotHello, event: &str, message: &str, now: Time) -> Result<()> {
        let previous = {
            let mut st = self.state.lock();
            st.apply_hello(&hello, now, self.death_timeout());
            st.bots.get(&hello.bot_id).and_then(|e| e.info.task_id)
        };
        if matches!(event, "bot_shutdown" | "bot_rebooting") {
            if let Some(task) = previous {
                self.abandon(task, &hello.bot_id, Abandon::BotDied, event, now).await?;
            }
        }
        self.record_bot_event(&hello.bot_id, event, message, now).await?;
        Ok(())
    }

    /// Commits the bot record plus one event about it.
    async fn record_bot_event(&self, bot_id: &str, event: &str, message: &str, now: Time) -> Result<BotInfo> {
        let info = {
            let mut st = self.state.lock();
            match st.bots.get_mut(bot_id) {
                Some(e) => {
                    e.dirty = false;
                    e.info.clone()
                }
                None => return Err(muster_core::Error::not_found(format!("{bot_id:?} not found"))),
            }
        };
        let ev = BotEvent::of(&info, now, event, message);
        self.store
            .commit(Txn::new().with(Write::PutBot(Box::new(info.clone()))).with(Write::AppendEvent(Box::new(ev))))
            .await?;
        Ok(info)
    }

    /// Forgets a bot; false if unknown. Its running task (if any) keeps
    /// running; the bot reappears on its next poll or handshake.
    pub async fn delete_bot(&self, bot_id: &str, now: Time) -> Result<bool> {
        let removed = {
            let mut st = self.state.lock();
            let info = st.bots.get(bot_id).map(|e| e.info.clone());
            st.forget_bot(bot_id);
            info
        };
        let Some(mut info) = removed else { return Ok(false) };
        info.deleted = true;
        let ev = BotEvent::of(&info, now, "bot_deleted", "");
        self.store
            .commit(Txn::new().with(Write::DeleteBot(bot_id.to_string())).with(Write::AppendEvent(Box::new(ev))))
            .await?;
        Ok(true)
    }

    /// The session id of the bot's latest handshake known here (None: the
    /// bot is unknown to this server).
    pub fn bot_session(&self, bot_id: &str) -> Option<String> {
        self.state.lock().bots.get(bot_id).map(|e| e.info.session_id.clone())
    }

    pub fn get_bot(&self, bot_id: &str, now: Time) -> Option<BotInfo> {
        {
            let st = self.state.lock();
            st.bots.get(bot_id).map(|e| view(e, now, &st))
        }
    }

    pub fn list_bots(&self, q: &BotQuery, now: Time) -> Page<BotInfo> {
        let limit = if q.limit == 0 { DEFAULT_LIMIT } else { q.limit };
        let st = self.state.lock();
        let range = match &q.cursor {
            Some(c) => st.bots.range::<String, _>((std::ops::Bound::Excluded(c), std::ops::Bound::Unbounded)),
            None => st.bots.range::<String, _>(..),
        };
        let mut items = Vec::new();
        let mut more = false;
        for (_, e) in range {
            let b = view(e, now, &st);
            if !b.dimensions.matches_filter(&q.dimensions)
                || !q.quarantined.admits(b.quarantined())
                || !q.in_maintenance.admits(b.in_maintenance())
                || !q.is_dead.admits(b.is_dead)
                || !q.is_busy.admits(b.is_busy())
            {
                continue;
            }
            if items.len() == limit {
                more = true;
                break;
            }
            items.push(b);
        }
        let cursor = if more { items.last().map(|b: &BotInfo| b.bot_id.clone()) } else { None };
        Page { items, cursor }
    }

    pub fn count_bots(&self, dims: &[DimFilter], now: Time) -> BotsCount {
        let st = self.state.lock();
        let mut c = BotsCount::default();
        for e in st.bots.values() {
            let b = view(e, now, &st);
            if !b.dimensions.matches_filter(dims) {
                continue;
            }
            c.count += 1;
            c.quarantined += b.quarantined() as u64;
            c.maintenance += b.in_maintenance() as u64;
            c.dead += b.is_dead as u64;
            c.busy += b.is_busy() as u64;
        }
        c
    }

    /// Union of dimension keys -> sorted values across bots (of `pool`).
    pub fn bot_dimensions(&self, pool: Option<&str>) -> Vec<(String, Vec<String>)> {
        let st = self.state.lock();
        let mut m: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for e in st.bots.values() {
            if let Some(p) = pool {
                if !e.info.dimensions.has("pool", p) {
                    continue;
                }
            }
            for (k, vs) in &e.info.dimensions.0 {
                m.entry(k.clone()).or_default().extend(vs.iter().cloned());
            }
        }
        m.into_iter().map(|(k, vs)| (k, vs.into_iter().collect())).collect()
    }
}
