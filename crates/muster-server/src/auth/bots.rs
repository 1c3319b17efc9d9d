//! Bot access (docs/bot-groups.md): which bot group a caller belongs to and
//! whether its credentials pass, re-checked on every bot call.
//!
//! The rules live in muster-botauth; this module gathers what the request
//! presented (peer address, bearer token, machine token looked up in the
//! store) and logs refusals at most once a minute per source address.

use crate::config::ServerConfig;
use axum::http::HeaderMap;
use muster_botauth::cidr::Cidr;
use muster_botauth::{token, AuthMethod, Authorized, BotGroups, Credential, IpAllowlist, MachineCheck, Presented};
use muster_core::{Error, ErrorKind};
use muster_store::Store;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

pub use muster_botauth::cidr::cidr_contains;

/// How often one source's refusals are logged.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(60);

/// The bot groups in force and the refusal log. Groups come from the
/// config directory's current snapshot when it has any (a reload swaps
/// them), else from the fixed set (explicit, or made from the flags).
pub struct BotAccess {
    groups: RwLock<Arc<BotGroups>>,
    config: Option<Arc<muster_config::ConfigHolder>>,
    logged: Mutex<HashMap<IpAddr, Instant>>,
}

impl BotAccess {
    pub fn new(groups: Arc<BotGroups>, config: Option<Arc<muster_config::ConfigHolder>>) -> BotAccess {
        BotAccess { groups: RwLock::new(groups), config, logged: Mutex::new(HashMap::new()) }
    }

    /// The groups a request works with (one snapshot per call).
    pub fn current(&self) -> Arc<BotGroups> {
        if let Some(g) = self.config.as_ref().and_then(|c| c.get().bot_groups.clone()) {
            return g;
        }
        match self.groups.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the groups (config reload).
    pub fn replace(&self, groups: Arc<BotGroups>) {
        match self.groups.write() {
            Ok(mut g) => *g = groups,
            Err(poisoned) => *poisoned.into_inner() = groups,
        }
    }

    /// Whether a refusal from `peer` should be logged now.
    fn should_log(&self, peer: IpAddr, now: Instant) -> bool {
        let Ok(mut m) = self.logged.lock() else { return true };
        if m.len() > 10_000 {
            m.retain(|_, t| now.duration_since(*t) < REFUSAL_LOG_EVERY);
        }
        match m.get(&peer) {
            Some(t) if now.duration_since(*t) < REFUSAL_LOG_EVERY => false,
            _ => {
                m.insert(peer, now);
                true
            }
        }
    }

    /// Authorizes `bot_id` for one call: selects its group, checks the
    /// presented credentials. 401 when they do not pass, 500 when a lookup
    /// failed. Nothing is stored either way.
    pub async fn authorize(
        &self,
        store: &dyn Store,
        bot_id: &str,
        peer: IpAddr,
        headers: &HeaderMap,
    ) -> Result<(Arc<BotGroups>, Authorized), Error> {
        let presented = presented(store, peer, headers).await?;
        self.decide(bot_id, peer, &presented)
    }

    /// Authorizes `bot_id` with what was presented (lookups done).
    pub fn decide(
        &self,
        bot_id: &str,
        peer: IpAddr,
        presented: &Presented,
    ) -> Result<(Arc<BotGroups>, Authorized), Error> {
        let groups = self.current();
        match groups.authorize(bot_id, presented) {
            Ok(a) => {
                for f in &a.loud_failures {
                    tracing::error!(bot_id, %peer, failure = %f, "bot auth alternative failed (log_if_failed)");
                }
                Ok((groups, a))
            }
            Err(refusal) => {
                let msg = refusal.to_string();
                if self.should_log(peer, Instant::now()) {
                    tracing::warn!(bot_id, %peer, reason = %msg, "bot refused (logged once a minute per address)");
                }
                Err(Error::new(ErrorKind::Unauthenticated, msg))
            }
        }
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// Gathers what a request presented; a machine token is looked up here.
pub async fn presented(store: &dyn Store, peer: IpAddr, headers: &HeaderMap) -> Result<Presented, Error> {
    let machine_header = headers.get("x-luci-machine-token").and_then(|v| v.to_str().ok()).map(str::trim);
    let bearer = bearer(headers);
    let machine_raw = machine_header.or(bearer.filter(|b| b.starts_with(token::MACHINE_PREFIX)));
    let machine = match machine_raw {
        None => MachineCheck::Absent,
        Some(raw) => match token::parse_machine_token(raw) {
            None => MachineCheck::Invalid("malformed machine token".to_string()),
            Some((id, secret)) => match store.get_bot_token(id).await {
                Err(e) => return Err(Error::internal(format!("looking up machine token {id}: {e}"))),
                Ok(None) => MachineCheck::Invalid(format!("unknown machine token {id}")),
                Ok(Some(t)) if t.revoked.is_some() => MachineCheck::Invalid(format!("machine token {id} is revoked")),
                Ok(Some(t)) if !t.secret_sha256.eq_ignore_ascii_case(&token::sha256_hex(secret)) => {
                    MachineCheck::Invalid(format!("wrong secret for machine token {id}"))
                }
                Ok(Some(t)) => MachineCheck::Valid { host: t.host },
            },
        },
    };
    Ok(Presented {
        peer: Some(peer),
        bearer: bearer.filter(|b| !b.starts_with(token::MACHINE_PREFIX)).map(str::to_string),
        machine,
        user: None,
    })
}

/// The default group the bot flags describe (used when there is no
/// bots.cfg): `--bot-allow` (else any address with `--bot-token` or
/// `--insecure-allow-any-bot`, else loopback) ANDed with `--bot-token`,
/// and `--bot-dimension` forced on every bot.
pub fn groups_from_flags(cfg: &ServerConfig) -> Result<BotGroups, String> {
    let auth = &cfg.bot_auth;
    let cidrs = auth.ip_allowlist.iter().map(|c| Cidr::parse(c)).collect::<Result<Vec<_>, _>>()?;
    let ip_allowlist = (!cidrs.is_empty()).then(|| IpAllowlist { name: "cli".to_string(), cidrs });
    let credential = match &auth.token {
        Some(t) => Credential::GroupToken { sha256: vec![token::sha256_hex(t)] },
        None => Credential::IpOnly,
    };
    let method = AuthMethod { credential, ip_allowlist, log_if_failed: false };
    Ok(BotGroups::single_default(vec![method], cfg.bot_dimensions.clone(), None))
}
