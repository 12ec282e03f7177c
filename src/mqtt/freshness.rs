//! Commands that cannot go stale: a command may carry its send time (`"ts"`, Unix seconds
//! or milliseconds); one further than `[mqtt] command_max_age_s` from this device's clock,
//! in either direction, is refused. Without `"ts"` a command is accepted unless
//! `require_timestamp` is set (Home Assistant's switches and buttons send plain payloads).
//! Retained command messages never get this far: the link drops them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The freshness rule of one device.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Freshness {
    /// The largest distance between `"ts"` and this device's clock.
    pub max_age: Duration,
    /// Refuse commands without `"ts"`.
    pub require_timestamp: bool,
}

impl Freshness {
    /// Whether a command sent at `sent_at` (Unix seconds) may run now; the error is the reply.
    pub fn check(&self, sent_at: Option<f64>) -> Result<(), String> {
        self.check_at(sent_at, unix_now())
    }

    fn check_at(&self, sent_at: Option<f64>, now: f64) -> Result<(), String> {
        let max = self.max_age.as_secs_f64();
        let Some(sent) = sent_at else {
            return if self.require_timestamp {
                Err(
                    "refused: the command has no \"ts\" (send time) and this device requires one \
                     (mqtt.require_timestamp)"
                        .into(),
                )
            } else {
                Ok(())
            };
        };
        let age = now - sent;
        if age > max {
            Err(format!(
                "refused: the command is stale, sent {age:.0} s ago; commands older than {max:.0} s \
                 are refused (mqtt.command_max_age_s)"
            ))
        } else if -age > max {
            Err(format!(
                "refused: the command's \"ts\" is {:.0} s ahead of this device's clock (more than \
                 {max:.0} s); check the clocks",
                -age
            ))
        } else {
            Ok(())
        }
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: f64 = 1_700_000_000.0;

    fn rule(require_timestamp: bool) -> Freshness {
        Freshness {
            max_age: Duration::from_secs(30),
            require_timestamp,
        }
    }

    #[test]
    fn recent_commands_run_and_old_or_future_ones_are_refused() {
        let r = rule(false);
        assert_eq!(r.check_at(Some(NOW), NOW), Ok(()));
        assert_eq!(r.check_at(Some(NOW - 30.0), NOW), Ok(()));
        assert_eq!(r.check_at(Some(NOW + 30.0), NOW), Ok(()));
        let stale = r.check_at(Some(NOW - 45.0), NOW).unwrap_err();
        assert!(
            stale.contains("stale, sent 45 s ago") && stale.contains("30 s"),
            "{stale}"
        );
        assert!(stale.contains("mqtt.command_max_age_s"), "{stale}");
        let ahead = r.check_at(Some(NOW + 120.0), NOW).unwrap_err();
        assert!(ahead.contains("120 s ahead"), "{ahead}");
    }

    #[test]
    fn commands_without_a_send_time_run_unless_one_is_required() {
        assert_eq!(rule(false).check_at(None, NOW), Ok(()));
        let e = rule(true).check_at(None, NOW).unwrap_err();
        assert!(e.contains("mqtt.require_timestamp"), "{e}");
    }
}
