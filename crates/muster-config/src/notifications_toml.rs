//! `notifications.toml`: where task notifications go. Only the sinks named
//! here are ever called (a request names a topic, never a URL). Unknown keys
//! are errors. User-facing rules: docs/notifications.md.

use crate::error::ConfigError;
use regex::Regex;
use serde::Deserialize;
use std::time::Duration;

/// The parsed, validated file.
#[derive(Debug, Clone, Default)]
pub struct Notifications {
    /// Accept a NewTask whose topic no sink maps (its notifications are
    /// dropped) instead of refusing it.
    pub allow_unmapped: bool,
    pub delivery: Delivery,
    pub sinks: Vec<Sink>,
}

/// Delivery limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Per attempt (connect to last body byte).
    pub timeout: Duration,
    /// The first retry waits this long; each next one twice as long (± 20 %).
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// A message not delivered after this long is dead.
    pub max_age: Duration,
    /// Attempts in flight per sink.
    pub in_flight: usize,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            timeout: Duration::from_secs(10),
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(600),
            max_age: Duration::from_secs(72 * 3600),
            in_flight: 16,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkKind {
    /// A signed JSON POST.
    Webhook,
    /// The Cloud Pub/Sub push envelope.
    PubsubPush,
}

impl SinkKind {
    pub fn name(self) -> &'static str {
        match self {
            SinkKind::Webhook => "webhook",
            SinkKind::PubsubPush => "pubsub_push",
        }
    }
}

/// One `[[sink]]`.
#[derive(Debug, Clone)]
pub struct Sink {
    /// Unique; stored with each message (default `<kind>:<url>`).
    pub name: String,
    /// The topic as written (exact or with `*` globs).
    pub topic: String,
    topic_re: Regex,
    pub kind: SinkKind,
    pub url: String,
    /// The signing secret's file (webhooks; relative to the config dir).
    pub secret_file: Option<String>,
    /// Only final states (else every notified transition).
    pub final_only: bool,
    /// `subscription` of the push envelope (pubsub_push).
    pub subscription: String,
}

impl Sink {
    pub fn matches(&self, topic: &str) -> bool {
        self.topic_re.is_match(topic)
    }
}

