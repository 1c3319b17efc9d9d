//! `swarming trigger`: one task from flags, `{"tasks": [...]}` to
//! `-json-output` (alias `-dump-json`).

use super::base::{rpc_text, Ctx, Features, OutputJson, UNLIMITED};
use super::flags::{self, FlagSet};
use super::output::Sink;
use super::Verb;
use crate::args::Env;
use muster_api::pb;

pub(super) const VERB: Verb = Verb {
    name: "trigger",
    usage_line: "trigger -S <server> <parameters>",
    short: "triggers a single Swarming task",
    long: "Triggers a single Swarming task.",
    features: Features {
        min_args: 0,
        max_args: UNLIMITED,
        measure_duration: true,
        uses_cas: false,
        output_json: OutputJson { enabled: true, alias: Some("dump-json"), usage: None, default_stdout: false },
    },
    register,
};

fn containment(_: &[String], v: &str) -> Result<(), String> {
    if containment_type(v).is_none() {
        return Err("flagenum: Invalid value; must be one of [auto, job_object, none, not_specified]".to_string());
    }
    Ok(())
}

fn containment_type(v: &str) -> Option<pb::containment::ContainmentType> {
    use pb::containment::ContainmentType as C;
    Some(match v {
        "none" => C::None,
        "auto" => C::Auto,
        "job_object" => C::JobObject,
        "not_specified" => C::NotSpecified,
        _ => return None,
    })
}

fn optional_dimension(so_far: &[String], v: &str) -> Result<(), String> {
    if v.is_empty() {
        return Ok(());
    }
    let _ = so_far;
    parse_optional_dimension(v).map(|_| ())
}

/// `key=value:secs` → (key, value, secs).
fn parse_optional_dimension(s: &str) -> Result<(String, String, i64), String> {
    let (k, val_exp) = s.split_once('=').ok_or_else(|| format!("cannot find key in the optional dimension: {s:?}"))?;
    let colon = val_exp.rfind(':').ok_or_else(|| {
        format!("cannot find \":\" between value and expiration in the optional dimension: {val_exp:?}")
    })?;
    let exp = val_exp[colon + 1..]
        .parse::<i64>()
        .map_err(|_| format!("cannot parse the expiration in the optional dimension: {val_exp:?}"))?;
    Ok((k.to_string(), val_exp[..colon].to_string(), exp))
}

fn register(fs: &mut FlagSet) {
    fs.string("cas-instance", "", "CAS instance (GCP). Format is \"projects/<project_id>/instances/<instance_id>\". Default is constructed from -server.");
    fs.string("digest", "", "Digest of root directory uploaded to CAS `<Hash>/<Size>`.");
    fs.list("dimension", flags::map_entry, "Dimension to select the right kind of bot. In the form of `key=value`");
    fs.alias("d", "dimension", "Alias for -dimension.");
    fs.list("env", flags::map_entry, "Environment variables to set.");
    fs.list("env-prefix", flags::non_empty, "Environment prefixes to set.");
    fs.bool("idempotent", false, "When set, the server will actively try to find a previous task with the same parameter and return this result instead if possible.");
    fs.list("containment-type", containment, "Specify which type of process containment to use. Choices are: auto, job_object, none, not_specified (default none)");
    fs.int("hard-timeout", 3600, "Seconds to allow the task to complete.");
    fs.int("io-timeout", 1200, "Seconds to allow the task to be silent.");
    fs.int("grace-period", 30, "Seconds to wait after sending SIGBREAK.");
    fs.list("cipd-package", flags::map_entry, "(repeatable) CIPD packages to install on the swarming bot. This takes a parameter of `[installdir:]pkgname=version`. Using an empty version will remove the package. The installdir is optional and defaults to '.'.");
    fs.list("named-cache", flags::map_entry, "This takes a parameter of `name=cachedir`.");
    fs.list(
        "output",
        flags::non_empty,
        "(repeatable) Specify an output file or directory that can be retrieved via collect.",
    );
    fs.list(
        "optional-dimension",
        optional_dimension,
        "Format: <key>=<value>:<expiration>. See -expiration for the requirement.",
    );
    fs.string("relative-cwd", "", "Use this flag instead of the isolated 'relative_cwd'.");
    fs.string("service-account", "", "Email of a service account to run the task as, or literal \"bot\" string to indicate that the task should use the same account the bot itself is using to authenticate to Swarming. Don't use task service accounts if not given (default).");
    fs.string("secret-bytes-path", "", "Specify the secret bytes file path.");
    fs.string("task-name", "", "Display name of the task. Defaults to <user>/<dimensions>.");
    fs.int("priority", 200, "The lower value, the more important the task.");
    fs.list("tag", flags::non_empty, "Tags to assign to the task. In the form of `key:value`.");
    fs.string("user", "", "User associated with the task. Defaults to $USER.");
    fs.int(
        "expiration",
        6 * 60 * 60,
        "Seconds to allow the task to be pending for a bot to run before this task request expires.",
    );
    fs.bool("enable-resultdb", false, "Enable ResultDB for this task.");
    fs.string("realm", "", "Realm name for this task.");
}

