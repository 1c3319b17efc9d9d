//! Bot verbs: `bots` (list, count, `bots show`), `bot`, `bot-tasks`,
//! `terminate`, `delete-bots`.

use crate::args::{self, CommonArgs, Env};
use crate::client::{collect_pages, Client};
use crate::error::{CliError, RpcContext};
use crate::format::{self, Style, Table};
use crate::tasks::{emit, state_query, task_table};
use clap::{Args, Subcommand};
use muster_api::pb;
use muster_core::Time;
use std::io::Write;
use std::time::Duration;

/// `muster bots`.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
#[command(after_help = "Examples:
  muster bots -d pool=default
  muster bots -d pool=default -d 'os=Linux|Mac' --bare
  muster bots -d pool=default --count
  muster bots --dead --json
  muster bots show bot-1")]
pub struct BotsArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Only bots with this dimension, key=value; `|` ORs values (repeatable, ANDed).
    #[arg(short = 'd', long = "dimension", value_name = "KEY=VALUE", value_parser = args::dimension)]
    pub dimensions: Vec<pb::StringPair>,
    /// Print the counts (all, busy, dead, quarantined, maintenance) instead.
    #[arg(long)]
    pub count: bool,
    /// Print only bot ids, one per line.
    #[arg(long)]
    pub bare: bool,
    /// Only dead bots.
    #[arg(long, conflicts_with = "alive")]
    pub dead: bool,
    /// Only live bots.
    #[arg(long)]
    pub alive: bool,
    /// Only busy bots.
    #[arg(long, conflicts_with = "idle")]
    pub busy: bool,
    /// Only idle bots.
    #[arg(long)]
    pub idle: bool,
    /// Only quarantined bots.
    #[arg(long)]
    pub quarantined: bool,
    /// Only bots in maintenance.
    #[arg(long)]
    pub maintenance: bool,
    /// Write the JSON output to this file (`-` = stdout).
    #[arg(long = "json-output", value_name = "PATH")]
    pub json_output: Option<String>,
    #[command(subcommand)]
    pub action: Option<BotsAction>,
}

/// Subcommands of `bots`.
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum BotsAction {
    /// Show one bot with its recent events and tasks.
    Show(BotShowArgs),
}

/// `muster bot <id>` / `muster bots show <id>`.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
#[command(after_help = "Examples:
  muster bot bot-1
  muster bots show bot-1 --events 50 --json")]
pub struct BotShowArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// The bot.
    #[arg(value_name = "BOT_ID")]
    pub bot_id: String,
    /// How many recent events to show.
    #[arg(long, default_value_t = 20)]
    pub events: u32,
    /// How many recent tasks to show.
    #[arg(long, default_value_t = 20)]
    pub tasks: u32,
}

fn tri(yes: bool, no: bool) -> i32 {
    if yes {
        pb::NullableBool::True as i32
    } else if no {
        pb::NullableBool::False as i32
    } else {
        pb::NullableBool::Null as i32
    }
}

