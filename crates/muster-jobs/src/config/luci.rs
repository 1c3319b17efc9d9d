//! Upstream LUCI Scheduler project configs (`luci-scheduler/<project>.cfg`),
//! text protobuf read unchanged through muster-config's schema copy.
//!
//! Mapping: `noop` → the `noop` manager, `url_fetch` → `http`. Payloads
//! muster cannot run (`buildbucket`, `gitiles`) keep their job, disabled,
//! with a problem that says why. The deprecated ACL fields are read and
//! ignored (realms replaced them).

use super::{build, line_col, Fields, Parsed, Problem};
use crate::manager::Managers;
use crate::model::{Flavor, TaskSpec};
use muster_config::pb::scheduler_config::{self as sc, triggering_policy::Kind};

/// Where `id: "<id>"` is written (ids are unique in a project), else the
/// file's start.
fn locate(file: &str, src: &str, id: &str) -> Problem {
    let quoted = format!("\"{id}\"");
    let at = src
        .match_indices(&quoted)
        .map(|(i, _)| i)
        .find(|i| src[..*i].trim_end().strip_suffix(':').is_some_and(|b| b.trim_end().ends_with("id")))
        .unwrap_or(0);
    let (line, col) = line_col(src, at);
    Problem { file: file.to_string(), line, col, message: String::new() }
}

fn policy_fields(p: &Option<sc::TriggeringPolicy>, f: &mut Fields) {
    let Some(p) = p else { return };
    f.policy_kind = match Kind::try_from(p.kind) {
        Ok(Kind::Undefined) | Ok(Kind::GreedyBatching) => "GREEDY_BATCHING".into(),
        Ok(Kind::LogarithmicBatching) => "LOGARITHMIC_BATCHING".into(),
        Ok(Kind::NewestFirst) => "NEWEST_FIRST".into(),
        Err(_) => format!("kind {}", p.kind),
    };
    f.max_concurrent = p.max_concurrent_invocations;
    f.max_batch = p.max_batch_size;
    f.log_base = f64::from(p.log_base);
    f.pending_timeout = p.pending_timeout.map(|d| format!("{}s", d.seconds));
}

/// Parses one project config; `Err` when the file is not valid text
/// protobuf of `scheduler.config.ProjectConfig`.
pub fn parse(file: &str, src: &str, project: &str, managers: &Managers) -> Result<Vec<Parsed>, Problem> {
    let cfg: sc::ProjectConfig = muster_config::text::parse(file, src).map_err(|e| Problem {
        file: file.to_string(),
        line: e.line,
        col: e.col,
        message: e.message,
    })?;
    let mut out = Vec::new();
    // `disabled_because`: the job is kept, disabled, with this problem.
    let mut one = |flavor: Flavor, id: &str, mut f: Fields, disabled_because: Option<String>| {
        let at = locate(file, src, id);
        f.project = project.to_string();
        f.flavor = flavor;
        f.id = id.to_string();
        let loc = |_: &str| at.clone();
        let mut parsed = build(f, managers, at.clone(), &loc);
        if let Some(message) = disabled_because {
            parsed.def.disabled = true;
            parsed.problems.push(Problem { message, ..at.clone() });
        }
        out.push(parsed);
    };
    for j in &cfg.job {
        let mut f = Fields { realm: j.realm.clone(), disabled: j.disabled, ..Fields::default() };
        f.schedule = (!j.schedule.is_empty()).then(|| j.schedule.clone());
        policy_fields(&j.triggering_policy, &mut f);
        let payloads = [j.noop.is_some(), j.url_fetch.is_some(), j.buildbucket.is_some()];
        let mut unsupported = None;
        if payloads.iter().filter(|x| **x).count() > 1 {
            f.task = Some(TaskSpec { kind: "noop".into(), params: serde_json::Value::Null });
            unsupported = Some("a job has exactly one of noop, url_fetch or buildbucket; this one has several".into());
        } else if let Some(n) = &j.noop {
            f.task = Some(noop(n));
        } else if let Some(u) = &j.url_fetch {
            let mut params = serde_json::json!({ "url": u.url });
            if !u.method.is_empty() {
                params["method"] = u.method.clone().into();
            }
            if u.timeout_sec != 0 {
                params["timeout"] = format!("{}s", u.timeout_sec).into();
            }
            f.task = Some(TaskSpec { kind: "http".into(), params });
        } else if j.buildbucket.is_some() {
            f.task = Some(TaskSpec { kind: "noop".into(), params: serde_json::Value::Null });
            unsupported = Some(cannot_run("buildbucket"));
        }
        one(Flavor::Job, &j.id, f, unsupported);
    }
    for t in &cfg.trigger {
        let mut f =
            Fields { realm: t.realm.clone(), disabled: t.disabled, triggers: t.triggers.clone(), ..Fields::default() };
        f.schedule = (!t.schedule.is_empty()).then(|| t.schedule.clone());
        policy_fields(&t.triggering_policy, &mut f);
        let mut unsupported = None;
        if let Some(n) = &t.noop {
            f.task = Some(noop(n));
        } else if t.gitiles.is_some() {
            f.task = Some(TaskSpec { kind: "noop".into(), params: serde_json::Value::Null });
            unsupported = Some(cannot_run("gitiles"));
        }
        one(Flavor::Trigger, &t.id, f, unsupported);
    }
    Ok(out)
}

