//! Authentication: one call per request turns its credentials into a
//! [`Caller`].
//!
//! Order (first applicable wins; applicable but invalid → UNAUTHENTICATED):
//! 1. `Authorization: Bearer mst_…` — an API token;
//! 2. `Authorization: Bearer <JWT>` — an OIDC ID token of a configured issuer;
//! 3. the trusted-proxy header, only from a configured CIDR;
//! 4. a signed-in browser session (resolved by the server, passed in);
//! 5. nothing → `anonymous:anonymous`.
//!
//! Credentials in the query string and delegation headers are refused.
//! A server with no `access.toml` makes loopback callers administrators.

use crate::identity::Identity;
use crate::oidc::{self, OidcVerifier};
use crate::token;
use http::HeaderMap;
use muster_config::Snapshot;
use muster_core::{Error, ErrorKind, Time};
use muster_store::{Store, Txn, Write};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// How the caller proved its identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMethod {
    Anonymous,
    ApiToken { id: String },
    Oidc { issuer: String },
    Proxy,
    Session,
}

/// The authenticated caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub identity: Identity,
    /// Groups granted by the connection rather than by config (a loopback
    /// caller of a server without `access.toml` is an administrator).
    pub extra_groups: Vec<String>,
    pub method: AuthMethod,
    pub peer: Option<IpAddr>,
}

impl Caller {
    pub fn anonymous(peer: Option<IpAddr>) -> Caller {
        Caller { identity: Identity::anonymous(), extra_groups: Vec::new(), method: AuthMethod::Anonymous, peer }
    }
}

/// Last-use writes happen at most this often per token.
const TOUCH_EVERY_SECS: i64 = 60;

/// Authenticates requests; shared by every handler.
pub struct Authenticator {
    store: Arc<dyn Store>,
    oidc: OidcVerifier,
    signin: crate::browser::SignIn,
    touched: Mutex<HashMap<String, Time>>,
}

fn unauthenticated(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::Unauthenticated, msg)
}

/// Query parameters that would carry a credential.
fn query_has_credential(query: &str) -> bool {
    query.split('&').any(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        matches!(k, "access_token" | "token" | "id_token" | "api_key") || v.starts_with(token::PREFIX)
    })
}

impl Authenticator {
    pub fn new(store: Arc<dyn Store>) -> Authenticator {
        Self::with_oidc(store, OidcVerifier::new())
    }

    pub fn with_oidc(store: Arc<dyn Store>, oidc: OidcVerifier) -> Authenticator {
        Authenticator { store, oidc, signin: crate::browser::SignIn::new(), touched: Mutex::new(HashMap::new()) }
    }

    pub fn oidc(&self) -> &OidcVerifier {
        &self.oidc
    }

    /// The browser sign-in client (discovery cache, code redemption).
    pub fn signin(&self) -> &crate::browser::SignIn {
        &self.signin
    }

    /// Authenticates one request. `session` is the identity of a valid
    /// browser session cookie, if the server found one.
    pub async fn authenticate(
        &self,
        snap: &Snapshot,
        headers: &HeaderMap,
        query: Option<&str>,
        peer: Option<IpAddr>,
        session: Option<Identity>,
        now: Time,
    ) -> Result<Caller, Error> {
        if query.is_some_and(query_has_credential) {
            return Err(unauthenticated(
                "credentials are not accepted in the query string; use the Authorization header",
            ));
        }
        for h in ["x-delegation-token-v1", "x-luci-project"] {
            if headers.contains_key(h) {
                return Err(unauthenticated(format!("{h} is not supported by muster")));
            }
        }
        let mut caller = match headers.get(http::header::AUTHORIZATION) {
            Some(v) => {
                let v = v.to_str().map_err(|_| unauthenticated("malformed Authorization header"))?;
                let (scheme, cred) = v.split_once(' ').unwrap_or((v, ""));
                if !scheme.eq_ignore_ascii_case("bearer") {
                    return Err(unauthenticated(format!("unsupported Authorization scheme {scheme:?}; use Bearer")));
                }
                let cred = cred.trim();
                if cred.starts_with(token::PREFIX) {
                    self.api_token(cred, now, peer).await?
                } else if oidc::looks_like_jwt(cred) {
                    let identity = self
                        .oidc
                        .verify(&snap.access.oidc, cred, now)
                        .await
                        .map_err(|e| unauthenticated(format!("auth: {e}")))?;
                    let issuer = issuer_of(cred).unwrap_or_default();
                    Caller { identity, extra_groups: Vec::new(), method: AuthMethod::Oidc { issuer }, peer }
                } else {
                    return Err(unauthenticated("auth: unrecognized bearer token"));
                }
            }
            None => match self.proxy_identity(snap, headers, peer)? {
                Some(identity) => Caller { identity, extra_groups: Vec::new(), method: AuthMethod::Proxy, peer },
                None => match session {
                    Some(identity) => Caller { identity, extra_groups: Vec::new(), method: AuthMethod::Session, peer },
                    None => Caller::anonymous(peer),
                },
            },
        };
        if !snap.has_access_toml && peer.is_some_and(|p| p.is_loopback()) {
            caller.extra_groups.push(snap.server_groups.admins.clone());
        }
        Ok(caller)
    }

    async fn api_token(&self, presented: &str, now: Time, peer: Option<IpAddr>) -> Result<Caller, Error> {
        let (id, secret) = token::parse(presented).ok_or_else(|| unauthenticated("auth: malformed API token"))?;
        let row = self.store.get_api_token(id).await.map_err(|e| Error::internal(e.to_string()))?;
        let identity = token::check(row.as_ref(), secret, now).map_err(|e| unauthenticated(format!("auth: {e}")))?;
        self.touch(id, now).await;
        Ok(Caller { identity, extra_groups: Vec::new(), method: AuthMethod::ApiToken { id: id.to_string() }, peer })
    }

    /// Records last use, at most once a minute per token (per process).
    async fn touch(&self, id: &str, now: Time) {
        {
            let mut t = self.touched.lock();
            if t.get(id).is_some_and(|last| (now - *last).num_seconds() < TOUCH_EVERY_SECS) {
                return;
            }
            t.insert(id.to_string(), now);
        }
        if let Err(e) = self.store.commit(Txn::new().with(Write::TouchApiToken { id: id.to_string(), at: now })).await {
            tracing::warn!(token_id = %id, error = %e, "recording token use failed");
        }
    }

    fn proxy_identity(
        &self,
        snap: &Snapshot,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
    ) -> Result<Option<Identity>, Error> {
        let Some(proxy) = &snap.access.proxy else { return Ok(None) };
        let Some(value) = headers.get(proxy.header.as_str()) else { return Ok(None) };
        let trusted = peer.is_some_and(|p| {
            proxy.trusted_cidrs.iter().filter_map(|c| c.parse::<ipnet::IpNet>().ok()).any(|n| n.contains(&p))
        });
        if !trusted {
            // Anyone may send the header; only the proxy's counts.
            return Ok(None);
        }
        let v = value.to_str().map_err(|_| unauthenticated("malformed proxy identity header"))?;
        let id = if v.contains(':') { v.to_string() } else { format!("user:{v}") };
        Identity::parse(&id).map(Some).map_err(|e| unauthenticated(format!("auth: proxy header: {e}")))
    }
}

fn issuer_of(jwt: &str) -> Option<String> {
    use base64::Engine;
    let p = jwt.split('.').nth(1)?;
    let b = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&b).ok()?;
    v.get("iss")?.as_str().map(str::to_string)
}
