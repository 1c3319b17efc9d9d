//! The pure in-memory scheduling index (docs/scheduling.md#the-index).
//!
//! Owns: queues of pending slices keyed by the exact canonical dimension set
//! (no hashes, no collisions), each a priority-ordered set keyed by
//! `(priority, created, task id)` (lowest priority number first, then FIFO);
//! the bot → matching-queues lists and queue → matching-bots sets; and the
//! "capacity" answer (does a capable bot match these dimensions?).
//!
//! No IO, no async, no clock: every method is a plain data-structure
//! operation, unit-tested below.

use muster_core::{BotDimensions, TaskDimensions, TaskId, TaskRequest, Time};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// Dense id of a queue (a distinct canonical dimension set).
pub type QueueId = u32;

/// Ordering key of a pending slice inside its queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PendingKey {
    pub priority: i32,
    pub created: Time,
    pub id: TaskId,
}

/// A pending slice: the task and which of its slices is active.
#[derive(Debug, Clone)]
pub struct PendingEntry {
    pub request: Arc<TaskRequest>,
    pub slice: usize,
}

impl PendingEntry {
    pub fn id(&self) -> TaskId {
        self.request.id
    }

    pub fn key(&self) -> PendingKey {
        PendingKey { priority: self.request.priority, created: self.request.created, id: self.request.id }
    }

    /// Absolute deadline of the active slice.
    pub fn deadline(&self) -> Time {
        self.request.slice_deadline(self.slice)
    }

    pub fn dims(&self) -> &TaskDimensions {
        // The slice index always comes from the request; fall back to an
        // empty set rather than panicking on a corrupt record.
        static EMPTY: std::sync::OnceLock<TaskDimensions> = std::sync::OnceLock::new();
        self.request
            .slices
            .get(self.slice)
            .map(|s| &s.properties.dimensions)
            .unwrap_or_else(|| EMPTY.get_or_init(TaskDimensions::default))
    }
}

/// Where a queue is filed so that bots find it without scanning all queues.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Anchor {
    /// The queue names bot ids (`id:<bot>`): only those bots can match.
    Bot(String),
    /// The queue names pools: only bots of those pools can match.
    Pool(String),
    /// Neither: any bot may match.
    Any,
}

fn anchors_of(dims: &TaskDimensions) -> Vec<Anchor> {
    let ids: Vec<&str> = dims.get("id").collect();
    if let Some(first) = ids.first() {
        // Several `id` constraints are ANDed: the first one's alternatives
        // are a superset of the possible bots.
        return first.split('|').map(|v| Anchor::Bot(v.to_string())).collect();
    }
    let pools: Vec<&str> = dims.get("pool").collect();
    if let Some(first) = pools.first() {
        return first.split('|').map(|v| Anchor::Pool(v.to_string())).collect();
    }
    vec![Anchor::Any]
}

#[derive(Debug)]
struct Queue {
    dims: TaskDimensions,
    anchors: Vec<Anchor>,
    pending: BTreeSet<PendingKey>,
    bots: HashSet<String>,
    last_used: Option<Time>,
}

#[derive(Debug, Default)]
struct BotSlot {
    dims: BotDimensions,
    /// Sorted queue ids this bot can serve.
    queues: Vec<QueueId>,
    /// Counts for capacity: alive and not quarantined.
    capable: bool,
}

/// The index. See the module doc.
#[derive(Debug, Default)]
pub struct Index {
    queues: HashMap<QueueId, Queue>,
    by_key: HashMap<String, QueueId>,
    by_anchor: HashMap<Anchor, HashSet<QueueId>>,
    bots: HashMap<String, BotSlot>,
    bots_by_pool: HashMap<String, HashSet<String>>,
    pending: HashMap<TaskId, (QueueId, PendingEntry)>,
    next_queue: QueueId,
}

impl Index {
    pub fn new() -> Index {
        Index::default()
    }

