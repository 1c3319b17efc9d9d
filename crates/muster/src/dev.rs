//! `muster dev`: a server on localhost + N local bots, zero configuration.

use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use std::process::Stdio;

/// Run a server, local bots and the web UI on this machine.
///
/// Example:
///   muster dev            # then, in another terminal:
///   muster run -S http://127.0.0.1:8080 -d pool=default -- echo hello
#[derive(Args, Debug, Clone)]
pub(crate) struct DevArgs {
    /// Port to listen on (0 = any free port).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Number of local bots.
    #[arg(long, default_value_t = 2)]
    pub bots: usize,
    /// Directory for the database and the bots' directories.
    #[arg(long, default_value = ".muster-dev")]
    pub data_dir: PathBuf,
}

pub(crate) fn main(args: DevArgs) -> anyhow::Result<()> {
    crate::init_tracing("warn");
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async move {
        let shutdown = crate::signals::shutdown_token();
        let server_args = crate::server::ServerArgs {
            data_dir: Some(args.data_dir.join("server")),
            long_poll_secs: Some(20),
            dev: true,
            ..Default::default()
        };
        let resolved = server_args.resolve()?;
        let _lock = crate::server::lock_data(&resolved).await?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
            .await
            .with_context(|| format!("listening on 127.0.0.1:{} (try --port 0)", args.port))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        let url = format!("http://{addr}");
        // The server outlives the bots so they can report their shutdown.
        let server_shutdown = tokio_util::sync::CancellationToken::new();
        let mut server = tokio::spawn(crate::server::serve(resolved, listener, server_shutdown.clone()));
        // Bots start once the server says it is ready (its /readyz).
        tokio::select! {
            r = wait_ready(&url) => r?,
            r = &mut server => {
                r.context("server task")??;
                anyhow::bail!("the server stopped before it was ready");
            }
        }
        let exe = std::env::current_exe().context("locating own executable")?;
        let mut children = Vec::new();
        for i in 1..=args.bots {
            let dir = args.data_dir.join(format!("bot{i}"));
            let child = tokio::process::Command::new(&exe)
                .arg("bot")
                .arg("--server")
                .arg(&url)
                .arg("--dir")
                .arg(&dir)
                .arg("--id")
                .arg(format!("dev-bot-{i}"))
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("starting bot {i}"))?;
            children.push(child);
        }
        println!("muster dev: server {url} with {} local bots (data in {})", args.bots, args.data_dir.display());
        println!("  web UI:  {url}/");
        println!("  try:     {} run -S {url} -d pool=default -- echo hello", exe.display());
        println!("  Ctrl-C to stop.");
        shutdown.cancelled().await;
        for c in &mut children {
            if let Some(pid) = c.id() {
                let _ =
                    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM);
            }
        }
        for c in &mut children {
            let _ = c.wait().await;
        }
        server_shutdown.cancel();
        server.await.context("server task")??;
        Ok(())
    })
}

/// Waits until `GET {url}/readyz` answers 200.
async fn wait_ready(url: &str) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let last = match http.get(format!("{url}/readyz")).send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => format!("HTTP {}: {}", r.status(), r.text().await.unwrap_or_default()),
            Err(e) => e.to_string(),
        };
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("the server at {url} was not ready within 60 s: {last}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
