//! The `swarming` personality: muster behaving exactly like luci-go's
//! `swarming` CLI, so scripts written for it run unchanged.
//!
//! Active when the binary is started as `swarming` (a link made by
//! `muster install-swarming-alias DIR`) or as `muster swarming <verb> ...`.
//! Differences from muster's own verbs, all on purpose:
//! - flags are parsed like Go's `flag` package ([`flags`]): `-name value`,
//!   `-name=value`, `-wait=false`; parsing stops at the first non-flag word;
//! - defaults are upstream's: `collect` prints nothing unless
//!   `-task-output-stdout` asks; `tasks`, `bots`, `bot-tasks`, `request-show`
//!   and `spawn-tasks` write JSON to stdout; `-timeout` is a Go duration;
//! - exit codes: 0 success, 1 any error, 2 a flag error (a task that failed
//!   on its bot is not an error of `collect`; a collect timeout exits 0 with
//!   the summary written);
//! - JSON files use the original proto field names (snake_case).
//!
//! What muster lacks answers clearly: CAS downloads (`collect -output-dir`
//! of a task with CAS outputs, `reproduce` of a task with a CAS input) say
//! "not supported yet"; `login`/`logout`/`whoami` point at muster's tokens.
//!
//! Layout: one file per verb; [`base`] holds the common flags, log and exit
//! codes; [`output`] the JSON writer.

pub mod base;
pub mod flags;
pub mod output;

mod bot_tasks;
mod bots;
mod cancel;
mod cancel_tasks;
mod collect;
mod delete_bots;
mod reproduce;
mod request_show;
mod spawn_tasks;
mod tasks;
mod terminate;
mod trigger;

use crate::args::Env;
use base::{Ctx, Features, Level, EXIT_ERROR, EXIT_USAGE};
use flags::{FlagSet, ParseError};
use std::io::{BufRead, Write};

/// The version the upstream CLI reports; muster's own follows.
pub const UPSTREAM_VERSION: &str = "swarming 0.5.3";

/// One verb: its names, help and standard behaviours.
struct Verb {
    name: &'static str,
    usage_line: &'static str,
    short: &'static str,
    long: &'static str,
    features: Features,
    register: fn(&mut FlagSet),
}

/// The verbs in upstream's order (sections Tasks, Bots).
fn verbs() -> Vec<Verb> {
    vec![
        cancel::VERB,
        cancel_tasks::VERB,
        collect::VERB,
        reproduce::VERB,
        request_show::VERB,
        spawn_tasks::VERB,
        tasks::VERB,
        trigger::VERB,
        bots::VERB,
        delete_bots::VERB,
        terminate::VERB,
        bot_tasks::VERB,
    ]
}

/// Other commands shown in the overview.
const OTHER: &[(&str, &str)] = &[
    ("help", "prints help about a command"),
    ("whoami", "prints an email address associated with currently cached token"),
    ("login", "performs interactive login flow"),
    ("logout", "removes cached credentials"),
    ("version", "prints version of the tool"),
];

/// The overview `swarming help` prints.
pub fn usage(prog: &str) -> String {
    let mut s = format!(
        "Client tool to access a swarming server (muster's swarming personality).\n\nUsage:  {prog} [command] [arguments]\n\nCommands:\n"
    );
    let vs = verbs();
    let width = vs.iter().map(|v| v.name.len()).chain(OTHER.iter().map(|o| o.0.len())).max().unwrap_or(0);
    let mut section = |title: &str, items: Vec<(&str, &str)>| {
        s.push_str(&format!("  {title}\n"));
        for (n, d) in items {
            s.push_str(&format!("  {n:width$}  {d}\n"));
        }
        s.push('\n');
    };
    section("Tasks", vs[..8].iter().map(|v| (v.name, v.short)).collect());
    section("Bots", vs[8..].iter().map(|v| (v.name, v.short)).collect());
    section("Other", OTHER.to_vec());
    s.push_str(
        "Environment Variables:\n  SWARMING_SERVER  URL or a hostname of a Swarming server to use by default when omitting -server or -S flag\n  USER             used as \"user\" field in spawned Swarming tasks\n  MUSTER_TOKEN     muster API token sent as the bearer token (else muster's credentials file)\n\n",
    );
    s.push_str(&format!("Use \"{prog} help [command]\" for more information about a command.\n\n"));
    s
}

