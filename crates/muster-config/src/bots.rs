//! `bots.cfg` (+ `[[bot_auth]]` of access.toml, + `scripts/*.py`) into the
//! bot groups muster-botauth evaluates. The rules and the validation are
//! muster-botauth's; this module maps fields and places findings in files.

use crate::access_toml::AccessToml;
use crate::error::{ConfigError, Errors};
use crate::pb;
use crate::snapshot::{ACCESS_TOML, BOTS_CFG};
use ipnet::IpNet;
use muster_botauth::cidr::Cidr;
use muster_botauth::spec::{self, AuthSpec, BotsSpec, Context, GroupSpec, Problem, TokenAuthSpec};
use muster_botauth::BotGroups;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Directory of per-group hook scripts inside the config dir.
pub const SCRIPTS_DIR: &str = "scripts";

fn spec_of(cfg: &pb::BotsCfg) -> BotsSpec {
    BotsSpec {
        trusted_dimensions: cfg.trusted_dimensions.clone(),
        bot_group: cfg
            .bot_group
            .iter()
            .map(|g| GroupSpec {
                bot_id: g.bot_id.clone(),
                bot_id_prefix: g.bot_id_prefix.clone(),
                auth: g
                    .auth
                    .iter()
                    .map(|a| AuthSpec {
                        require_luci_machine_token: a.require_luci_machine_token,
                        require_luci_machine_token_secure: a
                            .require_luci_machine_token_secure
                            .as_ref()
                            .map(|s| s.ca_id.clone()),
                        require_service_account: a.require_service_account.clone(),
                        require_gce_vm_token: a.require_gce_vm_token.as_ref().map(|g| g.project.clone()),
                        ip_whitelist: a.ip_whitelist.clone(),
                        log_if_failed: a.log_if_failed,
                    })
                    .collect(),
                owners: g.owners.clone(),
                dimensions: g.dimensions.clone(),
                bot_config_script: g.bot_config_script.clone(),
                bot_config_script_content: !g.bot_config_script_content.is_empty(),
                system_service_account: g.system_service_account.clone(),
            })
            .collect(),
    }
}

/// Byte offset of the `n`-th occurrence of `word` followed by a space, `{`
/// or `:` (a field or table name), if any.
fn nth_field(text: &str, word: &str, n: usize) -> Option<usize> {
    text.match_indices(word)
        .filter(|(i, _)| text[i + word.len()..].starts_with([' ', '{', ':', ']', '\n']))
        .nth(n)
        .map(|(i, _)| i)
}

/// Places a finding: `bot_group[N]…` at the N-th `bot_group` of bots.cfg,
/// `bot_auth[N]…` at the N-th `[[bot_auth]]` of access.toml.
fn place(p: &Problem, bots_text: &str, access_text: &str) -> ConfigError {
    let index = |prefix: &str| {
        p.path.strip_prefix(prefix).and_then(|r| r.split(']').next()).and_then(|n| n.parse::<usize>().ok())
    };
    let msg = p.to_string();
    if let Some(n) = index("bot_auth[") {
        return match nth_field(access_text, "bot_auth", n) {
            Some(o) => ConfigError::at(ACCESS_TOML, access_text, o, msg),
            None => ConfigError::file(ACCESS_TOML, msg),
        };
    }
    let offset = match index("bot_group[") {
        Some(n) => nth_field(bots_text, "bot_group", n),
        None => nth_field(bots_text, p.path.split(['[', '.']).next().unwrap_or(""), 0),
    };
    match offset {
        Some(o) => ConfigError::at(BOTS_CFG, bots_text, o, msg),
        None => ConfigError::file(BOTS_CFG, msg),
    }
}

/// Reads a `[[bot_auth]]` token file: SHA-256 of its first line.
fn token_file_digest(path: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("token_file {path:?}: {e}"))?;
    let token = text.lines().next().unwrap_or("").trim();
    if token.is_empty() {
        return Err(format!("token_file {path:?} is empty"));
    }
    Ok(muster_botauth::token::sha256_hex(token))
}

/// The bot groups of a configuration; None when neither bots.cfg nor any
/// `[[bot_auth]]` exists (the server then uses its flags).
#[allow(clippy::too_many_arguments)]
pub(crate) fn build(
    bots: Option<&pb::BotsCfg>,
    bots_text: &str,
    access: &AccessToml,
    access_text: &str,
    ip_allowlists: &BTreeMap<String, Vec<IpNet>>,
    scripts: &BTreeMap<String, String>,
    errors: &mut Errors,
    warnings: &mut Vec<ConfigError>,
) -> Option<Arc<BotGroups>> {
    if bots.is_none() && access.bot_auth.is_empty() {
        return None;
    }
    let spec = bots.map(spec_of).unwrap_or_default();
    let mut allowlists = HashMap::new();
    for (name, nets) in ip_allowlists {
        let cidrs: Vec<Cidr> = nets.iter().filter_map(|n| Cidr::parse(&n.to_string()).ok()).collect();
        allowlists.insert(name.clone(), cidrs);
    }
    let mut token_auth = Vec::new();
    for (i, b) in access.bot_auth.iter().enumerate() {
        let mut token_sha256 = b.token_sha256.clone();
        if let Some(path) = &b.token_file {
            match token_file_digest(path) {
                Ok(d) => token_sha256.push(d),
                Err(e) => {
                    let p = Problem { path: format!("bot_auth[{i}]"), message: e };
                    errors.push(place(&p, bots_text, access_text));
                }
            }
        }
        token_auth.push(TokenAuthSpec {
            group: b.group.clone(),
            token_sha256,
            ip_allowlist: b.ip_allowlist.clone().unwrap_or_default(),
        });
    }
    let lookup = |name: &str| scripts.get(name).cloned();
    let cx = Context { allowlists, script: Some(&lookup), token_auth };
    match spec::build(&spec, &cx) {
        Ok(built) => {
            warnings.extend(built.warnings.iter().map(|p| place(p, bots_text, access_text)));
            Some(Arc::new(built.groups))
        }
        Err(problems) => {
            for p in &problems {
                errors.push(place(p, bots_text, access_text));
            }
            None
        }
    }
}
