//! muster-server: the HTTP face of muster (docs/design.md#data-flow).
//!
//! Owns: routing, request decoding/encoding, authentication of bots and
//! clients, the one error kind → status mapping ([`error`]), bot code
//! serving, and the background sweeper. Handlers are thin: decode →
//! authorize → one muster-sched / muster-store call → encode.
//! Must not: hold business rules (muster-sched) or SQL (muster-store).
//!
//! Entry point: [`run`]`(listener, deps, shutdown)`.

pub mod access;
pub mod auth;
pub mod bot_api;
pub mod bot_code;
pub mod client_api;
pub mod config;
pub mod edge;
pub mod error;
pub mod health;
pub mod jobs;
pub mod python_bot;
pub mod replica;
mod sweeper;
mod telemetry;
mod ui;

use axum::Router;
use muster_core::Clock;
use muster_sched::Scheduler;
use muster_store::Store;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::ServerConfig;

/// Everything a server needs, built once by the binary (or a test).
pub struct Deps {
    pub store: Arc<dyn Store>,
    pub sched: Arc<Scheduler>,
    pub clock: Arc<dyn Clock>,
    pub config: ServerConfig,
    /// On a database shared with other replicas: their changes, subscribed
    /// to BEFORE the scheduler loaded its state (so nothing committed in
    /// between is missed). None for a store only this server uses.
    pub feed: Option<tokio::sync::mpsc::UnboundedReceiver<muster_store::Feed>>,
}

/// Shared state of the HTTP handlers.
pub(crate) struct AppState {
    pub store: Arc<dyn Store>,
    pub sched: Arc<Scheduler>,
    pub clock: Arc<dyn Clock>,
    pub config: ServerConfig,
    pub sessions: auth::session::SessionKey,
    /// Bot groups and credential checks (every bot call).
    pub bot_access: auth::bots::BotAccess,
    pub bot_code: bot_code::BotCode,
    /// `swarming_bot.zip` for upstream Python bots, if configured.
    pub python_bot: Option<python_bot::PythonBotCode>,
    /// The process-wide metrics (None if another recorder was installed).
    pub metrics: Option<Arc<muster_observe::Metrics>>,
    /// Authenticates client (pRPC and UI) requests.
    pub authn: muster_access::Authenticator,
    /// Scheduled jobs (None when the store cannot keep them).
    pub jobs: Option<Arc<muster_jobs::Engine>>,
    pub job_access: Arc<dyn muster_jobs::access::JobAccess>,
    /// Per-caller NewTask rate limit and pending-bytes quota.
    pub quotas: Arc<edge::quota::Quotas>,
}

pub(crate) type State = Arc<AppState>;

/// Largest request body accepted (bot output packets are ≤ ~250 KB base64).
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Builds the router (exposed for tests that want to drive it directly).
pub fn router(deps: Deps) -> Result<Router, error::StartError> {
    Ok(app(deps)?.0)
}

/// The router and the jobs engine its handlers use.
fn app(deps: Deps) -> Result<(Router, Option<Arc<muster_jobs::Engine>>), error::StartError> {
    let jobs = jobs::build_engine(&deps.store, &deps.sched, &deps.clock, &deps.config.jobs);
    let groups = match &deps.config.bot_groups {
        Some(g) => g.clone(),
        None => Arc::new(auth::bots::groups_from_flags(&deps.config).map_err(error::StartError::BotAuth)?),
    };
    let state = Arc::new(AppState {
        bot_access: auth::bots::BotAccess::new(groups, deps.config.bot_config.clone()),
        jobs: jobs.clone(),
        job_access: Arc::new(access::ConfigJobAccess { config: deps.config.access.clone() }),
        sessions: auth::session::SessionKey::new(deps.config.session_secret.clone()),
        bot_code: bot_code::BotCode::load(&deps.config)?,
        python_bot: python_bot::PythonBotCode::load(&deps.config)?,
        metrics: muster_observe::Metrics::global().map_err(|e| tracing::warn!(error = %e, "no /metrics")).ok(),
        quotas: Arc::new(edge::quota::Quotas::new(&deps.config.edge)),
        authn: muster_access::Authenticator::new(deps.store.clone()),
        store: deps.store,
        sched: deps.sched,
        clock: deps.clock,
        config: deps.config,
    });
    // Every client route (any /prpc/ service, every UI page and form) is
    // authenticated once; bot routes authenticate bots themselves.
    let clients = Router::new()
        .merge(client_api::routes())
        .merge(ui::routes())
        .merge(jobs::ui::routes())
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), access::middleware));
    let app = Router::new()
        .merge(bot_api::routes())
        .merge(clients)
        .merge(health::routes())
        .merge(telemetry::routes())
        .fallback(error::not_found)
        .layer(axum::middleware::from_fn(telemetry::track))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(axum::middleware::map_response(edge::headers::security_headers))
        .layer(edge::headers::compression())
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(telemetry::request_span))
        .with_state(state.clone());
    Ok((app, jobs))
}

/// Serves until `shutdown` is cancelled, running the sweeper alongside and,
/// on a database shared with other replicas, following their changes.
pub async fn run(listener: TcpListener, mut deps: Deps, shutdown: CancellationToken) -> Result<(), error::StartError> {
    let sched = deps.sched.clone();
    let clock = deps.clock.clone();
    let settings = sweeper::Settings { every: deps.config.sweep_interval, retention: deps.config.retention };
    let resync_every = deps.config.resync_interval;
    let edge_cfg = deps.config.edge.clone();
    let certs = edge_cfg.tls.as_ref().map(edge::tls::CertStore::load).transpose().map_err(error::StartError::Tls)?;
    let tls = match &certs {
        Some(c) => Some(tokio_rustls::TlsAcceptor::from(c.server_config().map_err(error::StartError::Tls)?)),
        None => None,
    };
    let feed = deps.feed.take();
    let config_watch = tokio::spawn(deps.config.access.clone().watch(shutdown.clone().cancelled_owned()));
    let job_settings = deps.config.jobs.clone();
    let (app, jobs) = app(deps)?;
    let job_loops = jobs.map(|e| jobs::spawn(e, &job_settings, shutdown.clone())).unwrap_or_default();
    let follower = feed
        .map(|feed| tokio::spawn(replica::follow(sched.clone(), clock.clone(), feed, resync_every, shutdown.clone())));
    // On shutdown, parked polls answer at once so bots move on quickly;
    // in-flight requests then finish before `serve` returns.
    let closer = {
        let (sched, shutdown) = (sched.clone(), shutdown.clone());
        tokio::spawn(async move {
            shutdown.cancelled().await;
            sched.close();
        })
    };
    // Histogram samples are folded into buckets at every scrape; this keeps
    // memory flat when nobody scrapes.
    let upkeep = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let Ok(m) = muster_observe::Metrics::global() else { return };
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => m.upkeep(),
                    _ = shutdown.cancelled() => return,
                }
            }
        })
    };
    let sweeper = tokio::spawn(sweeper::run(sched, clock, settings, shutdown.clone()));
    let reloader = certs.map(|c| tokio::spawn(c.watch(edge_cfg.tls_reload_interval, shutdown.clone())));
    edge::listen::serve(listener, app, &edge_cfg, tls, shutdown.clone()).await;
    shutdown.cancel();
    let _ = closer.await;
    let _ = upkeep.await;
    let _ = sweeper.await;
    let _ = config_watch.await;
    for l in job_loops {
        let _ = l.await;
    }
    if let Some(f) = follower {
        let _ = f.await;
    }
    if let Some(r) = reloader {
        let _ = r.await;
    }
    Ok(())
}