/// The verb `name` names: exact, a unique prefix, a unique case-insensitive
/// prefix, or the one closest by edit distance (≤ 3, unambiguous) — as
/// upstream's command lookup.
fn find_verb(name: &str) -> Option<Verb> {
    let all = verbs();
    let names: Vec<&'static str> = all.iter().map(|v| v.name).collect();
    let pick = |n: &str| verbs().into_iter().find(|v| v.name == n);
    if names.contains(&name) {
        return pick(name);
    }
    let pre: Vec<_> = names.iter().filter(|n| n.starts_with(name)).collect();
    if pre.len() == 1 {
        return pick(pre[0]);
    }
    let low = name.to_lowercase();
    let pre: Vec<_> = names.iter().filter(|n| n.to_lowercase().starts_with(&low)).collect();
    if pre.len() == 1 {
        return pick(pre[0]);
    }
    let mut dists: Vec<(usize, &str)> = names.iter().map(|n| (levenshtein(n, name), *n)).collect();
    dists.sort();
    let (best, second) = (dists.first()?, dists.get(1).map_or(1000, |d| d.0));
    if best.0 > 3 || second - best.0 < 3 {
        return None;
    }
    pick(best.1)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn verb_flags(v: &Verb) -> FlagSet {
    let mut fs = FlagSet::default();
    base::register_common(&mut fs, &v.features);
    (v.register)(&mut fs);
    fs
}

fn verb_help(prog: &str, v: &Verb) -> String {
    format!("{}\nusage:  {prog} {}\n{}", v.long.trim(), v.usage_line, verb_flags(v).defaults_text())
}

/// Runs the personality on the real process: `argv[0]` is the program name
/// as shown in messages. Returns the exit code.
pub fn main(argv: Vec<String>) -> i32 {
    let env = Env::from_process();
    let token = std::env::var("MUSTER_TOKEN").ok();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("swarming: starting the async runtime: {e}");
            return EXIT_ERROR;
        }
    };
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let stdin = std::io::stdin();
    let (mut out, mut err, mut input) = (stdout.lock(), stderr.lock(), stdin.lock());
    let code = rt.block_on(run(&argv, &env, token.as_deref(), &mut out, &mut err, &mut input));
    let _ = out.flush();
    code
}

