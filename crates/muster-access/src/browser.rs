//! Browser sign-in: the OIDC authorization code flow with PKCE (S256), and
//! the server-side sessions it opens.
//!
//! 1. [`Pending::new`] makes a random `state`, PKCE verifier and `nonce`;
//!    the server keeps them in a short-lived cookie sealed with an HMAC
//!    ([`Pending::seal`]) and sends the browser to the issuer
//!    ([`authorize_url`]).
//! 2. The issuer sends the browser back with `code` and `state`.
//!    [`Pending::open`] refuses a cookie that is missing, tampered with or
//!    expired, and a `state` that differs from the cookie's (forged or
//!    replayed callbacks).
//! 3. [`SignIn::redeem`] trades the code plus the verifier at the token
//!    endpoint and verifies the returned ID token like any OIDC bearer token
//!    (keys, issuer, expiry), with the client id as audience and the
//!    cookie's `nonce`.
//! 4. [`open_session`] stores only SHA-256 of a random session id (the
//!    cookie value), so a database dump cannot be replayed and every replica
//!    sharing the database knows every session.

use crate::identity::Identity;
use crate::oidc::{OidcError, OidcVerifier};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use muster_config::access_toml::OidcToml;
use muster_core::{Error, Time};
use muster_store::{Store, Txn, UiSession, Write};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long a signed-in browser session lasts.
pub const SESSION_LIFETIME_SECS: i64 = 12 * 3600;
/// How long a browser may take at the issuer.
pub const PENDING_LIFETIME_SECS: i64 = 600;
/// How long discovered endpoints are reused.
const ENDPOINTS_TTL: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigninError {
    #[error("sign-in is not configured (no [[oidc]] entry with client_id in access.toml)")]
    NotConfigured,
    #[error("the sign-in attempt is unknown or expired; start again")]
    NoAttempt,
    #[error("the sign-in state does not match; start again")]
    StateMismatch,
    #[error("the identity provider refused: {0}")]
    Provider(String),
    #[error("the identity provider's ID token is not acceptable: {0}")]
    Token(#[from] OidcError),
    #[error("the ID token's nonce does not match this sign-in")]
    Nonce,
    #[error("cannot reach the identity provider: {0}")]
    Fetch(String),
}

/// The issuer's endpoints, from its discovery document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub authorization: String,
    pub token: String,
    /// RFC 8628, when the issuer supports it (`muster login`).
    pub device_authorization: Option<String>,
}

/// A sign-in in progress, kept by the browser in a sealed cookie.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub issuer: String,
    pub state: String,
    pub verifier: String,
    pub nonce: String,
    /// Local path to return to after sign-in.
    pub next: String,
    /// Unix seconds.
    pub expires: i64,
}

fn random_b64(n: usize) -> String {
    let bytes: Vec<u8> = (0..n).map(|_| rand::random::<u8>()).collect();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// PKCE S256: base64url(SHA-256(verifier)).
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A local path to go back to: absolute path, no scheme, no `//host`.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') && !n.starts_with("/ui/signin") => {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

fn mac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length; an empty result never matches a signature.
    let Ok(mut m) = Hmac::<Sha256>::new_from_slice(key) else { return Vec::new() };
    m.update(b"muster-ui-signin\0");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

impl Pending {
    pub fn new(issuer: &str, next: &str, now: Time) -> Pending {
        Pending {
            issuer: issuer.to_string(),
            state: random_b64(32),
            verifier: random_b64(32),
            nonce: random_b64(16),
            next: next.to_string(),
            expires: now.timestamp() + PENDING_LIFETIME_SECS,
        }
    }

    pub fn challenge(&self) -> String {
        pkce_challenge(&self.verifier)
    }

    /// `base64url(json).base64url(hmac)`: the browser holds it, cannot change it.
    pub fn seal(&self, key: &[u8]) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        let sig = mac(key, &json);
        format!("{}.{}", URL_SAFE_NO_PAD.encode(&json), URL_SAFE_NO_PAD.encode(sig))
    }

    /// Opens a sealed attempt and checks it against the callback's `state`.
    pub fn open(sealed: Option<&str>, key: &[u8], state: &str, now: Time) -> Result<Pending, SigninError> {
        use subtle::ConstantTimeEq;
        let sealed = sealed.ok_or(SigninError::NoAttempt)?;
        let (body, sig) = sealed.split_once('.').ok_or(SigninError::NoAttempt)?;
        let body = URL_SAFE_NO_PAD.decode(body).map_err(|_| SigninError::NoAttempt)?;
        let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| SigninError::NoAttempt)?;
        let want = mac(key, &body);
        if want.is_empty() || !bool::from(want.ct_eq(&sig)) {
            return Err(SigninError::NoAttempt);
        }
        let p: Pending = serde_json::from_slice(&body).map_err(|_| SigninError::NoAttempt)?;
        if p.expires < now.timestamp() {
            return Err(SigninError::NoAttempt);
        }
        if state.is_empty() || !bool::from(p.state.as_bytes().ct_eq(state.as_bytes())) {
            return Err(SigninError::StateMismatch);
        }
        Ok(p)
    }
}

