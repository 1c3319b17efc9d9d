//! Browser sign-in (OIDC authorization code + PKCE) against the testkit's
//! real local issuer: headless Chromium signs in end to end; forged
//! callbacks, wrong PKCE verifiers and old sessions are refused.

use crate::webdriver::Browser;
use crate::{no_redirects, urlencode};
use muster_access::{token, Identity};
use muster_config::snapshot::LoadOptions;
use muster_config::ConfigHolder;
use muster_sched::SchedConfig;
use muster_testkit::{OidcIssuer, TestBot, TestServer};
use std::sync::Arc;
use std::time::Duration;

struct World {
    issuer: OidcIssuer,
    server: TestServer,
    _config: tempfile::TempDir,
    task_a: String,
    task_b: String,
}

/// A server whose browser sign-in goes to a local issuer; `viewer@x.com`
/// may see pool `a` only; one bot and one task in each of `a` and `b`.
async fn world() -> anyhow::Result<World> {
    let issuer = OidcIssuer::start().await?;
    issuer.set_user(Some("viewer@x.com"));
    let config = tempfile::tempdir()?;
    std::fs::write(
        config.path().join("access.toml"),
        format!(
            r#"
[groups.administrators]
members = ["user:admin@x.com"]

[[oidc]]
issuer = "{}"
audiences = ["muster-cli"]
client_id = "muster-ui"

[[pool]]
name = "a"
owners = ["group:administrators"]
viewers = ["user:viewer@x.com"]

[[pool]]
name = "b"
owners = ["group:administrators"]
"#,
            issuer.url
        ),
    )?;
    let holder = Arc::new(ConfigHolder::load(config.path(), LoadOptions::default()).map_err(anyhow::Error::msg)?);
    let server = TestServer::start_configured(
        Arc::new(muster_core::time::SystemClock),
        SchedConfig { long_poll: Duration::from_secs(1), ..Default::default() },
        |c| c.access = holder.clone(),
    )
    .await?;
    let admin = Identity::parse("user:admin@x.com").map_err(anyhow::Error::msg)?;
    let issued = token::create(server.store.as_ref(), &admin, "test", &admin, server.now(), 3600).await?;
    let prpc = server.prpc().with_token(&issued.token);
    for (bot, pool) in [("bot-a", "a"), ("bot-b", "b")] {
        TestBot::new(&server.url, bot, pool, &[]).handshake().await?;
    }
    let task_a = prpc.new_task("task-in-a", "a", &["true"]).await?;
    let task_b = prpc.new_task("task-in-b", "b", &["true"]).await?;
    Ok(World { issuer, server, _config: config, task_a, task_b })
}

#[tokio::test]
async fn chromium_signs_in_through_the_issuer_and_sees_only_its_pool() -> anyhow::Result<()> {
    let w = world().await?;
    let b = Browser::start().await?;
    // Anonymous: refused, with a way to sign in.
    b.goto(&format!("{}/task?id={}", w.server.url, w.task_a)).await?;
    assert_eq!(b.text("#caller").await?, "anonymous:anonymous");
    b.click("#signin").await?;
    b.wait_for(
        "signed in",
        "const c = document.getElementById('caller'); return !!c && c.textContent === 'user:viewer@x.com';",
    )
    .await?;
    // Back where the link was clicked, now allowed.
    let url = b.url().await?;
    assert!(url.starts_with(&format!("{}/task?id={}", w.server.url, w.task_a)), "returned to the task page: {url}");
    assert!(b.text("main").await?.contains("task-in-a"));
    b.screenshot("signed-in-task").await?;
    // The session cookie is not readable by scripts.
    let cookies = b.js("return document.cookie;").await?;
    assert!(!cookies.as_str().unwrap_or_default().contains("muster_session"), "HttpOnly: {cookies}");
    // Pool b's task stays hidden from this identity.
    b.goto(&format!("{}/task?id={}", w.server.url, w.task_b)).await?;
    assert!(b.text("main").await?.contains("doesn't have permission"));
    // The task list shows pool a's task only.
    b.goto(&format!("{}/tasklist", w.server.url)).await?;
    let rows = b
        .js("return Array.from(document.querySelectorAll('[data-task]')).map(r => r.getAttribute('data-task'));")
        .await?;
    let rows: Vec<String> =
        rows.as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()).unwrap_or_default();
    assert!(rows.contains(&w.task_a), "pool a's task listed: {rows:?}");
    assert!(!rows.contains(&w.task_b), "pool b's task not listed: {rows:?}");
    // Sign out: anonymous again.
    b.click("#signout").await?;
    b.wait_for(
        "signed out",
        "const c = document.getElementById('caller'); return !!c && c.textContent === 'anonymous:anonymous';",
    )
    .await?;
    b.close().await;
    w.server.stop().await;
    Ok(())
}

