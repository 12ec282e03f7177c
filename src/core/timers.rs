//! The core's named timers, in one table. The outer loop sleeps until
//! [`Timers::next_deadline`] and then feeds the instant back in.

use std::time::Instant;

/// Every timer the core uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// The delay before an automatic answer.
    AutoAnswer,
    /// An unanswered incoming call is declined when this fires.
    RingTimeout,
    /// After we agreed, the caller must enter the room before this fires.
    ConnectTimeout,
    /// An outgoing call nobody answered is cancelled when this fires.
    DialTimeout,
    /// Back in a room after a reconnect: participants who were not there have until this
    /// fires to come back; then their sessions close, and an empty room ends the call.
    ReturnTimeout,
    /// A session we answered failed; the offerer's new offer must come before this fires.
    MediaRecovery,
    /// The next media session deadline: a failed session's next offer, or a session that
    /// must have connected by then.
    MediaSchedule,
}

impl Timer {
    const ALL: [Timer; 7] = [
        Timer::AutoAnswer,
        Timer::RingTimeout,
        Timer::ConnectTimeout,
        Timer::DialTimeout,
        Timer::ReturnTimeout,
        Timer::MediaRecovery,
        Timer::MediaSchedule,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// Deadlines by timer name; at most one pending deadline per name.
#[derive(Debug, Clone, Default)]
pub struct Timers {
    deadlines: [Option<Instant>; Timer::ALL.len()],
}

impl Timers {
    /// Arm (or re-arm) `timer` to fire at `at`.
    pub fn arm(&mut self, timer: Timer, at: Instant) {
        self.deadlines[timer.index()] = Some(at);
    }

    /// Disarm `timer`.
    pub fn cancel(&mut self, timer: Timer) {
        self.deadlines[timer.index()] = None;
    }

    /// Disarm everything.
    pub fn cancel_all(&mut self) {
        self.deadlines = [None; Timer::ALL.len()];
    }

    /// The earliest armed deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Disarms and returns the timers due at `now`, earliest first.
    pub fn take_expired(&mut self, now: Instant) -> Vec<Timer> {
        let mut due: Vec<(Instant, Timer)> = Timer::ALL
            .iter()
            .filter_map(|&t| match self.deadlines[t.index()] {
                Some(at) if at <= now => Some((at, t)),
                _ => None,
            })
            .collect();
        due.sort_by_key(|(at, _)| *at);
        for (_, t) in &due {
            self.cancel(*t);
        }
        due.into_iter().map(|(_, t)| t).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn expired_timers_come_out_in_deadline_order_and_are_disarmed() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        timers.arm(Timer::RingTimeout, t0 + Duration::from_secs(30));
        timers.arm(Timer::AutoAnswer, t0 + Duration::from_secs(1));
        assert_eq!(timers.next_deadline(), Some(t0 + Duration::from_secs(1)));
        assert!(timers.take_expired(t0).is_empty());
        assert_eq!(
            timers.take_expired(t0 + Duration::from_secs(31)),
            vec![Timer::AutoAnswer, Timer::RingTimeout]
        );
        assert_eq!(timers.next_deadline(), None);
    }
}
