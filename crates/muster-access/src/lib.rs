//! muster-access: who is calling, and may they do this?
//!
//! Owns: identities ([`identity`]), API tokens ([`token`]: format, hashing,
//! issue/list/revoke over the store), OIDC ID-token verification against the
//! issuer's JWKS ([`oidc`]), request authentication ([`authn`]: bearer
//! token, OIDC, trusted proxy, anonymous), bootstrap tokens for `/bot_code`
//! ([`bootstrap`]), browser sign-in (OIDC code + PKCE) and UI sessions
//! ([`browser`]), and the permission checker ([`checker`]) that applies
//! server-level groups, pool realms, task realms and bot pools the way
//! upstream Swarming does. Groups and realms come compiled from a
//! muster-config [`Snapshot`](muster_config::Snapshot).
//! Must not: know HTTP frameworks or wire formats (it sees `http::HeaderMap`
//! only), or SQL (tokens go through muster-store).
//!
//! The model in prose: `docs/access-control.md`.

pub mod authn;
pub mod bootstrap;
pub mod browser;
pub mod checker;
pub mod identity;
pub mod oidc;
pub mod token;

pub use authn::{AuthMethod, Authenticator, Caller};
pub use checker::Checker;
pub use identity::Identity;
pub use muster_config::roles as perms;
