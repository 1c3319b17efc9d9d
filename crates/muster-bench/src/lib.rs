//! muster-bench: the load generator behind `muster bench` (issue #7).

/// `muster bench` arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {}

/// Runs the benchmark described by `args`.
pub fn main(_args: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("muster bench: no scenario implemented yet")
}
