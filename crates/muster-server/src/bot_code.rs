//! The bot code served to muster bots (DESIGN §6, issue #3).
//!
//! The served file is the muster executable with a config trailer appended
//! (muster_api::trailer): server URL, server-enforced dimensions, hook. Its
//! version is the SHA-256 of exactly those bytes.

use crate::config::ServerConfig;
use crate::error::StartError;
use bytes::Bytes;
use muster_api::trailer::{self, BotConfig};
use sha2::{Digest, Sha256};

#[derive(Clone)]
pub struct BotCode {
    /// The bytes served.
    pub bytes: Bytes,
    /// Lowercase hex SHA-256 of `bytes`.
    pub version: String,
    /// SHA-256 of the same executable without its trailer: a bot started from
    /// the very build the server serves (e.g. `muster dev`) is up to date too.
    pub base_version: String,
}

impl BotCode {
    /// Whether a bot reporting `version` runs the code this server serves.
    pub fn is_current(&self, version: &str) -> bool {
        version == self.version || version == self.base_version
    }
}

impl BotCode {
    pub fn load(cfg: &ServerConfig) -> Result<BotCode, StartError> {
        let path = match &cfg.bot_exe {
            Some(p) => p.clone(),
            None => {
                std::env::current_exe().map_err(|e| StartError::BotCode(format!("locating own executable: {e}")))?
            }
        };
        let exe = std::fs::read(&path).map_err(|e| StartError::BotCode(format!("reading {}: {e}", path.display())))?;
        let (base, _) = trailer::split(&exe);
        let bot_cfg = BotConfig {
            server: cfg.external_url.clone(),
            dimensions: cfg.bot_dimensions.clone(),
            hook_script: cfg.bot_hook_script.clone(),
            token: cfg.bot_auth.token.clone(),
        };
        let base_version = hex::encode(Sha256::digest(base));
        let bytes = trailer::append(base, &bot_cfg);
        let version = hex::encode(Sha256::digest(&bytes));
        Ok(BotCode { bytes: Bytes::from(bytes), version, base_version })
    }
}
