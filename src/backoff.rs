//! Exponential reconnect backoff with jitter, as data.
//!
//! Adapters that hold a connection (signaling, MQTT) reconnect forever. The delay grows
//! exponentially from `min` to `max`; each delay is drawn from `[d/2, d]` ("equal jitter") so
//! a fleet that lost its server at the same moment does not reconnect in lock-step, while the
//! first retry still comes quickly. The struct never sleeps and never reads the clock: the
//! caller supplies the random sample and does the waiting.

use std::time::Duration;

/// Reconnect delay generator. Call [`Backoff::next_delay`] after each failed attempt and
/// [`Backoff::reset`] after a connection was established.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// A backoff starting at `min` and capped at `max` (`max` is raised to `min` if smaller).
    pub fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max: max.max(min),
            attempt: 0,
        }
    }

    /// The delay before the next attempt. `unit` is a random sample in `[0, 1)`; it picks the
    /// point inside the jitter window.
    pub fn next_delay(&mut self, unit: f64) -> Duration {
        let factor = 2u32.saturating_pow(self.attempt.min(16));
        let ceiling = self.min.saturating_mul(factor).min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let unit = unit.clamp(0.0, 1.0);
        ceiling.div_f64(2.0) + ceiling.div_f64(2.0).mul_f64(unit)
    }

    /// Forget past failures: the next delay starts from `min` again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Failed attempts since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

/// The reconnect loop every adapter that holds a connection shares, as data: the backoff, and
/// the last failure so a link that keeps failing the same way logs it once, not every try.
///
/// A loop calls [`Reconnect::connected`] once a session is up, [`Reconnect::failed`] with why
/// an attempt failed or a session ended, then waits [`Reconnect::wait`]. It never gives up.
#[derive(Debug, Clone)]
pub struct Reconnect {
    backoff: Backoff,
    last_error: Option<String>,
}

impl Reconnect {
    /// Delays grow from `min` to `max` (see [`Backoff`]).
    pub fn new(min: Duration, max: Duration) -> Reconnect {
        Reconnect {
            backoff: Backoff::new(min, max),
            last_error: None,
        }
    }

    /// A session is up: the next failure starts from the shortest delay and is news again.
    pub fn connected(&mut self) {
        self.backoff.reset();
        self.last_error = None;
    }

    /// Records a failure; `true` when it differs from the previous one (log it loudly then,
    /// quietly otherwise).
    pub fn failed(&mut self, reason: &str) -> bool {
        let news = self.last_error.as_deref() != Some(reason);
        self.last_error = Some(reason.to_string());
        news
    }

    /// Failed attempts since the last connection.
    pub fn attempts(&self) -> u32 {
        self.backoff.attempts()
    }

    /// Sleeps the next delay; `false` when `shutdown` came first.
    pub async fn wait(&mut self, shutdown: &tokio_util::sync::CancellationToken) -> bool {
        let delay = self.backoff.next_delay(rand::random::<f64>());
        tracing::debug!(?delay, "reconnecting after");
        tokio::select! {
            _ = shutdown.cancelled() => false,
            _ = tokio::time::sleep(delay) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_exponentially_up_to_the_cap() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let upper: Vec<_> = (0..6).map(|_| b.next_delay(1.0)).collect();
        assert_eq!(
            upper,
            [100, 200, 400, 800, 1000, 1000].map(Duration::from_millis)
        );
    }

    #[test]
    fn jitter_stays_inside_half_window() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(30));
        assert_eq!(b.next_delay(0.0), Duration::from_millis(50));
        assert_eq!(b.next_delay(0.5), Duration::from_millis(150));
    }

    #[test]
    fn reset_starts_over_and_never_gives_up() {
        let mut b = Backoff::new(Duration::from_millis(10), Duration::from_millis(40));
        for _ in 0..10_000 {
            assert!(b.next_delay(0.3) <= Duration::from_millis(40));
        }
        assert_eq!(b.attempts(), 10_000);
        b.reset();
        assert_eq!(b.next_delay(1.0), Duration::from_millis(10));
    }
}

#[cfg(test)]
mod reconnect_tests {
    use super::*;

    #[test]
    fn the_same_failure_is_news_once() {
        let mut r = Reconnect::new(Duration::from_millis(1), Duration::from_millis(2));
        assert!(r.failed("refused"));
        assert!(!r.failed("refused"));
        assert!(r.failed("timeout"));
        r.connected();
        assert!(r.failed("timeout"));
    }

    #[tokio::test(start_paused = true)]
    async fn wait_ends_early_on_shutdown() {
        let mut r = Reconnect::new(Duration::from_secs(60), Duration::from_secs(60));
        let stop = tokio_util::sync::CancellationToken::new();
        stop.cancel();
        assert!(!r.wait(&stop).await);
        let live = tokio_util::sync::CancellationToken::new();
        assert!(r.wait(&live).await);
    }
}
