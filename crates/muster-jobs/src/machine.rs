//! The cron machine: turns a job's schedule into ticks, one at a time.
//!
//! Pure: every method takes `now` and mutates [`CronState`], returning what
//! the engine must do in the same transaction. The pending tick is part of the
//! state (so it is as durable as the job row). Rules:
//! - a tick fires once even if it is hours late (ticks missed while the
//!   server was down collapse into one run); the next one is computed from
//!   the moment it fired, never back-filled;
//! - a tick delivered more than 1 s early is re-armed for its time; 50 ms –
//!   1 s early is an error the caller retries; ≤ 50 ms early counts as on time;
//! - an absolute (cron) schedule re-arms at once after a tick; a relative one
//!   (`with X interval`) waits until the job has no running invocation
//!   ([`CronState::rewind_if_necessary`], called by triage), so runs never
//!   overlap and the interval counts from the end of the previous run.

use crate::schedule::Schedule;
use chrono::Duration;
use muster_core::Time;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CronState {
    pub enabled: bool,
    /// Bumped on every tick and enable/disable; names cron triggers.
    pub generation: i64,
    pub last_rewind: Option<Time>,
    pub tick: Option<Tick>,
    /// Source of tick nonces.
    pub nonce_seq: i64,
}

/// The pending tick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tick {
    pub when: Time,
    pub nonce: i64,
}

/// What the engine must do after a machine step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Add the trigger `cron:v1:<generation>` to the job.
    StartInvocation { generation: i64 },
}

/// A tick delivered slightly early: try again shortly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooEarly(pub Duration);

impl CronState {
    /// The trigger id of a tick of this generation.
    pub fn trigger_id(generation: i64) -> String {
        format!("cron:v1:{generation}")
    }

    pub fn enable(&mut self, now: Time, s: &Schedule) {
        if !self.enabled {
            self.enabled = true;
            self.generation += 1;
            self.rewind_if_necessary(now, s);
        }
    }

    pub fn disable(&mut self) {
        if self.enabled {
            self.enabled = false;
            self.tick = None;
            self.generation += 1;
        }
    }

    /// When idle (no pending tick): the schedule restarts from now.
    /// A schedule with no future tick (triggered, a past year) is left as is.
    pub fn rewind_if_necessary(&mut self, now: Time, s: &Schedule) {
        if self.enabled && self.tick.is_none() && s.next(now, Some(now)).is_some() {
            self.last_rewind = Some(now);
            self.schedule_tick(now, s);
        }
    }

    /// The schedule (or its effective form, e.g. "triggered" while paused)
    /// changed.
    pub fn on_schedule_change(&mut self, now: Time, s: &Schedule) {
        if !self.enabled {
            return;
        }
        match (&self.tick, s) {
            (Some(_), _) => self.schedule_tick(now, s),
            (None, Schedule::Relative(_)) if self.last_rewind.is_some() => self.schedule_tick(now, s),
            (None, _) => {
                self.last_rewind = Some(now);
                self.schedule_tick(now, s);
            }
        }
    }

    /// The pending tick's time came (as seen by the caller at `now`).
    pub fn on_timer_tick(&mut self, nonce: i64, now: Time, s: &Schedule) -> Result<Vec<Action>, TooEarly> {
        let Some(tick) = self.tick.clone() else { return Ok(vec![]) };
        if !self.enabled || tick.nonce != nonce {
            return Ok(vec![]);
        }
        let early = tick.when - now;
        if early > Duration::seconds(1) {
            self.nonce_seq += 1;
            self.tick = Some(Tick { when: tick.when, nonce: self.nonce_seq });
            return Ok(vec![]);
        }
        if early > Duration::milliseconds(50) {
            return Err(TooEarly(early));
        }
        self.generation += 1;
        let actions = vec![Action::StartInvocation { generation: self.generation }];
        self.tick = None;
        if s.is_absolute() {
            self.last_rewind = Some(now);
            self.schedule_tick(now, s);
        }
        Ok(actions)
    }

