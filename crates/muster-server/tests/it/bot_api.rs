//! Bot API shapes and refusals (docs/bot-protocol.md#transport, #endpoints).

use muster_testkit::{TestBot, TestServer};
use serde_json::json;

#[tokio::test]
async fn server_ping_answers_server_up() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let r = reqwest::get(format!("{}/swarming/api/v1/bot/server_ping", srv.url)).await?;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await?, "Server up");
    srv.stop().await;
    Ok(())
}

/// The Python bot retries a non-JSON 404 on /api/ paths for minutes.
#[tokio::test]
async fn unknown_endpoints_answer_a_json_404() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let r = reqwest::Client::new().post(format!("{}/swarming/api/v1/bot/nope", srv.url)).body("{}").send().await?;
    assert_eq!(r.status(), 404);
    assert!(r.headers()["content-type"].to_str()?.starts_with("application/json"));
    let v: serde_json::Value = r.json().await?;
    assert!(v["error"].as_str().is_some_and(|s| !s.is_empty()));
    srv.stop().await;
    Ok(())
}

#[tokio::test]
async fn handshake_replies_a_non_empty_dict_with_a_session_and_group_dimensions() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let mut bot = TestBot::new(&srv.url, "hs-bot", "default", &[]);
    let v = bot.handshake().await?;
    assert!(v["session"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(v["bot_group_cfg"]["dimensions"].is_object());
    assert!(v["bot_version"].as_str().is_some_and(|s| s.len() == 64));
    assert!(v["server_version"].is_string());
    srv.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_poll_without_a_session_is_told_to_restart() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let mut bot = TestBot::new(&srv.url, "no-session", "default", &[]);
    let v = bot.poll().await?;
    assert_eq!(v["cmd"], "bot_restart", "{v}");
    assert!(v["message"].is_string());
    srv.stop().await;
    Ok(())
}

/// A session token is bound to its bot: another bot cannot use it.
#[tokio::test]
async fn a_session_token_from_another_bot_is_refused() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let mut a = TestBot::new(&srv.url, "bot-a", "default", &[]);
    a.handshake().await?;
    let mut b = TestBot::new(&srv.url, "bot-b", "default", &[]);
    b.session = a.session.clone();
    let body = json!({"dimensions": b.dimensions, "state": b.state, "version": "", "session": b.session,
                      "request_uuid": "u1"});
    let (status, v) = b.post("poll", &body).await?;
    assert_eq!(status, 403, "{v}");
    let (status, _) = b.post("task_update/10", &json!({"id": "bot-b", "task_id": "10", "session": b.session})).await?;
    assert_eq!(status, 403);
    let (status, _) =
        b.post("task_update/10", &json!({"id": "bot-b", "task_id": "10", "session": "forged.00"})).await?;
    assert_eq!(status, 401);
    srv.stop().await;
    Ok(())
}

#[tokio::test]
async fn an_idle_poll_sleeps_and_a_quarantined_bot_gets_no_task() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let prpc = srv.prpc();
    // A healthy bot gives the pool capacity (quarantined bots do not count).
    let mut healthy = TestBot::new(&srv.url, "healthy-bot", "default", &[]);
    healthy.handshake().await?;
    let mut bot = TestBot::new(&srv.url, "q-bot", "default", &[]);
    bot.state = json!({"running_time": 1, "sleep_streak": 0, "quarantined": "disk full"});
    bot.handshake().await?;
    let id = prpc.new_task("for-q", "default", &["true"]).await?;
    let v = bot.poll().await?;
    assert_eq!(v["cmd"], "sleep", "{v}");
    assert_eq!(v["quarantined"], true);
    assert!(v["duration"].as_f64().is_some_and(|d| d > 0.0));
    assert_eq!(prpc.result(&id).await?["state"], "PENDING");
    srv.stop().await;
    Ok(())
}

