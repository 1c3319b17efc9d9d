//! Wire-golden tests for UNMODIFIED upstream Python Swarming bots (docs/bot-protocol.md#python-bot-code).
//!
//! Every request here is written by hand from the bodies and headers the
//! upstream bot sends (docs/bot-protocol.md#transport, #task-updates): User-Agent
//! `swarming_bot/1.0.0@vm`, `X-Luci-Swarming-Bot-ID`, `Cookie: GOOGAPPUID=…`,
//! `application/json; charset=UTF-8`, compact JSON with sorted keys. Replies
//! are checked for the exact shapes the bot parses. The zip served to Python
//! bots is checked against the docs/bot-protocol.md#python-bot-code digest computed independently.

use muster_server::python_bot::archive;
use muster_testkit::{FakeClock, TestServer};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const UA: &str = "swarming_bot/1.0.0@vm";

/// A tiny stand-in for `appengine/swarming/swarming_bot` (never executed).
fn fake_bot_dir(root: &Path) -> anyhow::Result<std::path::PathBuf> {
    let dir = root.join("swarming_bot");
    for (name, content) in [
        ("__main__.py", "print('bot')\n"),
        ("bot_code/__init__.py", ""),
        ("bot_code/bot_main.py", "MAIN = 1\n"),
        ("bot_code/bot_main_test.py", "TEST = 1\n"),
        ("config/__init__.py", ""),
        ("config/bot_config.py", "# default hooks\n"),
        ("config/config.json", "{\"server\": \"http://localhost:8080\"}"),
        ("utils/cacert.pem", "-----BEGIN CERTIFICATE-----\n"),
        ("utils/__pycache__/x.cpython-311.pyc", "junk"),
        (".git/HEAD", "ref: refs/heads/main\n"),
    ] {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().expect("has a parent"))?;
        std::fs::write(p, content)?;
    }
    Ok(dir)
}

/// The Python bot's HTTP client, as far as the server can tell.
struct PyBot {
    url: String,
    id: String,
    http: reqwest::Client,
    session: Value,
    version: String,
    dimensions: Value,
}

impl PyBot {
    fn new(url: &str, id: &str) -> PyBot {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("building an HTTP client");
        PyBot {
            url: url.to_string(),
            id: id.to_string(),
            http,
            session: Value::Null,
            version: String::new(),
            dimensions: json!({
                "cipd_platform": ["linux-amd64"], "cores": ["2"], "cpu": ["x86", "x86-64", "x86-64-avx2"],
                "gce": ["0"], "gpu": ["none"], "id": [id], "os": ["Debian", "Debian-12", "Debian-12.11", "Linux"],
                "pool": ["default"], "python": ["3", "3.11", "3.11.7"],
            }),
        }
    }

    fn state(&self, sleep_streak: i64) -> Value {
        json!({"bot_config": {"name": "bot_config.py", "revision": "fake"}, "cost_usd_hour": 0.1304,
               "disks": {"/": {"free_mb": 81418.4, "size_mb": 258019.6}}, "rbe_instance": null,
               "running_time": 1, "sleep_streak": sleep_streak})
    }

    /// POSTs `body` the way `RemoteClientNative` does; returns status and the
    /// body parsed with `json.loads` semantics (Null when not JSON).
    async fn post(&self, path: &str, body: &Value) -> anyhow::Result<(u16, Value, String)> {
        let r = self
            .http
            .post(format!("{}/swarming/api/v1/bot/{path}", self.url))
            .header("Content-Type", "application/json; charset=UTF-8")
            .header("Cookie", "GOOGAPPUID=227")
            .header("User-Agent", UA)
            .header("X-Luci-Swarming-Bot-ID", &self.id)
            .header("Accept-Encoding", "gzip, deflate")
            // serde_json's Value keeps keys sorted; to_string is compact.
            .body(body.to_string())
            .send()
            .await?;
        let status = r.status().as_u16();
        let ctype = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let text = r.text().await?;
        let v = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok((status, v, ctype))
    }

    /// The bot stores any truthy `session` it is given and echoes it.
    fn remember(&mut self, reply: &Value) {
        if let Some(s) = reply.get("session").and_then(Value::as_str).filter(|s| !s.is_empty()) {
            self.session = json!(s);
        }
    }

