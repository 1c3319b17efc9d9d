//! muster.v1.Tokens: client API tokens. Anyone authenticated manages their
//! own tokens; administrators (the settings.cfg admins group, or a loopback
//! caller of a server without access.toml) manage everyone's.

use crate::client_api::common::{access, store_err};
use crate::State;
use muster_access::{token, Identity};
use muster_api::prpc::Status;
use muster_api::tokens as t;
use muster_core::Error;
use muster_store::ApiToken;

fn info(r: &ApiToken) -> t::TokenInfo {
    t::TokenInfo {
        id: r.id.clone(),
        identity: r.identity.clone(),
        description: r.description.clone(),
        created_by: r.created_by.clone(),
        created_ts: r.created_at.timestamp(),
        expires_ts: r.expires_at.timestamp(),
        last_used_ts: r.last_used_at.map(|x| x.timestamp()).unwrap_or(0),
        revoked_ts: r.revoked_at.map(|x| x.timestamp()).unwrap_or(0),
    }
}

fn is_admin() -> bool {
    let ctx = access();
    ctx.snap.is_member(ctx.caller.identity.as_str(), &ctx.caller.extra_groups, &ctx.snap.server_groups.admins)
}

fn denied(what: &str) -> Status {
    let ctx = access();
    tracing::info!(caller = %ctx.caller.identity, what, "permission denied");
    Status::from(Error::permission(format!("the caller \"{}\" may not {what}", ctx.caller.identity)))
}

pub(crate) async fn create(app: State, req: t::CreateTokenRequest) -> Result<t::CreateTokenResponse, Status> {
    let ctx = access();
    let me = &ctx.caller.identity;
    let target = if req.identity.is_empty() {
        if me.is_anonymous() {
            return Err(Status::invalid_argument(
                "anonymous callers have no tokens: pass the identity to create one for",
            ));
        }
        me.clone()
    } else {
        Identity::parse(&req.identity).map_err(Status::invalid_argument)?
    };
    if target.is_anonymous() {
        return Err(Status::invalid_argument("tokens cannot be issued for anonymous:anonymous"));
    }
    if &target != me && !is_admin() {
        return Err(denied("create tokens for other identities (administrators only)"));
    }
    let max = i64::from(ctx.snap.access.tokens.max_lifetime_days) * 86_400;
    let lifetime = match req.expires_in_secs {
        0 => max,
        s if s < 0 || s > max => {
            return Err(Status::invalid_argument(format!("expires_in_secs must be between 1 and {max}, got {s}")))
        }
        s => s,
    };
    let issued = token::create(app.store.as_ref(), &target, &req.description, me, app.clock.now(), lifetime).await?;
    Ok(t::CreateTokenResponse { token: issued.token, info: Some(info(&issued.row)) })
}

pub(crate) async fn list(app: State, req: t::ListTokensRequest) -> Result<t::ListTokensResponse, Status> {
    let ctx = access();
    let me = ctx.caller.identity.as_str();
    let admin = is_admin();
    let want = if req.identity.is_empty() {
        if admin && ctx.caller.identity.is_anonymous() {
            "*"
        } else {
            me
        }
    } else {
        req.identity.as_str()
    };
    if want != me && !admin {
        return Err(denied("list other identities' tokens (administrators only)"));
    }
    let all = app.store.list_api_tokens().await.map_err(store_err)?;
    let tokens = all.iter().filter(|r| want == "*" || r.identity == want).map(info).collect();
    Ok(t::ListTokensResponse { tokens })
}

pub(crate) async fn revoke(app: State, req: t::RevokeTokenRequest) -> Result<t::RevokeTokenResponse, Status> {
    let ctx = access();
    if req.id.is_empty() {
        return Err(Status::invalid_argument("id is required"));
    }
    let row = app.store.get_api_token(&req.id).await.map_err(store_err)?;
    let row = row.ok_or_else(|| Status::not_found(format!("no token {:?}", req.id)))?;
    if row.identity != ctx.caller.identity.as_str() && !is_admin() {
        return Err(denied("revoke other identities' tokens (administrators only)"));
    }
    token::revoke(app.store.as_ref(), &req.id, &ctx.caller.identity, app.clock.now()).await?;
    Ok(t::RevokeTokenResponse { revoked: row.revoked_at.is_none() })
}