/// A parsed `trigger`.
pub(super) struct Trigger {
    fs_values: Values,
    command: Vec<String>,
    parent_task_id: String,
    warn: Option<String>,
}

struct Values {
    cas_instance: String,
    digest: String,
    dimensions: Vec<(String, String)>,
    env: Vec<(String, String)>,
    env_prefix: Vec<String>,
    idempotent: bool,
    containment: pb::containment::ContainmentType,
    hard_timeout: i64,
    io_timeout: i64,
    grace_period: i64,
    cipd: Vec<(String, String)>,
    named_cache: Vec<(String, String)>,
    outputs: Vec<String>,
    optional_dimension: Option<(String, String, i64)>,
    relative_cwd: String,
    service_account: String,
    secret_bytes_path: String,
    task_name: String,
    priority: i64,
    tags: Vec<String>,
    user: String,
    expiration: i64,
    enable_resultdb: bool,
    realm: String,
}

pub(super) fn parse(fs: &FlagSet, args: Vec<String>, env: &Env, server: &str) -> Result<Trigger, String> {
    let dimensions = flags::sorted_map(&fs.get_list("dimension"));
    if dimensions.is_empty() {
        return Err("please specify at least one dimension via -dimension".to_string());
    }
    if args.is_empty() {
        return Err("please specify command after '--'".to_string());
    }
    let mut user = fs.get_str("user");
    if user.is_empty() {
        user = env.user.clone();
    }
    let (parent_task_id, warn) = super::spawn_tasks::parent_for(env, server);
    let containment = fs
        .get_list("containment-type")
        .last()
        .and_then(|v| containment_type(v))
        .unwrap_or(pb::containment::ContainmentType::None);
    let optional_dimension = match fs.get_list("optional-dimension").iter().rev().find(|s| !s.is_empty()) {
        Some(s) => Some(parse_optional_dimension(s)?),
        None => None,
    };
    Ok(Trigger {
        fs_values: Values {
            cas_instance: fs.get_str("cas-instance"),
            digest: fs.get_str("digest"),
            dimensions,
            env: flags::sorted_map(&fs.get_list("env")),
            env_prefix: fs.get_list("env-prefix"),
            idempotent: fs.get_bool("idempotent"),
            containment,
            hard_timeout: fs.get_int("hard-timeout"),
            io_timeout: fs.get_int("io-timeout"),
            grace_period: fs.get_int("grace-period"),
            cipd: flags::sorted_map(&fs.get_list("cipd-package")),
            named_cache: flags::sorted_map(&fs.get_list("named-cache")),
            outputs: fs.get_list("output"),
            optional_dimension,
            relative_cwd: fs.get_str("relative-cwd"),
            service_account: fs.get_str("service-account"),
            secret_bytes_path: fs.get_str("secret-bytes-path"),
            task_name: fs.get_str("task-name"),
            priority: fs.get_int("priority"),
            tags: fs.get_list("tag"),
            user,
            expiration: fs.get_int("expiration"),
            enable_resultdb: fs.get_bool("enable-resultdb"),
            realm: fs.get_str("realm"),
        },
        command: args,
        parent_task_id,
        warn,
    })
}

/// `<Hash>/<Size>` of a CAS digest.
fn parse_digest(s: &str) -> Result<pb::Digest, String> {
    let (hash, size) = s.split_once('/').ok_or_else(|| format!("expected digest in the form hash/size, got {s}"))?;
    if hash.len() != 64 {
        return Err(format!("valid hash length is 64, got length {} ({hash})", hash.len()));
    }
    if !hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(format!("hash is not a lowercase hex string ({hash})"));
    }
    let size_bytes: i64 = size.parse().map_err(|e| format!("invalid size in digest {s}: {e}"))?;
    if size_bytes < 0 {
        return Err(format!("expected non-negative size, got {size_bytes}"));
    }
    Ok(pb::Digest { hash: hash.to_string(), size_bytes })
}

