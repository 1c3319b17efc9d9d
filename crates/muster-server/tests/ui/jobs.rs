//! The jobs pages in headless Chromium: trigger, pause, resume and abort by
//! their buttons, each acting on the real engine behind the page.

use crate::webdriver::Browser;
use muster_core::time::SystemClock;
use muster_sched::SchedConfig;
use muster_testkit::{wait_for, TestServer, PATIENCE};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

const JOBS: &str = r#"
project = "web"

[[job]]
id = "manual"
[job.noop]

[[job]]
id = "slow"
[job.noop]
sleep = "10m"
"#;

/// Reloads `url` until `script` (returning a boolean) holds.
async fn reload_until(b: &Browser, url: &str, what: &str, script: &str) -> anyhow::Result<()> {
    wait_for(what, PATIENCE, || async {
        b.goto(url).await?;
        Ok((b.js(script).await? == Value::Bool(true)).then_some(()))
    })
    .await
}

fn has(css: &str) -> String {
    format!("return !!document.querySelector({css:?});")
}

#[tokio::test]
async fn a_job_is_triggered_paused_resumed_and_aborted_from_its_page() -> anyhow::Result<()> {
    let config = tempfile::tempdir()?;
    std::fs::write(config.path().join("jobs.toml"), JOBS)?;
    let dir = config.path().to_path_buf();
    let cfg = SchedConfig { long_poll: Duration::from_secs(1), ..Default::default() };
    let srv = TestServer::start_configured(Arc::new(SystemClock), cfg, move |c| {
        c.jobs.config_dir = Some(dir);
        c.jobs.reload_interval = Duration::from_millis(200);
    })
    .await?;
    let b = Browser::start().await?;
    let manual = format!("{}/jobs/web/manual", srv.url);
    reload_until(&b, &format!("{}/jobs", srv.url), "the job list", &has("a[href='/jobs/web/manual']")).await?;
    b.screenshot("jobs").await?;

    // Trigger: a run appears and succeeds.
    b.goto(&manual).await?;
    b.click("#trigger").await?;
    reload_until(&b, &manual, "a SUCCEEDED run", &has(".badge[data-status='SUCCEEDED']")).await?;

    // Pause with a reason: the page says who and why, Trigger is gone.
    b.type_into("input[name='reason']", "browser test").await?;
    b.click("#pause").await?;
    reload_until(&b, &manual, "the paused note", &has("p.paused")).await?;
    assert!(b.text("p.paused").await?.contains("browser test"));
    assert_eq!(b.js(&has("#trigger")).await?, Value::Bool(false), "a paused job offers no Trigger");
    b.screenshot("job-paused").await?;

    // Resume: Trigger is back.
    b.click("#resume").await?;
    reload_until(&b, &manual, "Trigger back after resume", &has("#trigger")).await?;

    // Abort a running invocation of the slow job.
    let slow = format!("{}/jobs/web/slow", srv.url);
    b.goto(&slow).await?;
    b.click("#trigger").await?;
    reload_until(&b, &slow, "the abort button of a running run", &has("#abort")).await?;
    b.click("#abort").await?;
    reload_until(&b, &slow, "an ABORTED run", &has(".badge[data-status='ABORTED']")).await?;
    b.close().await;
    srv.stop().await;
    Ok(())
}
