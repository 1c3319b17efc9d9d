//! Client API tokens: `mst_<id>_<secret>`.
//!
//! `id` is 16 random bytes and `secret` 32 random bytes, both base64url
//! without padding (22 and 43 characters). The store keeps the id, the
//! identity and SHA-256 of the secret, never the secret; a 256-bit random
//! secret makes a plain hash sufficient. Verification compares hashes in
//! constant time.

use crate::identity::Identity;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use muster_core::{Error, Time};
use muster_store::{ApiToken, CommitOutcome, Store, Txn, Write};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const PREFIX: &str = "mst_";
const ID_LEN: usize = 22;
const SECRET_LEN: usize = 43;

/// A freshly issued token: the value to show once and its stored row.
#[derive(Debug, Clone)]
pub struct Issued {
    pub token: String,
    pub row: ApiToken,
}

/// Splits `mst_<id>_<secret>`; None when it is not that shape.
pub fn parse(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(PREFIX)?;
    if rest.len() != ID_LEN + 1 + SECRET_LEN || rest.as_bytes().get(ID_LEN) != Some(&b'_') {
        return None;
    }
    let (id, secret) = (rest.get(..ID_LEN)?, rest.get(ID_LEN + 1..)?);
    let ok = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (ok(id) && ok(secret)).then_some((id, secret))
}

pub fn hash_secret(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Builds a new random token for `identity` (not yet stored).
pub fn generate(
    identity: &Identity,
    description: &str,
    created_by: &Identity,
    now: Time,
    lifetime_secs: i64,
) -> Issued {
    let mut id = [0u8; 16];
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut id);
    rand::rng().fill_bytes(&mut secret);
    let id = URL_SAFE_NO_PAD.encode(id);
    let secret = URL_SAFE_NO_PAD.encode(secret);
    let row = ApiToken {
        id: id.clone(),
        identity: identity.as_str().to_string(),
        secret_sha256: hash_secret(&secret),
        description: description.to_string(),
        created_by: created_by.as_str().to_string(),
        created_at: now,
        expires_at: muster_core::time::add_secs(now, lifetime_secs),
        last_used_at: None,
        revoked_at: None,
    };
    Issued { token: format!("{PREFIX}{id}_{secret}"), row }
}

/// Creates and stores a token. The caller has been authorized already.
pub async fn create(
    store: &dyn Store,
    identity: &Identity,
    description: &str,
    created_by: &Identity,
    now: Time,
    lifetime_secs: i64,
) -> Result<Issued, Error> {
    let issued = generate(identity, description, created_by, now, lifetime_secs);
    match store.commit(Txn::new().with(Write::PutApiToken(Box::new(issued.row.clone())))).await? {
        CommitOutcome::Committed => {
            tracing::info!(token_id = %issued.row.id, identity = %identity, created_by = %created_by, "api token created");
            Ok(issued)
        }
        CommitOutcome::Conflict { .. } => Err(Error::internal("token id collision; try again")),
    }
}

/// Revokes a token (idempotent: revoking a revoked token is fine).
pub async fn revoke(store: &dyn Store, id: &str, by: &Identity, now: Time) -> Result<(), Error> {
    store.commit(Txn::new().with(Write::RevokeApiToken { id: id.to_string(), at: now })).await?;
    tracing::info!(token_id = %id, by = %by, "api token revoked");
    Ok(())
}

/// Why a presented token was refused (all map to UNAUTHENTICATED).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed API token")]
    Malformed,
    #[error("unknown API token")]
    Unknown,
    #[error("API token was revoked")]
    Revoked,
    #[error("API token expired")]
    Expired,
}

/// Checks a presented token against its stored row.
pub fn check(row: Option<&ApiToken>, secret: &str, now: Time) -> Result<Identity, TokenError> {
    let row = row.ok_or(TokenError::Unknown)?;
    let presented = hash_secret(secret);
    if !bool::from(presented.ct_eq(&row.secret_sha256)) {
        return Err(TokenError::Unknown);
    }
    if row.revoked_at.is_some() {
        return Err(TokenError::Revoked);
    }
    if row.expires_at <= now {
        return Err(TokenError::Expired);
    }
    Identity::parse(&row.identity).map_err(|_| TokenError::Unknown)
}
