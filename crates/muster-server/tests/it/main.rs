//! End-to-end tests of muster-server: a real server on 127.0.0.1:0 with a
//! real SQLite file, driven over HTTP by a protocol-level bot and pRPC.

mod access;
mod bot_api;
mod bot_groups;
mod conformance;
mod edge;
mod flow;
mod health;
mod ops;
mod prpc;
mod python_bot;
mod retention;
