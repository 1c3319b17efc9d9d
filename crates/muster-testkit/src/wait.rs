//! Every wait in muster's tests goes through here: a deadline and a message
//! saying what never happened, so a lost wake-up fails in seconds with a
//! reason instead of hanging the test run.

use anyhow::{anyhow, bail};
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// How long a test waits for something that should happen "soon" (a task
/// to start, an announcement to arrive, a bot to connect) before failing.
/// Generous for a loaded 2-core CI machine, far below the per-test timeout.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Calls `probe` until it returns `Some`, pausing briefly between calls.
/// Fails with "timed out after …: <what>" once `limit` has passed, or with
/// the first error `probe` returns.
pub async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(5);
    loop {
        if let Some(v) = probe().await? {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// Like [`wait_for`] for a condition that is read without IO.
pub async fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) -> anyhow::Result<()> {
    wait_for(what, limit, || {
        let ok = cond();
        async move { Ok(ok.then_some(())) }
    })
    .await
}

/// Awaits `fut`, failing with `what` if it has not finished within `limit`.
pub async fn within<F: Future>(what: &str, limit: Duration, fut: F) -> anyhow::Result<F::Output> {
    tokio::time::timeout(limit, fut).await.map_err(|_| anyhow!("timed out after {limit:?} waiting for {what}"))
}
