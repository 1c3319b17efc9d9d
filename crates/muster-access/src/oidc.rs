//! OIDC ID tokens (`Authorization: Bearer <JWT>`), verified against the
//! issuer's published keys.
//!
//! The issuer is chosen by the token's `iss` among the configured ones. Keys
//! come from `jwks_uri` (or the issuer's discovery document), are cached for
//! an hour, and are fetched again when a token names an unknown `kid` — at
//! most once per 30 s per issuer, so garbage tokens cannot make muster hammer
//! the issuer. Only RS256 and ES256 are accepted (`alg: none` and HMAC
//! algorithms never are). `aud` must be one of the configured audiences;
//! `exp`, `nbf` and `iat` are checked against the request's clock with 60 s
//! leeway.

use crate::identity::Identity;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use muster_config::access_toml::OidcToml;
use muster_core::Time;
use parking_lot::Mutex;
use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub const LEEWAY_SECS: i64 = 60;
const KEYS_TTL: Duration = Duration::from_secs(3600);
const REFETCH_AT_MOST_EVERY: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcError {
    #[error("malformed ID token: {0}")]
    Malformed(String),
    #[error("ID token issuer {0:?} is not configured")]
    UnknownIssuer(String),
    #[error("ID token algorithm {0} is not accepted (RS256 and ES256 only)")]
    Algorithm(String),
    #[error("ID token signed with unknown key {0:?}")]
    UnknownKey(String),
    #[error("ID token signature or claims invalid: {0}")]
    Invalid(String),
    #[error("ID token expired")]
    Expired,
    #[error("ID token not valid yet")]
    NotYetValid,
    #[error("ID token claim {0:?} does not have the required value")]
    Requirement(String),
    #[error("ID token does not yield an identity: {0}")]
    Identity(String),
    #[error("cannot fetch the issuer's keys: {0}")]
    Fetch(String),
}

struct CachedKeys {
    keys: JwkSet,
    fetched: Instant,
}

/// Verifies ID tokens; holds the per-issuer key cache.
pub struct OidcVerifier {
    http: reqwest::Client,
    refetch_every: Duration,
    keys: Mutex<HashMap<String, CachedKeys>>,
    last_fetch: Mutex<HashMap<String, Instant>>,
}

impl Default for OidcVerifier {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether a bearer value looks like a JWT (three base64url parts).
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3 && token.starts_with("ey")
}

/// The unverified `iss` claim (only to pick the issuer's keys).
fn unverified_issuer(token: &str) -> Result<String, OidcError> {
    let payload = token.split('.').nth(1).ok_or_else(|| OidcError::Malformed("no payload".into()))?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).map_err(|_| OidcError::Malformed("payload is not base64url".into()))?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| OidcError::Malformed("payload is not JSON".into()))?;
    v.get("iss").and_then(Value::as_str).map(str::to_string).ok_or_else(|| OidcError::Malformed("no iss".into()))
}

