//! 10,000 hostile commands through a real broker into a whole agent: unknown and odd verbs,
//! payloads that are not JSON, not UTF-8, huge, deeply nested, with wrong types, numbers out
//! of range, stale or future timestamps and unknown arguments, mixed with valid commands.
//! The agent keeps running, answers every command that carries an `id` with a reply that
//! says `ok` or names what was wrong, and afterwards still takes a valid command.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::mqtt::{Broker, Dashboard};
use support::rng::Rng;
use support::*;

const ID: &str = "room";
const REPLY: &str = "roomagent/room/reply";
const COMMANDS: usize = 10_000;
const BATCH: usize = 50;

const KEYS: &[&str] = &[
    "id", "ts", "level", "user", "room", "room_id", "target", "mute", "on", "type", "ids", "group",
    "site", "x", "",
];

fn value(rng: &mut Rng) -> Value {
    match rng.below(12) {
        0 => json!(null),
        1 => json!(true),
        2 => json!(-1),
        3 => json!(i64::MAX),
        4 => json!(u64::MAX),
        5 => json!(1e308),
        6 => json!(-0.5),
        7 => json!("x".repeat(rng.below(3000))),
        8 => json!([1, "a", null]),
        9 => json!({"ids": ["room"], "group": 7}),
        10 => json!(1_700_000_000 + rng.below(100) as i64),
        _ => json!(rng.below(200)),
    }
}

/// A payload and whether it carries an `id` the reply must echo.
fn payload(rng: &mut Rng, n: usize) -> (Vec<u8>, Option<String>) {
    let id = format!("fuzz-{n}");
    match rng.below(10) {
        0 => (vec![0xff, 0xfe, b'{', 0x80], None),
        1 => (b"[".repeat(5000), None),
        2 => (format!("{{\"id\":\"{id}\",").into_bytes(), None),
        3 => (vec![b' '; 70_000], None),
        4 => (b"{\"id\":1e999}".to_vec(), None),
        _ => {
            let mut doc = serde_json::Map::new();
            for _ in 0..rng.below(4) {
                doc.insert(KEYS[rng.below(KEYS.len())].to_string(), value(rng));
            }
            doc.insert("id".into(), json!(id));
            (Value::Object(doc).to_string().into_bytes(), Some(id))
        }
    }
}

fn verb(rng: &mut Rng) -> String {
    // `restart` ends the agent by design (with a valid or absent scope); it is checked in
    // tests/mqtt.rs, and here would end the run after the first one.
    let known: Vec<&str> = roomagent::command::verbs()
        .filter(|v| *v != "restart")
        .collect();
    match rng.below(8) {
        0 => "nope".into(),
        1 => "x".repeat(200),
        2 => "mute/extra".into(),
        3 => "MUTE".into(),
        _ => known[rng.below(known.len())].to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_hostile_commands_get_replies_and_the_agent_runs_on() {
    let server = Server::start().await;
    let broker = Broker::start();
    let mut dash = Dashboard::connect(broker.port, &[REPLY]).await;
    let mut agent = Agent::start_toml(&mqtt_toml(
        &server.api(),
        ID,
        broker.port,
        "mode = \"never\"",
        "",
    ))
    .await;
    agent.registered().await;
    let mut rng = Rng(0x00c0_ffee);
    let (mut ok, mut refused, mut unanswered) = (0usize, 0usize, 0usize);
    let mut n = 0;
    let commands: usize = std::env::var("FUZZ_MQTT_COMMANDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(COMMANDS);
    let started = std::time::Instant::now();
    while n < commands {
        let mut expect = Vec::new();
        for _ in 0..BATCH {
            n += 1;
            let v = verb(&mut rng);
            let (body, id) = payload(&mut rng, n);
            dash.publish_bytes(&format!("roomagent/{ID}/cmd/{v}"), body)
                .await;
            // A verb with a `/` is another topic level: not a command topic, so no reply.
            if !v.contains('/') {
                expect.extend(id.map(|id| (id, v)));
            }
        }
        for (id, v) in expect {
            let reply = dash
                .wait_within(REPLY, Duration::from_secs(5), |t| {
                    serde_json::from_str::<Value>(t).is_ok_and(|r| r["id"] == json!(id))
                })
                .await;
            let Some(reply) = reply else {
                eprintln!("no reply to {id} ({v:?}) after {:?}", started.elapsed());
                unanswered += 1;
                continue;
            };
            let r: Value = serde_json::from_str(&reply).unwrap();
            if r["ok"] == json!(true) {
                ok += 1;
            } else {
                refused += 1;
                let why = r["error"].as_str().unwrap_or("");
                assert!(!why.is_empty(), "a refusal of {v:?} names no reason: {r}");
            }
        }
    }
    println!(
        "MEASURE mqtt fuzz: {n} commands; {ok} ran, {refused} refused with a reason, {unanswered} with an id unanswered"
    );
    assert_eq!(unanswered, 0, "every command with an id gets a reply");
    assert!(ok > 0 && refused > 0);
    // Still alive and taking commands.
    dash.publish(
        &format!("roomagent/{ID}/cmd/volume"),
        r#"{"id":"last","level":42}"#,
    )
    .await;
    let r = dash.wait_json(REPLY, |v| v["id"] == "last").await;
    assert_eq!(r["ok"], true, "{r}");
    agent.wait_for("volume 42", |s| s.volume == 42).await;
    agent.stop().await;
    server.stop().await;
}
