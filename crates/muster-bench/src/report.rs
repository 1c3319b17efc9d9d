//! Results: percentiles, the human table on stdout and the JSON file per run
//! under the results directory.

use anyhow::Context;
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

/// p50/p90/p99/max of a sample, in the sample's unit.
pub fn percentiles(mut xs: Vec<f64>) -> Value {
    if xs.is_empty() {
        return json!({"n": 0});
    }
    xs.sort_by(|a, b| a.total_cmp(b));
    let at = |p: f64| xs[(((xs.len() - 1) as f64) * p).round() as usize];
    json!({"n": xs.len(), "p50": round3(at(0.5)), "p90": round3(at(0.9)), "p99": round3(at(0.99)),
           "max": round3(xs[xs.len() - 1])})
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// One target from docs/design.md#targets and whether this run met it.
pub struct Target {
    pub name: String,
    pub target: String,
    pub value: f64,
    pub met: bool,
}

/// Everything one scenario run reports.
pub struct Report {
    pub scenario: String,
    pub params: Map<String, Value>,
    /// (name, value), in display order.
    pub figures: Vec<(String, Value)>,
    pub targets: Vec<Target>,
    pub notes: Vec<String>,
}

impl Report {
    pub fn new(scenario: &str) -> Report {
        Report { scenario: scenario.to_string(), params: Map::new(), figures: vec![], targets: vec![], notes: vec![] }
    }
    pub fn param(&mut self, k: &str, v: impl Into<Value>) {
        self.params.insert(k.to_string(), v.into());
    }
    pub fn fig(&mut self, k: &str, v: impl Into<Value>) {
        self.figures.push((k.to_string(), v.into()));
    }
    /// A target met when `value <= limit` (or `>=` when `at_least`).
    pub fn target(&mut self, name: &str, value: f64, limit: f64, at_least: bool, unit: &str) {
        let met = if at_least { value >= limit } else { value <= limit };
        let op = match (at_least, limit == 0.0) {
            (true, _) => ">=",
            (false, true) => "=",
            (false, false) => "<",
        };
        let target = format!("{op} {limit} {unit}");
        self.targets.push(Target { name: name.to_string(), target, value: round3(value), met });
    }
    pub fn note(&mut self, n: impl Into<String>) {
        self.notes.push(n.into());
    }

    /// The human table.
    pub fn print(&self) {
        println!("\n== muster bench: {} ==", self.scenario);
        let params: Vec<String> = self.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("parameters: {}", params.join(" "));
        let w = self.figures.iter().map(|(k, _)| k.len()).max().unwrap_or(10).max(24);
        for (k, v) in &self.figures {
            println!("  {k:<w$}  {}", fmt_value(v));
        }
        if !self.targets.is_empty() {
            println!("  targets (docs/design.md#targets):");
            for t in &self.targets {
                let verdict = if t.met { "met".to_string() } else { miss(t) };
                println!("    {:<w$}{:>14}  target {:<16} {verdict}", t.name, t.value, t.target);
            }
        }
        for n in &self.notes {
            println!("  note: {n}");
        }
    }

    /// Writes `<dir>/<scenario>-<timestamp>.json`; returns its path.
    pub fn write(&self, dir: &Path, now: muster_core::Time) -> anyhow::Result<PathBuf> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let figures: Map<String, Value> = self.figures.iter().cloned().collect();
        let targets: Vec<Value> = self
            .targets
            .iter()
            .map(|t| json!({"name": t.name, "target": t.target, "value": t.value, "met": t.met}))
            .collect();
        let doc = json!({
            "scenario": self.scenario,
            "started_at": now.to_rfc3339(),
            "machine": crate::sys::machine(),
            "git_revision": crate::sys::git_revision(),
            "parameters": self.params,
            "figures": figures,
            "targets": targets,
            "notes": self.notes,
        });
        let path = dir.join(format!("{}-{}.json", self.scenario, now.format("%Y%m%dT%H%M%SZ")));
        std::fs::write(&path, serde_json::to_vec_pretty(&doc)?)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}

fn miss(t: &Target) -> String {
    let limit: f64 = t.target.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    if limit == 0.0 {
        return "MISSED".to_string();
    }
    format!("MISSED (x{:.2} of the target)", t.value / limit)
}

fn fmt_value(v: &Value) -> String {
    match v {
        Value::Object(m) => m.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" "),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
