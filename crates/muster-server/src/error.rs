//! The one place where error kinds become HTTP statuses and bodies.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use muster_core::{Error, ErrorKind};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("io: {0}")]
    Io(String),
    #[error("bot code: {0}")]
    BotCode(String),
    #[error("bot access: {0}")]
    BotAuth(String),
}

/// HTTP status for an error kind: the kind's gRPC code through the one
/// code → HTTP table (docs/client-api.md#errors-and-codes) in muster_api::prpc.
pub fn http_status(kind: ErrorKind) -> StatusCode {
    StatusCode::from_u16(muster_api::prpc::code_of(kind).http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The message shown to the caller: internal details are logged, not sent.
pub fn public_message(e: &Error) -> String {
    if e.kind == ErrorKind::Internal {
        tracing::error!(error = %e.message, "internal error");
        "internal error".to_string()
    } else {
        e.message.clone()
    }
}

/// An error on a JSON (bot API) endpoint: `{"error": "..."}` with the status.
/// Always `application/json`, so the Python bot never retries a 404 forever.
#[derive(Debug)]
pub struct JsonError(pub Error);

impl From<Error> for JsonError {
    fn from(e: Error) -> Self {
        JsonError(e)
    }
}

impl From<muster_store::StoreError> for JsonError {
    fn from(e: muster_store::StoreError) -> Self {
        JsonError(e.into())
    }
}

impl IntoResponse for JsonError {
    fn into_response(self) -> Response {
        let status = http_status(self.0.kind);
        (status, Json(serde_json::json!({ "error": public_message(&self.0) }))).into_response()
    }
}

/// Fallback for unknown paths: a JSON 404.
pub async fn not_found(uri: axum::http::Uri) -> Response {
    JsonError(Error::not_found(format!("no such endpoint: {}", uri.path()))).into_response()
}
