//! Every page, in a realistic small fleet, at 1440x900 and on a 390x844
//! phone, light and dark: a screenshot of each (in `$CARGO_TARGET_DIR/ui-shots/`),
//! no horizontal scroll anywhere, and an accessibility check (axe-core, the
//! checker browsers' own audits use, fetched from the npm registry at test
//! time into the target dir) with no serious or critical violations.

use crate::webdriver::{shots_dir, Browser};
use crate::{bot, task};
use anyhow::{bail, Context};
use muster_testkit::{wait_for, FakeClock, TestServer, PATIENCE};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// axe-core's browser build, fetched once per target dir with `npm pack`.
fn axe_source() -> anyhow::Result<String> {
    let dir = shots_dir().parent().map(|p| p.join("axe-core")).unwrap_or_else(|| PathBuf::from("axe-core"));
    let js = dir.join("package").join("axe.min.js");
    if !js.is_file() {
        std::fs::create_dir_all(&dir)?;
        let out = std::process::Command::new("npm")
            .args(["pack", "axe-core@4", "--silent"])
            .current_dir(&dir)
            .output()
            .context("running npm (the accessibility check fetches axe-core with `npm pack`)")?;
        if !out.status.success() {
            bail!("npm pack axe-core failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let tgz = String::from_utf8_lossy(&out.stdout).trim().lines().last().unwrap_or_default().to_string();
        let st =
            std::process::Command::new("tar").args(["xzf", &tgz, "package/axe.min.js"]).current_dir(&dir).status()?;
        if !st.success() {
            bail!("unpacking {tgz} failed");
        }
    }
    std::fs::read_to_string(&js).with_context(|| format!("reading {}", js.display()))
}

/// Serious and critical axe violations on the current page, one line each.
async fn axe(b: &Browser, source: &str) -> anyhow::Result<Vec<String>> {
    b.js(&format!("{source}\n;window.__axe = axe; return true;")).await?;
    let v = b
        .js_async(
            "window.__axe.run(document, {resultTypes: ['violations']}).then((r) => done(r.violations \
               .filter((v) => v.impact === 'serious' || v.impact === 'critical') \
               .map((v) => v.id + ' (' + v.impact + '): ' + v.help + ' @ ' + \
                 v.nodes.slice(0, 3).map((n) => n.target.join(' ') + ' ' + (n.failureSummary || '').replace(/\\s+/g, ' ')).join(' | ')))) \
             .catch((e) => done(['axe failed: ' + e]));",
        )
        .await?;
    Ok(v.as_array().map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect()).unwrap_or_default())
}

#[tokio::test]
async fn every_page_fits_a_phone_passes_axe_and_is_photographed_light_and_dark() -> anyhow::Result<()> {
    let clock = Arc::new(FakeClock::new());
    let cfg = muster_sched::SchedConfig {
        long_poll: Duration::from_secs(1),
        bot_death_timeout: Duration::from_secs(60),
        ..Default::default()
    };
    let srv = TestServer::start_with(clock.clone(), cfg).await?;

    // A bot that dies while running a task.
    let mut doomed = bot(&srv, "build-linux-07", "ci", &[("os", &["Linux", "Linux-Debian-12"])]).await?;
    let died = task(&srv, "integration tests (shard 3 of 8)", "ci", &["purpose:nightly", "branch:main"]).await?;
    doomed.poll_until_run(5).await?;
    clock.advance(Duration::from_secs(120));
    let store = srv.store.clone();
    let died_id = muster_core::TaskId::parse(&died)?;
    wait_for("the task to be BOT_DIED", PATIENCE, || {
        let store = store.clone();
        async move {
            let r = store.get_result(died_id).await?;
            Ok(r.filter(|r| r.state == muster_core::TaskState::BotDied).map(|_| ()))
        }
    })
    .await?;

    // The live fleet.
    let mut busy =
        bot(&srv, "build-linux-01", "ci", &[("os", &["Linux", "Linux-Debian-12"]), ("cpu", &["x86-64"])]).await?;
    let mut fails = bot(&srv, "build-linux-02", "ci", &[("os", &["Linux"]), ("cpu", &["x86-64"])]).await?;
    let _mac = bot(&srv, "build-mac-01", "ci", &[("os", &["Mac", "Mac-14"]), ("cpu", &["arm64"])]).await?;
    let _gpu = bot(&srv, "gpu-01", "gpu", &[("os", &["Linux"]), ("gpu", &["nvidia"])]).await?;
    let failed = task(&srv, "compile (debug)", "ci", &["purpose:presubmit", "cl:4242"]).await?;
    let run = fails.poll_until_run(5).await?["task_id"].as_str().unwrap_or_default().to_string();
    fails
        .output(
            &run,
            0,
            b"checking out...\n[1/3] compiling\r[2/3] compiling\r[3/3] compiling\n\x1b[31merror: expected `;`\x1b[0m\n",
        )
        .await?;
    fails.complete(&run, 1, 42.0).await?;
    let running = task(&srv, "unit tests", "ci", &["purpose:presubmit"]).await?;
    let run = busy.poll_until_run(5).await?["task_id"].as_str().unwrap_or_default().to_string();
    busy.output(
        &run,
        0,
        b"\x1b[32m[ RUN      ]\x1b[0m suite.case_one\n\x1b[32m[       OK ]\x1b[0m suite.case_one (3 ms)\n",
    )
    .await?;
    let _pending = task(&srv, "waits for a gpu", "gpu-missing", &[]).await?;

    let pages: Vec<(&str, String)> = vec![
        ("dashboard", "/".into()),
        ("botlist", "/botlist".into()),
        ("bot", "/bot?id=build-linux-01".into()),
        ("bot-dead", "/bot?id=build-linux-07".into()),
        ("tasklist", "/tasklist".into()),
        ("task-running", format!("/task?id={running}")),
        ("task-failed", format!("/task?id={failed}")),
        ("task-bot-died", format!("/task?id={died}")),
        ("newtask", "/newtask".into()),
        ("jobs", "/jobs".into()),
    ];
    let source = axe_source()?;
    let b = Browser::start().await?;
    let mut problems = Vec::new();
    for dark in [false, true] {
        b.set_dark(dark).await?;
        let scheme = if dark { "dark" } else { "light" };
        for (w, h) in [(1440, 900), (390, 844)] {
            b.set_viewport(w, h).await?;
            for (name, path) in &pages {
                b.goto(&format!("{}{path}", srv.url)).await?;
                b.wait_for(
                    "the page",
                    "return document.readyState === 'complete' && !!document.querySelector('main');",
                )
                .await?;
                let shot = b.screenshot(&format!("{name}-{w}x{h}-{scheme}")).await?;
                let v = b.js("return [document.documentElement.scrollWidth, window.innerWidth];").await?;
                let (sw, iw) = (v[0].as_i64().unwrap_or(0), v[1].as_i64().unwrap_or(0));
                if sw > iw {
                    let wide = b
                        .js("return Array.from(document.querySelectorAll('body *')).filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1).slice(0, 5).map((e) => e.tagName + '#' + e.id + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right));")
                        .await?;
                    problems.push(format!("{path} at {w}x{h} {scheme}: page is {sw}px wide, screen {iw}px: {wide}"));
                }
                if w == 1440 {
                    for v in axe(&b, &source).await? {
                        problems.push(format!("{path} {scheme}: {v}"));
                    }
                }
                eprintln!("screenshot: {}", shot.display());
            }
        }
    }
    b.close().await;
    srv.stop().await;
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
    Ok(())
}
