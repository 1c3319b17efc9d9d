//! The permission checker: upstream Swarming's rules over one config
//! snapshot and one caller.
//!
//! - Server level: membership in the settings.cfg groups (table in
//!   [`Checker::server_perm`]).
//! - Pool level: a server-level grant, else the permission in the pool's
//!   realm; an unknown pool is denied with the same message.
//! - Task level: server level, or the caller submitted it, or the
//!   permission in the task's realm, or the paired pool permission in the
//!   task's pool.
//! - Bot level: server level, or the permission in any pool of the bot.
//! - Listings: the permission in every pool named by the filter; with no
//!   pool filter, a server-level grant.
//!
//! Every `check_*` denial is logged once with the caller, the permission and
//! the pool/realm/task/bot, and returns PERMISSION_DENIED naming the caller.

use crate::authn::Caller;
use crate::perms;
use muster_config::Snapshot;
use muster_core::Error;

/// What the checker needs to know about a task.
#[derive(Debug, Clone, Default)]
pub struct TaskAcl<'a> {
    pub id: &'a str,
    /// Identity that submitted it (`authenticated:` tag).
    pub authenticated: &'a str,
    pub realm: Option<&'a str>,
    pub pool: Option<&'a str>,
    /// For pool-less internal tasks (bot termination): the bot's pools.
    pub bot_pools: Vec<String>,
}

/// Checks for one request.
pub struct Checker<'a> {
    pub snap: &'a Snapshot,
    pub caller: &'a Caller,
}

fn denied(caller: &Caller, perm: &str, what: &str, detail: &str) -> Error {
    tracing::info!(caller = %caller.identity, permission = perm, on = what, target = detail, "permission denied");
    Error::permission(format!("the caller \"{}\" doesn't have {what}", caller.identity))
}

