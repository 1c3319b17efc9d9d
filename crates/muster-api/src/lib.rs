//! muster-api: wire types only.
//!
//! Owns: the Swarming bot protocol JSON ([`bot`]). Shared by server, bot and CLI.
//! Must not: depend on axum, SQL, or the scheduler.

pub mod bot;
pub mod trailer;
