//! A small WebDriver client (W3C protocol over HTTP) driving Debian's
//! `chromium` through `chromedriver`: enough to open pages, type, click,
//! accept confirmations, run scripts and take screenshots.

use anyhow::{anyhow, bail, Context};
use base64::Engine as _;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// Hang guard for every wait (not a timing assertion).
const WAIT: Duration = Duration::from_secs(30);

fn find_exe(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for n in names {
            let p = dir.join(n);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Where screenshots go: `$CARGO_TARGET_DIR/ui-shots` (else `target/ui-shots`).
pub fn shots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| {
        Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("target"))
    });
    target.join("ui-shots")
}

pub struct Browser {
    http: reqwest::Client,
    base: String,
    session: String,
    driver: tokio::process::Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver + headless chromium. Fails (never skips) when
    /// chromium is not installed: CI installs it (scripts/test.sh).
    pub async fn start() -> anyhow::Result<Browser> {
        let chromium = find_exe(&["chromium", "chromium-browser"]).ok_or_else(|| {
            anyhow!(
                "chromium is not installed: the UI browser tests need Debian's `chromium` and `chromium-driver` \
                 (scripts/test.sh installs them; or run `apt-get install chromium chromium-driver`)"
            )
        })?;
        let driver_exe = find_exe(&["chromedriver"]).ok_or_else(|| {
            anyhow!("chromedriver is not installed: run `apt-get install chromium-driver` (scripts/test.sh does)")
        })?;
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").context("picking a port")?;
            l.local_addr()?.port()
        };
        let driver = tokio::process::Command::new(&driver_exe)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", driver_exe.display()))?;
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Ok(r) = http.get(format!("{base}/status")).send().await {
                if let Ok(v) = r.json::<Value>().await {
                    if v["value"]["ready"] == json!(true) {
                        break;
                    }
                }
            }
            if tokio::time::Instant::now() > deadline {
                bail!("chromedriver did not become ready on port {port}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().context("profile dir")?;
        let args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1366,900".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "unhandledPromptBehavior": "ignore",
            "goog:chromeOptions": {"binary": chromium.to_string_lossy(), "args": args},
        }}});
        let v = raw(&http, reqwest::Method::POST, &format!("{base}/session"), Some(caps)).await?;
        let session = v["sessionId"].as_str().ok_or_else(|| anyhow!("no sessionId in {v}"))?.to_string();
        Ok(Browser { http, base, session, driver, _profile: profile })
    }

    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        raw(&self.http, method, &url, body).await
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.cmd(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.post("/url", json!({"url": url})).await?;
        Ok(())
    }

    pub async fn url(&self) -> anyhow::Result<String> {
        let v = self.cmd(reqwest::Method::GET, "/url", None).await?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    pub async fn find(&self, css: &str) -> anyhow::Result<String> {
        let v = self.post("/element", json!({"using": "css selector", "value": css})).await?;
        v[ELEMENT].as_str().map(str::to_string).ok_or_else(|| anyhow!("no element {css}: {v}"))
    }

    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        let e = self.find(css).await?;
        self.post(&format!("/element/{e}/click"), json!({})).await?;
        Ok(())
    }

    /// Clears the input and types `text` into it.
    pub async fn type_into(&self, css: &str, text: &str) -> anyhow::Result<()> {
        let e = self.find(css).await?;
        self.post(&format!("/element/{e}/clear"), json!({})).await?;
        self.post(&format!("/element/{e}/value"), json!({"text": text})).await?;
        Ok(())
    }

    pub async fn text(&self, css: &str) -> anyhow::Result<String> {
        let e = self.find(css).await?;
        let v = self.cmd(reqwest::Method::GET, &format!("/element/{e}/text"), None).await?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    /// Runs `script` (a function body; `return` gives the value).
    pub async fn js(&self, script: &str) -> anyhow::Result<Value> {
        self.post("/execute/sync", json!({"script": script, "args": []})).await
    }

    /// Runs `script` asynchronously: it calls `done(value)` (bound for it).
    pub async fn js_async(&self, script: &str) -> anyhow::Result<Value> {
        let script = format!("const done = arguments[arguments.length - 1];\n{script}");
        self.post("/execute/async", json!({"script": script, "args": []})).await
    }

    /// Waits until `script` returns true (hang guard: 30 s).
    pub async fn wait_for(&self, what: &str, script: &str) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match self.js(script).await {
                Ok(Value::Bool(true)) => return Ok(()),
                Ok(_) => {}
                Err(e) if tokio::time::Instant::now() > deadline => {
                    return Err(e.context(format!("waiting for {what}")))
                }
                Err(_) => {}
            }
            if tokio::time::Instant::now() > deadline {
                let url = self.url().await.unwrap_or_default();
                let body = self.js("return document.body ? document.body.innerText : ''").await.unwrap_or_default();
                bail!("gave up waiting for {what} on {url}; page text:\n{}", body.as_str().unwrap_or_default());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sets the viewport to `width`x`height` CSS pixels (a phone: 390x844).
    pub async fn set_viewport(&self, width: u32, height: u32) -> anyhow::Result<()> {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 700}),
        )
        .await
    }

    /// Makes pages see `prefers-color-scheme: dark` (or light).
    pub async fn set_dark(&self, dark: bool) -> anyhow::Result<()> {
        let v = if dark { "dark" } else { "light" };
        self.cdp("Emulation.setEmulatedMedia", json!({"features": [{"name": "prefers-color-scheme", "value": v}]}))
            .await
    }

    /// A Chrome DevTools command through chromedriver.
    async fn cdp(&self, cmd: &str, params: Value) -> anyhow::Result<()> {
        self.post("/goog/cdp/execute", json!({"cmd": cmd, "params": params})).await?;
        Ok(())
    }

    /// Accepts the confirm() dialog that the last click opened.
    pub async fn accept_dialog(&self) -> anyhow::Result<String> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Ok(v) = self.cmd(reqwest::Method::GET, "/alert/text", None).await {
                let text = v.as_str().unwrap_or_default().to_string();
                self.post("/alert/accept", json!({})).await?;
                return Ok(text);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("no dialog opened");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Saves a PNG of the viewport as `<shots>/<name>.png`.
    pub async fn screenshot(&self, name: &str) -> anyhow::Result<PathBuf> {
        let v = self.cmd(reqwest::Method::GET, "/screenshot", None).await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .context("decoding the screenshot")?;
        let dir = shots_dir();
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png)?;
        Ok(path)
    }

    pub async fn close(mut self) {
        let _ = self.cmd(reqwest::Method::DELETE, "", None).await;
        let _ = self.driver.start_kill();
        let _ = self.driver.wait().await;
    }
}

async fn raw(http: &reqwest::Client, method: reqwest::Method, url: &str, body: Option<Value>) -> anyhow::Result<Value> {
    let mut rb = http.request(method.clone(), url);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let resp = rb.send().await.with_context(|| format!("{method} {url}"))?;
    let status = resp.status();
    let v: Value = resp.json().await.with_context(|| format!("{method} {url}: non-JSON reply"))?;
    if !status.is_success() {
        bail!("{method} {url}: HTTP {status}: {}", v["value"]);
    }
    Ok(v["value"].clone())
}
