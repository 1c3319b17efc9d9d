//! The network edge: trusted proxies, limits and quotas, timeouts, TLS,
//! response headers (docs/edge.md).

use muster_core::time::SystemClock;
use muster_sched::SchedConfig;
use muster_server::edge::{proxy, TlsFiles};
use muster_testkit::{Prpc, TestBot, TestCa, TestServer};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn quick_sched() -> SchedConfig {
    SchedConfig { long_poll: Duration::from_secs(1), ..Default::default() }
}

async fn handshake_from(url: &str, forwarded_for: Option<&str>) -> anyhow::Result<u16> {
    let mut req = reqwest::Client::new()
        .post(format!("{url}/swarming/api/v1/bot/handshake"))
        .header("content-type", "application/json")
        .json(&json!({"dimensions": {"id": ["proxied"], "pool": ["default"]}, "state": {}, "version": ""}));
    if let Some(f) = forwarded_for {
        req = req.header("x-forwarded-for", f);
    }
    Ok(req.send().await?.status().as_u16())
}

/// `--bot-allow` checks the forwarded client address when, and only when,
/// the TCP peer is a trusted proxy.
#[tokio::test]
async fn forwarded_for_counts_only_from_a_trusted_proxy() -> anyhow::Result<()> {
    let allow = |c: &mut muster_server::ServerConfig, trust: &[&str]| {
        c.bot_auth.ip_allowlist = vec!["203.0.113.0/24".to_string()];
        c.edge.trusted_proxies =
            proxy::parse_cidrs(&trust.iter().map(|s| s.to_string()).collect::<Vec<_>>()).expect("cidrs");
    };
    // The test client (127.0.0.1) is a trusted proxy.
    let srv =
        TestServer::start_configured(Arc::new(SystemClock), quick_sched(), |c| allow(c, &["127.0.0.1/32"])).await?;
    assert_eq!(handshake_from(&srv.url, Some("203.0.113.5")).await?, 200, "forwarded client in the allowlist");
    assert_eq!(handshake_from(&srv.url, Some("198.51.100.7")).await?, 401, "forwarded client outside it");
    assert_eq!(handshake_from(&srv.url, None).await?, 401, "the proxy itself is not allowed");
    // A client forging a first hop does not get in: the proxy appended the real one.
    assert_eq!(handshake_from(&srv.url, Some("203.0.113.5, 198.51.100.7")).await?, 401);
    srv.stop().await;

    // Not trusted: the header is ignored, whatever it says.
    let srv = TestServer::start_configured(Arc::new(SystemClock), quick_sched(), |c| allow(c, &["10.0.0.0/8"])).await?;
    assert_eq!(handshake_from(&srv.url, Some("203.0.113.5")).await?, 401, "an untrusted peer's header counts");
    srv.stop().await;
    Ok(())
}

fn big_task(pool: &str, pad: usize) -> serde_json::Value {
    json!({
        "name": "big", "priority": 100,
        "taskSlices": [{"expirationSecs": 600, "properties": {
            "command": ["echo", "x".repeat(pad)], "dimensions": [{"key": "pool", "value": pool}],
            "executionTimeoutSecs": 60, "ioTimeoutSecs": 60, "gracePeriodSecs": 5}}],
    })
}

