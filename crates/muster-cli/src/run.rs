//! `muster run`: trigger a task, stream its output live, exit with its exit
//! code.
//!
//! Owns: the follow loop (GetStdout from the last offset every
//! [`POLL_INTERVAL`] until the task is final, then a final drain), Ctrl-C
//! handling (ask on a terminal; otherwise cancel with kill_running and exit
//! 130) and the mapping of final states to exit codes ([`task_exit_code`]).

use crate::args::{self, CommonArgs, Env, TaskArgs};
use crate::client::{Client, STDOUT_CHUNK};
use crate::collect::{self, Collected};
use crate::error::{exit, CliError, RpcContext};
use crate::format;
use crate::progress::Progress;
use clap::Args;
use muster_api::pb;
use std::io::Write;
use std::time::Duration;

/// How often the progress line of a pending task asks the server how many
/// bots match it.
const PENDING_DETAIL_EVERY: Duration = Duration::from_secs(3);

/// The dimensions of a task's first slice (what a pending task waits on
/// unless it fell back to a later slice).
fn first_slice_dims(q: &pb::TaskRequestResponse) -> Vec<pb::StringPair> {
    q.task_slices.first().and_then(|s| s.properties.as_ref()).map(|p| p.dimensions.clone()).unwrap_or_default()
}

/// The pause between two GetStdout calls while following a task.
pub const POLL_INTERVAL: Duration = Duration::from_millis(700);

/// `muster run`.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
#[command(after_help = "Triggers a task, prints its output as it runs and exits with the task's
exit code. When the task does not COMPLETE, a one-line reason goes to stderr
and the exit code is:
  124  TIMED_OUT     (hard or I/O timeout)
   91  EXPIRED       (no bot picked it up in time)
   92  NO_RESOURCE   (no bot can run it)
   93  BOT_DIED
   94  CANCELED
   95  KILLED
   96  CLIENT_ERROR  (the bot could not set it up)
  130  interrupted by Ctrl-C (the task is canceled)
A task killed by signal N exits 128+N. muster's own errors use 2..10
(see `muster --help`).

Ctrl-C on a terminal asks whether to cancel the task; otherwise the task is
canceled (kill_running) and run exits 130.

Examples:
  muster run -S localhost:8080 -d pool=default -- echo hello
  muster run -d pool=default -d os=Linux --hard-timeout 60 -- sh -c 'make test'")]
pub struct RunArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub task: TaskArgs,
    /// Write {\"tasks\": [TaskRequestMetadataResponse]} to this file once triggered.
    #[arg(long = "json-output", visible_alias = "dump-json", value_name = "PATH")]
    pub json_output: Option<String>,
}

/// The process exit code for a final task result (see [`RunArgs`] help).
pub fn task_exit_code(r: &pb::TaskResultResponse) -> i32 {
    use pb::TaskState as S;
    match S::try_from(r.state) {
        Ok(S::Completed) => match r.exit_code {
            c @ 0..=255 => c as i32,
            c @ -64..=-1 => 128 + (-c) as i32,
            _ => 1,
        },
        Ok(S::TimedOut) => exit::TASK_TIMED_OUT,
        Ok(S::Expired) => exit::TASK_EXPIRED,
        Ok(S::NoResource) => exit::TASK_NO_RESOURCE,
        Ok(S::BotDied) => exit::TASK_BOT_DIED,
        Ok(S::Canceled) => exit::TASK_CANCELED,
        Ok(S::Killed) => exit::TASK_KILLED,
        Ok(S::ClientError) => exit::TASK_CLIENT_ERROR,
        _ => exit::OTHER,
    }
}

/// The one-line reason for a task that did not COMPLETE; `None` if it did.
pub fn final_reason(r: &pb::TaskResultResponse) -> Option<String> {
    use pb::TaskState as S;
    let why = match S::try_from(r.state).ok()? {
        S::Completed | S::Pending | S::Running | S::Invalid => return None,
        S::TimedOut => "it ran past its hard or I/O timeout",
        S::Expired => "no bot picked it up before it expired",
        S::NoResource => "no bot can run it (no live bot matches its dimensions)",
        S::BotDied => "the bot died while running it",
        S::Canceled => "it was canceled before it started",
        S::Killed => "it was killed while running",
        S::ClientError => "the bot could not set it up",
    };
    Some(format!("task {} ended {}: {why}", r.task_id, format::state_name(r.state)))
}

