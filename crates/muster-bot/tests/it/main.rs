//! Integration tests of the bot agent: real child processes, real files, real
//! hooks; the server is replaced by an in-memory [`UpdateSink`] (network only).

mod agent;
mod hooks;
mod host_and_dirs;
mod runner;
mod support;