fn cannot_run(kind: &str) -> String {
    format!("{kind} tasks cannot run on muster: the job is imported disabled")
}

fn noop(n: &sc::NoopTask) -> TaskSpec {
    let mut params = serde_json::Map::new();
    if n.sleep_ms != 0 {
        params.insert("sleep".into(), format!("{}ms", n.sleep_ms).into());
    }
    if n.triggers_count != 0 {
        params.insert("triggers_count".into(), n.triggers_count.into());
    }
    TaskSpec { kind: "noop".into(), params: serde_json::Value::Object(params) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::cross_check;

    /// Written the way upstream projects write theirs.
    const UPSTREAM: &str = r#"
# A LUCI Scheduler project config.
acl_sets {
  name: "default"
  acls { role: READER granted_to: "group:all" }
}

job {
  id: "ping"
  realm: "ci"
  schedule: "with 30s interval"
  acl_sets: "default"
  triggering_policy {
    kind: NEWEST_FIRST
    max_concurrent_invocations: 2
    pending_timeout { seconds: 3600 }
  }
  url_fetch {
    url: "https://example.com/ping"
    timeout_sec: 30
  }
}

job {
  id: "build"
  buildbucket {
    server: "cr-buildbucket.appspot.com"
    bucket: "ci"
    builder: "linux"
  }
}

trigger {
  id: "tick"
  schedule: "0 3 * * *"
  triggers: "ping"
  noop { triggers_count: 1 }
}
"#;

    #[test]
    fn an_upstream_project_config_loads_with_its_jobs_mapped() {
        let managers = Managers::builtin();
        let mut parsed = parse("luci-scheduler/infra.cfg", UPSTREAM, "infra", &managers).expect("parses");
        cross_check(&mut parsed);
        let ping = &parsed[0];
        assert_eq!((ping.def.project.as_str(), ping.def.id.as_str()), ("infra", "ping"));
        assert_eq!(ping.def.realm, "infra:ci");
        assert_eq!(ping.def.schedule, "with 30s interval");
        assert_eq!(ping.def.task.kind, "http");
        assert_eq!(ping.def.task.params["timeout"], "30s");
        assert_eq!(ping.def.policy.kind, crate::policy::PolicyKind::NewestFirst);
        assert_eq!(ping.def.policy.max_concurrent_invocations, 2);
        assert_eq!(ping.def.policy.pending_timeout_secs, 3600);
        assert!(ping.problems.is_empty(), "{:?}", ping.problems);
        assert_eq!((ping.at.line, ping.at.col), (9, 7));

        let build = &parsed[1];
        assert!(build.def.disabled, "a buildbucket job is imported disabled");
        assert_eq!(build.def.realm, "infra:@legacy");
        assert!(build.problems[0].message.contains("buildbucket tasks cannot run on muster"), "{:?}", build.problems);

        let tick = &parsed[2];
        assert_eq!(tick.def.flavor, Flavor::Trigger);
        assert_eq!(tick.def.triggers, vec!["ping".to_string()]);
        assert_eq!(tick.def.task.params["triggers_count"], 1);
        assert!(tick.problems.is_empty(), "{:?}", tick.problems);
    }

    #[test]
    fn a_bad_field_or_schedule_is_placed_in_the_file() {
        let managers = Managers::builtin();
        let e =
            parse("p.cfg", "job {\n  id: \"x\"\n  colour: \"red\"\n}\n", "p", &managers).expect_err("unknown field");
        assert_eq!((e.file.as_str(), e.line), ("p.cfg", 3), "{e}");
        let parsed = parse("p.cfg", "job {\n  id: \"x\"\n  schedule: \"61 * * * *\"\n  noop {}\n}\n", "p", &managers)
            .expect("parses");
        assert_eq!(parsed[0].problems.len(), 1, "{:?}", parsed[0].problems);
        assert_eq!(parsed[0].problems[0].line, 2);
        let two = "job {\n  id: \"two\"\n  noop {}\n  url_fetch { url: \"https://example.com\" }\n}\n";
        let parsed = parse("p.cfg", two, "p", &managers).expect("parses");
        assert!(parsed[0].def.disabled, "a job with two payloads is disabled");
        assert!(parsed[0].problems[0].message.contains("this one has several"), "{:?}", parsed[0].problems);
    }
}
