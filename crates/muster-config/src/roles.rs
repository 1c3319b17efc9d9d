//! Permission names and muster's built-in role definitions (upstream's exact
//! role contents are not public; these are muster's, written down in
//! `docs/access-control.md`).

pub const POOLS_CREATE_TASK: &str = "swarming.pools.createTask";
pub const POOLS_LIST_TASKS: &str = "swarming.pools.listTasks";
pub const POOLS_CANCEL_TASK: &str = "swarming.pools.cancelTask";
pub const POOLS_CREATE_BOT: &str = "swarming.pools.createBot";
pub const POOLS_LIST_BOTS: &str = "swarming.pools.listBots";
pub const POOLS_TERMINATE_BOT: &str = "swarming.pools.terminateBot";
pub const POOLS_DELETE_BOT: &str = "swarming.pools.deleteBot";
pub const POOLS_CREATE_HIGH_PRIORITY_TASK: &str = "swarming.pools.createHighPriorityTask";
pub const TASKS_CREATE_IN_REALM: &str = "swarming.tasks.createInRealm";
pub const TASKS_ACT_AS: &str = "swarming.tasks.actAs";
pub const TASKS_GET: &str = "swarming.tasks.get";
pub const TASKS_CANCEL: &str = "swarming.tasks.cancel";
pub const SERVERS_PEEK: &str = "swarming.servers.peek";

/// Scheduled jobs (LUCI Scheduler's names), checked in the job's realm.
pub const JOBS_GET: &str = "scheduler.jobs.get";
pub const JOBS_TRIGGER: &str = "scheduler.jobs.trigger";
pub const JOBS_PAUSE: &str = "scheduler.jobs.pause";
pub const JOBS_ABORT: &str = "scheduler.jobs.abort";

/// Every permission muster knows (custom roles may only list these or
/// permissions of other services, which are accepted and never checked).
pub const ALL: &[&str] = &[
    POOLS_CREATE_TASK,
    POOLS_LIST_TASKS,
    POOLS_CANCEL_TASK,
    POOLS_CREATE_BOT,
    POOLS_LIST_BOTS,
    POOLS_TERMINATE_BOT,
    POOLS_DELETE_BOT,
    POOLS_CREATE_HIGH_PRIORITY_TASK,
    TASKS_CREATE_IN_REALM,
    TASKS_ACT_AS,
    TASKS_GET,
    TASKS_CANCEL,
    SERVERS_PEEK,
];

const POOL_VIEWER: &[&str] = &[POOLS_LIST_BOTS, POOLS_LIST_TASKS];
const POOL_USER: &[&str] = &[POOLS_CREATE_TASK];
const POOL_OWNER: &[&str] = &[
    POOLS_LIST_BOTS,
    POOLS_LIST_TASKS,
    POOLS_CANCEL_TASK,
    POOLS_CREATE_BOT,
    POOLS_DELETE_BOT,
    POOLS_TERMINATE_BOT,
    POOLS_CREATE_HIGH_PRIORITY_TASK,
];
const TASK_VIEWER: &[&str] = &[TASKS_GET];
const TASK_TRIGGERER: &[&str] = &[TASKS_CREATE_IN_REALM, TASKS_GET, TASKS_CANCEL];
const TASK_SERVICE_ACCOUNT: &[&str] = &[TASKS_ACT_AS];
const REALM_USER: &[&str] = &[TASKS_CREATE_IN_REALM];
const JOB_READER: &[&str] = &[JOBS_GET];
const JOB_TRIGGERER: &[&str] = &[JOBS_GET, JOBS_TRIGGER];
const JOB_OWNER: &[&str] = &[JOBS_GET, JOBS_TRIGGER, JOBS_PAUSE, JOBS_ABORT];

pub const POOL_OWNER_ROLE: &str = "role/swarming.poolOwner";
pub const POOL_USER_ROLE: &str = "role/swarming.poolUser";
pub const POOL_VIEWER_ROLE: &str = "role/swarming.poolViewer";
pub const TASK_VIEWER_ROLE: &str = "role/swarming.taskViewer";
pub const TASK_TRIGGERER_ROLE: &str = "role/swarming.taskTriggerer";

/// Permissions of a built-in role, `None` for an unknown `role/…`.
pub fn builtin(role: &str) -> Option<&'static [&'static str]> {
    Some(match role {
        "role/swarming.poolViewer" => POOL_VIEWER,
        "role/swarming.poolUser" => POOL_USER,
        "role/swarming.poolOwner" => POOL_OWNER,
        "role/swarming.taskViewer" => TASK_VIEWER,
        "role/swarming.taskTriggerer" => TASK_TRIGGERER,
        "role/swarming.taskServiceAccount" => TASK_SERVICE_ACCOUNT,
        "role/swarming.realmUser" => REALM_USER,
        "role/scheduler.reader" => JOB_READER,
        "role/scheduler.triggerer" => JOB_TRIGGERER,
        "role/scheduler.owner" => JOB_OWNER,
        _ => return None,
    })
}
