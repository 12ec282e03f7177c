//! Home Assistant as a user sees it: the discovery configs pass the rules of the oldest and the
//! newest supported Home Assistant release (tests/fixtures/ha), the value templates render
//! without errors on an empty, partial or foreign payload and read a real state correctly, the
//! call-event entity fires for a ringing call, and `mqtt-forget` clears the configs before the
//! state with a gap between them.

mod support;

use std::time::{Duration, Instant};

use roomagent::mqtt::discovery::{self, CALL_EVENT_TYPES, DeviceInfo, Present};
use roomagent::mqtt::topics::Topics;
use serde_json::{Value, json};
use support::ha::{RELEASES, Rules, render};
use support::mqtt::{Broker, Dashboard};
use support::*;

const ID: &str = "room";
const STATE: &str = "roomagent/room/state";
const STATUS: &str = "roomagent/room/status";

fn device(configuration_url: Option<&str>) -> DeviceInfo {
    DeviceInfo {
        id: "room-101".into(),
        name: "Room 101".into(),
        model: "roomagent (rpi5)".into(),
        sw_version: "0.1.0".into(),
        hw_version: Some("Raspberry Pi 5 Model B Rev 1.0".into()),
        configuration_url: configuration_url.map(String::from),
    }
}

fn all_configs() -> Vec<(String, Value)> {
    let t = Topics::new("roomagent", "room-101");
    let d = device(Some("http://room-101.local/"));
    discovery::configs("homeassistant", &t, &d, &Present { temperature: true })
        .into_iter()
        .map(|(topic, v)| (topic, v.expect("present")))
        .collect()
}

#[test]
fn discovery_configs_pass_the_rules_of_every_supported_release() {
    for release in RELEASES {
        let rules = Rules::load(release);
        for (topic, config) in all_configs() {
            let v = rules.check(&topic, &config);
            assert!(v.errors.is_empty(), "{release} {topic}: {:?}", v.errors);
            assert!(
                v.deprecated.is_empty(),
                "{release} {topic}: {:?}",
                v.deprecated
            );
            // 2024.3 does not know default_entity_id and drops it (it names the entity
            // after the device and entity names instead); newer releases know every key.
            let expect_dropped: &[&str] = if release == "2024.3.3" {
                &["default_entity_id"]
            } else {
                &[]
            };
            assert_eq!(v.dropped, expect_dropped, "{release} {topic}");
        }
    }
    // Device-based discovery is why one config per entity: the oldest release lacks it.
    assert!(!Rules::load("2024.3.3").device_based_discovery());
    assert!(Rules::load("2026.2.3").device_based_discovery());
}

#[test]
fn the_rules_catch_configs_home_assistant_would_reject_or_warn_about() {
    let rules = Rules::load("2026.2.3");
    let configs = all_configs();
    let find = |object: &str| {
        configs
            .iter()
            .find(|(t, _)| t.contains(&format!("/{object}/")))
            .cloned()
            .unwrap()
    };
    let (temp_topic, temp) = find("temperature");
    let mut bad = temp.clone();
    bad["object_id"] = json!("room_101_temperature");
    assert_eq!(rules.check(&temp_topic, &bad).deprecated, ["object_id"]);
    for (key, value, why) in [
        ("entity_category", json!("config"), "entity_category"),
        ("unit_of_measurement", json!("C"), "unit"),
        ("device_class", json!("thermometer"), "device_class"),
        ("icon", json!("thermometer"), "icon"),
        ("qos", json!(3), "qos"),
        ("state_topic", json!("roomagent/#/state"), "state_topic"),
    ] {
        let mut bad = temp.clone();
        bad[key] = value;
        let errors = rules.check(&temp_topic, &bad).errors;
        assert!(errors.iter().any(|e| e.contains(why)), "{key}: {errors:?}");
    }
    let (event_topic, event) = find("call");
    let mut bad = event.clone();
    bad.as_object_mut().unwrap().remove("event_types");
    assert!(!rules.check(&event_topic, &bad).errors.is_empty());
    let mut bad = event;
    bad["device"] = json!({"name": "Room 101"});
    let errors = rules.check(&event_topic, &bad).errors;
    assert!(
        errors.iter().any(|e| e.contains("identifiers")),
        "{errors:?}"
    );
    assert!(
        !rules
            .check("homeassistant/device/room-101/config", &temp)
            .errors
            .is_empty(),
        "device-based topics are not per-component topics"
    );
}

