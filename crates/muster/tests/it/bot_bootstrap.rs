//! One-time bootstrap tokens with real `muster bot` processes: a bot joins
//! with a bootstrap token, keeps the machine token it got for it across a
//! kill -9 and restart, and the same bootstrap token is refused to anyone
//! else. And a config reload that changes a group's forced dimensions makes
//! its running bots restart to pick them up.

use crate::common::{exe, submit, task, BotProcess};
use muster_core::time::SystemClock;
use muster_sched::SchedConfig;
use muster_store::{Txn, Write};
use muster_testkit::{wait_for, Prpc, TestServer, PATIENCE};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);
/// The key the in-process test server signs with; `muster server` keeps its
/// key in the database's `session_key` row, which is where
/// `muster bot-token bootstrap` reads it.
const KEY: &[u8] = b"test-session-secret-0123456789abcdef";

fn write_bots_cfg(dir: &Path, pool: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let cfg = format!(
        "trusted_dimensions: \"pool\"\nbot_group {{\n  bot_id_prefix: \"boot-\"\n  auth {{ require_luci_machine_token: true }}\n  dimensions: \"pool:{pool}\"\n}}\n"
    );
    std::fs::write(dir.join("bots.cfg"), cfg)?;
    Ok(())
}

struct Setup {
    srv: TestServer,
    holder: Arc<muster_config::ConfigHolder>,
    config_dir: tempfile::TempDir,
    home: tempfile::TempDir,
}

