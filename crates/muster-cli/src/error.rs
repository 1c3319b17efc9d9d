//! The CLI's error type and its exit codes.
//!
//! Owns: [`CliError`] (every failure a verb can report, printed by the binary
//! as one line `muster: <error>`), [`RpcError`] (what one pRPC call can fail
//! with) and the exit-code table in [`exit`].

use muster_api::prpc::{Code, Status};

/// Process exit codes. Codes 2..=10 are muster's own failures; the `TASK_*`
/// codes are what `muster run` exits with when the task did not COMPLETE.
pub mod exit {
    /// Success.
    pub const OK: i32 = 0;
    /// Anything not classified below.
    pub const OTHER: i32 = 1;
    /// Bad flags or input (bad dimension syntax, missing server, bad task id).
    pub const USAGE: i32 = 2;
    /// The server cannot be reached (unknown host, connection refused, TLS, timeout).
    pub const UNREACHABLE: i32 = 3;
    /// The task, bot or request does not exist (NOT_FOUND).
    pub const NOT_FOUND: i32 = 4;
    /// PERMISSION_DENIED or UNAUTHENTICATED.
    pub const PERMISSION: i32 = 5;
    /// The server rejected the request (INVALID_ARGUMENT, FAILED_PRECONDITION, ...).
    pub const REJECTED: i32 = 6;
    /// The server failed (INTERNAL, UNAVAILABLE after retries, malformed response).
    pub const SERVER: i32 = 7;
    /// A local file could not be read or written.
    pub const IO: i32 = 8;
    /// The server said no: a task was not canceled, a bot not deleted, a
    /// termination task did not complete.
    pub const REFUSED: i32 = 9;
    /// `collect --timeout` elapsed before the tasks finished.
    pub const TIMEOUT: i32 = 10;
    /// `muster run`: the task ran longer than its hard or I/O timeout (TIMED_OUT).
    pub const TASK_TIMED_OUT: i32 = 124;
    /// `muster run`: no bot picked the task before it expired (EXPIRED).
    pub const TASK_EXPIRED: i32 = 91;
    /// `muster run`: no bot can ever run the task (NO_RESOURCE).
    pub const TASK_NO_RESOURCE: i32 = 92;
    /// `muster run`: the bot died while running the task (BOT_DIED).
    pub const TASK_BOT_DIED: i32 = 93;
    /// `muster run`: the task was canceled before it started (CANCELED).
    pub const TASK_CANCELED: i32 = 94;
    /// `muster run`: the task was killed while running (KILLED).
    pub const TASK_KILLED: i32 = 95;
    /// `muster run`: the bot could not set the task up (CLIENT_ERROR).
    pub const TASK_CLIENT_ERROR: i32 = 96;
    /// `muster run`: interrupted by Ctrl-C (the task was canceled).
    pub const INTERRUPTED: i32 = 130;
}

/// How a pRPC call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    /// The server answered with a non-OK gRPC code.
    #[error("{}", status_text(.0))]
    Status(Status),
    /// The host name does not resolve.
    #[error("unknown host {0}")]
    UnknownHost(String),
    /// Connection refused / reset, TLS failure, request timeout.
    #[error("{0}")]
    Transport(String),
}

fn status_text(s: &Status) -> String {
    if s.message.is_empty() {
        s.code.name().to_string()
    } else {
        format!("{} ({})", s.message, s.code.name())
    }
}

impl RpcError {
    /// The gRPC code, for server answers.
    pub fn code(&self) -> Option<Code> {
        match self {
            RpcError::Status(s) => Some(s.code),
            _ => None,
        }
    }

    /// Worth retrying: transport errors and INTERNAL/UNKNOWN/UNAVAILABLE.
    pub fn is_transient(&self) -> bool {
        match self {
            RpcError::Status(s) => s.code.is_transient(),
            RpcError::UnknownHost(_) => false,
            RpcError::Transport(_) => true,
        }
    }
}