/// Lists or counts bots, or shows one (`bots show`).
pub async fn bots(client: &Client, env: &Env, a: &BotsArgs, out: &mut dyn Write) -> Result<i32, CliError> {
    if let Some(BotsAction::Show(s)) = &a.action {
        return bot_show(client, env, s, out).await;
    }
    if a.count {
        let req = pb::BotsCountRequest { dimensions: a.dimensions.clone() };
        let c = client.count_bots(&req).await.context(|| "counting bots".to_string())?;
        let v = format::snake(&c)?;
        return emit(&a.common, a.json_output.as_deref(), out, &v, |out| {
            format::line(
                out,
                &format!(
                    "{} bots: {} busy, {} dead, {} quarantined, {} in maintenance",
                    c.count, c.busy, c.dead, c.quarantined, c.maintenance
                ),
            )
        });
    }
    let items = collect_pages(None, |limit, cursor| async move {
        let req = pb::BotsRequest {
            limit,
            cursor,
            dimensions: a.dimensions.clone(),
            quarantined: tri(a.quarantined, false),
            in_maintenance: tri(a.maintenance, false),
            is_dead: tri(a.dead, a.alive),
            is_busy: tri(a.busy, a.idle),
        };
        let r = client.list_bots(&req).await.context(|| "listing bots".to_string())?;
        Ok::<_, CliError>((r.items, r.cursor))
    })
    .await?;
    if a.bare {
        for b in &items {
            format::line(out, &b.bot_id)?;
        }
        if let Some(path) = a.json_output.as_deref().filter(|p| *p != "-") {
            format::write_json_file(path, out, &format::list_output(&items)?)?;
        }
        return Ok(0);
    }
    let v = format::list_output(&items)?;
    let style = Style { color: env.color };
    let now = env.now();
    emit(&a.common, a.json_output.as_deref(), out, &v, |out| {
        out.write_all(bot_table(&items, now, style).as_bytes()).map_err(|e| CliError::io("writing output", e))
    })
}

/// The human table of bots.
pub fn bot_table(items: &[pb::BotInfo], now: Time, style: Style) -> String {
    let mut t = Table::new(&["ID", "STATUS", "TASK", "LAST SEEN", "DIMENSIONS"]);
    for b in items {
        let status = format::bot_status(b);
        let status = match status {
            "idle" => style.good(status),
            "busy" => style.info(status),
            _ => style.bad(status),
        };
        t.row(vec![
            b.bot_id.clone(),
            status,
            if b.task_id.is_empty() { "-".to_string() } else { b.task_id.clone() },
            format::relative_ts(b.last_seen_ts.as_ref(), now),
            format::dims_text(&b.dimensions, &["pool", "os", "cpu"]),
        ]);
    }
    t.render()
}

/// Shows one bot, its recent events and tasks.
pub async fn bot_show(client: &Client, env: &Env, a: &BotShowArgs, out: &mut dyn Write) -> Result<i32, CliError> {
    let bot = client.get_bot(&a.bot_id).await.context(|| format!("getting bot {}", a.bot_id))?;
    let events = if a.events > 0 {
        let req =
            pb::BotEventsRequest { bot_id: a.bot_id.clone(), limit: a.events.min(1000) as i32, ..Default::default() };
        client.list_bot_events(&req).await.context(|| format!("listing events of bot {}", a.bot_id))?.items
    } else {
        Vec::new()
    };
    let tasks = if a.tasks > 0 {
        let req = pb::BotTasksRequest {
            bot_id: a.bot_id.clone(),
            limit: a.tasks.min(1000) as i32,
            state: pb::StateQuery::QueryAll as i32,
            ..Default::default()
        };
        client.list_bot_tasks(&req).await.context(|| format!("listing tasks of bot {}", a.bot_id))?.items
    } else {
        Vec::new()
    };
    let v = serde_json::json!({
        "bot": format::snake(&bot)?,
        "events": format::list_output(&events)?,
        "tasks": format::list_output(&tasks)?,
    });
    let style = Style { color: env.color };
    let now = env.now();
    emit(&a.common, None, out, &v, |out| {
        let text = bot_text(&bot, &events, &tasks, now, style);
        out.write_all(text.as_bytes()).map_err(|e| CliError::io("writing output", e))
    })
}