impl OidcVerifier {
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        OidcVerifier {
            http,
            refetch_every: REFETCH_AT_MOST_EVERY,
            keys: Mutex::new(HashMap::new()),
            last_fetch: Mutex::new(HashMap::new()),
        }
    }

    /// Changes the minimum time between two JWKS fetches of one issuer.
    pub fn with_refetch_interval(mut self, every: Duration) -> Self {
        self.refetch_every = every;
        self
    }

    /// Verifies `token` against the configured issuers; returns the identity.
    pub async fn verify(&self, issuers: &[OidcToml], token: &str, now: Time) -> Result<Identity, OidcError> {
        self.verify_claims(issuers, token, now).await.map(|(identity, _)| identity)
    }

    /// Like [`OidcVerifier::verify`], also returning the verified claims
    /// (browser sign-in checks its `nonce`).
    pub async fn verify_claims(
        &self,
        issuers: &[OidcToml],
        token: &str,
        now: Time,
    ) -> Result<(Identity, Value), OidcError> {
        // The header first: `alg: none` (or anything but RS256/ES256) is
        // refused before any key is looked at.
        let header_json = token
            .split('.')
            .next()
            .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .ok_or_else(|| OidcError::Malformed("bad header".into()))?;
        let alg = header_json.get("alg").and_then(Value::as_str).unwrap_or("").to_string();
        let algorithm = match alg.as_str() {
            "RS256" => Algorithm::RS256,
            "ES256" => Algorithm::ES256,
            _ => return Err(OidcError::Algorithm(if alg.is_empty() { "(none)".into() } else { alg })),
        };
        let kid = header_json.get("kid").and_then(Value::as_str).unwrap_or("").to_string();
        let iss = unverified_issuer(token)?;
        let cfg = issuers.iter().find(|o| o.issuer == iss).ok_or_else(|| OidcError::UnknownIssuer(iss.clone()))?;
        let jwk = self.key(cfg, &kid).await?;
        let key = DecodingKey::from_jwk(&jwk).map_err(|e| OidcError::Invalid(e.to_string()))?;
        let mut v = Validation::new(algorithm);
        // Tokens issued to muster's own client (browser sign-in, `muster
        // login`) are meant for muster too.
        let mut audiences = cfg.audiences.clone();
        audiences.extend(cfg.client_id.iter().cloned());
        v.set_audience(&audiences);
        v.set_issuer(&[cfg.issuer.as_str()]);
        // Times are checked below against the request's clock.
        v.validate_exp = false;
        v.validate_nbf = false;
        v.required_spec_claims = ["aud", "iss"].iter().map(|s| s.to_string()).collect();
        let data = jsonwebtoken::decode::<Value>(token, &key, &v).map_err(|e| OidcError::Invalid(e.to_string()))?;
        let claims = data.claims;
        let t = now.timestamp();
        let num = |k: &str| claims.get(k).and_then(Value::as_i64);
        match num("exp") {
            Some(exp) if exp + LEEWAY_SECS > t => {}
            Some(_) => return Err(OidcError::Expired),
            None => return Err(OidcError::Invalid("no exp".into())),
        }
        if num("nbf").is_some_and(|nbf| nbf - LEEWAY_SECS > t) || num("iat").is_some_and(|iat| iat - LEEWAY_SECS > t) {
            return Err(OidcError::NotYetValid);
        }
        for (k, want) in &cfg.require {
            if claim_str(&claims, k).as_deref() != Some(want.as_str()) {
                return Err(OidcError::Requirement(k.clone()));
            }
        }
        let identity = identity_from(cfg, &claims)?;
        Ok((identity, claims))
    }

    async fn key(&self, cfg: &OidcToml, kid: &str) -> Result<jsonwebtoken::jwk::Jwk, OidcError> {
        let find = |set: &JwkSet| -> Option<jsonwebtoken::jwk::Jwk> {
            if kid.is_empty() && set.keys.len() == 1 {
                return set.keys.first().cloned();
            }
            set.keys.iter().find(|k| k.common.key_id.as_deref() == Some(kid)).cloned()
        };
        if let Some(c) = self.keys.lock().get(&cfg.issuer) {
            if let Some(k) = find(&c.keys).filter(|_| c.fetched.elapsed() < KEYS_TTL) {
                return Ok(k);
            }
        }
        // Unknown kid or stale cache: fetch again, rate-limited.
        let may_fetch = {
            let mut last = self.last_fetch.lock();
            let ok = last.get(&cfg.issuer).is_none_or(|t| t.elapsed() >= self.refetch_every);
            if ok {
                last.insert(cfg.issuer.clone(), Instant::now());
            }
            ok
        };
        if may_fetch {
            let set = self.fetch(cfg).await?;
            let found = find(&set);
            self.keys.lock().insert(cfg.issuer.clone(), CachedKeys { keys: set, fetched: Instant::now() });
            return found.ok_or_else(|| OidcError::UnknownKey(kid.to_string()));
        }
        let cache = self.keys.lock();
        cache.get(&cfg.issuer).and_then(|c| find(&c.keys)).ok_or_else(|| OidcError::UnknownKey(kid.to_string()))
    }

    async fn fetch(&self, cfg: &OidcToml) -> Result<JwkSet, OidcError> {
        let jwks_uri = match &cfg.jwks_uri {
            Some(u) => u.clone(),
            None => {
                let url = format!("{}/.well-known/openid-configuration", cfg.issuer.trim_end_matches('/'));
                let doc: Value = self.get_json(&url).await?;
                doc.get("jwks_uri")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| OidcError::Fetch(format!("{url}: no jwks_uri")))?
            }
        };
        let set: Value = self.get_json(&jwks_uri).await?;
        serde_json::from_value(set).map_err(|e| OidcError::Fetch(format!("{jwks_uri}: {e}")))
    }

    async fn get_json(&self, url: &str) -> Result<Value, OidcError> {
        let resp = self.http.get(url).send().await.map_err(|e| OidcError::Fetch(format!("{url}: {e}")))?;
        if !resp.status().is_success() {
            return Err(OidcError::Fetch(format!("{url}: HTTP {}", resp.status())));
        }
        resp.json::<Value>().await.map_err(|e| OidcError::Fetch(format!("{url}: {e}")))
    }

    /// The discovery document of an issuer (browser sign-in needs its endpoints).
    pub async fn discovery(&self, issuer: &str) -> Result<Value, OidcError> {
        self.get_json(&format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'))).await
    }
}

fn claim_str(claims: &Value, k: &str) -> Option<String> {
    match claims.get(k)? {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Fills the identity template (`user:{email}`, `service:github:{repository}`).
pub fn identity_from(cfg: &OidcToml, claims: &Value) -> Result<Identity, OidcError> {
    let mut out = String::new();
    let mut rest = cfg.identity.as_str();
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').ok_or_else(|| OidcError::Identity("unclosed { in template".into()))? + start;
        let name = &rest[start + 1..end];
        let value = claim_str(claims, name).ok_or_else(|| OidcError::Identity(format!("no claim {name:?}")))?;
        if name == "email" && !cfg.allow_unverified_email && claims.get("email_verified") != Some(&Value::Bool(true)) {
            return Err(OidcError::Identity("email is not verified".into()));
        }
        out.push_str(&value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Identity::parse(&out).map_err(OidcError::Identity)
}