impl<'a> Checker<'a> {
    pub fn new(snap: &'a Snapshot, caller: &'a Caller) -> Checker<'a> {
        Checker { snap, caller }
    }

    fn member(&self, group: &str) -> bool {
        self.snap.is_member(self.caller.identity.as_str(), &self.caller.extra_groups, group)
    }

    /// Server-level grants (upstream Go table).
    pub fn server_perm(&self, perm: &str) -> bool {
        let g = &self.snap.server_groups;
        let groups: &[&String] = match perm {
            perms::SERVERS_PEEK => {
                &[&g.users, &g.privileged_users, &g.admins, &g.bot_bootstrap, &g.view_all_tasks, &g.view_all_bots]
            }
            perms::TASKS_GET | perms::POOLS_LIST_TASKS => &[&g.view_all_tasks, &g.privileged_users, &g.admins],
            perms::POOLS_LIST_BOTS => &[&g.view_all_bots, &g.privileged_users, &g.admins],
            perms::POOLS_CREATE_BOT => &[&g.bot_bootstrap, &g.admins],
            perms::TASKS_CANCEL
            | perms::POOLS_CANCEL_TASK
            | perms::POOLS_DELETE_BOT
            | perms::POOLS_TERMINATE_BOT
            | perms::POOLS_CREATE_HIGH_PRIORITY_TASK => &[&g.admins],
            _ => &[],
        };
        groups.iter().any(|grp| self.member(grp))
    }

    pub fn check_server(&self, perm: &str) -> Result<(), Error> {
        if self.server_perm(perm) {
            return Ok(());
        }
        Err(denied(self.caller, perm, &format!("server-level permission \"{perm}\""), "server"))
    }

    /// The caller's permission in a realm (missing realm → its project's @root).
    pub fn realm_perm(&self, realm: &str, perm: &str) -> bool {
        self.snap.has_realm_permission(self.caller.identity.as_str(), &self.caller.extra_groups, realm, perm)
    }

    /// Another identity's permission in a realm (task service accounts).
    pub fn realm_perm_of(&self, identity: &str, realm: &str, perm: &str) -> bool {
        self.snap.has_realm_permission(identity, &[], realm, perm)
    }

    pub fn check_realm(&self, realm: &str, perm: &str) -> Result<(), Error> {
        if self.realm_perm(realm, perm) {
            return Ok(());
        }
        Err(denied(self.caller, perm, &format!("permission \"{perm}\" in the realm \"{realm}\""), realm))
    }

    pub fn pool_perm(&self, pool: &str, perm: &str) -> bool {
        if self.server_perm(perm) {
            return true;
        }
        match self.snap.pool(pool).and_then(|p| p.realm) {
            Some(realm) => self.realm_perm(&realm, perm),
            None => false,
        }
    }

    pub fn check_pool(&self, pool: &str, perm: &str) -> Result<(), Error> {
        if self.pool_perm(pool, perm) {
            return Ok(());
        }
        Err(denied(
            self.caller,
            perm,
            &format!("permission \"{perm}\" in the pool \"{pool}\" or the pool doesn't exist"),
            pool,
        ))
    }

    /// Listing ACL: every pool of the filter, or server level without one.
    pub fn check_listing(&self, pools: &[String], perm: &str) -> Result<(), Error> {
        if pools.is_empty() {
            return self.check_server(perm);
        }
        if pools.iter().all(|p| self.pool_perm(p, perm)) {
            return Ok(());
        }
        Err(denied(
            self.caller,
            perm,
            &format!("permission \"{perm}\" in some of the requested pools"),
            &pools.join(","),
        ))
    }

    pub fn listing_perm(&self, pools: &[String], perm: &str) -> bool {
        if pools.is_empty() {
            self.server_perm(perm)
        } else {
            pools.iter().all(|p| self.pool_perm(p, perm))
        }
    }

    /// `tasks.get` / `tasks.cancel` on one task.
    pub fn task_perm(&self, task: &TaskAcl<'_>, perm: &str) -> bool {
        if self.server_perm(perm) {
            return true;
        }
        if !self.caller.identity.is_anonymous() && task.authenticated == self.caller.identity.as_str() {
            return true;
        }
        if let Some(realm) = task.realm.filter(|r| !r.is_empty()) {
            if self.realm_perm(realm, perm) {
                return true;
            }
        }
        let pool_perm = match perm {
            perms::TASKS_GET => perms::POOLS_LIST_TASKS,
            perms::TASKS_CANCEL => perms::POOLS_CANCEL_TASK,
            _ => return false,
        };
        match task.pool {
            Some(pool) => self.pool_perm(pool, pool_perm),
            None => task.bot_pools.iter().any(|p| self.pool_perm(p, pool_perm)),
        }
    }

    pub fn check_task(&self, task: &TaskAcl<'_>, perm: &str) -> Result<(), Error> {
        if self.task_perm(task, perm) {
            return Ok(());
        }
        Err(denied(self.caller, perm, &format!("permission \"{perm}\" for the task \"{}\"", task.id), task.id))
    }

    /// A permission on a bot: server level or in any of the bot's pools.
    pub fn bot_perm(&self, bot_pools: &[String], perm: &str) -> bool {
        self.server_perm(perm) || bot_pools.iter().any(|p| self.pool_perm(p, perm))
    }

    pub fn check_bot(&self, bot_id: &str, bot_pools: &[String], perm: &str) -> Result<(), Error> {
        if self.bot_perm(bot_pools, perm) {
            return Ok(());
        }
        Err(denied(
            self.caller,
            perm,
            &format!("permission \"{perm}\" in the pool that contains bot \"{bot_id}\" or this bot doesn't exist"),
            bot_id,
        ))
    }

    /// Configured pools where the caller has `perm`, sorted.
    pub fn pools_with(&self, perm: &str) -> Vec<String> {
        self.snap.pools.keys().filter(|p| self.pool_perm(p, perm)).cloned().collect()
    }
}