/// The NewTaskRequest upstream builds from these flags, with this request
/// UUID.
fn request(
    v: &Values,
    command: &[String],
    parent_task_id: &str,
    server: &str,
    uuid: &str,
) -> Result<pb::NewTaskRequest, String> {
    let task_name = if v.task_name.is_empty() {
        let dims: Vec<String> = v.dimensions.iter().map(|(k, val)| format!("{k}={val}")).collect();
        format!("{}/{}", v.user, dims.join("_"))
    } else {
        v.task_name.clone()
    };
    let secret_bytes = if v.secret_bytes_path.is_empty() {
        Vec::new()
    } else {
        std::fs::read(&v.secret_bytes_path)
            .map_err(|e| format!("failed to read secret bytes from {}: {e}", v.secret_bytes_path))?
    };
    let cas_input_root = if v.digest.is_empty() {
        None
    } else {
        let d = parse_digest(&v.digest).map_err(|e| format!("invalid digest: {}: {e}", v.digest))?;
        let cas_instance = if v.cas_instance.is_empty() {
            let host = server.split("://").nth(1).unwrap_or(server).split(['/', ',']).next().unwrap_or("");
            let host = host.split(':').next().unwrap_or(host);
            match host.strip_suffix(".appspot.com") {
                Some(project) => format!("projects/{project}/instances/default_instance"),
                None => return Err(format!("server url should have '.appspot.com' suffix: {server}")),
            }
        } else {
            v.cas_instance.clone()
        };
        Some(pb::CasReference { cas_instance, digest: Some(d) })
    };
    let mut prefixes: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for p in &v.env_prefix {
        let (k, val) = p.split_once('=').ok_or_else(|| format!("bad -env-prefix {p:?}: expected KEY=PATH"))?;
        prefixes.entry(k.to_string()).or_default().push(val.to_string());
    }
    let pairs = |m: &[(String, String)]| -> Vec<pb::StringPair> {
        m.iter().map(|(k, v)| pb::StringPair { key: k.clone(), value: v.clone() }).collect()
    };
    let cipd_input = if v.cipd.is_empty() {
        None
    } else {
        let mut pkgs: Vec<pb::CipdPackage> = v
            .cipd
            .iter()
            .map(|(k, version)| {
                let (path, name) = match k.split_once(':') {
                    Some((p, n)) => (p.to_string(), n.to_string()),
                    None => (String::new(), k.clone()),
                };
                pb::CipdPackage { package_name: name, version: version.clone(), path }
            })
            .collect();
        pkgs.sort_by(|a, b| (&a.package_name, &a.version, &a.path).cmp(&(&b.package_name, &b.version, &b.path)));
        Some(pb::CipdInput { packages: pkgs, ..Default::default() })
    };
    let properties = pb::TaskProperties {
        command: command.to_vec(),
        relative_cwd: v.relative_cwd.clone(),
        dimensions: pairs(&v.dimensions),
        env: pairs(&v.env),
        env_prefixes: prefixes.into_iter().map(|(key, value)| pb::StringListPair { key, value }).collect(),
        execution_timeout_secs: v.hard_timeout as i32,
        grace_period_secs: v.grace_period as i32,
        idempotent: v.idempotent,
        cas_input_root,
        outputs: v.outputs.clone(),
        io_timeout_secs: v.io_timeout as i32,
        containment: Some(pb::Containment { containment_type: v.containment as i32, ..Default::default() }),
        secret_bytes,
        cipd_input,
        caches: v.named_cache.iter().map(|(n, p)| pb::CacheEntry { name: n.clone(), path: p.clone() }).collect(),
    };
    let mut slices = Vec::new();
    let mut base_expiration = v.expiration as i32;
    if let Some((k, val, exp)) = &v.optional_dimension {
        let mut p = properties.clone();
        p.dimensions.push(pb::StringPair { key: k.clone(), value: val.clone() });
        slices.push(pb::TaskSlice { properties: Some(p), expiration_secs: *exp as i32, wait_for_capacity: false });
        base_expiration = (base_expiration - *exp as i32).max(60);
    }
    slices.push(pb::TaskSlice {
        properties: Some(properties),
        expiration_secs: base_expiration,
        wait_for_capacity: false,
    });
    Ok(pb::NewTaskRequest {
        name: task_name,
        parent_task_id: parent_task_id.to_string(),
        priority: v.priority as i32,
        service_account: v.service_account.clone(),
        tags: v.tags.clone(),
        task_slices: slices,
        user: v.user.clone(),
        request_uuid: uuid.to_string(),
        resultdb: Some(pb::ResultDbCfg { enable: v.enable_resultdb }),
        realm: v.realm.clone(),
        ..Default::default()
    })
}

impl Trigger {
    pub(super) async fn execute(self, ctx: &mut Ctx<'_>, sink: &mut Sink) -> Result<(), String> {
        if let Some(w) = &self.warn {
            ctx.warn(w);
        }
        let req = request(
            &self.fs_values,
            &self.command,
            &self.parent_task_id,
            &ctx.server,
            &crate::args::new_request_uuid(),
        )
        .map_err(|e| format!("failed to process trigger options: {e}"))?;
        let result = ctx.client.new_task(&req).await.map_err(|e| rpc_text(&e))?;
        let server = ctx.client.server().to_string();
        let hint = if ctx.output_json.is_empty() {
            format!(
                "To collect results use:\n  {} collect -server {server} -output-dir out -task-summary-json summary.json {}",
                ctx.prog, result.task_id
            )
        } else {
            format!(
                "To collect results use:\n  {} collect -server {server} -output-dir out -task-summary-json summary.json -requests-json {}",
                ctx.prog, ctx.output_json
            )
        };
        ctx.info(&hint);
        ctx.info(&format!("The task status:\n  {server}/task?id={}\n", result.task_id));
        let out = pb_tasks_output(vec![result]);
        sink.proto(&out).map_err(|e| e.to_string())
    }
}

/// `{"tasks": [...]}` (upstream's SpawnTasksOutput) as a serializable value.
#[derive(serde::Serialize)]
pub(super) struct TasksOutput {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<pb::TaskRequestMetadataResponse>,
}

pub(super) fn pb_tasks_output(tasks: Vec<pb::TaskRequestMetadataResponse>) -> TasksOutput {
    TasksOutput { tasks }
}
