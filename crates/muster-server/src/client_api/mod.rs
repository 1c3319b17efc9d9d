//! The swarming.v2 pRPC API (docs/client-api.md): one file per RPC under
//! `tasks/`, `bots/` and `swarming/`. This module negotiates the encoding
//! (binary protobuf or JSON), decodes the request, calls the handler and
//! encodes the reply or the error (`X-Prpc-Grpc-Code` always set). Text
//! bodies are transcoded to and from binary around the handlers (`text.rs`);
//! `X-Prpc-Grpc-Timeout` bounds the call (malformed: INVALID_ARGUMENT).

mod bots;
pub(crate) mod common;
mod muster;
mod swarming;
pub(crate) mod tasks;
mod text;
mod tokens;

use crate::State;
use axum::body::Bytes;
use axum::extract::{Path, State as S};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use muster_api::prpc::{self, Format, Message, Status};
use std::future::Future;

pub(crate) fn routes() -> Router<State> {
    Router::new().route("/prpc/{service}/{method}", post(dispatch).options(preflight))
}

async fn preflight(S(app): S<State>, headers: HeaderMap) -> Response {
    let mut resp = StatusCode::OK.into_response();
    if let Some(origin) = headers.get("origin").and_then(|v| v.to_str().ok()) {
        set_headers(&mut resp, crate::edge::headers::cors(&app.config.edge, origin, true));
    }
    resp
}

fn set_headers<K: AsRef<str>>(resp: &mut Response, headers: impl IntoIterator<Item = (K, String)>) {
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k.as_ref()), HeaderValue::try_from(v)) {
            resp.headers_mut().insert(k, v);
        }
    }
}

/// A pRPC error reply (also used for requests refused before dispatch).
pub(crate) fn status_reply(status: &Status) -> Response {
    error_reply(status, None)
}

pub(crate) fn error_reply(status: &Status, http_override: Option<u16>) -> Response {
    if status.code.http_status() >= 500 {
        tracing::error!(code = %status.code, message = %status.message, "rpc failed");
    }
    let e = match http_override {
        Some(_) => prpc::ProtocolError { status: status.clone(), http_status: http_override.unwrap_or(400) }.response(),
        None => prpc::error_response(status),
    };
    let mut resp = (StatusCode::from_u16(e.http_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), e.body.clone())
        .into_response();
    set_headers(&mut resp, e.headers());
    resp
}

pub(crate) async fn call<Req, Resp, F, Fut>(app: State, inf: Format, outf: Format, body: &[u8], f: F) -> Response
where
    Req: Message,
    Resp: Message,
    F: FnOnce(State, Req) -> Fut,
    Fut: Future<Output = Result<Resp, Status>>,
{
    call_with_headers(app, inf, outf, body, |a, r| async move { f(a, r).await.map(|x| (x, Vec::new())) }).await
}

