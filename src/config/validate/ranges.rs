//! Every numeric key the agent turns into a duration, a deadline or a count has a range, so a
//! value near an integer limit is refused here, with its key and line, instead of overflowing
//! `Instant + Duration` (a panic) or wrapping silently (`as u16`, `as u8`) at run time.
//!
//! The media sizes and rates, `service.ready_timeout_s`, the LED blink times and the RTM ids
//! have their ranges next to their other checks; this module holds the timing keys and the
//! integers handed to other libraries. `config.example.toml` documents each range.

use super::super::{Config, GpioBackend};

/// One key's value and allowed range.
#[derive(Debug, Clone, Copy)]
pub(super) struct Range {
    /// Dotted key path.
    pub key: &'static str,
    /// The configured value.
    pub value: u64,
    /// Smallest allowed value.
    pub min: u64,
    /// Largest allowed value.
    pub max: u64,
    /// `ms` or `s`, for the message.
    pub unit: &'static str,
}

/// The timing keys with their values and ranges, in file order.
pub(super) fn timing(c: &Config) -> [Range; 14] {
    let r = |key, value, min, max, unit| Range {
        key,
        value,
        min,
        max,
        unit,
    };
    let (s, a, q, g) = (&c.signaling, &c.answer, &c.mqtt, &c.gpio);
    [
        r("signaling.keepalive_s", s.keepalive_s, 1, 300, "s"),
        r(
            "signaling.request_timeout_s",
            s.request_timeout_s,
            1,
            300,
            "s",
        ),
        r(
            "signaling.reconnect_min_ms",
            s.reconnect_min_ms,
            1,
            60_000,
            "ms",
        ),
        r(
            "signaling.reconnect_max_ms",
            s.reconnect_max_ms,
            1,
            3_600_000,
            "ms",
        ),
        r("answer.delay_ms", a.delay_ms, 0, 60_000, "ms"),
        r("answer.ring_timeout_s", a.ring_timeout_s, 1, 600, "s"),
        r("answer.connect_timeout_s", a.connect_timeout_s, 1, 600, "s"),
        r(
            "media.stats_interval_s",
            c.media.stats_interval_s,
            1,
            3_600,
            "s",
        ),
        // rumqttc sends the keep-alive as a 16-bit number of seconds and wants at least 5.
        r("mqtt.keep_alive_s", q.keep_alive_s, 5, 3_600, "s"),
        r(
            "mqtt.telemetry_interval_s",
            q.telemetry_interval_s,
            1,
            86_400,
            "s",
        ),
        r("mqtt.reconnect_min_ms", q.reconnect_min_ms, 1, 60_000, "ms"),
        r(
            "mqtt.reconnect_max_ms",
            q.reconnect_max_ms,
            1,
            3_600_000,
            "ms",
        ),
        r("gpio.debounce_ms", g.debounce_ms, 0, 500, "ms"),
        r("gpio.long_press_ms", g.long_press_ms, 1, 60_000, "ms"),
    ]
}

/// The first integer a `dockingLogin` user gets (see `room_server::accounts`); configured
/// accounts stay below it so the two never share an id.
pub(super) const MAX_ACCOUNT_ID: i64 = 99_999;

/// The timing keys, whether or not their section is enabled (a value that would overflow
/// is wrong before anyone turns the section on), plus the integers other libraries narrow.
pub(super) fn check(c: &Config, err: &mut impl FnMut(&str, String)) {
    for Range {
        key,
        value,
        min,
        max,
        unit,
    } in timing(c)
    {
        if !(min..=max).contains(&value) {
            err(key, format!("{value} is outside {min}..={max} ({unit})"));
        }
    }
    check_gpio_offsets(c, err);
}

/// rppal numbers pins with a `u8`; a larger offset would wrap to another pin.
fn check_gpio_offsets(c: &Config, err: &mut impl FnMut(&str, String)) {
    let g = &c.gpio;
    if g.backend != GpioBackend::Rppal {
        return;
    }
    let lines = [
        ("mute_button", &g.mute_button),
        ("answer_button", &g.answer_button),
        ("privacy_switch", &g.privacy_switch),
        ("status_led", &g.status_led),
        ("mute_led", &g.mute_led),
    ];
    for (key, line) in lines {
        if let Some(offset) = line.as_ref().and_then(|l| l.offset)
            && offset > u32::from(u8::MAX)
        {
            err(
                &format!("gpio.{key}.offset"),
                format!("{offset} is not a BCM GPIO number (0..=255 for rppal)"),
            );
        }
    }
}

/// `[[room_server.accounts]] id`: positive and below the ids `dockingLogin` hands out.
pub(super) fn check_account_id(i: usize, id: i64, err: &mut impl FnMut(&str, String)) {
    if !(1..=MAX_ACCOUNT_ID).contains(&id) {
        err(
            &format!("room_server.accounts[{i}].id"),
            format!(
                "{id} is outside 1..={MAX_ACCOUNT_ID} (ids from {} are given to dockingLogin users)",
                MAX_ACCOUNT_ID + 1
            ),
        );
    }
}
