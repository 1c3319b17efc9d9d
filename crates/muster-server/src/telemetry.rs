//! `/metrics` (Prometheus text format) and the HTTP request metrics layer.
//! The recorder and the metric names live in muster-observe; see
//! docs/operations.md for the list.

use crate::State;
use axum::extract::{MatchedPath, Request, State as S};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use metrics::{counter, histogram};

pub(crate) fn routes() -> Router<State> {
    Router::new().route("/metrics", get(scrape))
}

async fn scrape(S(app): S<State>) -> Response {
    let Some(m) = &app.metrics else {
        return (StatusCode::SERVICE_UNAVAILABLE, "metrics are unavailable in this process\n").into_response();
    };
    let text = m.render(&app.sched.fleet_gauges(app.clock.now()));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

/// Counts every request by route template (never the raw path: bounded
/// cardinality) and status code, and times it.
pub(crate) async fn track(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_string();
    let started = std::time::Instant::now();
    let resp = next.run(req).await;
    let code = resp.status().as_u16().to_string();
    histogram!("muster_http_request_duration_seconds", "route" => route.clone())
        .record(started.elapsed().as_secs_f64());
    counter!("muster_http_requests_total", "route" => route, "code" => code).increment(1);
    resp
}