impl Notifications {
    /// The sinks a topic goes to, in file order.
    pub fn sinks_for<'a>(&'a self, topic: &'a str) -> impl Iterator<Item = &'a Sink> + 'a {
        self.sinks.iter().filter(move |s| s.matches(topic))
    }

    pub fn sink(&self, name: &str) -> Option<&Sink> {
        self.sinks.iter().find(|s| s.name == name)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToml {
    #[serde(default)]
    allow_unmapped: bool,
    #[serde(default)]
    delivery: DeliveryToml,
    #[serde(default)]
    sink: Vec<SinkToml>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DeliveryToml {
    timeout: Option<String>,
    min_backoff: Option<String>,
    max_backoff: Option<String>,
    max_age: Option<String>,
    in_flight: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SinkToml {
    name: Option<String>,
    topic: String,
    kind: String,
    url: String,
    secret_file: Option<String>,
    #[serde(default)]
    states: Option<String>,
    #[serde(default)]
    subscription: Option<String>,
}

/// A duration as `<number><unit>` with unit `ms`, `s`, `m` or `h`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        "h" => n.checked_mul(3600).map(Duration::from_secs),
        _ => None,
    }
}

/// Whether `topic` is a Cloud Pub/Sub topic name (`projects/<p>/topics/<t>`).
pub fn topic_name_ok(topic: &str) -> bool {
    let parts: Vec<&str> = topic.split('/').collect();
    parts.len() == 4
        && parts[0] == "projects"
        && parts[2] == "topics"
        && !parts[1].is_empty()
        && !parts[3].is_empty()
        && topic.len() <= 1024
}

fn glob_re(glob: &str) -> Option<Regex> {
    let parts: Vec<String> = glob.split('*').map(regex::escape).collect();
    Regex::new(&format!("^{}$", parts.join("[^/]*"))).ok()
}

/// Parses and validates `text`; every problem as `file:line:col: message`.
pub fn parse(file: &str, text: &str) -> Result<Notifications, Vec<ConfigError>> {
    let raw: FileToml = toml::from_str(text).map_err(|e| {
        let msg = e.message().trim().to_string();
        vec![match e.span() {
            Some(span) => ConfigError::at(file, text, span.start, msg),
            None => ConfigError::file(file, msg),
        }]
    })?;
    let mut errors = Vec::new();
    let mut delivery = Delivery::default();
    let mut dur = |v: &Option<String>, key: &str, slot: &mut Duration| {
        if let Some(v) = v {
            match parse_duration(v) {
                Some(d) if !d.is_zero() => *slot = d,
                _ => errors.push(ConfigError::near(
                    file,
                    text,
                    v,
                    format!("delivery.{key}: {v:?} is not a duration like \"500ms\", \"10s\", \"10m\" or \"72h\""),
                )),
            }
        }
    };
    dur(&raw.delivery.timeout, "timeout", &mut delivery.timeout);
    dur(&raw.delivery.min_backoff, "min_backoff", &mut delivery.min_backoff);
    dur(&raw.delivery.max_backoff, "max_backoff", &mut delivery.max_backoff);
    dur(&raw.delivery.max_age, "max_age", &mut delivery.max_age);
    if let Some(n) = raw.delivery.in_flight {
        if n == 0 || n > 1000 {
            errors.push(ConfigError::near(file, text, "in_flight", "delivery.in_flight must be 1..=1000"));
        } else {
            delivery.in_flight = n;
        }
    }
    let mut sinks: Vec<Sink> = Vec::new();
    for s in raw.sink {
        let at = |needle: &str, msg: String| ConfigError::near(file, text, needle, msg);
        let kind = match s.kind.as_str() {
            "webhook" => SinkKind::Webhook,
            "pubsub_push" => SinkKind::PubsubPush,
            other => {
                errors.push(at(other, format!("sink kind {other:?}: expected \"webhook\" or \"pubsub_push\"")));
                continue;
            }
        };
        let topic_re = match glob_re(&s.topic) {
            Some(re) if s.topic.starts_with("projects/") => re,
            _ => {
                errors.push(at(
                    &s.topic,
                    format!("sink topic {:?}: expected projects/<project>/topics/<name>, `*` allowed", s.topic),
                ));
                continue;
            }
        };
        match s.url.parse::<http::Uri>() {
            Ok(u) if matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some_and(|h| !h.is_empty()) => {}
            _ => {
                errors.push(at(&s.url, format!("sink url {:?}: expected an http(s) URL", s.url)));
                continue;
            }
        }
        let final_only = match s.states.as_deref() {
            None | Some("all") => false,
            Some("final") => true,
            Some(other) => {
                errors.push(at(other, format!("sink states {other:?}: expected \"all\" or \"final\"")));
                continue;
            }
        };
        if kind == SinkKind::Webhook && s.secret_file.as_deref().is_none_or(str::is_empty) {
            errors.push(at(&s.url, format!("webhook sink {:?} needs secret_file (its signing secret)", s.url)));
            continue;
        }
        let name = s.name.unwrap_or_else(|| format!("{}:{}", kind.name(), s.url));
        if sinks.iter().any(|o| o.name == name) {
            errors.push(at(&name, format!("sink {name:?} appears twice (give each a distinct name)")));
            continue;
        }
        sinks.push(Sink {
            name,
            topic: s.topic,
            topic_re,
            kind,
            url: s.url,
            secret_file: s.secret_file,
            final_only,
            subscription: s.subscription.unwrap_or_default(),
        });
    }
    if errors.is_empty() {
        Ok(Notifications { allow_unmapped: raw.allow_unmapped, delivery, sinks })
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sinks_and_matches_globs() {
        let n = parse(
            "notifications.toml",
            r#"
[delivery]
timeout = "2s"

[[sink]]
topic = "projects/ci/topics/muster-*"
kind = "webhook"
url = "https://ci.example/hook"
secret_file = "ci.key"
states = "final"

[[sink]]
name = "ps"
topic = "projects/ci/topics/exact"
kind = "pubsub_push"
url = "http://127.0.0.1:1/push"
"#,
        )
        .expect("valid");
        assert_eq!(n.delivery.timeout, Duration::from_secs(2));
        assert_eq!(n.sinks[0].name, "webhook:https://ci.example/hook");
        assert!(n.sinks[0].final_only);
        assert_eq!(n.sinks_for("projects/ci/topics/muster-a").count(), 1);
        assert_eq!(n.sinks_for("projects/ci/topics/muster-a/b").count(), 0);
        assert_eq!(n.sinks_for("projects/ci/topics/exact").map(|s| s.name.as_str()).collect::<Vec<_>>(), ["ps"]);
        assert_eq!(n.sinks_for("projects/ci/topics/other").count(), 0);
    }

    #[test]
    fn errors_name_file_and_line() {
        let text = "[[sink]]\ntopic = \"projects/a/topics/b\"\nkind = \"email\"\nurl = \"https://x\"\n";
        let e = parse("notifications.toml", text).expect_err("bad kind");
        assert_eq!(
            e[0].to_string(),
            "notifications.toml:3:8: sink kind \"email\": expected \"webhook\" or \"pubsub_push\""
        );
        let text = "[[sink]]\ntopic = \"projects/a/topics/b\"\nkind = \"webhook\"\nurl = \"https://x\"\n";
        let e = parse("notifications.toml", text).expect_err("no secret");
        assert!(e[0].to_string().starts_with("notifications.toml:4:7: webhook sink"), "{}", e[0]);
        let e = parse("notifications.toml", "[[sink]]\ntopic = \"a\"\nurl = 3\n").expect_err("bad toml");
        assert!(e[0].to_string().starts_with("notifications.toml:"), "{}", e[0]);
        assert!(parse("n.toml", "colour = 1").is_err(), "unknown keys are errors");
    }
}
