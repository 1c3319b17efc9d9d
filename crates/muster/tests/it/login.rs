//! `muster login` with the device flow (RFC 8628) against the testkit's real
//! local issuer: the CLI prints where to approve, the "user" approves on the
//! issuer's page, the CLI saves the ID token and later commands use it.

use crate::common::{exe, start_server};
use muster_testkit::{within, OidcIssuer, Prpc, PATIENCE};
use serde_json::json;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test]
async fn login_signs_in_with_the_device_flow_and_saves_a_token_later_commands_use() -> anyhow::Result<()> {
    let issuer = OidcIssuer::start().await?;
    issuer.set_user(Some("dev@x.com"));
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("config");
    std::fs::create_dir_all(&config)?;
    std::fs::write(
        config.join("access.toml"),
        format!(
            "[[oidc]]\nissuer = \"{}\"\naudiences = [\"muster\"]\nclient_id = \"muster-cli\"\n\n\
             [[pool]]\nname = \"p\"\nsubmitters = [\"user:dev@x.com\"]\n",
            issuer.url
        ),
    )?;
    let cfg = config.to_string_lossy().to_string();
    let srv = start_server(&dir.path().join("server"), &["--config-dir", cfg.as_str()]).await?;
    let home = dir.path().join("home");
    let mut child = tokio::process::Command::new(exe())
        .args(["login", "-S", &srv.url])
        .env("XDG_CONFIG_HOME", &home)
        .env_remove("MUSTER_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stderr = child.stderr.take().ok_or_else(|| anyhow::anyhow!("no stderr"))?;
    let mut lines = BufReader::new(stderr).lines();
    // The approval page named by the CLI.
    let approve = within("the CLI to print the approval URL", PATIENCE, async {
        while let Some(line) = lines.next_line().await? {
            if let Some(url) = line.strip_prefix("To sign in, open ") {
                return anyhow::Ok(url.trim().to_string());
            }
        }
        anyhow::bail!("the CLI ended without printing an approval URL")
    })
    .await??;
    assert!(approve.starts_with(&format!("{}/device?user_code=", issuer.url)), "{approve}");
    let r = reqwest::get(&approve).await?;
    assert_eq!(r.status().as_u16(), 200, "approved");
    let status = within("muster login to finish", PATIENCE, child.wait()).await??;
    let mut rest = String::new();
    while let Ok(Some(l)) = lines.next_line().await {
        rest.push_str(&l);
        rest.push('\n');
    }
    assert!(status.success(), "muster login failed: {rest}");
    let saved = std::fs::read_to_string(home.join("muster").join("credentials"))?;
    let token = muster_cli::client::parse_credentials(&saved).ok_or_else(|| anyhow::anyhow!("no token in {saved}"))?;
    assert!(token.starts_with("ey") && token.split('.').count() == 3, "an ID token was saved: {token}");
    // The saved token is the caller's identity: it may submit to pool p,
    // an anonymous caller may not.
    let body = json!({"name": "t", "priority": 100, "taskSlices": [{"expirationSecs": 600, "properties": {
        "command": ["true"], "dimensions": [{"key": "pool", "value": "p"}],
        "executionTimeoutSecs": 60, "ioTimeoutSecs": 60, "gracePeriodSecs": 5}}]});
    assert_eq!(Prpc::new(&srv.url).with_token(&token).call("Tasks", "NewTask", &body).await?.code, 0);
    assert_eq!(Prpc::new(&srv.url).call("Tasks", "NewTask", &body).await?.code, 7);
    // And the CLI sends it by itself.
    let out = tokio::process::Command::new(exe())
        .args(["token", "list", "-S", &srv.url])
        .env("XDG_CONFIG_HOME", &home)
        .env_remove("MUSTER_TOKEN")
        .output()
        .await?;
    assert!(out.status.success(), "token list with the saved login: {}", String::from_utf8_lossy(&out.stderr));
    srv.stop().await?;
    Ok(())
}