/// The first issuer that enables browser sign-in.
pub fn browser_issuer(issuers: &[OidcToml]) -> Option<&OidcToml> {
    issuers.iter().find(|o| o.client_id.is_some())
}

/// Where to send the browser: the issuer's authorization endpoint with the
/// code flow, PKCE S256, `state` and `nonce`.
pub fn authorize_url(ep: &Endpoints, cfg: &OidcToml, redirect_uri: &str, p: &Pending) -> Result<String, SigninError> {
    let client_id = cfg.client_id.as_deref().ok_or(SigninError::NotConfigured)?;
    let scope = cfg.scopes.join(" ");
    let challenge = p.challenge();
    let url = reqwest::Url::parse_with_params(
        &ep.authorization,
        [
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("scope", scope.as_str()),
            ("state", p.state.as_str()),
            ("nonce", p.nonce.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    )
    .map_err(|e| SigninError::Fetch(format!("bad authorization_endpoint {:?}: {e}", ep.authorization)))?;
    Ok(url.to_string())
}

/// The client side of the identity provider: discovery and code redemption.
pub struct SignIn {
    http: reqwest::Client,
    endpoints: Mutex<HashMap<String, (Endpoints, Instant)>>,
}

impl Default for SignIn {
    fn default() -> Self {
        Self::new()
    }
}

impl SignIn {
    pub fn new() -> SignIn {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        SignIn { http, endpoints: Mutex::new(HashMap::new()) }
    }

    /// The issuer's endpoints (discovery document, cached for an hour).
    pub async fn endpoints(&self, oidc: &OidcVerifier, issuer: &str) -> Result<Endpoints, SigninError> {
        if let Some((ep, at)) = self.endpoints.lock().get(issuer) {
            if at.elapsed() < ENDPOINTS_TTL {
                return Ok(ep.clone());
            }
        }
        let doc = oidc.discovery(issuer).await.map_err(|e| SigninError::Fetch(e.to_string()))?;
        let field = |k: &str| doc.get(k).and_then(Value::as_str).map(str::to_string);
        let ep = Endpoints {
            authorization: field("authorization_endpoint")
                .ok_or_else(|| SigninError::Fetch(format!("{issuer}: no authorization_endpoint")))?,
            token: field("token_endpoint").ok_or_else(|| SigninError::Fetch(format!("{issuer}: no token_endpoint")))?,
            device_authorization: field("device_authorization_endpoint"),
        };
        self.endpoints.lock().insert(issuer.to_string(), (ep.clone(), Instant::now()));
        Ok(ep)
    }

    /// Trades the authorization code (with the PKCE verifier) for an ID
    /// token and verifies it: signature, issuer, audience = client id,
    /// expiry, and the attempt's nonce. Returns the signed-in identity.
    pub async fn redeem(
        &self,
        oidc: &OidcVerifier,
        cfg: &OidcToml,
        code: &str,
        redirect_uri: &str,
        pending: &Pending,
        now: Time,
    ) -> Result<Identity, SigninError> {
        let client_id = cfg.client_id.clone().ok_or(SigninError::NotConfigured)?;
        let ep = self.endpoints(oidc, &cfg.issuer).await?;
        let mut form = vec![
            ("grant_type", "authorization_code".to_string()),
            ("code", code.to_string()),
            ("redirect_uri", redirect_uri.to_string()),
            ("client_id", client_id.clone()),
            ("code_verifier", pending.verifier.clone()),
        ];
        if let Some(path) = &cfg.client_secret_file {
            let secret = std::fs::read_to_string(path)
                .map_err(|e| SigninError::Fetch(format!("reading client_secret_file {path}: {e}")))?;
            form.push(("client_secret", secret.trim().to_string()));
        }
        let resp = self
            .http
            .post(&ep.token)
            .form(&form)
            .send()
            .await
            .map_err(|e| SigninError::Fetch(format!("{}: {e}", ep.token)))?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let err = body.get("error").and_then(Value::as_str).unwrap_or("error");
            let desc = body.get("error_description").and_then(Value::as_str).unwrap_or("");
            return Err(SigninError::Provider(format!("HTTP {status}: {err} {desc}").trim().to_string()));
        }
        let id_token = body
            .get("id_token")
            .and_then(Value::as_str)
            .ok_or_else(|| SigninError::Provider("the token response has no id_token".into()))?;
        let mut as_client = cfg.clone();
        as_client.audiences = vec![client_id];
        let (identity, claims) = oidc.verify_claims(std::slice::from_ref(&as_client), id_token, now).await?;
        let nonce = claims.get("nonce").and_then(Value::as_str).unwrap_or("");
        if nonce != pending.nonce {
            return Err(SigninError::Nonce);
        }
        Ok(identity)
    }
}

/// SHA-256 of a session id (what the database keeps).
fn session_hash(id: &str) -> Vec<u8> {
    Sha256::digest(id.as_bytes()).to_vec()
}

/// Whether a cookie value has the shape of a session id.
fn session_id_ok(id: &str) -> bool {
    id.len() == 43 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Opens a session for `identity`; returns the session id for the cookie.
pub async fn open_session(store: &dyn Store, identity: &Identity, now: Time) -> Result<String, Error> {
    let id = random_b64(32);
    let row = UiSession {
        id_sha256: session_hash(&id),
        identity: identity.to_string(),
        created_at: now,
        expires_at: now + chrono::Duration::seconds(SESSION_LIFETIME_SECS),
    };
    let txn = Txn::new().with(Write::PutUiSession(Box::new(row)));
    match store.commit(txn).await.map_err(|e| Error::internal(e.to_string()))? {
        muster_store::CommitOutcome::Committed => Ok(id),
        // 256 random bits do not collide; a conflict means something is wrong.
        other => Err(Error::internal(format!("storing the session: {other:?}"))),
    }
}

/// The identity of a live session, None for an unknown, malformed or
/// expired one.
pub async fn session_identity(store: &dyn Store, id: &str, now: Time) -> Result<Option<Identity>, Error> {
    if !session_id_ok(id) {
        return Ok(None);
    }
    let row = store.get_ui_session(&session_hash(id)).await.map_err(|e| Error::internal(e.to_string()))?;
    Ok(row.filter(|r| r.expires_at > now).and_then(|r| Identity::parse(&r.identity).ok()))
}

/// Ends a session (idempotent).
pub async fn close_session(store: &dyn Store, id: &str) -> Result<(), Error> {
    if !session_id_ok(id) {
        return Ok(());
    }
    let txn = Txn::new().with(Write::DeleteUiSession { id_sha256: session_hash(id) });
    store.commit(txn).await.map_err(|e| Error::internal(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Time {
        chrono::Utc::now()
    }

    #[test]
    fn pkce_matches_the_rfc_7636_example() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn a_sealed_attempt_opens_only_unchanged_with_its_state() {
        let key = b"0123456789abcdef0123456789abcdef";
        let p = Pending::new("https://sso.example.com", "/tasklist", now());
        let sealed = p.seal(key);
        assert_eq!(Pending::open(Some(&sealed), key, &p.state, now()), Ok(p.clone()));
        assert_eq!(Pending::open(Some(&sealed), key, "forged", now()), Err(SigninError::StateMismatch));
        assert_eq!(Pending::open(Some(&sealed), key, "", now()), Err(SigninError::StateMismatch));
        assert_eq!(Pending::open(Some(&sealed), b"another key", &p.state, now()), Err(SigninError::NoAttempt));
        assert_eq!(Pending::open(None, key, &p.state, now()), Err(SigninError::NoAttempt));
        let mut evil = p.clone();
        evil.next = "https://evil.example".into();
        let (_, sig) = sealed.split_once('.').unwrap_or_default();
        let forged = format!("{}.{sig}", URL_SAFE_NO_PAD.encode(serde_json::to_vec(&evil).unwrap_or_default()));
        assert_eq!(Pending::open(Some(&forged), key, &p.state, now()), Err(SigninError::NoAttempt));
        let later = now() + chrono::Duration::seconds(PENDING_LIFETIME_SECS + 5);
        assert_eq!(Pending::open(Some(&sealed), key, &p.state, later), Err(SigninError::NoAttempt));
    }

    #[test]
    fn only_local_paths_are_returned_to() {
        assert_eq!(safe_next(Some("/task?id=1")), "/task?id=1");
        for bad in ["https://evil.example/", "//evil.example", "/\\evil", "evil", "/ui/signin?next=/"] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