/// The human view of one bot.
pub fn bot_text(
    b: &pb::BotInfo,
    events: &[pb::BotEventResponse],
    tasks: &[pb::TaskResultResponse],
    now: Time,
    style: Style,
) -> String {
    let mut t = Table::default();
    t.row(vec!["Bot".into(), style.bold(&b.bot_id)]);
    t.row(vec!["Status".into(), format::bot_status(b).to_string()]);
    if !b.task_id.is_empty() {
        t.row(vec!["Task".into(), format!("{} ({})", b.task_id, b.task_name)]);
    }
    t.row(vec!["Last seen".into(), format::relative_ts(b.last_seen_ts.as_ref(), now)]);
    t.row(vec!["First seen".into(), format::relative_ts(b.first_seen_ts.as_ref(), now)]);
    if !b.maintenance_msg.is_empty() {
        t.row(vec!["Maintenance".into(), b.maintenance_msg.clone()]);
    }
    if !b.external_ip.is_empty() {
        t.row(vec!["IP".into(), b.external_ip.clone()]);
    }
    if !b.version.is_empty() {
        t.row(vec!["Version".into(), b.version.clone()]);
    }
    for d in &b.dimensions {
        t.row(vec![format!("  {}", d.key), d.value.join(" ")]);
    }
    let mut text = t.render();
    if !events.is_empty() {
        text.push_str(&format!("\n{}\n", style.bold("Events")));
        let mut t = Table::new(&["WHEN", "EVENT", "TASK", "MESSAGE"]);
        for e in events {
            t.row(vec![
                format::relative_ts(e.ts.as_ref(), now),
                e.event_type.clone(),
                if e.task_id.is_empty() { "-".into() } else { e.task_id.clone() },
                e.message.lines().next().unwrap_or("").to_string(),
            ]);
        }
        text.push_str(&t.render());
    }
    if !tasks.is_empty() {
        text.push_str(&format!("\n{}\n", style.bold("Tasks")));
        text.push_str(&task_table(tasks, now, style));
    }
    text
}

// ---------------------------------------------------------------------------
// bot-tasks
// ---------------------------------------------------------------------------

/// `muster bot-tasks`.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
#[command(after_help = "Examples:
  muster bot-tasks --id bot-1 --limit 20
  muster bot-tasks bot-1 --state completed_failure --json")]
pub struct BotTasksArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// The bot.
    #[arg(value_name = "BOT_ID", required_unless_present = "id")]
    pub bot_id: Option<String>,
    /// The bot (upstream spelling).
    #[arg(long, value_name = "BOT_ID", conflicts_with = "bot_id")]
    pub id: Option<String>,
    /// Maximum number of tasks.
    #[arg(long, default_value_t = 200)]
    pub limit: u32,
    /// State filter (as for `tasks`; pending-like states are rejected by the server).
    #[arg(long, default_value = "all", value_parser = state_query)]
    pub state: i32,
    /// Only tasks created at or after this time.
    #[arg(long, value_name = "TIME")]
    pub start: Option<String>,
    /// Write the JSON output to this file (`-` = stdout).
    #[arg(long = "json-output", value_name = "PATH")]
    pub json_output: Option<String>,
}

/// Lists the tasks a bot ran.
pub async fn bot_tasks(client: &Client, env: &Env, a: &BotTasksArgs, out: &mut dyn Write) -> Result<i32, CliError> {
    let bot_id = a.bot_id.clone().or_else(|| a.id.clone()).ok_or_else(|| CliError::usage("a bot id is required"))?;
    let start = a
        .start
        .as_deref()
        .map(|s| args::parse_time(s, env.now()).map(pb::Timestamp::from_datetime))
        .transpose()
        .map_err(CliError::Usage)?;
    let items = collect_pages(Some(a.limit), |limit, cursor| {
        let req =
            pb::BotTasksRequest { bot_id: bot_id.clone(), limit, cursor, start, state: a.state, ..Default::default() };
        let bot_id = &bot_id;
        async move {
            let r = client.list_bot_tasks(&req).await.context(|| format!("listing tasks of bot {bot_id}"))?;
            Ok::<_, CliError>((r.items, r.cursor))
        }
    })
    .await?;
    let v = format::list_output(&items)?;
    let style = Style { color: env.color };
    let now = env.now();
    emit(&a.common, a.json_output.as_deref(), out, &v, |out| {
        out.write_all(task_table(&items, now, style).as_bytes()).map_err(|e| CliError::io("writing output", e))
    })
}

// ---------------------------------------------------------------------------
// terminate
// ---------------------------------------------------------------------------

