//! Checks that go beyond types: required values, formats, and combinations that cannot work.

use std::collections::HashSet;

use url::Url;

use super::{Backend, Config, LoginMethod, RelayPolicy, Transport};
use crate::core::AnswerMode;

/// What the configuration is going to be used for; decides which sections must be complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `roomagent run` / `check-config`: everything the agent needs.
    Agent,
    /// `roomagent room-server`: only `[room_server]` and `[log]` matter.
    RoomServer,
}

/// Every problem as `(key path, message)`.
pub fn check(c: &Config, purpose: Purpose) -> Vec<(String, String)> {
    let mut p = Vec::new();
    let mut err = |path: &str, msg: String| p.push((path.to_string(), msg));

    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&c.log.level) {
        err("log.level", format!("not a valid log filter: {e}"));
    }
    check_room_server(c, &mut err);
    if c.service.ready_timeout_s > 300 {
        err(
            "service.ready_timeout_s",
            format!(
                "{} s is longer than any service manager waits for start-up (at most 300)",
                c.service.ready_timeout_s
            ),
        );
    }
    if purpose == Purpose::RoomServer {
        return p;
    }

    ranges::check(c, &mut err);
    if c.not_configured {
        // A fresh install: no server to log in to yet, so nothing of signaling (nor a device
        // id, unless MQTT needs one for its topics) to check.
        if c.mqtt.enabled {
            check_device(c, &mut err);
        }
    } else {
        check_device(c, &mut err);
        check_signaling(c, &mut err);
    }
    for section in [
        check_media,
        check_ice,
        check_mqtt,
        check_gpio,
        check_answer,
        check_health,
    ] {
        section(c, &mut err);
    }
    p
}

/// `[device]`.
fn check_device(c: &Config, err: &mut impl FnMut(&str, String)) {
    let id = &c.device.id;
    if id.is_empty() {
        err(
            "device.id",
            "missing: every device needs a stable id (it names its MQTT topics)".into(),
        );
    } else if id.len() > 64
        || !id
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
    {
        err(
            "device.id",
            format!("{id:?} may only contain letters, digits, '-' and '_' (at most 64)"),
        );
    } else if crate::mqtt::topics::RESERVED_IDS.contains(&id.as_str()) {
        err(
            "device.id",
            format!("{id:?} is reserved: <prefix>/{id}/… are the fleet's command topics"),
        );
    }
}

/// A group or site name: one MQTT topic level, as a device id.
fn topic_level(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 64
        && v.chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
}

/// `[media]`: sizes, rates and intervals.
fn check_media(c: &Config, err: &mut impl FnMut(&str, String)) {
    let m = &c.media;
    let mut range = |key: &str, v: u32, lo: u32, hi: u32| {
        if v < lo || v > hi {
            err(
                &format!("media.{key}"),
                format!("{v} is outside {lo}..={hi}"),
            );
        }
    };
    range("width", m.width, 160, 3840);
    range("height", m.height, 120, 2160);
    range("framerate", m.framerate, 1, 60);
    range("video_bitrate_kbps", m.video_bitrate_kbps, 64, 20_000);
    // Above video_bitrate_kbps it is that: adaptation then only steps size and rate.
    range(
        "min_video_bitrate_kbps",
        m.min_video_bitrate_kbps,
        32,
        20_000,
    );
    range("audio_bitrate_kbps", m.audio_bitrate_kbps, 6, 510);
    range("display_width", m.display_width, 160, 3840);
    range("display_height", m.display_height, 120, 2160);
    for (key, v) in [
        ("width", m.width),
        ("height", m.height),
        ("display_width", m.display_width),
        ("display_height", m.display_height),
    ] {
        if v % 2 != 0 {
            err(
                &format!("media.{key}"),
                format!("{v} must be even (4:2:0 video)"),
            );
        }
    }
}