    async fn handshake(&mut self) -> anyhow::Result<Value> {
        let body = json!({"dimensions": self.dimensions, "state": self.state(0), "version": self.version,
                          "session_id": "63c9cf33cf814c62a564f7cdc9f123e5/7703"});
        let (status, v, ctype) = self.post("handshake", &body).await?;
        assert_eq!(status, 200, "{v}");
        assert!(ctype.starts_with("application/json"), "{ctype}");
        self.remember(&v);
        Ok(v)
    }

    async fn poll(&mut self, request_uuid: &str) -> anyhow::Result<Value> {
        let mut dims = self.dimensions.clone();
        dims["bot_config"] = json!(["bot_config.py"]);
        let body = json!({"dimensions": dims, "request_uuid": request_uuid, "session": self.session,
                          "state": self.state(0), "version": self.version});
        let (status, v, _) = self.post("poll", &body).await?;
        assert_eq!(status, 200, "{v}");
        self.remember(&v);
        Ok(v)
    }

    async fn task_update(&mut self, run_id: &str, fields: Value) -> anyhow::Result<Value> {
        let mut body = json!({"id": self.id, "session": self.session, "task_id": run_id});
        for (k, v) in fields.as_object().cloned().unwrap_or_default() {
            body[k] = v;
        }
        let (status, v, ctype) = self.post(&format!("task_update/{run_id}"), &body).await?;
        assert_eq!(status, 200, "{v}");
        assert!(ctype.starts_with("application/json"), "{ctype}");
        self.remember(&v);
        Ok(v)
    }
}

async fn python_server(dir: &Path) -> anyhow::Result<TestServer> {
    let bot_dir = fake_bot_dir(dir)?;
    TestServer::start_configured(
        Arc::new(muster_core::time::SystemClock),
        muster_sched::SchedConfig { long_poll: Duration::from_secs(1), ..Default::default() },
        move |cfg| cfg.python_bot_dir = Some(bot_dir),
    )
    .await
}

/// The Python bot code digest, written here from docs/bot-protocol.md, independently of the server.
fn spec_digest(entries: &BTreeMap<String, Vec<u8>>) -> String {
    let mut h = Sha256::new();
    for (name, content) in entries {
        h.update(format!("{}{}{}", name.len(), name, content.len()).as_bytes());
        h.update(content);
    }
    hex::encode(h.finalize())
}

/// Every entry of a zip, by name.
fn unzip(bytes: &[u8]) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes))?;
    let mut out = BTreeMap::new();
    for i in 0..z.len() {
        let mut f = z.by_index(i)?;
        let name = String::from_utf8(f.name_raw().to_vec())?;
        anyhow::ensure!(f.compression() == zip::CompressionMethod::Deflated, "{name} is not DEFLATE");
        let mut content = Vec::new();
        f.read_to_end(&mut content)?;
        out.insert(name, content);
    }
    Ok(out)
}

async fn get(url: &str, ua: Option<&str>) -> anyhow::Result<reqwest::Response> {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let mut req = http.get(url);
    if let Some(ua) = ua {
        req = req.header("User-Agent", ua);
    }
    Ok(req.send().await?)
}

/// Follows `/bot_code?bot=python` to the zip; returns (version, bytes).
async fn download_python_zip(url: &str) -> anyhow::Result<(String, Vec<u8>)> {
    let r = get(&format!("{url}/bot_code?bot=python"), None).await?;
    assert_eq!(r.status(), 302);
    let loc = r.headers()["location"].to_str()?.to_string();
    let version = loc.strip_prefix("/swarming/api/v1/bot/bot_code/").expect("versioned location").to_string();
    let r = get(&format!("{url}{loc}"), Some(UA)).await?;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    assert!(r.headers()["content-disposition"].to_str()?.contains("swarming_bot.zip"));
    Ok((version, r.bytes().await?.to_vec()))
}

