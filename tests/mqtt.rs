//! Remote management through a real broker (mosquitto started per test): state, events,
//! commands and replies, fleet selectors, reconnects, last will and TLS, as a dashboard sees
//! them (Home Assistant discovery and `mqtt-forget`: tests/home_assistant.rs).

mod support;

use std::time::Duration;

use roomagent::core::CallPhase;
use serde_json::{Value, json};
use support::mqtt::{Broker, Dashboard, TlsFiles, make_certs};
use support::*;

const ID: &str = "room";
const STATE: &str = "roomagent/room/state";
const REPLY: &str = "roomagent/room/reply";
const EVENT: &str = "roomagent/room/event";
const STATUS: &str = "roomagent/room/status";

async fn setup(answer: &str, mqtt_extra: &str) -> (Server, Broker, Agent, Dashboard) {
    let server = Server::start().await;
    let broker = Broker::start();
    let dash = Dashboard::connect(broker.port, &["roomagent/#", "homeassistant/#"]).await;
    let mut agent = Agent::start_toml(&mqtt_toml(
        &server.api(),
        ID,
        broker.port,
        answer,
        mqtt_extra,
    ))
    .await;
    agent.registered().await;
    (server, broker, agent, dash)
}

async fn command(dash: &mut Dashboard, verb: &str, payload: Value) -> Value {
    let id = format!("{verb}-{}", rand::random::<u32>());
    let mut p = payload;
    p["id"] = json!(id);
    dash.publish(&format!("roomagent/{ID}/cmd/{verb}"), &p.to_string())
        .await;
    dash.wait_json(REPLY, |v| v["id"] == json!(id)).await
}

#[tokio::test]
async fn a_calls_state_and_events_appear_as_a_dashboard_reads_them() {
    let (server, _broker, mut agent, mut dash) =
        setup("mode = \"always\"\ndelay_ms = 200", "").await;
    assert_eq!(dash.wait(STATUS, |p| p == "online").await, "online");
    let s = dash.wait_json(STATE, |v| v["registered"] == true).await;
    assert_eq!(s["device"], ID);
    assert_eq!(s["call"], "idle");
    assert!(s["version"].is_string() && s["uptime_s"].is_number());

    let mut alice = Peer::connect(&server.api(), "alice", "alice").await;
    let room = alice.call_agent(ROOM).await;
    let s = dash.wait_json(STATE, |v| v["call"] == "in_call").await;
    assert_eq!(s["room_id"], room);
    assert_eq!(s["peer"], ALICE);
    dash.wait_json(EVENT, |v| v["event"] == "ringing" && v["from"] == ALICE)
        .await;
    dash.wait_json(EVENT, |v| v["event"] == "answered" && v["auto"] == true)
        .await;
    dash.wait_json(EVENT, |v| v["event"] == "in_call").await;

    alice
        .request("meeting", "exit", json!({"roomId": room}))
        .await;
    let ended = dash.wait_json(EVENT, |v| v["event"] == "ended").await;
    assert_eq!(ended["reason"], "remote_left");
    dash.wait_json(STATE, |v| v["call"] == "idle").await;
    let t = dash
        .wait_json("roomagent/room/telemetry", |v| v["rss_mib"].is_number())
        .await;
    assert!(t["uptime_s"].is_number());
    agent.phase(CallPhase::Idle).await;
    agent.stop().await;
}

