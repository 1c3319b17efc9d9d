//! Task notifications end to end: a real server process, real `muster bot`
//! processes, real HTTP receivers on port 0. The signature check below is
//! written from docs/notifications.md#verifying, not from the sender.

use crate::common::{exe, start_server, submit, task, wait_bots, BotProcess};
use base64::Engine;
use hmac::{Hmac, Mac};
use muster_testkit::{wait_for, Prpc, Received, Receiver, Reply, ServerProcess, PATIENCE};
use serde_json::{json, Value};
use sha2::Sha256;
use std::path::Path;
use std::time::Duration;

const SECRET: &str = "s3cret-for-tests";
const TOPIC: &str = "projects/example-ci/topics/muster-builds";

/// Writes `<data-dir>/config/notifications.toml` and the secret file.
fn configure(data_dir: &Path, toml: &str) -> anyhow::Result<()> {
    let dir = data_dir.join("config");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("hook.key"), format!("{SECRET}\n"))?;
    std::fs::write(dir.join("notifications.toml"), toml)?;
    Ok(())
}

fn webhook_sink(url: &str, extra: &str) -> String {
    format!(
        "[[sink]]\nname = \"ci\"\ntopic = \"projects/example-ci/topics/muster-*\"\nkind = \"webhook\"\n\
         url = \"{url}/hook\"\nsecret_file = \"hook.key\"\n{extra}\n"
    )
}

/// The documented check: `Muster-Signature: t=<unix seconds>,v1=<hex>` where
/// hex = HMAC-SHA256(secret, "<t>." + body), and |now - t| ≤ 5 minutes.
fn signature_ok(secret: &[u8], header: &str, body: &[u8]) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", x)) => t = x.parse::<i64>().ok(),
            Some(("v1", x)) => v1 = hex::decode(x).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else { return false };
    if (chrono::Utc::now().timestamp() - t).abs() > 300 {
        return false;
    }
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else { return false };
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&v1).is_ok()
}

/// No bot serves its pool: it ends NO_RESOURCE at submit, which is announced.
fn unservable_task(name: &str, topic: &str, userdata: &str) -> Value {
    let mut t = task(name, &["true"], json!({"dimensions": [{"key": "pool", "value": "nobody-serves-this"}]}));
    t["pubsubTopic"] = json!(topic);
    t["pubsubAuthToken"] = json!("tok-123");
    t["pubsubUserdata"] = json!(userdata);
    t
}

/// Waits until `r` has received at least `n` requests.
async fn received(r: &Receiver, n: usize, what: &str) -> anyhow::Result<Vec<Received>> {
    wait_for(what, PATIENCE, || async {
        let got = r.received();
        Ok((got.len() >= n).then_some(got))
    })
    .await
}

async fn list(server: &ServerProcess, dead: bool) -> anyhow::Result<Value> {
    let mut args = vec!["notifications", "list", "--json", "-S", &server.url];
    if dead {
        args.push("--dead");
    }
    let out = tokio::process::Command::new(exe()).args(&args).output().await?;
    anyhow::ensure!(out.status.success(), "list failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok(serde_json::from_slice(&out.stdout)?)
}

async fn row_state(server: &ServerProcess, id: &str) -> anyhow::Result<Option<String>> {
    let v = list(server, false).await?;
    Ok(v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["delivery_id"] == id)
        .and_then(|i| i["state"].as_str().map(str::to_string)))
}

async fn wait_row_state(server: &ServerProcess, id: &str, state: &str) -> anyhow::Result<()> {
    wait_for(&format!("notification {id} to be {state}"), PATIENCE, || async {
        Ok((row_state(server, id).await?.as_deref() == Some(state)).then_some(()))
    })
    .await
}

