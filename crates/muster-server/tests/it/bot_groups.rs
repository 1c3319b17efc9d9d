//! Bot groups: group selection, credentials re-checked on every call,
//! server-forced pools, machine tokens, sessions replaced by a newer
//! handshake (docs/bot-groups.md).

use muster_botauth::cidr::Cidr;
use muster_botauth::spec::{build, AuthSpec, BotsSpec, Context, GroupSpec, TokenAuthSpec};
use muster_botauth::token;
use muster_core::bot::BotToken;
use muster_core::time::SystemClock;
use muster_sched::SchedConfig;
use muster_store::{Txn, Write};
use muster_testkit::{TestBot, TestServer};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const CI_TOKEN: &str = "ci-group-token-0123456789";

/// Two groups: `ci-*` by group token (pool ci), `lab-*` by machine token
/// (pool lab); plus `net-*` reachable only from 10.0.0.0/8.
fn groups() -> muster_botauth::BotGroups {
    let spec = BotsSpec {
        trusted_dimensions: vec!["pool".into()],
        bot_group: vec![
            GroupSpec {
                bot_id_prefix: vec!["ci-".into()],
                auth: vec![AuthSpec { require_luci_machine_token: true, ..Default::default() }],
                dimensions: vec!["pool:ci".into()],
                ..Default::default()
            },
            GroupSpec {
                bot_id_prefix: vec!["lab-".into()],
                auth: vec![AuthSpec { require_luci_machine_token: true, ..Default::default() }],
                dimensions: vec!["pool:lab".into()],
                ..Default::default()
            },
            GroupSpec {
                bot_id_prefix: vec!["net-".into()],
                auth: vec![AuthSpec { ip_whitelist: "ten".into(), ..Default::default() }],
                dimensions: vec!["pool:net".into()],
                ..Default::default()
            },
        ],
    };
    let mut cx = Context::default();
    cx.allowlists.insert("ten".into(), vec![Cidr::parse("10.0.0.0/8").expect("cidr")]);
    cx.token_auth.push(TokenAuthSpec {
        group: "bot_id_prefix:ci-".into(),
        token_sha256: vec![token::sha256_hex(CI_TOKEN)],
        ip_allowlist: String::new(),
    });
    build(&spec, &cx).map_err(|e| format!("{e:?}")).expect("valid groups").groups
}

async fn server() -> anyhow::Result<TestServer> {
    let cfg = SchedConfig { long_poll: Duration::from_secs(1), ..Default::default() };
    let groups = Arc::new(groups());
    TestServer::start_configured(Arc::new(SystemClock), cfg, move |c| c.bot_groups = Some(groups)).await
}

/// Stores a machine token for `host`; returns the token string.
async fn machine_token(srv: &TestServer, host: &str) -> anyhow::Result<(String, String)> {
    let t = token::new_machine_token();
    let rec = BotToken {
        id: t.id.clone(),
        host: host.into(),
        secret_sha256: t.secret_sha256,
        created: srv.now(),
        created_by: "test".into(),
        revoked: None,
    };
    srv.store.commit(Txn::new().with(Write::PutBotToken(Box::new(rec)))).await?;
    Ok((t.id, t.token))
}

fn pool_of(v: &Value) -> Value {
    v["bot_group_cfg"]["dimensions"]["pool"].clone()
}

/// Wrong token, no token, another host's machine token, a revoked machine
/// token, the wrong address: 401 with the upstream text, and nothing stored.
#[tokio::test]
async fn bad_credentials_are_refused_with_401_and_store_nothing() -> anyhow::Result<()> {
    let srv = server().await?;
    let (_, lab2) = machine_token(&srv, "lab-2").await?;
    let (revoked_id, revoked) = machine_token(&srv, "lab-3").await?;
    srv.store.commit(Txn::new().with(Write::RevokeBotToken { id: revoked_id, at: srv.now() })).await?;
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("ci-1", Some("wrong".into()), "wrong bot token"),
        ("ci-1", None, "no bot token"),
        ("lab-1", Some(lab2.clone()), "bound to host \"lab-2\""),
        ("lab-3", Some(revoked), "revoked"),
        ("lab-1", Some(CI_TOKEN.into()), "no machine token"),
        ("net-1", None, "not in IP allowlist \"ten\""),
    ];
    for (id, bearer, want) in cases {
        let mut bot = TestBot::new(&srv.url, id, "lab", &[]);
        bot.bearer = bearer;
        let body = json!({"dimensions": bot.dimensions, "state": bot.state, "version": "", "session_id": "s/1"});
        let (status, v) = bot.post("handshake", &body).await?;
        assert_eq!(status, 401, "{id}: {v}");
        let msg = v["error"].as_str().unwrap_or_default();
        assert!(
            msg.contains("the bot is not in bots.cfg or wrong credentials passed") && msg.contains(want),
            "{id}: {msg}"
        );
        let (status, _) = bot.post("poll", &json!({"dimensions": bot.dimensions, "session": null})).await?;
        assert_eq!(status, 401);
        assert!(srv.store.get_bot(id).await?.is_none(), "{id} was stored");
    }
    srv.stop().await;
    Ok(())
}

