//! Plain HTTP: each page renders (200) with the expected data, the form
//! endpoints call the scheduler, and errors are pages with the right status.

use crate::{bot, count_in, get, post_form, task};
use muster_testkit::TestServer;

#[tokio::test]
async fn every_page_renders_with_the_fleet_and_task_data() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let mut runner = bot(&srv, "linux-1", "ci", &[("os", &["Linux"])]).await?;
    let _win = bot(&srv, "win-1", "ci", &[("os", &["Windows"])]).await?;
    let id = task(&srv, "compile-things", "ci", &["purpose:ui-test"]).await?;
    let manifest = runner.poll_until_run(5).await?;
    let run_id = manifest["task_id"].as_str().unwrap_or_default().to_string();
    runner.output(&run_id, 0, b"step one\n\x1b[32mgreen ok\x1b[0m <tag>\n").await?;

    let (s, html) = get(&srv, "/").await?;
    assert_eq!(s, 200, "{html}");
    assert!(html.contains("data-pool=\"ci\""), "dashboard lists pool ci: {html}");
    assert_eq!(count_in(&html, "bots"), Some(2));
    assert_eq!(count_in(&html, "busy"), Some(1));
    assert!(html.contains("id=\"tasks-per-minute\"") && html.contains("id=\"pending-time\""), "charts");

    let (s, html) = get(&srv, "/botlist").await?;
    assert_eq!(s, 200);
    assert!(html.contains("data-bot=\"linux-1\"") && html.contains("data-bot=\"win-1\""), "{html}");
    assert!(html.contains("compile-things"), "current task shown: {html}");
    assert!(html.contains("data-col=\"os\">Linux<"), "the os column: {html}");
    assert_eq!(count_in(&html, "busy"), Some(1));
    assert_eq!(count_in(&html, "idle"), Some(1));

    let (s, html) = get(&srv, "/bot?id=linux-1").await?;
    assert_eq!(s, 200);
    assert!(html.contains("id=\"dimensions\"") && html.contains("Linux"), "{html}");
    assert!(html.contains("running_time"), "state JSON: {html}");
    assert!(html.contains("bot_connected"), "events: {html}");
    assert!(html.contains(&format!("/task?id={id}")), "tasks it ran: {html}");
    assert!(html.contains("id=\"terminate\"") && html.contains("id=\"delete\""), "buttons");

    let (s, html) = get(&srv, "/tasklist").await?;
    assert_eq!(s, 200);
    assert!(html.contains(&format!("data-task=\"{id}\"")), "{html}");
    assert_eq!(count_in(&html, "running"), Some(1));
    assert_eq!(count_in(&html, "all"), Some(1));

    let (s, html) = get(&srv, &format!("/task?id={id}")).await?;
    assert_eq!(s, 200);
    assert!(html.contains("compile-things") && html.contains("RUNNING"), "{html}");
    assert!(html.contains("echo &#39;hello world&#39;"), "command: {html}");
    assert!(html.contains("purpose:ui-test"), "tags: {html}");
    assert!(html.contains("<span class=\"fg2\">green ok</span> &lt;tag&gt;"), "ANSI rendered and escaped: {html}");
    assert!(html.contains("data-live=\"true\"") && html.contains("id=\"kill\""), "live output and kill button");

    let (s, html) = get(&srv, "/newtask").await?;
    assert_eq!(s, 200);
    assert!(html.contains("name=\"command\"") && html.contains("name=\"request_uuid\""), "{html}");
    srv.stop().await;
    Ok(())
}

#[tokio::test]
async fn the_raw_output_is_the_exact_bytes_and_follows_from_an_offset() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let mut b = bot(&srv, "raw-bot", "raw", &[]).await?;
    let id = task(&srv, "raw", "raw", &[]).await?;
    let run_id = b.poll_until_run(5).await?["task_id"].as_str().unwrap_or_default().to_string();
    let data = b"\x1b[1mbold\x1b[0m\nutf8: \xc3\xa9\n";
    b.output(&run_id, 0, data).await?;
    let r = reqwest::get(format!("{}/task/raw?id={id}", srv.url)).await?;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers().get("x-muster-task-state").and_then(|v| v.to_str().ok()), Some("RUNNING"));
    assert_eq!(&r.bytes().await?[..], &data[..]);
    let r = reqwest::get(format!("{}/task/raw?id={id}&offset=5", srv.url)).await?;
    assert_eq!(&r.bytes().await?[..], &data[5..]);
    b.complete(&run_id, 0, 0.5).await?;
    let r = reqwest::get(format!("{}/task/raw?id={id}&offset=999", srv.url)).await?;
    assert_eq!(r.headers().get("x-muster-task-state").and_then(|v| v.to_str().ok()), Some("COMPLETED"));
    assert!(r.bytes().await?.is_empty());
    srv.stop().await;
    Ok(())
}

