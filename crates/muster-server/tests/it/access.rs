//! Access control end to end over real HTTP: the permission matrix of every
//! swarming.v2 RPC for five callers, token management, CSRF on the UI's
//! forms, and configuration reload keeping the last good set.

use muster_access::{token, Identity};
use muster_config::snapshot::LoadOptions;
use muster_config::ConfigHolder;
use muster_sched::SchedConfig;
use muster_testkit::{Prpc, TestBot, TestServer};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const ACCESS: &str = r#"
[groups.administrators]
members = ["user:admin@x.com"]

[[pool]]
name = "a"
submitters = ["user:sub@x.com"]
viewers = ["user:viewer@x.com"]

[[pool]]
name = "b"
owners = ["user:owner@x.com"]
"#;

struct World {
    server: TestServer,
    _config: tempfile::TempDir,
    /// anonymous, viewer of A, submitter of A, owner of B, administrator.
    callers: Vec<(&'static str, Prpc)>,
    task_a: String,
    task_b: String,
}

async fn world() -> World {
    let config = tempfile::tempdir().expect("tempdir");
    std::fs::write(config.path().join("access.toml"), ACCESS).expect("write access.toml");
    let holder = Arc::new(ConfigHolder::load(config.path(), LoadOptions::default()).expect("valid config"));
    let server = TestServer::start_configured(
        Arc::new(muster_core::time::SystemClock),
        SchedConfig { long_poll: Duration::from_secs(1), ..Default::default() },
        |c| c.access = holder.clone(),
    )
    .await
    .expect("server");
    let now = server.now();
    let mut callers = vec![("anonymous", server.prpc())];
    for (name, id) in [
        ("viewer", "user:viewer@x.com"),
        ("submitter-a", "user:sub@x.com"),
        ("owner-b", "user:owner@x.com"),
        ("admin", "user:admin@x.com"),
    ] {
        let id = Identity::parse(id).expect("identity");
        let issued = token::create(server.store.as_ref(), &id, "test", &id, now, 3600).await.expect("token");
        callers.push((name, server.prpc().with_token(&issued.token)));
    }
    // One bot per pool; one task per pool, submitted by who may.
    for (bot, pool) in [("bot-a", "a"), ("bot-b", "b")] {
        let mut b = TestBot::new(&server.url, bot, pool, &[]);
        b.handshake().await.expect("handshake");
        b.poll().await.expect("poll");
    }
    let task_a = callers[2].1.new_task("ta", "a", &["true"]).await.expect("submitter creates in a");
    let task_b = callers[3].1.new_task("tb", "b", &["true"]).await.expect("owner creates in b");
    World { server, _config: config, callers, task_a, task_b }
}

fn new_task(pool: &str) -> Value {
    json!({"name": "m", "priority": 100, "taskSlices": [{"expirationSecs": 600, "properties": {
        "command": ["true"], "dimensions": [{"key": "pool", "value": pool}],
        "executionTimeoutSecs": 60, "ioTimeoutSecs": 60, "gracePeriodSecs": 5}}]})
}

const OK: i32 = 0;
const NF: i32 = 5;
const PD: i32 = 7;

#[tokio::test]
async fn permission_matrix() {
    let w = world().await;
    let (ta, tb) = (w.task_a.as_str(), w.task_b.as_str());
    let start = json!("2000-01-01T00:00:00Z");
    // (service, method, body, [anonymous, viewer, submitter-a, owner-b, admin])
    let rows: Vec<(&str, &str, Value, [i32; 5])> = vec![
        ("Tasks", "NewTask", new_task("a"), [PD, PD, OK, PD, PD]),
        ("Tasks", "NewTask", new_task("b"), [PD, PD, PD, OK, PD]),
        ("Tasks", "NewTask", new_task("nope"), [PD, PD, PD, PD, PD]),
        ("Tasks", "GetResult", json!({"taskId": ta}), [PD, OK, OK, PD, OK]),
        ("Tasks", "GetResult", json!({"taskId": "7000000000000000"}), [NF, NF, NF, NF, NF]),
        ("Tasks", "GetRequest", json!({"taskId": tb}), [PD, PD, PD, OK, OK]),
        ("Tasks", "GetStdout", json!({"taskId": ta}), [PD, OK, OK, PD, OK]),
        ("Tasks", "ListTaskStates", json!({"taskId": [ta]}), [PD, OK, OK, PD, OK]),
        ("Tasks", "BatchGetResult", json!({"taskIds": [ta]}), [OK, OK, OK, OK, OK]),
        ("Tasks", "ListTasks", json!({"tags": ["pool:a"]}), [PD, OK, PD, PD, OK]),
        ("Tasks", "ListTasks", json!({}), [PD, PD, PD, PD, OK]),
        ("Tasks", "ListTaskRequests", json!({"tags": ["pool:b"]}), [PD, PD, PD, OK, OK]),
        ("Tasks", "CountTasks", json!({"start": start, "tags": ["pool:a"]}), [PD, OK, PD, PD, OK]),
        ("Tasks", "CancelTasks", json!({"tags": ["pool:b", "nothing:matches"]}), [PD, PD, PD, OK, OK]),
        ("Tasks", "CancelTasks", json!({"tags": ["nothing:matches"]}), [PD, PD, PD, PD, OK]),
        ("Tasks", "CancelTask", json!({"taskId": tb}), [PD, PD, PD, OK, OK]),
        ("Bots", "GetBot", json!({"botId": "bot-a"}), [PD, OK, PD, PD, OK]),
        ("Bots", "GetBot", json!({"botId": "bot-b"}), [PD, PD, PD, OK, OK]),
        ("Bots", "GetBot", json!({"botId": "ghost"}), [PD, PD, PD, PD, NF]),
        ("Bots", "ListBotEvents", json!({"botId": "bot-b"}), [PD, PD, PD, OK, OK]),
        ("Bots", "ListBotTasks", json!({"botId": "bot-a", "state": "QUERY_ALL"}), [PD, OK, PD, PD, OK]),
        ("Bots", "ListBots", json!({"dimensions": [{"key": "pool", "value": "b"}]}), [PD, PD, PD, OK, OK]),
        ("Bots", "ListBots", json!({}), [PD, PD, PD, PD, OK]),
        ("Bots", "CountBots", json!({"dimensions": [{"key": "pool", "value": "a"}]}), [PD, OK, PD, PD, OK]),
        ("Bots", "GetBotDimensions", json!({"pool": "a"}), [PD, OK, PD, PD, OK]),
        ("Bots", "GetBotDimensions", json!({}), [OK, OK, OK, OK, OK]),
        ("Bots", "TerminateBot", json!({"botId": "bot-b"}), [PD, PD, PD, OK, OK]),
        ("Bots", "DeleteBot", json!({"botId": "bot-b"}), [PD, PD, PD, OK, NF]),
        ("Swarming", "GetDetails", json!({}), [PD, PD, PD, PD, OK]),
        ("Swarming", "GetToken", json!({}), [PD, PD, PD, PD, OK]),
        ("Swarming", "GetPermissions", json!({}), [OK, OK, OK, OK, OK]),
    ];
    let mut failures = Vec::new();
    for (service, method, body, want) in &rows {
        for ((who, client), want) in w.callers.iter().zip(want) {
            let r = client.call(service, method, body).await.expect("call");
            if r.code != *want {
                failures.push(format!("{service}.{method} {body} as {who}: got {} want {want}: {}", r.code, r.text));
            }
            if r.code == PD && !r.text.contains("doesn't have") {
                failures.push(format!("{service}.{method} as {who}: PD text names no permission: {}", r.text));
            }
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));

    // BatchGetResult puts the denial inside the result list.
    let r = w.callers[0].1.ok("Tasks", "BatchGetResult", &json!({"taskIds": [ta]})).await.expect("batch");
    assert_eq!(r["results"][0]["error"]["code"], json!(7), "{r}");
    let r = w.callers[1].1.ok("Tasks", "BatchGetResult", &json!({"taskIds": [ta]})).await.expect("batch");
    assert!(r["results"][0]["result"].is_object(), "{r}");
    // GetPermissions lists the configured pools each caller may list.
    let perms = |i: usize| {
        let c = w.callers[i].1.clone();
        async move { c.ok("Swarming", "GetPermissions", &json!({})).await.expect("perms") }
    };
    assert_eq!(perms(1).await["listBots"], json!(["a"]));
    assert_eq!(perms(4).await["listTasks"], json!(["a", "b"]));
    assert_eq!(perms(4).await["getBootstrapToken"], json!(true));
    assert!(perms(0).await.get("listBots").is_none_or(|v| v == &json!([])));
    // GetToken issues a real bootstrap token.
    let t = w.callers[4].1.ok("Swarming", "GetToken", &json!({})).await.expect("token");
    assert!(t["bootstrapToken"].as_str().is_some_and(|s| s.len() > 20), "{t}");
    // Bad credentials: UNAUTHENTICATED, never a silent anonymous.
    let bogus = w.server.prpc().with_token("mst_AAAAAAAAAAAAAAAAAAAAAA_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    assert_eq!(bogus.call("Swarming", "GetPermissions", &json!({})).await.expect("call").code, 16);
    w.server.stop().await;
}

#[tokio::test]
async fn tokens_are_managed_over_prpc() {
    let w = world().await;
    let sub = &w.callers[2].1;
    let admin = &w.callers[4].1;
    let r =
        sub.call_service("muster.v1.Tokens", "Create", &json!({"identity": "user:other@x.com"})).await.expect("call");
    assert_eq!(r.code, PD, "only administrators create tokens for others: {}", r.text);
    let r = admin
        .call_service("muster.v1.Tokens", "Create", &json!({"identity": "service:ci", "description": "ci"}))
        .await
        .expect("call");
    assert_eq!(r.code, OK, "{}", r.text);
    let tok = r.json["token"].as_str().expect("token").to_string();
    let id = r.json["info"]["id"].as_str().expect("id").to_string();
    let ci = w.server.prpc().with_token(&tok);
    let mine = ci.call_service("muster.v1.Tokens", "List", &json!({})).await.expect("list");
    assert_eq!(mine.json["tokens"][0]["id"], json!(id), "{}", mine.text);
    let r = admin.call_service("muster.v1.Tokens", "Revoke", &json!({"id": id})).await.expect("revoke");
    assert_eq!(r.json["revoked"], json!(true));
    let r = ci.call("Swarming", "GetPermissions", &json!({})).await.expect("call");
    assert_eq!(r.code, 16, "a revoked token is refused: {}", r.text);
    w.server.stop().await;
}

#[tokio::test]
async fn a_broken_config_keeps_the_last_good_one() {
    let w = world().await;
    let dir = w._config.path().to_path_buf();
    let viewer = &w.callers[1].1;
    assert_eq!(viewer.call("Bots", "GetBot", &json!({"botId": "bot-a"})).await.expect("call").code, OK);
    std::fs::write(dir.join("access.toml"), "[groups.administrators\nmembers = [").expect("write broken");
    // The server polls every 2 s; the old snapshot must stay in force.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(viewer.call("Bots", "GetBot", &json!({"botId": "bot-a"})).await.expect("call").code, OK);
    // A valid change is picked up (the viewer loses pool a).
    std::fs::write(dir.join("access.toml"), ACCESS.replace("viewers = [\"user:viewer@x.com\"]", "")).expect("write");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let code = viewer.call("Bots", "GetBot", &json!({"botId": "bot-a"})).await.expect("call").code;
        if code == PD {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the fixed config was not picked up in 20 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    w.server.stop().await;
}

/// A server over one config directory (access, bot groups and jobs from
/// the same snapshot) and token-carrying clients for `who`.
async fn configured(files: &[(&str, &str)], who: &[&str]) -> (TestServer, tempfile::TempDir, Vec<Prpc>) {
    let config = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        let path = config.path().join(name);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(path, text).expect("write config file");
    }
    let holder = Arc::new(ConfigHolder::load(config.path(), LoadOptions::default()).expect("valid config"));
    let dir = config.path().to_path_buf();
    let server = TestServer::start_configured(
        Arc::new(muster_core::time::SystemClock),
        SchedConfig { long_poll: Duration::from_secs(1), ..Default::default() },
        |c| {
            c.access = holder.clone();
            c.bot_config = Some(holder.clone());
            c.jobs.config_dir = Some(dir);
            c.jobs.reload_interval = Duration::from_millis(200);
        },
    )
    .await
    .expect("server");
    let mut clients = Vec::new();
    for id in who {
        let id = Identity::parse(id).expect("identity");
        let issued = token::create(server.store.as_ref(), &id, "test", &id, server.now(), 3600).await.expect("token");
        clients.push(server.prpc().with_token(&issued.token));
    }
    (server, config, clients)
}

const GROUPS_ACCESS: &str = r#"
[[pool]]
name = "a"
viewers = ["user:viewer@x.com"]

[[bot_auth]]
group = "bot_id_prefix:lab"
token_sha256 = ["0000000000000000000000000000000000000000000000000000000000000000"]
"#;

const GROUPS_BOTS: &str = r#"
bot_group {
  bot_id_prefix: "lab"
  auth { ip_whitelist: "nowhere" }
  dimensions: "pool:a"
}
bot_group {
  auth { ip_whitelist: "nowhere" }
  dimensions: "pool:unassigned"
}
"#;

const GROUPS_ALLOWLIST: &str = r#"
ip_allowlists { name: "nowhere" subnets: "192.0.2.1/32" }
"#;

/// With bot groups configured, a bot's pools for ACLs are its group's
/// `pool` dimensions (upstream), also for a bot that never connected.
#[tokio::test]
async fn bot_permissions_follow_the_bots_group_pools() {
    let (server, _config, clients) = configured(
        &[("access.toml", GROUPS_ACCESS), ("bots.cfg", GROUPS_BOTS), ("ip_allowlist.cfg", GROUPS_ALLOWLIST)],
        &["user:viewer@x.com"],
    )
    .await;
    let viewer = &clients[0];
    // lab-9 is in pool a by its group: the viewer passes the check, the
    // bot does not exist.
    let r = viewer.call("Bots", "GetBot", &json!({"botId": "lab-9"})).await.expect("call");
    assert_eq!(r.code, NF, "{}", r.text);
    // other-1 lands in the default group (unassigned): denied.
    let r = viewer.call("Bots", "GetBot", &json!({"botId": "other-1"})).await.expect("call");
    assert_eq!(r.code, PD, "{}", r.text);
    server.stop().await;
}

const JOBS_ACCESS: &str = r#"
[groups.administrators]
members = ["user:admin@x.com"]
"#;

const JOBS_REALMS: &str = r#"
realms {
  name: "ci"
  bindings { role: "role/scheduler.reader" principals: "user:viewer@x.com" }
  bindings { role: "role/scheduler.triggerer" principals: "user:trig@x.com" }
}
"#;

const JOBS_TOML: &str = r#"
project = "e2e"

[[job]]
id = "nightly"
realm = "ci"
[job.noop]
"#;

/// Job permissions come from the realms: a reader sees the job and may not
/// trigger it, a triggerer may, a stranger does not see it at all, an
/// administrator may do anything.
#[tokio::test]
async fn a_job_viewer_cannot_trigger_it() {
    let (server, _config, clients) = configured(
        &[("access.toml", JOBS_ACCESS), ("realms/e2e.cfg", JOBS_REALMS), ("jobs.toml", JOBS_TOML)],
        &["user:viewer@x.com", "user:trig@x.com", "user:stranger@x.com", "user:admin@x.com"],
    )
    .await;
    let (viewer, triggerer, stranger, admin) = (&clients[0], &clients[1], &clients[2], &clients[3]);
    const SCHED: &str = "scheduler.Scheduler";
    muster_testkit::wait_for("the job is loaded", muster_testkit::PATIENCE, || async {
        let r = admin.call_full(SCHED, "GetJobs", &json!({"project": "e2e"})).await?;
        Ok((r.json["jobs"].as_array().map(|j| j.len()) == Some(1)).then_some(()))
    })
    .await
    .expect("job loaded");
    let emit = |id: &str| json!({"batches": [{"trigger": {"id": id, "noop": {}}, "jobs": [{"project": "e2e", "job": "nightly"}]}]});
    let jobs = |c: &Prpc| {
        let c = c.clone();
        async move { c.call_full(SCHED, "GetJobs", &json!({"project": "e2e"})).await.expect("call") }
    };
    assert_eq!(jobs(viewer).await.json["jobs"].as_array().map(|j| j.len()), Some(1), "the reader sees it");
    assert_eq!(jobs(stranger).await.json["jobs"].as_array().map(|j| j.len()).unwrap_or(0), 0, "a stranger does not");
    let r = viewer.call_full(SCHED, "EmitTriggers", &emit("v1")).await.expect("call");
    assert_eq!(r.code, PD, "a reader may not trigger: {}", r.text);
    let r = stranger.call_full(SCHED, "EmitTriggers", &emit("s1")).await.expect("call");
    assert_eq!(r.code, NF, "the job does not exist for a stranger: {}", r.text);
    let r = triggerer.call_full(SCHED, "EmitTriggers", &emit("t1")).await.expect("call");
    assert_eq!(r.code, OK, "a triggerer may: {}", r.text);
    let r = viewer.call_full(SCHED, "PauseJob", &json!({"project": "e2e", "job": "nightly"})).await.expect("call");
    assert_eq!(r.code, PD, "a reader may not pause: {}", r.text);
    let r = admin.call_full(SCHED, "PauseJob", &json!({"project": "e2e", "job": "nightly"})).await.expect("call");
    assert_eq!(r.code, OK, "an administrator may: {}", r.text);
    server.stop().await;
}

/// NewTask's rate limit counts per authenticated identity: one identity
/// over its burst is refused while another on the same address is not.
#[tokio::test]
async fn new_task_quotas_are_per_identity() {
    let config = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        config.path().join("access.toml"),
        "[[pool]]\nname = \"q\"\nsubmitters = [\"user:one@x.com\", \"user:two@x.com\"]\n",
    )
    .expect("write");
    let holder = Arc::new(ConfigHolder::load(config.path(), LoadOptions::default()).expect("valid config"));
    let server = TestServer::start_configured(
        Arc::new(muster_core::time::SystemClock),
        SchedConfig { long_poll: Duration::from_secs(1), ..Default::default() },
        |c| {
            c.access = holder.clone();
            c.edge.new_task_rate = 0.001;
            c.edge.new_task_burst = 2;
        },
    )
    .await
    .expect("server");
    let mut clients = Vec::new();
    for id in ["user:one@x.com", "user:two@x.com"] {
        let id = Identity::parse(id).expect("identity");
        let issued = token::create(server.store.as_ref(), &id, "test", &id, server.now(), 3600).await.expect("token");
        clients.push(server.prpc().with_token(&issued.token));
    }
    let (one, two) = (&clients[0], &clients[1]);
    for name in ["a", "b"] {
        assert_eq!(one.call("Tasks", "NewTask", &new_task("q")).await.expect("call").code, OK, "{name}");
    }
    let r = one.call("Tasks", "NewTask", &new_task("q")).await.expect("call");
    assert_eq!(r.code, 8, "one is over its burst: {}", r.text);
    let r = two.call("Tasks", "NewTask", &new_task("q")).await.expect("call");
    assert_eq!(r.code, OK, "two has its own budget: {}", r.text);
    server.stop().await;
}
