//! Bot bootstrap tokens (`GetToken`, used as `?tok=` on `/bot_code`):
//! `<payload>.<mac>`, payload = base64url JSON `{by, exp}`, mac =
//! HMAC-SHA256 under the server's key with a purpose prefix. Valid 1 h.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use muster_core::Time;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

pub const LIFETIME_SECS: i64 = 3600;
const PURPOSE: &[u8] = b"muster bootstrap token v1\0";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Identity that asked for the token.
    pub by: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
}

fn mac(key: &[u8], payload: &str) -> Option<Hmac<Sha256>> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).ok()?;
    m.update(PURPOSE);
    m.update(payload.as_bytes());
    Some(m)
}

/// Issues a token for `creator`, expiring in 1 h; returns it and its expiry.
pub fn issue(key: &[u8], creator: &str, now: Time) -> Option<(String, Time)> {
    let exp = muster_core::time::add_secs(now, LIFETIME_SECS);
    let claims = Claims { by: creator.to_string(), exp: exp.timestamp() };
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).ok()?);
    let sig = URL_SAFE_NO_PAD.encode(mac(key, &payload)?.finalize().into_bytes());
    tracing::info!(creator, "bootstrap token issued");
    Some((format!("{payload}.{sig}"), exp))
}

/// Verifies a token (constant-time MAC check, expiry); returns its claims.
pub fn verify(key: &[u8], token: &str, now: Time) -> Option<Claims> {
    let (payload, sig) = token.split_once('.')?;
    let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
    mac(key, payload)?.verify_slice(&sig).ok()?;
    let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    (claims.exp > now.timestamp()).then_some(claims)
}
