//! Access control glue: every `/prpc/…` call and every UI route is
//! authenticated once, by [`middleware`], and runs with its
//! [`RequestAccess`] (the config snapshot + the caller) in scope; handlers
//! ask [`current`] for it and make their checks through
//! `muster_access::Checker`. Bot API routes are not covered here (bots
//! authenticate with bot credentials and sessions, `auth/`).
//!
//! Shared rules used by both the pRPC API and the UI live here too:
//! [`authorize_new_task`], [`task_acl`], [`bot_pools`].

use crate::State;
use axum::extract::{ConnectInfo, Request, State as S};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use muster_access::checker::TaskAcl;
use muster_access::{perms, Caller, Checker};
use muster_config::snapshot::LoadOptions;
use muster_config::Snapshot;
use muster_core::task::NewTaskRequest;
use muster_core::{Error, TaskRequest, TaskResult};
use std::net::SocketAddr;
use std::sync::Arc;

/// Everything access-related a request needs, fixed for its duration.
pub(crate) struct RequestAccess {
    pub snap: Arc<Snapshot>,
    pub caller: Caller,
    /// The UI's CSRF token for this browser (double-submit cookie).
    pub csrf: String,
}

impl RequestAccess {
    pub(crate) fn checker(&self) -> Checker<'_> {
        Checker::new(&self.snap, &self.caller)
    }

    /// An anonymous caller with nothing configured (used outside a request scope).
    fn nobody() -> RequestAccess {
        RequestAccess {
            snap: Arc::new(Snapshot::empty(LoadOptions::default())),
            caller: Caller::anonymous(None),
            csrf: String::new(),
        }
    }
}

tokio::task_local! {
    static ACCESS: Arc<RequestAccess>;
}

/// The access context of the current request (anonymous, deny-all outside one).
pub(crate) fn current() -> Arc<RequestAccess> {
    ACCESS.try_with(Arc::clone).unwrap_or_else(|_| Arc::new(RequestAccess::nobody()))
}

/// Whether `identity` may do `perm` in `realm`: the question other pRPC
/// services (e.g. a scheduler service) ask.
pub fn can(snap: &Snapshot, identity: &str, perm: &str, realm: &str) -> bool {
    snap.has_realm_permission(identity, &[], realm, perm)
}

/// Job permissions (`muster_jobs::access::JobAccess`) from the same config
/// and caller as every other check: administrators (server level) may do
/// everything; anyone else needs the `scheduler.jobs.*` permission in the
/// job's realm (`role/scheduler.reader`, `triggerer`, `owner`).
pub(crate) struct ConfigJobAccess {
    pub config: Arc<muster_config::ConfigHolder>,
}

impl muster_jobs::access::JobAccess for ConfigJobAccess {
    fn allows(&self, identity: &str, perm: muster_jobs::access::JobPerm, realm: &str) -> bool {
        // The request's snapshot and connection-granted groups when the
        // question is about the request's caller.
        let ctx = current();
        let (snap, extra) = if ctx.caller.identity.as_str() == identity {
            (ctx.snap.clone(), ctx.caller.extra_groups.clone())
        } else {
            (self.config.get(), Vec::new())
        };
        let allowed = snap.is_member(identity, &extra, &snap.server_groups.admins)
            || snap.has_realm_permission(identity, &extra, realm, perm.name());
        if !allowed && perm != muster_jobs::access::JobPerm::Get {
            tracing::info!(caller = identity, permission = perm.name(), realm, "permission denied");
        }
        allowed
    }
}