#[tokio::test]
async fn the_fleet_page_filters_by_dimension_and_state_and_paginates() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    for i in 0..3 {
        bot(&srv, &format!("lin-{i}"), "ci", &[("os", &["Linux"])]).await?;
    }
    bot(&srv, "win-0", "ci", &[("os", &["Windows"])]).await?;
    let (s, html) = get(&srv, "/botlist?f=os%3ALinux").await?;
    assert_eq!(s, 200);
    assert!(html.contains("data-bot=\"lin-2\"") && !html.contains("data-bot=\"win-0\""), "{html}");
    assert_eq!(count_in(&html, "all"), Some(3));
    let (_, html) = get(&srv, "/botlist?f=os%3ALinux&limit=2").await?;
    assert!(
        html.contains("data-bot=\"lin-0\"")
            && html.contains("data-bot=\"lin-1\"")
            && !html.contains("data-bot=\"lin-2\"")
    );
    let at = html.find("class=\"next\" href=\"").expect("a next page link") + "class=\"next\" href=\"".len();
    let next = html[at..].split('"').next().unwrap_or_default().replace("&amp;", "&");
    let (_, html) = get(&srv, &next).await?;
    assert!(html.contains("data-bot=\"lin-2\"") && !html.contains("data-bot=\"lin-0\""), "{next}: {html}");
    let (_, html) = get(&srv, "/botlist?state=busy").await?;
    assert!(html.contains("No bots match."), "nobody is busy: {html}");
    let (s, _) = get(&srv, "/botlist?f=nocolon").await?;
    assert_eq!(s, 400);
    srv.stop().await;
    Ok(())
}

#[tokio::test]
async fn the_task_list_filters_by_state_tag_and_name() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let _b = bot(&srv, "b", "p", &[]).await?;
    let a = task(&srv, "alpha build", "p", &["kind:build"]).await?;
    let z = task(&srv, "zeta test", "p", &["kind:test"]).await?;
    srv.prpc().ok("Tasks", "CancelTask", &serde_json::json!({"taskId": z})).await?;
    let (_, html) = get(&srv, "/tasklist?state=pending").await?;
    assert!(html.contains(&format!("data-task=\"{a}\"")) && !html.contains(&format!("data-task=\"{z}\"")));
    assert_eq!(count_in(&html, "pending"), Some(1));
    assert_eq!(count_in(&html, "canceled"), Some(1));
    let (_, html) = get(&srv, "/tasklist?tags=kind%3Atest").await?;
    assert!(!html.contains(&format!("data-task=\"{a}\"")) && html.contains(&format!("data-task=\"{z}\"")));
    assert_eq!(count_in(&html, "all"), Some(1));
    let (_, html) = get(&srv, "/tasklist?name=ALPHA").await?;
    assert!(html.contains(&format!("data-task=\"{a}\"")) && !html.contains(&format!("data-task=\"{z}\"")));
    let (_, html) = get(&srv, "/tasklist?start=2000-01-01T00%3A00&end=2001-01-01T00%3A00").await?;
    assert!(html.contains("No tasks match."), "{html}");
    let (s, _) = get(&srv, "/tasklist?start=yesterday").await?;
    assert_eq!(s, 400);
    srv.stop().await;
    Ok(())
}

