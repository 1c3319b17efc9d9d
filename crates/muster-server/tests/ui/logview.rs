//! The task log viewer: a 50,000-line log opens at its end, is served in
//! slices (never whole), finds a line in the middle, loads more either way,
//! follows line links, and shows `\r` progress as one line.

use crate::webdriver::Browser;
use crate::{bot, task};
use muster_testkit::TestServer;
use serde_json::Value;

const LINES: usize = 50_000;
/// The line the search looks for, and the line with `\r` progress.
const NEEDLE_LINE: usize = 25_000;
const PROGRESS_LINE: usize = 49_990;

fn log_text() -> Vec<u8> {
    let mut out = String::new();
    for i in 1..=LINES {
        match i {
            NEEDLE_LINE => out.push_str("here is the needle-in-the-middle\n"),
            PROGRESS_LINE => out.push_str("progress 10%\rprogress 55%\rprogress 100%\n"),
            LINES => out.push_str("\x1b[31mthe very last line\x1b[0m\n"),
            _ => out.push_str(&format!("line {i:05} of the build log, nothing to see\n")),
        }
    }
    out.into_bytes()
}

/// A finished task whose output is [`log_text`]; returns its id.
async fn big_log_task(srv: &TestServer) -> anyhow::Result<String> {
    let mut runner = bot(srv, "log-bot", "logs", &[]).await?;
    let id = task(srv, "big-log", "logs", &[]).await?;
    let run_id = runner.poll_until_run(5).await?["task_id"].as_str().unwrap_or_default().to_string();
    let data = log_text();
    for (k, piece) in data.chunks(100 * 1024).enumerate() {
        runner.output(&run_id, (k * 100 * 1024) as u64, piece).await?;
    }
    runner.complete(&run_id, 1, 12.0).await?;
    Ok(id)
}

/// True when line `n` is on screen: inside the viewport and the log box.
fn visible(n: usize) -> String {
    format!(
        "const el = document.getElementById('L{n}'); if (!el) return false; \
         const r = el.getBoundingClientRect(), box = document.getElementById('output').getBoundingClientRect(); \
         return r.height > 0 && r.top >= Math.max(0, box.top) - 1 && r.bottom <= Math.min(innerHeight, box.bottom) + 1;"
    )
}

#[tokio::test]
async fn a_50000_line_log_opens_at_its_end_finds_the_middle_and_shows_progress_as_one_line() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let id = big_log_task(&srv).await?;

    // Over plain HTTP: the page and every slice are bounded, search finds the line.
    let page = reqwest::get(format!("{}/task?id={id}", srv.url)).await?.text().await?;
    let full = log_text().len();
    assert!(page.len() < full / 4, "the page carries {} bytes of a {full}-byte log", page.len());
    assert!(page.contains("id=\"L1\"") && page.contains(&format!("id=\"L{LINES}\"")), "head and tail");
    assert!(!page.contains(&format!("id=\"L{NEEDLE_LINE}\"")), "the middle is not sent");
    let v: Value = reqwest::get(format!("{}/task/log?id={id}&from=0&line=1", srv.url)).await?.json().await?;
    let lines = v["next"].as_u64().unwrap_or(0) - v["line"].as_u64().unwrap_or(0);
    assert!(lines > 0 && lines <= 2000, "one slice has {lines} lines");
    let v: Value = reqwest::get(format!("{}/task/log/search?id={id}&q=NEEDLE-in-the", srv.url)).await?.json().await?;
    assert_eq!(v["lines"], serde_json::json!([NEEDLE_LINE]), "{v}");

    let b = Browser::start().await?;
    b.set_viewport(1440, 900).await?;
    b.goto(&format!("{}/task?id={id}", srv.url)).await?;
    b.wait_for("the last line on screen", &visible(LINES)).await?;
    assert_eq!(b.text(&format!("#L{LINES} .t")).await?, "the very last line");
    assert_eq!(b.text(&format!("#L{LINES} .t span.fg1")).await?, "the very last line", "colors kept");
    let title = b.js("return document.title;").await?;
    assert!(title.as_str().unwrap_or_default().starts_with("COMPLETED (FAILURE) · big-log"), "{title}");
    // `\r` progress: one line showing its last state.
    assert_eq!(b.text(&format!("#L{PROGRESS_LINE} .t")).await?, "progress 100%");
    let progress = b.js("return document.getElementById('output').textContent.split('progress').length - 1;").await?;
    assert_eq!(progress, Value::from(1), "the earlier progress states are overwritten");
    b.screenshot("task-log-end-1440").await?;

    // Search finds the line in the middle, loads it, highlights it.
    b.type_into("#logq", "needle-in-the").await?;
    b.click("#logfind").await?;
    b.wait_for("the hit in the middle on screen", &visible(NEEDLE_LINE)).await?;
    assert_eq!(b.text(&format!("#L{NEEDLE_LINE} mark")).await?, "needle-in-the");
    assert_eq!(b.text("#loghits").await?, "1 of 1");
    let cur = b.js(&format!("return document.getElementById('L{NEEDLE_LINE}').classList.contains('cur');")).await?;
    assert_eq!(cur, Value::Bool(true));
    b.screenshot("task-log-search-1440").await?;

    // Load more: down from the head, up from the tail; the gaps shrink.
    let gaps = "return document.querySelectorAll('#output .gap').length;";
    assert_eq!(b.js(gaps).await?, Value::from(2), "head | gap | hit | gap | tail");
    b.click("#output .gap button[data-dir='down']").await?;
    b.wait_for("the lines after the head", "return !!document.getElementById('L101');").await?;
    b.js("const g = document.querySelectorAll('#output .gap'); g[g.length - 1].querySelector(\"button[data-dir='up']\").click(); return true;")
        .await?;
    let before_tail = format!("return !!document.getElementById('L{}');", LINES - 2000);
    b.wait_for("the lines before the tail", &before_tail).await?;

    // A line link opens at that line.
    b.goto(&format!("{}/task?id={id}#L30000", srv.url)).await?;
    b.wait_for("the linked line on screen", &visible(30_000)).await?;
    assert!(b.text("#L30000 .t").await?.starts_with("line 30000"));
    b.close().await;
    srv.stop().await;
    Ok(())
}

#[tokio::test]
async fn pages_and_assets_are_gzipped() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let http = reqwest::Client::builder().no_gzip().build()?;
    for path in ["/", "/tasklist", "/botlist", "/newtask", "/ui/static/ui.css", "/ui/static/ui.js"] {
        let r = http.get(format!("{}{path}", srv.url)).header("accept-encoding", "gzip").send().await?;
        assert_eq!(r.status().as_u16(), 200, "{path}");
        let enc = r.headers().get("content-encoding").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        assert_eq!(enc, "gzip", "{path} is sent compressed");
    }
    srv.stop().await;
    Ok(())
}
