//! The whole agent loop against a scripted HTTP server on 127.0.0.1:0 (a test
//! double for the network only; tasks and hooks are real processes). The
//! end-to-end tests with the real muster server live in the `muster` crate.

use crate::support::refusing_url;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use muster_api::bot::{decode_b64, Manifest};
use muster_bot::{BotExit, BotOptions};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::os::unix::fs::PermissionsExt as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Default)]
struct Fake {
    /// (path, headers of interest, body) of every call, in order.
    calls: Mutex<Vec<(String, Value)>>,
    headers: Mutex<Vec<(String, String, String)>>,
    /// Poll replies, in order; `sleep 30` when empty.
    replies: Mutex<VecDeque<Value>>,
}

type S = Arc<Fake>;

fn record(s: &S, path: String, headers: &HeaderMap, body: Value) {
    let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    s.headers.lock().expect("lock").push((path.clone(), h("x-luci-swarming-bot-id"), h("authorization")));
    s.calls.lock().expect("lock").push((path, body));
}

async fn serve(fake: S) -> String {
    let app = Router::new()
        .route("/swarming/api/v1/bot/server_ping", get(|| async { "Server up" }))
        .route(
            "/swarming/api/v1/bot/handshake",
            post(|State(s): State<S>, h: HeaderMap, Json(b): Json<Value>| async move {
                record(&s, "handshake".into(), &h, b);
                Json(json!({"session": "sess-1", "server_version": "fake", "bot_version": "x",
                            "bot_group_cfg": {"dimensions": {"pool": ["enforced"]}}}))
            }),
        )
        .route(
            "/swarming/api/v1/bot/poll",
            post(|State(s): State<S>, h: HeaderMap, Json(b): Json<Value>| async move {
                record(&s, "poll".into(), &h, b);
                let next = s.replies.lock().expect("lock").pop_front();
                Json(next.unwrap_or_else(|| json!({"cmd": "sleep", "duration": 30.0})))
            }),
        )
        .route(
            "/swarming/api/v1/bot/task_update/{id}",
            post(|State(s): State<S>, Path(id): Path<String>, h: HeaderMap, Json(b): Json<Value>| async move {
                record(&s, format!("task_update/{id}"), &h, b);
                Json(json!({"ok": true, "must_stop": false, "session": "sess-2"}))
            }),
        )
        .route(
            "/swarming/api/v1/bot/task_error/{id}",
            post(|State(s): State<S>, Path(id): Path<String>, h: HeaderMap, Json(b): Json<Value>| async move {
                record(&s, format!("task_error/{id}"), &h, b);
                Json(json!({}))
            }),
        )
        .route(
            "/swarming/api/v1/bot/event",
            post(|State(s): State<S>, h: HeaderMap, Json(b): Json<Value>| async move {
                record(&s, "event".into(), &h, b);
                Json(json!({}))
            }),
        )
        .route(
            "/swarming/api/v1/bot/bot_code/{v}",
            get(|| async { b"these bytes do not hash to the requested version".to_vec() }),
        )
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

fn calls(f: &Fake, path: &str) -> Vec<Value> {
    f.calls.lock().expect("lock").iter().filter(|(p, _)| p == path).map(|(_, b)| b.clone()).collect()
}

fn events(f: &Fake, kind: &str) -> Vec<String> {
    calls(f, "event")
        .into_iter()
        .filter(|e| e["event"] == kind)
        .map(|e| e["message"].as_str().unwrap_or("").to_string())
        .collect()
}

fn hook(dir: &std::path::Path, body: &str) -> std::path::PathBuf {
    let p = dir.join("test-hook");
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).expect("write");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    p
}

fn manifest(task_id: &str, script: &str) -> Value {
    serde_json::to_value(Manifest {
        task_id: task_id.into(),
        bot_id: "loopbot".into(),
        command: vec!["sh".into(), "-c".into(), script.into()],
        grace_period: 1.0,
        hard_timeout: 30.0,
        ..Default::default()
    })
    .expect("manifest json")
}

