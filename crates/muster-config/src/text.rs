//! Upstream text-format config files → generated types.
//!
//! The file is parsed against the descriptor of muster's own schema copy
//! (prost-reflect's text format: comments, `[a, b]` lists, `<…>` messages,
//! adjacent string concatenation, enum names or numbers), then transcoded
//! into the prost type. Unknown fields and a singular field given twice are
//! errors, placed at `file:line:col`.

use crate::error::ConfigError;
use crate::pb;
use prost_reflect::{DescriptorPool, DynamicMessage};
use std::sync::OnceLock;

fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        #[allow(clippy::expect_used)]
        DescriptorPool::decode(pb::DESCRIPTOR_SET).expect("embedded descriptor set is valid (built by build.rs)")
    })
}

/// A config message type with its fully qualified protobuf name.
pub trait ConfigMessage: prost::Message + Default {
    const NAME: &'static str;
}

impl ConfigMessage for pb::PoolsCfg {
    const NAME: &'static str = "swarming.config.PoolsCfg";
}
impl ConfigMessage for pb::SettingsCfg {
    const NAME: &'static str = "swarming.config.SettingsCfg";
}
impl ConfigMessage for pb::BotsCfg {
    const NAME: &'static str = "swarming.config.BotsCfg";
}
impl ConfigMessage for pb::RealmsCfg {
    const NAME: &'static str = "auth_service.RealmsCfg";
}
impl ConfigMessage for pb::scheduler_config::ProjectConfig {
    const NAME: &'static str = "scheduler.config.ProjectConfig";
}
impl ConfigMessage for pb::IpAllowlistConfig {
    const NAME: &'static str = "auth.configs.IPAllowlistConfig";
}

/// Parses `text` (the content of `file`, used in error messages) as `T`.
pub fn parse<T: ConfigMessage>(file: &str, text: &str) -> Result<T, ConfigError> {
    let desc = pool()
        .get_message_by_name(T::NAME)
        .ok_or_else(|| ConfigError::file(file, format!("internal: no schema for {}", T::NAME)))?;
    let msg = DynamicMessage::parse_text_format(desc, text).map_err(|e| parse_error(file, text, &e))?;
    msg.transcode_to::<T>().map_err(|e| ConfigError::file(file, format!("internal: {e}")))
}

/// Reads and parses a file.
pub fn parse_file<T: ConfigMessage>(path: &std::path::Path) -> Result<T, ConfigError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::file(&name, format!("cannot read: {e}")))?;
    parse(&name, &text)
}

fn parse_error(file: &str, text: &str, e: &prost_reflect::text_format::ParseError) -> ConfigError {
    use miette::Diagnostic;
    let offset = e.labels().and_then(|mut l| l.next()).map(|l| l.offset());
    // Errors without a span are about the end of the input.
    ConfigError::at(file, text, offset.unwrap_or(text.len()), e.to_string())
}
