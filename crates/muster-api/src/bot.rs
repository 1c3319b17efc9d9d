//! The Swarming bot protocol JSON (docs/bot-protocol.md).
//!
//! Field names and shapes are exactly those the upstream Python bot sends and
//! parses. Requests are decoded leniently (unknown keys ignored, missing keys
//! defaulted); replies never serialize `None` fields.

use base64::Engine as _;
use muster_core::BotDimensions;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// `key -> [values]` as on the wire.
pub type DimMap = BTreeMap<String, Vec<String>>;

/// Parses a bot-reported dimensions value (`{str: [str]}`), per docs/bot-protocol.md#dimensions-and-state.
/// Returns an error message (the bot is then quarantined, not rejected).
pub fn parse_dimensions(v: &Value) -> Result<BotDimensions, String> {
    let obj = match v {
        Value::Object(o) => o,
        Value::Null => return Ok(BotDimensions::default()),
        _ => return Err("dimensions must be a dict".to_string()),
    };
    let mut out = Vec::with_capacity(obj.len());
    for (k, vs) in obj {
        let arr = vs.as_array().ok_or_else(|| format!("dimension {k:?} must be a list of strings"))?;
        let mut vals = Vec::with_capacity(arr.len());
        for x in arr {
            vals.push(x.as_str().ok_or_else(|| format!("dimension {k:?} must be a list of strings"))?.to_string());
        }
        out.push((k.clone(), vals));
    }
    Ok(BotDimensions::from_map(out))
}

/// Renders dimensions for the wire.
pub fn dims_to_map(d: &BotDimensions) -> DimMap {
    d.0.clone()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HandshakeRequest {
    pub dimensions: Value,
    pub state: Value,
    pub version: String,
    pub session_id: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct BotGroupCfg {
    pub dimensions: DimMap,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HandshakeResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    pub server_version: String,
    pub bot_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bot_config: Option<String>,
    pub bot_config_name: String,
    pub bot_config_rev: String,
    pub bot_group_cfg: BotGroupCfg,
    /// muster only: the machine token a bootstrap token was exchanged for,
    /// sent once (docs/bot-groups.md#bootstrap-tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine_token: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PollRequest {
    pub dimensions: Value,
    pub state: Value,
    pub version: String,
    pub session: Option<String>,
    pub request_uuid: Option<String>,
    pub force: Option<bool>,
}

/// `cmd` values of a poll reply (docs/bot-protocol.md#poll-commands).
pub mod cmd {
    pub const SLEEP: &str = "sleep";
    pub const RUN: &str = "run";
    pub const TERMINATE: &str = "terminate";
    pub const UPDATE: &str = "update";
    pub const BOT_RESTART: &str = "bot_restart";
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PollResponse {
    pub cmd: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantined: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Manifest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ManifestCache {
    pub name: String,
    pub path: String,
    /// Decimal bytes, "-1" when unknown. Required by the Python bot.
    pub hint: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ManifestCipdPackage {
    pub package_name: String,
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ManifestCipdInput {
    pub server: String,
    pub client_package: ManifestCipdPackage,
    pub packages: Vec<ManifestCipdPackage>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ManifestDigest {
    pub hash: String,
    pub size_bytes: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ManifestCasRef {
    pub cas_instance: String,
    pub digest: ManifestDigest,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceAccount {
    pub service_account: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceAccounts {
    pub system: ServiceAccount,
    pub task: ServiceAccount,
}

/// The task manifest in a `run` poll reply (docs/bot-protocol.md#the-manifest).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Manifest {
    /// Run id (ends in 1).
    pub task_id: String,
    pub bot_id: String,
    pub bot_dimensions: DimMap,
    pub bot_authenticated_as: String,
    pub command: Vec<String>,
    pub dimensions: DimMap,
    pub env: BTreeMap<String, String>,
    pub env_prefixes: BTreeMap<String, Vec<String>>,
    pub grace_period: f64,
    pub hard_timeout: f64,
    pub io_timeout: f64,
    pub relative_cwd: String,
    pub caches: Vec<ManifestCache>,
    pub cipd_input: Option<ManifestCipdInput>,
    pub cas_input_root: Option<ManifestCasRef>,
    pub outputs: Vec<String>,
    /// Standard base64.
    pub secret_bytes: Option<String>,
    pub service_accounts: ServiceAccounts,
    pub realm: Option<BTreeMap<String, String>>,
    pub resultdb: Option<Value>,
    pub containment: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TaskUpdateRequest {
    pub id: String,
    pub task_id: String,
    pub session: Option<String>,
    /// Standard base64 of the bytes at `output_chunk_start`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_chunk_start: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hard_timeout: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub io_timeout: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canceled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bot_overhead: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub isolated_stats: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cipd_stats: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cipd_pins: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cas_output_root: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub named_caches_stats: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_trim_stats: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cleanup_stats: Option<Value>,
}

impl TaskUpdateRequest {
    /// Decodes `output` (standard base64; URL-safe and unpadded accepted).
    pub fn output_bytes(&self) -> Result<Option<Vec<u8>>, String> {
        match &self.output {
            None => Ok(None),
            Some(s) => decode_b64(s).map(Some),
        }
    }
}

/// Standard base64, tolerant of URL-safe alphabet, missing padding and
/// embedded newlines (Python 2 `encode('base64')`).
pub fn decode_b64(s: &str) -> Result<Vec<u8>, String> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD
        .decode(&clean)
        .or_else(|_| URL_SAFE_NO_PAD.decode(clean.trim_end_matches('=')))
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(clean.trim_end_matches('=')))
        .map_err(|e| format!("bad base64: {e}"))
}

/// Standard base64 with padding.
pub fn encode_b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TaskUpdateResponse {
    pub ok: bool,
    pub must_stop: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ClientError {
    pub missing_cas: Vec<Value>,
    pub missing_cipd: Vec<Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TaskErrorRequest {
    pub id: String,
    pub task_id: String,
    pub session: Option<String>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_error: Option<ClientError>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct EventRequest {
    pub dimensions: Value,
    pub state: Value,
    pub version: String,
    pub event: String,
    pub message: String,
    pub session: Option<String>,
}

/// Events a bot may post (docs/bot-protocol.md#events).
pub const BOT_EVENTS: [&str; 4] = ["bot_error", "bot_log", "bot_rebooting", "bot_shutdown"];