#[test]
fn the_digest_of_a_small_zip_is_the_spec_digest_of_its_entries() -> anyhow::Result<()> {
    // Known value: one entry "a" = "x" hashes the bytes "1a1x".
    let one = BTreeMap::from([("a".to_string(), b"x".to_vec())]);
    assert_eq!(spec_digest(&one), hex::encode(Sha256::digest(b"1a1x")));
    let zip_one = archive::build_zip(&one)?;
    assert_eq!(archive::zip_digest(&zip_one)?, hex::encode(Sha256::digest(b"1a1x")));

    let entries = BTreeMap::from([
        ("__main__.py".to_string(), b"import sys\n".to_vec()),
        ("config/config.json".to_string(), archive::config_json("http://h:1", "v")),
        ("z/\u{e9}t\u{e9}.txt".to_string(), vec![0u8; 70_000]),
        ("empty".to_string(), Vec::new()),
    ]);
    let a = archive::build_zip(&entries)?;
    let b = archive::build_zip(&entries)?;
    assert!(a == b, "two builds of the same entries differ");
    assert_eq!(archive::zip_digest(&a)?, spec_digest(&entries));
    assert_eq!(archive::zip_digest(&b)?, archive::zip_digest(&a)?);
    assert_eq!(unzip(&a)?, entries);
    let mut names = Vec::new();
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(&a))?;
    for i in 0..z.len() {
        names.push(String::from_utf8(z.by_index(i)?.name_raw().to_vec())?);
    }
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "entries are written sorted by name");
    Ok(())
}

/// `/bot_code?bot=python` redirects (302) to the versioned URL, whose zip
/// holds the tree minus tests/bytecode/.git, a generated config.json naming
/// this server, and whose digest (computed from the bytes served) is the
/// version in the URL and in the handshake.
#[tokio::test]
async fn the_python_zip_is_served_at_its_digest_and_names_this_server() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let srv = python_server(tmp.path()).await?;
    let (version, bytes) = download_python_zip(&srv.url).await?;
    let entries = unzip(&bytes)?;
    assert_eq!(spec_digest(&entries), version);
    assert_eq!(
        entries.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "__main__.py",
            "bot_code/__init__.py",
            "bot_code/bot_main.py",
            "config/__init__.py",
            "config/bot_config.py",
            "config/config.json",
            "utils/cacert.pem"
        ]
    );
    let cfg: Value = serde_json::from_slice(&entries["config/config.json"])?;
    assert_eq!(cfg, json!({"enable_ts_monitoring": false, "server": srv.url, "server_version": cfg["server_version"]}));
    assert!(cfg["server_version"].is_string());

    // The bot's own downloader and bootstrap scripts are redirected too.
    for ua in [UA, "Python-urllib/3.11"] {
        let r = get(&format!("{}/bot_code", srv.url), Some(ua)).await?;
        assert_eq!(r.status(), 302, "{ua}");
        assert_eq!(r.headers()["location"], format!("/swarming/api/v1/bot/bot_code/{version}"));
    }
    // curl and muster bots still get the muster executable, unredirected.
    let r = get(&format!("{}/bot_code", srv.url), Some("curl/8.5.0")).await?;
    assert_eq!(r.status(), 200);
    let exe_version = r.headers()["x-muster-bot-version"].to_str()?.to_string();
    assert_ne!(exe_version, version);
    // Read it all: an unread body would hold the connection (and shutdown).
    let exe = r.bytes().await?;
    assert_eq!(hex::encode(Sha256::digest(&exe)), exe_version);
    // An unknown digest sends the Python bot to the current zip.
    let stale = "ed83".repeat(16);
    let r = get(&format!("{}/swarming/api/v1/bot/bot_code/{stale}", srv.url), Some(UA)).await?;
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], format!("/swarming/api/v1/bot/bot_code/{version}"));

    let mut bot = PyBot::new(&srv.url, "testbot");
    let hs = bot.handshake().await?;
    assert_eq!(hs["bot_version"], version.as_str());
    srv.stop().await;
    Ok(())
}

/// Without `--python-bot-dir` a request for the zip is a JSON 404.
#[tokio::test]
async fn asking_for_python_code_without_a_bot_dir_is_a_json_404() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let r = get(&format!("{}/bot_code?bot=python", srv.url), None).await?;
    assert_eq!(r.status(), 404);
    assert!(r.headers()["content-type"].to_str()?.starts_with("application/json"));
    srv.stop().await;
    Ok(())
}

