//! The config trailer appended to the muster executable served at `/bot_code`
//! (docs/bot-protocol.md#bot-code).
//!
//! Layout at the very end of the file:
//! `<executable bytes> <config JSON> <u64 LE length of config JSON> "MUSTRCFG"`.
//! The bot's version is the SHA-256 of the whole served file, trailer included.

use serde::{Deserialize, Serialize};

/// The 8-byte magic that ends a trailer.
pub const MAGIC: &[u8; 8] = b"MUSTRCFG";

/// What the server tells a bot it serves.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BotConfig {
    /// Server URL, no trailing slash.
    pub server: String,
    /// Dimensions the bot adds to its own (informational: the server
    /// enforces its groups' dimensions whatever the bot reports).
    pub dimensions: std::collections::BTreeMap<String, Vec<String>>,
    /// Optional hook executable content (a script), run with JSON on stdin.
    pub hook_script: Option<String>,
    // No credential: the file is served to anyone. A `token` key written by
    // an older server is ignored when read.
}

/// Appends `cfg` as a trailer to `exe` (which must not already have one).
pub fn append(exe: &[u8], cfg: &BotConfig) -> Vec<u8> {
    let json = serde_json::to_vec(cfg).unwrap_or_default();
    let mut out = Vec::with_capacity(exe.len() + json.len() + 16);
    out.extend_from_slice(exe);
    out.extend_from_slice(&json);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(MAGIC);
    out
}

/// Splits a file into (executable part, trailer config) if it has a trailer.
pub fn split(file: &[u8]) -> (&[u8], Option<BotConfig>) {
    let n = file.len();
    if n < 16 || &file[n - 8..] != MAGIC {
        return (file, None);
    }
    let mut len_bytes = [0u8; 8];
    len_bytes.copy_from_slice(&file[n - 16..n - 8]);
    let len = u64::from_le_bytes(len_bytes) as usize;
    if len > n - 16 {
        return (file, None);
    }
    let start = n - 16 - len;
    match serde_json::from_slice::<BotConfig>(&file[start..n - 16]) {
        Ok(cfg) => (&file[..start], Some(cfg)),
        Err(_) => (file, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trailer_round_trips_and_strips() {
        let exe = b"\x7fELF fake executable".to_vec();
        let cfg = BotConfig { server: "http://127.0.0.1:1234".into(), ..Default::default() };
        let served = append(&exe, &cfg);
        let (base, got) = split(&served);
        assert_eq!(base, &exe[..]);
        assert_eq!(got, Some(cfg.clone()));
        // Re-appending to the stripped base gives the same bytes.
        assert_eq!(append(base, &cfg), served);
    }

    #[test]
    fn a_file_without_trailer_is_left_alone() {
        let (base, got) = split(b"just bytes MUSTRCF");
        assert_eq!(base, b"just bytes MUSTRCF");
        assert_eq!(got, None);
    }
}