/// What the bot said when a run ended abnormally (BOT_DIED, CLIENT_ERROR,
/// KILLED): the message of its newest event about this run, if any. Best
/// effort: None when the server cannot tell.
pub async fn bot_message(client: &Client, r: &pb::TaskResultResponse) -> Option<String> {
    use pb::TaskState as S;
    if r.bot_id.is_empty() || r.run_id.is_empty() {
        return None;
    }
    if !matches!(S::try_from(r.state).ok()?, S::BotDied | S::ClientError | S::Killed) {
        return None;
    }
    let req = pb::BotEventsRequest { bot_id: r.bot_id.clone(), limit: 50, ..Default::default() };
    let events = client.list_bot_events(&req).await.ok()?;
    events.items.into_iter().find(|e| e.task_id == r.run_id && !e.message.trim().is_empty()).map(|e| e.message)
}

/// What a pending task is waiting for, for the progress line: how many live
/// bots match its dimensions and how many of them are busy.
pub async fn pending_detail(client: &Client, dims: &[pb::StringPair]) -> Option<String> {
    if dims.is_empty() {
        return None;
    }
    let c = client.count_bots(&pb::BotsCountRequest { dimensions: dims.to_vec() }).await.ok()?;
    let live = (c.count - c.dead).max(0);
    let ready = (live - c.busy - c.quarantined - c.maintenance).max(0);
    Some(match (live, ready) {
        (0, _) => "no live bot matches its dimensions".to_string(),
        (1, 0) => "1 matching bot, busy".to_string(),
        (2, 0) => "2 matching bots, both busy".to_string(),
        (n, 0) => format!("{n} matching bots, all busy"),
        (n, r) => format!("{n} matching bots, {r} idle"),
    })
}

/// Triggers and follows a task. Returns the exit code to use.
pub async fn run(client: &Client, env: &Env, a: &RunArgs, out: &mut dyn Write) -> Result<i32, CliError> {
    let req = args::new_task_request(&a.task, env, &client.servers().join(","), &args::new_request_uuid())?;
    let meta = client.new_task(&req).await.context(|| format!("triggering task {:?}", req.name))?;
    if let Some(path) = &a.json_output {
        format::write_json_file(path, out, &format::tasks_output(std::slice::from_ref(&meta))?)?;
    }
    eprintln!("muster: triggered task {} ({})", meta.task_id, client.task_url(&meta.task_id));
    follow(client, env, &meta.task_id, a.common.json, out).await
}

enum Interrupt {
    /// Keep following.
    Continue,
    /// The task was canceled; follow to the end then exit 130.
    Canceled,
    /// Exit 130 now.
    Exit,
}

async fn ask_cancel(client: &Client, env: &Env, task_id: &str, progress: &Progress) -> Result<Interrupt, CliError> {
    if env.interactive {
        progress.suspend(|| eprint!("\nCancel task {task_id}? [y/N] "));
        let answer = tokio::task::spawn_blocking(|| {
            let mut s = String::new();
            std::io::stdin().read_line(&mut s).map(|_| s)
        })
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(Interrupt::Continue);
        }
        client.cancel_task(task_id, true).await.context(|| format!("canceling task {task_id}"))?;
        progress.suspend(|| eprintln!("muster: canceling task {task_id}"));
        Ok(Interrupt::Canceled)
    } else {
        client.cancel_task(task_id, true).await.context(|| format!("canceling task {task_id}"))?;
        eprintln!("muster: interrupted; canceled task {task_id}");
        Ok(Interrupt::Exit)
    }
}

