//! Bots and bot events (docs/client-api.md#bots-and-events, docs/bot-protocol.md#dimensions-and-state, #events).

use crate::dims::BotDimensions;
use crate::ids::TaskId;
use crate::time::Time;

/// What the server knows about one bot.
#[derive(Debug, Clone, PartialEq)]
pub struct BotInfo {
    pub bot_id: String,
    /// Effective dimensions (bot-reported overridden by server-enforced).
    pub dimensions: BotDimensions,
    /// The state dict the bot reported, as a JSON object string.
    pub state_json: String,
    pub version: String,
    pub external_ip: String,
    pub authenticated_as: String,
    pub first_seen: Time,
    pub last_seen: Time,
    pub session_id: String,
    /// Task being run (busy iff set).
    pub task_id: Option<TaskId>,
    pub task_name: String,
    /// Quarantine reason; empty when healthy.
    pub quarantined_msg: String,
    /// Maintenance message; empty when not in maintenance.
    pub maintenance_msg: String,
    /// Summary id of the TerminateBot task that shut it down.
    pub termination_task_id: String,
    /// Set by DeleteBot; a deleted bot reappears on its next handshake.
    pub deleted: bool,
    /// Set once the bot is detected dead (silent past the death timeout).
    pub is_dead: bool,
    /// When the bot last became idle.
    pub idle_since: Option<Time>,
}

impl BotInfo {
    pub fn new(bot_id: &str, now: Time) -> BotInfo {
        BotInfo {
            bot_id: bot_id.to_string(),
            dimensions: BotDimensions::default(),
            state_json: "{}".to_string(),
            version: String::new(),
            external_ip: String::new(),
            authenticated_as: String::new(),
            first_seen: now,
            last_seen: now,
            session_id: String::new(),
            task_id: None,
            task_name: String::new(),
            quarantined_msg: String::new(),
            maintenance_msg: String::new(),
            termination_task_id: String::new(),
            deleted: false,
            is_dead: false,
            idle_since: Some(now),
        }
    }

    pub fn quarantined(&self) -> bool {
        !self.quarantined_msg.is_empty()
    }

    pub fn in_maintenance(&self) -> bool {
        !self.maintenance_msg.is_empty()
    }

    pub fn is_busy(&self) -> bool {
        self.task_id.is_some()
    }

    /// Whether the bot may be given a task (alive, healthy, not busy).
    pub fn available(&self) -> bool {
        !self.is_dead && !self.deleted && !self.quarantined() && !self.in_maintenance() && !self.is_busy()
    }
}

/// One entry of a bot's history.
#[derive(Debug, Clone, PartialEq)]
pub struct BotEvent {
    pub ts: Time,
    pub bot_id: String,
    pub event_type: String,
    pub message: String,
    pub dimensions: BotDimensions,
    pub state_json: String,
    pub external_ip: String,
    pub authenticated_as: String,
    pub version: String,
    pub quarantined: bool,
    pub maintenance_msg: String,
    /// Run id for task events, else empty.
    pub task_id: String,
    pub session_id: String,
}

impl BotEvent {
    /// An event snapshotting `bot` at `ts`.
    pub fn of(bot: &BotInfo, ts: Time, event_type: &str, message: &str) -> BotEvent {
        BotEvent {
            ts,
            bot_id: bot.bot_id.clone(),
            event_type: event_type.to_string(),
            message: message.to_string(),
            dimensions: bot.dimensions.clone(),
            state_json: bot.state_json.clone(),
            external_ip: bot.external_ip.clone(),
            authenticated_as: bot.authenticated_as.clone(),
            version: bot.version.clone(),
            quarantined: bot.quarantined(),
            maintenance_msg: bot.maintenance_msg.clone(),
            task_id: String::new(),
            session_id: bot.session_id.clone(),
        }
    }
}

/// A per-machine bot credential `msm_<id>_<secret>` bound to one host. Only
/// the SHA-256 of the secret is kept; the token itself is shown once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotToken {
    pub id: String,
    /// The host (bot id host part, or its FQDN) the token is valid for.
    pub host: String,
    /// Lowercase hex SHA-256 of the secret part.
    pub secret_sha256: String,
    pub created: Time,
    /// Who created it (free text: the operator's name or identity).
    pub created_by: String,
    /// When it was revoked; a revoked token never passes again.
    pub revoked: Option<Time>,
}
