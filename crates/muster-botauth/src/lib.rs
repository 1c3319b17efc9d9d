//! muster-botauth: bot groups (what `bots.cfg` describes).
//!
//! Owns: which group a bot id belongs to (exact id, composite id, longest
//! prefix, default group), how a bot of that group must authenticate (IP
//! allowlist, group token, per-machine token, user identity — alternatives
//! tried in order), and which dimensions the server forces on it. The
//! built, validated [`BotGroups`] is immutable; a reload builds a new one.
//! Must not: do IO (the server looks machine tokens up and passes the
//! result in [`Presented`]), know HTTP or the store.
//!
//! Modules: [`spec`] (the plain input mirroring `bots.cfg`, validation and
//! building), [`idexpr`] (`bot_id` expressions), [`cidr`], [`token`]
//! (machine tokens and digests).

pub mod cidr;
pub mod idexpr;
pub mod spec;
pub mod token;

use cidr::Cidr;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

/// Dimensions as key → values.
pub type Dimensions = BTreeMap<String, Vec<String>>;

/// A named list of address ranges (`ip_allowlist.cfg`, or the flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpAllowlist {
    pub name: String,
    pub cidrs: Vec<Cidr>,
}

impl IpAllowlist {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.cidrs.iter().any(|c| c.contains(ip))
    }
}

/// The credential one auth alternative requires (besides its allowlist).
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// Nothing but the IP allowlist, which is then required.
    IpOnly,
    /// `Authorization: Bearer <token>` whose SHA-256 is one of these
    /// (two values allow rotation).
    GroupToken { sha256: Vec<String> },
    /// A muster machine token bound to the bot's host.
    MachineToken,
    /// A user identity (`user:<email>`) among these emails.
    User { emails: Vec<String> },
    /// An upstream method muster cannot check; never passes.
    Unsupported(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::IpOnly => f.write_str("IpOnly"),
            Credential::GroupToken { sha256 } => write!(f, "GroupToken({} digests)", sha256.len()),
            Credential::MachineToken => f.write_str("MachineToken"),
            Credential::User { emails } => write!(f, "User({emails:?})"),
            Credential::Unsupported(m) => write!(f, "Unsupported({m})"),
        }
    }
}

/// One auth alternative: a credential, optionally ANDed with an allowlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthMethod {
    pub credential: Credential,
    pub ip_allowlist: Option<IpAllowlist>,
    /// Log this alternative's failure loudly even when a later one passes.
    pub log_if_failed: bool,
}

/// One bot group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotGroup {
    /// How messages and `[[bot_auth]]` name it: `bot_id:<first id>`,
    /// `bot_id_prefix:<first prefix>` or `default`.
    pub name: String,
    /// Alternatives, tried in order; the first that passes wins.
    pub auth: Vec<AuthMethod>,
    /// Dimensions the server forces on the group's bots.
    pub dimensions: Dimensions,
    pub owners: Vec<String>,
    /// Hook script name and content delivered to the group's bots.
    pub hook_script: Option<(String, String)>,
}

impl BotGroup {
    /// A digest of what a bot learns from its group at handshake (forced
    /// dimensions, hook script): when a reload changes it, the group's
    /// running bots are told to restart.
    pub fn config_version(&self) -> String {
        use sha2::{Digest as _, Sha256};
        let mut h = Sha256::new();
        for (k, vs) in &self.dimensions {
            h.update(k.as_bytes());
            for v in vs {
                h.update([0]);
                h.update(v.as_bytes());
            }
            h.update([1]);
        }
        if let Some((name, body)) = &self.hook_script {
            h.update([2]);
            h.update(name.as_bytes());
            h.update([0]);
            h.update(body.as_bytes());
        }
        hex::encode(&h.finalize()[..12])
    }
}

/// Every bot group, ready for lookups.
#[derive(Debug, Clone, Default)]
pub struct BotGroups {
    groups: Vec<BotGroup>,
    /// Keys only the server may set: a bot's own values for them are
    /// dropped even when its group sets none.
    trusted: Vec<String>,
    exact: HashMap<String, usize>,
    prefixes: Vec<(String, usize)>,
    default: Option<usize>,
}

/// What a bot call presented, with lookups (machine token, user token)
/// already done by the caller.
#[derive(Debug, Default, Clone)]
pub struct Presented {
    pub peer: Option<IpAddr>,
    /// `Authorization: Bearer` value (not a machine token).
    pub bearer: Option<String>,
    pub machine: MachineCheck,
    /// `user:<email>` when the caller authenticated as a user.
    pub user: Option<String>,
}

/// Result of looking a presented machine token up.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub enum MachineCheck {
    #[default]
    Absent,
    /// Known, unrevoked, secret matches; bound to this host.
    Valid { host: String },
    /// Presented but unknown, revoked or wrong.
    Invalid(String),
}

/// A bot that passed its group's auth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorized {
    /// Index of the group (see [`BotGroups::group`]).
    pub group: usize,
    /// `authenticated_as`: `bot:<host>`, `user:<email>`,
    /// `bot:whitelisted-ip` or `bot:group-token`.
    pub identity: String,
    /// Failures of earlier alternatives marked `log_if_failed`.
    pub loud_failures: Vec<String>,
}

/// Why a bot was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No group matches the id and there is no default group.
    UnknownBot(String),
    /// Every alternative failed (reasons in order).
    Failed(Vec<String>),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the bot is not in bots.cfg or wrong credentials passed: ")?;
        match self {
            Refusal::UnknownBot(id) => write!(f, "no bot group matches bot id {id:?} and there is no default group"),
            Refusal::Failed(r) if r.len() == 1 => f.write_str(&r[0]),
            Refusal::Failed(r) => write!(f, "all auth methods failed: {}", r.join("; ")),
        }
    }
}

