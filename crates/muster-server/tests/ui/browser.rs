//! Real headless Chromium against a real server with protocol-level bots.
//! These fail (never skip) when chromium is missing.

use crate::webdriver::Browser;
use crate::{bot, task};
use muster_testkit::TestServer;
use serde_json::Value;

/// The number in a `data-count` box of the current page.
async fn count(b: &Browser, key: &str) -> anyhow::Result<i64> {
    let v = b
        .js(&format!(
            "const e = document.querySelector('[data-count=\"{key}\"] .n'); return e ? parseInt(e.textContent, 10) : -1;"
        ))
        .await?;
    Ok(v.as_i64().unwrap_or(-1))
}

async fn rows(b: &Browser, css: &str) -> anyhow::Result<Vec<String>> {
    let v = b
        .js(&format!(
            "return Array.from(document.querySelectorAll('{css}')).map(r => r.getAttribute('data-bot') || r.getAttribute('data-task'));"
        ))
        .await?;
    Ok(v.as_array().map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect()).unwrap_or_default())
}

#[tokio::test]
async fn the_fleet_page_filters_by_a_dimension_picked_from_autocomplete() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    bot(&srv, "linux-1", "ci", &[("os", &["Linux", "Linux-Debian"]), ("cpu", &["x86-64"])]).await?;
    bot(&srv, "linux-2", "ci", &[("os", &["Linux"]), ("cpu", &["arm64"])]).await?;
    bot(&srv, "win-1", "ci", &[("os", &["Windows"]), ("cpu", &["x86-64"])]).await?;
    let b = Browser::start().await?;
    b.goto(&format!("{}/botlist", srv.url)).await?;
    assert_eq!(rows(&b, "tr.bot").await?, vec!["linux-1", "linux-2", "win-1"]);
    assert_eq!(count(&b, "all").await?, 3);
    b.screenshot("botlist").await?;

    b.type_into("#filter", "os:Lin").await?;
    b.wait_for(
        "suggestions",
        "return Array.from(document.querySelectorAll('.suggest li')).some(li => li.textContent === 'os:Linux');",
    )
    .await?;
    b.screenshot("botlist-autocomplete").await?;
    b.js("const li = Array.from(document.querySelectorAll('.suggest li')).find(li => li.textContent === 'os:Linux'); \
          li.dispatchEvent(new MouseEvent('mousedown', {bubbles: true}));")
        .await?;
    let v = b.js("return document.getElementById('filter').value;").await?;
    assert_eq!(v, Value::String("os:Linux ".into()), "the suggestion completes the token");
    b.click("#apply").await?;
    b.wait_for("the filtered list", "return location.search.includes('f=os%3ALinux');").await?;
    assert_eq!(rows(&b, "tr.bot").await?, vec!["linux-1", "linux-2"]);
    assert_eq!(count(&b, "all").await?, 2);
    b.screenshot("botlist-filtered").await?;

    b.click("tr.bot[data-bot='linux-1'] a").await?;
    b.wait_for("the bot page", "return !!document.getElementById('bot-id');").await?;
    assert_eq!(b.text("#bot-id").await?, "linux-1");
    assert!(b.text("#dimensions").await?.contains("Linux-Debian"));
    b.screenshot("bot").await?;
    b.close().await;
    srv.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_running_task_page_shows_new_output_without_reloading() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let mut runner = bot(&srv, "runner", "live", &[("os", &["Linux"])]).await?;
    let id = task(&srv, "streaming", "live", &[]).await?;
    let run_id = runner.poll_until_run(5).await?["task_id"].as_str().unwrap_or_default().to_string();
    let first = b"building...\n\x1b[31merror: not really\x1b[0m\n";
    runner.output(&run_id, 0, first).await?;

    let b = Browser::start().await?;
    b.goto(&format!("{}/task?id={id}", srv.url)).await?;
    assert!(b.text("#output").await?.contains("building..."));
    assert_eq!(b.text("#output span.fg1").await?, "error: not really");
    b.js("window.__sameDocument = 'yes'; return true;").await?;

    // The bot streams more output (with a color cut across two packets).
    let second = b"step 2: \x1b[1;3";
    runner.output(&run_id, first.len() as u64, second).await?;
    let third = b"2mgreen and bold\x1b[0m\nstep 3: done\n";
    runner.output(&run_id, (first.len() + second.len()) as u64, third).await?;
    b.wait_for("the streamed output", "return document.getElementById('output').textContent.includes('step 3: done');")
        .await?;
    assert_eq!(b.js("return window.__sameDocument || 'reloaded';").await?, Value::String("yes".into()));
    assert_eq!(b.text("#output span.ab.fg2").await?, "green and bold");
    assert!(!b.text("#output").await?.contains('\u{1b}'), "no raw escapes shown");
    b.screenshot("task-running").await?;

    // Completion: the page notices and shows the final state.
    runner.complete(&run_id, 0, 1.5).await?;
    b.wait_for(
        "the final state",
        "const s = document.querySelector('#task-state .badge'); return !!s && s.dataset.state === 'COMPLETED';",
    )
    .await?;
    assert!(b.text("#result").await?.contains("runner"));
    b.screenshot("task-completed").await?;
    b.close().await;
    srv.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_pending_task_is_canceled_from_its_page_and_the_counts_change() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let _idle = bot(&srv, "idle-bot", "cancel", &[]).await?;
    let id = task(&srv, "doomed", "cancel", &[]).await?;
    let b = Browser::start().await?;
    b.goto(&format!("{}/tasklist", srv.url)).await?;
    assert_eq!((count(&b, "pending").await?, count(&b, "canceled").await?), (1, 0));
    b.screenshot("tasklist").await?;

    b.click(&format!("tr.task[data-task='{id}'] a")).await?;
    b.wait_for("the task page", "return !!document.getElementById('cancel');").await?;
    b.screenshot("task-pending").await?;
    b.click("#cancel").await?;
    let question = b.accept_dialog().await?;
    assert!(question.contains("Cancel"), "{question}");
    b.wait_for(
        "the canceled state",
        "const s = document.querySelector('#task-state .badge'); return !!s && s.dataset.state === 'CANCELED';",
    )
    .await?;
    assert_eq!(srv.prpc().result(&id).await?["state"], "CANCELED");
    b.screenshot("task-canceled").await?;

    b.goto(&format!("{}/tasklist", srv.url)).await?;
    assert_eq!((count(&b, "pending").await?, count(&b, "canceled").await?), (0, 1));
    b.screenshot("tasklist-after-cancel").await?;
    b.close().await;
    srv.stop().await;
    Ok(())
}

