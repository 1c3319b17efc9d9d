//! Web UI tests: plain HTTP (every page renders with status 200 and the
//! expected data; the form endpoints act) and real headless Chromium driven
//! over WebDriver (`chromedriver`), against a real server with
//! protocol-level bots. Screenshots land in `$CARGO_TARGET_DIR/ui-shots/`.

mod browser;
mod fleet20k;
mod forms;
mod http;
mod jobs;
mod logview;
mod signin;
mod tour;
mod webdriver;

use muster_testkit::{TestBot, TestServer};
use serde_json::json;

/// A handshaken bot.
pub async fn bot(srv: &TestServer, id: &str, pool: &str, extra: &[(&str, &[&str])]) -> anyhow::Result<TestBot> {
    let mut b = TestBot::new(&srv.url, id, pool, extra);
    b.handshake().await?;
    Ok(b)
}

/// GET `path`; returns (status, body).
pub async fn get(srv: &TestServer, path: &str) -> anyhow::Result<(u16, String)> {
    let r = reqwest::get(format!("{}{path}", srv.url)).await?;
    Ok((r.status().as_u16(), r.text().await?))
}

/// A client that does not follow redirects (to see the 303s).
pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("a reqwest client")
}

/// The CSRF token a browser gets with any page (the `muster_csrf` cookie).
pub async fn csrf_token(srv: &TestServer) -> anyhow::Result<String> {
    let r = reqwest::get(format!("{}/newtask", srv.url)).await?;
    let cookie = muster_testkit::csrf_cookie(&r).ok_or_else(|| anyhow::anyhow!("no muster_csrf cookie"))?;
    let body = r.text().await?;
    anyhow::ensure!(body.contains(&format!("name=\"csrf\" value=\"{cookie}\"")), "the form carries the token");
    Ok(cookie)
}

/// POSTs a form the way the UI's own pages do (CSRF cookie + field, own
/// Origin); returns (status, Location).
pub async fn post_form(srv: &TestServer, path: &str, form: &[(&str, &str)]) -> anyhow::Result<(u16, String)> {
    let token = csrf_token(srv).await?;
    post_form_as(srv, path, form, Some(&token), &srv.url).await
}

/// POSTs a form with an explicit CSRF token (None: no cookie, no field) and Origin.
pub async fn post_form_as(
    srv: &TestServer,
    path: &str,
    form: &[(&str, &str)],
    token: Option<&str>,
    origin: &str,
) -> anyhow::Result<(u16, String)> {
    let mut body: String = form.iter().map(|(k, v)| format!("{k}={}", urlencode(v))).collect::<Vec<_>>().join("&");
    let mut req = no_redirects()
        .post(format!("{}{path}", srv.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", origin);
    if let Some(t) = token {
        body.push_str(&format!("&csrf={t}"));
        req = req.header("cookie", format!("muster_csrf={t}"));
    }
    let r = req.body(body).send().await?;
    let loc = r.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    Ok((r.status().as_u16(), loc))
}

pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// Creates a task on `pool` whose first slice has `extra_dims` too.
pub async fn task(srv: &TestServer, name: &str, pool: &str, tags: &[&str]) -> anyhow::Result<String> {
    let v = srv
        .prpc()
        .ok(
            "Tasks",
            "NewTask",
            &json!({
                "name": name, "priority": 100, "tags": tags,
                "taskSlices": [{"expirationSecs": 600, "properties": {
                    "command": ["echo", "hello world"], "dimensions": [{"key": "pool", "value": pool}],
                    "executionTimeoutSecs": 60, "ioTimeoutSecs": 60, "gracePeriodSecs": 5}}],
            }),
        )
        .await?;
    Ok(v["taskId"].as_str().unwrap_or_default().to_string())
}

/// The number shown in a `data-count="<key>"` box of an HTML page.
pub fn count_in(html: &str, key: &str) -> Option<u64> {
    let at = html.find(&format!("data-count=\"{key}\""))?;
    let rest = &html[at..];
    let n = rest.find("<span class=\"n\">")? + "<span class=\"n\">".len();
    let end = rest[n..].find('<')?;
    rest[n..n + end].parse().ok()
}
