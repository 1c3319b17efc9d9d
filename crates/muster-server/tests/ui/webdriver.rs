//! The browser the UI tests drive: Debian's `chromium`, headless, through
//! `chromedriver`, spoken to with the `fantoccini` WebDriver client. This
//! file only starts the driver and wraps the calls the tests use (CSS
//! selectors, scripts, dialogs, screenshots, and two DevTools commands for
//! the viewport and the colour scheme).

use anyhow::{anyhow, bail, Context};
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

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

/// chromedriver's DevTools passthrough (`POST /session/{id}/goog/cdp/execute`).
#[derive(Debug)]
struct Cdp(Value);

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/goog/cdp/execute", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _url: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.0.to_string()))
    }
}

pub struct Browser {
    client: Client,
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
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert("unhandledPromptBehavior".into(), json!("ignore"));
        caps.insert("goog:chromeOptions".into(), json!({"binary": chromium.to_string_lossy(), "args": args}));
        // chromedriver takes a moment to listen: retry the session until it does.
        let deadline = tokio::time::Instant::now() + WAIT;
        let client = loop {
            // chromedriver is on loopback: plain HTTP, no TLS stack.
            let mut builder = ClientBuilder::new(HttpConnector::new());
            builder.capabilities(caps.clone());
            match builder.connect(&base).await {
                Ok(c) => break c,
                Err(e) if tokio::time::Instant::now() > deadline => {
                    bail!("chromedriver on port {port} gave no session: {e}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        Ok(Browser { client, driver, _profile: profile })
    }

    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.client.goto(url).await.with_context(|| format!("opening {url}"))
    }

    pub async fn url(&self) -> anyhow::Result<String> {
        Ok(self.client.current_url().await?.to_string())
    }

    async fn find(&self, css: &str) -> anyhow::Result<fantoccini::elements::Element> {
        self.client.find(Locator::Css(css)).await.with_context(|| format!("no element {css}"))
    }

    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        self.find(css).await?.click().await.with_context(|| format!("clicking {css}"))
    }

    /// Clears the input and types `text` into it.
    pub async fn type_into(&self, css: &str, text: &str) -> anyhow::Result<()> {
        let e = self.find(css).await?;
        e.clear().await?;
        e.send_keys(text).await.with_context(|| format!("typing into {css}"))
    }

    pub async fn text(&self, css: &str) -> anyhow::Result<String> {
        Ok(self.find(css).await?.text().await?)
    }

    /// Runs `script` (a function body; `return` gives the value).
    pub async fn js(&self, script: &str) -> anyhow::Result<Value> {
        Ok(self.client.execute(script, Vec::new()).await?)
    }

    /// Runs `script` asynchronously: it calls `done(value)` (bound for it).
    pub async fn js_async(&self, script: &str) -> anyhow::Result<Value> {
        let script = format!("const done = arguments[arguments.length - 1];\n{script}");
        Ok(self.client.execute_async(&script, Vec::new()).await?)
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
        self.client.issue_cmd(Cdp(json!({"cmd": cmd, "params": params}))).await.with_context(|| cmd.to_string())?;
        Ok(())
    }

    /// Accepts the confirm() dialog that the last click opened.
    pub async fn accept_dialog(&self) -> anyhow::Result<String> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Ok(text) = self.client.get_alert_text().await {
                self.client.accept_alert().await?;
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
        let png = self.client.screenshot().await.context("taking a screenshot")?;
        let dir = shots_dir();
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png)?;
        Ok(path)
    }

    pub async fn close(mut self) {
        let _ = self.client.close().await;
        let _ = self.driver.start_kill();
        let _ = self.driver.wait().await;
    }
}
