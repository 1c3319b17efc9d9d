//! Authentication: bot session tokens ([`session`]) and bot access ([`bots`]).

pub mod bots;
pub mod session;
