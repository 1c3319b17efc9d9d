//! Browser sign-in routes (docs/access-control.md#web-ui):
//!
//! - `GET /ui/signin?next=/path` starts the OIDC authorization code flow
//!   with PKCE against the first `[[oidc]]` entry that has a `client_id`:
//!   the attempt (state, verifier, nonce, where to return) goes into a
//!   sealed, short-lived `muster_signin` cookie and the browser to the
//!   issuer's authorization endpoint.
//! - `GET <redirect_path>` (default `/ui/signin/callback`) checks `state`
//!   against the cookie, redeems the code with the verifier, verifies the ID
//!   token, opens a server-side session (the database keeps only a hash of
//!   its id) and sets the `muster_session` cookie (HttpOnly, SameSite=Lax,
//!   Secure on TLS).
//! - `POST /ui/signout` (CSRF-protected like every `/ui/` form) ends it.
//! - `GET /ui/signin/cli` tells `muster login` the issuer and client id
//!   (public facts) for its device login.
//!
//! The session's identity goes through the same checks as API callers: the
//! access middleware resolves the cookie ([`session_identity`]) and passes
//! it to the authenticator. The rules live in `muster_access::browser`.

use super::page::esc;
use super::{UiError, UiResult};
use crate::State;
use axum::extract::{Path, Query, State as S};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use muster_access::browser::{self, Pending, SigninError};
use muster_access::Identity;
use serde::Deserialize;

/// The session cookie (value: the session id; the database has its hash).
pub(crate) const SESSION_COOKIE: &str = "muster_session";
/// The sealed sign-in attempt.
const ATTEMPT_COOKIE: &str = "muster_signin";

pub(crate) fn routes() -> Router<State> {
    Router::new()
        .route("/ui/signin", get(start))
        .route("/ui/signin/cli", get(cli_config))
        .route("/ui/signin/{*rest}", get(callback))
        .route("/ui/signout", post(signout))
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Cookies are `Secure` when browsers reach this server over TLS.
fn secure(app: &State) -> bool {
    app.config.edge.tls.is_some() || app.config.external_url.starts_with("https://")
}

fn set_cookie(resp: &mut Response, value: String) {
    if let Ok(v) = HeaderValue::try_from(value) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn cookie_attrs(app: &State, path: &str, max_age: i64) -> String {
    let secure = if secure(app) { "; Secure" } else { "" };
    format!("Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}")
}

/// The key sealing sign-in attempts: derived from the server's shared
/// session secret, so every replica opens what another sealed.
fn attempt_key(app: &State) -> Vec<u8> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"muster ui sign-in attempt key\0");
    h.update(&app.config.session_secret);
    h.finalize().to_vec()
}

/// The identity of the browser's session cookie, if it names a live
/// session. Called by the access middleware for UI routes.
pub(crate) async fn session_identity(app: &State, headers: &HeaderMap) -> Option<Identity> {
    let id = cookie(headers, SESSION_COOKIE)?;
    match browser::session_identity(app.store.as_ref(), id, app.clock.now()).await {
        Ok(identity) => identity,
        Err(e) => {
            tracing::warn!(error = %e.message, "reading the sign-in session failed; treating the browser as signed out");
            None
        }
    }
}

/// The header's "who is signed in" part: the identity and a Sign in link,
/// or a Sign out button for a signed-in browser.
pub(crate) fn header_html() -> String {
    let ctx = crate::access::current();
    let who = esc(ctx.caller.identity.as_str());
    let mut out = format!("<span class=\"caller small\" id=\"caller\">{who}</span>");
    if ctx.caller.method == muster_access::AuthMethod::Session {
        out.push_str(&format!(
            "<form method=\"post\" action=\"/ui/signout\" class=\"inline signout\">{}\
             <button type=\"submit\" id=\"signout\">Sign out</button></form>",
            super::csrf::field()
        ));
    } else if ctx.caller.identity.is_anonymous() && browser::browser_issuer(&ctx.snap.access.oidc).is_some() {
        out.push_str("<a class=\"signin\" id=\"signin\" href=\"/ui/signin\">Sign in</a>");
    }
    out
}

/// The issuer and client id `muster login` signs in with (404: none).
async fn cli_config(S(app): S<State>) -> Response {
    let snap = app.config.access.get();
    match browser::browser_issuer(&snap.access.oidc) {
        Some(cfg) => axum::Json(serde_json::json!({
            "issuer": cfg.issuer,
            "client_id": cfg.client_id,
            "scopes": cfg.scopes,
        }))
        .into_response(),
        None => (StatusCode::NOT_FOUND, axum::Json(serde_json::json!({"error": "sign-in is not configured"})))
            .into_response(),
    }
}

