//! TaskState (docs/client-api.md#task-states) and StateQuery filters.

/// The state of a task. Numbers are the wire values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TaskState {
    Invalid = 0x00,
    Running = 0x10,
    Pending = 0x20,
    Expired = 0x30,
    TimedOut = 0x40,
    BotDied = 0x50,
    Canceled = 0x60,
    Completed = 0x70,
    Killed = 0x80,
    NoResource = 0x100,
    ClientError = 0x200,
}

impl TaskState {
    pub const ALL: [TaskState; 10] = [
        TaskState::Running,
        TaskState::Pending,
        TaskState::Expired,
        TaskState::TimedOut,
        TaskState::BotDied,
        TaskState::Canceled,
        TaskState::Completed,
        TaskState::Killed,
        TaskState::NoResource,
        TaskState::ClientError,
    ];

    /// Only PENDING and RUNNING may change.
    pub fn is_final(self) -> bool {
        !matches!(self, TaskState::Pending | TaskState::Running | TaskState::Invalid)
    }

    pub fn as_i32(self) -> i32 {
        self as i32
    }

    pub fn from_i32(v: i32) -> Option<TaskState> {
        Some(match v {
            0x00 => TaskState::Invalid,
            0x10 => TaskState::Running,
            0x20 => TaskState::Pending,
            0x30 => TaskState::Expired,
            0x40 => TaskState::TimedOut,
            0x50 => TaskState::BotDied,
            0x60 => TaskState::Canceled,
            0x70 => TaskState::Completed,
            0x80 => TaskState::Killed,
            0x100 => TaskState::NoResource,
            0x200 => TaskState::ClientError,
            _ => return None,
        })
    }

    /// The upstream enum name, e.g. `COMPLETED`.
    pub fn name(self) -> &'static str {
        match self {
            TaskState::Invalid => "INVALID",
            TaskState::Running => "RUNNING",
            TaskState::Pending => "PENDING",
            TaskState::Expired => "EXPIRED",
            TaskState::TimedOut => "TIMED_OUT",
            TaskState::BotDied => "BOT_DIED",
            TaskState::Canceled => "CANCELED",
            TaskState::Completed => "COMPLETED",
            TaskState::Killed => "KILLED",
            TaskState::NoResource => "NO_RESOURCE",
            TaskState::ClientError => "CLIENT_ERROR",
        }
    }
}

/// A listing filter (NOT a TaskState). Default is `Pending`, as upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StateQuery {
    #[default]
    Pending = 0,
    Running = 1,
    PendingRunning = 2,
    Completed = 3,
    CompletedSuccess = 4,
    CompletedFailure = 5,
    Expired = 6,
    TimedOut = 7,
    BotDied = 8,
    Canceled = 9,
    All = 10,
    Deduped = 11,
    Killed = 12,
    NoResource = 13,
    ClientError = 14,
}

impl StateQuery {
    pub fn from_i32(v: i32) -> Option<StateQuery> {
        use StateQuery::*;
        Some(match v {
            0 => Pending,
            1 => Running,
            2 => PendingRunning,
            3 => Completed,
            4 => CompletedSuccess,
            5 => CompletedFailure,
            6 => Expired,
            7 => TimedOut,
            8 => BotDied,
            9 => Canceled,
            10 => All,
            11 => Deduped,
            12 => Killed,
            13 => NoResource,
            14 => ClientError,
            _ => return None,
        })
    }
}

/// Sort order for listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SortQuery {
    #[default]
    CreatedTs = 0,
    CompletedTs = 2,
    AbandonedTs = 3,
    StartedTs = 4,
}

impl SortQuery {
    pub fn from_i32(v: i32) -> Option<SortQuery> {
        Some(match v {
            0 => SortQuery::CreatedTs,
            2 => SortQuery::CompletedTs,
            3 => SortQuery::AbandonedTs,
            4 => SortQuery::StartedTs,
            _ => return None,
        })
    }
}

/// Tri-state filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum NullableBool {
    #[default]
    Null,
    False,
    True,
}

impl NullableBool {
    pub fn from_i32(v: i32) -> Option<NullableBool> {
        Some(match v {
            0 => NullableBool::Null,
            1 => NullableBool::False,
            2 => NullableBool::True,
            _ => return None,
        })
    }
    /// Whether `value` passes this filter.
    pub fn admits(self, value: bool) -> bool {
        match self {
            NullableBool::Null => true,
            NullableBool::False => !value,
            NullableBool::True => value,
        }
    }
}