#[tokio::test]
async fn the_dashboard_and_the_new_task_form_work_in_a_browser() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let mut busy = bot(&srv, "dash-busy", "ci", &[("os", &["Linux"])]).await?;
    let _idle = bot(&srv, "dash-idle", "ci", &[("os", &["Linux"])]).await?;
    let _gpu = bot(&srv, "dash-gpu", "gpu", &[("os", &["Linux"]), ("gpu", &["nvidia"])]).await?;
    task(&srv, "first", "ci", &[]).await?;
    let run_id = busy.poll_until_run(5).await?["task_id"].as_str().unwrap_or_default().to_string();
    busy.output(&run_id, 0, b"hi\n").await?;
    task(&srv, "second", "ci", &[]).await?;

    let b = Browser::start().await?;
    b.goto(&format!("{}/", srv.url)).await?;
    assert_eq!((count(&b, "bots").await?, count(&b, "busy").await?), (3, 1));
    assert!(b.text("#pools tr[data-pool='ci']").await?.contains("ci"));
    b.screenshot("dashboard").await?;

    b.goto(&format!("{}/newtask", srv.url)).await?;
    b.type_into("#name", "typed in a browser").await?;
    b.type_into("#dimensions", "pool:gpu gpu:nvidia").await?;
    b.type_into("#command", "echo 'from chromium'").await?;
    b.screenshot("newtask").await?;
    b.click("#submit").await?;
    b.wait_for("the new task page", "return location.pathname === '/task' && !!document.getElementById('task-state');")
        .await?;
    assert_eq!(b.text("#task-state").await?, "PENDING");
    let html = b.text("#request").await?;
    assert!(html.contains("gpu:nvidia"), "{html}");
    b.goto(&format!("{}/", srv.url)).await?;
    assert!(b.text("#dimsets").await?.contains("gpu:nvidia"));
    b.close().await;
    srv.stop().await;
    Ok(())
}
