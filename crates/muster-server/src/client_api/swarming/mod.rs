//! swarming.v2.Swarming (client spec §5.1).

pub(crate) mod get_details;
pub(crate) mod get_permissions;
pub(crate) mod get_token;
