//! The new task form (server validation shown at the field, `key=value`
//! dimensions) and the task list (user/priority/pool columns, tags that
//! filter, page size, Previous/Next) in Chromium.

use crate::webdriver::Browser;
use crate::{bot, task};
use muster_testkit::TestServer;
use serde_json::Value;

#[tokio::test]
async fn the_new_task_form_shows_the_servers_error_next_to_the_field() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let _b = bot(&srv, "form-bot", "ci", &[("os", &["Linux"])]).await?;
    let b = Browser::start().await?;
    b.goto(&format!("{}/newtask", srv.url)).await?;
    b.type_into("#name", "too quick to expire").await?;
    b.type_into("#dimensions", "pool=ci os=Linux").await?;
    b.type_into("#command", "echo hi").await?;
    b.type_into("#expiration_secs", "5").await?;
    b.click("#submit").await?;
    b.wait_for("the refused form", "return !!document.getElementById('expiration_secs-error');").await?;
    let msg = b.text("#expiration_secs-error").await?;
    assert!(msg.contains("must be between 30"), "{msg}");
    let kept = b.js("return [document.getElementById('name').value, document.getElementById('expiration_secs').getAttribute('aria-invalid')];").await?;
    assert_eq!(kept, serde_json::json!(["too quick to expire", "true"]), "the form keeps what was typed");
    b.screenshot("newtask-refused").await?;

    b.type_into("#expiration_secs", "600").await?;
    b.click("#submit").await?;
    b.wait_for("the new task page", "return location.pathname === '/task' && !!document.getElementById('task-state');")
        .await?;
    assert!(b.text("#request").await?.contains("os:Linux"), "key=value dimensions");
    b.close().await;
    srv.stop().await;
    Ok(())
}

#[tokio::test]
async fn the_task_list_has_user_priority_pool_tag_links_and_pages_both_ways() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    for i in 0..25u32 {
        let purpose = if i.is_multiple_of(5) { "purpose:rare" } else { "purpose:common" };
        task(&srv, &format!("task-{i:02}"), "ci", &[purpose]).await?;
    }
    let b = Browser::start().await?;
    b.goto(&format!("{}/tasklist?limit=20", srv.url)).await?;
    let heads = b.js("return Array.from(document.querySelectorAll('#tasks th')).map((t) => t.textContent);").await?;
    for h in ["User", "Priority", "Pool"] {
        assert!(heads.as_array().is_some_and(|a| a.iter().any(|v| v == h)), "{h} column: {heads}");
    }
    let rows = "return Array.from(document.querySelectorAll('tr.task')).map((r) => r.dataset.task);";
    let first = b.js(rows).await?;
    assert_eq!(first.as_array().map(Vec::len), Some(20), "page size 20");
    b.click("a.next").await?;
    b.wait_for("page 2", "return location.search.includes('cursor=');").await?;
    assert_eq!(b.js(rows).await?.as_array().map(Vec::len), Some(5));
    b.click("a.prev").await?;
    b.wait_for("page 1 again", "return !!document.querySelector('a.next') && !document.querySelector('a.prev');")
        .await?;
    assert_eq!(b.js(rows).await?, first, "Previous shows the first page again");

    // A tag is a filter link.
    b.click("#tasks a.chip[href*='purpose%3Arare']").await?;
    b.wait_for("the tag filter", "return location.search.includes('tags=purpose%3Arare');").await?;
    let n = b.js("return document.querySelectorAll('tr.task').length;").await?;
    assert_eq!(n, Value::from(5));
    assert_eq!(b.js("return document.getElementById('tags').value;").await?, "purpose:rare");
    b.close().await;
    srv.stop().await;
    Ok(())
}
