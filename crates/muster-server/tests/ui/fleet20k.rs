//! The bot list at fleet scale: 20,000 bots (2,000 of them dead) registered
//! straight with the scheduler, as the bench's simulated fleet does over HTTP.
//! Dead bots are hidden by default, sorting covers the whole fleet (not the
//! page), the page never embeds every bot id, autocomplete asks the server,
//! and any dimension can be a column.

use crate::webdriver::Browser;
use muster_core::{BotDimensions, Clock};
use muster_sched::BotHello;
use muster_testkit::{wait_for, FakeClock, TestServer, PATIENCE};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const BOTS: usize = 20_000;
const DEAD: usize = 2_000;

fn hello(id: &str, i: usize) -> BotHello {
    // Only the last thousand bots (by id) run Windows: a sort of one page
    // by id would never show them first.
    let os: Vec<String> = if i >= BOTS - 1000 {
        vec!["Windows".into(), "Windows-11".into()]
    } else {
        vec!["Linux".into(), "Linux-Debian-12".into(), format!("Linux-Debian-12.{}", i % 12)]
    };
    let mut d = BTreeMap::new();
    d.insert("id".to_string(), vec![id.to_string()]);
    d.insert("pool".to_string(), vec![format!("pool-{}", i % 40)]);
    d.insert("os".to_string(), os);
    d.insert("cpu".to_string(), vec![if i.is_multiple_of(3) { "arm64" } else { "x86-64" }.to_string()]);
    BotHello {
        bot_id: id.to_string(),
        dimensions: BotDimensions(d),
        state_json: "{}".into(),
        version: "v1".into(),
        session_id: format!("s-{i}"),
        external_ip: String::new(),
        authenticated_as: "bot:test".into(),
        quarantined_msg: String::new(),
        maintenance_msg: String::new(),
    }
}

fn rows_script() -> &'static str {
    "return Array.from(document.querySelectorAll('tr.bot')).map((r) => r.dataset.bot);"
}

#[tokio::test]
async fn the_bot_list_serves_20000_bots_sorted_and_filtered_on_the_server() -> anyhow::Result<()> {
    let clock = Arc::new(FakeClock::new());
    let cfg = muster_sched::SchedConfig {
        long_poll: Duration::from_secs(1),
        bot_death_timeout: Duration::from_secs(60),
        ..Default::default()
    };
    let srv = TestServer::start_with(clock.clone(), cfg).await?;
    for i in 0..DEAD {
        srv.sched.handshake(hello(&format!("gone-{i:05}"), i), clock.now()).await?;
    }
    clock.advance(Duration::from_secs(120));
    let sched = srv.sched.clone();
    let c = clock.clone();
    wait_for("the old bots to be dead", PATIENCE, || {
        let (sched, c) = (sched.clone(), c.clone());
        async move { Ok((sched.count_bots(&[], c.now()).dead as usize == DEAD).then_some(())) }
    })
    .await?;
    for i in DEAD..BOTS {
        srv.sched.handshake(hello(&format!("bot-{i:05}"), i), clock.now()).await?;
    }

    // Over HTTP: the page is small (no list of every bot id) and quick.
    let t = Instant::now();
    let page = reqwest::get(format!("{}/botlist", srv.url)).await?.text().await?;
    let first_ms = t.elapsed().as_millis();
    let t = Instant::now();
    let sorted = reqwest::get(format!("{}/botlist?sort=dim:os&dir=desc", srv.url)).await?.text().await?;
    let sorted_ms = t.elapsed().as_millis();
    eprintln!(
        "botlist with {BOTS} bots: {first_ms} ms, {} bytes; sorted by os: {sorted_ms} ms, {} bytes",
        page.len(),
        sorted.len()
    );
    assert!(page.len() < 150_000, "the bot list page is {} bytes", page.len());
    assert!(!page.contains("bot-19999"), "no bot beyond the first page is embedded");
    assert!(!page.contains("gone-"), "dead bots are hidden by default");
    let v: Value = reqwest::get(format!("{}/botlist/suggest?q=os:win", srv.url)).await?.json().await?;
    assert!(v.as_array().is_some_and(|a| a.iter().any(|s| s == "os:Windows-11")), "{v}");

    let b = Browser::start().await?;
    b.set_viewport(1440, 900).await?;
    b.goto(&format!("{}/botlist", srv.url)).await?;
    let rows = b.js(rows_script()).await?;
    assert_eq!(rows[0], "bot-02000", "alive bots first, by id");
    assert_eq!(rows.as_array().map(Vec::len), Some(50));

    // Sort by os, descending: the Windows bots (the highest ids) come first.
    b.click("th a.sort[href*='sort=dim%3Aos']").await?;
    b.wait_for("sorted by os", "return location.search.includes('sort=dim%3Aos');").await?;
    b.click("th a.sort[href*='sort=dim%3Aos']").await?;
    b.wait_for("sorted by os, descending", "return location.search.includes('dir=desc');").await?;
    let os = b.js("return Array.from(document.querySelectorAll('td[data-col=os]')).map((t) => t.textContent);").await?;
    assert!(os.as_array().is_some_and(|a| !a.is_empty() && a.iter().all(|v| v == "Windows-11")), "{os}");
    let aria = b.js("return document.querySelector('th[aria-sort=descending]').textContent;").await?;
    assert_eq!(aria, "os");
    b.screenshot("botlist-20000-sorted-1440").await?;
    // Next page keeps the order.
    b.click("a.next").await?;
    b.wait_for("page 2", "return location.search.includes('page=1');").await?;
    assert!(b.js("return !!document.querySelector('a.prev');").await? == Value::Bool(true), "a Previous link");

    // Autocomplete asks the server.
    b.goto(&format!("{}/botlist", srv.url)).await?;
    b.type_into("#filter", "cpu:ar").await?;
    b.wait_for(
        "a suggestion",
        "return Array.from(document.querySelectorAll('.suggest li')).some((li) => li.textContent === 'cpu:arm64');",
    )
    .await?;

    // Dead bots on demand.
    b.goto(&format!("{}/botlist", srv.url)).await?;
    b.click("#showdead").await?;
    b.click("#apply").await?;
    b.wait_for("dead bots shown", "return location.search.includes('dead=1');").await?;
    b.goto(&format!("{}/botlist?dead=1&sort=id&dir=desc", srv.url)).await?;
    assert_eq!(b.js(rows_script()).await?[0], "gone-01999", "dead bots included");
    b.goto(&format!("{}/botlist?sort=id&dir=desc", srv.url)).await?;
    assert_eq!(b.js(rows_script()).await?[0], "bot-19999", "dead bots hidden");
    b.goto(&format!("{}/botlist?state=dead", srv.url)).await?;
    let rows = b.js(rows_script()).await?;
    assert_eq!(rows[0], "gone-00000");

    // A dimension as a column.
    b.goto(&format!("{}/botlist", srv.url)).await?;
    b.click("#columns summary").await?;
    b.click("#columns input[value=cpu]").await?;
    b.click("#setcols").await?;
    b.wait_for("the cpu column", "return !!document.querySelector('td[data-col=cpu]');").await?;
    b.close().await;
    srv.stop().await;
    Ok(())
}
