//! The network edge with real processes: TLS end to end, a low open-file
//! limit under silent connections, memory of slow raw-output readers.

use crate::common::{exe, start_server, wait_bots, BotProcess};
use anyhow::{anyhow, Context};
use muster_testkit::{Prpc, TestBot, TestCa};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

/// `muster server` over HTTPS with a certificate from a private CA; a real
/// `muster bot` (CA from MUSTER_CA_FILE) and `muster run` (--ca-file) verify
/// it and run a task; `muster run` without the CA is refused.
#[tokio::test]
async fn tls_end_to_end_with_a_private_ca() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ca = TestCa::new("muster e2e CA")?;
    let ca_file = ca.write_pem(&dir.path().join("ca.pem"))?;
    let cert = ca.issue(&["localhost", "127.0.0.1"], dir.path(), "server")?;
    let (c, k) = (cert.cert.to_string_lossy().to_string(), cert.key.to_string_lossy().to_string());
    let srv = start_server(&dir.path().join("server"), &["--tls-cert", &c, "--tls-key", &k]).await?;
    assert!(srv.url.starts_with("https://"), "{}", srv.url);

    let bot_dir = dir.path().join("bot");
    let child = tokio::process::Command::new(exe())
        .args(["bot", "--server", &srv.url, "--dir"])
        .arg(&bot_dir)
        .args(["--id", "tls-bot"])
        .env("MUSTER_CA_FILE", &ca_file)
        .env("MUSTER_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting muster bot")?;
    // The bot verified the server with the CA and connected.
    let trusting = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes())?)
        .build()?;
    let mut connected = false;
    for _ in 0..600 {
        let r = trusting
            .post(format!("{}/prpc/swarming.v2.Bots/CountBots", srv.url))
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body("{}")
            .send()
            .await?
            .text()
            .await?;
        if r.contains("\"count\"") && !r.contains("\"count\":\"0\"") && !r.contains("\"count\":0") {
            connected = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(connected, "the bot did not connect over TLS in 60 s");
    let run = |ca: Option<&Path>| {
        let mut cmd = tokio::process::Command::new(exe());
        cmd.args(["run", "-S", &srv.url, "-d", "pool=default"]);
        if let Some(ca) = ca {
            cmd.arg("--ca-file").arg(ca);
        }
        cmd.args(["--", "sh", "-c", "echo hello over tls"]).env_remove("MUSTER_CA_FILE").env("USER", "tester");
        tokio::time::timeout(Duration::from_secs(180), cmd.output())
    };
    let out = run(Some(&ca_file)).await.context("muster run hung")??;
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains("hello over tls"), "{}", text(&out.stdout));

    let out = run(None).await.context("muster run hung")??;
    assert_ne!(out.status.code(), Some(0));
    let err = text(&out.stderr).to_lowercase();
    assert!(err.contains("certificate") || err.contains("tls"), "{err}");
    drop(child);
    srv.stop().await?;
    Ok(())
}

/// Starts `muster server` under `ulimit -n <fds>`; returns the child and its URL.
async fn server_with_fd_limit(
    data_dir: &Path,
    fds: u32,
    extra: &[&str],
) -> anyhow::Result<(tokio::process::Child, String)> {
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -n {fds} && exec \"$0\" \"$@\""))
        .arg(exe())
        .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .env("MUSTER_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting muster server under ulimit")?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .context("server did not print its address in 60 s")??
        .ok_or_else(|| anyhow!("server exited before printing its address"))?;
    let url = first.strip_prefix("listening on ").ok_or_else(|| anyhow!("unexpected {first:?}"))?.trim().to_string();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, url))
}

/// Regression: with a low open-file limit, silent and half-sent connections
/// used to hold every descriptor for ever, and the server refused real
/// requests (`accept error: Too many open files`). Now they are closed by
/// the header timeout and real requests are served.
#[tokio::test]
async fn silent_connections_do_not_starve_real_requests_under_a_low_fd_limit() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (mut child, url) = server_with_fd_limit(dir.path(), 128, &["--header-timeout-secs", "1"]).await?;
    let addr = url.trim_start_matches("http://").to_string();
    let mut idle = Vec::new();
    for i in 0..300 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.with_context(|| format!("connection {i}"))?;
        if i % 3 == 0 {
            s.write_all(b"POST /prpc/swarming.v2.Tasks/NewTask HTTP/1.1\r\nHost: x\r\nContent-Le").await?;
        }
        idle.push(s);
    }
    // Real requests, each on a new connection, are all served.
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).timeout(Duration::from_secs(90)).build()?;
    for i in 0..5 {
        let r = http
            .get(format!("{url}/swarming/api/v1/bot/server_ping"))
            .send()
            .await
            .with_context(|| format!("real request {i} under 300 silent connections"))?;
        assert_eq!(r.text().await?, "Server up");
    }
    // And the silent ones were closed by the server.
    for (i, s) in idle.iter_mut().enumerate().step_by(37) {
        let mut buf = [0u8; 1024];
        let closed = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "silent connection {i} still open");
    }
    child.start_kill()?;
    let _ = child.wait().await;
    Ok(())
}