/// Like [`call`], for a handler that also sets response headers.
async fn call_with_headers<Req, Resp, F, Fut>(app: State, inf: Format, outf: Format, body: &[u8], f: F) -> Response
where
    Req: Message,
    Resp: Message,
    F: FnOnce(State, Req) -> Fut,
    Fut: Future<Output = Result<(Resp, Vec<(&'static str, String)>), Status>>,
{
    let req: Req = match prpc::decode(inf, body) {
        Ok(r) => r,
        Err(s) => return error_reply(&s, None),
    };
    match f(app, req).await {
        Ok((resp, extra)) => match prpc::encode(outf, &resp) {
            Ok((ct, bytes)) => {
                let mut r = (StatusCode::OK, bytes).into_response();
                set_headers(&mut r, extra);
                set_headers(&mut r, [("content-type", ct.to_string())]);
                set_headers(&mut r, prpc::ok_headers().map(|(k, v)| (k, v.to_string())));
                r
            }
            Err(s) => error_reply(&s, None),
        },
        Err(s) => error_reply(&s, None),
    }
}

async fn dispatch(
    S(app): S<State>,
    Path((service, method)): Path<(String, String)>,
    ext: axum::http::Extensions,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let (inf, outf) = match (prpc::request_format(header("content-type")), prpc::response_format(header("accept"))) {
        (Ok(i), Ok(o)) => (i, o),
        (Err(pe), _) | (_, Err(pe)) => return error_reply(&pe.status, Some(pe.http_status)),
    };
    if let Err(pe) = prpc::check_method(&service, &method) {
        return error_reply(&pe.status, Some(pe.http_status));
    }
    let deadline = match header(prpc::HEADER_TIMEOUT).map(prpc::parse_timeout).transpose() {
        Ok(d) => d,
        Err(pe) => {
            let status = Status::new(pe.status.code, format!("prpc: bad request headers: {}", pe.status.message));
            return error_reply(&status, Some(pe.http_status));
        }
    };
    let cors = header("origin").map(|origin| crate::edge::headers::cors(&app.config.edge, origin, false));
    let caller = crate::edge::caller_key(&ext);
    let mut resp = match text::transcode_request(&service, &method, inf, &body) {
        Err(s) => error_reply(&s, None),
        Ok((inf, body)) => {
            let routed = route(app, &service, &method, inf, text::wire_format(outf), &body, &caller);
            let resp = match deadline {
                Some(d) => match tokio::time::timeout(d, routed).await {
                    Ok(r) => r,
                    Err(_) => {
                        error_reply(&Status::new(prpc::Code::DeadlineExceeded, "request deadline exceeded"), None)
                    }
                },
                None => routed.await,
            };
            text::transcode_response(&service, &method, outf, resp).await
        }
    };
    set_headers(&mut resp, cors.unwrap_or_default());
    resp
}

/// `caller` is who limits and quotas count the call against.
async fn route(app: State, service: &str, method: &str, i: Format, o: Format, b: &[u8], caller: &str) -> Response {
    match (service, method) {
        ("swarming.v2.Tasks", "NewTask") => {
            call_with_headers(app, i, o, b, |app, req| tasks::new_task::handle(app, req, caller, b.len() as u64)).await
        }
        ("swarming.v2.Tasks", "GetResult") => call(app, i, o, b, tasks::get_result::handle).await,
        ("swarming.v2.Tasks", "BatchGetResult") => call(app, i, o, b, tasks::batch_get_result::handle).await,
        ("swarming.v2.Tasks", "GetRequest") => call(app, i, o, b, tasks::get_request::handle).await,
        ("swarming.v2.Tasks", "CancelTask") => call(app, i, o, b, tasks::cancel_task::handle).await,
        ("swarming.v2.Tasks", "GetStdout") => call(app, i, o, b, tasks::get_stdout::handle).await,
        ("swarming.v2.Tasks", "ListTasks") => call(app, i, o, b, tasks::list_tasks::handle).await,
        ("swarming.v2.Tasks", "ListTaskStates") => call(app, i, o, b, tasks::list_task_states::handle).await,
        ("swarming.v2.Tasks", "ListTaskRequests") => call(app, i, o, b, tasks::list_task_requests::handle).await,
        ("swarming.v2.Tasks", "CancelTasks") => call(app, i, o, b, tasks::cancel_tasks::handle).await,
        ("swarming.v2.Tasks", "CountTasks") => call(app, i, o, b, tasks::count_tasks::handle).await,
        ("swarming.v2.Bots", "GetBot") => call(app, i, o, b, bots::get_bot::handle).await,
        ("swarming.v2.Bots", "DeleteBot") => call(app, i, o, b, bots::delete_bot::handle).await,
        ("swarming.v2.Bots", "ListBotEvents") => call(app, i, o, b, bots::list_bot_events::handle).await,
        ("swarming.v2.Bots", "TerminateBot") => call(app, i, o, b, bots::terminate_bot::handle).await,
        ("swarming.v2.Bots", "ListBotTasks") => call(app, i, o, b, bots::list_bot_tasks::handle).await,
        ("swarming.v2.Bots", "ListBots") => call(app, i, o, b, bots::list_bots::handle).await,
        ("swarming.v2.Bots", "CountBots") => call(app, i, o, b, bots::count_bots::handle).await,
        ("swarming.v2.Bots", "GetBotDimensions") => call(app, i, o, b, bots::get_bot_dimensions::handle).await,
        ("swarming.v2.Swarming", "GetDetails") => call(app, i, o, b, swarming::get_details::handle).await,
        ("swarming.v2.Swarming", "GetToken") => call(app, i, o, b, swarming::get_token::handle).await,
        ("swarming.v2.Swarming", "GetPermissions") => call(app, i, o, b, swarming::get_permissions::handle).await,
        ("muster.v1.Fleet", "Drain") => call(app, i, o, b, muster::drain::handle).await,
        ("muster.v1.Fleet", "Undrain") => call(app, i, o, b, muster::undrain::handle).await,
        ("muster.v1.Fleet", "ListDrains") => call(app, i, o, b, muster::list_drains::handle).await,
        ("muster.v1.Scheduler", "WhyPending") => call(app, i, o, b, muster::why_pending::handle).await,
        ("muster.v1.Notifications", "List") => call(app, i, o, b, muster::notifications::list).await,
        ("muster.v1.Notifications", "Retry") => call(app, i, o, b, muster::notifications::retry).await,
        ("muster.v1.Tokens", "Create") => call(app, i, o, b, tokens::create).await,
        ("muster.v1.Tokens", "List") => call(app, i, o, b, tokens::list).await,
        ("muster.v1.Tokens", "Revoke") => call(app, i, o, b, tokens::revoke).await,
        ("scheduler.Scheduler", m) => crate::jobs::prpc::route(app, m, i, o, b).await,
        _ => error_reply(
            &Status::unimplemented(format!("method {method:?} in service {service:?} is not implemented")),
            None,
        ),
    }
}
