//! The error vocabulary shared by every layer. The kind decides the gRPC code
//! and HTTP status (mapped once, in muster-server/src/error.rs).

/// What went wrong, coarse enough to map to a gRPC code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    FailedPrecondition,
    AlreadyExists,
    Unavailable,
    ResourceExhausted,
    Internal,
}

/// A domain error: a kind plus a message meant for the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
    pub fn precondition(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::FailedPrecondition, message)
    }
    pub fn permission(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::PermissionDenied, message)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