#[tokio::test]
async fn every_verb_changes_state_and_is_answered() {
    let (server, _broker, agent, mut dash) = setup("mode = \"never\"", "").await;
    dash.wait_json(STATE, |v| v["registered"] == true).await;

    let r = command(&mut dash, "mute", json!({})).await;
    assert_eq!(r["ok"], true, "{r}");
    dash.wait_json(STATE, |v| v["mic_muted"] == true).await;
    assert_eq!(command(&mut dash, "unmute", json!({})).await["ok"], true);
    dash.wait_json(STATE, |v| v["mic_muted"] == false).await;
    assert_eq!(
        command(&mut dash, "camera_off", json!({})).await["ok"],
        true
    );
    dash.wait_json(STATE, |v| v["camera_on"] == false).await;
    assert_eq!(command(&mut dash, "camera_on", json!({})).await["ok"], true);
    dash.wait_json(STATE, |v| v["camera_on"] == true).await;
    assert_eq!(
        command(&mut dash, "volume", json!({"level": 35})).await["ok"],
        true
    );
    dash.wait_json(STATE, |v| v["volume"] == 35).await;

    // Nothing to answer or hang up yet: refused with the core's reason.
    let r = command(&mut dash, "answer", json!({})).await;
    assert_eq!(
        (r["ok"].clone(), r["error"].clone()),
        (json!(false), json!("no incoming call is ringing"))
    );
    let r = command(&mut dash, "share_start", json!({})).await;
    assert_eq!(r["ok"], false);

    // An incoming call rings (policy never): answer it from the dashboard.
    let mut alice = Peer::connect(&server.api(), "alice", "alice").await;
    let room = alice.new_room().await;
    alice.invite(ROOM, room).await;
    dash.wait_json(STATE, |v| v["call"] == "ringing").await;
    assert_eq!(command(&mut dash, "answer", json!({})).await["ok"], true);
    alice.push("call", "doAgree").await;
    dash.wait_json(STATE, |v| v["call"] == "answering").await;
    assert_eq!(command(&mut dash, "hangup", json!({})).await["ok"], true);
    dash.wait_json(STATE, |v| v["call"] == "idle").await;

    // Another rings: reject it.
    alice.invite(ROOM, room).await;
    dash.wait_json(STATE, |v| v["call"] == "ringing").await;
    assert_eq!(command(&mut dash, "reject", json!({})).await["ok"], true);
    alice.push("call", "reject").await;

    // Join a room, share needs a capture input (none here), leave.
    assert_eq!(
        command(&mut dash, "join", json!({"room": 4242})).await["ok"],
        true
    );
    dash.wait_json(STATE, |v| v["call"] == "in_call" && v["room_id"] == 4242)
        .await;
    assert_eq!(
        command(&mut dash, "share_start", json!({})).await["ok"],
        true
    );
    dash.wait_json(STATE, |v| v["sharing"] == true).await;
    assert_eq!(
        command(&mut dash, "share_stop", json!({})).await["ok"],
        true
    );
    assert_eq!(command(&mut dash, "leave", json!({})).await["ok"], true);
    dash.wait_json(STATE, |v| v["call"] == "idle").await;

    // Dial alice: she is invited.
    assert_eq!(
        command(&mut dash, "dial", json!({"user": ALICE})).await["ok"],
        true
    );
    alice.push("call", "doInvite").await;
    dash.wait_json(STATE, |v| v["call"] == "dialing").await;
    assert_eq!(command(&mut dash, "hangup", json!({})).await["ok"], true);

    // Republish and reload.
    let r = command(&mut dash, "state", json!({})).await;
    assert_eq!(r["ok"], true);
    let r = command(&mut dash, "reload", json!({})).await;
    assert_eq!(
        r["ok"], false,
        "no configuration file behind this test agent: {r}"
    );
    assert!(
        r["error"].as_str().unwrap().contains("configuration file"),
        "{r}"
    );
    agent.stop().await;
}

