//! muster-testkit: what tests share (dev-dependency only).
//!
//! - [`FakeClock`]: a settable clock pinned far in the future (2044).
//! - [`TestServer`]: a real server in-process on 127.0.0.1:0 with a real
//!   SQLite file in a temp dir.
//! - [`ServerProcess`]: a real `muster server` child process (for kill -9).
//! - [`TestBot`]: a protocol-level bot speaking the Swarming bot API over HTTP.
//! - [`Prpc`]: a small swarming.v2 pRPC JSON client.
//! - [`TempPostgres`]: a throwaway PostgreSQL server in a temp dir.
//! - [`wait_for`], [`wait_until`], [`within`]: the one way tests wait, always
//!   with a deadline and a message.
//! - [`OidcIssuer`]: a real local OIDC issuer (discovery + JWKS over HTTP,
//!   RS256/ES256 ID tokens, key rotation).

mod bot;
mod clock;
mod cookies;
mod oidc;
mod pg;
mod prpc;
mod receiver;
mod server;
mod tls;
mod wait;

pub use bot::TestBot;
pub use clock::FakeClock;
pub use cookies::{csrf_cookie, set_cookie};
pub use oidc::OidcIssuer;
pub use pg::TempPostgres;
pub use prpc::Prpc;
pub use receiver::{Received, Receiver, Reply};
pub use server::{ServerProcess, TestServer};
pub use tls::TestCa;
pub use wait::{wait_for, wait_until, within, PATIENCE};
