//! Turning raw button edges into presses: software debounce (for lines whose kernel driver
//! cannot debounce) and long-press detection. Sans-IO: edges and the clock come in, events
//! and the next deadline go out.

use std::time::{Duration, Instant};

/// What a button did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ButtonEvent {
    /// It went down (debounced).
    Pressed,
    /// It came up (debounced).
    Released,
    /// Down and up again before the long-press time.
    ShortPress,
    /// Held down for the long-press time (reported once, while still held).
    LongPress,
}

/// One input's debouncer.
#[derive(Debug, Clone)]
pub struct Debouncer {
    settle: Duration,
    long: Duration,
    stable: bool,
    candidate: Option<(bool, Instant)>,
    pressed_at: Option<Instant>,
    long_fired: bool,
}

impl Debouncer {
    /// A debouncer that trusts a level after `settle` without edges, and reports a long press
    /// after `long`.
    pub fn new(settle: Duration, long: Duration) -> Debouncer {
        Debouncer {
            settle,
            long,
            stable: false,
            candidate: None,
            pressed_at: None,
            long_fired: false,
        }
    }

    /// A raw edge: the line is now `active`.
    pub fn edge(&mut self, active: bool, at: Instant) {
        self.candidate = Some((active, at));
    }

    /// When [`Debouncer::poll`] has something to do next.
    pub fn next_deadline(&self) -> Option<Instant> {
        let settle = self.candidate.map(|(_, at)| at + self.settle);
        let long = match (self.stable, self.pressed_at, self.long_fired) {
            (true, Some(at), false) => Some(at + self.long),
            _ => None,
        };
        match (settle, long) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Events due at `now`.
    pub fn poll(&mut self, now: Instant) -> Vec<ButtonEvent> {
        let mut out = Vec::new();
        if let Some((level, at)) = self.candidate
            && now >= at + self.settle
        {
            self.candidate = None;
            if level != self.stable {
                self.stable = level;
                if level {
                    self.pressed_at = Some(at);
                    self.long_fired = false;
                    out.push(ButtonEvent::Pressed);
                } else {
                    out.push(ButtonEvent::Released);
                    if !self.long_fired {
                        out.push(ButtonEvent::ShortPress);
                    }
                    self.pressed_at = None;
                }
            }
        }
        if self.stable
            && !self.long_fired
            && let Some(at) = self.pressed_at
            && now >= at + self.long
        {
            self.long_fired = true;
            out.push(ButtonEvent::LongPress);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn ten_bouncing_edges_within_5ms_are_one_press() {
        let t0 = Instant::now();
        let mut d = Debouncer::new(ms(30), ms(1500));
        for i in 0..10u64 {
            d.edge(i % 2 == 0, t0 + Duration::from_micros(i * 500));
        }
        // The bounce ends low... then the button is really pressed.
        d.edge(true, t0 + ms(5));
        assert!(d.poll(t0 + ms(20)).is_empty(), "not settled yet");
        assert_eq!(d.poll(t0 + ms(36)), vec![ButtonEvent::Pressed]);
        d.edge(false, t0 + ms(200));
        assert_eq!(
            d.poll(t0 + ms(231)),
            vec![ButtonEvent::Released, ButtonEvent::ShortPress]
        );
        assert!(d.poll(t0 + ms(5000)).is_empty());
    }

    #[test]
    fn holding_reports_one_long_press_and_no_short_press() {
        let t0 = Instant::now();
        let mut d = Debouncer::new(ms(30), ms(1500));
        d.edge(true, t0);
        assert_eq!(d.poll(t0 + ms(30)), vec![ButtonEvent::Pressed]);
        assert_eq!(d.next_deadline(), Some(t0 + ms(1500)));
        assert_eq!(d.poll(t0 + ms(1500)), vec![ButtonEvent::LongPress]);
        assert!(d.poll(t0 + ms(3000)).is_empty());
        d.edge(false, t0 + ms(3000));
        assert_eq!(d.poll(t0 + ms(3030)), vec![ButtonEvent::Released]);
    }

    #[test]
    fn a_glitch_shorter_than_the_settle_time_is_ignored() {
        let t0 = Instant::now();
        let mut d = Debouncer::new(ms(30), ms(1500));
        d.edge(true, t0);
        d.edge(false, t0 + ms(10));
        assert!(d.poll(t0 + ms(100)).is_empty());
    }
}
