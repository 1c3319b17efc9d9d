//! What every verb of the `swarming` personality shares: the common flags
//! (`-server`/`-S`, `-quiet`, `-verbose`, the auth flag, `-cas-addr`, the
//! JSON output flag and its old alias), the positional-argument check, the
//! log on stderr, error texts and the exit codes (1 for any error, 2 for a
//! flag error).

use super::flags::FlagSet;
use super::output::Sink;
use crate::args::Env;
use crate::client::{self, Client};
use crate::error::RpcError;
use std::io::{BufRead, Write};

/// Exit code of a failed command.
pub const EXIT_ERROR: i32 = 1;
/// Exit code of a flag error, an unknown verb or no verb.
pub const EXIT_USAGE: i32 = 2;

/// No limit on positional arguments.
pub const UNLIMITED: i32 = -1;

/// How `-json-output` behaves for a verb.
#[derive(Debug, Clone, Copy, Default)]
pub struct OutputJson {
    /// The verb has `-json-output`.
    pub enabled: bool,
    /// An older name for it (`-json`, `-dump-json`, `-task-summary-json`).
    pub alias: Option<&'static str>,
    /// Its help text, when not the usual one.
    pub usage: Option<&'static str>,
    /// Default `-` (stdout) instead of nothing.
    pub default_stdout: bool,
}

/// A verb's standard behaviours.
#[derive(Debug, Clone, Copy, Default)]
pub struct Features {
    pub min_args: i32,
    pub max_args: i32,
    /// Logs how long the command took.
    pub measure_duration: bool,
    /// Has `-cas-addr`.
    pub uses_cas: bool,
    pub output_json: OutputJson,
}

/// The production CAS address upstream defaults `-cas-addr` to.
pub const CAS_ADDR_PROD: &str = "remotebuildexecution.googleapis.com:443";

/// Registers the common flags of a verb with these features.
pub fn register_common(fs: &mut FlagSet, f: &Features) {
    fs.string(
        "service-account-json",
        "",
        "Path to JSON file with service account credentials to use. Accepted for compatibility; muster uses $MUSTER_TOKEN or the muster credentials file.",
    );
    fs.bool("quiet", false, "Log at Warning verbosity level.");
    fs.bool("verbose", false, "Log at Debug verbosity level.");
    fs.string(
        "server",
        "",
        "URL or a hostname of a swarming server to call. If not set defaults to $SWARMING_SERVER. Required.",
    );
    fs.alias("S", "server", "Alias for -server.");
    if f.uses_cas {
        fs.string("cas-addr", CAS_ADDR_PROD, "CAS service address.");
    }
    let oj = f.output_json;
    if oj.enabled {
        let default = if oj.default_stdout { "-" } else { "" };
        fs.string(
            "json-output",
            default,
            oj.usage.unwrap_or("A path to write operation results to as JSON. If literal \"-\", then stdout."),
        );
        if let Some(a) = oj.alias {
            fs.alias(
                a,
                "json-output",
                "Alias for -json-output for compatibility with older callers. Use -json-output instead.",
            );
        }
    }
}

/// Log levels of `-quiet` / default / `-verbose`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warning,
    Error,
}

/// What a running verb has: the client, where the server is, the log, the
/// environment, stdout/stdin, and the common flags' values.
pub struct Ctx<'a> {
    pub client: Client,
    /// The server URL (`https://host`), as printed in hints.
    pub server: String,
    pub env: &'a Env,
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
    pub stdin: &'a mut dyn BufRead,
    pub level: Level,
    /// The `-json-output` value ("" = none).
    pub output_json: String,
    /// The program name (for hints).
    pub prog: String,
}

impl Ctx<'_> {
    /// Writes one log line on stderr when `level` is shown.
    pub fn log(&mut self, level: Level, msg: &str) {
        if level < self.level {
            return;
        }
        let letter = match level {
            Level::Debug => 'D',
            Level::Info => 'I',
            Level::Warning => 'W',
            Level::Error => 'E',
        };
        let now = self.env.now().format("%Y-%m-%dT%H:%M:%S%.6fZ");
        for line in msg.lines() {
            let _ = writeln!(self.err, "[{letter}{now} {}] {line}", std::process::id());
        }
    }
    pub fn info(&mut self, msg: &str) {
        self.log(Level::Info, msg);
    }
    pub fn warn(&mut self, msg: &str) {
        self.log(Level::Warning, msg);
    }
    pub fn debug(&mut self, msg: &str) {
        self.log(Level::Debug, msg);
    }
}

/// The text of an RPC error as Go's gRPC status prints it:
/// `rpc error: code = NotFound desc = no such task`.
pub fn rpc_text(e: &RpcError) -> String {
    match e {
        RpcError::Status(s) => format!("rpc error: code = {} desc = {}", go_code_name(s.code), s.message),
        other => other.to_string(),
    }
}

/// Go's `codes.Code.String()`.
pub fn go_code_name(c: muster_api::prpc::Code) -> &'static str {
    use muster_api::prpc::Code;
    match c {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// The client for `server` with the muster token ($MUSTER_TOKEN, else the
/// credentials file).
pub fn make_client(server: &str, env: &Env, token: Option<&str>) -> Result<Client, String> {
    let token = client::find_token(token, env.credentials_file.as_deref())?;
    Client::new(server, token)
}

/// Checks the number of positional arguments; the message upstream prints.
pub fn check_args(f: &Features, args: &[String]) -> Result<(), String> {
    let n = args.len() as i32;
    if f.max_args == 0 && n != 0 {
        return Err(format!("unexpected arguments: [{}]\n", args.join(" ")));
    }
    if f.min_args > 0 && n < f.min_args {
        return Err(if f.max_args == f.min_args {
            format!("expecting exactly {} argument(s), but got {n}", f.min_args)
        } else {
            format!("expecting at least {} argument(s), but got {n}", f.min_args)
        });
    }
    if f.max_args != UNLIMITED && n > f.max_args {
        return Err(if f.max_args == f.min_args {
            format!("expecting exactly {} argument(s), but got {n}", f.min_args)
        } else {
            format!("expecting at most {} argument(s), but got {n}", f.max_args)
        });
    }
    Ok(())
}

/// Opens the JSON sink of a verb.
pub fn open_sink(path: &str) -> Result<Sink, String> {
    Sink::open(path)
}
