//! swarming.v2 pRPC client API (added below).
use crate::State;
use axum::Router;
pub(crate) fn routes() -> Router<State> { Router::new() }
