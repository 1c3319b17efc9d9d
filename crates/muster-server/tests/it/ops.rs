//! muster.v1 over pRPC, the NO_RESOURCE explanation header, and the UI's
//! drain buttons and why-pending box.

use muster_testkit::{Prpc, TestBot, TestServer};
use serde_json::json;

#[tokio::test]
async fn no_resource_new_task_carries_the_explanation_and_why_answers_over_prpc() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let mut bot = TestBot::new(&srv.url, "ops-bot", "default", &[("gpu", &["nvidia"])]);
    bot.handshake().await?;
    let body = json!({"name": "a100", "priority": 100, "taskSlices": [{"expirationSecs": 60, "properties": {
        "command": ["true"], "executionTimeoutSecs": 60,
        "dimensions": [{"key": "pool", "value": "default"}, {"key": "gpu", "value": "nvidia-a100"}]}}]});
    let resp = reqwest::Client::new()
        .post(format!("{}/prpc/swarming.v2.Tasks/NewTask", srv.url))
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .json(&body)
        .send()
        .await?;
    let why = resp.headers().get("x-muster-why").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    assert_eq!(
        why,
        "no bot could run it when it was created (NO_RESOURCE); now: no bot has gpu=nvidia-a100; 1 bot has gpu=nvidia"
    );
    let text = resp.text().await?;
    let v: serde_json::Value = serde_json::from_str(text.trim_start_matches(")]}'\n"))?;
    let id = v["taskId"].as_str().unwrap_or_default().to_string();

    let prpc = Prpc::new(&srv.url);
    let r = prpc.call_full("muster.v1.Scheduler", "WhyPending", &json!({"taskId": id})).await?;
    assert_eq!(r.code, 0, "{}", r.text);
    assert_eq!(r.json["state"], "NO_RESOURCE");
    assert_eq!(r.json["slices"][0]["limitingDimension"], "gpu:nvidia-a100");
    let r = prpc.call_full("muster.v1.Scheduler", "WhyPending", &json!({"taskId": "12345600"})).await?;
    assert_eq!((r.code, r.text.trim()), (5, "no such task"));

    // Drain: exactly one target; unknown pool is NOT_FOUND; twice is a no-op.
    let r = prpc.call_full("muster.v1.Fleet", "Drain", &json!({"botId": "ops-bot", "pool": "default"})).await?;
    assert_eq!(r.code, 3, "{}", r.text);
    let r = prpc.call_full("muster.v1.Fleet", "Drain", &json!({"pool": "nope"})).await?;
    assert_eq!(r.code, 5, "{}", r.text);
    let r = prpc.call_full("muster.v1.Fleet", "Drain", &json!({"pool": "default", "reason": "upgrade"})).await?;
    assert_eq!((r.code, r.json["changed"].as_bool()), (0, Some(true)), "{}", r.text);
    assert_eq!(r.json["drain"]["target"], "pool:default");
    assert_eq!(r.json["bots"], json!(["ops-bot"]));
    let r = prpc.call_full("muster.v1.Fleet", "Drain", &json!({"pool": "default"})).await?;
    assert_eq!(r.json["changed"].as_bool(), None, "false is omitted in proto3 JSON: {}", r.text);
    let bots = prpc.ok("Bots", "ListBots", &json!({"inMaintenance": "TRUE"})).await?;
    assert_eq!(bots["items"][0]["maintenanceMsg"], "drained (pool default): upgrade");
    let list = prpc.call_full("muster.v1.Fleet", "ListDrains", &json!({})).await?;
    assert_eq!(list.json["drains"][0]["description"], "pool default");

    // The UI: the drain is listed with an Undrain button; the bot page has one too.
    let resp = reqwest::get(format!("{}/botlist", srv.url)).await?;
    // The page sets the CSRF cookie its forms carry back.
    let csrf = muster_testkit::csrf_cookie(&resp).unwrap_or_default();
    let page = resp.text().await?;
    assert!(page.contains("id=\"drain-list\"") && page.contains("pool default") && page.contains("Undrain"), "{page}");
    assert!(!csrf.is_empty(), "the bot list sets a CSRF cookie");
    let form = reqwest::Client::new()
        .post(format!("{}/ui/undrain", srv.url))
        .header("cookie", format!("muster_csrf={csrf}"))
        .form(&[("target", "pool:default"), ("csrf", csrf.as_str())])
        .send()
        .await?;
    assert!(form.status().is_success() || form.status().is_redirection(), "{}", form.status());
    let page = reqwest::get(format!("{}/bot?id=ops-bot", srv.url)).await?.text().await?;
    assert!(page.contains("id=\"drain\""), "the bot page offers Drain once undrained");
    assert!(prpc.call_full("muster.v1.Fleet", "ListDrains", &json!({})).await?.json["drains"].is_null());
    srv.stop().await;
    Ok(())
}

#[tokio::test]
async fn the_task_page_explains_a_pending_task() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let mut bot = TestBot::new(&srv.url, "page-bot", "default", &[]);
    bot.handshake().await?;
    let prpc = Prpc::new(&srv.url);
    let busy = prpc.new_task("busy", "default", &["sleep", "60"]).await?;
    let m = bot.poll_until_run(5).await?;
    assert_eq!(m["task_id"].as_str().map(|s| &s[..s.len() - 1]), Some(&busy[..busy.len() - 1]));
    let waiting = prpc.new_task("waiting", "default", &["true"]).await?;
    let page = reqwest::get(format!("{}/task?id={waiting}", srv.url)).await?.text().await?;
    assert!(page.contains("<p id=\"why-summary\">the only matching bot is busy</p>"), "{page}");
    srv.stop().await;
    Ok(())
}
