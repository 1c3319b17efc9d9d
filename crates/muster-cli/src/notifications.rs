//! `muster notifications list|retry`: the task notification outbox
//! (muster.v1.Notifications; server administrators only).

use crate::client::Client;
use crate::error::{CliError, RpcContext};
use crate::{format, Env};
use clap::{Args, Subcommand};
use muster_api::pb::muster::v1;
use std::io::Write;

const SERVICE: &str = "muster.v1.Notifications";

#[derive(Args, Debug, Clone, PartialEq, Eq)]
#[command(after_help = "Examples:
  muster notifications list
  muster notifications list --dead -S https://muster.example.com
  muster notifications retry 6a1b2c3d4e5f6010-3-9f86d081

Notifications are sent to the sinks of the server's notifications.toml when
a task that named a pubsub_topic changes state; see docs/notifications.md.")]
pub struct NotificationsArgs {
    #[command(subcommand)]
    pub action: NotificationsAction,
}

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum NotificationsAction {
    /// List notifications, newest first (pending, delivered and dead).
    #[command(after_help = "Examples:
  muster notifications list
  muster notifications list --dead --limit 20 --json")]
    List {
        #[command(flatten)]
        common: crate::CommonArgs,
        /// Only the dead ones (given up; retry them with `retry`).
        #[arg(long)]
        dead: bool,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: i32,
    },
    /// Send a dead notification again (same delivery id).
    #[command(after_help = "Examples:
  muster notifications retry 6a1b2c3d4e5f6010-3-9f86d081")]
    Retry {
        #[command(flatten)]
        common: crate::CommonArgs,
        /// The delivery id (from `list`).
        id: String,
    },
}

fn ts(t: &Option<muster_api::pb::Timestamp>) -> String {
    t.and_then(|t| t.to_datetime()).map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_else(|| "-".into())
}

pub async fn notifications(env: &Env, a: &NotificationsArgs, out: &mut dyn Write) -> Result<i32, CliError> {
    match &a.action {
        NotificationsAction::List { common, dead, limit } => {
            let client: Client = common.client(env)?;
            let req = v1::ListNotificationsRequest { dead: *dead, limit: *limit };
            let r: v1::ListNotificationsResponse =
                client.call(SERVICE, "List", &req).await.context(|| "listing notifications".to_string())?;
            if common.json {
                format::write_json(out, &format::snake(&r)?)?;
                return Ok(0);
            }
            if r.items.is_empty() {
                format::line(out, if *dead { "no dead notifications" } else { "no notifications" })?;
                return Ok(0);
            }
            let mut t = format::Table::new(&[
                "DELIVERY ID",
                "STATE",
                "TASK",
                "TASK STATE",
                "SINK",
                "ATTEMPTS",
                "CREATED",
                "LAST ERROR",
            ]);
            for n in &r.items {
                t.row(vec![
                    n.delivery_id.clone(),
                    n.state.clone(),
                    n.task_id.clone(),
                    n.task_state.clone(),
                    n.sink.clone(),
                    n.attempts.to_string(),
                    ts(&n.created_ts),
                    n.last_error.clone(),
                ]);
            }
            out.write_all(t.render().as_bytes()).map_err(|e| CliError::io("writing output", e))?;
            Ok(0)
        }
        NotificationsAction::Retry { common, id } => {
            let client: Client = common.client(env)?;
            let req = v1::RetryNotificationRequest { delivery_id: id.clone() };
            let r: v1::NotificationInfo =
                client.call(SERVICE, "Retry", &req).await.context(|| format!("retrying notification {id}"))?;
            if common.json {
                format::write_json(out, &format::snake(&r)?)?;
            } else {
                format::line(out, &format!("{}: {}", r.delivery_id, r.state))?;
            }
            Ok(0)
        }
    }
}
