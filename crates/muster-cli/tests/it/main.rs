//! Integration tests of muster-cli: flag parsing into the exact wire
//! request, human formatting, golden JSON outputs, and the pRPC client and
//! verbs over real HTTP on 127.0.0.1.

mod fixtures;
mod format;
mod golden;
mod parse;
mod rpc;
mod swarming;
