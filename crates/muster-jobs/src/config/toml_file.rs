//! `jobs.toml`: muster's own job definitions.
//!
//! ```toml
//! project = "infra"            # default "default"
//!
//! [[job]]
//! id = "nightly"
//! realm = "ci"                 # default "@legacy"
//! schedule = "0 3 * * *"       # default "triggered"; UTC
//! triggering_policy = { kind = "GREEDY_BATCHING", max_concurrent_invocations = 1 }
//! triggers = ["publish"]       # jobs started when this one succeeds
//! invocation_timeout = "2h"    # optional
//! [job.muster]                 # the task manager and its parameters
//! pool = "ci"
//! command = ["./nightly.sh"]
//!
//! [[trigger]]                  # emits triggers to the jobs it lists
//! id = "tick"
//! schedule = "with 30s interval"
//! triggers = ["nightly"]
//! [trigger.noop]
//! triggers_count = 1
//! ```

use super::{build, line_col, Fields, Parsed, Problem};
use crate::manager::Managers;
use crate::model::{Flavor, TaskSpec};
use serde::Deserialize;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    project: Option<String>,
    #[serde(default)]
    job: Vec<Spanned<toml::Table>>,
    #[serde(default)]
    trigger: Vec<Spanned<toml::Table>>,
}

const KEYS: &[&str] = &["id", "realm", "schedule", "disabled", "triggering_policy", "triggers", "invocation_timeout"];

fn at(file: &str, src: &str, offset: usize, message: &str) -> Problem {
    let (line, col) = line_col(src, offset);
    Problem { file: file.to_string(), line, col, message: message.to_string() }
}

/// Where `key = ...` is written inside the `[[job]]` starting at `span`
/// (up to the next `[[` header), else the table's start.
fn locate(file: &str, src: &str, span: &std::ops::Range<usize>, key: &str) -> Problem {
    let start = span.start.min(src.len());
    let end =
        src[start..].match_indices("\n[[").map(|(i, _)| start + i + 1).find(|e| *e > start + 1).unwrap_or(src.len());
    let mut offset = start;
    for line in src[start..end].split_inclusive('\n') {
        let t = line.trim_start();
        let indent = line.len() - t.len();
        let matches_key = t.strip_prefix(key).is_some_and(|r| {
            let r = r.trim_start();
            r.starts_with('=') || r.starts_with('.') || r.starts_with(']')
        }) || t.strip_prefix('[').is_some_and(|r| r.trim_start().contains(&format!(".{key}]")));
        if matches_key {
            return at(file, src, offset + indent, "");
        }
        offset += line.len();
    }
    at(file, src, start, "")
}