/// Handshake reply: a non-empty dict with a string session, the zip digest as
/// bot_version, `bot_group_cfg.dimensions` (the bot crashes without it when
/// bot_group_cfg is present) carrying the server-enforced dimensions, and no
/// `rbe` key (which would switch the bot to RBE mode).
#[tokio::test]
async fn a_python_handshake_gets_every_key_the_bot_reads() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let bot_dir = fake_bot_dir(tmp.path())?;
    let srv = TestServer::start_configured(
        Arc::new(muster_core::time::SystemClock),
        muster_sched::SchedConfig { long_poll: Duration::from_secs(1), ..Default::default() },
        move |cfg| {
            cfg.python_bot_dir = Some(bot_dir);
            cfg.bot_dimensions = BTreeMap::from([("site".to_string(), vec!["lab1".to_string()])]);
        },
    )
    .await?;
    let mut bot = PyBot::new(&srv.url, "testbot");
    let v = bot.handshake().await?;
    assert!(v.as_object().is_some_and(|o| !o.is_empty()));
    assert!(v["session"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(v["server_version"].is_string());
    assert!(v["bot_config_name"].is_string());
    assert!(v["bot_config_rev"].is_string());
    assert_eq!(v["bot_group_cfg"], json!({"dimensions": {"site": ["lab1"]}}));
    assert!(v.get("rbe").is_none(), "{v}");
    assert!(v.get("bot_config").is_none_or(Value::is_string), "{v}");
    srv.stop().await;
    Ok(())
}

/// A Python bot whose version is not the zip's is told
/// `{"cmd":"update","version":<digest>}`; one running the zip sleeps with a
/// float duration; an empty version is never told to update.
#[tokio::test]
async fn a_python_bot_on_another_version_is_told_to_update_and_a_current_one_sleeps() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let srv = python_server(tmp.path()).await?;
    let (version, _) = download_python_zip(&srv.url).await?;
    let mut bot = PyBot::new(&srv.url, "testbot");
    bot.version = "30dda86ab21ce47e4415c8f12abb0b46b42ae683861159625095ba39332856d5".to_string();
    bot.handshake().await?;
    let v = bot.poll("51f96a49-ce06-4792-b1e7-88731405230d").await?;
    assert_eq!(v, json!({"cmd": "update", "version": version}));

    bot.version = version.clone();
    let v = bot.poll("51f96a49-ce06-4792-b1e7-88731405230e").await?;
    assert_eq!(v["cmd"], "sleep", "{v}");
    assert!(v["duration"].is_f64(), "duration must be a float: {v}");
    assert!(v["quarantined"].is_boolean());
    assert!(v["session"].as_str().is_some_and(|s| !s.is_empty()));

    bot.version = String::new();
    let v = bot.poll("51f96a49-ce06-4792-b1e7-88731405230f").await?;
    assert_eq!(v["cmd"], "sleep", "{v}");
    srv.stop().await;
    Ok(())
}

/// The manifest of a `run` has every key the bot crashes without, with the
/// JSON type it needs (docs/bot-protocol.md#the-manifest).
fn assert_manifest_shape(m: &Value, bot_id: &str) {
    let is_dim_map = |v: &Value| {
        v.as_object()
            .is_some_and(|o| o.values().all(|vs| vs.as_array().is_some_and(|a| a.iter().all(Value::is_string))))
    };
    let task_id = m["task_id"].as_str().expect("task_id is a string");
    assert!(task_id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "{task_id}");
    assert!(task_id.ends_with('1'), "a run id: {task_id}");
    for k in ["hard_timeout", "grace_period", "io_timeout"] {
        assert!(m[k].is_number(), "{k}: {m}");
    }
    assert!(is_dim_map(&m["dimensions"]), "{m}");
    assert!(is_dim_map(&m["bot_dimensions"]), "{m}");
    assert_eq!(m["bot_id"], bot_id);
    assert!(m["bot_authenticated_as"].is_string(), "must be a string, never null: {m}");
    for k in ["system", "task"] {
        assert!(m["service_accounts"][k]["service_account"].is_string(), "{m}");
    }
    assert!(m["command"].as_array().is_some_and(|a| a.iter().all(Value::is_string)));
    assert!(m["env"].is_object() && m["env_prefixes"].is_object());
    assert!(m["outputs"].is_array() && m["caches"].is_array());
    for c in m["caches"].as_array().expect("array") {
        assert!(c["name"].is_string() && c["path"].is_string() && c["hint"].is_string(), "{c}");
    }
    for k in ["realm", "resultdb", "cipd_input", "cas_input_root"] {
        assert!(m.get(k).is_none_or(|v| v.is_null() || v.is_object()), "{k}: {m}");
    }
    assert!(m.get("secret_bytes").is_none_or(|v| v.is_null() || v.is_string()));
}

