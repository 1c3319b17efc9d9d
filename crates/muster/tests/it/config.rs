//! `muster server` configuration layering: file, environment, flags.

use crate::common::{exe, start_server};
use muster_testkit::TestBot;
use std::process::Stdio;

#[tokio::test]
async fn a_config_file_configures_the_server_and_flags_win_over_it() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let cfg = dir.path().join("muster.toml");
    std::fs::write(&cfg, "bot_dimensions = [\"zone=from-file\"]\nlong_poll_secs = 2\n")?;
    let srv = start_server(&dir.path().join("data"), &["--config", cfg.to_str().unwrap_or_default()]).await?;
    let mut bot = TestBot::new(&srv.url, "cfg-bot", "default", &[]);
    let v = bot.handshake().await?;
    assert_eq!(v["bot_group_cfg"]["dimensions"]["zone"], serde_json::json!(["from-file"]), "{v}");
    srv.stop().await?;

    let srv = start_server(
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap_or_default(), "--bot-dimension", "zone=from-flag"],
    )
    .await?;
    let mut bot = TestBot::new(&srv.url, "cfg-bot", "default", &[]);
    let v = bot.handshake().await?;
    assert_eq!(v["bot_group_cfg"]["dimensions"]["zone"], serde_json::json!(["from-flag"]), "{v}");
    srv.stop().await?;
    Ok(())
}

#[tokio::test]
async fn bad_configuration_is_one_clear_error_not_a_panic() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "listen = \"127.0.0.1:0\"\nno_such_key = 1\n")?;
    let run = |args: Vec<String>, env: Vec<(&'static str, &'static str)>| {
        let mut c = tokio::process::Command::new(exe());
        c.args(args).stdin(Stdio::null());
        for (k, v) in env {
            c.env(k, v);
        }
        c.output()
    };
    let data = dir.path().join("data").to_string_lossy().to_string();
    let out = run(
        vec!["server".into(), "--config".into(), cfg.to_string_lossy().to_string(), "--data-dir".into(), data.clone()],
        vec![],
    )
    .await?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(err.contains("no_such_key") && !err.contains("panicked"), "{err}");
    // A public address without bot authentication is refused (env form of --listen).
    let out = run(vec!["server".into(), "--data-dir".into(), data], vec![("MUSTER_LISTEN", "0.0.0.0:0")]).await?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(err.contains("refusing to serve bots on public address"), "{err}");
    Ok(())
}
