//! Limits on what room members can make the agent hold or do: how many members it tracks,
//! how many media sessions (each a decoder on the display) it runs, and how fast a member's
//! media messages are taken.

use std::time::Instant;

/// Members of one room the agent tracks; a room server that reports more gets the rest
/// ignored (logged), so a hostile or broken server cannot grow the state without bound.
pub const MAX_MEMBERS: usize = 256;

/// Media sessions in one call: each decodes a participant's video onto the display and mixes
/// their voice. Participants beyond this are listed but get no media session.
pub const MAX_SESSIONS: usize = 16;

/// Offers one member may send in a burst, and one more every [`OFFER_REFILL_S`] seconds: each
/// starts a fresh session (a `webrtcbin`, its threads and sockets), which honest peers do once
/// per session.
const OFFER_BURST: f64 = 4.0;
const OFFER_REFILL_S: f64 = 2.0;

/// Answers and candidates one member may send in a burst, and per second after it (a browser
/// sends a few dozen candidates at the start of a session).
const SIGNAL_BURST: f64 = 200.0;
const SIGNAL_RATE: f64 = 50.0;

/// One member's allowance of media messages (two token buckets).
#[derive(Debug, Clone)]
pub(super) struct Budget {
    offers: f64,
    signals: f64,
    at: Instant,
    /// Messages dropped since the last one taken (logged once per run of drops).
    pub dropped: u64,
}

impl Budget {
    pub(super) fn new(now: Instant) -> Budget {
        Budget {
            offers: OFFER_BURST,
            signals: SIGNAL_BURST,
            at: now,
            dropped: 0,
        }
    }

    /// Takes one offer (`offer`) or other media message from the budget; `false` when the
    /// member is over it and the message is to be dropped.
    pub(super) fn take(&mut self, now: Instant, offer: bool) -> bool {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now.max(self.at);
        self.offers = (self.offers + dt / OFFER_REFILL_S).min(OFFER_BURST);
        self.signals = (self.signals + dt * SIGNAL_RATE).min(SIGNAL_BURST);
        let bucket = if offer {
            &mut self.offers
        } else {
            &mut self.signals
        };
        if *bucket >= 1.0 {
            *bucket -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_of_offers_is_cut_and_the_budget_refills() {
        let t = Instant::now();
        let mut b = Budget::new(t);
        let taken = (0..10).filter(|_| b.take(t, true)).count();
        assert_eq!(taken, OFFER_BURST as usize);
        assert!(!b.take(t + Duration::from_millis(1500), true));
        assert!(b.take(t + Duration::from_millis(2100), true));
        // Offers do not use up the candidates' budget.
        assert!(b.take(t, false));
    }

    #[test]
    fn candidates_flow_at_their_rate_after_the_burst() {
        let t = Instant::now();
        let mut b = Budget::new(t);
        let taken = (0..1000).filter(|_| b.take(t, false)).count();
        assert_eq!(taken, SIGNAL_BURST as usize);
        let later = t + Duration::from_secs(1);
        let taken = (0..1000).filter(|_| b.take(later, false)).count();
        assert_eq!(taken, SIGNAL_RATE as usize);
    }
}