async fn setup(pool: &str) -> anyhow::Result<Setup> {
    let config_dir = tempfile::tempdir()?;
    write_bots_cfg(config_dir.path(), pool)?;
    let holder = Arc::new(
        muster_config::ConfigHolder::load(config_dir.path(), Default::default()).map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    let h = holder.clone();
    let cfg = SchedConfig { long_poll: Duration::from_secs(2), ..Default::default() };
    let srv = TestServer::start_configured(Arc::new(SystemClock), cfg, move |c| {
        c.bot_config = Some(h);
        c.bot_exe = Some(exe());
    })
    .await?;
    let meta = Write::PutMetaIfAbsent { name: "session_key".to_string(), value: KEY.to_vec() };
    srv.store.commit(Txn::new().with(meta)).await?;
    Ok(Setup { srv, holder, config_dir, home: tempfile::tempdir()? })
}

/// `muster bot-token bootstrap --out PATH` against the server's database.
async fn bootstrap_token(srv: &TestServer, out: &Path) -> anyhow::Result<()> {
    let data_dir = srv.dir.path().to_string_lossy().to_string();
    let o = tokio::process::Command::new(exe())
        .args(["bot-token", "bootstrap", "--data-dir", &data_dir, "--out", &out.to_string_lossy()])
        .output()
        .await?;
    anyhow::ensure!(o.status.success(), "bot-token bootstrap failed: {}", String::from_utf8_lossy(&o.stderr));
    Ok(())
}

fn log_of(home: &Path, id: &str) -> String {
    std::fs::read_to_string(home.join(format!("{id}.log"))).unwrap_or_default()
}

/// Waits until `id` is registered with `pool` as its (server-forced) pool.
async fn wait_in_pool(prpc: &Prpc, home: &Path, id: &str, pool: &str) -> anyhow::Result<()> {
    let what = format!("{id} to serve pool {pool}");
    let res = wait_for(&what, PATIENCE, || async {
        let r = prpc.call("Bots", "GetBot", &json!({"botId": id})).await?;
        let dims = r.json["dimensions"].as_array().cloned().unwrap_or_default();
        let in_pool = dims.iter().any(|d| d["key"] == "pool" && d["value"] == json!([pool]));
        Ok((r.code == 0 && r.json["isDead"] != true && in_pool).then_some(()))
    })
    .await;
    res.map_err(|e| anyhow::anyhow!("{e}; bot log:\n{}", log_of(home, id)))
}

async fn run_in_pool(prpc: &Prpc, name: &str, pool: &str) -> anyhow::Result<Value> {
    let mut t = task(name, &["sh", "-c", "echo ran on $SWARMING_BOT_ID"], json!({}));
    t["taskSlices"][0]["properties"]["dimensions"] = json!([{"key": "pool", "value": pool}]);
    let id = submit(prpc, &t).await?;
    prpc.wait_final(&id, LIMIT).await
}

#[tokio::test]
async fn a_bootstrap_token_buys_one_machine_token_that_survives_a_restart() -> anyhow::Result<()> {
    let s = setup("boot").await?;
    let prpc = s.srv.prpc();
    let home = s.home.path();
    let boot = home.join("boot.token");
    bootstrap_token(&s.srv, &boot).await?;
    let bootstrap = std::fs::read_to_string(&boot)?.trim().to_string();
    let boot_arg = boot.to_string_lossy().to_string();
    let bot_dir = home.join("boot-1");
    let mut bot = BotProcess::start(&s.srv.url, &bot_dir, "boot-1", &["--bootstrap-token-file", &boot_arg]).await?;
    wait_in_pool(&prpc, home, "boot-1", "boot").await?;
    let r = run_in_pool(&prpc, "first", "boot").await?;
    assert_eq!(r["state"], "COMPLETED", "{r}\n{}", log_of(home, "boot-1"));
    assert_eq!(r["botId"], "boot-1");

    // The machine token is in the bot directory, for the bot's user only,
    // and is the one stored (by digest) for host boot-1.
    let stored = bot_dir.join("machine.token");
    let machine = std::fs::read_to_string(&stored)?.trim().to_string();
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(std::fs::metadata(&stored)?.permissions().mode() & 0o777, 0o600);
    let (id, secret) = muster_botauth::token::parse_machine_token(&machine).expect("an msm_ token");
    let rec = s.srv.store.get_bot_token(id).await?.expect("the machine token is stored");
    assert_eq!(rec.host, "boot-1");
    assert_eq!(rec.secret_sha256, muster_botauth::token::sha256_hex(secret));
    assert!(!log_of(home, "boot-1").contains(&machine), "the bot logged its machine token");

    // kill -9 and start again (same flags): the stored machine token is used.
    bot.kill9().await?;
    let _bot = BotProcess::start(&s.srv.url, &bot_dir, "boot-1", &["--bootstrap-token-file", &boot_arg]).await?;
    wait_for("boot-1 to handshake again", PATIENCE, || async {
        let events = prpc.ok("Bots", "ListBotEvents", &json!({"botId": "boot-1", "limit": 100})).await?;
        let n = events["items"].as_array().into_iter().flatten().filter(|e| e["eventType"] == "bot_connected").count();
        Ok((n >= 2).then_some(()))
    })
    .await?;
    let r = run_in_pool(&prpc, "after-restart", "boot").await?;
    assert_eq!(r["state"], "COMPLETED", "{r}\n{}", log_of(home, "boot-1"));
    assert_eq!(r["botId"], "boot-1");

    // The same bootstrap token, presented again by another bot: refused.
    let replay = reqwest::Client::new()
        .post(format!("{}/swarming/api/v1/bot/handshake", s.srv.url))
        .header("X-Muster-Bootstrap-Token", &bootstrap)
        .json(&json!({"dimensions": {"id": ["boot-2"]}, "state": {}, "version": ""}))
        .send()
        .await?;
    assert_eq!(replay.status().as_u16(), 401);
    let body = replay.text().await?;
    assert!(body.contains("already used"), "{body}");
    // A real second bot with it never gets in, and says why in its log.
    let _second =
        BotProcess::start(&s.srv.url, &home.join("boot-2"), "boot-2", &["--bootstrap-token-file", &boot_arg]).await?;
    wait_for("boot-2 to log the refusal", PATIENCE, || async {
        Ok(log_of(home, "boot-2").contains("bootstrap token already used").then_some(()))
    })
    .await?;
    let tokens = s.srv.store.list_bot_tokens().await?;
    assert_eq!(tokens.len(), 1, "a replayed bootstrap token minted a token: {tokens:?}");
    assert!(prpc.call("Bots", "GetBot", &json!({"botId": "boot-2"})).await?.code != 0, "boot-2 registered");
    s.srv.stop().await;
    Ok(())
}

/// A reload that changes the group's forced pool: the running bot is told
/// `bot_restart`, restarts (re-exec), handshakes again and serves the new pool.
#[tokio::test]
async fn a_group_config_change_restarts_the_groups_bots() -> anyhow::Result<()> {
    let s = setup("before").await?;
    let prpc = s.srv.prpc();
    let home = s.home.path();
    let boot = home.join("boot.token");
    bootstrap_token(&s.srv, &boot).await?;
    let boot_arg = boot.to_string_lossy().to_string();
    let _bot =
        BotProcess::start(&s.srv.url, &home.join("boot-r"), "boot-r", &["--bootstrap-token-file", &boot_arg]).await?;
    wait_in_pool(&prpc, home, "boot-r", "before").await?;
    let r = run_in_pool(&prpc, "before", "before").await?;
    assert_eq!(r["state"], "COMPLETED", "{r}\n{}", log_of(home, "boot-r"));

    write_bots_cfg(s.config_dir.path(), "after")?;
    s.holder.reload().map_err(|e| anyhow::anyhow!("{e}"))?;
    let restarted = wait_for("boot-r to restart for the new config", LIMIT, || async {
        let events = prpc.ok("Bots", "ListBotEvents", &json!({"botId": "boot-r", "limit": 100})).await?;
        Ok(events["items"].as_array().into_iter().flatten().find_map(|e| {
            let m = e["message"].as_str().unwrap_or_default();
            (e["eventType"] == "bot_shutdown" && m.contains("new bots.cfg config")).then(|| m.to_string())
        }))
    })
    .await?;
    assert!(restarted.starts_with("About to restart"), "{restarted}");
    wait_in_pool(&prpc, home, "boot-r", "after").await?;
    // After the restart the bot (same process tree, re-exec'd, its machine
    // token from disk) runs the new pool's tasks.
    let r = run_in_pool(&prpc, "after", "after").await?;
    assert_eq!(r["state"], "COMPLETED", "{r}\n{}", log_of(home, "boot-r"));
    assert_eq!(r["botId"], "boot-r");
    let events = prpc.ok("Bots", "ListBotEvents", &json!({"botId": "boot-r", "limit": 100})).await?;
    let connects =
        events["items"].as_array().into_iter().flatten().filter(|e| e["eventType"] == "bot_connected").count();
    assert!(connects >= 2, "the bot did not handshake again: {events}");
    s.srv.stop().await;
    Ok(())
}
