//! End-to-end tests with real processes: `muster server`, `muster bot`
//! processes fetched from /bot_code, real commands.

mod access;
mod bot_auth;
mod bot_bootstrap;
mod bot_groups;
mod cli;
mod common;
mod config;
mod crash;
mod dev;
mod docs;
mod e2e_bot;
mod edge;
mod expiry;
mod idempotency;
mod jobs;
mod lease;
mod login;
mod notifications;
mod ops;
mod output_cap;
mod postgres;
mod power_loss;
mod python_compat;
mod replicas;
mod swarming;
