//! Bot credentials as strings: per-machine tokens `msm_<id>_<secret>` and
//! the SHA-256 digests kept at rest instead of any secret.

use rand::Rng as _;
use sha2::{Digest as _, Sha256};

/// Prefix of every machine token.
pub const MACHINE_PREFIX: &str = "msm_";

/// Lowercase hex SHA-256 of `secret`: what is stored instead of the secret.
pub fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A freshly generated machine token.
pub struct NewMachineToken {
    /// Public id (shown in listings, used to revoke).
    pub id: String,
    /// The whole token `msm_<id>_<secret>`, printed once and never stored.
    pub token: String,
    /// SHA-256 of the secret part: what the store keeps.
    pub secret_sha256: String,
}

/// Generates a new machine token.
pub fn new_machine_token() -> NewMachineToken {
    let mut rng = rand::rng();
    let id = hex::encode(rng.random::<[u8; 6]>());
    let secret = hex::encode(rng.random::<[u8; 24]>());
    NewMachineToken { token: format!("{MACHINE_PREFIX}{id}_{secret}"), secret_sha256: sha256_hex(&secret), id }
}

/// Splits `msm_<id>_<secret>` into (id, secret); None if it is not one.
pub fn parse_machine_token(s: &str) -> Option<(&str, &str)> {
    let rest = s.strip_prefix(MACHINE_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let hexish = |x: &str| !x.is_empty() && x.len() <= 128 && x.bytes().all(|b| b.is_ascii_hexdigit());
    (hexish(id) && hexish(secret)).then_some((id, secret))
}

/// Whether a bound host name covers the bot's host id: equal, or a fully
/// qualified name starting with `<host id>.`.
pub fn host_matches(bound: &str, host_id: &str) -> bool {
    bound == host_id || bound.strip_prefix(host_id).is_some_and(|rest| rest.starts_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_tokens_round_trip_and_hash() {
        let t = new_machine_token();
        let (id, secret) = parse_machine_token(&t.token).expect("parses");
        assert_eq!(id, t.id);
        assert_eq!(sha256_hex(secret), t.secret_sha256);
        assert!(!t.secret_sha256.contains(secret));
        assert!(parse_machine_token("msm_zz_00").is_none());
        assert!(parse_machine_token("Bearer x").is_none());
    }

    #[test]
    fn bound_hosts_cover_fqdns_only() {
        assert!(host_matches("vm12", "vm12"));
        assert!(host_matches("vm12.lab.example", "vm12"));
        assert!(!host_matches("vm123", "vm12"));
        assert!(!host_matches("vm1", "vm12"));
    }
}
