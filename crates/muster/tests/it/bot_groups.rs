//! Bot groups with real `muster bot` processes: two groups (pool `ci` by
//! group token, pool `lab` by a machine token made with `muster bot-token`)
//! and an impostor holding the ci token that reports pool=lab.

use crate::common::{exe, submit, task, BotProcess};
use muster_core::time::SystemClock;
use muster_sched::SchedConfig;
use muster_testkit::{Prpc, TestServer};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);
const CI_TOKEN: &str = "ci-group-token-e2e-5d1f0a";

/// A config directory as an operator writes it: bots.cfg (upstream format)
/// with two groups, and the ci group's token in access.toml `[[bot_auth]]`.
fn write_config(dir: &Path, lab_pool: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join("bots.cfg"),
        format!(
            r#"trusted_dimensions: "pool"
bot_group {{
  bot_id_prefix: "ci-"
  auth {{ require_luci_machine_token: true }}
  dimensions: "pool:ci"
}}
bot_group {{
  bot_id_prefix: "lab-"
  auth {{ require_luci_machine_token: true }}
  dimensions: "pool:{lab_pool}"
}}
"#
        ),
    )?;
    std::fs::write(
        dir.join("access.toml"),
        format!(
            "[[bot_auth]]\ngroup = \"bot_id_prefix:ci-\"\ntoken_sha256 = [\"{}\"]\n",
            muster_botauth::token::sha256_hex(CI_TOKEN)
        ),
    )?;
    Ok(())
}

async fn muster(args: &[&str]) -> anyhow::Result<std::process::Output> {
    Ok(tokio::process::Command::new(exe()).args(args).output().await?)
}

async fn bot_dims(prpc: &Prpc, id: &str) -> anyhow::Result<Option<serde_json::Value>> {
    let r = prpc.call("Bots", "GetBot", &json!({"botId": id})).await?;
    Ok((r.code == 0).then(|| r.json["dimensions"].clone()))
}

