//! Operator verbs over muster's own services (muster.v1): `drain`,
//! `undrain`, `drains`, and `why` (why is this task pending?).

use crate::client::Client;
use crate::error::{CliError, RpcContext};
use crate::format;
use crate::Env;
use clap::Args;
use muster_api::pb::muster::v1;
use muster_api::pb::StringPair;
use std::io::Write;

/// What `drain` / `undrain` act on: exactly one of the three.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
#[group(required = true, multiple = false)]
pub struct DrainTargetArgs {
    /// One bot.
    #[arg(long = "bot", value_name = "BOT_ID")]
    pub bot: Option<String>,
    /// Every bot of a pool.
    #[arg(long, value_name = "NAME")]
    pub pool: Option<String>,
    /// Every bot with all these dimensions (repeatable; a value may be `a|b`).
    #[arg(long = "dimension", short = 'd', value_name = "KEY=VALUE")]
    pub dimensions: Vec<String>,
}

/// `muster drain`.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
#[command(after_help = "Examples:
  muster drain --bot bot-7 --reason 'disk replacement'
  muster drain --pool ci
  muster drain -d os=Linux -d gpu=nvidia

Drained bots finish the task they run and take no other until `muster
undrain` with the same target. Draining twice changes nothing; a target
that matches no known bot is an error (exit 4).")]
pub struct DrainArgs {
    #[command(flatten)]
    pub common: crate::CommonArgs,
    #[command(flatten)]
    pub target: DrainTargetArgs,
    /// Why (shown with the bots).
    #[arg(long, default_value = "")]
    pub reason: String,
}

/// `muster undrain`.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
#[command(after_help = "Examples:
  muster undrain --bot bot-7
  muster undrain --pool ci
  muster undrain -d os=Linux -d gpu=nvidia

The target must be given exactly as it was drained (`muster drains` lists them).")]
pub struct UndrainArgs {
    #[command(flatten)]
    pub common: crate::CommonArgs,
    #[command(flatten)]
    pub target: DrainTargetArgs,
}

/// `muster drains`.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
#[command(after_help = "Examples:
  muster drains
  muster drains -S http://127.0.0.1:8080")]
pub struct DrainsArgs {
    #[command(flatten)]
    pub common: crate::CommonArgs,
}

/// `muster why`.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
#[command(after_help = "Examples:
  muster why 6a1b2c3d4e5f6010
  muster why --json 6a1b2c3d4e5f6010

For each slice: the bots matching its dimensions (idle, busy, quarantined,
dead, drained), the dimension ruling out most bots when none matches, the
task's place in its queue, tasks ahead of it, and an estimated start from
the rate the matching bots took work over the last 10 minutes.")]
pub struct WhyArgs {
    #[command(flatten)]
    pub common: crate::CommonArgs,
    /// The task.
    #[arg(value_name = "TASK_ID")]
    pub task_id: String,
}

fn request(t: &DrainTargetArgs, reason: &str) -> Result<v1::DrainRequest, CliError> {
    let mut dimensions = Vec::new();
    for d in &t.dimensions {
        let (k, v) = d
            .split_once('=')
            .filter(|(k, v)| !k.is_empty() && !v.is_empty())
            .ok_or_else(|| CliError::usage(format!("--dimension {d:?}: expected KEY=VALUE")))?;
        dimensions.push(StringPair { key: k.to_string(), value: v.to_string() });
    }
    Ok(v1::DrainRequest {
        bot_id: t.bot.clone().unwrap_or_default(),
        pool: t.pool.clone().unwrap_or_default(),
        dimensions,
        reason: reason.to_string(),
    })
}

fn print_drain(out: &mut dyn Write, json: bool, r: &v1::DrainResponse, done: &str, noop: &str) -> Result<(), CliError> {
    if json {
        return format::write_json(out, &format::snake(r)?);
    }
    let what = r.drain.as_ref().map(|d| d.description.clone()).unwrap_or_default();
    let bots = match r.bots.len() {
        1 => "1 bot".to_string(),
        n => format!("{n} bots"),
    };
    if r.changed {
        format::line(out, &format!("{what}: {done} ({bots})"))
    } else {
        format::line(out, &format!("{what}: {noop} ({bots})"))
    }
}