#[tokio::test]
async fn a_task_run_by_a_real_bot_notifies_its_claim_and_completion_through_both_sink_kinds() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // The webhook fails once with 500; the Pub/Sub receiver always accepts.
    let hook = Receiver::start(&[Reply::Status(500)], Reply::Status(200)).await?;
    let push = Receiver::start(&[], Reply::Status(204)).await?;
    let data = dir.path().join("server");
    configure(
        &data,
        &format!(
            "{}\n[[sink]]\nname = \"push\"\ntopic = \"{TOPIC}\"\nkind = \"pubsub_push\"\nurl = \"{}/_ah/push-handlers/x\"\n\
             subscription = \"projects/example-ci/subscriptions/muster\"\nstates = \"final\"\n",
            webhook_sink(&hook.url, ""),
            push.url
        ),
    )?;
    let srv = start_server(&data, &[]).await?;
    let prpc = Prpc::new(&srv.url);

    // A topic no sink takes is refused before anything is stored.
    let mut bad = task("unmapped", &["true"], json!({}));
    bad["pubsubTopic"] = json!("projects/other-project/topics/tttt");
    let r = prpc.call("Tasks", "NewTask", &bad).await?;
    assert_eq!(r.code, 3, "INVALID_ARGUMENT: {}", r.text);
    assert!(r.text.contains("no notification sink"), "{}", r.text);

    let _bot = BotProcess::fetch_and_start(&srv.url, &dir.path().join("home"), "notify-bot").await?;
    wait_bots(&prpc, 1).await?;
    let mut t = task("notified", &["sh", "-c", "echo hi"], json!({}));
    t["pubsubTopic"] = json!(TOPIC);
    t["pubsubAuthToken"] = json!("tok-123");
    t["pubsubUserdata"] = json!("build 42");
    let id = submit(&prpc, &t).await?;
    let r = prpc.wait_final(&id, Duration::from_secs(180)).await?;
    assert_eq!(r["state"], "COMPLETED", "{r}");

    // Webhook: RUNNING (500, then again 200) and COMPLETED (200).
    let got = wait_for("the webhook to acknowledge RUNNING and COMPLETED", PATIENCE, || async {
        let got = hook.received();
        let ok = got.iter().filter(|g| g.reply == Some(200)).count();
        Ok((ok >= 2).then_some(got))
    })
    .await?;
    for g in &got {
        assert!(signature_ok(SECRET.as_bytes(), &g.header("muster-signature"), &g.body), "bad signature: {g:?}");
        let b = g.json();
        assert_eq!(g.header("muster-delivery-id"), b["delivery_id"].as_str().unwrap_or_default());
        assert_eq!(g.header("muster-auth-token"), "tok-123");
        assert_eq!(
            (b["task_id"].as_str(), b["userdata"].as_str(), b["topic"].as_str()),
            (Some(id.as_str()), Some("build 42"), Some(TOPIC))
        );
        assert_eq!(g.path, "/hook");
    }
    // Unordered (the COMPLETED may overtake the RUNNING retry): group by id.
    let by_state = |state: &str| -> Vec<&Received> { got.iter().filter(|g| g.json()["state"] == state).collect() };
    let (running, completed) = (by_state("RUNNING"), by_state("COMPLETED"));
    assert_eq!(running.iter().map(|g| g.reply).collect::<Vec<_>>(), [Some(500), Some(200)], "{got:?}");
    assert_eq!(
        running[0].header("muster-delivery-id"),
        running[1].header("muster-delivery-id"),
        "a retry keeps its id"
    );
    assert_eq!(completed.len(), 1, "{got:?}");
    assert_ne!(running[0].header("muster-delivery-id"), completed[0].header("muster-delivery-id"));
    let update_id = |g: &Received| g.json()["update_id"].as_i64().unwrap_or(0);
    assert!(0 < update_id(running[1]) && update_id(running[1]) < update_id(completed[0]), "update ids grow");

    // Pub/Sub push: only the final state, in the push envelope.
    let pushed = received(&push, 1, "the push sink to get COMPLETED").await?;
    let env = pushed[0].json();
    assert_eq!(env["subscription"], "projects/example-ci/subscriptions/muster");
    assert_eq!(env["message"]["attributes"]["auth_token"], "tok-123");
    let data = base64::engine::general_purpose::STANDARD.decode(env["message"]["data"].as_str().unwrap_or(""))?;
    let inner: Value = serde_json::from_slice(&data)?;
    assert_eq!(inner, json!({"task_id": id, "userdata": "build 42"}));
    assert!(env["message"]["messageId"].as_str().is_some_and(|m| !m.is_empty()), "{env}");
    assert!(env["message"]["publishTime"].as_str().is_some(), "{env}");

    // Exactly those three rows, all delivered (one per sink and transition).
    let rows = list(&srv, false).await?;
    let items = rows["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 3, "{rows}");
    assert!(items.iter().all(|i| i["state"] == "delivered"), "{rows}");
    assert_eq!(push.received().len(), 1);
    srv.stop().await
}

