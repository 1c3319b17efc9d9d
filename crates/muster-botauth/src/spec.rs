//! The plain input a [`BotGroups`] is built from — the fields of upstream
//! `bots.cfg` (`BotsCfg`) plus muster's group tokens — and its validation.
//!
//! The config loader turns the text proto into a [`BotsSpec`]; everything
//! here is independent of the file format. Errors and warnings carry a field
//! path (`bot_group[2].dimensions[0]`) the loader maps to a file position.

use crate::cidr::Cidr;
use crate::{idexpr, AuthMethod, BotGroup, BotGroups, Credential, Dimensions, IpAllowlist};
use std::collections::{BTreeSet, HashMap};

/// `BotsCfg`.
#[derive(Debug, Clone, Default)]
pub struct BotsSpec {
    pub trusted_dimensions: Vec<String>,
    pub bot_group: Vec<GroupSpec>,
}

/// `BotGroup`.
#[derive(Debug, Clone, Default)]
pub struct GroupSpec {
    pub bot_id: Vec<String>,
    pub bot_id_prefix: Vec<String>,
    pub auth: Vec<AuthSpec>,
    pub owners: Vec<String>,
    pub dimensions: Vec<String>,
    pub bot_config_script: String,
    /// Set in the file (must not be).
    pub bot_config_script_content: bool,
    pub system_service_account: String,
}

/// `BotAuth`.
#[derive(Debug, Clone, Default)]
pub struct AuthSpec {
    pub require_luci_machine_token: bool,
    /// Present (with its CA ids, which muster does not check).
    pub require_luci_machine_token_secure: Option<Vec<i64>>,
    pub require_service_account: Vec<String>,
    /// `require_gce_vm_token.project`, when the message is present.
    pub require_gce_vm_token: Option<String>,
    pub ip_whitelist: String,
    pub log_if_failed: bool,
}

/// A muster group token (`[[bot_auth]]` in access.toml), appended to the
/// alternatives of the one group `group` selects.
#[derive(Debug, Clone, Default)]
pub struct TokenAuthSpec {
    /// `default`, `bot_id:<id>` or `bot_id_prefix:<prefix>`.
    pub group: String,
    /// SHA-256 (hex) of accepted tokens.
    pub token_sha256: Vec<String>,
    /// Optional allowlist name, ANDed.
    pub ip_allowlist: String,
}

/// One validation finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Field path, e.g. `bot_group[1].auth[0]`.
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Reads a hook script by file name (`scripts/<name>`), None if absent.
pub type ScriptLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// What building needs besides the spec.
#[derive(Default)]
pub struct Context<'a> {
    /// Named allowlists (`ip_allowlist.cfg` and access.toml).
    pub allowlists: HashMap<String, Vec<Cidr>>,
    /// Hook scripts by file name (`scripts/<name>`), None if absent.
    pub script: Option<ScriptLookup<'a>>,
    /// Group tokens from access.toml.
    pub token_auth: Vec<TokenAuthSpec>,
}

/// A built config plus the warnings it loaded with.
pub struct Built {
    pub groups: BotGroups,
    pub warnings: Vec<Problem>,
}

