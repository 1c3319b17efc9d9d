//! muster-config: the configuration directory, parsed and validated.
//!
//! Owns: muster's own `.proto` copies of the upstream schemas (`pb`), the
//! text-format loader with `file:line:col` errors ([`text`]), `access.toml`
//! ([`access_toml`]), cross-file validation and the immutable
//! [`Snapshot`] with its hot-reloading holder ([`reload`]).
//! Must not: decide who may do what (muster-access), talk HTTP or SQL.
//!
//! The files and their meaning: `docs/access-control.md`.

pub mod access_toml;
pub mod bots;
pub mod error;
pub mod notifications_toml;
pub mod reload;
pub mod roles;
pub mod snapshot;
pub mod text;

pub use error::{ConfigError, Errors};
pub use reload::ConfigHolder;
pub use snapshot::{load_dir, Snapshot};

/// Generated types of the config schemas.
#[allow(clippy::large_enum_variant, clippy::doc_lazy_continuation, clippy::enum_variant_names)]
pub mod pb {
    /// `swarming.config`: settings.cfg, pools.cfg, bots.cfg.
    pub mod swarming_config {
        include!(concat!(env!("OUT_DIR"), "/swarming.config.rs"));
    }
    /// `auth_service`: realms.cfg.
    pub mod auth_service {
        include!(concat!(env!("OUT_DIR"), "/auth_service.rs"));
    }
    /// `auth.configs`: ip_allowlist.cfg.
    pub mod auth_configs {
        include!(concat!(env!("OUT_DIR"), "/auth.configs.rs"));
    }
    /// `scheduler.config`: LUCI Scheduler project configs.
    pub mod scheduler_config {
        include!(concat!(env!("OUT_DIR"), "/scheduler.config.rs"));
    }
    pub use auth_configs::IpAllowlistConfig;
    pub use auth_service::RealmsCfg;
    pub use swarming_config::{BotsCfg, PoolsCfg, SettingsCfg};

    /// Encoded `FileDescriptorSet` of all config schemas.
    pub const DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/config_descriptor.bin"));
}