/// Runs one command line (`argv[0]` = program name) with this environment
/// and streams; returns the exit code.
pub async fn run(
    argv: &[String],
    env: &Env,
    token: Option<&str>,
    out: &mut dyn Write,
    err: &mut dyn Write,
    stdin: &mut dyn BufRead,
) -> i32 {
    let prog = argv
        .first()
        .map(|p| std::path::Path::new(p).file_name().map_or_else(|| p.clone(), |f| f.to_string_lossy().into_owned()));
    let prog = prog.unwrap_or_else(|| "swarming".to_string());
    let args = argv.get(1..).unwrap_or_default();
    // Flags before the verb: only -h/-help exist.
    let mut i = 0;
    if let Some(a) = args.first().filter(|a| a.starts_with('-') && a.as_str() != "-") {
        if a == "--" {
            i = 1;
        } else {
            let name = a.trim_start_matches('-');
            if name == "h" || name == "help" {
                let _ = write!(err, "{}", usage(&prog));
                return 0;
            }
            let _ = write!(err, "flag provided but not defined: {a}\n{}", usage(&prog));
            return EXIT_USAGE;
        }
    }
    let args = &args[i..];
    let Some(verb_name) = args.first() else {
        let _ = write!(err, "{}", usage(&prog));
        return EXIT_USAGE;
    };
    let rest = &args[1..];
    match verb_name.as_str() {
        "help" => {
            let target = rest.iter().find(|a| !a.starts_with('-'));
            match target {
                None => {
                    let _ = write!(out, "{}", usage(&prog));
                    return 0;
                }
                Some(t) => match find_verb(t) {
                    Some(v) => {
                        let _ = write!(out, "{}", verb_help(&prog, &v));
                        return 0;
                    }
                    None => {
                        let _ = writeln!(err, "{prog}: unknown command {t:?}");
                        return EXIT_USAGE;
                    }
                },
            }
        }
        "version" => {
            let _ = writeln!(out, "{UPSTREAM_VERSION}\nmuster {}", env!("CARGO_PKG_VERSION"));
            return 0;
        }
        "whoami" | "login" | "logout" => {
            let _ = writeln!(
                err,
                "{prog}: {verb_name} is not supported by muster: muster authenticates with its own API tokens (set MUSTER_TOKEN, or run `muster login`)"
            );
            return EXIT_ERROR;
        }
        _ => {}
    }
    let Some(verb) = find_verb(verb_name) else {
        let _ = write!(err, "{prog}: unknown command `{verb_name}`\n\nRun '{prog} help' for usage.\n");
        return EXIT_USAGE;
    };
    let mut fs = verb_flags(&verb);
    let positional = match fs.parse(rest) {
        Ok(p) => p,
        Err(ParseError::Help) => {
            let _ = write!(err, "{}", verb_help(&prog, &verb));
            return EXIT_USAGE;
        }
        Err(ParseError::Bad(m)) => {
            let _ = write!(err, "{m}\n{}", verb_help(&prog, &verb));
            return EXIT_USAGE;
        }
    };
    if let Err(m) = base::check_args(&verb.features, &positional) {
        let _ = writeln!(err, "{prog}: {m}");
        return EXIT_ERROR;
    }
    let mut raw_server = fs.get_str("server");
    if raw_server.is_empty() {
        raw_server = env.swarming_server.clone().unwrap_or_default();
    }
    if raw_server.is_empty() {
        let _ = writeln!(err, "{prog}: must provide -server or set $SWARMING_SERVER env var");
        return EXIT_ERROR;
    }
    let server = match crate::client::normalize_servers(&raw_server) {
        Ok(s) => s.join(","),
        Err(e) => {
            let _ = writeln!(err, "{prog}: invalid -server {raw_server:?}: {e}");
            return EXIT_ERROR;
        }
    };
    let level = match (fs.get_bool("quiet"), fs.get_bool("verbose")) {
        (_, true) => Level::Debug,
        (true, false) => Level::Warning,
        _ => Level::Info,
    };
    let parsed = match parse_inputs(verb.name, &fs, positional, env, &server) {
        Ok(p) => p,
        Err(m) => {
            let _ = writeln!(err, "{prog}: {m}");
            return EXIT_ERROR;
        }
    };
    let client = match base::make_client(&server, env, token) {
        Ok(c) => c,
        Err(m) => {
            let _ = writeln!(err, "{prog}: {m}");
            return EXIT_ERROR;
        }
    };
    let output_json = fs.get_str("json-output");
    let mut ctx = Ctx { client, server, env, out, err, stdin, level, output_json: output_json.clone(), prog };
    let started = std::time::Instant::now();
    let result = match output::Sink::open(&output_json) {
        Err(m) => Err(m),
        Ok(mut sink) => {
            let r = execute(parsed, &mut ctx, &mut sink).await;
            let fin = sink.finalize(ctx.out);
            match (r, fin) {
                (Err(e), _) => Err(e),
                (Ok(()), Err(e)) => {
                    ctx.log(Level::Error, &format!("Failed to finalize JSON output: {e}"));
                    Err(format!("finalizing JSON output: {e}"))
                }
                (Ok(()), Ok(())) => Ok(()),
            }
        }
    };
    let _ = ctx.out.flush();
    if verb.features.measure_duration {
        let dt = started.elapsed();
        let ms = std::time::Duration::from_millis(dt.as_millis() as u64);
        let word = if result.is_ok() { "completed" } else { "failed" };
        ctx.info(&format!("The command {word} in {}", flags::go_duration(ms)));
    }
    match result {
        Ok(()) => 0,
        Err(e) => {
            ctx.log(Level::Error, &e);
            EXIT_ERROR
        }
    }
}

/// A verb's inputs after parsing.
enum Parsed {
    Trigger(Box<trigger::Trigger>),
    Collect(collect::Collect),
    Tasks(tasks::Tasks),
    Bots(bots::Bots),
    BotTasks(bot_tasks::BotTasks),
    RequestShow(request_show::RequestShow),
    SpawnTasks(spawn_tasks::SpawnTasks),
    Cancel(cancel::Cancel),
    CancelTasks(cancel_tasks::CancelTasks),
    DeleteBots(delete_bots::DeleteBots),
    Terminate(terminate::Terminate),
    Reproduce(reproduce::Reproduce),
}