/// Puts a target into maintenance.
pub async fn drain(client: &Client, _env: &Env, a: &DrainArgs, out: &mut dyn Write) -> Result<i32, CliError> {
    let req = request(&a.target, &a.reason)?;
    let r: v1::DrainResponse =
        client.call("muster.v1.Fleet", "Drain", &req).await.context(|| "draining".to_string())?;
    print_drain(out, a.common.json, &r, "drained", "already drained, nothing changed")?;
    Ok(0)
}

/// Lifts a drain.
pub async fn undrain(client: &Client, _env: &Env, a: &UndrainArgs, out: &mut dyn Write) -> Result<i32, CliError> {
    let req = request(&a.target, "")?;
    let r: v1::DrainResponse =
        client.call("muster.v1.Fleet", "Undrain", &req).await.context(|| "undraining".to_string())?;
    print_drain(out, a.common.json, &r, "undrained", "was not drained, nothing changed")?;
    Ok(0)
}

/// Lists drains.
pub async fn drains(client: &Client, _env: &Env, a: &DrainsArgs, out: &mut dyn Write) -> Result<i32, CliError> {
    let r: v1::ListDrainsResponse = client
        .call("muster.v1.Fleet", "ListDrains", &v1::ListDrainsRequest {})
        .await
        .context(|| "listing drains".to_string())?;
    if a.common.json {
        format::write_json(out, &format::snake(&r)?)?;
        return Ok(0);
    }
    if r.drains.is_empty() {
        format::line(out, "nothing is drained")?;
    }
    let mut t = format::Table::new(&["TARGET", "REASON", "BY", "SINCE"]);
    for d in &r.drains {
        let since = d.created_ts.and_then(|t| t.to_datetime()).map(|t| t.to_rfc3339()).unwrap_or_default();
        t.row(vec![d.description.clone(), d.reason.clone(), d.created_by.clone(), since]);
    }
    if !r.drains.is_empty() {
        out.write_all(t.render().as_bytes()).map_err(|e| CliError::io("writing output", e))?;
    }
    Ok(0)
}

/// Explains why a task is pending.
pub async fn why(client: &Client, env: &Env, a: &WhyArgs, out: &mut dyn Write) -> Result<i32, CliError> {
    let r = why_pending(client, &a.task_id).await?;
    if a.common.json {
        format::write_json(out, &format::snake(&r)?)?;
        return Ok(0);
    }
    print_why(out, env.clock.now(), &r)?;
    Ok(0)
}

/// The scheduler's explanation of a task's wait (muster.v1 WhyPending).
pub async fn why_pending(client: &Client, task_id: &str) -> Result<v1::WhyPendingResponse, CliError> {
    let req = v1::WhyPendingRequest { task_id: task_id.to_string() };
    client.call("muster.v1.Scheduler", "WhyPending", &req).await.context(|| format!("explaining task {task_id}"))
}

/// Prints a WhyPending answer for people, one fact per line.
pub fn print_why(out: &mut dyn Write, now: muster_core::Time, r: &v1::WhyPendingResponse) -> Result<(), CliError> {
    format::line(out, &format!("task {} is {}: {}", r.task_id, format::state_name(r.state), r.summary))?;
    for s in &r.slices {
        let dims: Vec<String> = s.dimensions.iter().map(|p| format!("{}={}", p.key, p.value)).collect();
        let mark = if s.active { " (waiting on this one)" } else { "" };
        format::line(out, &format!("slice {}{mark}: {}", s.index, dims.join(" ")))?;
        let c = s.bots.unwrap_or_default();
        format::line(
            out,
            &format!(
                "  matching bots: {} ({} idle, {} busy, {} quarantined, {} dead, {} drained)",
                c.matching, c.idle, c.busy, c.quarantined, c.dead, c.drained
            ),
        )?;
        format::line(out, &format!("  {}", s.summary))?;
        if s.active && s.queue_length > 0 {
            format::line(out, &format!("  position in its queue: {} of {}", s.queue_position, s.queue_length))?;
        }
        if s.active {
            format::line(out, &format!("  ahead of it: {} ({} of higher priority)", s.ahead, s.higher_priority_ahead))?;
            let eta = match s.estimated_start.as_ref().and_then(|t| t.to_datetime()) {
                Some(t) if t <= now => "now".to_string(),
                Some(t) => format!("in about {}", format::duration((t - now).num_milliseconds() as f64 / 1000.0)),
                None => "unknown (the matching bots started no task in the last 10 minutes)".to_string(),
            };
            format::line(
                out,
                &format!("  estimated start: {eta} ({:.1} tasks/min recently)", s.dispatches_per_minute),
            )?;
        }
    }
    Ok(())
}