async fn new_task(srv: &TestServer, command: &[&str], extra: Value) -> anyhow::Result<String> {
    let mut props = json!({
        "command": command, "dimensions": [{"key": "pool", "value": "default"}],
        "executionTimeoutSecs": 60, "ioTimeoutSecs": 60, "gracePeriodSecs": 30,
    });
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        props[k] = v;
    }
    let body = json!({"name": "py", "priority": 100, "taskSlices": [{"expirationSecs": 600, "properties": props}]});
    let v = srv.prpc().ok("Tasks", "NewTask", &body).await?;
    Ok(v["taskId"].as_str().unwrap_or_default().to_string())
}

async fn poll_until_run(bot: &mut PyBot) -> anyhow::Result<Value> {
    for i in 0..10 {
        let v = bot.poll(&format!("00000000-0000-4000-8000-{i:012}")).await?;
        if v["cmd"] == "run" {
            return Ok(v);
        }
    }
    anyhow::bail!("no run after 10 polls")
}

/// The whole verified wire sequence of a successful task (Appendix A):
/// run → start packet `{cost_usd}` → output → final packet with every stats
/// key the bot sends → COMPLETED; a retried final packet is accepted.
#[tokio::test]
async fn a_python_bot_runs_a_task_with_the_exact_upstream_packets() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let srv = python_server(tmp.path()).await?;
    let (version, _) = download_python_zip(&srv.url).await?;
    let mut bot = PyBot::new(&srv.url, "testbot");
    bot.version = version;
    bot.handshake().await?;
    let id = new_task(
        &srv,
        &["python3", "-c", "print('hi')"],
        json!({"caches": [{"name": "git", "path": "cache/git"}], "env": [{"key": "A", "value": "1"}]}),
    )
    .await?;
    let reply = poll_until_run(&mut bot).await?;
    let m = &reply["manifest"];
    assert_manifest_shape(m, "testbot");
    assert_eq!(m["caches"][0]["hint"], "-1");
    let run_id = m["task_id"].as_str().unwrap_or_default().to_string();

    let r = bot.task_update(&run_id, json!({"cost_usd": 2.9e-05})).await?;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["must_stop"], false, "{r}");
    assert!(r.get("error").is_none());

    let out = b"swarming_bot_logs: Starting run_isolated script\nhi\n";
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(out);
    let r = bot.task_update(&run_id, json!({"cost_usd": 4e-05, "output": b64, "output_chunk_start": 0})).await?;
    assert_eq!(r["must_stop"], false, "{r}");
    let final_packet = json!({
        "bot_overhead": 0.756, "cache_trim_stats": {"duration": 0.0002}, "cleanup_stats": {"duration": 0.0032},
        "cost_usd": 5.9e-05, "duration": 0.068, "exit_code": 0, "hard_timeout": false, "io_timeout": false,
        "isolated_stats": {"download": {"duration": 0.01, "initial_number_items": 0, "initial_size": 0,
                                        "items_cold": "", "items_hot": ""}},
        "named_caches_stats": {"install": {"duration": 2.4e-07}, "uninstall": {"duration": 3.1e-06}},
        "cipd_stats": {"duration": 0.5, "get_client_duration": 0.1},
        "cipd_pins": {"client_package": {"package_name": "infra/tools/cipd/linux-amd64", "version": "abc"},
                      "packages": [{"package_name": "pkg", "version": "v1", "path": "bin"}]},
    });
    let r = bot.task_update(&run_id, final_packet.clone()).await?;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["must_stop"], false, "{r}");
    let again = bot.task_update(&run_id, final_packet).await?;
    assert_eq!(again["ok"], true, "a retried final packet is accepted: {again}");

    let res = srv.prpc().result(&id).await?;
    assert_eq!(res["state"], "COMPLETED", "{res}");
    assert_eq!(srv.prpc().stdout(&id).await?, out.to_vec());
    srv.stop().await;
    Ok(())
}