#[tokio::test]
async fn a_bot_runs_a_polled_task_and_stops_on_terminate_despite_broken_hooks() {
    let fake = Arc::new(Fake::default());
    fake.replies.lock().expect("lock").extend([
        json!({"cmd": "sleep", "duration": 0.01}),
        json!({"cmd": "run", "manifest": manifest("abc1", "echo hello from the task")}),
        json!({"cmd": "terminate", "task_id": "def1"}),
    ]);
    let server = serve(fake.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let bot_dir = dir.path().join("bot");
    // get_dimensions fails, get_state hangs, health fails, the task hooks print garbage.
    let hook_path = hook(
        dir.path(),
        "case \"$1\" in get_dimensions) exit 2;; get_state) sleep 10;; health) echo sick >&2; exit 1;; *) echo garbage;; esac",
    );
    let mut opts = BotOptions::new(server, &bot_dir);
    opts.bot_id = Some("loopbot".into());
    opts.token = Some("tok".into());
    opts.hook = Some(hook_path);
    opts.hook_timeout = Duration::from_millis(300);
    std::fs::create_dir_all(bot_dir.join("w/stale")).expect("mkdir");

    let exit = tokio::time::timeout(Duration::from_secs(60), muster_bot::run(opts, CancellationToken::new()))
        .await
        .expect("the bot must finish")
        .expect("run ok");
    assert_eq!(exit, BotExit::Terminated);
    assert!(!bot_dir.join("w/stale").exists(), "the directory is cleaned at start");

    // Handshake, then polls carrying the session and server-enforced dimensions.
    let hs = calls(&fake, "handshake");
    assert_eq!(hs.len(), 1);
    let sid = hs[0]["session_id"].as_str().expect("session_id");
    assert!(sid.ends_with(&format!("/{}", std::process::id())));
    assert_eq!(hs[0]["dimensions"]["id"], json!(["loopbot"]));
    let polls = calls(&fake, "poll");
    assert_eq!(polls.len(), 3);
    assert_eq!(polls[0]["session"], json!("sess-1"));
    assert_eq!(polls[2]["session"], json!("sess-2"), "a session from a task_update reply is used");
    assert_eq!(polls[0]["dimensions"]["pool"], json!(["enforced"]));
    assert_eq!(polls[0]["dimensions"]["id"], json!(["loopbot"]));
    assert_ne!(polls[0]["request_uuid"], polls[1]["request_uuid"]);
    let q = polls[0]["state"]["quarantined"].as_str().expect("a failing health hook quarantines");
    assert!(q.contains("health"), "{q}");
    assert_eq!(polls[1]["state"]["sleep_streak"], json!(1));
    assert!(polls[0]["state"]["running_time"].is_number());

    // The task ran and its output arrived.
    let updates = calls(&fake, "task_update/abc1");
    assert!(updates.len() >= 2);
    assert_eq!(updates[0]["cost_usd"], json!(0.0));
    let mut out = Vec::new();
    for u in &updates {
        if let Some(o) = u["output"].as_str() {
            assert_eq!(u["output_chunk_start"], json!(out.len()));
            out.extend(decode_b64(o).expect("b64"));
        }
    }
    assert_eq!(out, b"hello from the task\n");
    let last = updates.last().expect("final");
    assert_eq!(last["exit_code"], json!(0));
    assert_eq!(last["id"], json!("loopbot"));

    // terminate is acknowledged, then bot_shutdown.
    let term = calls(&fake, "task_update/def1");
    assert_eq!(term.len(), 1);
    assert_eq!(term[0]["exit_code"], json!(0));
    assert_eq!(term[0]["duration"], json!(0.0));
    assert_eq!(events(&fake, "bot_shutdown").len(), 1);

    // Broken hooks were reported, each message once.
    let errors = events(&fake, "bot_error");
    assert!(errors.iter().any(|e| e.contains("get_dimensions")), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("get_state")), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("on_before_task")), "{errors:?}");
    let mut dedup = errors.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), errors.len(), "identical bot errors are posted once");

    // Headers.
    for (path, bot, auth) in fake.headers.lock().expect("lock").iter() {
        assert_eq!(bot, "loopbot", "{path}");
        assert_eq!(auth, "Bearer tok", "{path}");
    }
}