/// Every failure of a verb. `Display` is the one line the binary prints
/// after `muster: `.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad flags or input.
    #[error("{0}")]
    Usage(String),
    /// A pRPC call failed; `context` says what we were doing.
    #[error("{context}: {error}")]
    Rpc {
        /// e.g. `getting result of task 6663cfc78b41fb10`.
        context: String,
        /// The failure.
        error: RpcError,
    },
    /// A local file or process failed.
    #[error("{0}")]
    Io(String),
    /// The server refused the operation (not canceled, not deleted, ...).
    #[error("{0}")]
    Refused(String),
    /// A wait ran out of time.
    #[error("{0}")]
    Timeout(String),
}

impl CliError {
    /// The process exit code for this failure (see [`exit`]).
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => exit::USAGE,
            CliError::Io(_) => exit::IO,
            CliError::Refused(_) => exit::REFUSED,
            CliError::Timeout(_) => exit::TIMEOUT,
            CliError::Rpc { error, .. } => match error {
                RpcError::UnknownHost(_) | RpcError::Transport(_) => exit::UNREACHABLE,
                RpcError::Status(s) => match s.code {
                    Code::NotFound => exit::NOT_FOUND,
                    Code::PermissionDenied | Code::Unauthenticated => exit::PERMISSION,
                    Code::InvalidArgument
                    | Code::FailedPrecondition
                    | Code::OutOfRange
                    | Code::AlreadyExists
                    | Code::Aborted
                    | Code::ResourceExhausted => exit::REJECTED,
                    Code::DeadlineExceeded => exit::UNREACHABLE,
                    Code::Ok | Code::Cancelled => exit::OTHER,
                    Code::Unknown | Code::Unimplemented | Code::Internal | Code::Unavailable | Code::DataLoss => {
                        exit::SERVER
                    }
                },
            },
        }
    }

    /// What to do next, printed after the error line (None when the error
    /// line already says it).
    pub fn hint(&self) -> Option<String> {
        match self {
            CliError::Usage(m) if m.contains("--server") => None,
            CliError::Usage(_) => Some("`muster <command> --help` shows the flags with examples".to_string()),
            CliError::Io(_) => Some("check the path and its permissions".to_string()),
            CliError::Refused(_) => None,
            CliError::Timeout(_) => {
                Some("raise --timeout, or run `muster collect` again later with the same task ids".to_string())
            }
            CliError::Rpc { context, error } => match error {
                RpcError::UnknownHost(h) => {
                    Some(format!("check the host name in {h} (-S/--server or SWARMING_SERVER)"))
                }
                RpcError::Transport(_) => None,
                RpcError::Status(s) => match s.code {
                    Code::NotFound if context.contains("bot") => Some("`muster bots` lists the known bots".to_string()),
                    Code::NotFound => Some("`muster tasks --state all` lists the tasks this server knows".to_string()),
                    Code::PermissionDenied | Code::Unauthenticated => {
                        Some("the server does not let this caller do that; check the token (--token)".to_string())
                    }
                    Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
                        Some("fix the value named above and run the command again".to_string())
                    }
                    Code::Unimplemented => Some(
                        "the server does not serve this call: is -S pointing at a muster or Swarming server?"
                            .to_string(),
                    ),
                    Code::Internal | Code::Unknown | Code::DataLoss => {
                        Some("the server failed; its log says why".to_string())
                    }
                    Code::Unavailable | Code::DeadlineExceeded => {
                        Some("the server is overloaded or restarting; try again shortly".to_string())
                    }
                    _ => None,
                },
            },
        }
    }

    /// A usage error.
    pub fn usage(msg: impl Into<String>) -> CliError {
        CliError::Usage(msg.into())
    }

    /// An IO error with what we were doing.
    pub fn io(context: impl std::fmt::Display, e: impl std::fmt::Display) -> CliError {
        CliError::Io(format!("{context}: {e}"))
    }
}

/// Adds context to an [`RpcError`].
pub trait RpcContext<T> {
    /// `Err(e)` becomes `CliError::Rpc { context, e }`.
    fn context(self, context: impl FnOnce() -> String) -> Result<T, CliError>;
}

impl<T> RpcContext<T> for Result<T, RpcError> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, CliError> {
        self.map_err(|error| CliError::Rpc { context: context(), error })
    }
}