/// STUN and TURN, wherever they were written (see [`Config::ice`]).
fn check_ice(c: &Config, err: &mut impl FnMut(&str, String)) {
    let ice = c.ice();
    if let Some(range) = &c.media.ice.port_range
        && let Err(e) = crate::config::port_range(range)
    {
        err("media.ice.port_range", e);
    }
    let key = |k: &str| format!("{}.{k}", ice.source);
    if let Some(stun) = &ice.stun_server
        && !(stun.starts_with("stun://") && valid_host_port(&stun["stun://".len()..]))
    {
        err(
            "media.ice.stun_server",
            format!("{:?} must look like stun://host:port", shown(stun)),
        );
    }
    let turn = if ice.source == "signaling" {
        "relay_server"
    } else {
        "turn_server"
    };
    if let Some(relay) = &ice.turn_server {
        if !valid_host_port(relay) {
            err(
                &key(turn),
                format!(
                    "{:?} must be host:port, without a scheme or credentials (e.g. turn.example.com:3478)",
                    shown(relay)
                ),
            );
        }
    } else if ice.policy == RelayPolicy::Relay {
        err(
            &key(if ice.source == "signaling" {
                "relay"
            } else {
                "policy"
            }),
            format!(
                "\"relay\" sends media only through the TURN relay, so {} is required",
                key(turn)
            ),
        );
    } else if ice.turn_transport == Transport::Tcp {
        err(
            &key(if ice.source == "signaling" {
                "transport"
            } else {
                "turn_transport"
            }),
            format!("\"tcp\" means TURN over TCP, so {} is required", key(turn)),
        );
    }
}

/// `[mqtt]`, when enabled.
fn check_mqtt(c: &Config, err: &mut impl FnMut(&str, String)) {
    let q = &c.mqtt;
    if q.enabled {
        if q.host.is_empty() {
            err(
                "mqtt.host",
                "missing: the broker's host name or address".into(),
            );
        }
        if q.port == 0 {
            err("mqtt.port", "must be 1-65535".into());
        }
        if q.prefix.is_empty() || q.prefix.contains(['+', '#']) || q.prefix.ends_with('/') {
            err(
                "mqtt.prefix",
                format!(
                    "{:?} must be non-empty, without + or # and without a trailing /",
                    q.prefix
                ),
            );
        }
        for (key, tag) in [("group", &q.group), ("site", &q.site)] {
            if let Some(t) = tag
                && !topic_level(t)
            {
                err(
                    &format!("mqtt.{key}"),
                    format!(
                        "{t:?} names the topic <prefix>/{key}/{t}/cmd/+: only letters, digits, '-' and '_' (at most 64)"
                    ),
                );
            }
        }
        if q.client_cert_file.is_some() != q.client_key_file.is_some() {
            err(
                "mqtt.client_key_file",
                "client_cert_file and client_key_file go together".into(),
            );
        }
        if !q.alpn.is_empty() && q.ca_file.is_none() {
            err("mqtt.alpn", "ALPN is part of TLS: set ca_file too".into());
        }
        if q.alpn.iter().any(|p| p.is_empty() || p.len() > 255) {
            err(
                "mqtt.alpn",
                "each protocol name is 1-255 bytes (AWS IoT Core: \"mqtt\")".into(),
            );
        }
        if q.client_cert_file.is_some() && q.ca_file.is_none() {
            err(
                "mqtt.ca_file",
                "a client certificate needs TLS: set ca_file too".into(),
            );
        }
        for (key, path) in [
            ("ca_file", &q.ca_file),
            ("client_cert_file", &q.client_cert_file),
            ("client_key_file", &q.client_key_file),
        ] {
            if let Some(p) = path
                && !p.exists()
            {
                err(
                    &format!("mqtt.{key}"),
                    format!("{} does not exist", p.display()),
                );
            }
        }
        if q.username.is_none() && (q.password.is_some() || q.password_file.is_some()) {
            err(
                "mqtt.username",
                "a password without a user name; set username".into(),
            );
        }
        if let Some(u) = &q.configuration_url
            && !Url::parse(u).is_ok_and(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.has_host()
                    && u.username().is_empty()
                    && u.password().is_none()
            })
        {
            err(
                "mqtt.configuration_url",
                format!(
                    "{:?} must be an http:// or https:// URL without a user name or password (it is published)",
                    shown(u)
                ),
            );
        }
        if q.reconnect_max_ms < q.reconnect_min_ms {
            err(
                "mqtt.reconnect_max_ms",
                format!(
                    "must not be below reconnect_min_ms ({})",
                    q.reconnect_min_ms
                ),
            );
        }
        if !(1..=86_400).contains(&q.command_max_age_s) {
            err(
                "mqtt.command_max_age_s",
                format!("must be 1-86400 seconds, not {}", q.command_max_age_s),
            );
        }
    }
}