/// Parses `jobs.toml`; `Err` when the file is not valid TOML of this shape.
pub fn parse(file: &str, src: &str, managers: &Managers) -> Result<Vec<Parsed>, Problem> {
    let f: File = toml::from_str(src).map_err(|e| {
        let offset = e.span().map(|s| s.start).unwrap_or(0);
        at(file, src, offset, e.message().trim())
    })?;
    let project = f.project.unwrap_or_else(|| "default".to_string());
    let mut out = Vec::new();
    for (flavor, tables) in [(Flavor::Job, f.job), (Flavor::Trigger, f.trigger)] {
        for t in tables {
            let span = t.span();
            let loc = |key: &str| locate(file, src, &span, key);
            let table = t.into_inner();
            let mut fields = Fields { project: project.clone(), flavor, ..Fields::default() };
            let mut errs: Vec<Problem> = Vec::new();
            let mut err = |key: &str, m: String| errs.push(Problem { message: m, ..loc(key) });
            let mut tasks = Vec::new();
            for (k, v) in &table {
                let s = || v.as_str().map(str::to_string);
                match k.as_str() {
                    "id" => {
                        fields.id = s().unwrap_or_else(|| {
                            err(k, "id must be a string".into());
                            String::new()
                        })
                    }
                    "realm" => {
                        fields.realm = s().unwrap_or_else(|| {
                            err(k, "realm must be a string".into());
                            String::new()
                        })
                    }
                    "schedule" => match s() {
                        Some(x) => fields.schedule = Some(x),
                        None => err(k, "schedule must be a string".into()),
                    },
                    "disabled" => match v.as_bool() {
                        Some(b) => fields.disabled = b,
                        None => err(k, "disabled must be true or false".into()),
                    },
                    "invocation_timeout" => match s() {
                        Some(x) => fields.invocation_timeout = Some(x),
                        None => err(k, "invocation_timeout must be a duration string like \"2h\"".into()),
                    },
                    "triggers" => match v.as_array() {
                        Some(a) if a.iter().all(|x| x.is_str()) => {
                            fields.triggers = a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect()
                        }
                        _ => err(k, "triggers must be a list of job ids".into()),
                    },
                    "triggering_policy" => match v.as_table() {
                        Some(p) => {
                            for (pk, pv) in p {
                                match (pk.as_str(), pv) {
                                    ("kind", toml::Value::String(s)) => fields.policy_kind = s.clone(),
                                    ("max_concurrent_invocations", toml::Value::Integer(n)) => {
                                        fields.max_concurrent = *n
                                    }
                                    ("max_batch_size", toml::Value::Integer(n)) => fields.max_batch = *n,
                                    ("log_base", toml::Value::Float(x)) => fields.log_base = *x,
                                    ("log_base", toml::Value::Integer(n)) => fields.log_base = *n as f64,
                                    ("pending_timeout", toml::Value::String(s)) => {
                                        fields.pending_timeout = Some(s.clone())
                                    }
                                    _ => err(k, format!("triggering_policy: bad or unknown key {pk:?}")),
                                }
                            }
                        }
                        None => err(k, "triggering_policy must be a table".into()),
                    },
                    other if managers.get(other).is_some() => match v.as_table() {
                        Some(params) => match serde_json::to_value(params) {
                            Ok(p) => tasks.push(TaskSpec { kind: other.to_string(), params: p }),
                            Err(e) => err(k, format!("{other}: {e}")),
                        },
                        None => err(k, format!("{other} must be a table of parameters")),
                    },
                    other => err(
                        k,
                        format!(
                            "unknown key {other:?} (known: {}, or a task table: {})",
                            KEYS.join(", "),
                            managers.names().join(", ")
                        ),
                    ),
                }
            }
            if tasks.len() > 1 {
                let kinds: Vec<&str> = tasks.iter().map(|t| t.kind.as_str()).collect();
                err(kinds[1], format!("a job has exactly one task table, found {}", kinds.join(" and ")));
            }
            fields.task = tasks.into_iter().next();
            if fields.id.is_empty() {
                let mut p = loc("id");
                p.message = format!("a [[{}]] needs an id", if flavor == Flavor::Job { "job" } else { "trigger" });
                return Err(p);
            }
            let mut parsed = build(fields, managers, loc("id"), &loc);
            parsed.problems.splice(0..0, errs);
            out.push(parsed);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::cross_check;

    const GOOD: &str = r#"
project = "infra"

[[job]]
id = "nightly"
realm = "ci"
schedule = "0 3 * * *"
triggering_policy = { kind = "GREEDY_BATCHING", max_concurrent_invocations = 2 }
triggers = ["publish"]
invocation_timeout = "2h"
[job.http]
url = "http://example.com/build"

[[job]]
id = "publish"
[job.noop]

[[trigger]]
id = "tick"
triggers = ["nightly"]
[trigger.noop]
triggers_count = 1
"#;

    #[test]
    fn a_good_file() {
        let jobs = parse("jobs.toml", GOOD, &Managers::builtin()).expect("parses");
        assert_eq!(jobs.len(), 3);
        for j in &jobs {
            assert!(j.problems.is_empty(), "{:?}", j.problems);
        }
        let n = &jobs[0].def;
        assert_eq!(
            (n.job_id().as_str(), n.realm.as_str(), n.schedule.as_str()),
            ("infra/nightly", "infra:ci", "0 3 * * *")
        );
        assert_eq!(n.policy.max_concurrent_invocations, 2);
        assert_eq!(n.invocation_timeout_secs, Some(7200));
        assert_eq!(n.task.kind, "http");
        assert_eq!(jobs[1].def.schedule, "triggered");
        assert_eq!(jobs[1].def.realm, "infra:@legacy");
        assert_eq!(jobs[2].def.schedule, "with 30s interval");
        assert_eq!(jobs[2].def.flavor, Flavor::Trigger);
    }

    #[test]
    fn problems_point_at_the_line() {
        let src = "[[job]]\nid = \"a\"\nschedule = \"61 * * * *\"\n[job.noop]\n\n[[job]]\nid = \"b\"\nschedule = \"with -5m interval\"\ncolour = 1\n[job.http]\nurl = \"ftp://x\"\n";
        let jobs = parse("jobs.toml", src, &Managers::builtin()).expect("parses");
        let msgs: Vec<String> = jobs.iter().flat_map(|j| j.problems.iter().map(|p| p.to_string())).collect();
        assert!(msgs.iter().any(|m| m.starts_with("jobs.toml:3:1: bad schedule") && m.contains("minute")), "{msgs:?}");
        assert!(
            msgs.iter().any(|m| m.starts_with("jobs.toml:8:1: bad schedule") && m.contains("negative")),
            "{msgs:?}"
        );
        assert!(msgs.iter().any(|m| m.starts_with("jobs.toml:9:1: unknown key \"colour\"")), "{msgs:?}");
        assert!(msgs.iter().any(|m| m.starts_with("jobs.toml:10:1: http:") && m.contains("ftp")), "{msgs:?}");
    }

    #[test]
    fn garbage_is_a_file_error_with_a_position() {
        let e = parse("jobs.toml", "[[job]]\nid = \n", &Managers::builtin()).expect_err("not toml");
        assert_eq!((e.file.as_str(), e.line), ("jobs.toml", 2), "{e}");
    }

    #[test]
    fn cycles_and_unknown_targets_are_refused() {
        let src = "[[job]]\nid = \"a\"\ntriggers = [\"b\"]\n[job.noop]\n[[job]]\nid = \"b\"\ntriggers = [\"a\"]\n[job.noop]\n[[job]]\nid = \"c\"\ntriggers = [\"zzz\"]\n[job.noop]\n[[job]]\nid = \"d\"\n[job.noop]\n";
        let mut jobs = parse("jobs.toml", src, &Managers::builtin()).expect("parses");
        cross_check(&mut jobs);
        let msgs: Vec<String> = jobs.iter().flat_map(|j| j.problems.iter().map(|p| p.to_string())).collect();
        assert!(msgs.iter().any(|m| m.contains("cycle: default/a → default/b → default/a")), "{msgs:?}");
        assert!(msgs.iter().any(|m| m.contains("unknown job(s): default/zzz")), "{msgs:?}");
        assert!(jobs[3].problems.is_empty());
    }
}
