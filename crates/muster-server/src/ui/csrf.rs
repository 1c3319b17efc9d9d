//! CSRF protection for the UI's forms (double-submit token + Origin check).
//!
//! Every UI response sets a random per-browser token in the `muster_csrf`
//! cookie (HttpOnly, SameSite=Strict, Secure on https) unless the browser
//! already has one; every form carries the same value in a hidden `csrf`
//! field ([`field`]). A state-changing request to `/ui/…` is accepted only
//! when the field equals the cookie, and, when the browser sends `Origin`,
//! that origin is this server's. A page on another site can neither read the
//! cookie nor forge a matching field, so its cross-site form post is refused.

use crate::access::RequestAccess;
use crate::State;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use subtle::ConstantTimeEq;

pub(crate) const COOKIE: &str = "muster_csrf";
const FIELD: &str = "csrf";
const MAX_FORM_BYTES: usize = 1024 * 1024;

pub(crate) fn new_token() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// The token in the request's `muster_csrf` cookie, if well-formed.
pub(crate) fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
        .filter(|v| v.len() == 43 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

pub(crate) fn set_cookie(resp: &mut Response, token: &str, secure: bool) {
    let secure = if secure { "; Secure" } else { "" };
    if let Ok(v) = HeaderValue::try_from(format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict{secure}")) {
        resp.headers_mut().append(axum::http::header::SET_COOKIE, v);
    }
}

/// The hidden form field carrying this browser's token.
pub(crate) fn field() -> String {
    let token = crate::access::current().csrf.clone();
    format!("<input type=\"hidden\" name=\"{FIELD}\" value=\"{token}\">")
}

fn refuse(message: &str) -> Box<Response> {
    tracing::info!(reason = message, "cross-site request refused");
    Box::new(super::page::error_page(StatusCode::FORBIDDEN, message))
}

fn origin_allowed(app: &State, headers: &HeaderMap, origin: &str) -> bool {
    let own = app.config.external_url.trim_end_matches('/');
    let own_origin = own.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
    if origin == own_origin {
        return true;
    }
    let host = headers.get(axum::http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    !host.is_empty() && (origin == format!("http://{host}") || origin == format!("https://{host}"))
}

/// Checks a state-changing UI request; passes every other request through.
pub(crate) async fn check(app: &State, ctx: &RequestAccess, req: Request) -> Result<Request, Box<Response>> {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if safe || !req.uri().path().starts_with("/ui/") {
        return Ok(req);
    }
    if let Some(origin) = req.headers().get(axum::http::header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        if !origin_allowed(app, req.headers(), origin) {
            return Err(refuse("cross-site request refused: the form was not sent by this server's pages"));
        }
    }
    let Some(cookie) = cookie_token(req.headers()) else {
        return Err(refuse("missing CSRF cookie: reload the page and submit the form again"));
    };
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES).await.map_err(|_| refuse("form too large"))?;
    let presented = form_urlencoded_field(&bytes, FIELD).unwrap_or_default();
    if !bool::from(presented.as_bytes().ct_eq(cookie.as_bytes())) || ctx.csrf != cookie {
        return Err(refuse("invalid CSRF token: reload the page and submit the form again"));
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

fn form_urlencoded_field(body: &[u8], name: &str) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}