#[tokio::test]
async fn the_forms_cancel_retry_create_terminate_and_delete_idempotently() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let _b = bot(&srv, "form-bot", "forms", &[]).await?;
    let id = task(&srv, "cancel me", "forms", &["kind:x"]).await?;
    for _ in 0..2 {
        let (s, loc) = post_form(&srv, "/ui/task/cancel", &[("id", &id)]).await?;
        assert_eq!((s, loc.as_str()), (303, format!("/task?id={id}").as_str()));
    }
    assert_eq!(srv.prpc().result(&id).await?["state"], "CANCELED");

    let (s, loc) = post_form(&srv, "/ui/task/retry", &[("id", &id), ("request_uuid", "retry-1")]).await?;
    assert_eq!(s, 303);
    let new_id = loc.strip_prefix("/task?id=").unwrap_or_default().to_string();
    assert_ne!(new_id, id);
    let (_, again) = post_form(&srv, "/ui/task/retry", &[("id", &id), ("request_uuid", "retry-1")]).await?;
    assert_eq!(again, loc, "same request_uuid, same task");
    let req = srv.prpc().ok("Tasks", "GetRequest", &serde_json::json!({"taskId": new_id})).await?;
    assert_eq!(req["name"], "cancel me");
    assert_eq!(req["taskSlices"][0]["properties"]["command"], serde_json::json!(["echo", "hello world"]));
    assert!(req["tags"].as_array().is_some_and(|t| t.iter().any(|t| t == "kind:x")), "{req}");

    let form = [
        ("name", "from the form"),
        ("dimensions", "pool:forms"),
        ("command", "python3 -c 'print(1)'"),
        ("priority", "42"),
        ("execution_timeout_secs", "120"),
        ("request_uuid", "form-1"),
    ];
    let (s, loc) = post_form(&srv, "/ui/task/new", &form).await?;
    assert_eq!(s, 303);
    let (_, again) = post_form(&srv, "/ui/task/new", &form).await?;
    assert_eq!(again, loc);
    let nid = loc.strip_prefix("/task?id=").unwrap_or_default();
    let req = srv.prpc().ok("Tasks", "GetRequest", &serde_json::json!({"taskId": nid})).await?;
    assert_eq!(req["priority"], 42);
    assert_eq!(req["taskSlices"][0]["properties"]["command"], serde_json::json!(["python3", "-c", "print(1)"]));
    let (s, _) = post_form(
        &srv,
        "/ui/task/new",
        &[("name", "x"), ("dimensions", "pool:forms"), ("command", "true"), ("priority", "high")],
    )
    .await?;
    assert_eq!(s, 400);

    let (s, loc) = post_form(&srv, "/ui/bot/terminate", &[("id", "form-bot")]).await?;
    assert_eq!(s, 303);
    let tid = loc.strip_prefix("/task?id=").unwrap_or_default();
    assert_eq!(srv.prpc().result(tid).await?["state"], "PENDING");

    for _ in 0..2 {
        let (s, loc) = post_form(&srv, "/ui/bot/delete", &[("id", "form-bot")]).await?;
        assert_eq!((s, loc.as_str()), (303, "/bot?id=form-bot"));
    }
    let (_, html) = get(&srv, "/botlist").await?;
    assert!(!html.contains("data-bot=\"form-bot\""));
    let (s, html) = get(&srv, "/bot?id=form-bot").await?;
    assert_eq!(s, 200, "history stays visible");
    assert!(html.contains("bot_deleted"), "{html}");
    srv.stop().await;
    Ok(())
}

#[tokio::test]
async fn unknown_things_are_error_pages_with_the_right_status() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    assert_eq!(get(&srv, "/task?id=12345670").await?.0, 404);
    assert_eq!(get(&srv, "/task?id=nothex").await?.0, 400);
    assert_eq!(get(&srv, "/task").await?.0, 400);
    assert_eq!(get(&srv, "/bot?id=ghost").await?.0, 404);
    assert_eq!(get(&srv, "/tasklist?state=sleepy").await?.0, 400);
    let (s, css) = get(&srv, "/ui/static/ui.css").await?;
    assert!(s == 200 && css.contains(".badge"));
    let (s, js) = get(&srv, "/ui/static/ui.js").await?;
    assert!(s == 200 && js.contains("setupLog"));
    srv.stop().await;
    Ok(())
}

#[tokio::test]
async fn cross_site_form_posts_are_refused() -> anyhow::Result<()> {
    let srv = muster_testkit::TestServer::start().await?;
    let form =
        [("name", "csrf-probe"), ("dimensions", "pool:default"), ("command", "echo hi"), ("request_uuid", "csrf-1")];
    let token = crate::csrf_token(&srv).await?;
    // The attack: a page on another site posts the form (the browser would
    // even attach the cookie if SameSite did not stop it).
    let (s, _) = crate::post_form_as(&srv, "/ui/task/new", &form, Some(&token), "http://evil.example").await?;
    assert_eq!(s, 403, "cross-site Origin");
    let (s, _) = crate::post_form_as(&srv, "/ui/task/new", &form, None, &srv.url).await?;
    assert_eq!(s, 403, "no CSRF token");
    let (s, _) =
        crate::post_form_as(&srv, "/ui/task/new", &form, Some(&crate::csrf_token(&srv).await?), &srv.url).await?;
    assert_eq!(s, 303, "the same form from the UI works");
    // A token from one browser does not match another browser's cookie.
    let mut other = token.clone();
    other.replace_range(0..1, if other.starts_with('A') { "B" } else { "A" });
    let body = "name=x&dimensions=pool%3Adefault&command=true&csrf=".to_string() + &other;
    let r = crate::no_redirects()
        .post(format!("{}/ui/task/new", srv.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", format!("muster_csrf={token}"))
        .body(body)
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 403, "mismatched token");
    srv.stop().await;
    Ok(())
}