#[tokio::test]
async fn a_404_is_dead_until_an_operator_retries_it_with_the_same_id() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let hook = Receiver::start(&[], Reply::Status(404)).await?;
    configure(dir.path(), &webhook_sink(&hook.url, ""))?;
    let srv = start_server(dir.path(), &[]).await?;
    let prpc = Prpc::new(&srv.url);
    let id = submit(&prpc, &unservable_task("dead-letter", TOPIC, "u")).await?;
    let first = received(&hook, 1, "the NO_RESOURCE notification").await?;
    let delivery = first[0].header("muster-delivery-id");
    assert_eq!(
        (first[0].json()["state"].as_str(), first[0].json()["task_id"].as_str()),
        (Some("NO_RESOURCE"), Some(id.as_str()))
    );
    wait_row_state(&srv, &delivery, "dead").await?;
    let dead = list(&srv, true).await?;
    assert!(dead["items"][0]["last_error"].as_str().is_some_and(|e| e.contains("404")), "{dead}");
    assert_eq!(hook.received().len(), 1, "a 404 is not retried by itself");

    hook.then(Reply::Status(200));
    let out = tokio::process::Command::new(exe())
        .args(["notifications", "retry", "-S", &srv.url, &delivery])
        .output()
        .await?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_row_state(&srv, &delivery, "delivered").await?;
    let all = hook.received();
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[1].header("muster-delivery-id"), delivery);
    srv.stop().await
}

#[tokio::test]
async fn a_hanging_receiver_times_out_and_the_retry_delivers() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let hook = Receiver::start(&[Reply::Hang], Reply::Status(200)).await?;
    configure(dir.path(), &format!("[delivery]\ntimeout = \"1s\"\n\n{}", webhook_sink(&hook.url, "")))?;
    let srv = start_server(dir.path(), &[]).await?;
    let prpc = Prpc::new(&srv.url);
    let id = submit(&prpc, &unservable_task("hang", TOPIC, "")).await?;
    let got = received(&hook, 2, "a second attempt after the timeout").await?;
    let delivery = got[0].header("muster-delivery-id");
    assert_eq!(got[1].header("muster-delivery-id"), delivery);
    assert_eq!(got[1].json()["task_id"], id);
    wait_row_state(&srv, &delivery, "delivered").await?;
    let rows = list(&srv, false).await?;
    let attempts = &rows["items"][0]["attempts"];
    assert!(attempts == &json!(2) || attempts == &json!("2"), "{rows}");
    srv.stop().await
}

#[tokio::test]
async fn a_server_killed_mid_delivery_delivers_again_with_the_same_id_after_restart() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // The first attempt hangs for longer than the test: only a restart can
    // lead to a second one.
    let hook = Receiver::start(&[Reply::Hang], Reply::Status(200)).await?;
    configure(dir.path(), &format!("[delivery]\ntimeout = \"10m\"\n\n{}", webhook_sink(&hook.url, "")))?;
    let srv = start_server(dir.path(), &[]).await?;
    let prpc = Prpc::new(&srv.url);
    let id = submit(&prpc, &unservable_task("crash", TOPIC, "")).await?;
    let first = received(&hook, 1, "the first attempt").await?;
    let delivery = first[0].header("muster-delivery-id");
    srv.kill9().await?;

    let srv = ServerProcess::start(&exe(), dir.path(), 0, &[]).await?;
    let got = received(&hook, 2, "the attempt of the restarted server").await?;
    assert_eq!(got[1].header("muster-delivery-id"), delivery);
    assert_eq!(got[1].json()["task_id"], id);
    wait_row_state(&srv, &delivery, "delivered").await?;
    srv.stop().await
}

#[tokio::test]
async fn config_check_reports_notifications_toml_problems_by_line() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let toml = "[[sink]]\ntopic = \"projects/example-ci/topics/a\"\nkind = \"email\"\nurl = \"https://x.example\"\n";
    std::fs::write(dir.path().join("notifications.toml"), toml)?;
    let out = tokio::process::Command::new(exe()).arg("config").arg("check").arg(dir.path()).output().await?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("notifications.toml:3:8: sink kind \"email\""), "{stderr}");
    std::fs::write(dir.path().join("notifications.toml"), toml.replace("email", "pubsub_push"))?;
    let out = tokio::process::Command::new(exe()).arg("config").arg("check").arg(dir.path()).output().await?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}