/// `muster terminate`.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
#[command(after_help = "Examples:
  muster terminate bot-1
  muster terminate --wait --reason 'disk swap' bot-1

With --wait, exits 9 unless the termination task COMPLETED.")]
pub struct TerminateArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Wait until the bot has shut down.
    #[arg(long)]
    pub wait: bool,
    /// Why (shown in the termination task's name).
    #[arg(long, default_value = "")]
    pub reason: String,
    /// The bot.
    #[arg(value_name = "BOT_ID")]
    pub bot_id: String,
}

/// Asks a bot to shut down gracefully.
pub async fn terminate(client: &Client, env: &Env, a: &TerminateArgs, out: &mut dyn Write) -> Result<i32, CliError> {
    let r = client.terminate_bot(&a.bot_id, &a.reason).await.context(|| format!("terminating bot {}", a.bot_id))?;
    if !a.common.json {
        format::line(out, &format!("Termination task {} for bot {}", r.task_id, a.bot_id))?;
    }
    let mut result = None;
    if a.wait {
        let progress =
            crate::progress::Progress::spinner(env.progress, &format!("waiting for bot {} to stop", a.bot_id));
        let mut waited = Duration::ZERO;
        loop {
            let res = client
                .get_result(&r.task_id, false)
                .await
                .context(|| format!("getting result of task {}", r.task_id))?;
            if format::is_final(res.state) {
                result = Some(res);
                break;
            }
            let d = crate::collect::poll_delay(waited);
            tokio::time::sleep(d).await;
            waited += d;
        }
        progress.finish();
    }
    if a.common.json {
        let mut v = format::snake(&r)?;
        if let (Some(res), serde_json::Value::Object(m)) = (&result, &mut v) {
            m.insert("result".into(), format::snake(res)?);
        }
        format::write_json(out, &v)?;
    }
    if let Some(res) = result {
        if res.state != pb::TaskState::Completed as i32 {
            return Err(CliError::Refused(format!(
                "termination task {} of bot {} ended {}",
                r.task_id,
                a.bot_id,
                format::state_name(res.state)
            )));
        }
        if !a.common.json {
            format::line(out, &format!("Bot {} terminated", a.bot_id))?;
        }
    }
    Ok(0)
}

// ---------------------------------------------------------------------------
// delete-bots
// ---------------------------------------------------------------------------

/// `muster delete-bots`.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
#[command(after_help = "Examples:
  muster delete-bots -f bot-1 bot-2

Without -f/--force, asks for confirmation (and refuses when stdin is not a terminal).")]
pub struct DeleteBotsArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Do not ask for confirmation.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// The bots.
    #[arg(value_name = "BOT_ID", required = true)]
    pub bot_ids: Vec<String>,
}

/// Forgets bots (their history is kept).
pub async fn delete_bots(client: &Client, env: &Env, a: &DeleteBotsArgs, out: &mut dyn Write) -> Result<i32, CliError> {
    if !a.force {
        if !env.interactive {
            return Err(CliError::usage("refusing to delete bots without --force when stdin is not a terminal"));
        }
        eprint!("Delete {} bot(s): {}? [y/N] ", a.bot_ids.len(), a.bot_ids.join(", "));
        let mut s = String::new();
        std::io::stdin().read_line(&mut s).map_err(|e| CliError::io("reading the answer", e))?;
        if !matches!(s.trim(), "y" | "Y" | "yes") {
            return Err(CliError::Refused("not deleting".to_string()));
        }
    }
    let mut deleted = Vec::new();
    for id in &a.bot_ids {
        let r = client.delete_bot(id).await.context(|| format!("deleting bot {id}"))?;
        if !r.deleted {
            return Err(CliError::Refused(format!("bot {id} was not deleted")));
        }
        deleted.push(id.clone());
        if !a.common.json {
            format::line(out, &format!("Deleted bot {id}"))?;
        }
    }
    if a.common.json {
        format::write_json(out, &serde_json::json!({ "deleted": deleted }))?;
    }
    Ok(0)
}