/// Authenticates the request, then runs the rest of the stack with its
/// [`RequestAccess`] in scope. Invalid credentials end here (401).
pub(crate) async fn middleware(S(app): S<State>, req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let snap = app.config.access.get();
    let now = app.clock.now();
    let path = req.uri().path().to_string();
    let csrf_cookie = crate::ui::csrf::cookie_token(req.headers());
    // Browser sessions count on UI routes only: a pRPC call must carry its
    // own credential, so a cookie can never be replayed cross-site there.
    let session =
        if path.starts_with("/prpc/") { None } else { crate::ui::signin::session_identity(&app, req.headers()).await };
    let result = app.authn.authenticate(&snap, req.headers(), req.uri().query(), peer, session, now).await;
    let caller = match result {
        Ok(c) => c,
        Err(e) => {
            tracing::info!(path, error = %e.message, "unauthenticated request refused");
            return if path.starts_with("/prpc/") {
                crate::client_api::status_reply(&muster_api::prpc::Status::from(e))
            } else {
                crate::ui::UiError::from(e).into_response()
            };
        }
    };
    let (csrf, new_cookie) = match csrf_cookie {
        Some(t) => (t, false),
        None => (crate::ui::csrf::new_token(), true),
    };
    let ctx = Arc::new(RequestAccess { snap, caller, csrf: csrf.clone() });
    let mut req = match crate::ui::csrf::check(&app, &ctx, req).await {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    // NewTask rate limits and quotas count per authenticated identity;
    // anonymous callers stay counted per client address.
    if !ctx.caller.identity.is_anonymous() {
        req.extensions_mut().insert(crate::edge::CallerIdentity(ctx.caller.identity.to_string()));
    }
    let mut resp = ACCESS.scope(ctx, next.run(req)).await;
    if new_cookie && !path.starts_with("/prpc/") {
        crate::ui::csrf::set_cookie(&mut resp, &csrf, app.config.external_url.starts_with("https://"));
    }
    resp
}

/// The ACL facts of a stored task, from its auto tags.
pub(crate) fn task_acl<'a>(id: &'a str, tags: &'a [String]) -> TaskAcl<'a> {
    let tag = |k: &str| tags.iter().find_map(|t| t.strip_prefix(k).and_then(|v| v.strip_prefix(':')));
    TaskAcl {
        id,
        authenticated: tag("authenticated").unwrap_or(""),
        realm: tag("realm").filter(|r| *r != "none"),
        pool: tag("pool"),
        bot_pools: Vec::new(),
    }
}

/// A task's ACL facts, including the targeted bot's pools for pool-less
/// termination tasks.
pub(crate) fn result_acl<'a>(app: &State, id: &'a str, r: &'a TaskResult) -> TaskAcl<'a> {
    let mut acl = task_acl(id, &r.tags);
    if acl.pool.is_none() {
        if let Some(bot) = r.tags.iter().find_map(|t| t.strip_prefix("id:")) {
            acl.bot_pools = bot_pools(app, bot);
        }
    }
    acl
}

pub(crate) fn request_acl<'a>(app: &State, id: &'a str, r: &'a TaskRequest) -> TaskAcl<'a> {
    let mut acl = task_acl(id, &r.tags);
    acl.authenticated = &r.authenticated;
    if acl.pool.is_none() {
        if let Some(bot) = r.tags.iter().find_map(|t| t.strip_prefix("id:")) {
            acl.bot_pools = bot_pools(app, bot);
        }
    }
    acl
}

/// The pools a bot belongs to for ACLs (upstream rule): with bot groups in
/// the config directory, the `pool` dimensions of the group the bot id
/// selects now (not what the bot reported or what was stored); without
/// groups, its `pool` dimensions as the server holds them. `unassigned` when
/// that gives none (or the bot is unknown).
pub(crate) fn bot_pools(app: &State, bot_id: &str) -> Vec<String> {
    let configured = app
        .config
        .bot_config
        .as_ref()
        .and_then(|c| c.get().bot_groups.clone())
        .or_else(|| app.config.access.get().bot_groups.clone());
    let pools: Vec<String> = match configured {
        Some(groups) => {
            groups.select(bot_id).and_then(|gi| groups.group(gi).dimensions.get("pool").cloned()).unwrap_or_default()
        }
        None => {
            app.sched.get_bot(bot_id, app.clock.now()).map(|b| b.dimensions.get("pool").to_vec()).unwrap_or_default()
        }
    };
    if pools.is_empty() {
        vec!["unassigned".to_string()]
    } else {
        pools
    }
}

/// Pool values named by `pool` filters (tags or dimensions).
pub(crate) fn filter_pools(filters: &[muster_core::DimFilter]) -> Vec<String> {
    let mut pools: Vec<String> =
        filters.iter().filter(|f| f.key == "pool").flat_map(|f| f.values.iter().cloned()).collect();
    pools.sort();
    pools.dedup();
    pools
}

/// The UI lists' version of the listing ACL: a caller with the server-level
/// permission sees everything it asked for; a filter naming pools needs the
/// permission in every one of them (as the pRPC lists); without a pool
/// filter the list is narrowed to the configured pools the caller may list
/// (PERMISSION_DENIED when there are none).
pub(crate) fn scope_listing(
    ctx: &RequestAccess,
    mut filters: Vec<muster_core::DimFilter>,
    perm: &str,
) -> Result<Vec<muster_core::DimFilter>, Error> {
    let checker = ctx.checker();
    if checker.server_perm(perm) {
        return Ok(filters);
    }
    let named = filter_pools(&filters);
    if !named.is_empty() {
        checker.check_listing(&named, perm)?;
        return Ok(filters);
    }
    let visible = checker.pools_with(perm);
    if visible.is_empty() {
        checker.check_listing(&[], perm)?;
    }
    filters.push(muster_core::DimFilter { key: "pool".to_string(), values: visible });
    Ok(filters)
}

/// NewTask's authorization, in upstream's order: the single pool (IA), pool
/// `createTask` (PD, before validation), validation (IA), the task realm
/// (defaulted from the pool; none → IA), `createInRealm` in it (PD), the
/// service account's `actAs` (PD), and whether priority < 20 is allowed.
/// May fill `req.realm` from the pool's default.
pub(crate) fn authorize_new_task(ctx: &RequestAccess, req: &mut NewTaskRequest) -> Result<muster_sched::Caller, Error> {
    let checker = ctx.checker();
    let mut pool: Option<String> = None;
    let mut single = true;
    for s in &req.task_slices {
        let pools: Vec<&str> = s.properties.dimensions.get("pool").collect();
        match (pools.as_slice(), &pool) {
            ([p], None) if !p.contains('|') => pool = Some(p.to_string()),
            ([p], Some(q)) if p == q => {}
            _ => single = false,
        }
    }
    let pool = match (pool, single) {
        (Some(p), true) => p,
        // The validator names the exact problem.
        _ => {
            muster_core::validate::validate_new_task(req)?;
            return Err(Error::invalid("bad request: the task must target exactly one pool"));
        }
    };
    checker.check_pool(&pool, perms::POOLS_CREATE_TASK)?;
    muster_core::validate::validate_new_task(req)?;
    let entry = ctx.snap.pool(&pool);
    let realm = if !req.realm.is_empty() {
        req.realm.clone()
    } else if let Some(r) = entry.as_ref().and_then(|p| p.default_task_realm.clone()) {
        req.realm = r.clone();
        r
    } else if ctx.snap.pools.is_empty() {
        // Zero-config: no pool is configured, tasks live in @root unnamed.
        format!("{}:@root", ctx.snap.options.default_project)
    } else {
        return Err(Error::invalid("task realm is required"));
    };
    checker.check_realm(&realm, perms::TASKS_CREATE_IN_REALM)?;
    let sa = req.service_account.as_str();
    if !sa.is_empty() && sa != "none" && sa != "bot" {
        let sa_identity = format!("user:{sa}");
        if !checker.realm_perm_of(&sa_identity, &realm, perms::TASKS_ACT_AS) {
            tracing::info!(caller = %ctx.caller.identity, service_account = sa, realm, "permission denied: actAs");
            return Err(Error::permission(format!(
                "the service account \"{sa}\" doesn't have permission \"{}\" in the realm \"{realm}\"",
                perms::TASKS_ACT_AS
            )));
        }
    }
    Ok(muster_sched::Caller {
        identity: ctx.caller.identity.as_str().to_string(),
        high_priority_allowed: checker.pool_perm(&pool, perms::POOLS_CREATE_HIGH_PRIORITY_TASK),
    })
}

/// Draining is terminating-lite: `pools.terminateBot` on the bot, in the
/// pool, or in every pool a dimension filter names (none: server level).
pub(crate) fn check_drain(app: &State, ctx: &RequestAccess, target: &muster_core::DrainTarget) -> Result<(), Error> {
    use muster_core::DrainTarget as T;
    let c = ctx.checker();
    match target {
        T::Bot(id) => c.check_bot(id, &bot_pools(app, id), perms::POOLS_TERMINATE_BOT),
        T::Pool(p) => c.check_pool(p, perms::POOLS_TERMINATE_BOT),
        T::Dimensions(d) => {
            let mut pools: Vec<String> = d.get("pool").flat_map(|v| v.split('|')).map(str::to_string).collect();
            pools.sort();
            pools.dedup();
            c.check_listing(&pools, perms::POOLS_TERMINATE_BOT)
        }
    }
}