#[tokio::test]
async fn task_update_for_a_task_the_bot_does_not_own_is_refused_with_must_stop() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let prpc = srv.prpc();
    let mut owner = TestBot::new(&srv.url, "owner", "default", &[]);
    owner.handshake().await?;
    let id = prpc.new_task("owned", "default", &["true"]).await?;
    let manifest = owner.poll_until_run(5).await?;
    let run_id = manifest["task_id"].as_str().unwrap_or_default().to_string();
    let mut thief = TestBot::new(&srv.url, "thief", "default", &[]);
    thief.handshake().await?;
    let (status, v) = thief.update(&run_id, json!({"output": "aGFjaw==", "output_chunk_start": 0})).await?;
    assert_eq!(status, 200);
    assert_eq!(v["ok"], false);
    assert_eq!(v["must_stop"], true);
    let (_, v) = thief.update(&run_id, json!({"exit_code": 0, "duration": 1.0})).await?;
    assert_eq!(v["ok"], false);
    // The path-less form (id only in the body) goes through the same checks.
    let body = json!({"id": "thief", "task_id": run_id, "session": thief.session, "exit_code": 0, "duration": 1.0});
    let (status, v) = thief.post("task_update", &body).await?;
    assert_eq!((status, v["ok"].clone()), (200, json!(false)));
    // Path and body disagreeing is a clear 400.
    let (status, _) = thief.post("task_update/10", &body).await?;
    assert_eq!(status, 400);
    assert_eq!(prpc.result(&id).await?["state"], "RUNNING");
    assert!(prpc.stdout(&id).await?.is_empty());
    srv.stop().await;
    Ok(())
}

#[tokio::test]
async fn task_error_replies_an_empty_dict_and_ends_the_task_bot_died() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let prpc = srv.prpc();
    let mut bot = TestBot::new(&srv.url, "err-bot", "default", &[]);
    bot.handshake().await?;
    let id = prpc.new_task("will-error", "default", &["true"]).await?;
    let manifest = bot.poll_until_run(5).await?;
    let run_id = manifest["task_id"].as_str().unwrap_or_default().to_string();
    bot.output(&run_id, 0, b"partial output").await?;
    let body = json!({"id": "err-bot", "task_id": run_id, "session": bot.session, "message": "boom",
                      "client_error": {"missing_cas": [], "missing_cipd": []}});
    let (status, v) = bot.post(&format!("task_error/{run_id}"), &body).await?;
    assert_eq!(status, 200);
    assert_eq!(v, json!({}));
    let r = prpc.result(&id).await?;
    assert_eq!(r["state"], "BOT_DIED");
    assert_eq!(r["internalFailure"], true);
    // The reason is where a user looks: the task's output and the bot's events.
    let out = String::from_utf8_lossy(&prpc.stdout(&id).await?).into_owned();
    assert_eq!(out, "partial output\nmuster: the bot err-bot could not run the task: boom\n");
    let events = prpc.ok("Bots", "ListBotEvents", &json!({"botId": "err-bot"})).await?;
    let items = events["items"].as_array().cloned().unwrap_or_default();
    assert!(
        items.iter().any(|e| e["eventType"] == "task_error" && e["message"] == "boom" && e["taskId"] == run_id),
        "{events}"
    );
    // A retried task_error changes nothing (no second line).
    let (status, _) = bot.post(&format!("task_error/{run_id}"), &body).await?;
    assert_eq!(status, 200);
    assert_eq!(String::from_utf8_lossy(&prpc.stdout(&id).await?), out);
    srv.stop().await;
    Ok(())
}

#[tokio::test]
async fn events_accept_bot_events_and_refuse_others() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let mut bot = TestBot::new(&srv.url, "ev-bot", "default", &[]);
    bot.handshake().await?;
    let mk = |event: &str, bot: &TestBot| {
        json!({"dimensions": bot.dimensions, "state": bot.state, "version": "", "event": event,
               "message": "hello", "session": bot.session})
    };
    let (status, v) = bot.post("event", &mk("bot_log", &bot)).await?;
    assert_eq!((status, v), (200, json!({})));
    let (status, v) = bot.post("event", &mk("bot_dances", &bot)).await?;
    assert_eq!(status, 400, "{v}");
    srv.stop().await;
    Ok(())
}

