//! 10,000 mutated configuration files through the loader and validator: none panics, every
//! refusal names a key or a line, and every accepted file turns into deadlines that fit.
//!
//! The files start from `config.example.toml` and the shapes the tests use (RTM, docking
//! login, MQTT over TLS, rppal GPIO), then lose, repeat and swap lines, get numbers near the
//! integer limits, negative, zero or fractional, values of the wrong type, truncation and
//! garbage bytes including invalid UTF-8. The generator is seeded: a failure prints the seed
//! and the file, and `FUZZ_CONFIG_SEED=<n>` replays it.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use roomagent::config::{Config, ConfigError, Purpose, parse_bytes};

#[path = "support/rng.rs"]
mod rng;
use rng::Rng;

const CASES: u64 = 10_000;

const EXAMPLE: &str = include_str!("../config.example.toml");

const RTM: &str = r#"
[device]
id = "rtm-1"
[signaling]
backend = "rtm"
keepalive_s = 1
request_timeout_s = 2
reconnect_min_ms = 50
reconnect_max_ms = 400
[signaling.rtm]
pid = 11000001
uid = 9001
token = "tok"
gate = "127.0.0.1:13321"
command_mtype = 77
pull = "invite"
[answer]
mode = "allow_list"
allow = [7]
delay_ms = 0
ring_timeout_s = 1
[media]
enabled = false
"#;

const DOCKING: &str = r#"
[device]
id = "dock"
name = "Docking room"
[signaling]
host = "https://meet.example.com/app"
relay_server = "turn.example.com:3478"
relay_username = "u"
relay_password = "p"
relay = "relay"
transport = "tcp"
[signaling.login]
method = "docking"
app_id = "demo-app"
secret = "demo-secret"
account = "room-101"
[media.ice]
stun_server = "stun://stun.example.com:3478"
[service]
ready_timeout_s = 0
"#;

const MQTT_GPIO: &str = r#"
[device]
id = "room-7"
[signaling.login]
name = "room"
password_file = "signaling-password"
[mqtt]
enabled = true
host = "broker.example.com"
port = 8883
username = "room-7"
password = "pw"
keep_alive_s = 5
telemetry_interval_s = 1
reconnect_min_ms = 200
reconnect_max_ms = 1000
group = "lobby"
[gpio]
enabled = true
backend = "rppal"
debounce_ms = 20
long_press_ms = 600
[gpio.mute_led]
offset = 24
brightness = 0.6
[gpio.patterns]
ringing = "blink:100:900"
[[room_server.accounts]]
id = 1001
name = "room"
password = "room"
"#;

const SEEDS: &[&str] = &[EXAMPLE, RTM, DOCKING, MQTT_GPIO];

/// Values that have broken parsers and arithmetic before.
const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "-1",
    "1",
    "0.5",
    "-2.5",
    "1e308",
    "-1e308",
    "nan",
    "inf",
    "-inf",
    "255",
    "256",
    "65535",
    "65536",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "18446744073709551615",
    "1_000_000_000_000",
    "0x7fffffff",
    "0o777",
    "0b1",
];

/// Values of every TOML type.
const VALUES: &[&str] = &[
    "\"\"",
    "\"x\"",
    "\"1000\"",
    "true",
    "false",
    "[]",
    "[1, \"a\"]",
    "{}",
    "{ a = 1 }",
    "1979-05-27T07:32:00Z",
    "07:32:00",
    "'''multi\nline'''",
    "\"\\u00e9\\n\"",
    "\"stun://u:p@h:1\"",
];

/// The value part of a `key = value` line, replaced.
fn set_value(line: &[u8], value: &str) -> Vec<u8> {
    match line.iter().position(|&b| b == b'=') {
        Some(eq) => [&line[..=eq], b" ", value.as_bytes()].concat(),
        None => line.to_vec(),
    }
}

/// One mutation of the file's lines.
fn mutate(rng: &mut Rng, lines: &mut Vec<Vec<u8>>) {
    let i = rng.below(lines.len());
    match rng.below(10) {
        0 if !lines.is_empty() => {
            lines.remove(i);
        }
        1 if !lines.is_empty() => {
            let l = lines[i].clone();
            lines.insert(rng.below(lines.len() + 1), l);
        }
        2 if !lines.is_empty() => {
            let j = rng.below(lines.len());
            lines.swap(i, j);
        }
        3 | 4 if !lines.is_empty() => lines[i] = set_value(&lines[i], rng.pick::<&str>(NUMBERS)),
        5 if !lines.is_empty() => lines[i] = set_value(&lines[i], rng.pick::<&str>(VALUES)),
        6 if !lines.is_empty() => {
            let l = &mut lines[i];
            let cut = rng.below(l.len() + 1);
            l.truncate(cut);
        }
        7 => {
            let garbage: Vec<u8> = (0..1 + rng.below(6))
                .map(|_| match rng.below(4) {
                    0 => [0xff, 0xc3, 0x80, 0x00, 0xe2][rng.below(5)],
                    1 => {
                        let special = b"[]\"'=.#\\{},\t\r";
                        special[rng.below(special.len())]
                    }
                    _ => rng.next() as u8,
                })
                .collect();
            if lines.is_empty() {
                lines.push(Vec::new());
            }
            let l = &mut lines[i];
            let at = rng.below(l.len() + 1);
            l.splice(at..at, garbage);
        }
        8 => {
            let header = [
                "[mqtt]",
                "[[room_server.accounts]]",
                "[gpio.status_led]",
                "[x]",
                "[",
            ];
            lines.insert(rng.below(lines.len() + 1), (*rng.pick(&header)).into());
        }
        _ => {
            let key = [
                "delay_ms",
                "offset",
                "id",
                "keepalive_s",
                "bogus",
                "password",
            ];
            let l = format!("{} = {}", rng.pick(&key), rng.pick(NUMBERS));
            lines.insert(rng.below(lines.len() + 1), l.into_bytes());
        }
    }
}

