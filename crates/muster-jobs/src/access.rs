//! Who may do what to a job: the one question the API and UI ask.
//!
//! Permissions are per job realm (`<project>:<realm>`), named like
//! upstream's `scheduler.jobs.*`. A caller without [`JobPerm::Get`] does not
//! see the job at all (NOT_FOUND, never PERMISSION_DENIED). The server plugs
//! its access checker in by implementing [`JobAccess`]; until it does,
//! [`AllowAll`] grants what the client API grants everyone.

/// A job permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobPerm {
    /// `scheduler.jobs.get`: see the job, its invocations and triggers.
    Get,
    /// `scheduler.jobs.trigger`: emit triggers, "trigger now".
    Trigger,
    /// `scheduler.jobs.pause`: pause and resume.
    Pause,
    /// `scheduler.jobs.abort`: abort the job or an invocation.
    Abort,
}

impl JobPerm {
    pub fn name(self) -> &'static str {
        match self {
            JobPerm::Get => "scheduler.jobs.get",
            JobPerm::Trigger => "scheduler.jobs.trigger",
            JobPerm::Pause => "scheduler.jobs.pause",
            JobPerm::Abort => "scheduler.jobs.abort",
        }
    }
}

/// Answers permission questions for jobs.
pub trait JobAccess: Send + Sync + 'static {
    /// Whether `identity` (e.g. `user:a@example.com`) holds `perm` in `realm`.
    fn allows(&self, identity: &str, perm: JobPerm, realm: &str) -> bool;
}

/// Everyone may do everything (the server has no job ACLs configured).
#[derive(Debug, Default, Clone, Copy)]
pub struct AllowAll;

impl JobAccess for AllowAll {
    fn allows(&self, _identity: &str, _perm: JobPerm, _realm: &str) -> bool {
        true
    }
}
