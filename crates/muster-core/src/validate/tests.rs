//! Table-driven tests of the validation rules: a valid baseline request and
//! one mutation per rule, boundary values, and property tests of the
//! documented key/value regexes.

use super::*;
use crate::dims::{BotDimensions, TaskDimensions};
use crate::task::{CacheEntry, CasReference, CipdInput, CipdPackage, Digest, TaskProperties, TaskSlice};
use proptest::prelude::*;

fn s(v: &str) -> String {
    v.to_string()
}

fn pkg(name: &str, version: &str, path: &str) -> CipdPackage {
    CipdPackage { package_name: s(name), version: s(version), path: s(path) }
}

fn props() -> TaskProperties {
    TaskProperties {
        command: vec![s("python3"), s("-c"), s("print('hi')")],
        dimensions: TaskDimensions(vec![(s("os"), s("Linux|Mac")), (s("pool"), s("default"))]),
        execution_timeout_secs: 600,
        io_timeout_secs: 300,
        grace_period_secs: 30,
        env: vec![(s("FOO"), s("bar"))],
        env_prefixes: vec![(s("PATH"), vec![s("bin"), s(".")])],
        cas_input_root: Some(CasReference {
            cas_instance: s("projects/p/instances/default_instance"),
            digest: Some(Digest {
                hash: s("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
                size_bytes: 0,
            }),
        }),
        outputs: vec![s("out/result.json")],
        caches: vec![CacheEntry { name: s("git_cache"), path: s("cache/git") }],
        cipd_input: Some(CipdInput {
            server: s("https://chrome-infra-packages.appspot.com"),
            client_package: Some(pkg("infra/tools/cipd/${platform}", "git_revision:deadbeef", "")),
            packages: vec![
                pkg("infra/tools/luci/vpython/${platform}", "latest", "bin"),
                pkg("infra/python/cpython3/${os=linux,mac}-${arch}", "version:3.11", "."),
            ],
        }),
        ..Default::default()
    }
}

fn slice() -> TaskSlice {
    TaskSlice { properties: props(), expiration_secs: 3600, wait_for_capacity: false }
}

/// A request that passes every rule.
fn base() -> NewTaskRequest {
    NewTaskRequest {
        name: s("hello"),
        priority: 100,
        realm: s("myproject:ci"),
        tags: vec![s("purpose:demo")],
        task_slices: vec![slice()],
        request_uuid: s("6f2c3d5e-0000-4000-8000-000000000000"),
        ..Default::default()
    }
}

fn p0(r: &mut NewTaskRequest) -> &mut TaskProperties {
    &mut r.task_slices[0].properties
}

fn dims(r: &mut NewTaskRequest) -> &mut Vec<(String, String)> {
    &mut p0(r).dimensions.0
}

fn cipd(r: &mut NewTaskRequest) -> &mut CipdInput {
    p0(r).cipd_input.get_or_insert_with(CipdInput::default)
}

/// A second slice, different from the first one.
fn add_slice(r: &mut NewTaskRequest) -> &mut TaskSlice {
    let mut sl = slice();
    sl.properties.command.push(format!("slice{}", r.task_slices.len()));
    r.task_slices.push(sl);
    r.task_slices.last_mut().expect("just pushed")
}

type Mutation = fn(&mut NewTaskRequest);

/// (case, mutation, None = accepted / Some(expected message substring)).
fn cases() -> Vec<(&'static str, Mutation, Option<&'static str>)> {
    vec![
        // New task, item 1: slices and pool.
        ("no slices", |r| r.task_slices.clear(), Some("bad request: task_slices: task_slices is required")),
        (
            "no pool",
            |r| dims(r).retain(|(k, _)| k != "pool"),
            Some("bad request: task_slices[0].properties.dimensions: pool is required"),
        ),
        ("two pools", |r| dims(r).push((s("pool"), s("other"))), Some("pool cannot be specified more than once")),
        ("pool with OR", |r| dims(r)[1].1 = s("a|b"), Some("dimensions: pool must have exactly one value")),
        (
            "slices use different pools",
            |r| add_slice(r).properties.dimensions.0[1].1 = s("other"),
            Some("task_slices[1].properties.dimensions: each task slice must use the same pool dimensions"),
        ),
        // New task, items 2-4.
        ("no name", |r| r.name.clear(), Some("bad request: name: name is required")),
        (
            "deprecated properties",
            |r| r.properties = Some(props()),
            Some("bad request: properties: properties is deprecated, use task_slices instead."),
        ),
        ("deprecated expiration", |r| r.expiration_secs = 60, Some("bad request: expiration_secs: ")),
        (
            "8 slices",
            |r| {
                for _ in 0..7 {
                    add_slice(r);
                }
            },
            None,
        ),
        (
            "9 slices",
            |r| {
                for _ in 0..8 {
                    add_slice(r);
                }
            },
            Some("bad request: task_slices: can have up to 8 slices"),
        ),
        // New task, items 3-4.
        ("parent run id", |r| r.parent_task_id = s("6663cfc78b41fb11"), None),
        ("parent bad id", |r| r.parent_task_id = s("XYZ"), Some("bad request: parent_task_id: bad task ID")),
        ("parent one char", |r| r.parent_task_id = s("1"), Some("bad request: parent_task_id: bad task ID")),
        ("priority 0", |r| r.priority = 0, Some("bad request: priority: must be between 1 and 255, got 0")),
        ("priority 1", |r| r.priority = 1, None),
        ("priority 255", |r| r.priority = 255, None),
        ("priority 256", |r| r.priority = 256, Some("bad request: priority: must be between 1 and 255")),
        // New task, item 5.
        ("service account none", |r| r.service_account = s("none"), None),
        ("service account bot", |r| r.service_account = s("bot"), None),
        ("service account email", |r| r.service_account = s("sa@proj.iam.gserviceaccount.com"), None),
        ("service account junk", |r| r.service_account = s("not an email"), Some("bad request: service_account: ")),
        (
            "service account 129 chars",
            |r| r.service_account = format!("{}@b.com", "a".repeat(123)),
            Some("bad request: service_account: must be at most 128 characters"),
        ),
        ("service account 128 chars", |r| r.service_account = format!("{}@b.com", "a".repeat(122)), None),
        // New task, item 6.
        ("pubsub token without topic", |r| r.pubsub_auth_token = s("t"), Some("pubsub_auth_token: requires pubsub_topic")),
        ("pubsub userdata without topic", |r| r.pubsub_userdata = s("u"), Some("pubsub_userdata: requires pubsub_topic")),
        (
            "pubsub valid",
            |r| {
                r.pubsub_topic = s("projects/my-project/topics/task-updates");
                r.pubsub_userdata = "u".repeat(1024);
                r.pubsub_auth_token = s("tok");
            },
            None,
        ),
        ("pubsub google.com project", |r| r.pubsub_topic = s("projects/google.com:p/topics/abcd"), None),
        (
            "pubsub userdata 1025",
            |r| {
                r.pubsub_topic = s("projects/my-project/topics/task-updates");
                r.pubsub_userdata = "u".repeat(1025);
            },
            Some("bad request: pubsub_userdata: must be at most 1024 bytes"),
        ),
        ("pubsub topic shape", |r| r.pubsub_topic = s("topics/x"), Some("bad request: pubsub_topic: must be projects/")),
        ("pubsub bad project", |r| r.pubsub_topic = s("projects/P/topics/abcd"), Some("pubsub_topic: invalid project")),
        ("pubsub short topic", |r| r.pubsub_topic = s("projects/my-project/topics/abc"), Some("pubsub_topic: invalid topic id")),
        ("pubsub goog topic", |r| r.pubsub_topic = s("projects/my-project/topics/google"), Some("must not start with \"goog\"")),
        (
            "pubsub topic too long",
            |r| r.pubsub_topic = format!("projects/my-project/topics/{}", "a".repeat(1000)),
            Some("pubsub_topic: must be at most 1024 bytes"),
        ),
        // New task, item 7.
        ("ping tolerance 0", |r| r.bot_ping_tolerance_secs = 0, None),
        ("ping tolerance 59", |r| r.bot_ping_tolerance_secs = 59, Some("bad request: bot_ping_tolerance_secs: must be 0")),
        ("ping tolerance 60", |r| r.bot_ping_tolerance_secs = 60, None),
        ("ping tolerance 1200", |r| r.bot_ping_tolerance_secs = 1200, None),
        ("ping tolerance 1201", |r| r.bot_ping_tolerance_secs = 1201, Some("bot_ping_tolerance_secs: ")),
        // Realm.
        ("realm empty", |r| r.realm.clear(), None),
        ("realm root", |r| r.realm = s("proj:@root"), None),
        ("realm without project", |r| r.realm = s("ci"), Some("bad request: realm: must be <project>:<realm>")),
        ("realm bad project", |r| r.realm = s("Proj:ci"), Some("bad request: realm: bad project name")),
        ("realm bad name", |r| r.realm = s("proj:C I"), Some("bad request: realm: bad realm name")),
        // New task, item 8: tags.
        ("256 tags", |r| r.tags = (0..256).map(|i| format!("k{i}:v")).collect(), None),
        ("257 tags", |r| r.tags = (0..257).map(|i| format!("k{i}:v")).collect(), Some("bad request: tags: can have up to 256")),
        ("tag without colon", |r| r.tags.push(s("nocolon")), Some("bad request: tags[1]: must be key:value")),
        ("tag empty key", |r| r.tags.push(s(":v")), Some("bad request: tags[1]: key must not be empty")),
        ("tag empty value", |r| r.tags.push(s("k:")), None),
        ("tag value with colon", |r| r.tags.push(s("url:http://x")), None),
        ("tag key 64", |r| r.tags.push(format!("{}:v", "k".repeat(64))), None),
        ("tag key 65", |r| r.tags.push(format!("{}:v", "k".repeat(65))), Some("tags[1]: key must be at most 64")),
        ("tag value 256", |r| r.tags.push(format!("k:{}", "v".repeat(256))), None),
        ("tag value 257", |r| r.tags.push(format!("k:{}", "v".repeat(257))), Some("tags[1]: value must be at most 256")),
        ("tag value spaces", |r| r.tags.push(s("k: v")), Some("tags[1]: value must not have leading or trailing")),
        ("tag reserved", |r| r.tags.push(s("swarming.terminate:1")), Some("tags[1]: key swarming.terminate is reserved")),
        // New task, item 9: slices.
        ("secret 20480", |r| p0(r).secret_bytes = Some(vec![1; 20480]), None),
        (
            "secret 20481",
            |r| p0(r).secret_bytes = Some(vec![1; 20481]),
            Some("bad request: task_slices[0].properties.secret_bytes: must be at most 20480 bytes"),
        ),
        (
            "same secret in two slices",
            |r| {
                p0(r).secret_bytes = Some(vec![1, 2]);
                add_slice(r).properties.secret_bytes = Some(vec![1, 2]);
            },
            None,
        ),
        (
            "secret in one of two slices",
            |r| {
                add_slice(r).properties.secret_bytes = Some(vec![1, 2]);
            },
            None,
        ),
        (
            "different secrets",
            |r| {
                p0(r).secret_bytes = Some(vec![1, 2]);
                add_slice(r).properties.secret_bytes = Some(vec![3]);
            },
            Some("task_slices[1].properties.secret_bytes: must be identical"),
        ),
        ("expiration 0", |r| r.task_slices[0].expiration_secs = 0, Some("task_slices[0].expiration_secs: must be between 30")),
        ("expiration 29", |r| r.task_slices[0].expiration_secs = 29, Some("task_slices[0].expiration_secs: ")),
        ("expiration 30", |r| r.task_slices[0].expiration_secs = 30, None),
        ("expiration 604800", |r| r.task_slices[0].expiration_secs = 604800, None),
        ("expiration 604801", |r| add_slice(r).expiration_secs = 604801, Some("task_slices[1].expiration_secs: ")),
        (
            "duplicate slices",
            |r| {
                let mut sl = slice();
                sl.expiration_secs = 60;
                r.task_slices.push(sl);
            },
            Some("bad request: task_slices[1]: cannot request duplicate task slice"),
        ),
        ("pool task template 3", |r| r.pool_task_template = 3, None),
        ("pool task template 4", |r| r.pool_task_template = 4, Some("bad request: pool_task_template: ")),
        // Task properties: command and timeouts.
        ("no command", |r| p0(r).command.clear(), Some("bad request: task_slices[0].properties.command: is required")),
        ("128 args", |r| p0(r).command = vec![s("a"); 128], None),
        ("129 args", |r| p0(r).command = vec![s("a"); 129], Some("properties.command: can have up to 128 arguments")),
        ("exec timeout 0", |r| p0(r).execution_timeout_secs = 0, Some("properties.execution_timeout_secs: must be between 30 and 601140")),
        ("exec timeout 29", |r| p0(r).execution_timeout_secs = 29, Some("properties.execution_timeout_secs: ")),
        ("exec timeout 30", |r| p0(r).execution_timeout_secs = 30, None),
        ("exec timeout 601140", |r| p0(r).execution_timeout_secs = 601140, None),
        ("exec timeout 601141", |r| p0(r).execution_timeout_secs = 601141, Some("properties.execution_timeout_secs: ")),
        ("io timeout 0", |r| p0(r).io_timeout_secs = 0, None),
        ("io timeout 29", |r| p0(r).io_timeout_secs = 29, Some("properties.io_timeout_secs: must be 0 or between 30 and 601140")),
        ("io timeout 30", |r| p0(r).io_timeout_secs = 30, None),
        ("io timeout 601140", |r| p0(r).io_timeout_secs = 601140, None),
        ("io timeout 601141", |r| p0(r).io_timeout_secs = 601141, Some("properties.io_timeout_secs: ")),
        ("grace -1", |r| p0(r).grace_period_secs = -1, Some("properties.grace_period_secs: must be between 0 and 3600")),
        ("grace 0", |r| p0(r).grace_period_secs = 0, None),
        ("grace 3600", |r| p0(r).grace_period_secs = 3600, None),
        ("grace 3601", |r| p0(r).grace_period_secs = 3601, Some("properties.grace_period_secs: ")),
        // relative_cwd.
        ("cwd relative", |r| p0(r).relative_cwd = s("src/out"), None),
        ("cwd backslashes", |r| p0(r).relative_cwd = s("src\\out"), None),
        ("cwd dot", |r| p0(r).relative_cwd = s("."), None),
        ("cwd absolute", |r| p0(r).relative_cwd = s("/src"), Some("properties.relative_cwd: must be a relative path")),
        ("cwd drive", |r| p0(r).relative_cwd = s("c:\\src"), Some("properties.relative_cwd: must be a relative path")),
        ("cwd double slash", |r| p0(r).relative_cwd = s("a//b"), Some("properties.relative_cwd: must be normalized")),
        ("cwd dot segment", |r| p0(r).relative_cwd = s("a/./b"), Some("properties.relative_cwd: must be normalized")),
        ("cwd trailing slash", |r| p0(r).relative_cwd = s("a/"), Some("properties.relative_cwd: must be normalized")),
        ("cwd escape", |r| p0(r).relative_cwd = s("../x"), Some("properties.relative_cwd: must not contain \"..\"")),
        ("cwd 256", |r| p0(r).relative_cwd = "a".repeat(256), None),
        ("cwd 257", |r| p0(r).relative_cwd = "a".repeat(257), Some("properties.relative_cwd: must be at most 256")),
        // env.
        ("64 env", |r| p0(r).env = (0..64).map(|i| (format!("K{i}"), s("v"))).collect(), None),
        ("65 env", |r| p0(r).env = (0..65).map(|i| (format!("K{i}"), s("v"))).collect(), Some("properties.env: can have up to 64")),
        (
            "env bad key",
            |r| p0(r).env.push((s("1A"), s("v"))),
            Some("bad request: task_slices[0].properties.env[1].key: must match ^[A-Za-z_][A-Za-z0-9_]*$"),
        ),
        ("env empty key", |r| p0(r).env.push((s(""), s("v"))), Some("properties.env[1].key: must match")),
        ("env duplicate key", |r| p0(r).env.push((s("FOO"), s("baz"))), Some("properties.env[1].key: duplicate key")),
        ("env key 64", |r| p0(r).env.push(("K".repeat(64), s("v"))), None),
        ("env key 65", |r| p0(r).env.push(("K".repeat(65), s("v"))), Some("properties.env[1].key: must be at most 64")),
        ("env empty value unsets", |r| p0(r).env.push((s("BAR"), s(""))), None),
        ("env value 1024", |r| p0(r).env.push((s("BAR"), "v".repeat(1024))), None),
        ("env value 1025", |r| p0(r).env.push((s("BAR"), "v".repeat(1025))), Some("properties.env[1].value: must be at most 1024")),
        // env_prefixes.
        (
            "65 env prefixes",
            |r| p0(r).env_prefixes = (0..65).map(|i| (format!("K{i}"), vec![s("a")])).collect(),
            Some("properties.env_prefixes: can have up to 64"),
        ),
        ("env prefix bad key", |r| p0(r).env_prefixes[0].0 = s("A-B"), Some("properties.env_prefixes[0].key: must match")),
        ("env prefix duplicate key", |r| p0(r).env_prefixes.push((s("PATH"), vec![s("x")])), Some("env_prefixes[1].key: duplicate key")),
        ("env prefix no values", |r| p0(r).env_prefixes[0].1.clear(), Some("properties.env_prefixes[0].value: must have at least one path")),
        ("env prefix empty path", |r| p0(r).env_prefixes[0].1.push(s("")), Some("env_prefixes[0].value[2]: is required")),
        ("env prefix dotdot", |r| p0(r).env_prefixes[0].1.push(s("..")), Some("env_prefixes[0].value[2]: must not contain \"..\"")),
        ("env prefix escape", |r| p0(r).env_prefixes[0].1.push(s("a/../../b")), Some("env_prefixes[0].value[2]: must not contain \"..\"")),
        ("env prefix absolute", |r| p0(r).env_prefixes[0].1.push(s("/usr/bin")), Some("env_prefixes[0].value[2]: must be a relative path")),
        ("env prefix backslash", |r| p0(r).env_prefixes[0].1.push(s("a\\b")), Some("env_prefixes[0].value[2]: must not contain backslashes")),
        ("env prefix not normalized", |r| p0(r).env_prefixes[0].1.push(s("a//b")), Some("env_prefixes[0].value[2]: must be normalized")),
        // cas_input_root.
        ("no cas", |r| p0(r).cas_input_root = None, None),
        (
            "cas without instance",
            |r| p0(r).cas_input_root.as_mut().expect("cas").cas_instance.clear(),
            Some("properties.cas_input_root.cas_instance: is required"),
        ),
        (
            "cas bad instance",
            |r| p0(r).cas_input_root.as_mut().expect("cas").cas_instance = s("instances/x"),
            Some("properties.cas_input_root.cas_instance: must match"),
        ),
        (
            "cas without digest",
            |r| p0(r).cas_input_root.as_mut().expect("cas").digest = None,
            Some("properties.cas_input_root.digest: is required"),
        ),
        (
            "cas without hash",
            |r| p0(r).cas_input_root.as_mut().and_then(|c| c.digest.as_mut()).expect("digest").hash.clear(),
            Some("properties.cas_input_root.digest.hash: is required"),
        ),
        (
            "cas negative size",
            |r| p0(r).cas_input_root.as_mut().and_then(|c| c.digest.as_mut()).expect("digest").size_bytes = -1,
            Some("properties.cas_input_root.digest.size_bytes: must be >= 0"),
        ),
        // outputs.
        ("4096 outputs", |r| p0(r).outputs = (0..4096).map(|i| format!("o{i}")).collect(), None),
        ("4097 outputs", |r| p0(r).outputs = (0..4097).map(|i| format!("o{i}")).collect(), Some("properties.outputs: can have up to 4096")),
        ("output absolute", |r| p0(r).outputs.push(s("/etc/passwd")), Some("properties.outputs[1]: must be a relative path")),
        ("output escape", |r| p0(r).outputs.push(s("../x")), Some("properties.outputs[1]: must not contain \"..\"")),
        ("output backslash", |r| p0(r).outputs.push(s("a\\b")), Some("properties.outputs[1]: must not contain backslashes")),
        ("output empty", |r| p0(r).outputs.push(s("")), Some("properties.outputs[1]: is required")),
        ("output 512", |r| p0(r).outputs.push("o".repeat(512)), None),
        ("output 513", |r| p0(r).outputs.push("o".repeat(513)), Some("properties.outputs[1]: must be at most 512")),
        // caches.
        (
            "32 caches",
            |r| p0(r).caches = (0..32).map(|i| CacheEntry { name: format!("c{i}"), path: format!("c/{i}") }).collect(),
            None,
        ),
        (
            "33 caches",
            |r| p0(r).caches = (0..33).map(|i| CacheEntry { name: format!("c{i}"), path: format!("c/{i}") }).collect(),
            Some("properties.caches: can have up to 32"),
        ),
        ("cache bad name", |r| p0(r).caches[0].name = s("Git"), Some("properties.caches[0].name: must match ^[a-z0-9_]+$")),
        ("cache empty name", |r| p0(r).caches[0].name.clear(), Some("properties.caches[0].name: is required")),
        ("cache name 128", |r| p0(r).caches[0].name = "c".repeat(128), None),
        ("cache name 129", |r| p0(r).caches[0].name = "c".repeat(129), Some("properties.caches[0].name: must be at most 128")),
        (
            "cache duplicate name",
            |r| p0(r).caches.push(CacheEntry { name: s("git_cache"), path: s("other") }),
            Some("properties.caches[1].name: duplicate of"),
        ),
        ("cache no path", |r| p0(r).caches[0].path.clear(), Some("properties.caches[0].path: is required")),
        ("cache absolute path", |r| p0(r).caches[0].path = s("/cache"), Some("properties.caches[0].path: must be a relative path")),
        ("cache path not normalized", |r| p0(r).caches[0].path = s("cache/./git"), Some("properties.caches[0].path: must be normalized")),
        (
            "cache paths overlap",
            |r| p0(r).caches.push(CacheEntry { name: s("sub"), path: s("cache/git/sub") }),
            Some("properties.caches[1].path: \"cache/git/sub\" overlaps"),
        ),
        (
            "cache paths share a prefix only",
            |r| p0(r).caches.push(CacheEntry { name: s("gitx"), path: s("cache/gitx") }),
            None,
        ),
        (
            "cache overlaps cipd",
            |r| p0(r).caches[0].path = s("bin/cache"),
            Some("properties.caches[0].path: \"bin/cache\" overlaps task_slices[0].properties.cipd_input.packages[0].path"),
        ),
        // cipd_input.
        ("cipd none", |r| p0(r).cipd_input = None, None),
        ("cipd default server", |r| cipd(r).server.clear(), None),
        ("cipd localhost http", |r| cipd(r).server = s("http://localhost:8080"), None),
        ("cipd loopback v6", |r| cipd(r).server = s("http://[::1]:8080/"), None),
        ("cipd plain http", |r| cipd(r).server = s("http://cipd.example.com"), Some("properties.cipd_input.server: must be https://")),
        ("cipd ftp", |r| cipd(r).server = s("ftp://x"), Some("properties.cipd_input.server: must be an https:// URL")),
        (
            "cipd client with path",
            |r| cipd(r).client_package.as_mut().expect("client").path = s("bin"),
            Some("properties.cipd_input.client_package.path: must be empty"),
        ),
        (
            "cipd client bad version",
            |r| cipd(r).client_package.as_mut().expect("client").version = s("Not A Version"),
            Some("properties.cipd_input.client_package.version: invalid version"),
        ),
        ("cipd bad name", |r| cipd(r).packages[0].package_name = s("Infra/Tools"), Some("cipd_input.packages[0].package_name: invalid package name")),
        ("cipd empty name", |r| cipd(r).packages[0].package_name.clear(), Some("cipd_input.packages[0].package_name: is required")),
        ("cipd bad template", |r| cipd(r).packages[0].package_name = s("a/${not valid}"), Some("cipd_input.packages[0].package_name: bad template")),
        ("cipd empty version", |r| cipd(r).packages[0].version.clear(), Some("cipd_input.packages[0].version: is required")),
        ("cipd absolute path", |r| cipd(r).packages[0].path = s("/bin"), Some("cipd_input.packages[0].path: must be a relative path")),
        ("cipd escaping path", |r| cipd(r).packages[0].path = s("../bin"), Some("cipd_input.packages[0].path: must not contain")),
        ("cipd path 257", |r| cipd(r).packages[0].path = "p".repeat(257), Some("cipd_input.packages[0].path: must be at most 256")),
        (
            "cipd same package twice",
            |r| {
                let p = cipd(r).packages[0].clone();
                cipd(r).packages.push(p);
            },
            Some("properties.cipd_input.packages[2]: package"),
        ),
        (
            "cipd same package in two paths",
            |r| {
                let mut p = cipd(r).packages[0].clone();
                p.path = s("bin2");
                cipd(r).packages.push(p);
            },
            None,
        ),
        (
            "cipd 64 packages",
            |r| cipd(r).packages = (0..64).map(|i| pkg(&format!("p{i}"), "latest", "")).collect(),
            None,
        ),
        (
            "cipd 65 packages",
            |r| cipd(r).packages = (0..65).map(|i| pkg(&format!("p{i}"), "latest", "")).collect(),
            Some("properties.cipd_input.packages: can have up to 64"),
        ),
        (
            "idempotent with a ref",
            |r| p0(r).idempotent = true,
            Some("cipd_input.packages[0].version: idempotent tasks must pin versions"),
        ),
        (
            "idempotent with pinned versions",
            |r| {
                p0(r).idempotent = true;
                cipd(r).packages[0].version = "a".repeat(40);
                cipd(r).packages[1].version = s("B1k9PjNzdA1hXDsWsxGVF5nyyiOPVaE3nSDa8W8-cLYC");
            },
            None,
        ),
        // Dimensions.
        ("dims AND on one key", |r| dims(r).push((s("os"), s("Ubuntu"))), None),
        ("dim id", |r| dims(r).push((s("id"), s("bot-1"))), None),
        (
            "dim bad key",
            |r| dims(r).push((s("1os"), s("x"))),
            Some("bad request: task_slices[0].properties.dimensions[2].key: must match ^[a-zA-Z\\-\\_\\.][0-9a-zA-Z\\-\\_\\.]*$"),
        ),
        ("dim key 64", |r| dims(r).push(("k".repeat(64), s("x"))), None),
        ("dim key 65", |r| dims(r).push(("k".repeat(65), s("x"))), Some("dimensions[2].key: must be at most 64")),
        ("dim empty value", |r| dims(r).push((s("gpu"), s(""))), Some("dimensions[2].value: must not be empty")),
        ("dim empty OR part", |r| dims(r).push((s("gpu"), s("a||b"))), Some("dimensions[2].value: must not be empty")),
        ("dim value spaces", |r| dims(r).push((s("gpu"), s(" nv"))), Some("dimensions[2].value: must not have leading or trailing whitespace")),
        ("dim value 256", |r| dims(r).push((s("gpu"), "v".repeat(256))), None),
        ("dim value 257", |r| dims(r).push((s("gpu"), "v".repeat(257))), Some("dimensions[2].value: must be at most 256")),
        ("dim repeated OR values", |r| dims(r)[0].1 = s("Linux|Linux"), Some("dimensions[0].value: \"Linux|Linux\" has repeated values")),
        ("dim id with colon", |r| dims(r).push((s("id"), s("a:b"))), Some("dimensions[2].value: id value must not contain ':'")),
        ("dim pool with colon", |r| dims(r)[1].1 = s("a:b"), Some("dimensions[1].value: pool value must not contain ':'")),
        ("dim other key with colon", |r| dims(r).push((s("gpu"), s("a:b"))), None),
        (
            "dim id twice",
            |r| {
                dims(r).push((s("id"), s("a")));
                dims(r).push((s("id"), s("b")));
            },
            Some("dimensions[3]: id cannot be specified more than once"),
        ),
        ("dim id OR", |r| dims(r).push((s("id"), s("a|b"))), Some("dimensions[2].value: id must have exactly one value")),
        ("dim exact duplicate", |r| dims(r).push((s("os"), s("Linux|Mac"))), Some("dimensions[2]: duplicate of task_slices[0].properties.dimensions[0]")),
        ("dim reordered duplicate", |r| dims(r).push((s("os"), s("Mac|Linux"))), Some("dimensions[2]: duplicate of")),
        (
            "8 alternatives",
            |r| {
                dims(r).push((s("a"), s("1|2")));
                dims(r).push((s("b"), s("1|2")));
            },
            None,
        ),
        (
            "9 alternatives",
            |r| {
                dims(r)[0].1 = s("Linux|Mac|Win");
                dims(r).push((s("a"), s("1|2|3")));
            },
            Some("properties.dimensions: too many alternatives: 9 > 8 (product of OR list sizes); reduce usage of |"),
        ),
        (
            "512 values",
            |r| {
                dims(r).remove(0);
                dims(r).extend((0..511).map(|i| (format!("k{i}"), s("v"))));
            },
            None,
        ),
        (
            "513 values",
            |r| {
                dims(r).remove(0);
                dims(r).extend((0..512).map(|i| (format!("k{i}"), s("v"))));
            },
            Some("properties.dimensions: too many dimension values: 513 > 512"),
        ),
    ]
}

#[test]
fn the_baseline_request_is_valid() {
    assert_eq!(validate_new_task(&base()), Ok(()));
}

#[test]
fn every_rule_accepts_or_rejects_its_mutation_with_a_message_naming_the_field() {
    let mut failures = Vec::new();
    for (name, mutate, want) in cases() {
        let mut r = base();
        mutate(&mut r);
        let got = validate_new_task(&r);
        match (want, &got) {
            (None, Ok(())) => {}
            (Some(sub), Err(e)) if e.message.contains(sub) && e.kind == crate::error::ErrorKind::InvalidArgument => {
                assert!(e.message.starts_with("bad request: "), "{name}: {}", e.message);
            }
            _ => failures.push(format!("{name}: want {want:?}, got {got:?}")),
        }
    }
    assert!(failures.is_empty(), "{} failing cases:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn violations_are_reported_in_spec_order() {
    // No name (step 3) and a bad priority (step 7): name wins.
    let mut r = base();
    r.name.clear();
    r.priority = 0;
    assert!(validate_new_task(&r).is_err_and(|e| e.message.contains("name is required")));
    // Missing pool (step 1) beats the missing name (step 3).
    let mut r = base();
    r.name.clear();
    r.task_slices[0].properties.dimensions.0.retain(|(k, _)| k != "pool");
    assert!(validate_new_task(&r).is_err_and(|e| e.message.contains("pool is required")));
    // Tags (step 12) before slice properties (step 13).
    let mut r = base();
    r.tags.push(s("bad"));
    r.task_slices[0].properties.command.clear();
    assert!(validate_new_task(&r).is_err_and(|e| e.message.contains("tags[1]")));
}

// ---- bot dimensions (docs/bot-protocol.md#dimensions-and-state) ----

fn bot(pairs: &[(&str, &[&str])]) -> BotDimensions {
    BotDimensions(pairs.iter().map(|(k, vs)| (s(k), vs.iter().map(|v| s(v)).collect())).collect())
}

#[test]
fn bot_dimensions_follow_the_bot_protocol_rules() {
    let ok = bot(&[("id", &["bot-1"]), ("pool", &["default"]), ("os", &["Debian", "Linux"]), ("cpu", &["x86-64"])]);
    assert_eq!(validate_bot_dimensions(&ok), Ok(()));
    let bad_cases: Vec<(BotDimensions, &str)> = vec![
        (bot(&[("pool", &["p"])]), "id must have exactly one value, got 0"),
        (bot(&[("id", &["a", "b"])]), "id must have exactly one value, got 2"),
        (bot(&[("id", &["a:b"])]), "dimensions[\"id\"][0]: id value must not contain ':'"),
        (bot(&[("id", &["a"]), ("pool", &["x:y"])]), "dimensions[\"pool\"][0]: pool value must not contain ':'"),
        (bot(&[("id", &["a"]), ("o s", &["x"])]), "dimensions key \"o s\": must match"),
        (bot(&[("id", &["a"]), ("os", &[])]), "dimensions[\"os\"]: must have at least one value"),
        (bot(&[("id", &["a"]), ("os", &[""])]), "dimensions[\"os\"][0]: must not be empty"),
        (bot(&[("id", &["a"]), ("os", &["Linux "])]), "leading or trailing whitespace"),
        (bot(&[("id", &["a"]), ("os", &["L", "L"])]), "dimensions[\"os\"][1]: duplicate value"),
    ];
    for (d, want) in bad_cases {
        let got = validate_bot_dimensions(&d);
        assert!(got.as_ref().is_err_and(|e| e.message.contains(want)), "{d:?}: want {want:?}, got {got:?}");
    }
    let long = "v".repeat(257);
    let d = bot(&[("id", &["a"]), ("os", &[long.as_str()])]);
    assert!(validate_bot_dimensions(&d).is_err_and(|e| e.message.contains("at most 256")));
}

// ---- listing filters (docs/client-api.md#paging-and-filters) ----

#[test]
fn tag_filters_parse_or_lists_and_dedupe_values() {
    let f = validate_tag_filter(&[s("os:Mac|Linux|Mac"), s("purpose:a:b")]).expect("valid filter");
    assert_eq!(f[0].key, "os");
    assert_eq!(f[0].values, vec![s("Linux"), s("Mac")]);
    assert_eq!(f[1].key, "purpose");
    assert_eq!(f[1].values, vec![s("a:b")]);
    for (t, want) in [
        ("nocolon", "tags[0]: \"nocolon\" must be key:value"),
        (":v", "tags[0]: key must not be empty"),
        (" k:v", "tags[0]: key must not have leading or trailing whitespace"),
        ("k:", "tags[0]: values must not be empty"),
        ("k:a|", "tags[0]: values must not be empty"),
        ("k: v", "tags[0]: values must not have leading or trailing whitespace"),
    ] {
        let got = validate_tag_filter(&[s(t)]);
        assert!(got.as_ref().is_err_and(|e| e.message.contains(want)), "{t}: got {got:?}");
    }
}

#[test]
fn dimension_filters_use_the_dimension_rules_and_allow_repeated_keys() {
    let pairs = vec![(s("os"), s("Linux")), (s("os"), s("Ubuntu")), (s("pool"), s("ci")), (s("os"), s("Linux"))];
    let f = validate_dimension_filter(&pairs).expect("valid filter");
    assert_eq!(f.len(), 4);
    let f = validate_dimension_filter(&[(s("gpu"), s("b|a|b"))]).expect("valid filter");
    assert_eq!(f[0].values, vec![s("a"), s("b")]);
    for ((k, v), want) in [
        (("1os", "x"), "dimensions[0].key: must match"),
        (("os", ""), "dimensions[0].value: must not be empty"),
        (("os", "a| b"), "dimensions[0].value: must not have leading"),
        (("pool", "a:b"), "dimensions[0].value: pool value must not contain ':'"),
    ] {
        let got = validate_dimension_filter(&[(s(k), s(v))]);
        assert!(got.as_ref().is_err_and(|e| e.message.contains(want)), "{k}={v}: got {got:?}");
    }
}

#[test]
fn terminate_reasons_lose_line_breaks_and_are_limited_to_1000_chars() {
    assert_eq!(validate_terminate_reason("a\r\nb\nc").as_deref(), Ok("a  b c"));
    assert_eq!(validate_terminate_reason("").as_deref(), Ok(""));
    let r = "é".repeat(1000);
    assert_eq!(validate_terminate_reason(&r), Ok(r.clone()));
    let got = validate_terminate_reason(&"x".repeat(1001));
    assert!(got.is_err_and(|e| e.message == "bad request: reason: must be at most 1000 characters, got 1001"));
}

// ---- build_request (docs/client-api.md#stored-request) ----

fn ctx(high: bool) -> CreateContext {
    let now = crate::time::from_micros(1_700_000_000_123_456) + chrono::Duration::nanoseconds(789);
    CreateContext { now, random16: 0xabcd, authenticated: s("user:a@b.com"), high_priority_allowed: high }
}

#[test]
fn built_requests_carry_sorted_deduplicated_auto_tags() {
    let mut r = base();
    r.parent_task_id = s("6663cfc78b41fb11");
    r.tags.push(s("os:Linux"));
    r.user = s("joe");
    let t = build_request(&r, &ctx(false));
    let want: Vec<String> = [
        "authenticated:user:a@b.com",
        "os:Linux",
        "os:Mac",
        "parent_task_id:6663cfc78b41fb11",
        "pool:default",
        "priority:100",
        "purpose:demo",
        "realm:myproject:ci",
        "service_account:none",
        "swarming.pool.task_template:none",
        "user:joe",
    ]
    .iter()
    .map(|x| s(x))
    .collect();
    assert_eq!(t.tags, want);
    assert_eq!(t.service_account, "none");
    assert_eq!(t.bot_ping_tolerance_secs, DEFAULT_BOT_PING_TOLERANCE_SECS);
    assert_eq!(t.slices[0].properties.dimensions.0, vec![(s("os"), s("Linux|Mac")), (s("pool"), s("default"))]);
    assert_eq!(crate::time::to_micros(t.created), 1_700_000_000_123_456);
    assert_eq!(t.created, crate::time::from_micros(1_700_000_000_123_456));
    assert_eq!(t.id, TaskId::new(t.created, 0xabcd));
    assert_eq!(t.authenticated, "user:a@b.com");
}

#[test]
fn built_requests_default_realm_and_user_to_none_and_keep_explicit_values() {
    let mut r = base();
    r.realm.clear();
    r.service_account = s("sa@p.iam.gserviceaccount.com");
    r.bot_ping_tolerance_secs = 60;
    let t = build_request(&r, &ctx(false));
    assert!(t.tags.contains(&s("realm:none")));
    assert!(t.tags.contains(&s("user:none")));
    assert!(t.tags.contains(&s("service_account:sa@p.iam.gserviceaccount.com")));
    assert!(!t.tags.iter().any(|t| t.starts_with("parent_task_id:")));
    assert_eq!(t.bot_ping_tolerance_secs, 60);
    assert_eq!(t.service_account, "sa@p.iam.gserviceaccount.com");
}

#[test]
fn high_priority_needs_permission_else_it_is_raised_to_20() {
    let mut r = base();
    r.priority = 5;
    let t = build_request(&r, &ctx(false));
    assert_eq!(t.priority, 20);
    assert!(t.tags.contains(&s("priority:20")));
    assert_eq!(build_request(&r, &ctx(true)).priority, 5);
    r.priority = 19;
    assert_eq!(build_request(&r, &ctx(false)).priority, 20);
    r.priority = 20;
    assert_eq!(build_request(&r, &ctx(false)).priority, 20);
    // Termination tasks (built by the server) keep priority 0.
    r.priority = 0;
    assert_eq!(build_request(&r, &ctx(false)).priority, 0);
}

// ---- property tests: the documented regexes ----

fn dim_key_regex() -> regex::Regex {
    regex::Regex::new(r"^[a-zA-Z\-\_\.][0-9a-zA-Z\-\_\.]*$").expect("regex")
}

fn env_key_regex() -> regex::Regex {
    regex::Regex::new(r"^[A-Za-z_][A-Za-z0-9_]*$").expect("regex")
}

/// The documented rule for one OR-list value, used as the oracle.
fn dim_value_ok(v: &str) -> bool {
    let parts: Vec<&str> = v.split('|').collect();
    let mut sorted = parts.clone();
    sorted.sort_unstable();
    sorted.dedup();
    parts.iter().all(|p| !p.is_empty() && p.chars().count() <= 256 && p.trim() == *p)
        && sorted.len() == parts.len()
        // The baseline already has a 2-way OR list: 2 * n <= 8.
        && parts.len() <= 4
}

fn keyish() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[a-zA-Z0-9._\\- ]{0,70}", "[A-Za-z_][A-Za-z0-9_]{60,66}", "\\PC{0,8}"]
}

fn valueish() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[a-c| ]{0,12}", "[a-z]{250,260}", "\\PC{0,12}", "\\s?[a-z]{1,4}\\s?"]
}