/// The group decides the pool: a ci-token bot reporting pool=lab gets pool
/// ci and none of lab's tasks; the lab bot (machine token) gets them.
#[tokio::test]
async fn a_bot_gets_only_its_groups_pools_whatever_it_reports() -> anyhow::Result<()> {
    let srv = server().await?;
    let prpc = srv.prpc();
    let (_, lab1) = machine_token(&srv, "lab-1.example.com").await?;
    let mut lab = TestBot::new(&srv.url, "lab-1", "lab", &[]);
    lab.bearer = Some(lab1);
    assert_eq!(pool_of(&lab.handshake().await?), json!(["lab"]));
    let mut impostor = TestBot::new(&srv.url, "ci-9", "lab", &[]);
    impostor.bearer = Some(CI_TOKEN.into());
    assert_eq!(pool_of(&impostor.handshake().await?), json!(["ci"]));
    let stored = srv.store.get_bot("ci-9").await?.expect("stored");
    assert_eq!(stored.dimensions.0.get("pool"), Some(&vec!["ci".to_string()]));
    assert_eq!(stored.authenticated_as, "bot:group-token");
    let id = prpc.new_task("lab-only", "lab", &["true"]).await?;
    for _ in 0..2 {
        let v = impostor.poll().await?;
        assert_eq!(v["cmd"], "sleep", "the impostor got {v}");
    }
    let m = lab.poll_until_run(5).await?;
    assert_eq!(m["task_id"].as_str().map(|s| &s[..s.len() - 1]), Some(&id[..id.len() - 1]));
    assert_eq!(srv.store.get_bot("lab-1").await?.expect("lab").authenticated_as, "bot:lab-1.example.com");
    srv.stop().await;
    Ok(())
}

/// A second handshake of one bot id replaces the session: the first
/// process is told to stop (terminate), its events are refused, the new one
/// polls normally. A task the first process still runs is not killed.
#[tokio::test]
async fn a_new_handshake_replaces_the_session_without_killing_the_running_task() -> anyhow::Result<()> {
    let srv = server().await?;
    let prpc = srv.prpc();
    let mut old = TestBot::new(&srv.url, "ci-1", "ci", &[]);
    old.bearer = Some(CI_TOKEN.into());
    old.handshake().await?;
    let id = prpc.new_task("long", "ci", &["sleep", "100"]).await?;
    let m = old.poll_until_run(5).await?;
    let run_id = m["task_id"].as_str().unwrap_or_default().to_string();
    old.output(&run_id, 0, b"started\n").await?;

    let mut new = TestBot::new(&srv.url, "ci-1", "ci", &[]);
    new.bearer = Some(CI_TOKEN.into());
    let body = json!({"dimensions": new.dimensions, "state": new.state, "version": "", "session_id": "second/2"});
    let (status, v) = new.post("handshake", &body).await?;
    assert_eq!(status, 200, "{v}");
    new.session = v["session"].as_str().map(str::to_string);
    assert_eq!(prpc.result(&id).await?["state"], "RUNNING", "an impostor handshake must not kill the task");
    // The new process waits while the old one still runs the task.
    assert_eq!(new.poll().await?["cmd"], "sleep");
    // The old process finishes its task...
    old.output(&run_id, 8, b"done\n").await?;
    assert_eq!(old.complete(&run_id, 0, 1.0).await?["ok"], true);
    assert_eq!(prpc.result(&id).await?["state"], "COMPLETED");
    // ...and is then told to stop; its events are refused.
    let v = old.poll().await?;
    assert_eq!(v["cmd"], "terminate", "{v}");
    let ev = json!({"dimensions": old.dimensions, "state": old.state, "version": "", "session": old.session,
                    "event": "bot_shutdown", "message": "bye"});
    let (status, v) = old.post("event", &ev).await?;
    assert_eq!(status, 401, "{v}");
    assert_eq!(srv.store.get_bot("ci-1").await?.expect("bot").session_id, "second/2");
    // The new process gets work.
    let id2 = prpc.new_task("next", "ci", &["true"]).await?;
    let m = new.poll_until_run(5).await?;
    assert!(m["task_id"].as_str().is_some_and(|t| t[..t.len() - 1] == id2[..id2.len() - 1]));
    srv.stop().await;
    Ok(())
}

/// `/bot_code` carries the server URL and no configured secret.
#[tokio::test]
async fn bot_code_contains_no_bot_token() -> anyhow::Result<()> {
    // Made at run time: the served executable here is this test binary, whose
    // constants would otherwise contain it.
    let secret = format!("sekrit-{:016x}", rand::random::<u64>());
    let cfg = SchedConfig { long_poll: Duration::from_secs(1), ..Default::default() };
    let srv =
        TestServer::start_configured(Arc::new(SystemClock), cfg, |c| c.bot_auth.token = Some(secret.clone())).await?;
    let http = reqwest::Client::new();
    let bytes = http.get(format!("{}/bot_code", srv.url)).send().await?.error_for_status()?.bytes().await?;
    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    assert!(contains(&bytes, srv.url.as_bytes()), "the trailer names the server");
    assert!(!contains(&bytes, secret.as_bytes()), "/bot_code serves the bot token");
    assert!(!contains(&bytes, token::sha256_hex(&secret).as_bytes()));
    // The token still guards the bot API.
    let mut bot = TestBot::new(&srv.url, "b1", "default", &[]);
    assert!(bot.handshake().await.is_err());
    bot.bearer = Some(secret);
    bot.handshake().await?;
    srv.stop().await;
    Ok(())
}