    /// Number of pending slices.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    pub fn queue_count(&self) -> usize {
        self.queues.len()
    }

    pub fn contains(&self, id: TaskId) -> bool {
        self.pending.contains_key(&id)
    }

    /// The queue of `dims`, created (and matched against known bots) if new.
    pub fn queue_for(&mut self, dims: &TaskDimensions) -> QueueId {
        let key = dims.queue_key();
        if let Some(q) = self.by_key.get(&key) {
            return *q;
        }
        let id = self.next_queue;
        self.next_queue = self.next_queue.wrapping_add(1);
        let canonical = dims.canonical();
        let anchors = anchors_of(&canonical);
        let mut bots = HashSet::new();
        for bot_id in self.candidate_bots(&anchors) {
            if let Some(slot) = self.bots.get_mut(&bot_id) {
                if slot.dims.satisfies(&canonical) {
                    if let Err(pos) = slot.queues.binary_search(&id) {
                        slot.queues.insert(pos, id);
                    }
                    bots.insert(bot_id);
                }
            }
        }
        for a in &anchors {
            self.by_anchor.entry(a.clone()).or_default().insert(id);
        }
        self.queues.insert(id, Queue { dims: canonical, anchors, pending: BTreeSet::new(), bots, last_used: None });
        self.by_key.insert(key, id);
        id
    }

    fn candidate_bots(&self, anchors: &[Anchor]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for a in anchors {
            match a {
                Anchor::Bot(b) => {
                    if self.bots.contains_key(b) {
                        out.push(b.clone());
                    }
                }
                Anchor::Pool(p) => {
                    if let Some(set) = self.bots_by_pool.get(p) {
                        out.extend(set.iter().cloned());
                    }
                }
                Anchor::Any => out.extend(self.bots.keys().cloned()),
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Registers or updates a bot. Its queue list is recomputed only when
    /// its dimensions changed.
    pub fn set_bot(&mut self, bot_id: &str, dims: &BotDimensions, capable: bool) {
        if let Some(slot) = self.bots.get_mut(bot_id) {
            slot.capable = capable;
            if slot.dims == *dims {
                return;
            }
        }
        self.remove_bot(bot_id);
        for p in dims.get("pool") {
            self.bots_by_pool.entry(p.clone()).or_default().insert(bot_id.to_string());
        }
        let mut candidates: HashSet<QueueId> = HashSet::new();
        let mut anchors = vec![Anchor::Bot(bot_id.to_string()), Anchor::Any];
        anchors.extend(dims.get("pool").iter().map(|p| Anchor::Pool(p.clone())));
        for a in &anchors {
            if let Some(qs) = self.by_anchor.get(a) {
                candidates.extend(qs.iter().copied());
            }
        }
        let mut queues: Vec<QueueId> = Vec::new();
        for q in candidates {
            if let Some(queue) = self.queues.get_mut(&q) {
                if dims.satisfies(&queue.dims) {
                    queue.bots.insert(bot_id.to_string());
                    queues.push(q);
                }
            }
        }
        queues.sort_unstable();
        self.bots.insert(bot_id.to_string(), BotSlot { dims: dims.clone(), queues, capable });
    }

    /// Changes only whether the bot counts for capacity.
    pub fn set_capable(&mut self, bot_id: &str, capable: bool) {
        if let Some(slot) = self.bots.get_mut(bot_id) {
            slot.capable = capable;
        }
    }

    pub fn remove_bot(&mut self, bot_id: &str) {
        if let Some(slot) = self.bots.remove(bot_id) {
            for q in &slot.queues {
                if let Some(queue) = self.queues.get_mut(q) {
                    queue.bots.remove(bot_id);
                }
            }
            for p in slot.dims.get("pool") {
                if let Some(set) = self.bots_by_pool.get_mut(p) {
                    set.remove(bot_id);
                    if set.is_empty() {
                        self.bots_by_pool.remove(p);
                    }
                }
            }
        }
    }

    /// The queues a bot can serve (sorted).
    pub fn bot_queues(&self, bot_id: &str) -> &[QueueId] {
        self.bots.get(bot_id).map(|s| s.queues.as_slice()).unwrap_or(&[])
    }

    /// Whether a capable bot (alive, not quarantined) matches `dims`.
    pub fn has_capacity(&mut self, dims: &TaskDimensions) -> bool {
        let q = self.queue_for(dims);
        let Some(queue) = self.queues.get(&q) else { return false };
        queue.bots.iter().any(|b| self.bots.get(b).is_some_and(|s| s.capable))
    }

    /// Adds a pending slice. Returns its queue, or None if already present.
    pub fn insert(&mut self, entry: PendingEntry) -> Option<QueueId> {
        let id = entry.id();
        if self.pending.contains_key(&id) {
            return None;
        }
        let q = self.queue_for(entry.dims());
        if let Some(queue) = self.queues.get_mut(&q) {
            queue.pending.insert(entry.key());
        }
        self.pending.insert(id, (q, entry));
        Some(q)
    }

    /// Removes a pending slice (cancel, expiry, claim).
    pub fn remove(&mut self, id: TaskId) -> Option<PendingEntry> {
        let (q, entry) = self.pending.remove(&id)?;
        if let Some(queue) = self.queues.get_mut(&q) {
            queue.pending.remove(&entry.key());
        }
        Some(entry)
    }

    /// Ids of every pending slice.
    pub fn ids(&self) -> impl Iterator<Item = TaskId> + '_ {
        self.pending.keys().copied()
    }

    /// Every pending slice, in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = &PendingEntry> + '_ {
        self.pending.values().map(|(_, e)| e)
    }

    /// The pending entry of a task, if any.
    pub fn get(&self, id: TaskId) -> Option<&PendingEntry> {
        self.pending.get(&id).map(|(_, e)| e)
    }

    /// The best pending slice among the bot's queues, without removing it.
    pub fn peek_best(&self, bot_id: &str) -> Option<TaskId> {
        let slot = self.bots.get(bot_id)?;
        let mut best: Option<PendingKey> = None;
        for q in &slot.queues {
            if let Some(head) = self.queues.get(q).and_then(|queue| queue.pending.first()) {
                if best.is_none_or(|b| *head < b) {
                    best = Some(*head);
                }
            }
        }
        best.map(|k| k.id)
    }

    /// Removes and returns the best pending slice for this bot.
    pub fn pop_best(&mut self, bot_id: &str, now: Time) -> Option<PendingEntry> {
        let id = self.peek_best(bot_id)?;
        let (q, _) = self.pending.get(&id)?;
        let q = *q;
        if let Some(queue) = self.queues.get_mut(&q) {
            queue.last_used = Some(now);
        }
        self.remove(id)
    }

    /// Whether `bot_id` can serve queue `q`.
    pub fn bot_matches(&self, bot_id: &str, q: QueueId) -> bool {
        self.bots.get(bot_id).is_some_and(|s| s.queues.binary_search(&q).is_ok())
    }

    /// Number of bots matching queue `q`.
    pub fn queue_bot_count(&self, q: QueueId) -> usize {
        self.queues.get(&q).map_or(0, |queue| queue.bots.len())
    }

    /// The bots matching queue `q`.
    pub fn queue_bots(&self, q: QueueId) -> impl Iterator<Item = &String> {
        self.queues.get(&q).into_iter().flat_map(|queue| queue.bots.iter())
    }

    /// Drops empty queues not used since `before`; returns how many.
    pub fn gc_queues(&mut self, before: Time) -> usize {
        let dead: Vec<QueueId> = self
            .queues
            .iter()
            .filter(|(_, q)| q.pending.is_empty() && q.last_used.is_none_or(|t| t < before))
            .map(|(id, _)| *id)
            .collect();
        for id in &dead {
            if let Some(queue) = self.queues.remove(id) {
                for b in &queue.bots {
                    if let Some(slot) = self.bots.get_mut(b) {
                        slot.queues.retain(|q| q != id);
                    }
                }
                for a in &queue.anchors {
                    if let Some(set) = self.by_anchor.get_mut(a) {
                        set.remove(id);
                        if set.is_empty() {
                            self.by_anchor.remove(a);
                        }
                    }
                }
                self.by_key.remove(&queue.dims.queue_key());
            }
        }
        dead.len()
    }

    /// 1-based position of a pending slice in its queue, and the queue's length.
    pub fn queue_position(&self, id: TaskId) -> Option<(usize, usize)> {
        let (q, entry) = self.pending.get(&id)?;
        let queue = self.queues.get(q)?;
        Some((queue.pending.range(..entry.key()).count() + 1, queue.pending.len()))
    }

    /// Pending slices in `queues` that come before `key` (lower priority
    /// number, or same priority and older), and how many of those have a
    /// strictly higher priority.
    pub fn ahead_of(&self, key: PendingKey, queues: &HashSet<QueueId>) -> (usize, usize) {
        let (mut ahead, mut higher) = (0, 0);
        for q in queues {
            if let Some(queue) = self.queues.get(q) {
                for k in queue.pending.range(..key) {
                    ahead += 1;
                    higher += (k.priority < key.priority) as usize;
                }
            }
        }
        (ahead, higher)
    }

    /// Marks a queue used (so GC keeps it a while).
    pub fn touch(&mut self, q: QueueId, now: Time) {
        if let Some(queue) = self.queues.get_mut(&q) {
            queue.last_used = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use muster_core::task::{TaskProperties, TaskSlice};

    fn t0() -> Time {
        chrono::Utc.with_ymd_and_hms(2044, 2, 3, 4, 5, 6).single().expect("valid date")
    }

    fn dims(pairs: &[(&str, &str)]) -> TaskDimensions {
        TaskDimensions(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    fn bot(pairs: &[(&str, &[&str])]) -> BotDimensions {
        BotDimensions::from_map(pairs.iter().map(|(k, vs)| (*k, vs.iter().copied())))
    }

    fn entry(n: i64, priority: i32, secs: i64, d: TaskDimensions) -> PendingEntry {
        let created = t0() + chrono::Duration::seconds(secs);
        let req = TaskRequest {
            id: TaskId::new(created, n as u16),
            created,
            name: format!("t{n}"),
            parent_task_id: String::new(),
            priority,
            slices: vec![TaskSlice {
                properties: TaskProperties { dimensions: d, ..Default::default() },
                expiration_secs: 60,
                wait_for_capacity: false,
            }],
            tags: vec![],
            user: String::new(),
            authenticated: String::new(),
            service_account: String::new(),
            realm: String::new(),
            resultdb_enable: false,
            pubsub_topic: String::new(),
            pubsub_auth_token: String::new(),
            pubsub_userdata: String::new(),
            bot_ping_tolerance_secs: 1200,
            request_uuid: String::new(),
        };
        PendingEntry { request: Arc::new(req), slice: 0 }
    }

    #[test]
    fn lower_priority_number_comes_first_then_oldest() {
        let mut ix = Index::new();
        ix.set_bot("b1", &bot(&[("id", &["b1"]), ("pool", &["p"])]), true);
        let d = dims(&[("pool", "p")]);
        let late_urgent = entry(1, 10, 30, d.clone());
        let old_normal = entry(2, 100, 0, d.clone());
        let new_normal = entry(3, 100, 10, d.clone());
        for e in [new_normal.clone(), late_urgent.clone(), old_normal.clone()] {
            assert!(ix.insert(e).is_some());
        }
        let order: Vec<TaskId> = std::iter::from_fn(|| ix.pop_best("b1", t0()).map(|e| e.id())).collect();
        assert_eq!(order, vec![late_urgent.id(), old_normal.id(), new_normal.id()]);
    }

    #[test]
    fn a_bot_sees_only_queues_it_satisfies_including_or_values() {
        let mut ix = Index::new();
        ix.set_bot("linux", &bot(&[("id", &["linux"]), ("pool", &["p"]), ("os", &["Linux"])]), true);
        ix.set_bot("mac", &bot(&[("id", &["mac"]), ("pool", &["p"]), ("os", &["Mac"])]), true);
        let either = entry(1, 100, 0, dims(&[("pool", "p"), ("os", "Windows|Mac")]));
        ix.insert(either.clone());
        assert_eq!(ix.peek_best("linux"), None);
        assert_eq!(ix.peek_best("mac"), Some(either.id()));
    }

    #[test]
    fn a_queue_created_before_a_bot_is_found_when_the_bot_registers() {
        let mut ix = Index::new();
        let e = entry(1, 100, 0, dims(&[("pool", "p"), ("gpu", "x")]));
        ix.insert(e.clone());
        ix.set_bot("b", &bot(&[("id", &["b"]), ("pool", &["p"])]), true);
        assert_eq!(ix.peek_best("b"), None);
        ix.set_bot("b", &bot(&[("id", &["b"]), ("pool", &["p"]), ("gpu", &["x"])]), true);
        assert_eq!(ix.peek_best("b"), Some(e.id()));
        ix.remove_bot("b");
        assert_eq!(ix.peek_best("b"), None);
    }

    #[test]
    fn bot_targeted_queues_reach_only_that_bot() {
        let mut ix = Index::new();
        ix.set_bot("a", &bot(&[("id", &["a"]), ("pool", &["p"])]), true);
        ix.set_bot("b", &bot(&[("id", &["b"]), ("pool", &["p"])]), true);
        let e = entry(1, 0, 0, dims(&[("id", "b")]));
        ix.insert(e.clone());
        assert_eq!(ix.peek_best("a"), None);
        assert_eq!(ix.peek_best("b"), Some(e.id()));
    }

    #[test]
    fn capacity_counts_only_capable_matching_bots() {
        let mut ix = Index::new();
        let d = dims(&[("pool", "p")]);
        assert!(!ix.has_capacity(&d));
        ix.set_bot("b", &bot(&[("id", &["b"]), ("pool", &["p"])]), false);
        assert!(!ix.has_capacity(&d));
        ix.set_capable("b", true);
        assert!(ix.has_capacity(&d));
        assert!(!ix.has_capacity(&dims(&[("pool", "other")])));
    }

    #[test]
    fn removing_an_entry_takes_it_out_of_its_queue() {
        let mut ix = Index::new();
        ix.set_bot("b", &bot(&[("id", &["b"]), ("pool", &["p"])]), true);
        let e = entry(1, 100, 0, dims(&[("pool", "p")]));
        ix.insert(e.clone());
        assert!(ix.insert(e.clone()).is_none(), "double insert is refused");
        assert!(ix.remove(e.id()).is_some());
        assert!(ix.is_empty());
        assert_eq!(ix.peek_best("b"), None);
    }

    #[test]
    fn gc_drops_empty_idle_queues_and_keeps_busy_ones() {
        let mut ix = Index::new();
        ix.set_bot("b", &bot(&[("id", &["b"]), ("pool", &["p"])]), true);
        let keep = entry(1, 100, 0, dims(&[("pool", "p")]));
        ix.insert(keep.clone());
        ix.queue_for(&dims(&[("pool", "p"), ("os", "x")]));
        assert_eq!(ix.queue_count(), 2);
        assert_eq!(ix.gc_queues(t0()), 1);
        assert_eq!(ix.queue_count(), 1);
        assert_eq!(ix.peek_best("b"), Some(keep.id()));
    }
}
