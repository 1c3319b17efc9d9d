//! `/healthz` (the process answers) and `/readyz` (it can serve: the store
//! answers a read, the scheduler's index is loaded, every extra check
//! registered in [`ServerConfig::ready_checks`] passes, and the server is not
//! shutting down). Both unauthenticated, for load balancers and supervisors;
//! see docs/operations.md.

use crate::State;
use axum::extract::State as S;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// One extra condition of readiness, e.g. "the loaded config snapshot is
/// valid". Registered by the binary in [`ServerConfig::ready_checks`]
/// (crate::ServerConfig). Must be cheap: `/readyz` runs it on every probe.
pub trait ReadyCheck: Send + Sync {
    /// Short name shown in the `/readyz` reply (e.g. "config").
    fn name(&self) -> &str;
    /// `Ok(detail)` when ready, `Err(why)` when not.
    fn check(&self) -> Result<String, String>;
}

/// The registered checks (cloned with the config).
pub type ReadyChecks = Vec<Arc<dyn ReadyCheck>>;

/// Longest the store may take to answer the readiness read.
const STORE_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) fn routes() -> Router<State> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz))
}

async fn healthz() -> Response {
    (StatusCode::OK, Json(json!({"status": "ok"}))).into_response()
}

async fn readyz(S(app): S<State>) -> Response {
    let mut checks = Map::new();
    let mut ready = true;
    let mut put = |name: &str, r: Result<String, String>| {
        ready &= r.is_ok();
        let v = match r {
            Ok(detail) => json!({"ok": true, "detail": detail}),
            Err(why) => json!({"ok": false, "detail": why}),
        };
        checks.insert(name.to_string(), v);
    };
    let store = match tokio::time::timeout(STORE_TIMEOUT, app.store.get_meta("session_key")).await {
        Ok(Ok(_)) => Ok("answers".to_string()),
        Ok(Err(e)) => Err(format!("store error: {e}")),
        Err(_) => Err(format!("no answer within {STORE_TIMEOUT:?}")),
    };
    put("store", store);
    // The index is rebuilt from the store before the router exists; what
    // remains to report is its size.
    put("index", Ok(format!("{} pending slices loaded", app.sched.pending_count())));
    put("serving", if app.sched.is_closing() { Err("shutting down".to_string()) } else { Ok("yes".to_string()) });
    for c in &app.config.ready_checks {
        put(c.name(), c.check());
    }
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(json!({"ready": ready, "checks": Value::Object(checks)}))).into_response()
}

/// Readiness of the configuration directory: only a valid snapshot is ever
/// swapped in, so a failed reload leaves the server serving the previous
/// one. That is reported (with the errors) but does not fail `/readyz`:
/// one bad push must not take every replica out of a load balancer.
pub struct ConfigReady(pub Arc<muster_config::ConfigHolder>);

impl ReadyCheck for ConfigReady {
    fn name(&self) -> &str {
        "config"
    }
    fn check(&self) -> Result<String, String> {
        let digest = self.0.get().digest.clone();
        match self.0.last_errors().filter(|_| !self.0.is_valid()) {
            None => Ok(format!("valid (digest {digest})")),
            Some(e) => {
                Ok(format!("serving the last valid configuration (digest {digest}); the last reload failed: {e}"))
            }
        }
    }
}