fn parse_inputs(name: &str, fs: &FlagSet, args: Vec<String>, env: &Env, server: &str) -> Result<Parsed, String> {
    Ok(match name {
        "trigger" => Parsed::Trigger(Box::new(trigger::parse(fs, args, env, server)?)),
        "collect" => Parsed::Collect(collect::parse(fs, args)?),
        "tasks" => Parsed::Tasks(tasks::parse(fs)?),
        "bots" => Parsed::Bots(bots::parse(fs)?),
        "bot-tasks" => Parsed::BotTasks(bot_tasks::parse(fs)?),
        "request-show" => Parsed::RequestShow(request_show::parse(args)),
        "spawn-tasks" => Parsed::SpawnTasks(spawn_tasks::parse(fs, env, server)?),
        "cancel" => Parsed::Cancel(cancel::parse(fs, args)),
        "cancel-tasks" => Parsed::CancelTasks(cancel_tasks::parse(fs)?),
        "delete-bots" => Parsed::DeleteBots(delete_bots::parse(fs, args)),
        "terminate" => Parsed::Terminate(terminate::parse(fs, args)),
        "reproduce" => Parsed::Reproduce(reproduce::parse(fs, args)?),
        other => return Err(format!("unknown command {other:?}")),
    })
}

async fn execute(p: Parsed, ctx: &mut Ctx<'_>, sink: &mut output::Sink) -> Result<(), String> {
    match p {
        Parsed::Trigger(v) => v.execute(ctx, sink).await,
        Parsed::Collect(v) => v.execute(ctx, sink).await,
        Parsed::Tasks(v) => v.execute(ctx, sink).await,
        Parsed::Bots(v) => v.execute(ctx, sink).await,
        Parsed::BotTasks(v) => v.execute(ctx, sink).await,
        Parsed::RequestShow(v) => v.execute(ctx, sink).await,
        Parsed::SpawnTasks(v) => v.execute(ctx, sink).await,
        Parsed::Cancel(v) => v.execute(ctx).await,
        Parsed::CancelTasks(v) => v.execute(ctx).await,
        Parsed::DeleteBots(v) => v.execute(ctx).await,
        Parsed::Terminate(v) => v.execute(ctx).await,
        Parsed::Reproduce(v) => v.execute(ctx).await,
    }
}

/// When the process was started as `swarming` (argv[0]) or `muster
/// swarming ...`, runs the personality and returns its exit code.
pub fn from_process_args() -> Option<i32> {
    let args: Vec<String> = std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect();
    let first = args.first()?;
    if invoked_as_swarming(first) {
        return Some(main(args));
    }
    if args.get(1).map(String::as_str) == Some("swarming") {
        return Some(main(args[1..].to_vec()));
    }
    None
}

/// Whether `argv[0]` names the swarming personality (`swarming`,
/// `swarming.exe`, `/usr/local/bin/swarming`).
pub fn invoked_as_swarming(argv0: &str) -> bool {
    let name = std::path::Path::new(argv0).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    name == "swarming"
}

/// Makes `DIR/swarming` a link to `exe` (a symlink; a hard link where
/// symlinks are not available). Replaces an older link; refuses to replace
/// anything else.
pub fn install_alias(dir: &std::path::Path, exe: &std::path::Path) -> Result<std::path::PathBuf, String> {
    let name = if cfg!(windows) { "swarming.exe" } else { "swarming" };
    let dest = dir.join(name);
    match std::fs::symlink_metadata(&dest) {
        Ok(m) if m.file_type().is_symlink() => {
            std::fs::remove_file(&dest).map_err(|e| format!("removing the old link {}: {e}", dest.display()))?;
        }
        Ok(_) => {
            let same = std::fs::canonicalize(&dest).ok() == std::fs::canonicalize(exe).ok();
            if !same {
                return Err(format!("{} exists and is not a link to muster; remove it first", dest.display()));
            }
            std::fs::remove_file(&dest).map_err(|e| format!("removing the old link {}: {e}", dest.display()))?;
        }
        Err(_) => {}
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    #[cfg(unix)]
    let made = std::os::unix::fs::symlink(exe, &dest);
    #[cfg(not(unix))]
    let made = std::fs::hard_link(exe, &dest);
    made.map_err(|e| format!("linking {} to {}: {e}", dest.display(), exe.display()))?;
    Ok(dest)
}