/// `[health]`.
fn check_health(c: &Config, err: &mut impl FnMut(&str, String)) {
    let h = &c.health;
    if !(40..=125).contains(&h.temperature_warning_c) {
        err(
            "health.temperature_warning_c",
            format!("must be 40-125 °C, not {}", h.temperature_warning_c),
        );
    }
    if h.temperature_error_c < h.temperature_warning_c || h.temperature_error_c > 125 {
        err(
            "health.temperature_error_c",
            format!(
                "must be from temperature_warning_c ({}) to 125 °C, not {}",
                h.temperature_warning_c, h.temperature_error_c
            ),
        );
    }
    if !(1..=90).contains(&h.disk_free_warning_percent) {
        err(
            "health.disk_free_warning_percent",
            format!("must be 1-90 %, not {}", h.disk_free_warning_percent),
        );
    }
    if h.signaling_grace_s > 3600 {
        err(
            "health.signaling_grace_s",
            format!("must be 0-3600 s, not {}", h.signaling_grace_s),
        );
    }
}

/// `[gpio]`, when enabled.
fn check_gpio(c: &Config, err: &mut impl FnMut(&str, String)) {
    let g = &c.gpio;
    if g.enabled {
        let lines = [
            ("mute_button", &g.mute_button),
            ("answer_button", &g.answer_button),
            ("privacy_switch", &g.privacy_switch),
            ("status_led", &g.status_led),
            ("mute_led", &g.mute_led),
        ];
        for (key, line) in lines {
            let Some(l) = line else { continue };
            let path = format!("gpio.{key}");
            match g.backend {
                crate::config::GpioBackend::Gpiocdev => match (&l.chip, l.offset, &l.line) {
                    (Some(_), Some(_), None) | (None, None, Some(_)) => {}
                    (_, _, Some(_)) => err(&path, "give either line (a name) or chip + offset, not both".into()),
                    _ => err(&path, "needs chip + offset (e.g. chip = \"gpiochip0\", offset = 17) or a line name".into()),
                },
                crate::config::GpioBackend::Rppal => {
                    if l.offset.is_none() {
                        err(&path, "the rppal backend needs offset = the BCM GPIO number".into());
                    }
                }
                crate::config::GpioBackend::Sim => {}
            }
            if let Some(b) = l.brightness
                && !(0.0..=1.0).contains(&b)
            {
                err(
                    &format!("{path}.brightness"),
                    format!("{b} is outside 0.0-1.0"),
                );
            }
        }
        if let Err((key, msg)) = super::led::Patterns::from_table(&g.patterns) {
            err(&key, msg);
        }
        if g.long_press_ms <= g.debounce_ms {
            err(
                "gpio.long_press_ms",
                "must be longer than debounce_ms".into(),
            );
        }
    }
}

/// `[answer]`.
fn check_answer(c: &Config, err: &mut impl FnMut(&str, String)) {
    let a = &c.answer;
    if a.mode == AnswerMode::AllowList && a.allow.is_empty() {
        err(
            "answer.allow",
            "mode = \"allow_list\" with an empty list answers nobody; list user ids or use mode = \"never\"".into(),
        );
    }
    if a.mode != AnswerMode::Never && a.delay_ms >= a.ring_timeout_s.saturating_mul(1000) {
        err(
            "answer.delay_ms",
            format!(
                "{} ms is not shorter than ring_timeout_s ({} s): calls would be declined before they are answered",
                a.delay_ms, a.ring_timeout_s
            ),
        );
    }
}

