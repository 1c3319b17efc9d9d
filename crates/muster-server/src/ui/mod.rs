//! The web UI (issue #6): server-rendered pages from templates embedded in
//! the binary.

use crate::State;
use axum::Router;

pub(crate) fn routes() -> Router<State> {
    Router::new()
}