#[tokio::test]
async fn a_cancelled_bot_posts_bot_shutdown_and_returns_shutdown() {
    let fake = Arc::new(Fake::default());
    let server = serve(fake.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let token = CancellationToken::new();
    let cancel = token.clone();
    let watcher = fake.clone();
    tokio::spawn(async move {
        let polled = muster_testkit::wait_until("the bot's first poll", muster_testkit::PATIENCE, || {
            !calls(&watcher, "poll").is_empty()
        })
        .await;
        cancel.cancel();
        polled.expect("the bot polled");
    });
    let exit =
        tokio::time::timeout(Duration::from_secs(30), muster_bot::run(BotOptions::new(server, dir.path()), token))
            .await
            .expect("the bot must stop")
            .expect("run ok");
    assert_eq!(exit, BotExit::Shutdown);
    assert_eq!(events(&fake, "bot_shutdown"), vec!["Signal was received".to_string()]);
}

#[tokio::test]
async fn an_update_whose_digest_does_not_match_is_refused_and_quarantines() {
    let fake = Arc::new(Fake::default());
    let bogus = "ab".repeat(32);
    fake.replies
        .lock()
        .expect("lock")
        .extend([json!({"cmd": "update", "version": bogus}), json!({"cmd": "terminate", "task_id": "fff1"})]);
    let server = serve(fake.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let exit = tokio::time::timeout(
        Duration::from_secs(60),
        muster_bot::run(BotOptions::new(server, dir.path()), CancellationToken::new()),
    )
    .await
    .expect("the bot must finish")
    .expect("run ok");
    assert_eq!(exit, BotExit::Terminated);
    let errors = events(&fake, "bot_error");
    assert!(errors.iter().any(|e| e.contains("hashes to")), "{errors:?}");
    let polls = calls(&fake, "poll");
    let q = polls[1]["state"]["quarantined"].as_str().expect("quarantined after a failed update");
    assert!(q.contains("self-update failed"), "{q}");
    assert!(!dir.path().join("muster-bot.1").exists(), "the bad download is not kept");
}

#[tokio::test]
async fn a_bot_given_a_dead_server_first_reaches_the_live_one() {
    let fake = Arc::new(Fake::default());
    fake.replies.lock().expect("lock").extend([
        json!({"cmd": "run", "manifest": manifest("abd1", "echo \"server=$SWARMING_SERVER\"")}),
        json!({"cmd": "terminate", "task_id": "abd2"}),
    ]);
    let live = serve(fake.clone()).await;
    let dead = refusing_url();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = BotOptions::with_servers(vec![dead, format!("{live}/")], dir.path());
    opts.bot_id = Some("failover-bot".into());
    let exit = tokio::time::timeout(Duration::from_secs(60), muster_bot::run(opts, CancellationToken::new()))
        .await
        .expect("the bot must finish")
        .expect("run ok");
    assert_eq!(exit, BotExit::Terminated);
    assert_eq!(calls(&fake, "handshake").len(), 1, "the handshake reached the live server");
    assert_eq!(calls(&fake, "poll").len(), 2, "both polls reached the live server");
    let mut out = Vec::new();
    for u in calls(&fake, "task_update/abd1") {
        if let Some(o) = u["output"].as_str() {
            out.extend(decode_b64(o).expect("b64"));
        }
    }
    assert_eq!(String::from_utf8_lossy(&out), format!("server={live}\n"), "the task sees the current server");
}

#[tokio::test]
async fn a_bot_refuses_a_list_with_one_bad_url_and_names_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = BotOptions::with_servers(vec!["http://127.0.0.1:9".into(), "ftp://replica-2".into()], dir.path());
    let err = muster_bot::run(opts, CancellationToken::new()).await.expect_err("must refuse");
    assert!(matches!(&err, muster_bot::BotError::BadServer(s) if s == "ftp://replica-2"), "{err}");
}
