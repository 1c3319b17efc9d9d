//! HMAC-SHA256 bot session tokens (docs/bot-protocol.md#sessions).
//!
//! A token binds a bot id and a session id to an expiry, and records the
//! version of the bot group's config the bot got at handshake:
//! `base64url(bot_id \n session_id \n expiry_unix_secs \n cfg) "." hex(hmac)`
//! (tokens of older servers have no `cfg` line; they never count as stale).
//! The bot treats it as opaque and echoes it; every reply carries a fresh
//! one, so an active bot never expires while a stolen token does.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use muster_core::Time;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub bot_id: String,
    pub session_id: String,
    pub expiry: i64,
    /// The group config version given at handshake (empty: unknown).
    pub cfg: String,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("no session token")]
    Missing,
    #[error("malformed session token")]
    Malformed,
    #[error("session token signature mismatch")]
    BadSignature,
    #[error("session expired")]
    Expired,
    #[error("session token belongs to another bot")]
    WrongBot,
}

#[derive(Clone)]
pub struct SessionKey {
    key: Vec<u8>,
}

impl SessionKey {
    pub fn new(key: Vec<u8>) -> SessionKey {
        SessionKey { key }
    }

    fn tag(&self, payload: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length; new_from_slice cannot fail here.
        match HmacSha256::new_from_slice(&self.key) {
            Ok(mut m) => {
                m.update(payload);
                m.finalize().into_bytes().to_vec()
            }
            Err(_) => Vec::new(),
        }
    }

    /// A key for another purpose (`label`), derived from this one: what it
    /// signs cannot pass as a session token, nor the reverse.
    pub fn derive(&self, label: &str) -> SessionKey {
        SessionKey { key: self.tag(format!("muster derived key\n{label}").as_bytes()) }
    }

    /// The HMAC-SHA256 of `payload`.
    pub fn sign(&self, payload: &[u8]) -> Vec<u8> {
        self.tag(payload)
    }

    /// Whether `tag` is the HMAC of `payload` (compared in constant time).
    pub fn verify_sig(&self, payload: &[u8], tag: &[u8]) -> bool {
        match HmacSha256::new_from_slice(&self.key) {
            Ok(mut m) => {
                m.update(payload);
                m.verify_slice(tag).is_ok()
            }
            Err(_) => false,
        }
    }

    /// Issues a token valid until `expiry` (unix seconds).
    pub fn issue(&self, bot_id: &str, session_id: &str, expiry: i64, cfg: &str) -> String {
        let payload = format!("{bot_id}\n{session_id}\n{expiry}\n{cfg}");
        format!("{}.{}", URL_SAFE_NO_PAD.encode(payload.as_bytes()), hex::encode(self.tag(payload.as_bytes())))
    }

    /// Verifies signature, expiry and (if given) the bot it belongs to.
    pub fn verify(&self, token: Option<&str>, bot_id: Option<&str>, now: Time) -> Result<Session, SessionError> {
        let token = token.filter(|t| !t.is_empty()).ok_or(SessionError::Missing)?;
        let (p, t) = token.split_once('.').ok_or(SessionError::Malformed)?;
        let payload = URL_SAFE_NO_PAD.decode(p).map_err(|_| SessionError::Malformed)?;
        let tag = hex::decode(t).map_err(|_| SessionError::Malformed)?;
        let mut m = HmacSha256::new_from_slice(&self.key).map_err(|_| SessionError::Malformed)?;
        m.update(&payload);
        m.verify_slice(&tag).map_err(|_| SessionError::BadSignature)?;
        let text = String::from_utf8(payload).map_err(|_| SessionError::Malformed)?;
        let mut parts = text.splitn(4, '\n');
        let (Some(b), Some(s), Some(e)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(SessionError::Malformed);
        };
        let cfg = parts.next().unwrap_or("").to_string();
        let expiry: i64 = e.parse().map_err(|_| SessionError::Malformed)?;
        if let Some(want) = bot_id {
            if want != b {
                return Err(SessionError::WrongBot);
            }
        }
        if expiry <= now.timestamp() {
            return Err(SessionError::Expired);
        }
        Ok(Session { bot_id: b.to_string(), session_id: s.to_string(), expiry, cfg })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> Time {
        chrono::Utc.with_ymd_and_hms(2044, 1, 1, 0, 0, 0).single().expect("valid")
    }

    #[test]
    fn a_token_verifies_for_its_bot_until_it_expires() {
        let k = SessionKey::new(b"secret".to_vec());
        let t = k.issue("bot1", "s1", now().timestamp() + 60, "c1");
        assert_eq!(k.verify(Some(&t), Some("bot1"), now()).map(|s| s.session_id), Ok("s1".to_string()));
        assert_eq!(k.verify(Some(&t), Some("bot1"), now()).map(|s| s.cfg), Ok("c1".to_string()));
        assert_eq!(k.verify(Some(&t), Some("bot2"), now()), Err(SessionError::WrongBot));
        // A token of an older server (no config line) still verifies.
        let payload = format!("bot1\ns1\n{}", now().timestamp() + 60);
        let old = format!("{}.{}", URL_SAFE_NO_PAD.encode(&payload), hex::encode(k.sign(payload.as_bytes())));
        assert_eq!(k.verify(Some(&old), Some("bot1"), now()).map(|s| s.cfg), Ok(String::new()));
        let later = now() + chrono::Duration::seconds(61);
        assert_eq!(k.verify(Some(&t), Some("bot1"), later), Err(SessionError::Expired));
    }

    #[test]
    fn a_forged_or_foreign_token_is_refused() {
        let k = SessionKey::new(b"secret".to_vec());
        let other = SessionKey::new(b"other".to_vec());
        let t = other.issue("bot1", "s1", now().timestamp() + 60, "");
        assert_eq!(k.verify(Some(&t), Some("bot1"), now()), Err(SessionError::BadSignature));
        let good = k.issue("bot1", "s1", now().timestamp() + 60, "c1");
        let (p, sig) = good.split_once('.').expect("has dot");
        let forged_payload = URL_SAFE_NO_PAD.encode(b"bot2\ns1\n99999999999");
        assert_eq!(k.verify(Some(&format!("{forged_payload}.{sig}")), None, now()), Err(SessionError::BadSignature));
        assert_eq!(k.verify(Some(p), None, now()), Err(SessionError::Malformed));
        assert_eq!(k.verify(None, None, now()), Err(SessionError::Missing));
        assert_eq!(k.verify(Some("garbage.zz"), None, now()), Err(SessionError::Malformed));
    }
}