proptest! {
    #[test]
    fn dimension_keys_are_accepted_iff_they_match_the_regex(k in keyish()) {
        prop_assume!(k != "pool" && k != "id");
        let want = dim_key_regex().is_match(&k) && k.len() <= 64;
        prop_assert_eq!(is_valid_dimension_key(&k), want);
        let mut r = base();
        r.task_slices[0].properties.dimensions.0.push((k.clone(), s("v")));
        prop_assert_eq!(validate_new_task(&r).is_ok(), want);
        prop_assert_eq!(validate_dimension_filter(&[(k.clone(), s("v"))]).is_ok(), want);
        let mut d = bot(&[("id", &["b"])]);
        d.0.insert(k, vec![s("v")]);
        prop_assert_eq!(validate_bot_dimensions(&d).is_ok(), want);
    }

    #[test]
    fn dimension_values_are_accepted_iff_they_follow_the_value_rules(v in valueish()) {
        let mut r = base();
        r.task_slices[0].properties.dimensions.0.push((s("gpu"), v.clone()));
        let got = validate_new_task(&r);
        prop_assert_eq!(got.is_ok(), dim_value_ok(&v), "{:?}", got);
        let single = !v.is_empty() && v.chars().count() <= 256 && v.trim() == v;
        let d = bot(&[("id", &["b"]), ("gpu", &[v.as_str()])]);
        prop_assert_eq!(validate_bot_dimensions(&d).is_ok(), single);
    }

    #[test]
    fn env_keys_are_accepted_iff_they_match_the_regex(k in keyish(), v in any::<String>()) {
        prop_assume!(k != "FOO");
        let want = env_key_regex().is_match(&k) && k.len() <= 64;
        prop_assert_eq!(is_valid_env_key(&k), want);
        let mut r = base();
        r.task_slices[0].properties.env.push((k, v.clone()));
        prop_assert_eq!(validate_new_task(&r).is_ok(), want && v.chars().count() <= 1024);
    }

    #[test]
    fn arbitrary_tags_and_paths_never_panic(t in any::<String>(), p in any::<String>()) {
        let mut r = base();
        r.tags.push(t.clone());
        r.task_slices[0].properties.relative_cwd = p.clone();
        r.task_slices[0].properties.outputs.push(p.clone());
        let _ = validate_new_task(&r);
        let _ = validate_tag_filter(std::slice::from_ref(&t));
        let _ = validate_terminate_reason(&t);
        let mut r = base();
        r.pubsub_topic = t;
        r.service_account = p;
        let _ = validate_new_task(&r);
    }
}