/// A caller cannot pile up unbounded pending requests: past its quota of
/// pending bytes NewTask fails with RESOURCE_EXHAUSTED (HTTP 429) and says
/// why; another caller is not affected; cancelling frees the quota.
#[tokio::test]
async fn new_task_past_the_pending_bytes_quota_is_resource_exhausted() -> anyhow::Result<()> {
    let srv = TestServer::start_configured(Arc::new(SystemClock), quick_sched(), |c| {
        c.edge.pending_bytes_quota = 100_000;
        c.edge.new_task_rate = 0.0;
        c.edge.trusted_proxies = proxy::parse_cidrs(&["127.0.0.1".to_string()]).expect("cidr");
        // Forwarded callers are not on loopback: let anonymous submit, as `muster dev` does.
        c.access = Arc::new(muster_config::ConfigHolder::fixed(muster_config::Snapshot::empty(
            muster_config::snapshot::LoadOptions { dev: true, ..Default::default() },
        )));
    })
    .await?;
    // A bot that could run them (so they stay PENDING) but never polls.
    TestBot::new(&srv.url, "quota-bot", "quota", &[]).handshake().await?;
    let p = Prpc::new(&srv.url);
    let mut ids = Vec::new();
    let refused = loop {
        let r = p.call("Tasks", "NewTask", &big_task("quota", 30_000)).await?;
        if r.code != 0 {
            break r;
        }
        ids.push(r.json["taskId"].as_str().unwrap_or_default().to_string());
        assert!(ids.len() <= 4, "a 100 kB quota let {} tasks of 30 kB through", ids.len());
    };
    assert_eq!(ids.len(), 3);
    assert_eq!(refused.code, 8, "RESOURCE_EXHAUSTED: {}", refused.text);
    assert_eq!(refused.http_status, 429);
    assert!(refused.text.contains("pending-bytes quota"), "{}", refused.text);

    // Another caller (another client address through the trusted proxy).
    let other = reqwest::Client::new()
        .post(format!("{}/prpc/swarming.v2.Tasks/NewTask", srv.url))
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .header("x-forwarded-for", "203.0.113.77")
        .body(serde_json::to_vec(&big_task("quota", 30_000))?)
        .send()
        .await?;
    assert_eq!(other.headers().get("x-prpc-grpc-code").and_then(|v| v.to_str().ok()), Some("0"));

    // Cancelled tasks no longer count (re-checked at most once a second).
    for id in &ids {
        p.ok("Tasks", "CancelTask", &json!({"taskId": id})).await?;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = p.call("Tasks", "NewTask", &big_task("quota", 30_000)).await?;
        if r.code == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "quota not released after cancelling: {}", r.text);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    srv.stop().await;
    Ok(())
}

#[tokio::test]
async fn new_task_past_the_rate_is_resource_exhausted() -> anyhow::Result<()> {
    let srv = TestServer::start_configured(Arc::new(SystemClock), quick_sched(), |c| {
        c.edge.new_task_rate = 0.001;
        c.edge.new_task_burst = 2;
    })
    .await?;
    let p = Prpc::new(&srv.url);
    p.new_task("a", "nobody", &["true"]).await?;
    p.new_task("b", "nobody", &["true"]).await?;
    let r = p.call("Tasks", "NewTask", &big_task("nobody", 10)).await?;
    assert_eq!(r.code, 8, "{}", r.text);
    assert!(r.text.contains("rate limit") && r.text.contains("retry in"), "{}", r.text);
    srv.stop().await;
    Ok(())
}

/// Reads until the server closes the connection; fails if it does not
/// within `limit`.
async fn expect_closed(s: &mut tokio::net::TcpStream, limit: Duration, what: &str) -> anyhow::Result<()> {
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(limit, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await;
    anyhow::ensure!(closed.is_ok(), "{what}: the server kept the connection open for {limit:?}");
    Ok(())
}

/// Silent and half-sent connections are closed by the header timeout, an
/// idle keep-alive connection by the idle timeout, but a bot poll parked
/// longer than both is answered normally.
#[tokio::test]
async fn silent_and_half_sent_connections_are_closed_but_parked_polls_are_not() -> anyhow::Result<()> {
    let sched = SchedConfig { long_poll: Duration::from_secs(3), ..Default::default() };
    let srv = TestServer::start_configured(Arc::new(SystemClock), sched, |c| {
        c.edge.header_timeout = Duration::from_millis(500);
        c.edge.idle_timeout = Duration::from_millis(500);
    })
    .await?;
    let addr = srv.url.trim_start_matches("http://").to_string();
    let mut silent = tokio::net::TcpStream::connect(&addr).await?;
    let mut half = tokio::net::TcpStream::connect(&addr).await?;
    half.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ").await?;
    expect_closed(&mut silent, Duration::from_secs(15), "silent connection").await?;
    expect_closed(&mut half, Duration::from_secs(15), "half-sent request").await?;

    // Parked for the whole long poll (3 s, six idle timeouts): still answered.
    let mut bot = TestBot::new(&srv.url, "parked", "default", &[]);
    bot.handshake().await?;
    let v = bot.poll().await?;
    assert_eq!(v["cmd"], "sleep", "{v}");
    srv.stop().await;
    Ok(())
}

/// Pages carry the security headers; large replies are gzip-compressed for
/// clients that accept it.
#[tokio::test]
async fn pages_carry_security_headers_and_large_replies_are_compressed() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let http = reqwest::Client::builder().no_gzip().build()?;
    let r = http.get(format!("{}/", srv.url)).send().await?;
    assert_eq!(r.status(), 200);
    let h = r.headers();
    let csp = h.get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"), "{csp:?}");
    assert_eq!(h.get("x-frame-options").and_then(|v| v.to_str().ok()), Some("DENY"));
    assert_eq!(h.get("x-content-type-options").and_then(|v| v.to_str().ok()), Some("nosniff"));
    assert!(h.get("referrer-policy").is_some());

    let r = http.get(format!("{}/ui/static/ui.js", srv.url)).header("accept-encoding", "gzip").send().await?;
    assert_eq!(r.headers().get("content-encoding").and_then(|v| v.to_str().ok()), Some("gzip"));
    let gz = r.bytes().await?;
    let mut js = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut js)?;
    assert!(js.len() > gz.len(), "compressed {} → {}", js.len(), gz.len());
    // Without Accept-Encoding: as is.
    let r = http.get(format!("{}/ui/static/ui.js", srv.url)).send().await?;
    assert!(r.headers().get("content-encoding").is_none());
    srv.stop().await;
    Ok(())
}