/// Anonymous resident memory of process `pid` (heap; file mappings excluded).
fn rss_anon_bytes(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .ok_or_else(|| anyhow!("no RssAnon in /proc/{pid}/status"))?;
    Ok(kb * 1024)
}

/// Regression: a whole-output download (/task/raw) held the whole output
/// in memory per request, so slow readers multiplied it (30 of them took a
/// server from 0.8 to 3.8 GB). Now it is streamed in slices: 16 stalled
/// readers of a 32 MiB output add far less than one output each.
#[tokio::test]
async fn slow_readers_of_a_large_output_do_not_multiply_memory() -> anyhow::Result<()> {
    const SIZE: usize = 32 * 1024 * 1024;
    const READERS: usize = 16;
    let dir = tempfile::tempdir()?;
    let srv = start_server(&dir.path().join("server"), &[]).await?;
    let pid = srv.pid().context("server pid")?;
    let prpc = Prpc::new(&srv.url);
    let mut bot = TestBot::new(&srv.url, "raw-bot", "default", &[]);
    bot.handshake().await?;
    let id = prpc.new_task("big-output", "default", &["true"]).await?;
    let m = bot.poll_until_run(20).await?;
    let run_id = m["task_id"].as_str().context("no task_id")?.to_string();
    let chunk: Vec<u8> = (0..100 * 1024).map(|i| b"muster output line\n"[i % 19]).collect();
    let mut offset = 0;
    while offset < SIZE {
        bot.output(&run_id, offset as u64, &chunk).await?;
        offset += chunk.len();
    }
    bot.complete(&run_id, 0, 1.0).await?;

    // One full download is complete and correct.
    let all = reqwest::get(format!("{}/task/raw?id={id}", srv.url)).await?.bytes().await?;
    assert_eq!(all.len(), offset);
    assert!(all.chunks(chunk.len()).all(|c| c == &chunk[..c.len()]));
    drop(all);

    let before = rss_anon_bytes(pid)?;
    let addr = srv.url.trim_start_matches("http://").to_string();
    let mut readers = Vec::new();
    for _ in 0..READERS {
        let mut s = tokio::net::TcpStream::connect(&addr).await?;
        s.write_all(format!("GET /task/raw?id={id} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await?;
        // Read the start of the response, then stall.
        let mut got = vec![0u8; 64 * 1024];
        tokio::time::timeout(Duration::from_secs(60), s.read_exact(&mut got)).await.context("no response")??;
        assert!(got.starts_with(b"HTTP/1.1 200"), "{}", text(&got[..64]));
        readers.push(s);
    }
    let during = rss_anon_bytes(pid)?;
    let grew = during.saturating_sub(before);
    // Holding each output whole would add READERS × 32 MiB = 512 MiB.
    assert!(grew < 160 * 1024 * 1024, "{READERS} stalled readers grew the server by {} MiB", grew >> 20);
    drop(readers);
    srv.stop().await?;
    Ok(())
}

/// The bot started from a fetched /bot_code is unaffected by TLS being off
/// (sanity: the default plain-HTTP path still works through the new edge).
#[tokio::test]
async fn plain_http_bots_still_work_through_the_edge() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let srv =
        start_server(&dir.path().join("server"), &["--header-timeout-secs", "2", "--idle-timeout-secs", "2"]).await?;
    let _bot = BotProcess::start(&srv.url, &dir.path().join("b"), "edge-bot", &[]).await?;
    let prpc = Prpc::new(&srv.url);
    wait_bots(&prpc, 1).await?;
    let id = prpc.new_task("plain", "default", &["sh", "-c", "sleep 3; echo done"]).await?;
    let r = prpc.wait_final(&id, Duration::from_secs(120)).await?;
    assert_eq!(r["state"], "COMPLETED", "{r}");
    assert!(text(&prpc.stdout(&id).await?).contains("done"));
    srv.stop().await?;
    Ok(())
}