/// A failing exit code is COMPLETED with failure; `hard_timeout`/`io_timeout`
/// are TIMED_OUT; `canceled` (the bot refused to start) is CANCELED.
#[tokio::test]
async fn python_final_packets_map_to_the_swarming_states() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let srv = python_server(tmp.path()).await?;
    let (version, _) = download_python_zip(&srv.url).await?;
    let mut bot = PyBot::new(&srv.url, "testbot");
    bot.version = version;
    bot.handshake().await?;
    let cases = [
        (
            json!({"exit_code": 3, "duration": 0.1, "hard_timeout": false, "io_timeout": false, "bot_overhead": 0.5}),
            "COMPLETED",
            true,
        ),
        (
            json!({"exit_code": -15, "duration": 60.2, "hard_timeout": true, "io_timeout": false, "bot_overhead": 0.5}),
            "TIMED_OUT",
            true,
        ),
        (
            json!({"exit_code": -1, "duration": 64.8, "hard_timeout": false, "io_timeout": true, "bot_overhead": 0.0}),
            "TIMED_OUT",
            true,
        ),
    ];
    for (packet, state, failure) in cases {
        let id = new_task(&srv, &["sleep", "100"], json!({})).await?;
        let run = poll_until_run(&mut bot).await?;
        let run_id = run["manifest"]["task_id"].as_str().unwrap_or_default().to_string();
        bot.task_update(&run_id, json!({"cost_usd": 1e-05})).await?;
        let r = bot.task_update(&run_id, packet.clone()).await?;
        assert_eq!(r["ok"], true, "{packet}: {r}");
        let res = srv.prpc().result(&id).await?;
        assert_eq!(res["state"], state, "{packet}: {res}");
        assert_eq!(res["failure"], failure, "{packet}: {res}");
    }
    srv.stop().await;
    Ok(())
}

/// Kill: CancelTask(kill_running) → the next task_update says
/// `must_stop: true` → the bot's final packet (exit -15) makes it KILLED.
#[tokio::test]
async fn killing_a_python_task_answers_must_stop_and_ends_killed() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let srv = python_server(tmp.path()).await?;
    let mut bot = PyBot::new(&srv.url, "testbot");
    bot.handshake().await?;
    let id = new_task(&srv, &["sleep", "100"], json!({})).await?;
    let run = poll_until_run(&mut bot).await?;
    let run_id = run["manifest"]["task_id"].as_str().unwrap_or_default().to_string();
    bot.task_update(&run_id, json!({"cost_usd": 1e-05})).await?;
    srv.prpc().ok("Tasks", "CancelTask", &json!({"taskId": id, "killRunning": true})).await?;
    let r = bot.task_update(&run_id, json!({"cost_usd": 2e-05})).await?;
    assert_eq!(r["must_stop"], true, "{r}");
    let r = bot
        .task_update(
            &run_id,
            json!({"exit_code": -15, "duration": 8.04, "hard_timeout": false, "io_timeout": false,
                   "bot_overhead": 0.77, "cost_usd": 3e-05}),
        )
        .await?;
    assert!(r.as_object().is_some_and(|o| !o.is_empty()) && r.get("error").is_none(), "{r}");
    assert_eq!(srv.prpc().result(&id).await?["state"], "KILLED");
    srv.stop().await;
    Ok(())
}

/// task_error (the body of the verified bad-manifest run) replies exactly
/// `{}`, and the task ends BOT_DIED; events reply a JSON dict.
#[tokio::test]
async fn task_error_replies_an_empty_dict_and_events_are_accepted() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let srv = python_server(tmp.path()).await?;
    let mut bot = PyBot::new(&srv.url, "testbot4");
    bot.handshake().await?;
    let id = new_task(&srv, &["true"], json!({})).await?;
    let run = poll_until_run(&mut bot).await?;
    let run_id = run["manifest"]["task_id"].as_str().unwrap_or_default().to_string();
    let body = json!({"id": "testbot4", "task_id": run_id, "session": bot.session,
                      "message": "Execution failed: Task manifest missing required key bot_dimensions: ...",
                      "client_error": {"missing_cas": [], "missing_cipd": []}});
    let (status, v, ctype) = bot.post(&format!("task_error/{run_id}"), &body).await?;
    assert_eq!(status, 200, "{v}");
    assert!(ctype.starts_with("application/json"));
    assert_eq!(v, json!({}));
    assert_eq!(srv.prpc().result(&id).await?["state"], "BOT_DIED");

    for (event, message) in [("bot_error", "boom\nCalling stack"), ("bot_shutdown", "Signal was received")] {
        let body = json!({"dimensions": bot.dimensions, "event": event, "message": message,
                          "session": bot.session, "state": bot.state(0), "version": bot.version});
        let (status, v, _) = bot.post("event", &body).await?;
        assert_eq!(status, 200, "{event}: {v}");
        assert!(v.is_object(), "{v}");
    }
    srv.stop().await;
    Ok(())
}