async fn preflight(url: &str, origin: &str) -> anyhow::Result<Option<String>> {
    let r = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, format!("{url}/prpc/swarming.v2.Tasks/ListTasks"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .send()
        .await?;
    Ok(r.headers().get("access-control-allow-origin").and_then(|v| v.to_str().ok()).map(str::to_string))
}

/// The pRPC API answers cross-origin browser calls only from configured
/// origins (none by default).
#[tokio::test]
async fn cors_only_for_configured_origins() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    assert_eq!(preflight(&srv.url, "https://evil.example").await?, None, "default: no origin allowed");
    let r = reqwest::Client::new()
        .post(format!("{}/prpc/swarming.v2.Swarming/GetDetails", srv.url))
        .header("content-type", "application/json")
        .header("origin", "https://evil.example")
        .body("{}")
        .send()
        .await?;
    assert!(r.headers().get("access-control-allow-origin").is_none());
    assert!(r.headers().get("access-control-allow-credentials").is_none());
    srv.stop().await;

    let srv = TestServer::start_configured(Arc::new(SystemClock), quick_sched(), |c| {
        c.edge.cors_origins = vec!["https://ui.example".to_string()];
    })
    .await?;
    assert_eq!(preflight(&srv.url, "https://ui.example").await?.as_deref(), Some("https://ui.example"));
    assert_eq!(preflight(&srv.url, "https://evil.example").await?, None);
    srv.stop().await;
    Ok(())
}

fn client_trusting(ca: Option<&TestCa>) -> anyhow::Result<reqwest::Client> {
    let mut b = reqwest::Client::builder().pool_max_idle_per_host(0);
    if let Some(ca) = ca {
        b = b.add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes())?);
    }
    Ok(b.build()?)
}

