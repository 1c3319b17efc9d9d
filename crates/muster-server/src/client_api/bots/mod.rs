//! swarming.v2.Bots (docs/client-api.md#bots-service), one file per RPC.

pub(crate) mod count_bots;
pub(crate) mod delete_bot;
pub(crate) mod get_bot;
pub(crate) mod get_bot_dimensions;
pub(crate) mod list_bot_events;
pub(crate) mod list_bot_tasks;
pub(crate) mod list_bots;
pub(crate) mod terminate_bot;

use muster_api::prpc::Status;

pub(crate) fn bot_id(s: &str) -> Result<&str, Status> {
    if s.is_empty() {
        return Err(Status::invalid_argument("bot_id is required"));
    }
    Ok(s)
}