/// The host part of a bot id: the text before the first `--`
/// (`vm10--001` runs on host `vm10`).
pub fn host_id(bot_id: &str) -> &str {
    bot_id.split_once("--").map_or(bot_id, |(h, _)| h)
}

impl BotGroups {
    /// One default group (what `--bot-allow`/`--bot-token`/`--bot-dimension`
    /// describe when there is no bots.cfg). Only the keys in `dimensions`
    /// are trusted, so bots keep reporting their own pool unless one is forced.
    pub fn single_default(
        auth: Vec<AuthMethod>,
        dimensions: Dimensions,
        hook_script: Option<(String, String)>,
    ) -> Self {
        let trusted = dimensions.keys().cloned().collect();
        BotGroups {
            groups: vec![BotGroup { name: "default".to_string(), auth, dimensions, owners: Vec::new(), hook_script }],
            trusted,
            exact: HashMap::new(),
            prefixes: Vec::new(),
            default: Some(0),
        }
    }

    pub fn groups(&self) -> &[BotGroup] {
        &self.groups
    }

    pub fn group(&self, i: usize) -> &BotGroup {
        &self.groups[i.min(self.groups.len().saturating_sub(1))]
    }

    pub fn trusted_dimensions(&self) -> &[String] {
        &self.trusted
    }

    /// The group of `bot_id`: exact full id (composite ids only), exact
    /// host id, longest prefix of the host id, else the default group.
    pub fn select(&self, bot_id: &str) -> Option<usize> {
        let host = host_id(bot_id);
        if host != bot_id {
            if let Some(&i) = self.exact.get(bot_id) {
                return Some(i);
            }
        }
        if let Some(&i) = self.exact.get(host) {
            return Some(i);
        }
        let best = self.prefixes.iter().filter(|(p, _)| host.starts_with(p.as_str())).max_by_key(|(p, _)| p.len());
        best.map(|(_, i)| *i).or(self.default)
    }

    /// Selects the group of `bot_id` and tries its alternatives in order.
    pub fn authorize(&self, bot_id: &str, presented: &Presented) -> Result<Authorized, Refusal> {
        let Some(gi) = self.select(bot_id) else { return Err(Refusal::UnknownBot(bot_id.to_string())) };
        let host = host_id(bot_id);
        let mut reasons = Vec::new();
        let mut loud = Vec::new();
        for (n, m) in self.groups[gi].auth.iter().enumerate() {
            match check(m, host, presented) {
                Ok(identity) => return Ok(Authorized { group: gi, identity, loud_failures: loud }),
                Err(e) => {
                    let e = format!("auth #{}: {e}", n + 1);
                    if m.log_if_failed {
                        loud.push(e.clone());
                    }
                    reasons.push(e);
                }
            }
        }
        Err(Refusal::Failed(reasons))
    }

    /// The dimensions to store for a bot of group `gi` that reported
    /// `reported`: every trusted key and every key the group sets loses the
    /// bot's values; the group's values are used instead (none: the key is
    /// absent, so a bot in a group without a pool has no pool).
    pub fn merge_dimensions(&self, gi: usize, reported: &Dimensions) -> Dimensions {
        let g = self.group(gi);
        let mut out = reported.clone();
        for k in self.trusted.iter().chain(g.dimensions.keys()) {
            out.remove(k);
        }
        for (k, v) in &g.dimensions {
            out.insert(k.clone(), v.clone());
        }
        out
    }
}

fn check(m: &AuthMethod, host: &str, p: &Presented) -> Result<String, String> {
    if let Some(al) = &m.ip_allowlist {
        match p.peer {
            Some(ip) if al.contains(ip) => {}
            Some(ip) => return Err(format!("address {ip} is not in IP allowlist {:?}", al.name)),
            None => return Err(format!("no peer address to check against IP allowlist {:?}", al.name)),
        }
    }
    match &m.credential {
        Credential::IpOnly => Ok("bot:whitelisted-ip".to_string()),
        Credential::GroupToken { sha256 } => match &p.bearer {
            None => Err("no bot token (Authorization: Bearer) presented".to_string()),
            Some(t) => {
                let digest = token::sha256_hex(t);
                if sha256.iter().any(|h| h.eq_ignore_ascii_case(&digest)) {
                    Ok("bot:group-token".to_string())
                } else {
                    Err("wrong bot token".to_string())
                }
            }
        },
        Credential::MachineToken => match &p.machine {
            MachineCheck::Absent => Err("no machine token presented".to_string()),
            MachineCheck::Invalid(e) => Err(e.clone()),
            MachineCheck::Valid { host: bound } if token::host_matches(bound, host) => Ok(format!("bot:{bound}")),
            MachineCheck::Valid { host: bound } => {
                Err(format!("the machine token is bound to host {bound:?}, not {host:?}"))
            }
        },
        Credential::User { emails } => match &p.user {
            Some(u) if emails.iter().any(|e| u.strip_prefix("user:") == Some(e.as_str())) => Ok(u.clone()),
            Some(u) => Err(format!("{u} is not one of the group's service accounts")),
            None => {
                Err("require_service_account never passes: muster does not authenticate bots as users yet".to_string())
            }
        },
        Credential::Unsupported(what) => Err(format!("{what} is not supported by muster")),
    }
}

#[cfg(test)]
mod tests;
