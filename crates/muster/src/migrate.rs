//! `muster migrate FROM TO`: copies a whole database (tasks with their
//! requests, results and output, bots, bot events) from one store to another,
//! e.g. SQLite to PostgreSQL for an operator who outgrows one node.

use anyhow::Context;
use clap::Args;
use muster_core::state::StateQuery;
use muster_store::{CommitOutcome, EventQuery, Store, TaskQuery, Txn, Write};
use std::path::Path;

/// Copy a whole muster database into another one.
///
/// Examples:
///   muster migrate sqlite://muster-data/muster.db postgres://muster@db.example/muster
///
/// Stop the servers using FROM first. Re-running is safe: tasks already in TO
/// are skipped, and so are the events of bots that already have events in TO.
/// NewTask idempotency keys (request_uuid) are not copied.
#[derive(Args, Debug, Clone)]
pub(crate) struct MigrateArgs {
    /// Source database: sqlite://PATH or postgres://...
    pub from: String,
    /// Destination database: sqlite://PATH or postgres://...
    pub to: String,
}

const PAGE: usize = 500;
/// Output is read and written in slices of this size.
const OUTPUT_SLICE: u64 = 4 * 1024 * 1024;

pub(crate) fn main(args: MigrateArgs) -> anyhow::Result<()> {
    crate::init_tracing("warn");
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async move {
        let unused = Path::new(".");
        let from = crate::server::open_store(Some(&args.from), unused).await.context("opening FROM")?;
        let to = crate::server::open_store(Some(&args.to), unused).await.context("opening TO")?;
        let (copied, skipped) = copy_tasks(from.as_ref(), to.as_ref()).await?;
        let (bots, events) = copy_bots(from.as_ref(), to.as_ref()).await?;
        let key = copy_session_key(&args.from, from.as_ref(), to.as_ref()).await?;
        println!(
            "migrated {copied} tasks ({skipped} already there), {bots} bots and {events} bot events{} into {}",
            if key { " and the bot session key" } else { "" },
            redact(&args.to)
        );
        Ok(())
    })
}

/// Copies the bot session key (unless TO has one), so that bots keep their
/// sessions when their server moves to TO. A SQLite database from before the
/// key moved into the database has it in `session.key` beside the file.
async fn copy_session_key(from_url: &str, from: &dyn Store, to: &dyn Store) -> anyhow::Result<bool> {
    let key = match from.get_meta(crate::server::SESSION_KEY).await.context("reading the session key")? {
        Some(k) => Some(k),
        None => match from_url.strip_prefix("sqlite://").and_then(|p| Path::new(p).parent()) {
            Some(dir) => crate::server::legacy_session_key(dir)?,
            None => None,
        },
    };
    let Some(key) = key else { return Ok(false) };
    crate::server::put_session_key(to, key).await?;
    Ok(true)
}

/// Hides a password in a database URL.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

fn bar(len: u64, what: &str) -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::new(len);
    pb.set_style(
        indicatif::ProgressStyle::with_template("{msg:>8} [{bar:40}] {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    pb.set_message(what.to_string());
    pb
}

async fn copy_tasks(from: &dyn Store, to: &dyn Store) -> anyhow::Result<(u64, u64)> {
    let all = TaskQuery { state: StateQuery::All, ..Default::default() };
    let total = from.count_results(&all).await.context("counting tasks")?;
    let pb = bar(total, "tasks");
    let (mut copied, mut skipped) = (0u64, 0u64);
    let mut cursor = None;
    loop {
        let q = TaskQuery { state: StateQuery::All, limit: PAGE, cursor: cursor.clone(), ..Default::default() };
        let page = from.list_requests(&q).await.context("listing tasks")?;
        let ids: Vec<_> = page.items.iter().map(|r| r.id).collect();
        let results = from.get_results(&ids).await.context("reading results")?;
        for (request, result) in page.items.into_iter().zip(results) {
            let Some(result) = result else { continue };
            let id = request.id;
            let mut txn = Txn::new().with(Write::InsertTask { request: Box::new(request), result: Box::new(result) });
            let mut offset = 0u64;
            loop {
                let data = from.read_output(id, offset, OUTPUT_SLICE).await.context("reading output")?;
                let n = data.len() as u64;
                if n == 0 {
                    break;
                }
                txn.push(Write::WriteOutput { task: id, offset, data });
                offset += n;
                if n < OUTPUT_SLICE {
                    break;
                }
            }
            match to.commit(txn).await.with_context(|| format!("writing task {id}"))? {
                CommitOutcome::Committed => copied += 1,
                CommitOutcome::Conflict { .. } => skipped += 1,
            }
            pb.inc(1);
        }
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    pb.finish_and_clear();
    Ok((copied, skipped))
}

async fn copy_bots(from: &dyn Store, to: &dyn Store) -> anyhow::Result<(u64, u64)> {
    let bots = from.load_bots().await.context("reading bots")?;
    let pb = bar(bots.len() as u64, "bots");
    let mut events = 0u64;
    for bot in &bots {
        // Events have no identity: copy a bot's history only into a bot without one.
        let probe = EventQuery { bot_id: bot.bot_id.clone(), limit: 1, ..Default::default() };
        let already = !to.list_bot_events(&probe).await.context("reading events")?.items.is_empty();
        let mut txn = Txn::new().with(Write::PutBot(Box::new(bot.clone())));
        if !already {
            let mut history = Vec::new();
            let mut cursor = None;
            loop {
                let q = EventQuery {
                    bot_id: bot.bot_id.clone(),
                    limit: PAGE,
                    cursor: cursor.clone(),
                    ..Default::default()
                };
                let page = from.list_bot_events(&q).await.context("reading events")?;
                history.extend(page.items);
                match page.cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            // Listed newest first; append oldest first so the order is kept.
            for e in history.into_iter().rev() {
                txn.push(Write::AppendEvent(Box::new(e)));
                events += 1;
            }
        }
        to.commit(txn).await.with_context(|| format!("writing bot {}", bot.bot_id))?;
        pb.inc(1);
    }
    pb.finish_and_clear();
    Ok((bots.len() as u64, events))
}