/// HTTPS with a certificate from a private CA; a client without that CA is
/// refused; a renewed certificate (here from another CA) is served without
/// a restart.
#[tokio::test]
async fn tls_is_served_and_the_certificate_reloads_without_restart() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ca1 = TestCa::new("muster test CA 1")?;
    let ca2 = TestCa::new("muster test CA 2")?;
    let first = ca1.issue(&["localhost", "127.0.0.1"], dir.path(), "server")?;
    let files = TlsFiles { cert: first.cert.clone(), key: first.key.clone() };
    let srv = TestServer::start_configured(Arc::new(SystemClock), quick_sched(), |c| {
        c.edge.tls = Some(files);
        c.edge.tls_reload_interval = Duration::from_millis(100);
    })
    .await?;
    let url = srv.url.replacen("http://", "https://", 1);
    let ping = format!("{url}/swarming/api/v1/bot/server_ping");
    let r = client_trusting(Some(&ca1))?.get(&ping).send().await?;
    assert_eq!(r.text().await?, "Server up");
    let e = client_trusting(None)?.get(&ping).send().await.expect_err("a client without the CA must refuse");
    assert!(format!("{e:?}").to_lowercase().contains("certificate"), "{e:?}");
    assert!(client_trusting(Some(&ca2))?.get(&ping).send().await.is_err(), "not yet renewed");
    // Plain HTTP on the TLS port gets nothing useful.
    assert!(reqwest::get(format!("{}/swarming/api/v1/bot/server_ping", srv.url)).await.is_err());

    // Renew: new files from CA 2 written over the old ones.
    let renewed = ca2.issue(&["localhost", "127.0.0.1"], dir.path(), "renewed")?;
    std::fs::copy(&renewed.key, &first.key)?;
    std::fs::copy(&renewed.cert, &first.cert)?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match client_trusting(Some(&ca2))?.get(&ping).send().await {
            Ok(r) if r.status() == 200 => break,
            other => {
                assert!(tokio::time::Instant::now() < deadline, "renewed certificate not served: {other:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    assert!(client_trusting(Some(&ca1))?.get(&ping).send().await.is_err(), "the old certificate is gone");
    srv.stop().await;
    Ok(())
}

/// Regression: a 5-byte output `ESC ] ESC é` made the task page panic.
#[tokio::test]
async fn a_task_page_renders_an_osc_cut_before_a_multibyte_character() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let p = srv.prpc();
    let mut bot = TestBot::new(&srv.url, "ansi-bot", "default", &[]);
    bot.handshake().await?;
    let id = p.new_task("ansi", "default", &["true"]).await?;
    let m = bot.poll_until_run(10).await?;
    let run_id = m["task_id"].as_str().unwrap_or_default().to_string();
    bot.output(&run_id, 0, b"\x1b]\x1b\xc3\xa9").await?;
    for _ in 0..2 {
        let r = reqwest::get(format!("{}/task?id={id}", srv.url)).await?;
        assert_eq!(r.status(), 200, "{}", r.text().await?);
    }
    let raw = reqwest::get(format!("{}/task/raw?id={id}", srv.url)).await?.bytes().await?;
    assert_eq!(&raw[..], b"\x1b]\x1b\xc3\xa9");
    srv.stop().await;
    Ok(())
}

/// The UI's new-task form is limited like pRPC NewTask: the same caller
/// (here the client address) draws from the same bucket, and past it the
/// form is refused with 429 and the same message, creating nothing.
#[tokio::test]
async fn the_ui_new_task_form_shares_the_new_task_rate_limit() -> anyhow::Result<()> {
    let srv = TestServer::start_configured(Arc::new(SystemClock), quick_sched(), |c| {
        c.edge.new_task_rate = 0.001;
        c.edge.new_task_burst = 2;
    })
    .await?;
    let p = Prpc::new(&srv.url);
    p.new_task("by-prpc", "nobody", &["true"]).await?;
    let page = reqwest::get(format!("{}/botlist", srv.url)).await?;
    let csrf = muster_testkit::csrf_cookie(&page).unwrap_or_default();
    anyhow::ensure!(!csrf.is_empty(), "a UI page sets the CSRF cookie");
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let post = |name: &'static str| {
        client
            .post(format!("{}/ui/task/new", srv.url))
            .header("cookie", format!("muster_csrf={csrf}"))
            .form(&[("name", name), ("dimensions", "pool:nobody"), ("command", "true"), ("csrf", csrf.as_str())])
            .send()
    };
    let first = post("by-form-1").await?;
    assert!(first.status().is_redirection(), "the form within the burst creates a task: {}", first.status());
    let second = post("by-form-2").await?;
    assert_eq!(second.status().as_u16(), 429, "the form past the rate is refused");
    let body = second.text().await?;
    assert!(body.contains("NewTask rate limit") && body.contains("retry in"), "{body}");
    let listed =
        p.ok("Tasks", "ListTasks", &json!({"tags": ["pool:nobody"], "state": "QUERY_ALL", "limit": 10})).await?;
    let names: Vec<&str> =
        listed["items"].as_array().into_iter().flatten().filter_map(|t| t["name"].as_str()).collect();
    assert!(!names.contains(&"by-form-2"), "a refused form created a task: {names:?}");
    assert_eq!(names.len(), 2, "{names:?}");
    srv.stop().await;
    Ok(())
}
