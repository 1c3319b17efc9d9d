//! swarming.v2.Swarming (docs/client-api.md#swarming-service).

pub(crate) mod get_details;
pub(crate) mod get_permissions;
pub(crate) mod get_token;