/// One sign-in attempt driven over HTTP: (attempt cookie, state, code).
async fn attempt(w: &World) -> anyhow::Result<(String, String, String)> {
    let http = no_redirects();
    let r = http.get(format!("{}/ui/signin?next=/tasklist", w.server.url)).send().await?;
    anyhow::ensure!(r.status().as_u16() == 303, "sign-in starts with a redirect, got {}", r.status());
    let set = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("muster_signin="));
    let set = set.ok_or_else(|| anyhow::anyhow!("no muster_signin cookie"))?.to_string();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Lax"), "{set}");
    let cookie = set.split(';').next().unwrap_or_default().to_string();
    let to = r.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert!(to.starts_with(&format!("{}/authorize?", w.issuer.url)), "{to}");
    assert!(to.contains("code_challenge_method=S256") && to.contains("client_id=muster-ui"), "{to}");
    let r = http.get(&to).send().await?;
    let back = r.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let back = reqwest::Url::parse(&back)?;
    assert_eq!(back.path(), "/ui/signin/callback");
    let q = |k: &str| back.query_pairs().find(|(n, _)| n == k).map(|(_, v)| v.to_string()).unwrap_or_default();
    Ok((cookie, q("state"), q("code")))
}

async fn callback(w: &World, cookie: Option<&str>, state: &str, code: &str) -> anyhow::Result<reqwest::Response> {
    let mut req = no_redirects().get(format!(
        "{}/ui/signin/callback?code={}&state={}",
        w.server.url,
        urlencode(code),
        urlencode(state)
    ));
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    Ok(req.send().await?)
}

fn session_cookie(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("muster_session=") && !v.starts_with("muster_session=;"))
        .map(str::to_string)
}

#[tokio::test]
async fn forged_state_wrong_verifier_and_ended_sessions_are_refused() -> anyhow::Result<()> {
    let w = world().await?;
    // A forged state (the attacker's callback in the victim's browser).
    let (cookie, _state, code) = attempt(&w).await?;
    let r = callback(&w, Some(&cookie), "forged-state", &code).await?;
    assert_eq!(r.status().as_u16(), 400);
    assert!(session_cookie(&r).is_none());
    assert!(r.text().await?.contains("state does not match"));
    // No attempt cookie at all.
    let (_, state, code) = attempt(&w).await?;
    assert_eq!(callback(&w, None, &state, &code).await?.status().as_u16(), 400);
    // A code issued for attempt 1 redeemed with attempt 2's verifier: the
    // issuer refuses it, so no session.
    let (_cookie1, _state1, code1) = attempt(&w).await?;
    let (cookie2, state2, _code2) = attempt(&w).await?;
    let r = callback(&w, Some(&cookie2), &state2, &code1).await?;
    assert_eq!(r.status().as_u16(), 403);
    assert!(session_cookie(&r).is_none());
    assert!(w.issuer.refusals().iter().any(|x| x == "PKCE verifier mismatch"), "{:?}", w.issuer.refusals());

    // The real thing: a session (only its hash is stored).
    let (cookie, state, code) = attempt(&w).await?;
    let r = callback(&w, Some(&cookie), &state, &code).await?;
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers().get("location").and_then(|v| v.to_str().ok()), Some("/tasklist"));
    let set = session_cookie(&r).ok_or_else(|| anyhow::anyhow!("no session cookie"))?;
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Lax") && !set.contains("Secure"), "{set}");
    let session = set.split(';').next().unwrap_or_default().to_string();
    let id = session.trim_start_matches("muster_session=");
    use sha2::Digest;
    let stored = w.server.store.get_ui_session(&sha2::Sha256::digest(id.as_bytes())).await?;
    assert_eq!(stored.map(|s| s.identity), Some("user:viewer@x.com".to_string()));
    // The same code cannot be redeemed twice.
    assert_eq!(callback(&w, Some(&cookie), &state, &code).await?.status().as_u16(), 403);

    let page = |path: String, cookie: String| async move {
        let r = no_redirects().get(path).header("cookie", cookie).send().await?;
        anyhow::Ok((r.status().as_u16(), r.text().await?))
    };
    let r =
        no_redirects().get(format!("{}/task?id={}", w.server.url, w.task_a)).header("cookie", &session).send().await?;
    assert_eq!(r.status().as_u16(), 200);
    let csrf = muster_testkit::csrf_cookie(&r).unwrap_or_default();
    let body = r.text().await?;
    assert!(body.contains("user:viewer@x.com") && body.contains("Sign out"));
    assert!(body.contains(&format!("name=\"csrf\" value=\"{csrf}\"")), "the sign-out form carries the CSRF token");
    let (status, _) = page(format!("{}/task?id={}", w.server.url, w.task_b), session.clone()).await?;
    assert_eq!(status, 403);
    // The cookie is not a pRPC credential (a cross-site script could send it).
    let r = reqwest::Client::new()
        .post(format!("{}/prpc/swarming.v2.Tasks/GetResult", w.server.url))
        .header("content-type", "application/json")
        .header("cookie", &session)
        .body(format!("{{\"taskId\": \"{}\"}}", w.task_a))
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 403, "anonymous on pRPC");

    // Sign out (a CSRF-protected form), then the old cookie is worthless.
    let r = no_redirects()
        .post(format!("{}/ui/signout", w.server.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", &w.server.url)
        .header("cookie", format!("{session}; muster_csrf={csrf}"))
        .body(format!("csrf={csrf}"))
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 303);
    let (status, body) = page(format!("{}/task?id={}", w.server.url, w.task_a), session.clone()).await?;
    assert_eq!(status, 403);
    assert!(body.contains("anonymous:anonymous") && body.contains("Sign in"));
    w.server.stop().await;
    Ok(())
}