fn refused(status: StatusCode, e: SigninError) -> UiError {
    tracing::info!(error = %e, "sign-in refused");
    UiError { status, message: format!("sign-in failed: {e}") }
}

#[derive(Deserialize)]
struct StartQuery {
    next: Option<String>,
}

async fn start(S(app): S<State>, headers: HeaderMap, Query(q): Query<StartQuery>) -> UiResult {
    let snap = app.config.access.get();
    let cfg = browser::browser_issuer(&snap.access.oidc)
        .ok_or_else(|| refused(StatusCode::NOT_FOUND, SigninError::NotConfigured))?;
    let next = q.next.or_else(|| referer_path(&app, &headers));
    let pending = Pending::new(&cfg.issuer, &browser::safe_next(next.as_deref()), app.clock.now());
    let ep = app
        .authn
        .signin()
        .endpoints(app.authn.oidc(), &cfg.issuer)
        .await
        .map_err(|e| refused(StatusCode::BAD_GATEWAY, e))?;
    let redirect_uri = format!("{}{}", app.config.external_url, cfg.redirect_path);
    let to =
        browser::authorize_url(&ep, cfg, &redirect_uri, &pending).map_err(|e| refused(StatusCode::BAD_GATEWAY, e))?;
    let mut resp = Redirect::to(&to).into_response();
    let attrs = cookie_attrs(&app, "/ui/signin", browser::PENDING_LIFETIME_SECS);
    set_cookie(&mut resp, format!("{ATTEMPT_COOKIE}={}; {attrs}", pending.seal(&attempt_key(&app))));
    Ok(resp)
}

/// The local page the "Sign in" link was clicked on.
fn referer_path(app: &State, headers: &HeaderMap) -> Option<String> {
    let r = headers.get(header::REFERER)?.to_str().ok()?;
    r.strip_prefix(app.config.external_url.as_str()).map(str::to_string)
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

async fn callback(
    S(app): S<State>,
    Path(rest): Path<String>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> UiResult {
    let snap = app.config.access.get();
    let cfg = browser::browser_issuer(&snap.access.oidc)
        .filter(|c| c.redirect_path == format!("/ui/signin/{rest}"))
        .ok_or_else(|| UiError::not_found("no such page"))?;
    let now = app.clock.now();
    if let Some(err) = q.error {
        let desc = q.error_description.unwrap_or_default();
        return Err(refused(StatusCode::FORBIDDEN, SigninError::Provider(format!("{err} {desc}").trim().to_string())));
    }
    let pending =
        Pending::open(cookie(&headers, ATTEMPT_COOKIE), &attempt_key(&app), q.state.as_deref().unwrap_or(""), now)
            .map_err(|e| refused(StatusCode::BAD_REQUEST, e))?;
    if pending.issuer != cfg.issuer {
        return Err(refused(StatusCode::BAD_REQUEST, SigninError::NoAttempt));
    }
    let code = q.code.filter(|c| !c.is_empty()).ok_or_else(|| UiError::bad("sign-in failed: no code"))?;
    let redirect_uri = format!("{}{}", app.config.external_url, cfg.redirect_path);
    let identity = app
        .authn
        .signin()
        .redeem(app.authn.oidc(), cfg, &code, &redirect_uri, &pending, now)
        .await
        .map_err(|e| refused(StatusCode::FORBIDDEN, e))?;
    let session = browser::open_session(app.store.as_ref(), &identity, now).await?;
    tracing::info!(identity = %identity, issuer = %cfg.issuer, "signed in");
    let mut resp = Redirect::to(&pending.next).into_response();
    set_cookie(&mut resp, format!("{ATTEMPT_COOKIE}=; {}", cookie_attrs(&app, "/ui/signin", 0)));
    set_cookie(
        &mut resp,
        format!("{SESSION_COOKIE}={session}; {}", cookie_attrs(&app, "/", browser::SESSION_LIFETIME_SECS)),
    );
    Ok(resp)
}

async fn signout(S(app): S<State>, headers: HeaderMap) -> UiResult {
    if let Some(id) = cookie(&headers, SESSION_COOKIE) {
        browser::close_session(app.store.as_ref(), id).await?;
        tracing::info!(identity = %crate::access::current().caller.identity, "signed out");
    }
    let mut resp = Redirect::to("/").into_response();
    set_cookie(&mut resp, format!("{SESSION_COOKIE}=; {}", cookie_attrs(&app, "/", 0)));
    Ok(resp)
}
