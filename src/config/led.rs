//! The LED pattern table: light patterns by situation, as written in `[gpio.patterns]` and
//! checked with the rest of the configuration. Which situation applies is the GPIO adapter's
//! business (`gpio::pattern`).

use std::time::Duration;

use serde::Deserialize;

/// A light pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// Dark.
    Off,
    /// Lit.
    On,
    /// Lit for `on`, dark for `off`, repeating.
    Blink {
        /// Lit time.
        on: Duration,
        /// Dark time.
        off: Duration,
    },
}

impl Pattern {
    /// 1 Hz, half on.
    pub const SLOW: Pattern = Pattern::Blink {
        on: Duration::from_millis(500),
        off: Duration::from_millis(500),
    };
    /// 2 Hz, half on.
    pub const BLINK_2HZ: Pattern = Pattern::Blink {
        on: Duration::from_millis(250),
        off: Duration::from_millis(250),
    };
    /// 5 Hz, half on.
    pub const FAST: Pattern = Pattern::Blink {
        on: Duration::from_millis(100),
        off: Duration::from_millis(100),
    };

    /// Parses `off`, `on`, `slow_blink`, `blink_2hz`, `fast_blink` or `blink:ON_MS:OFF_MS`.
    pub fn parse(s: &str) -> Result<Pattern, String> {
        Ok(match s {
            "off" => Pattern::Off,
            "on" => Pattern::On,
            "slow_blink" => Pattern::SLOW,
            "blink_2hz" => Pattern::BLINK_2HZ,
            "fast_blink" => Pattern::FAST,
            other => {
                let parts: Vec<&str> = other.split(':').collect();
                match parts[..] {
                    ["blink", on, off] => {
                        let ms = |v: &str| {
                            v.parse::<u64>()
                                .ok()
                                .filter(|m| (10..=10_000).contains(m))
                                .map(Duration::from_millis)
                        };
                        match (ms(on), ms(off)) {
                            (Some(on), Some(off)) => Pattern::Blink { on, off },
                            _ => return Err(format!("{other:?}: blink times must be 10-10000 ms")),
                        }
                    }
                    _ => {
                        return Err(format!(
                            "{other:?} is not a pattern (off, on, slow_blink, blink_2hz, fast_blink, blink:ON_MS:OFF_MS)"
                        ));
                    }
                }
            }
        })
    }

    /// Lit or not, `elapsed` after the pattern started; and how long until that changes.
    pub fn level_at(self, elapsed: Duration) -> (bool, Option<Duration>) {
        match self {
            Pattern::Off => (false, None),
            Pattern::On => (true, None),
            Pattern::Blink { on, off } => {
                let period = on + off;
                let phase = Duration::from_nanos((elapsed.as_nanos() % period.as_nanos()) as u64);
                if phase < on {
                    (true, Some(on - phase))
                } else {
                    (false, Some(period - phase))
                }
            }
        }
    }
}

/// The status LED's situations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Situation {
    /// Registered, no call.
    Idle,
    /// Not registered yet, or a call is being set up.
    Connecting,
    /// An incoming call rings.
    Ringing,
    /// In a call.
    InCall,
    /// Cannot reach or log in to the signaling server.
    Error,
}

/// `[gpio.patterns]`: the status LED's pattern per situation.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PatternTable {
    /// Registered, no call.
    pub idle: String,
    /// Connecting (to the server, or a call being set up).
    pub connecting: String,
    /// Ringing.
    pub ringing: String,
    /// In a call.
    pub in_call: String,
    /// Signaling error.
    pub error: String,
}

impl Default for PatternTable {
    fn default() -> Self {
        PatternTable {
            idle: "off".into(),
            connecting: "slow_blink".into(),
            ringing: "blink_2hz".into(),
            in_call: "on".into(),
            error: "fast_blink".into(),
        }
    }
}

/// A checked pattern table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patterns {
    idle: Pattern,
    connecting: Pattern,
    ringing: Pattern,
    in_call: Pattern,
    error: Pattern,
}

impl Patterns {
    /// Checks every entry; errors name the key.
    pub fn from_table(t: &PatternTable) -> Result<Patterns, (String, String)> {
        let p =
            |key: &str, v: &str| Pattern::parse(v).map_err(|e| (format!("gpio.patterns.{key}"), e));
        Ok(Patterns {
            idle: p("idle", &t.idle)?,
            connecting: p("connecting", &t.connecting)?,
            ringing: p("ringing", &t.ringing)?,
            in_call: p("in_call", &t.in_call)?,
            error: p("error", &t.error)?,
        })
    }

    /// The pattern for a situation.
    pub fn for_situation(&self, s: Situation) -> Pattern {
        match s {
            Situation::Idle => self.idle,
            Situation::Connecting => self.connecting,
            Situation::Ringing => self.ringing,
            Situation::InCall => self.in_call,
            Situation::Error => self.error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blinking_follows_the_clock() {
        let p = Pattern::BLINK_2HZ;
        assert_eq!(
            p.level_at(Duration::ZERO),
            (true, Some(Duration::from_millis(250)))
        );
        assert_eq!(
            p.level_at(Duration::from_millis(260)),
            (false, Some(Duration::from_millis(240)))
        );
        assert_eq!(
            p.level_at(Duration::from_millis(500)),
            (true, Some(Duration::from_millis(250)))
        );
        assert_eq!(Pattern::On.level_at(Duration::from_secs(9)), (true, None));
    }

    #[test]
    fn patterns_parse_and_bad_ones_name_the_key() {
        assert_eq!(
            Pattern::parse("blink:100:900").unwrap(),
            Pattern::Blink {
                on: Duration::from_millis(100),
                off: Duration::from_millis(900)
            }
        );
        let t = PatternTable {
            ringing: "disco".into(),
            ..PatternTable::default()
        };
        let (key, msg) = Patterns::from_table(&t).unwrap_err();
        assert_eq!(key, "gpio.patterns.ringing");
        assert!(msg.contains("disco"));
    }
}
