//! Client verbs (trigger, collect, run, tasks, bots, ...): muster-cli.

use clap::Subcommand;
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub(crate) enum ClientCommand {}

pub(crate) fn main(c: ClientCommand) -> ExitCode {
    match c {}
}