fn generate(seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let base = *rng.pick(SEEDS);
    let mut lines: Vec<Vec<u8>> = base.lines().map(|l| l.as_bytes().to_vec()).collect();
    for _ in 0..1 + rng.below(4) {
        mutate(&mut rng, &mut lines);
    }
    let mut text = lines.join(&b'\n');
    if rng.below(20) == 0 {
        let cut = rng.below(text.len() + 1);
        text.truncate(cut);
    }
    text
}

/// What every accepted file must allow: the deadlines the agent computes from it.
fn deadlines_fit(c: &Config) -> Result<(), String> {
    let core = c.core();
    let (s, q) = (&c.signaling, &c.mqtt);
    let all = [
        core.policy.delay,
        core.policy.ring_timeout,
        core.connect_timeout,
        Duration::from_secs(s.keepalive_s) * 3 + Duration::from_secs(s.request_timeout_s),
        Duration::from_millis(s.reconnect_max_ms),
        Duration::from_secs(q.keep_alive_s),
        Duration::from_secs(q.telemetry_interval_s),
        Duration::from_millis(q.reconnect_max_ms),
        Duration::from_secs(c.media.stats_interval_s),
        Duration::from_millis(c.gpio.long_press_ms),
        c.service.ready_timeout(),
    ];
    let now = Instant::now();
    for d in all {
        if now.checked_add(d).is_none() || d > Duration::from_secs(86_400) {
            return Err(format!("accepted a duration of {d:?}"));
        }
    }
    if c.media.stats_interval_s == 0 || q.keep_alive_s > u64::from(u16::MAX) {
        return Err("accepted a value its user cannot take".into());
    }
    Ok(())
}

fn check(errors: &[ConfigError]) -> Result<(), String> {
    if errors.is_empty() {
        return Err("refused without an error".into());
    }
    for e in errors {
        if (e.path.is_empty() && e.line.is_none()) || e.message.is_empty() {
            return Err(format!("an error naming neither key nor line: {e:?}"));
        }
    }
    Ok(())
}

fn run(seed: u64) -> Result<bool, String> {
    let text = generate(seed);
    let purpose = if seed.is_multiple_of(8) {
        Purpose::RoomServer
    } else {
        Purpose::Agent
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| parse_bytes(&text, purpose)));
    let show = || String::from_utf8_lossy(&text).into_owned();
    match outcome {
        Err(_) => Err(format!("seed {seed}: the loader panicked on\n{}", show())),
        // `room-server` reads only [room_server], [service] and [log].
        Ok(Ok(_)) if purpose == Purpose::RoomServer => Ok(true),
        Ok(Ok(c)) => deadlines_fit(&c)
            .map(|()| true)
            .map_err(|e| format!("seed {seed}: {e}\n{}", show())),
        Ok(Err(errors)) => check(&errors)
            .map(|()| false)
            .map_err(|e| format!("seed {seed}: {e}\n{}", show())),
    }
}

#[test]
fn ten_thousand_mutated_configuration_files_never_panic_and_every_error_names_a_key_or_line() {
    if let Some(seed) = std::env::var("FUZZ_CONFIG_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        run(seed).unwrap();
        return;
    }
    let started = Instant::now();
    let threads = 2;
    let results: Vec<(u64, u64, Vec<String>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let (mut ok, mut refused, mut failures) = (0, 0, Vec::new());
                    for seed in (t..CASES).step_by(threads as usize) {
                        match run(seed) {
                            Ok(true) => ok += 1,
                            Ok(false) => refused += 1,
                            Err(e) => failures.push(e),
                        }
                    }
                    (ok, refused, failures)
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let ok: u64 = results.iter().map(|r| r.0).sum();
    let refused: u64 = results.iter().map(|r| r.1).sum();
    let failures: Vec<&String> = results.iter().flat_map(|r| &r.2).collect();
    eprintln!(
        "fuzz_config: {} files, {ok} accepted, {refused} refused, {} failures, {:.1} s",
        ok + refused + failures.len() as u64,
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{}",
        failures[..failures.len().min(3)]
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n\n")
    );
    assert_eq!(ok + refused, CASES);
    // The campaign exercises both outcomes, or it tests nothing.
    assert!(
        ok > CASES / 20 && refused > CASES / 2,
        "{ok} accepted, {refused} refused"
    );
}
