//! Identities in upstream syntax: `kind:value`.

use std::fmt;

/// A caller's identity: `user:<email>`, `bot:<id>`, `project:<name>`,
/// `service:<name>` or `anonymous:anonymous`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identity(String);

pub const ANONYMOUS: &str = "anonymous:anonymous";

impl Identity {
    /// Parses and checks the syntax.
    pub fn parse(s: &str) -> Result<Identity, String> {
        if muster_config::snapshot::identity_ok(s) {
            Ok(Identity(s.to_string()))
        } else {
            Err(format!("{s:?} is not an identity (expected user:<email>, bot:<id>, project:<name> or service:<name>)"))
        }
    }

    pub fn anonymous() -> Identity {
        Identity(ANONYMOUS.to_string())
    }

    pub fn is_anonymous(&self) -> bool {
        self.0 == ANONYMOUS
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn kind(&self) -> &str {
        self.0.split_once(':').map(|(k, _)| k).unwrap_or("")
    }

    /// The part after `kind:`.
    pub fn value(&self) -> &str {
        self.0.split_once(':').map(|(_, v)| v).unwrap_or("")
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
