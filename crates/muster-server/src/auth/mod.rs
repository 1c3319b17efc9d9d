//! Authentication: bot session tokens ([`session`]), bot access ([`bots`])
//! and the one-time bootstrap exchange ([`bootstrap`]).

pub mod bootstrap;
pub mod bots;
pub mod session;