fn check_room_server(c: &Config, err: &mut impl FnMut(&str, String)) {
    let r = &c.room_server;
    if !r.base_path.starts_with('/') || (r.base_path.len() > 1 && r.base_path.ends_with('/')) {
        err(
            "room_server.base_path",
            format!(
                "{:?} must start with '/' and not end with one (e.g. \"/app\")",
                r.base_path
            ),
        );
    }
    let mut ids = HashSet::new();
    let mut names = HashSet::new();
    for (i, acc) in r.accounts.iter().enumerate() {
        ranges::check_account_id(i, acc.id, err);
        if !ids.insert(acc.id) {
            err(
                &format!("room_server.accounts[{i}].id"),
                format!("user id {} is used by an earlier account", acc.id),
            );
        }
        if acc.name.is_empty() {
            err(
                &format!("room_server.accounts[{i}].name"),
                "must not be empty".into(),
            );
        } else if !names.insert(acc.name.as_str()) {
            err(
                &format!("room_server.accounts[{i}].name"),
                format!("login name {:?} is used by an earlier account", acc.name),
            );
        }
    }
    let mut apps = HashSet::new();
    for (i, app) in r.apps.iter().enumerate() {
        if !apps.insert(app.app_id.as_str()) {
            err(
                &format!("room_server.apps[{i}].app_id"),
                format!("appId {:?} appears twice", app.app_id),
            );
        }
    }
}

fn valid_host_port(s: &str) -> bool {
    if s.contains("://") || s.contains('@') {
        return false;
    }
    match s.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0),
        None => false,
    }
}

/// A value to quote in a message, with anything that looks like credentials (`user:password@`
/// in a URL or host:port) replaced by `***`: an error message must never carry a secret.
fn shown(v: &str) -> String {
    let (scheme, rest) = v.split_at(v.find("://").map_or(0, |i| i + 3));
    match rest.rfind('@') {
        Some(at) => format!("{scheme}***{}", &rest[at..]),
        None => v.to_string(),
    }
}

/// `[signaling]`: the timing every backend uses, then the chosen backend's own keys.
fn check_signaling(c: &Config, err: &mut impl FnMut(&str, String)) {
    let s = &c.signaling;
    if s.reconnect_max_ms < s.reconnect_min_ms {
        err(
            "signaling.reconnect_max_ms",
            format!(
                "must not be below reconnect_min_ms ({})",
                s.reconnect_min_ms
            ),
        );
    }

    match s.backend {
        Backend::RtcPeer => check_rtcpeer(c, err),
        Backend::Rtm => check_rtm(c, err),
    }
}

/// The RTCPeer keys directly under `[signaling]`.
fn check_rtcpeer(c: &Config, err: &mut impl FnMut(&str, String)) {
    let s = &c.signaling;
    match Url::parse(&s.host) {
        Ok(u) if !u.username().is_empty() || u.password().is_some() => err(
            "signaling.host",
            format!(
                "{:?} must not carry a user name or password (they belong in [signaling.login])",
                shown(&s.host)
            ),
        ),
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
        Ok(u) => err(
            "signaling.host",
            format!(
                "{:?} must be an http:// or https:// URL, not {}://",
                shown(&s.host),
                u.scheme()
            ),
        ),
        Err(e) => err(
            "signaling.host",
            format!("{:?} is not a URL: {e}", shown(&s.host)),
        ),
    }
    signaling_tls::check(c, err);
    if !s.socket_path.starts_with('/') {
        err(
            "signaling.socket_path",
            format!("{:?} must start with '/'", s.socket_path),
        );
    }
    let l = &s.login;
    match l.method {
        LoginMethod::Password => {
            if l.name.as_deref().is_none_or(str::is_empty) {
                err(
                    "signaling.login.name",
                    "missing: the account name to log in with".into(),
                );
            }
            if l.password.is_none() && l.password_file.is_none() {
                err(
                    "signaling.login.password",
                    "missing: set password, or password_file for a file/systemd credential".into(),
                );
            }
        }
        LoginMethod::Docking => {
            if l.app_id.as_deref().is_none_or(str::is_empty) {
                err(
                    "signaling.login.app_id",
                    "missing: docking login needs the appId".into(),
                );
            }
            if l.secret.is_none() && l.secret_file.is_none() {
                err(
                    "signaling.login.secret",
                    "missing: docking login needs the app secret (secret or secret_file)".into(),
                );
            }
            if l.account.as_deref().is_none_or(str::is_empty) {
                err(
                    "signaling.login.account",
                    "missing: docking login needs the third-party account".into(),
                );
            }
        }
    }
}