fn valid_key(k: &str) -> bool {
    let mut b = k.bytes();
    k.len() <= 64
        && b.next().is_some_and(|c| c.is_ascii_alphabetic() || matches!(c, b'-' | b'_' | b'.'))
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn valid_email(e: &str) -> bool {
    e.split_once('@').is_some_and(|(u, d)| !u.is_empty() && d.contains('.') && !d.starts_with('.') && !e.contains(' '))
}

fn sha256_hex_ok(h: &str) -> bool {
    h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Validates `spec` (the upstream rules) and builds the groups; any error
/// rejects the whole file.
pub fn build(spec: &BotsSpec, cx: &Context<'_>) -> Result<Built, Vec<Problem>> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut err = |path: String, message: String| errors.push(Problem { path, message });
    let mut trusted: Vec<String> = Vec::new();
    for (i, k) in spec.trusted_dimensions.iter().enumerate() {
        if !valid_key(k) {
            err(format!("trusted_dimensions[{i}]"), format!("{k:?} is not a valid dimension key"));
        }
        trusted.push(k.clone());
    }
    // Without bots.cfg (only group tokens for the default group), bots keep
    // their own pool, as with the flags.
    if !trusted.iter().any(|k| k == "pool") && !spec.bot_group.is_empty() {
        warnings.push(Problem {
            path: "trusted_dimensions".into(),
            message: "\"pool\" is not listed; muster trusts pool anyway (a bot gets only its group's pools)".into(),
        });
        trusted.push("pool".to_string());
    }
    let mut exact: HashMap<String, usize> = HashMap::new();
    let mut prefixes: Vec<(String, usize)> = Vec::new();
    let mut default: Option<usize> = None;
    let mut groups = Vec::new();
    for (gi, g) in spec.bot_group.iter().enumerate() {
        let at = |f: &str| format!("bot_group[{gi}].{f}");
        for (i, expr) in g.bot_id.iter().enumerate() {
            if expr.is_empty() {
                err(at(&format!("bot_id[{i}]")), "empty bot_id".into());
                continue;
            }
            match idexpr::expand(expr) {
                Ok(ids) => {
                    for id in ids {
                        if let Some(other) = exact.insert(id.clone(), gi) {
                            err(at(&format!("bot_id[{i}]")), format!("bot_id {id:?} is already in group #{other}"));
                        }
                    }
                }
                Err(e) => err(at(&format!("bot_id[{i}]")), e),
            }
        }
        for (i, p) in g.bot_id_prefix.iter().enumerate() {
            if p.is_empty() {
                err(at(&format!("bot_id_prefix[{i}]")), "empty bot_id_prefix".into());
                continue;
            }
            for (q, other) in &prefixes {
                if q == p {
                    err(
                        at(&format!("bot_id_prefix[{i}]")),
                        format!("bot_id_prefix {p:?} is already in group #{other}"),
                    );
                } else if q.starts_with(p.as_str()) || p.starts_with(q.as_str()) {
                    err(
                        at(&format!("bot_id_prefix[{i}]")),
                        format!(
                            "bot_id_prefix {p:?} and {q:?} (group #{other}) overlap, making group assignment ambiguous"
                        ),
                    );
                }
            }
            prefixes.push((p.clone(), gi));
        }
        if g.bot_id.is_empty() && g.bot_id_prefix.is_empty() {
            match default {
                Some(d) => err(format!("bot_group[{gi}]"), format!("group #{d} is already set as default")),
                None => default = Some(gi),
            }
        }
        let name = match (g.bot_id.first(), g.bot_id_prefix.first()) {
            (Some(id), _) => format!("bot_id:{id}"),
            (None, Some(p)) => format!("bot_id_prefix:{p}"),
            (None, None) => "default".to_string(),
        };
        let mut auth = Vec::new();
        if g.auth.is_empty() {
            err(at("auth"), "at least one auth entry is required".into());
        }
        for (ai, a) in g.auth.iter().enumerate() {
            let path = at(&format!("auth[{ai}]"));
            let mut kinds = Vec::new();
            if a.require_luci_machine_token {
                kinds.push("require_luci_machine_token");
            }
            if a.require_luci_machine_token_secure.is_some() {
                kinds.push("require_luci_machine_token_secure");
            }
            if !a.require_service_account.is_empty() {
                kinds.push("require_service_account");
            }
            if a.require_gce_vm_token.is_some() {
                kinds.push("require_gce_vm_token");
            }
            if kinds.len() > 1 {
                err(path.clone(), format!("{} and {} can't be used at the same time", kinds[0], kinds[1]));
            }
            let credential = if a.require_luci_machine_token {
                Credential::MachineToken
            } else if let Some(ca) = &a.require_luci_machine_token_secure {
                if !ca.is_empty() {
                    warnings.push(Problem {
                        path: path.clone(),
                        message: "ca_id is not applicable to muster machine tokens; ignored".into(),
                    });
                }
                Credential::MachineToken
            } else if !a.require_service_account.is_empty() {
                for e in &a.require_service_account {
                    if !valid_email(e) {
                        err(path.clone(), format!("invalid service account email {e:?}"));
                    }
                }
                warnings.push(Problem {
                    path: path.clone(),
                    message: format!(
                        "require_service_account is not supported by muster yet: this auth entry of bot group \
                         {name} never passes (give its bots a machine token or a group token)"
                    ),
                });
                Credential::User { emails: a.require_service_account.clone() }
            } else if let Some(project) = &a.require_gce_vm_token {
                if project.is_empty() {
                    err(path.clone(), "require_gce_vm_token.project is required".into());
                }
                warnings.push(Problem {
                    path: path.clone(),
                    message: format!(
                        "GCE VM tokens are not supported by muster: this auth entry of bot group {name} never passes"
                    ),
                });
                Credential::Unsupported("require_gce_vm_token".into())
            } else {
                if a.ip_whitelist.is_empty() {
                    err(path.clone(), "an auth entry needs a require_* method or ip_whitelist".into());
                }
                Credential::IpOnly
            };
            let ip_allowlist = if a.ip_whitelist.is_empty() {
                None
            } else {
                match cx.allowlists.get(&a.ip_whitelist) {
                    Some(cidrs) => Some(IpAllowlist { name: a.ip_whitelist.clone(), cidrs: cidrs.clone() }),
                    None => {
                        err(path.clone(), format!("unknown IP allowlist {:?}", a.ip_whitelist));
                        None
                    }
                }
            };
            auth.push(AuthMethod { credential, ip_allowlist, log_if_failed: a.log_if_failed });
        }
        match g.system_service_account.as_str() {
            "" => {}
            "bot" => {
                if !g.auth.iter().any(|a| !a.require_service_account.is_empty()) {
                    err(
                        at("system_service_account"),
                        "\"bot\" needs an auth entry with require_service_account".into(),
                    );
                }
            }
            e if valid_email(e) => warnings.push(Problem {
                path: at("system_service_account"),
                message: "system service accounts are not supported by muster; ignored".into(),
            }),
            e => err(at("system_service_account"), format!("invalid email {e:?}")),
        }
        for (i, o) in g.owners.iter().enumerate() {
            if !valid_email(o) {
                err(at(&format!("owners[{i}]")), format!("invalid email {o:?}"));
            }
        }
        let mut dimensions = Dimensions::new();
        for (i, d) in g.dimensions.iter().enumerate() {
            let path = at(&format!("dimensions[{i}]"));
            let Some((k, v)) = d.split_once(':') else {
                err(path, format!("{d:?} is not key:value"));
                continue;
            };
            if !valid_key(k) {
                err(path, format!("{k:?} is not a valid dimension key"));
            } else if v.is_empty() || v.chars().count() > 256 || v.trim() != v {
                err(path, format!("bad value {v:?}: 1–256 characters without leading or trailing spaces"));
            } else if (k == "id" || k == "pool") && v.contains(':') {
                err(path, format!("the value of {k} may not contain ':'"));
            } else {
                let vals = dimensions.entry(k.to_string()).or_default();
                if !vals.iter().any(|x| x == v) {
                    vals.push(v.to_string());
                }
            }
        }
        if !dimensions.contains_key("pool") {
            warnings.push(Problem {
                path: format!("bot_group[{gi}]"),
                message: "the group sets no pool: its bots have no pool dimension and run no pool's tasks".into(),
            });
        }
        if g.bot_config_script_content {
            err(at("bot_config_script_content"), "must not be set in the file".into());
        }
        let mut hook_script = None;
        let s = &g.bot_config_script;
        if !s.is_empty() {
            if !s.ends_with(".py") || s.contains('/') || s.contains('\\') {
                err(at("bot_config_script"), format!("{s:?} must be a file name ending in .py"));
            } else if let Some(lookup) = cx.script {
                match lookup(s) {
                    Some(body) => hook_script = Some((s.clone(), body)),
                    None => err(at("bot_config_script"), format!("scripts/{s} does not exist")),
                }
            }
        }
        groups.push(BotGroup { name, auth, dimensions, owners: g.owners.clone(), hook_script });
    }
    for (i, t) in cx.token_auth.iter().enumerate() {
        let path = format!("bot_auth[{i}]");
        let selected: Vec<usize> =
            groups.iter().enumerate().filter(|(_, g)| g.name == t.group).map(|(i, _)| i).collect();
        let gi = match (t.group.as_str(), selected.as_slice()) {
            (_, [one]) => *one,
            ("default", []) if spec.bot_group.is_empty() => {
                // No bots.cfg: the tokens make the default group.
                groups.push(BotGroup {
                    name: "default".into(),
                    auth: Vec::new(),
                    dimensions: Dimensions::new(),
                    owners: Vec::new(),
                    hook_script: None,
                });
                default = Some(groups.len() - 1);
                groups.len() - 1
            }
            _ => {
                err(path, format!("group {:?} does not select exactly one bot group", t.group));
                continue;
            }
        };
        if t.token_sha256.is_empty() || t.token_sha256.len() > 2 {
            err(path.clone(), "token_sha256 needs one or two values (two allow rotation)".into());
        }
        for h in &t.token_sha256 {
            if !sha256_hex_ok(h) {
                err(path.clone(), "token_sha256 values are 64 hex digits (sha256sum of the token)".into());
            }
        }
        let ip_allowlist = if t.ip_allowlist.is_empty() {
            None
        } else {
            match cx.allowlists.get(&t.ip_allowlist) {
                Some(c) => Some(IpAllowlist { name: t.ip_allowlist.clone(), cidrs: c.clone() }),
                None => {
                    err(path, format!("unknown IP allowlist {:?}", t.ip_allowlist));
                    None
                }
            }
        };
        groups[gi].auth.push(AuthMethod {
            credential: Credential::GroupToken {
                sha256: t.token_sha256.iter().map(|h| h.to_ascii_lowercase()).collect(),
            },
            ip_allowlist,
            log_if_failed: false,
        });
    }
    let ids: BTreeSet<&String> = exact.keys().collect();
    for (p, gi) in &prefixes {
        if ids.contains(p) {
            warnings.push(Problem {
                path: format!("bot_group[{gi}].bot_id_prefix"),
                message: format!("{p:?} is also a bot_id; the exact id wins"),
            });
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Built { groups: BotGroups { groups, trusted, exact, prefixes, default }, warnings })
}