/// Follows a triggered task: prints new output as it arrives (unless
/// `json`), waits until final, and returns [`task_exit_code`] (130 if the
/// user canceled it). With `json` the output is not streamed; the collect
/// summary `{"<id>": {"results", "output"}}` is printed at the end.
pub async fn follow(
    client: &Client,
    env: &Env,
    task_id: &str,
    json: bool,
    out: &mut dyn Write,
) -> Result<i32, CliError> {
    let progress = Progress::spinner(env.progress, &format!("{task_id} PENDING"));
    // Ctrl-C presses are queued so none is lost while a call is in flight.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let listener = tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            if tx.send(()).is_err() {
                break;
            }
        }
    });
    let res = follow_loop(client, env, task_id, json, out, &progress, &mut rx).await;
    listener.abort();
    progress.finish();
    res
}

async fn follow_loop(
    client: &Client,
    env: &Env,
    task_id: &str,
    json: bool,
    out: &mut dyn Write,
    progress: &Progress,
    interrupts: &mut tokio::sync::mpsc::UnboundedReceiver<()>,
) -> Result<i32, CliError> {
    let mut offset: i64 = 0;
    let mut canceled = false;
    // While pending, what the task waits for (refreshed every few seconds).
    let mut dims: Option<Vec<pb::StringPair>> = None;
    let mut detail_at: Option<std::time::Instant> = None;
    let mut detail = String::new();
    loop {
        let r = client.get_stdout(task_id, offset).await.context(|| format!("getting output of task {task_id}"))?;
        let n = r.output.len() as i64;
        if n > 0 && !json {
            progress.suspend(|| format::write_bytes(out, &r.output))?;
        }
        offset += n;
        if n >= STDOUT_CHUNK {
            continue;
        }
        if format::is_final(r.state) {
            break;
        }
        if progress.is_visible() && r.state == pb::TaskState::Pending as i32 {
            if detail_at.is_none_or(|t| t.elapsed() >= PENDING_DETAIL_EVERY) {
                detail_at = Some(std::time::Instant::now());
                if dims.is_none() {
                    dims = client.get_request(task_id).await.ok().map(|q| first_slice_dims(&q));
                }
                if let Some(d) = &dims {
                    detail = pending_detail(client, d).await.unwrap_or_default();
                }
            }
        } else {
            detail.clear();
        }
        let state = format::state_name(r.state);
        progress.set_message(&if detail.is_empty() {
            format!("{task_id} {state}")
        } else {
            format!("{task_id} {state}: {detail}")
        });
        tokio::select! {
            () = tokio::time::sleep(POLL_INTERVAL) => {}
            Some(()) = interrupts.recv() => {
                if canceled {
                    return Ok(exit::INTERRUPTED);
                }
                match ask_cancel(client, env, task_id, progress).await? {
                    Interrupt::Continue => {}
                    Interrupt::Canceled => canceled = true,
                    Interrupt::Exit => return Ok(exit::INTERRUPTED),
                }
            }
        }
    }
    // The state was read after the output: drain what was written meanwhile.
    loop {
        let r = client.get_stdout(task_id, offset).await.context(|| format!("getting output of task {task_id}"))?;
        if r.output.is_empty() {
            break;
        }
        if !json {
            progress.suspend(|| format::write_bytes(out, &r.output))?;
        }
        offset += r.output.len() as i64;
    }
    progress.finish();
    let result = client.get_result(task_id, false).await.context(|| format!("getting result of task {task_id}"))?;
    if json {
        let output = client.get_all_stdout(task_id).await.context(|| format!("getting output of task {task_id}"))?;
        let c =
            Collected { task_id: task_id.to_string(), result: Some(result.clone()), output: Some(output), error: None };
        format::write_json(out, &collect::summary_json(&[c])?)?;
    }
    if let Some(reason) = final_reason(&result) {
        match bot_message(client, &result).await {
            Some(said) => eprintln!("muster: {reason}; the bot {} said: {said}", result.bot_id),
            None => eprintln!("muster: {reason}"),
        }
    }
    if canceled {
        return Ok(exit::INTERRUPTED);
    }
    Ok(task_exit_code(&result))
}