/// `terminate` (TerminateBot): the poll reply has `task_id`, and the bot's
/// `{"duration": 0, "exit_code": 0}` packet for it is accepted.
#[tokio::test]
async fn a_terminated_python_bot_gets_terminate_and_its_packet_is_accepted() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let srv = python_server(tmp.path()).await?;
    let mut bot = PyBot::new(&srv.url, "testbot2");
    bot.handshake().await?;
    srv.prpc().ok("Bots", "TerminateBot", &json!({"botId": "testbot2", "reason": "test"})).await?;
    let mut term = Value::Null;
    for i in 0..10 {
        let v = bot.poll(&format!("10000000-0000-4000-8000-{i:012}")).await?;
        if v["cmd"] == "terminate" {
            term = v;
            break;
        }
    }
    let task_id = term["task_id"].as_str().expect("a terminate reply with a task_id").to_string();
    let r = bot.task_update(&task_id, json!({"duration": 0, "exit_code": 0})).await?;
    assert_eq!(r["ok"], true, "{r}");
    srv.stop().await;
    Ok(())
}

/// Maintenance and quarantine in the bot's state get a sleep, never a task.
#[tokio::test]
async fn a_python_bot_in_maintenance_or_quarantine_sleeps() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let srv = python_server(tmp.path()).await?;
    let mut healthy = PyBot::new(&srv.url, "healthy");
    healthy.handshake().await?;
    let mut bot = PyBot::new(&srv.url, "testbot3");
    bot.handshake().await?;
    new_task(&srv, &["true"], json!({})).await?;
    for (key, value) in [("maintenance", json!("disk swap")), ("quarantined", json!("low disk"))] {
        let mut state = bot.state(3);
        state[key] = value;
        let body = json!({"dimensions": bot.dimensions, "request_uuid": format!("20000000-0000-4000-8000-0000000{key:.5}"),
                          "session": bot.session, "state": state, "version": ""});
        let (status, v, _) = bot.post("poll", &body).await?;
        assert_eq!(status, 200);
        assert_eq!(v["cmd"], "sleep", "{key}: {v}");
        assert!(v["duration"].is_f64());
    }
    srv.stop().await;
    Ok(())
}

/// Editing the bot sources changes the served zip and its digest once two
/// checks (≥ 2 s apart on the server's clock) saw the same new files.
#[tokio::test]
async fn changing_the_bot_sources_rebuilds_the_zip() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let bot_dir = fake_bot_dir(tmp.path())?;
    let clock = Arc::new(FakeClock::new());
    let dir = bot_dir.clone();
    let srv =
        TestServer::start_configured(clock.clone(), Default::default(), move |cfg| cfg.python_bot_dir = Some(dir))
            .await?;
    let (v1, _) = download_python_zip(&srv.url).await?;
    std::fs::write(bot_dir.join("bot_code/bot_main.py"), "MAIN = 2  # a longer file\n")?;
    let mut seen = vec![v1.clone()];
    for _ in 0..3 {
        clock.advance(Duration::from_secs(3));
        seen.push(download_python_zip(&srv.url).await?.0);
    }
    let (v2, bytes) = download_python_zip(&srv.url).await?;
    assert_ne!(v2, v1, "versions seen: {seen:?}");
    assert_eq!(unzip(&bytes)?["bot_code/bot_main.py"], b"MAIN = 2  # a longer file\n");
    assert_eq!(spec_digest(&unzip(&bytes)?), v2);
    srv.stop().await;
    Ok(())
}
