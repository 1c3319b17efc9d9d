//! What both backends do the same way, so they cannot drift apart: the
//! output chunk layout and the SQL of a StateQuery filter.

use crate::{OUTPUT_CHUNK_SIZE, OUTPUT_MAX_CHUNKS};
use muster_core::state::StateQuery;
use muster_core::time::to_micros;
use muster_core::{TaskResult, TaskState};

/// The indexed columns of a `task_result` row, in the order both backends
/// bind them: id, version, state, failure, try_number, created, started,
/// completed, abandoned, bot_id, dedup_hash, tags (then the blob).
pub(crate) struct ResultColumns {
    pub id: i64,
    pub version: i64,
    pub state: i32,
    pub failure: bool,
    pub try_number: Option<i32>,
    pub created: i64,
    pub started: Option<i64>,
    pub completed: Option<i64>,
    pub abandoned: Option<i64>,
    pub bot_id: String,
    pub dedup_hash: Option<String>,
    /// Tags joined by newlines (the tag filter reads `task_tag`).
    pub tags: String,
}

impl ResultColumns {
    pub fn of(r: &TaskResult) -> ResultColumns {
        ResultColumns {
            id: r.id.0,
            version: r.version,
            state: r.state.as_i32(),
            failure: r.failure,
            try_number: r.try_number,
            created: to_micros(r.created),
            started: r.started.map(to_micros),
            completed: r.completed.map(to_micros),
            abandoned: r.abandoned.map(to_micros),
            bot_id: r.bot_id.clone(),
            dedup_hash: r.dedup_hash.clone(),
            tags: r.tags.join("\n"),
        }
    }
}

/// One chunk's part of an output write: chunk index, byte position inside
/// the chunk, and the bytes to put there.
pub(crate) struct ChunkWrite<'a> {
    pub idx: u64,
    pub at: usize,
    pub bytes: &'a [u8],
}

/// Splits a write of `data` at byte `offset` into per-chunk writes, dropping
/// bytes past the cap (OUTPUT_MAX_CHUNKS chunks of OUTPUT_CHUNK_SIZE).
pub(crate) fn chunk_writes(offset: u64, data: &[u8]) -> Vec<ChunkWrite<'_>> {
    let cap = OUTPUT_CHUNK_SIZE * OUTPUT_MAX_CHUNKS;
    let mut out = Vec::new();
    if offset >= cap || data.is_empty() {
        return out;
    }
    let end = offset.saturating_add(data.len() as u64).min(cap);
    let mut pos = offset;
    while pos < end {
        let idx = pos / OUTPUT_CHUNK_SIZE;
        let chunk_start = idx * OUTPUT_CHUNK_SIZE;
        let chunk_end = (chunk_start + OUTPUT_CHUNK_SIZE).min(end);
        out.push(ChunkWrite {
            idx,
            at: (pos - chunk_start) as usize,
            bytes: &data[(pos - offset) as usize..(chunk_end - offset) as usize],
        });
        pos = chunk_end;
    }
    out
}

/// Applies `w` to a chunk's stored bytes (a chunk holds its bytes up to the
/// highest byte written, zero-filled below). None when nothing changes, so a
/// retried write costs no write.
pub(crate) fn merge_chunk(existing: Option<Vec<u8>>, w: &ChunkWrite<'_>) -> Option<Vec<u8>> {
    let mut buf = existing.unwrap_or_default();
    let end = w.at + w.bytes.len();
    if buf.len() >= end && buf[w.at..end] == *w.bytes {
        return None;
    }
    if buf.len() < end {
        buf.resize(end, 0);
    }
    buf[w.at..end].copy_from_slice(w.bytes);
    Some(buf)
}

/// The `WHERE` condition (over `task_result r`) of a StateQuery; None = all.
/// `TRUE`/`FALSE` work on SQLite's integer and PostgreSQL's boolean column.
pub(crate) fn state_clause(s: StateQuery) -> Option<String> {
    let st = |x: TaskState| format!("r.state = {}", x.as_i32());
    let c = TaskState::Completed.as_i32();
    Some(match s {
        StateQuery::Pending => st(TaskState::Pending),
        StateQuery::Running => st(TaskState::Running),
        StateQuery::PendingRunning => {
            format!("r.state IN ({}, {})", TaskState::Pending.as_i32(), TaskState::Running.as_i32())
        }
        StateQuery::Completed => st(TaskState::Completed),
        StateQuery::CompletedSuccess => format!("r.state = {c} AND r.failure = FALSE"),
        StateQuery::CompletedFailure => format!("r.state = {c} AND r.failure = TRUE"),
        StateQuery::Expired => st(TaskState::Expired),
        StateQuery::TimedOut => st(TaskState::TimedOut),
        StateQuery::BotDied => st(TaskState::BotDied),
        StateQuery::Canceled => st(TaskState::Canceled),
        StateQuery::All => return None,
        StateQuery::Deduped => format!("r.state = {c} AND r.try_number = 0"),
        StateQuery::Killed => st(TaskState::Killed),
        StateQuery::NoResource => st(TaskState::NoResource),
        StateQuery::ClientError => st(TaskState::ClientError),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_across_a_chunk_boundary_splits_and_the_cap_drops_the_rest() {
        let data = vec![7u8; 10];
        let w = chunk_writes(OUTPUT_CHUNK_SIZE - 4, &data);
        assert_eq!(
            w.iter().map(|w| (w.idx, w.at, w.bytes.len())).collect::<Vec<_>>(),
            vec![(0, (OUTPUT_CHUNK_SIZE - 4) as usize, 4), (1, 0, 6)]
        );
        let cap = OUTPUT_CHUNK_SIZE * OUTPUT_MAX_CHUNKS;
        assert_eq!(chunk_writes(cap - 3, &data).iter().map(|w| w.bytes.len()).sum::<usize>(), 3);
        assert!(chunk_writes(cap, &data).is_empty());
    }

    #[test]
    fn merging_zero_fills_gaps_and_a_retried_write_changes_nothing() {
        let w = ChunkWrite { idx: 0, at: 3, bytes: b"ab" };
        let buf = merge_chunk(None, &w).expect("changed");
        assert_eq!(buf, b"\0\0\0ab");
        assert_eq!(merge_chunk(Some(buf.clone()), &w), None);
        let over = ChunkWrite { idx: 0, at: 0, bytes: b"x" };
        assert_eq!(merge_chunk(Some(buf), &over), Some(b"x\0\0ab".to_vec()));
    }
}
