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

/// The span every request runs in: a request id (the caller's
/// `X-Request-Id`, else a new one), method, path (never the query), and the
/// bot and task it concerns when the request says so; handlers fill
/// `task_id` when only the body names it.
pub(crate) fn request_span<B>(req: &axum::http::Request<B>) -> tracing::Span {
    let header = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty());
    let request_id = header("x-request-id").map(str::to_string).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let path = req.uri().path();
    let task_id = path
        .strip_prefix("/swarming/api/v1/bot/task_update/")
        .or_else(|| path.strip_prefix("/swarming/api/v1/bot/task_error/"))
        .or_else(|| {
            req.uri()
                .query()
                .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("id=")))
                .filter(|_| path.starts_with("/task"))
        });
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %req.method(),
        path = %path,
        bot_id = tracing::field::Empty,
        task_id = tracing::field::Empty,
    );
    if let Some(b) = header("x-luci-swarming-bot-id") {
        span.record("bot_id", b);
    }
    if let Some(t) = task_id {
        span.record("task_id", t);
    }
    span
}