/// Payloads a retained state topic can carry while entities exist: a cleared state (empty),
/// JSON that is not an object, an object without the keys, and a state from an older agent.
const NOT_A_STATE: [&str; 5] = [
    "",
    "online",
    "{}",
    r#"{"device":"room-101"}"#,
    r#"{"device":"room-101","call":"idle"}"#,
];

#[test]
fn the_template_check_fails_where_home_assistant_logs_an_error() {
    // The templates before issue 16: errors on a cleared state, warnings on a partial one.
    let unguarded = "{{ 'ON' if value_json.mic_muted else 'OFF' }}";
    let e = render(unguarded, "", "unknown").unwrap_err();
    assert!(e.contains("undefined"), "{e}");
    assert!(render(unguarded, "{}", "unknown").is_err());
    assert!(render("{{ value_json.call }}", r#"{"device":"r"}"#, "unknown").is_err());
    assert_eq!(
        render(unguarded, r#"{"mic_muted":true}"#, "unknown").unwrap(),
        "ON"
    );
}

#[test]
fn value_templates_render_without_errors_on_empty_and_partial_state() {
    for (topic, config) in all_configs() {
        let Some(template) = config["value_template"].as_str() else {
            continue;
        };
        for payload in NOT_A_STATE {
            let out = render(template, payload, "unknown")
                .unwrap_or_else(|e| panic!("{topic} on {payload:?}: {e}"));
            let component = topic.split('/').nth(1).unwrap();
            let reads_call = template.contains("value_json.call is defined");
            let keeps = if component == "sensor" && !topic.contains("temperature") {
                // Text sensors keep their state; they never show an empty one.
                out == "unknown" || (reads_call && out == "idle")
            } else {
                // Nothing: Home Assistant ignores an empty result for these platforms.
                out.is_empty() || (reads_call && component == "binary_sensor" && out == "OFF")
            };
            assert!(keeps, "{topic} on {payload:?} rendered {out:?}");
        }
    }
}

fn template_of(object: &str) -> String {
    all_configs()
        .into_iter()
        .find(|(t, _)| t.contains(&format!("/{object}/")))
        .map(|(_, v)| v["value_template"].as_str().unwrap().to_string())
        .unwrap()
}

#[test]
fn value_templates_read_a_full_state_as_home_assistant_expects() {
    let state = json!({
        "backend": "rtcpeer", "registered": true, "signaling_error": null, "user_id": 1001,
        "call": "in_call", "peer": 2001, "room_id": 4242, "members": [], "mic_muted": true,
        "muted_by_host": false, "audio_forbidden": false, "video_forbidden": false,
        "camera_on": false, "sharing": false, "volume": 70, "device": "room-101",
        "name": "Room 101", "version": "0.1.0", "uptime_s": 12, "profile": null,
    })
    .to_string();
    let r = |object: &str| render(&template_of(object), &state, "unknown").unwrap();
    assert_eq!(r("mic_mute"), "ON");
    assert_eq!(r("camera"), "OFF");
    assert_eq!(r("call_state"), "in_call");
    assert_eq!(r("in_call"), "ON");
    assert_eq!(r("signaling_backend"), "rtcpeer");
    assert_eq!(r("signaling_link"), "ON");
    assert_eq!(r("version"), "0.1.0");
    // The problem sensor reads the health document (its attributes: the whole document).
    let healthy = r#"{"device":"room-101","level":"ok","issues":[],"seq":3}"#;
    let hot = json!({"device": "room-101", "level": "warning", "issues": [{
        "code": "temperature", "severity": "warning", "since": 1, "detail": "82 °C"}]})
    .to_string();
    assert_eq!(
        render(&template_of("problem"), healthy, "unknown").unwrap(),
        "OFF"
    );
    assert_eq!(
        render(&template_of("problem"), &hot, "unknown").unwrap(),
        "ON"
    );
    let telemetry = r#"{"device":"room-101","temperature_c":48.5,"cpu_percent":3.1}"#;
    assert_eq!(
        render(&template_of("temperature"), telemetry, "unknown").unwrap(),
        "48.5"
    );
}

#[test]
fn the_event_template_fires_call_events_only() {
    let t = template_of("call");
    let fire = |payload: Value| -> Option<Value> {
        let out = render(&t, &payload.to_string(), "unknown").unwrap();
        (!out.is_empty()).then(|| serde_json::from_str(&out).expect("JSON for the event entity"))
    };
    let ringing = fire(json!({"event": "ringing", "from": 2001, "auto_answer": false})).unwrap();
    assert_eq!(ringing, json!({"event_type": "ringing", "from": 2001}));
    let ended = fire(json!({"event": "ended", "reason": "remote_left", "room_id": 7})).unwrap();
    assert_eq!(
        ended,
        json!({"event_type": "ended", "reason": "remote_left"})
    );
    let answered = fire(json!({"event": "answered", "from": 2001, "auto": true})).unwrap();
    assert!(CALL_EVENT_TYPES.contains(&answered["event_type"].as_str().unwrap()));
    // Other agent events are not call events for Home Assistant: nothing, not a warning.
    assert_eq!(fire(json!({"event": "in_call", "room_id": 7})), None);
    assert_eq!(
        fire(json!({"event": "message", "text": "\"quoted\""})),
        None
    );
    assert_eq!(render(&t, "", "unknown").unwrap(), "");
}

async fn setup(answer: &str) -> (Server, Broker, Agent, Dashboard) {
    let server = Server::start().await;
    let broker = Broker::start();
    let dash = Dashboard::connect(broker.port, &["roomagent/#", "homeassistant/#"]).await;
    let toml = mqtt_toml(&server.api(), ID, broker.port, answer, "");
    let mut agent = Agent::start_toml(&toml).await;
    agent.registered().await;
    (server, broker, agent, dash)
}

const ALWAYS: [&str; 10] = [
    "switch/room/mic_mute",
    "switch/room/camera",
    "button/room/hangup",
    "sensor/room/call_state",
    "binary_sensor/room/in_call",
    "event/room/call",
    "sensor/room/signaling_backend",
    "binary_sensor/room/signaling_link",
    "sensor/room/version",
    "binary_sensor/room/problem",
];

#[tokio::test]
async fn discovery_on_the_wire_describes_the_device_and_follows_ha_restarts() {
    let (server, broker, agent, mut dash) = setup("mode = \"never\"").await;
    let rules: Vec<Rules> = RELEASES.iter().map(|r| Rules::load(r)).collect();
    let mut configs = Vec::new();
    for object in ALWAYS {
        let topic = format!("homeassistant/{object}/config");
        let v = dash.wait_json(&topic, |_| true).await;
        for r in &rules {
            let verdict = r.check(&topic, &v);
            assert!(
                verdict.errors.is_empty(),
                "{} {topic}: {:?}",
                r.release,
                verdict.errors
            );
        }
        assert_eq!(v["availability_topic"], STATUS, "{topic}");
        assert_eq!(v["device"]["sw_version"], env!("CARGO_PKG_VERSION"));
        configs.push((topic, v));
    }
    // The temperature sensor exists only where the board has a thermal zone; elsewhere an
    // empty config removes one a previous run may have left.
    let temp = dash
        .wait("homeassistant/sensor/room/temperature/config", |_| true)
        .await;
    let has_zone = roomagent::mqtt::telemetry::temperature_c().is_some();
    assert_eq!(!temp.is_empty(), has_zone, "temperature config: {temp:?}");

    // The templates read the agent's real state.
    let state = dash
        .wait(STATE, |p| p.contains("\"registered\":true"))
        .await;
    let read = |object: &str| {
        let (_, v) = configs.iter().find(|(t, _)| t.contains(object)).unwrap();
        render(v["value_template"].as_str().unwrap(), &state, "unknown").unwrap()
    };
    assert_eq!(read("call_state"), "idle");
    assert_eq!(read("in_call"), "OFF");
    assert_eq!(read("signaling_link"), "ON");
    assert_eq!(read("mic_mute"), "OFF");

    // An incoming call fires the event entity.
    let mut alice = Peer::connect(&server.api(), "alice", "alice").await;
    let room = alice.new_room().await;
    alice.invite(ROOM, room).await;
    let ev = dash
        .wait("roomagent/room/event", |p| p.contains("ringing"))
        .await;
    let (_, call) = configs.iter().find(|(t, _)| t.contains("event/")).unwrap();
    let fired: Value =
        serde_json::from_str(&render(call["value_template"].as_str().unwrap(), &ev, "").unwrap())
            .unwrap();
    assert_eq!(fired, json!({"event_type": "ringing", "from": ALICE}));

    // Retained: Home Assistant connecting later gets them at once; after its restart
    // (birth message), discovery is published again.
    let mut late = Dashboard::connect(broker.port, &["homeassistant/#"]).await;
    let v = late
        .wait_json("homeassistant/switch/room/mic_mute/config", |_| true)
        .await;
    assert_eq!(v["command_topic"], "roomagent/room/cmd/mute");
    dash.publish("homeassistant/status", "online").await;
    dash.wait_json("homeassistant/button/room/hangup/config", |_| true)
        .await;
    agent.stop().await;
}

#[test]
fn mqtt_forget_clears_configs_first_then_state_after_a_gap() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (server, broker, agent, mut dash) = setup("mode = \"never\"").await;
        dash.wait_json("homeassistant/button/room/hangup/config", |_| true)
            .await;
        agent.stop().await;
        dash.wait(STATUS, |p| p == "offline").await;
        let dir = std::env::temp_dir().join(format!("roomagent-forget-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("config.toml");
        let toml = mqtt_toml(&server.api(), ID, broker.port, "mode = \"never\"", "");
        std::fs::write(&conf, toml).unwrap();
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_roomagent"))
            .args(["mqtt-forget", "--client-id", "decommission-1", "--config"])
            .arg(&conf)
            .output();
        let watch = async {
            let mut last_config = None;
            for object in ALWAYS.iter().chain(&["sensor/room/temperature"]) {
                let topic = format!("homeassistant/{object}/config");
                dash.wait(&topic, str::is_empty).await;
                last_config = Some(Instant::now());
            }
            dash.wait(STATE, str::is_empty).await;
            let gap = last_config.unwrap().elapsed();
            dash.wait(STATUS, str::is_empty).await;
            gap
        };
        let (out, gap) = tokio::join!(child, watch);
        let out = out.unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let order: Vec<&str> = stdout.lines().collect();
        assert_eq!(order.len(), ALWAYS.len() + 5, "{stdout}");
        assert!(
            order[..order.len() - 4]
                .iter()
                .all(|l| l.contains("homeassistant/"))
        );
        assert!(order[order.len() - 4].ends_with("roomagent/room/health"));
        assert!(order[order.len() - 3].ends_with("roomagent/room/info"));
        assert!(
            order[order.len() - 2].ends_with(STATE) && order[order.len() - 1].ends_with(STATUS)
        );
        let least = roomagent::mqtt::FORGET_GAP - Duration::from_millis(300);
        assert!(gap >= least, "state cleared {gap:?} after the configs");

        // Nothing retained is left for the device.
        let mut late = Dashboard::connect(broker.port, &["homeassistant/#", "roomagent/#"]).await;
        let seen = late.drain(Duration::from_secs(1)).await;
        let left: Vec<_> = seen
            .iter()
            .filter(|(_, p, r)| *r && !p.is_empty())
            .collect();
        assert!(left.is_empty(), "retained messages left: {left:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    });
}
