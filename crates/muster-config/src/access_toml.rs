//! `access.toml`: muster's own file for groups, identity providers, the
//! trusted proxy, IP allowlists and small-install pool shorthand. Unknown
//! keys are errors (a typo must never silently grant or drop access).

use crate::error::ConfigError;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AccessToml {
    #[serde(default)]
    pub groups: BTreeMap<String, GroupToml>,
    #[serde(default)]
    pub ip_allowlists: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub oidc: Vec<OidcToml>,
    #[serde(default)]
    pub proxy: Option<ProxyToml>,
    #[serde(default)]
    pub pool: Vec<PoolToml>,
    #[serde(default)]
    pub tokens: TokensToml,
    /// Bot group credentials (`[[bot_auth]]`), interpreted by the bot side.
    #[serde(default)]
    pub bot_auth: Vec<BotAuthToml>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GroupToml {
    /// Identities (`user:a@b.c`, `service:ci`, …).
    #[serde(default)]
    pub members: Vec<String>,
    /// Identity globs (`user:*@example.com`).
    #[serde(default)]
    pub globs: Vec<String>,
    /// Names of other groups whose members belong to this one.
    #[serde(default)]
    pub nested: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OidcToml {
    pub issuer: String,
    pub audiences: Vec<String>,
    /// JWKS address; discovered from `<issuer>/.well-known/openid-configuration` when absent.
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// Enables browser sign-in through this issuer.
    #[serde(default)]
    pub client_id: Option<String>,
    /// File holding the client secret (confidential clients; PKCE is always used).
    #[serde(default)]
    pub client_secret_file: Option<String>,
    /// Where the issuer sends the browser back after sign-in: a path under
    /// `/ui/signin/` on this server's external URL (register
    /// `<external-url><redirect_path>` with the issuer).
    #[serde(default = "default_redirect_path")]
    pub redirect_path: String,
    /// Scopes asked for at browser sign-in and `muster login`.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// Identity template, e.g. `user:{email}` or `service:github:{repository}`.
    #[serde(default = "default_identity")]
    pub identity: String,
    /// Claims that must have exactly these values.
    #[serde(default)]
    pub require: BTreeMap<String, String>,
    /// Accept `{email}` without `email_verified = true`.
    #[serde(default)]
    pub allow_unverified_email: bool,
}

/// The default sign-in callback path.
pub const DEFAULT_REDIRECT_PATH: &str = "/ui/signin/callback";

fn default_redirect_path() -> String {
    DEFAULT_REDIRECT_PATH.to_string()
}

fn default_scopes() -> Vec<String> {
    ["openid", "email", "profile"].iter().map(|s| s.to_string()).collect()
}

impl OidcToml {
    /// An issuer entry for ID tokens of `issuer` with these audiences and
    /// defaults for everything else.
    pub fn new(issuer: &str, audiences: Vec<String>) -> OidcToml {
        OidcToml {
            issuer: issuer.to_string(),
            audiences,
            jwks_uri: None,
            client_id: None,
            client_secret_file: None,
            redirect_path: default_redirect_path(),
            scopes: default_scopes(),
            identity: default_identity(),
            require: BTreeMap::new(),
            allow_unverified_email: false,
        }
    }
}

fn default_identity() -> String {
    "user:{email}".to_string()
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProxyToml {
    pub header: String,
    pub trusted_cidrs: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PoolToml {
    pub name: String,
    #[serde(default)]
    pub owners: Vec<String>,
    #[serde(default)]
    pub submitters: Vec<String>,
    #[serde(default)]
    pub viewers: Vec<String>,
    /// Realm name within the default project; `pool/<name>` when absent.
    #[serde(default)]
    pub realm: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TokensToml {
    #[serde(default = "default_max_lifetime_days")]
    pub max_lifetime_days: u32,
}

impl Default for TokensToml {
    fn default() -> Self {
        TokensToml { max_lifetime_days: default_max_lifetime_days() }
    }
}

fn default_max_lifetime_days() -> u32 {
    90
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BotAuthToml {
    pub group: String,
    #[serde(default)]
    pub token_sha256: Vec<String>,
    #[serde(default)]
    pub token_file: Option<String>,
    #[serde(default)]
    pub ip_allowlist: Option<String>,
}

/// Parses `access.toml` text; syntax and unknown keys are reported at their position.
pub fn parse(file: &str, text: &str) -> Result<AccessToml, ConfigError> {
    toml::from_str::<AccessToml>(text).map_err(|e| {
        let msg = e.message().trim().to_string();
        match e.span() {
            Some(span) => ConfigError::at(file, text, span.start, msg),
            None => ConfigError::file(file, msg),
        }
    })
}
