//! Bot access refused: a wrong or missing token, or an address outside the
//! allowed ranges, keeps a real `muster bot` out (and the protocol says why),
//! while the right token lets the same kind of bot in.

use crate::common::{start_server, BotProcess};
use muster_testkit::{wait_for, Prpc, PATIENCE};
use serde_json::{json, Value};
use std::path::Path;

/// A handshake as a bot sends it, with `token` as its bearer token.
async fn handshake(url: &str, id: &str, token: Option<&str>) -> anyhow::Result<(u16, Value)> {
    let mut req = reqwest::Client::new()
        .post(format!("{url}/swarming/api/v1/bot/handshake"))
        .header("x-luci-swarming-bot-id", id)
        .json(&json!({"dimensions": {"id": [id], "pool": ["default"]}, "state": {}, "version": ""}));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await?))
}

/// Waits until the bot's log (`<dir>/<id>.log`) shows `needle`.
async fn log_shows(dir: &Path, id: &str, needle: &str) -> anyhow::Result<String> {
    let log = dir.join(format!("{id}.log"));
    wait_for(&format!("{} to show {needle:?}", log.display()), PATIENCE, || async {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        Ok(text.contains(needle).then_some(text))
    })
    .await
}

/// Whether the server knows a bot by this id.
async fn known(prpc: &Prpc, id: &str) -> anyhow::Result<bool> {
    Ok(prpc.call("Bots", "GetBot", &json!({"botId": id})).await?.code == 0)
}

#[tokio::test]
async fn a_wrong_or_missing_bot_token_is_refused_and_the_right_one_admitted() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let srv = start_server(&dir.path().join("server"), &["--bot-token", "right-token"]).await?;
    let prpc = Prpc::new(&srv.url);

    let (status, body) = handshake(&srv.url, "no-token", None).await?;
    assert_eq!(status, 401, "{body}");
    let (status, body) = handshake(&srv.url, "wrong-token", Some("wrong-token")).await?;
    assert_eq!(status, 401, "{body}");
    let (status, body) = handshake(&srv.url, "right-token", Some("right-token")).await?;
    assert_eq!(status, 200, "{body}");

    // Real bots: the one without a token and the one with the wrong token
    // are told 401 and stay unknown; the one with the right token connects.
    let bots = dir.path().join("bots");
    let _none = BotProcess::start(&srv.url, &bots.join("none"), "bot-none", &["--no-self-update"]).await?;
    let _wrong =
        BotProcess::start(&srv.url, &bots.join("wrong"), "bot-wrong", &["--no-self-update", "--token", "nope"]).await?;
    log_shows(&bots, "bot-none", "HTTP 401").await?;
    log_shows(&bots, "bot-wrong", "HTTP 401").await?;
    let _right =
        BotProcess::start(&srv.url, &bots.join("right"), "bot-right", &["--no-self-update", "--token", "right-token"])
            .await?;
    wait_for("bot-right to be known", PATIENCE, || async { Ok(known(&prpc, "bot-right").await?.then_some(())) })
        .await?;
    assert!(!known(&prpc, "bot-none").await?, "a bot without the token got in");
    assert!(!known(&prpc, "bot-wrong").await?, "a bot with a wrong token got in");
    srv.stop().await
}

#[tokio::test]
async fn a_bot_outside_the_allowed_ranges_is_refused_even_with_the_token() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // Only 10.0.0.0/8 may connect; the test's bots come from 127.0.0.1.
    let srv = start_server(&dir.path().join("server"), &["--bot-token", "t0k3n", "--bot-allow", "10.0.0.0/8"]).await?;
    let prpc = Prpc::new(&srv.url);
    let (status, body) = handshake(&srv.url, "outsider", Some("t0k3n")).await?;
    // Upstream (Go) answers every failed bot credential check with 401.
    assert_eq!(status, 401, "{body}");
    assert!(body.to_string().contains("not in IP allowlist"), "{body}");
    let bots = dir.path().join("bots");
    let _bot = BotProcess::start(&srv.url, &bots.join("out"), "bot-outside", &["--no-self-update", "--token", "t0k3n"])
        .await?;
    log_shows(&bots, "bot-outside", "HTTP 401").await?;
    assert!(!known(&prpc, "bot-outside").await?, "a bot from outside the allowed ranges got in");
    srv.stop().await
}
