//! The bot code served to muster bots (docs/bot-protocol.md#bot-code).
//!
//! The served file is a muster executable with a config trailer appended
//! (muster_api::trailer): server URL, `--bot-dimension` values, the default
//! hook — nothing secret (the file is served to anyone; bots get their
//! credential separately, and their group's dimensions at handshake). Its
//! version is the SHA-256 of exactly those bytes. The server's own build is
//! served for its own platform; builds for other platforms come from a
//! directory of files named `muster-<os>-<arch>` (e.g. `muster-linux-aarch64`,
//! `muster-macos-aarch64`), each served with the same trailer.

use crate::config::ServerConfig;
use crate::error::StartError;
use bytes::Bytes;
use muster_api::trailer::{self, BotConfig};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The platform of this build, `<os>-<arch>` as Rust names them.
pub fn own_platform() -> String {
    format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH)
}

/// One platform's served executable.
#[derive(Clone)]
pub struct PlatformCode {
    /// The bytes served.
    pub bytes: Bytes,
    /// Lowercase hex SHA-256 of `bytes`.
    pub version: String,
    /// SHA-256 of the same executable without its trailer: a bot started from
    /// the very build the server serves (e.g. `muster dev`) is up to date too.
    pub base_version: String,
}

#[derive(Clone)]
pub struct BotCode {
    /// `<os>-<arch>` → code. Always has [`own_platform`].
    pub platforms: BTreeMap<String, PlatformCode>,
    /// The version of the server's own platform (GetDetails, handshake).
    pub version: String,
}

impl BotCode {
    pub fn load(cfg: &ServerConfig) -> Result<BotCode, StartError> {
        let bot_cfg = BotConfig {
            server: cfg.external_url.clone(),
            // The flags' forced dimensions (not secret; the server enforces them anyway).
            dimensions: cfg.bot_dimensions.clone(),
            hook_script: cfg.bot_hook_script.clone(),
        };
        let own_path = match &cfg.bot_exe {
            Some(p) => p.clone(),
            None => {
                std::env::current_exe().map_err(|e| StartError::BotCode(format!("locating own executable: {e}")))?
            }
        };
        let mut platforms = BTreeMap::new();
        if let Some(dir) = &cfg.bot_platform_dir {
            let entries =
                std::fs::read_dir(dir).map_err(|e| StartError::BotCode(format!("reading {}: {e}", dir.display())))?;
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().to_string();
                let Some(platform) = name.strip_prefix("muster-") else { continue };
                platforms.insert(platform.to_string(), build(&entry.path(), &bot_cfg)?);
            }
        }
        let own = build(&own_path, &bot_cfg)?;
        let version = own.version.clone();
        platforms.insert(own_platform(), own);
        Ok(BotCode { platforms, version })
    }

    /// The code for `platform` (None if this server has no build for it).
    pub fn for_platform(&self, platform: &str) -> Option<&PlatformCode> {
        self.platforms.get(platform)
    }

    /// The code whose served digest is `version`.
    pub fn by_version(&self, version: &str) -> Option<&PlatformCode> {
        self.platforms.values().find(|c| c.version == version)
    }

    /// The version a bot on `platform` reporting `version` must update to,
    /// or None when it is current (or no build exists for its platform).
    pub fn update_for(&self, platform: Option<&str>, version: &str) -> Option<String> {
        let code = self.for_platform(platform.unwrap_or(&own_platform()))?;
        (version != code.version && version != code.base_version).then(|| code.version.clone())
    }
}

fn build(path: &std::path::Path, bot_cfg: &BotConfig) -> Result<PlatformCode, StartError> {
    let exe = std::fs::read(path).map_err(|e| StartError::BotCode(format!("reading {}: {e}", path.display())))?;
    let (base, _) = trailer::split(&exe);
    let base_version = hex::encode(Sha256::digest(base));
    let bytes = trailer::append(base, bot_cfg);
    let version = hex::encode(Sha256::digest(&bytes));
    Ok(PlatformCode { bytes: Bytes::from(bytes), version, base_version })
}
