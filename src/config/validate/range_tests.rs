//! Numeric keys at, just inside and beyond their ranges, as a user would write them.

use std::time::{Duration, Instant};

use super::ranges::{MAX_ACCOUNT_ID, timing};
use crate::config::{Config, ConfigError, Purpose, parse};

/// Enough for an agent configuration to be valid.
const BASE: &str = "[device]\nid = \"r\"\n[signaling.login]\nname = \"n\"\npassword = \"p\"\n";

/// `key = value` on line 2, in its own section, before [`BASE`].
fn with(key: &str, value: &str) -> Result<Config, Vec<ConfigError>> {
    let (section, name) = key.rsplit_once('.').unwrap();
    parse(
        &format!("[{section}]\n{name} = {value}\n{BASE}"),
        Purpose::Agent,
    )
}

fn range_error_on(result: &Result<Config, Vec<ConfigError>>, key: &str) -> Option<ConfigError> {
    let errors = result.as_ref().err()?;
    errors
        .iter()
        .find(|e| e.path == key && e.message.contains("is outside"))
        .cloned()
}

#[test]
fn every_timing_key_accepts_its_bounds() {
    for r in timing(&Config::default()) {
        for v in [r.min, r.max] {
            let result = with(r.key, &v.to_string());
            assert_eq!(range_error_on(&result, r.key), None, "{} = {v}", r.key);
        }
    }
}

#[test]
fn every_timing_key_refuses_values_beyond_its_bounds_with_key_and_line() {
    for r in timing(&Config::default()) {
        let mut beyond = vec![r.max + 1, u64::MAX >> 1];
        if r.min > 0 {
            beyond.push(r.min - 1);
        }
        for v in beyond {
            let e = range_error_on(&with(r.key, &v.to_string()), r.key)
                .unwrap_or_else(|| panic!("{} = {v} was accepted", r.key));
            assert_eq!(e.line, Some(2), "{e}");
            let range = format!("{}..={} ({})", r.min, r.max, r.unit);
            assert!(e.message.contains(&range), "{e}");
        }
    }
}

#[test]
fn negative_fractional_and_oversized_numbers_name_the_key_and_line() {
    for v in ["-1", "0.5", "1e30", "nan", "-inf", "\"30\""] {
        let errors = with("mqtt.keep_alive_s", v).unwrap_err();
        let e = errors
            .iter()
            .find(|e| e.path == "mqtt.keep_alive_s")
            .unwrap_or_else(|| panic!("{v}: {errors:?}"));
        assert_eq!(e.line, Some(2), "{v}: {e}");
    }
    // Beyond TOML's 64-bit signed integers: a syntax error, at its line.
    let errors = with("answer.delay_ms", "18446744073709551615").unwrap_err();
    assert_eq!(errors[0].line, Some(2), "{errors:?}");
}

#[test]
fn the_largest_allowed_timings_load_and_fit_into_a_deadline() {
    let mut sections: Vec<(&str, String)> = Vec::new();
    for r in timing(&Config::default()) {
        let (section, name) = r.key.rsplit_once('.').unwrap();
        let line = format!("{name} = {}\n", r.max);
        match sections.iter_mut().find(|(s, _)| *s == section) {
            Some((_, body)) => body.push_str(&line),
            None => sections.push((section, line)),
        }
    }
    let mut text = String::from(BASE);
    for (section, body) in sections {
        text.push_str(&format!("[{section}]\n{body}"));
    }
    let c = parse(&text, Purpose::Agent).unwrap_or_else(|e| panic!("{e:#?}\n{text}"));
    assert_eq!(c.answer.ring_timeout_s, 600);
    let core = c.core();
    let now = Instant::now();
    for d in [
        core.policy.delay,
        core.policy.ring_timeout,
        core.connect_timeout,
        Duration::from_millis(c.signaling.reconnect_max_ms),
        Duration::from_secs(c.mqtt.telemetry_interval_s),
    ] {
        assert!(now.checked_add(d * 4).is_some(), "{d:?}");
    }
}

#[test]
fn room_server_account_ids_stay_below_the_docking_ids() {
    let account =
        |id: i64| format!("[[room_server.accounts]]\nid = {id}\nname = \"a\"\npassword = \"p\"\n");
    for id in [1, MAX_ACCOUNT_ID] {
        assert!(parse(&account(id), Purpose::RoomServer).is_ok(), "{id}");
    }
    for id in [0, -5, MAX_ACCOUNT_ID + 1, i64::MAX] {
        let errors = parse(&account(id), Purpose::RoomServer).unwrap_err();
        assert_eq!(errors[0].path, "room_server.accounts[0].id", "{id}");
        assert_eq!(errors[0].line, Some(2), "{id}");
    }
}

#[test]
fn an_rppal_pin_number_must_fit_in_a_byte() {
    let gpio = |offset: u32| {
        format!(
            "{BASE}[gpio]\nenabled = true\nbackend = \"rppal\"\n[gpio.status_led]\noffset = {offset}\n"
        )
    };
    assert!(parse(&gpio(255), Purpose::Agent).is_ok());
    let errors = parse(&gpio(256), Purpose::Agent).unwrap_err();
    assert_eq!(errors[0].path, "gpio.status_led.offset");
    assert_eq!(errors[0].line, Some(10));
}