async fn wait_registered(prpc: &Prpc, ids: &[&str], home: &Path) -> anyhow::Result<()> {
    for _ in 0..600 {
        let mut all = true;
        for id in ids {
            all &= bot_dims(prpc, id).await?.is_some();
        }
        if all {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let logs: Vec<String> =
        ids.iter().map(|id| std::fs::read_to_string(home.join(format!("{id}.log"))).unwrap_or_default()).collect();
    anyhow::bail!("bots {ids:?} did not all register in 60 s; logs:\n{}", logs.join("\n----\n"))
}

#[tokio::test]
async fn each_pool_runs_only_on_its_groups_bots_and_an_impostor_gets_nothing() -> anyhow::Result<()> {
    let config_dir = tempfile::tempdir()?;
    write_config(config_dir.path(), "lab")?;
    let holder = Arc::new(
        muster_config::ConfigHolder::load(config_dir.path(), Default::default()).map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    let h = holder.clone();
    let cfg = SchedConfig { long_poll: Duration::from_secs(2), ..Default::default() };
    let srv = TestServer::start_configured(Arc::new(SystemClock), cfg, move |c| {
        c.bot_config = Some(h);
        // Serve the muster executable (not this test binary): the bots are up to date.
        c.bot_exe = Some(exe());
    })
    .await?;
    let prpc = srv.prpc();
    let home = tempfile::tempdir()?;
    // A machine token for host lab-1, made by the CLI in the server's database.
    let lab_token = home.path().join("lab.token");
    let data_dir = srv.dir.path().to_string_lossy().to_string();
    let out = muster(&[
        "bot-token",
        "create",
        "--host",
        "lab-1",
        "--data-dir",
        &data_dir,
        "--out",
        &lab_token.to_string_lossy(),
    ])
    .await?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty(), "the token goes to the file only");
    let ci_token = home.path().join("ci.token");
    std::fs::write(&ci_token, format!("{CI_TOKEN}\n"))?;
    let ci = ci_token.to_string_lossy().to_string();
    let lab = lab_token.to_string_lossy().to_string();
    let _ci1 =
        BotProcess::start(&srv.url, &home.path().join("ci-1"), "ci-1", &["--token-file", &ci, "-d", "pool=ci"]).await?;
    let _lab1 =
        BotProcess::start(&srv.url, &home.path().join("lab-1"), "lab-1", &["--token-file", &lab, "-d", "pool=lab"])
            .await?;
    let _imp =
        BotProcess::start(&srv.url, &home.path().join("ci-imp"), "ci-imp", &["--token-file", &ci, "-d", "pool=lab"])
            .await?;
    wait_registered(&prpc, &["ci-1", "lab-1", "ci-imp"], home.path()).await?;
    let dims = bot_dims(&prpc, "ci-imp").await?.unwrap_or_default();
    let pools: Vec<&serde_json::Value> = dims
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["key"] == "pool")
        .flat_map(|d| d["value"].as_array())
        .flatten()
        .collect();
    assert_eq!(pools, vec![&json!("ci")], "the impostor's pool is its group's: {dims}");

    let pooled = |name: &str, pool: &str, secret: bool| {
        let mut t = task(name, &["sh", "-c", "echo ran on $SWARMING_BOT_ID"], json!({}));
        t["taskSlices"][0]["properties"]["dimensions"] = json!([{"key": "pool", "value": pool}]);
        if secret {
            t["taskSlices"][0]["properties"]["secretBytes"] = json!("c2VjcmV0LWZvci1sYWI=");
        }
        t
    };
    let mut lab_ids = Vec::new();
    let mut ci_ids = Vec::new();
    for i in 0..4 {
        lab_ids.push(submit(&prpc, &pooled(&format!("lab-{i}"), "lab", true)).await?);
        ci_ids.push(submit(&prpc, &pooled(&format!("ci-{i}"), "ci", false)).await?);
    }
    for id in &lab_ids {
        let r = prpc.wait_final(id, LIMIT).await?;
        assert_eq!(r["state"], "COMPLETED", "{r}");
        assert_eq!(r["botId"], "lab-1", "a lab task (with secret_bytes) ran elsewhere: {r}");
    }
    for id in &ci_ids {
        let r = prpc.wait_final(id, LIMIT).await?;
        assert_eq!(r["state"], "COMPLETED", "{r}");
        assert!(r["botId"] == "ci-1" || r["botId"] == "ci-imp", "{r}");
    }
    let imp_tasks =
        prpc.ok("Bots", "ListBotTasks", &json!({"botId": "ci-imp", "state": "QUERY_ALL", "limit": 100})).await?;
    for t in imp_tasks["items"].as_array().into_iter().flatten() {
        assert!(!t["name"].as_str().unwrap_or_default().starts_with("lab-"), "the impostor ran {t}");
    }
    // Hot reload: the lab group's pool changes; the bot's next poll has it.
    write_config(config_dir.path(), "lab2")?;
    holder.reload().map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut seen = json!(null);
    for _ in 0..300 {
        let dims = bot_dims(&prpc, "lab-1").await?.unwrap_or_default();
        seen = dims.as_array().into_iter().flatten().find(|d| d["key"] == "pool").cloned().unwrap_or_default();
        if seen["value"] == json!(["lab2"]) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen["value"], json!(["lab2"]), "the reloaded group's pool was not applied");
    srv.stop().await;
    Ok(())
}

/// `muster bot-token`: create prints the token once, list never shows
/// secrets, revoke is idempotent, an unknown id is an error.
#[tokio::test]
async fn bot_token_cli_creates_lists_and_revokes() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let data_dir = srv.dir.path().to_string_lossy().to_string();
    let out = muster(&["bot-token", "create", "--host", "vm12", "--data-dir", &data_dir]).await?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let (id, secret) = muster_botauth::token::parse_machine_token(&token).expect("msm_ token");
    let (id, secret) = (id.to_string(), secret.to_string());
    let list = muster(&["bot-token", "list", "--data-dir", &data_dir]).await?;
    let text = String::from_utf8_lossy(&list.stdout).to_string();
    assert!(text.contains(&id) && text.contains("vm12") && text.contains("active"), "{text}");
    assert!(!text.contains(&secret), "list shows the secret");
    let stored = srv.store.get_bot_token(&id).await?.expect("stored");
    assert_ne!(stored.secret_sha256, secret);
    let r = muster(&["bot-token", "revoke", &id, "--data-dir", &data_dir]).await?;
    assert!(r.status.success() && String::from_utf8_lossy(&r.stdout).contains("revoked"));
    let r = muster(&["bot-token", "revoke", &id, "--data-dir", &data_dir]).await?;
    assert!(r.status.success() && String::from_utf8_lossy(&r.stdout).contains("already revoked"));
    let r = muster(&["bot-token", "revoke", "0000", "--data-dir", &data_dir]).await?;
    assert!(!r.status.success());
    let bad = muster(&["bot-token", "create", "--host", "bad host", "--data-dir", &data_dir]).await?;
    assert!(!bad.status.success());
    srv.stop().await;
    Ok(())
}

/// With a bots.cfg the bot flags are refused at start; an invalid bots.cfg
/// stops the start with the file position of the problem.
#[tokio::test]
async fn a_bots_cfg_excludes_the_bot_flags_and_must_be_valid() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("config");
    write_config(&config, "lab")?;
    let data = dir.path().join("data").to_string_lossy().to_string();
    let cfg = config.to_string_lossy().to_string();
    let run = |extra: &'static [&'static str]| {
        let (data, cfg) = (data.clone(), cfg.clone());
        async move {
            let mut args = vec!["server", "--listen", "127.0.0.1:0", "--data-dir", &data, "--config-dir", &cfg];
            args.extend_from_slice(extra);
            let child = tokio::process::Command::new(exe()).args(&args).kill_on_drop(true).output();
            tokio::time::timeout(Duration::from_secs(60), child).await
        }
    };
    let out = run(&["--bot-token", "x"]).await??;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--bot-token cannot be used too"), "{err}");
    std::fs::write(
        config.join("bots.cfg"),
        "bot_group {\n  bot_id_prefix: \"a\"\n  auth { ip_whitelist: \"nope\" }\n}\n",
    )?;
    let out = run(&[]).await??;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bots.cfg:1:") && err.contains("unknown IP allowlist \"nope\""), "{err}");
    Ok(())
}