/// `[signaling.rtm]`.
fn check_rtm(c: &Config, err: &mut impl FnMut(&str, String)) {
    let r = &c.signaling.rtm;
    if r.pid <= 0 || r.pid > i64::from(u32::MAX) {
        err(
            "signaling.rtm.pid",
            "missing or out of range: the RTM project id (a positive 32-bit number)".into(),
        );
    }
    if r.uid <= 0 {
        err(
            "signaling.rtm.uid",
            "missing: the device's RTM user id (a positive number)".into(),
        );
    }
    if r.token.is_none() && r.token_file.is_none() {
        err(
            "signaling.rtm.token",
            "missing: set token, or token_file for a file/systemd credential (the token comes from your business back end)".into(),
        );
    }
    match (&r.dispatch, &r.gate) {
        (None, None) => err(
            "signaling.rtm.gate",
            "missing: set gate (host:port of an RTM gate) or dispatch (host:port of the dispatch service)".into(),
        ),
        (Some(_), Some(_)) => err(
            "signaling.rtm.dispatch",
            "give either dispatch or gate, not both".into(),
        ),
        _ => {}
    }
    for (key, v) in [
        ("dispatch", &r.dispatch),
        ("gate", &r.gate),
        ("rtc_gate", &r.rtc_gate),
    ] {
        if let Some(v) = v
            && !valid_host_port(v)
        {
            err(
                &format!("signaling.rtm.{key}"),
                format!(
                    "{:?} must be host:port (e.g. rtm.example.com:13321)",
                    shown(v)
                ),
            );
        }
    }
    for (name, e) in [
        ("encryption", &r.encryption),
        ("rtc_encryption", &r.rtc_encryption),
    ] {
        let Some(e) = e else { continue };
        if !matches!(e.bits, 128 | 256) {
            err(
                &format!("signaling.rtm.{name}.bits"),
                format!("{} is not an AES key size: use 128 or 256", e.bits),
            );
        }
        if !e.public_key_file.exists() {
            err(
                &format!("signaling.rtm.{name}.public_key_file"),
                format!("{} does not exist", e.public_key_file.display()),
            );
        }
    }
    if r.command_mtype.is_some_and(|t| !(0..=255).contains(&t)) {
        err("signaling.rtm.command_mtype", "an mtype is 0-255".into());
    }
    if c.signaling.keepalive_s > 40 {
        err(
            "signaling.keepalive_s",
            format!(
                "{} s is too long for RTM: a gate closes a connection silent for 60 s (use 40 or less)",
                c.signaling.keepalive_s
            ),
        );
    }
    if r.version.len() > 64 {
        err("signaling.rtm.version", "at most 64 characters".into());
    }
    if r.video_subscriptions > 16 {
        err(
            "signaling.rtm.video_subscriptions",
            format!(
                "{} is more pictures than a room display shows; at most 16",
                r.video_subscriptions
            ),
        );
    }
}

mod ranges;
mod signaling_tls;

#[cfg(test)]
mod range_tests;
#[cfg(test)]
mod tests;