#[tokio::test]
async fn malformed_commands_get_clear_errors_and_change_nothing() {
    let (_server, _broker, agent, mut dash) = setup("mode = \"never\"", "").await;
    let before = dash.wait_json(STATE, |v| v["registered"] == true).await;
    let cases: &[(&str, &[u8], &str)] = &[
        ("mute", b"\xff\xfe", "UTF-8"),
        ("mute", b"{", "not valid JSON"),
        ("mute", b"[1]", "JSON object"),
        ("mute", b"7", "JSON object"),
        ("mute", b"true", "JSON object"),
        ("explode", b"{}", "unknown verb"),
        ("Mute", b"{}", "unknown verb"),
        ("mute", br#"{"mute":"yes"}"#, "true or false"),
        ("mute", br#"{"loud":1}"#, "unknown argument"),
        ("dial", b"{}", "missing argument"),
        ("dial", br#"{"user":"bob"}"#, "must be a number"),
        ("dial", br#"{"user":2.5}"#, "whole number"),
        ("dial", br#"{"user":0}"#, "positive"),
        ("join", br#"{"room":-4}"#, "positive"),
        ("join", br#"{"room":[1]}"#, "must be a number"),
        ("volume", b"{}", "missing argument"),
        ("volume", br#"{"level":101}"#, "0-100"),
        ("volume", br#"{"level":"loud"}"#, "must be a number"),
        ("camera_on", br#"{"on":"off"}"#, "true or false"),
        ("hangup", br#"{"target":{"ids":["room"]}}"#, "fleet"),
        ("hangup", br#"{"id":[1,2]}"#, "\"id\""),
        ("unmute", br#"{"extra":null}"#, "unknown argument"),
    ];
    assert!(cases.len() >= 20);
    for (verb, payload, expect) in cases {
        dash.client
            .publish(
                format!("roomagent/{ID}/cmd/{verb}"),
                rumqttc::QoS::AtLeastOnce,
                false,
                payload.to_vec(),
            )
            .await
            .unwrap();
        let r = dash
            .wait_json(REPLY, |v| v["verb"] == json!(verb) && v["ok"] == false)
            .await;
        let e = r["error"].as_str().unwrap();
        assert!(
            e.contains(expect),
            "{verb}: {e:?} should mention {expect:?}"
        );
    }
    // Nothing changed: ask for a republish and compare the latest state (uptime aside).
    let r = command(&mut dash, "state", json!({})).await;
    assert_eq!(r["ok"], true);
    let all = dash.drain(Duration::from_millis(500)).await;
    let mut after: Value = all
        .iter()
        .rev()
        .find(|(t, _, _)| t == STATE)
        .map(|(_, p, _)| serde_json::from_str(p).unwrap())
        .unwrap();
    let mut before = before;
    before["uptime_s"] = json!(0);
    after["uptime_s"] = json!(0);
    assert_eq!(before, after);
    agent.stop().await;
}

#[tokio::test]
async fn fleet_commands_reach_the_selected_devices_only() {
    let server = Server::start().await;
    let broker = Broker::start();
    let mut dash = Dashboard::connect(broker.port, &["roomagent/#"]).await;
    let mut agents = Vec::new();
    for (login, group) in [
        ("room", "lobby"),
        ("room2", "lobby"),
        ("room3", "boardroom"),
    ] {
        let mut a = Agent::start_toml(&mqtt_toml(
            &server.api(),
            login,
            broker.port,
            "mode = \"never\"",
            &format!("group = \"{group}\"\nsite = \"berlin\""),
        ))
        .await;
        a.registered().await;
        dash.wait_json(&format!("roomagent/{login}/state"), |v| {
            v["registered"] == true
        })
        .await;
        agents.push(a);
    }
    // Everyone, without a selector.
    dash.publish("roomagent/all/cmd/volume", r#"{"id":"v","level":20}"#)
        .await;
    for login in ["room", "room2", "room3"] {
        dash.wait_json(&format!("roomagent/{login}/reply"), |v| {
            v["id"] == "v" && v["ok"] == true
        })
        .await;
    }
    // The lobby group only.
    dash.publish(
        "roomagent/all/cmd/mute",
        r#"{"id":"m","target":{"group":"lobby"}}"#,
    )
    .await;
    for login in ["room", "room2"] {
        dash.wait_json(&format!("roomagent/{login}/state"), |v| {
            v["mic_muted"] == true
        })
        .await;
    }
    let third = dash
        .wait_within("roomagent/room3/reply", Duration::from_millis(800), |t| {
            t.contains("\"m\"")
        })
        .await;
    assert!(
        third.is_none(),
        "room3 is not in the lobby group: {third:?}"
    );
    assert!(!agents[2].now().mic_muted);
    for a in agents {
        a.stop().await;
    }
}

#[tokio::test]
async fn after_a_broker_restart_the_agent_reconnects_and_runs_commands_sent_meanwhile() {
    let (_server, mut broker, agent, mut dash) = setup("mode = \"never\"", "").await;
    dash.wait_json(STATE, |v| v["registered"] == true).await;
    let mut link = agent.mqtt_link.clone().unwrap();
    link.wait_for(|s| s.connected).await.unwrap();

    broker.stop();
    tokio::time::timeout(Duration::from_secs(10), link.wait_for(|s| !s.connected))
        .await
        .expect("the agent noticed the broker is gone")
        .unwrap();
    broker.restart();
    // Queued for the agent's persistent session while it is still reconnecting.
    let mut dash = Dashboard::connect(broker.port, &["roomagent/#"]).await;
    dash.publish(
        &format!("roomagent/{ID}/cmd/mute"),
        r#"{"id":"while-away"}"#,
    )
    .await;
    tokio::time::timeout(Duration::from_secs(10), link.wait_for(|s| s.connected))
        .await
        .expect("reconnected")
        .unwrap();
    dash.wait_json(REPLY, |v| v["id"] == "while-away" && v["ok"] == true)
        .await;
    dash.wait_json(STATE, |v| v["mic_muted"] == true).await;
    dash.wait(STATUS, |p| p == "online").await;
    // Resubscribed: a fresh command works too.
    let r = command(&mut dash, "unmute", json!({})).await;
    assert_eq!(r["ok"], true);
    agent.stop().await;
}

#[tokio::test]
async fn a_clean_stop_publishes_offline() {
    let (_server, _broker, agent, mut dash) = setup("mode = \"never\"", "").await;
    dash.wait(STATUS, |p| p == "online").await;
    agent.stop().await;
    dash.wait(STATUS, |p| p == "offline").await;
}

#[test]
fn a_killed_agent_is_reported_offline_by_the_broker() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let server = Server::start().await;
        let broker = Broker::start();
        let mut dash = Dashboard::connect(broker.port, &["roomagent/#"]).await;
        let dir = std::env::temp_dir().join(format!("roomagent-kill-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("config.toml");
        std::fs::write(
            &conf,
            mqtt_toml(
                &server.api(),
                ID,
                broker.port,
                "mode = \"never\"",
                "keep_alive_s = 5",
            ),
        )
        .unwrap();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_roomagent"))
            .args(["run", "--config"])
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        dash.wait(STATUS, |p| p == "online").await;
        child.kill().unwrap(); // SIGKILL: no goodbye, the broker sends the will.
        child.wait().unwrap();
        let offline = dash
            .wait_within(STATUS, Duration::from_secs(15), |p| p == "offline")
            .await;
        assert_eq!(offline.as_deref(), Some("offline"));
        std::fs::remove_dir_all(&dir).unwrap();
    });
}

#[tokio::test]
async fn tls_with_a_client_certificate_connects_and_a_wrong_ca_is_reported() {
    let dir = std::env::temp_dir().join(format!("roomagent-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ca, cert, key, client_cert, client_key) = make_certs(&dir, "good");
    let (wrong_ca, ..) = make_certs(&dir, "other");
    let broker = Broker::start_with(Some(&TlsFiles {
        ca: ca.clone(),
        cert,
        key,
        require_client_cert: true,
    }));
    let server = Server::start().await;
    let read = |p: &std::path::Path| std::fs::read(p).unwrap();
    let mut dash = Dashboard::connect_tls(
        broker.port,
        &["roomagent/#"],
        Some((read(&ca), Some((read(&client_cert), read(&client_key))))),
    )
    .await;
    let tls = format!(
        "ca_file = \"{}\"\nclient_cert_file = \"{}\"\nclient_key_file = \"{}\"",
        ca.display(),
        client_cert.display(),
        client_key.display()
    );
    let agent = Agent::start_toml(&mqtt_toml(
        &server.api(),
        ID,
        broker.port,
        "mode = \"never\"",
        &tls,
    ))
    .await;
    dash.wait(STATUS, |p| p == "online").await;
    agent.stop().await;

    let bad = tls.replace(&ca.display().to_string(), &wrong_ca.display().to_string());
    let agent = Agent::start_toml(&mqtt_toml(
        &server.api(),
        ID,
        broker.port,
        "mode = \"never\"",
        &bad,
    ))
    .await;
    let mut link = agent.mqtt_link.clone().unwrap();
    let s = tokio::time::timeout(
        Duration::from_secs(15),
        link.wait_for(|s| s.failed_attempts >= 3),
    )
    .await
    .expect("keeps retrying")
    .unwrap()
    .clone();
    let e = s.last_error.unwrap();
    assert!(e.contains("TLS") && e.contains("mqtt.ca_file"), "{e}");
    assert!(!s.connected);
    agent.stop().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A box whose best profile's encoder exists but fails (as a Raspberry Pi's hardware encoder
/// does without its device node): the agent encodes with the next profile, and the dashboard
/// reads which profile it uses and why the better one was passed over.
#[tokio::test]
async fn the_state_shows_the_profile_in_use_and_a_failed_encoder_passed_over() {
    let dir = std::env::temp_dir().join(format!("roomagent-mqtt-profiles-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("broken.toml"),
        include_str!("fixtures/broken-encoder-profile.toml"),
    )
    .unwrap();
    let server = Server::start().await;
    let broker = Broker::start();
    let mut dash = Dashboard::connect(broker.port, &["roomagent/#"]).await;
    let media = format!(
        "[media]\nprofiles_dir = {:?}\ncamera = \"none\"\nmicrophone = \"none\"\nhdmi_capture = \"none\"\n\
         display = \"fakesink\"\nspeaker = \"fakesink\"\nwidth = 320\nheight = 180\nframerate = 15",
        dir.display().to_string()
    );
    let toml = mqtt_toml(&server.api(), ID, broker.port, "mode = \"never\"", "")
        .replace("[media]\nenabled = false", &media);
    let mut agent = Agent::start_toml(&toml).await;
    agent.registered().await;

    let s = dash.wait_json(STATE, |v| v["registered"] == true).await;
    assert_eq!(s["profile"], "test", "{s}");
    assert_eq!(s["encoder"], "x264enc", "{s}");
    let passed = s["profiles_passed_over"]
        .as_array()
        .expect("profiles_passed_over is a list");
    assert_eq!(passed.len(), 1, "{s}");
    assert_eq!(passed[0]["profile"], "broken-hw");
    assert!(
        passed[0]["error"]
            .as_str()
            .unwrap()
            .contains("not-negotiated"),
        "{s}"
    );
    agent.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