#[tokio::test]
async fn malformed_bodies_are_a_clear_400() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let http = reqwest::Client::new();
    for body in ["not json", "[1,2]", "{\"dimensions\": 5"] {
        let r = http.post(format!("{}/swarming/api/v1/bot/handshake", srv.url)).body(body).send().await?;
        assert_eq!(r.status(), 400, "{body}");
        let v: serde_json::Value = r.json().await?;
        assert!(v["error"].is_string());
    }
    srv.stop().await;
    Ok(())
}

#[tokio::test]
async fn bot_code_is_served_with_its_digest_as_version() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let r = reqwest::get(format!("{}/bot_code", srv.url)).await?;
    assert_eq!(r.status(), 200);
    let version = r.headers()["x-muster-bot-version"].to_str()?.to_string();
    let bytes = r.bytes().await?;
    use sha2_check::digest_hex;
    assert_eq!(digest_hex(&bytes), version);
    let (_, cfg) = muster_api::trailer::split(&bytes);
    assert_eq!(cfg.map(|c| c.server), Some(srv.url.clone()));
    let r2 = reqwest::get(format!("{}/swarming/api/v1/bot/bot_code/{version}", srv.url)).await?;
    assert_eq!(r2.bytes().await?, bytes);
    srv.stop().await;
    Ok(())
}

mod sha2_check {
    pub fn digest_hex(b: &[u8]) -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(b))
    }
}

/// Builds for other platforms are served from a directory, with the same
/// trailer, and a bot on that platform is told to update to its own build.
#[tokio::test]
async fn bots_of_other_platforms_get_their_own_build() -> anyhow::Result<()> {
    let builds = tempfile::tempdir()?;
    std::fs::write(builds.path().join("muster-plan9-mips"), b"not really an executable")?;
    let dir = builds.path().to_path_buf();
    let srv = muster_testkit::TestServer::start_configured(
        std::sync::Arc::new(muster_core::time::SystemClock),
        muster_sched::SchedConfig { long_poll: std::time::Duration::from_secs(1), ..Default::default() },
        move |c| c.bot_platform_dir = Some(dir),
    )
    .await?;
    let r = reqwest::get(format!("{}/bot_code?platform=plan9-mips", srv.url)).await?;
    assert_eq!(r.status(), 200);
    let version = r.headers()["x-muster-bot-version"].to_str()?.to_string();
    let bytes = r.bytes().await?;
    let (base, cfg) = muster_api::trailer::split(&bytes);
    assert_eq!(base, b"not really an executable");
    assert_eq!(cfg.map(|c| c.server), Some(srv.url.clone()));
    let r = reqwest::get(format!("{}/bot_code?platform=amiga-m68k", srv.url)).await?;
    assert_eq!(r.status(), 404);

    let mut bot = TestBot::new(&srv.url, "plan9-bot", "default", &[]);
    bot.handshake().await?;
    bot.version = "0".repeat(64);
    bot.state = json!({"running_time": 1, "sleep_streak": 0, "platform": "plan9-mips"});
    let body = json!({"dimensions": bot.dimensions, "state": bot.state, "version": bot.version,
                      "session": bot.session, "request_uuid": "u-plan9"});
    let resp = reqwest::Client::new()
        .post(format!("{}/swarming/api/v1/bot/poll", srv.url))
        .header("user-agent", "muster-bot/0.1.0@plan9")
        .json(&body)
        .send()
        .await?;
    let v: serde_json::Value = resp.json().await?;
    assert_eq!(v["cmd"], "update", "{v}");
    assert_eq!(v["version"], version.as_str());
    srv.stop().await;
    Ok(())
}

/// A bot that does not self-update polls with no version; the server keeps
/// the version it handshook with.
#[tokio::test]
async fn a_poll_without_a_version_keeps_the_handshake_version() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let mut bot = TestBot::new(&srv.url, "steady-bot", "default", &[]);
    bot.version = "1".repeat(64);
    bot.handshake().await?;
    bot.version = String::new();
    assert_eq!(bot.poll().await?["cmd"], "sleep");
    let v = srv.prpc().ok("Bots", "GetBot", &json!({"botId": "steady-bot"})).await?;
    assert_eq!(v["version"], "1".repeat(64));
    srv.stop().await;
    Ok(())
}