    fn schedule_tick(&mut self, now: Time, s: &Schedule) {
        self.nonce_seq += 1;
        self.tick = s.next(now, self.last_rewind).map(|when| Tick { when, nonce: self.nonce_seq });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn at(secs: i64) -> Time {
        Utc.timestamp_opt(1_700_000_000 + secs, 0).single().expect("valid")
    }

    fn fire(m: &mut CronState, now: Time, s: &Schedule) -> Vec<Action> {
        let nonce = m.tick.as_ref().expect("a tick is pending").nonce;
        m.on_timer_tick(nonce, now, s).expect("on time")
    }

    #[test]
    fn relative_first_tick_is_enable_time_plus_interval_and_then_waits_for_the_run() {
        let s = Schedule::parse("with 10s interval").expect("parses");
        let mut m = CronState::default();
        m.enable(at(0), &s);
        assert_eq!(m.tick.as_ref().map(|t| t.when), Some(at(10)));
        let a = fire(&mut m, at(10), &s);
        assert_eq!(a, vec![Action::StartInvocation { generation: 2 }]);
        assert_eq!(m.tick, None, "relative schedules wait for the run to end");
        // The run ends at 25: triage rewinds, next tick 10 s later.
        m.rewind_if_necessary(at(25), &s);
        assert_eq!(m.tick.as_ref().map(|t| t.when), Some(at(35)));
    }

    #[test]
    fn missed_absolute_ticks_collapse_into_one() {
        let s = Schedule::parse("* * * * *").expect("parses");
        let mut m = CronState::default();
        m.enable(at(0), &s);
        let first = m.tick.as_ref().expect("armed").when;
        // Down for three periods: the pending tick fires once, late.
        let late = first + Duration::minutes(3) + Duration::seconds(7);
        let a = fire(&mut m, late, &s);
        assert_eq!(a.len(), 1);
        let next = m.tick.as_ref().expect("re-armed").when;
        assert!(next > late && next - late <= Duration::minutes(1), "next tick from now, no backfill: {next}");
    }

    #[test]
    fn early_ticks() {
        let s = Schedule::parse("with 10s interval").expect("parses");
        let mut m = CronState::default();
        m.enable(at(0), &s);
        let nonce = m.tick.as_ref().expect("armed").nonce;
        // More than 1 s early: re-armed with a new nonce, nothing starts.
        assert_eq!(m.on_timer_tick(nonce, at(5), &s), Ok(vec![]));
        let t = m.tick.clone().expect("still pending");
        assert_eq!(t.when, at(10));
        assert_ne!(t.nonce, nonce);
        // The stale nonce is ignored.
        assert_eq!(m.on_timer_tick(nonce, at(10), &s), Ok(vec![]));
        // 0.5 s early: retry.
        assert!(m.on_timer_tick(t.nonce, at(10) - Duration::milliseconds(500), &s).is_err());
        // 30 ms early: on time.
        assert_eq!(m.on_timer_tick(t.nonce, at(10) - Duration::milliseconds(30), &s).map(|a| a.len()), Ok(1));
    }

    #[test]
    fn pause_is_triggered_and_resume_rearms() {
        let s = Schedule::parse("with 10s interval").expect("parses");
        let mut m = CronState::default();
        m.enable(at(0), &s);
        m.on_schedule_change(at(3), &Schedule::Triggered);
        assert_eq!(m.tick, None);
        // Resumed long after: due at once (max(last_rewind + 10 s, now)).
        m.on_schedule_change(at(100), &s);
        assert_eq!(m.tick.as_ref().map(|t| t.when), Some(at(100)));
        m.disable();
        assert_eq!(m.tick, None);
        let nonce = 42;
        assert_eq!(m.on_timer_tick(nonce, at(200), &s), Ok(vec![]));
    }

    #[test]
    fn a_schedule_with_no_future_match_never_ticks() {
        let s = Schedule::parse("0 0 1 1 * 2020").expect("parses");
        let mut m = CronState::default();
        m.enable(at(0), &s);
        assert_eq!(m.tick, None);
    }
}
