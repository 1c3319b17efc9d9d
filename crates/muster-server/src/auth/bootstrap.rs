//! One-time bootstrap tokens exchanged at a bot's first handshake for a
//! machine token of its own (docs/bot-groups.md#bootstrap-tokens).
//!
//! The bootstrap token (`GetToken`, or `muster bot-token bootstrap`) is
//! HMAC-signed by the server and valid for an hour. At handshake the bot
//! sends it in `X-Muster-Bootstrap-Token`; the server checks it, checks that
//! a machine token bound to the bot's host would pass the bot's group, then
//! commits in one transaction the token's use (by its SHA-256) and a new
//! machine token, which the handshake reply carries once. A second use of
//! the same bootstrap token conflicts and is refused (401), storing nothing.

use super::bots::BotAccess;
use axum::http::HeaderMap;
use muster_botauth::{host_id, token, Authorized, BotGroups, MachineCheck, Presented};
use muster_core::bot::BotToken;
use muster_core::{Error, ErrorKind, Time};
use muster_store::{CommitOutcome, Store, Txn, Write};
use std::net::IpAddr;
use std::sync::Arc;

/// Header carrying a bootstrap token at handshake.
pub const HEADER: &str = "x-muster-bootstrap-token";

/// The bootstrap token a request presents, if any.
pub fn presented_token(headers: &HeaderMap) -> Option<&str> {
    headers.get(HEADER).and_then(|v| v.to_str().ok()).map(str::trim).filter(|t| !t.is_empty())
}

/// What a successful exchange gives.
pub struct Exchanged {
    pub groups: Arc<BotGroups>,
    pub auth: Authorized,
    /// The new machine token (`msm_…`), sent to the bot once.
    pub machine_token: String,
}

fn refused(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::Unauthenticated, msg)
}

/// Exchanges `bootstrap` (presented by `bot_id` from `peer`) for a machine
/// token bound to the bot's host. 401 when the token is invalid, expired or
/// already used, or when the bot's group does not accept machine tokens.
pub async fn exchange(
    access: &BotAccess,
    store: &dyn Store,
    key: &[u8],
    bot_id: &str,
    peer: IpAddr,
    bootstrap: &str,
    now: Time,
) -> Result<Exchanged, Error> {
    let Some(claims) = muster_access::bootstrap::verify(key, bootstrap, now) else {
        tracing::warn!(bot_id, %peer, "bootstrap token refused: invalid or expired");
        return Err(refused("invalid or expired bootstrap token"));
    };
    let host = host_id(bot_id).to_string();
    let would_be =
        Presented { peer: Some(peer), machine: MachineCheck::Valid { host: host.clone() }, ..Default::default() };
    let (groups, auth) = access.decide(bot_id, peer, &would_be).map_err(|e| {
        refused(format!(
            "a bootstrap token gives a machine token, which the bot's group does not accept: {}",
            e.message
        ))
    })?;
    let minted = token::new_machine_token();
    let record = BotToken {
        id: minted.id.clone(),
        host: host.clone(),
        secret_sha256: minted.secret_sha256.clone(),
        created: now,
        created_by: format!("bootstrap by {}", claims.by),
        revoked: None,
    };
    let txn = Txn::new()
        .with(Write::UseBootstrapToken {
            token_sha256: token::sha256_hex(bootstrap),
            bot_id: bot_id.to_string(),
            bot_token_id: minted.id.clone(),
            at: now,
        })
        .with(Write::PutBotToken(Box::new(record)));
    match store.commit(txn).await {
        Err(e) => Err(Error::internal(format!("recording the bootstrap exchange: {e}"))),
        Ok(CommitOutcome::Conflict { .. }) => {
            tracing::warn!(bot_id, %peer, "bootstrap token refused: already used");
            Err(refused("bootstrap token already used: ask for a new one"))
        }
        Ok(CommitOutcome::Committed) => {
            tracing::info!(
                bot_id,
                host,
                token_id = minted.id,
                by = claims.by,
                "bootstrap token exchanged for a machine token"
            );
            Ok(Exchanged { groups, auth, machine_token: minted.token })
        }
    }
}
