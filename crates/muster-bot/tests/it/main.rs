//! Integration tests of the bot agent: real child processes, real files, real
//! hooks; the server is replaced by an in-memory [`UpdateSink`] or by scripted
//! HTTP servers on 127.0.0.1:0 (network only).

mod agent;
mod hooks;
mod host_and_dirs;
mod remote;
mod runner;
mod support;
