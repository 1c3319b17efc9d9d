//! The accept loop (hyper-util, optionally behind tokio-rustls).
//!
//! Written here rather than with `axum::serve` because the edge needs what
//! that does not offer: TLS, a cap on open connections that stays below the
//! open-file limit (further connections wait in the kernel's backlog
//! instead of making `accept` fail), a deadline for the TLS handshake and
//! the request head, and closing connections that sit idle — counted only
//! while no request is in flight, so a bot's parked long poll is never cut.
//! Graceful shutdown and `ConnectInfo` work as with `axum::serve`.

use super::proxy::{self, ClientAddr, PeerAddr};
use super::EdgeConfig;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// File descriptors kept free for everything but client connections
/// (database, logs, bot code files...), at least this many...
const FD_RESERVE_MIN: u64 = 32;
/// ...and at most this many.
const FD_RESERVE_MAX: u64 = 256;

/// The cap on open connections: the configured one, lowered to fit the
/// process's open-file limit.
pub(crate) fn effective_max_connections(configured: usize) -> usize {
    let soft = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).map(|(soft, _)| soft);
    match soft {
        Ok(soft) if soft != nix::sys::resource::RLIM_INFINITY => {
            let reserve = (soft / 8).clamp(FD_RESERVE_MIN, FD_RESERVE_MAX);
            let fit = if soft > 2 * reserve { soft - reserve } else { (soft / 2).max(1) };
            configured.min(usize::try_from(fit).unwrap_or(usize::MAX)).max(1)
        }
        _ => configured.max(1),
    }
}

/// Serves `app` on `listener` until `shutdown`; then stops accepting, lets
/// requests in flight finish, and returns.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    cfg: &EdgeConfig,
    tls: Option<TlsAcceptor>,
    shutdown: CancellationToken,
) {
    let max = effective_max_connections(cfg.max_connections);
    if max < cfg.max_connections {
        tracing::info!(max_connections = max, "connections capped to fit the open-file limit (ulimit -n)");
    }
    let slots = Arc::new(Semaphore::new(max));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(cfg.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(cfg.max_streams_per_connection)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    let conn_cfg = Arc::new(ConnConfig {
        builder,
        app,
        tls,
        trusted: cfg.trusted_proxies.clone(),
        header_timeout: cfg.header_timeout,
        idle_timeout: cfg.idle_timeout,
        shutdown: shutdown.clone(),
    });
    let tracker = TaskTracker::new();
    let mut last_error_log: Option<Instant> = None;
    loop {
        let permit = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let (tcp, peer) = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors or memory: the connection stays
                    // in the backlog; try again shortly instead of spinning.
                    if last_error_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                        tracing::warn!(error = %e, "accept failed; retrying");
                        last_error_log = Some(Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        tracker.spawn(connection(tcp, peer, conn_cfg.clone(), permit));
    }
    tracker.close();
    tracker.wait().await;
}

struct ConnConfig {
    builder: auto::Builder<TokioExecutor>,
    app: Router,
    tls: Option<TlsAcceptor>,
    trusted: Vec<ipnet::IpNet>,
    header_timeout: Duration,
    idle_timeout: Duration,
    shutdown: CancellationToken,
}

async fn connection(tcp: tokio::net::TcpStream, peer: SocketAddr, cfg: Arc<ConnConfig>, permit: OwnedSemaphorePermit) {
    let _permit = permit;
    match &cfg.tls {
        Some(acceptor) => match tokio::time::timeout(cfg.header_timeout, acceptor.accept(tcp)).await {
            Ok(Ok(stream)) => drive(stream, peer, &cfg).await,
            Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
        },
        None => drive(tcp, peer, &cfg).await,
    }
}

/// Requests in flight on one connection.
#[derive(Default)]
struct Activity {
    active: AtomicUsize,
    started: AtomicBool,
    changed: Notify,
}

/// One request in flight, until its response body is done or dropped.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn enter(a: &Arc<Activity>) -> InFlight {
        a.active.fetch_add(1, Ordering::SeqCst);
        a.started.store(true, Ordering::SeqCst);
        a.changed.notify_waiters();
        InFlight(a.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
        self.0.changed.notify_waiters();
    }
}

/// Returns once the connection has had no request in flight for the limit:
/// `first` before its first request, `idle` after.
async fn idle(a: Arc<Activity>, first: Duration, idle: Duration) {
    loop {
        let changed = a.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        if a.active.load(Ordering::SeqCst) == 0 {
            let limit = if a.started.load(Ordering::SeqCst) { idle } else { first };
            tokio::select! {
                _ = tokio::time::sleep(limit) => {
                    if a.active.load(Ordering::SeqCst) == 0 {
                        return;
                    }
                }
                _ = &mut changed => {}
            }
        } else {
            changed.await;
        }
    }
}

async fn drive<I>(io: I, peer: SocketAddr, cfg: &Arc<ConnConfig>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::default());
    let svc = {
        let (cfg, activity) = (cfg.clone(), activity.clone());
        hyper::service::service_fn(move |req| handle(req, peer, cfg.clone(), activity.clone()))
    };
    let conn = cfg.builder.serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    let idle = idle(activity.clone(), cfg.header_timeout, cfg.idle_timeout);
    tokio::pin!(idle);
    let mut closing = false;
    // After asking the connection to close: how long it may take to finish
    // with nothing in flight (a peer that never reads its last response).
    let linger = tokio::time::sleep(Duration::from_secs(365 * 86_400));
    tokio::pin!(linger);
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = cfg.shutdown.cancelled(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
                linger.as_mut().reset(tokio::time::Instant::now() + cfg.header_timeout);
            }
            _ = &mut idle, if !closing => {
                tracing::debug!(%peer, "closing an idle connection");
                conn.as_mut().graceful_shutdown();
                closing = true;
                linger.as_mut().reset(tokio::time::Instant::now() + cfg.header_timeout);
            }
            _ = &mut linger => {
                if activity.active.load(Ordering::SeqCst) == 0 {
                    return;
                }
                linger.as_mut().reset(tokio::time::Instant::now() + cfg.header_timeout);
            }
        }
    }
}

async fn handle(
    mut req: hyper::Request<Incoming>,
    peer: SocketAddr,
    cfg: Arc<ConnConfig>,
    activity: Arc<Activity>,
) -> Result<hyper::Response<Body>, Infallible> {
    let guard = InFlight::enter(&activity);
    let client = proxy::client_addr(peer, req.headers(), &cfg.trusted);
    let ext = req.extensions_mut();
    ext.insert(ConnectInfo(client));
    ext.insert(ClientAddr(client));
    ext.insert(PeerAddr(peer));
    let resp = cfg.app.clone().oneshot(req.map(Body::new)).await?;
    Ok(resp.map(|inner| Body::new(Tracked { inner, _guard: guard })))
}

/// A response body that keeps its request counted as in flight until the
/// last byte is sent (a slow reader of a large output is not idle).
struct Tracked {
    inner: Body,
    _guard: InFlight,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
