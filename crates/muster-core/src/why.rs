//! The explanation of why a task waits (computed by muster-sched from its
//! index; carried to clients by muster-api). Plain data.

use crate::{TaskDimensions, TaskId, TaskState, Time};

/// Bots matching a slice, each counted once, in the first state that
/// applies: dead, quarantined, drained (or in maintenance), busy, idle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BotCounts {
    pub matching: usize,
    pub alive: usize,
    pub idle: usize,
    pub busy: usize,
    pub quarantined: usize,
    pub dead: usize,
    pub drained: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SliceWhy {
    pub index: usize,
    /// The slice the task waits on now.
    pub active: bool,
    pub dimensions: TaskDimensions,
    pub bots: BotCounts,
    /// `key:value` ruling out most bots, when none matches.
    pub limiting_dimension: String,
    pub summary: String,
    /// Active slice only: 1-based position in its queue, and its length.
    pub queue_position: usize,
    pub queue_length: usize,
    /// Pending slices the matching bots would take first.
    pub ahead: usize,
    pub higher_priority_ahead: usize,
    pub dispatches_per_minute: f64,
    pub estimated_start: Option<Time>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WhyPending {
    pub task_id: TaskId,
    pub state: TaskState,
    pub summary: String,
    pub current_slice: usize,
    pub slices: Vec<SliceWhy>,
}
