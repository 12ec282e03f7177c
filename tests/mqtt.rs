//! Remote management through a real broker (mosquitto started per test): state, events,
//! commands and replies, fleet selectors, reconnects, last will and TLS, as a dashboard sees
//! them (Home Assistant discovery and `mqtt-forget`: tests/home_assistant.rs).

mod support;

use std::time::Duration;

use roomagent::core::{CallPhase, Command, RoomId};
use rumqttc::QoS;
use serde_json::{Value, json};
use support::mqtt::{Broker, Dashboard, TlsFiles, make_certs};
use support::*;

const ID: &str = "room";
const STATE: &str = "roomagent/room/state";
const REPLY: &str = "roomagent/room/reply";
const EVENT: &str = "roomagent/room/event";
const STATUS: &str = "roomagent/room/status";
const HEALTH: &str = "roomagent/room/health";

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
    // Nothing changed: ask for a republish and compare the latest state (its uptime,
    // sequence number and time aside).
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
    for moving in ["uptime_s", "seq", "at"] {
        before[moving] = json!(0);
        after[moving] = json!(0);
    }
    assert_eq!(before, after);
    agent.stop().await;
}

/// Three agents at site "berlin": "room" and "room2" in group "lobby", "room3" in
/// "boardroom"; each registered, with its state and inventory on the broker.
async fn lobby_and_boardroom(server: &Server, broker: &Broker, dash: &mut Dashboard) -> Vec<Agent> {
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
        dash.wait_json(&format!("roomagent/{login}/info"), |v| v["group"] == group)
            .await;
        agents.push(a);
    }
    agents
}

#[tokio::test]
async fn fleet_commands_reach_the_selected_devices_only() {
    let server = Server::start().await;
    let broker = Broker::start();
    let mut dash = Dashboard::connect(broker.port, &["roomagent/#"]).await;
    let agents = lobby_and_boardroom(&server, &broker, &mut dash).await;
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
    // The broker fans out: a group's topic reaches that group, a site's topic the site.
    dash.publish(
        "roomagent/group/boardroom/cmd/volume",
        r#"{"id":"g","level":33}"#,
    )
    .await;
    dash.wait_json("roomagent/room3/state", |v| v["volume"] == 33)
        .await;
    dash.publish(
        "roomagent/site/berlin/cmd/volume",
        r#"{"id":"s","level":44}"#,
    )
    .await;
    for login in ["room", "room2", "room3"] {
        dash.wait_json(&format!("roomagent/{login}/reply"), |v| {
            v["id"] == "s" && v["ok"] == true
        })
        .await;
    }
    dash.publish(
        "roomagent/site/paris/cmd/volume",
        r#"{"id":"p","level":55}"#,
    )
    .await;
    let others = dash.drain(Duration::from_millis(500)).await;
    let answered: Vec<(String, Value)> = others
        .iter()
        .filter(|(t, _, _)| t.ends_with("/reply"))
        .filter_map(|(t, p, _)| Some((t.clone(), serde_json::from_str::<Value>(p).ok()?)))
        .filter(|(_, v)| v["id"] == "g" || v["id"] == "p")
        .map(|(t, v)| (t, v["ok"].clone()))
        .collect();
    assert_eq!(
        answered,
        vec![("roomagent/room3/reply".to_string(), json!(true))],
        "only the boardroom answers its group's topic, and nobody another site's"
    );
    for a in &agents[..2] {
        assert_eq!(
            a.now().volume,
            44,
            "the lobby missed the boardroom's command and took the site's"
        );
    }
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
    // The inventory shows when each certificate runs out (openssl made them for 2 days), and
    // health warns about it.
    let info = dash
        .wait_json("roomagent/room/info", |v| v["certificates"].is_array())
        .await;
    let certs = info["certificates"].as_array().unwrap();
    let keys: Vec<&str> = certs.iter().filter_map(|c| c["key"].as_str()).collect();
    assert_eq!(keys, ["mqtt.ca_file", "mqtt.client_cert_file"], "{info}");
    for c in certs {
        let left = c["not_after"].as_f64().expect("not_after") - unix_s();
        assert!((86_400.0..2.0 * 86_400.0 + 60.0).contains(&left), "{c}");
    }
    let h = dash
        .wait_json(HEALTH, |v| {
            codes(v).iter().any(|c| c == "certificate_expiry")
        })
        .await;
    // (This machine's own health may have more issues: its clock, say.)
    let issue = h["issues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["code"] == "certificate_expiry")
        .unwrap();
    assert_eq!(issue["severity"], "warning", "{h}");
    // Whole days left: 2 when the agent looks within the second openssl made them, else 1.
    let detail = issue["detail"].as_str().unwrap();
    assert!(
        detail.contains("expires in 1 day") || detail.contains("expires in 2 day"),
        "{h}"
    );
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

fn unix_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Plain payloads (as Home Assistant sends) and fresh `"ts"` run; a stale or future `"ts"` is
/// refused with a reply saying so; a command left retained on the broker is never run.
#[tokio::test]
async fn retained_and_stale_commands_are_not_run_and_fresh_or_plain_ones_are() {
    let server = Server::start().await;
    let broker = Broker::start();
    let mut dash = Dashboard::connect(broker.port, &["roomagent/#"]).await;
    // Left retained before the device connects: it arrives on subscription, retained.
    let mute = format!("roomagent/{ID}/cmd/mute");
    dash.client
        .publish(&mute, QoS::AtLeastOnce, true, r#"{"id":"retained"}"#)
        .await
        .unwrap();
    dash.wait(&mute, |p| p.contains("retained")).await;
    let mut agent = Agent::start_toml(&mqtt_toml(
        &server.api(),
        ID,
        broker.port,
        "mode = \"never\"",
        "",
    ))
    .await;
    agent.registered().await;
    dash.wait_json(STATE, |v| v["registered"] == true).await;

    let r = command(&mut dash, "mute", json!({"ts": unix_s() - 120.0})).await;
    assert_eq!(r["ok"], false, "{r}");
    assert!(r["error"].as_str().unwrap().contains("stale"), "{r}");
    let ahead = ((unix_s() + 600.0) * 1000.0) as u64;
    let r = command(&mut dash, "mute", json!({"ts": ahead})).await;
    assert_eq!(r["ok"], false, "{r}");
    assert!(r["error"].as_str().unwrap().contains("ahead"), "{r}");
    assert!(
        !agent.now().mic_muted,
        "neither the retained nor the refused commands muted"
    );

    let now_ms = (unix_s() * 1000.0) as u64;
    let r = command(&mut dash, "mute", json!({"ts": now_ms})).await;
    assert_eq!(r["ok"], true, "{r}");
    dash.wait_json(STATE, |v| v["mic_muted"] == true).await;
    // What Home Assistant's mute switch sends.
    dash.publish(&mute, r#"{"mute":false}"#).await;
    dash.wait_json(STATE, |v| v["mic_muted"] == false).await;

    let all = dash.drain(Duration::from_millis(300)).await;
    let answered: Vec<&String> = all
        .iter()
        .filter(|(t, p, _)| t == REPLY && p.contains("retained"))
        .map(|(_, p, _)| p)
        .collect();
    assert!(
        answered.is_empty(),
        "a retained command was answered: {answered:?}"
    );
    agent.stop().await;
}

/// The broker is away for longer than every queue between the agent and it lasts, while calls
/// come and go and the volume changes; when it is back the agent reconnects, the dashboard
/// reads the current state, learns that events were dropped, and commands work.
#[tokio::test]
async fn after_an_outage_longer_than_the_queues_the_dashboard_sees_the_current_state() {
    let server = Server::start().await;
    let mut broker = Broker::start();
    let mut dash = Dashboard::connect(broker.port, &["roomagent/#"]).await;
    let toml = mqtt_toml(&server.api(), ID, broker.port, "mode = \"never\"", "");
    let fast = "reconnect_min_ms = 5\nreconnect_max_ms = 10";
    let toml_fast = toml.replace("reconnect_min_ms = 200\nreconnect_max_ms = 1000", fast);
    assert_ne!(toml, toml_fast, "retries every few ms");
    let mut agent = Agent::start_toml(&toml_fast).await;
    agent.registered().await;
    dash.wait_json(STATE, |v| v["registered"] == true).await;
    let mut link = agent.mqtt_link.clone().unwrap();
    link.wait_for(|s| s.connected).await.unwrap();
    let mut events = agent.handle.events();

    broker.stop();
    tokio::time::timeout(Duration::from_secs(10), link.wait_for(|s| !s.connected))
        .await
        .expect("the agent noticed the broker is gone")
        .unwrap();
    // Twice rumqttc's request channel (256) in events, and as many failed connection attempts.
    let (mut produced, mut room) = (0u64, 5000);
    while produced <= 512 || link.borrow().failed_attempts <= 512 {
        room += 1;
        agent
            .handle
            .command(Command::Join { room: RoomId(room) })
            .await
            .unwrap();
        agent.phase(CallPhase::InCall).await;
        agent.handle.command(Command::Leave).await.unwrap();
        agent.phase(CallPhase::Idle).await;
        loop {
            match events.try_recv() {
                Ok(_) => produced += 1,
                Err(tokio::sync::broadcast::error::TryRecvError::Lagged(n)) => produced += n,
                Err(_) => break,
            }
        }
    }
    let level = if agent.now().volume == 37 { 38 } else { 37 };
    agent
        .handle
        .command(Command::Volume { level })
        .await
        .unwrap();
    agent.handle.command(Command::Mute).await.unwrap();

    let attempts = link.borrow().failed_attempts;
    broker.restart();
    let back = std::time::Instant::now();
    let mut dash2 = Dashboard::connect(broker.port, &["roomagent/#"]).await;
    tokio::time::timeout(Duration::from_secs(15), link.wait_for(|s| s.connected))
        .await
        .expect("reconnected")
        .unwrap();
    let s = dash2
        .wait_json(STATE, |v| {
            v["volume"] == level && v["mic_muted"] == true && v["call"] == "idle"
        })
        .await;
    assert_eq!(s["registered"], true, "{s}");
    println!(
        "MEASURE broker down for {produced} events and {attempts} connection attempts: current state on the dashboard {} ms after the broker returned",
        back.elapsed().as_millis()
    );
    dash2.wait(STATUS, |p| p == "online").await;
    let lost = dash2
        .wait_json(EVENT, |v| {
            v["event"] == "error" && v["message"].as_str().is_some_and(|m| m.contains("dropped"))
        })
        .await;
    assert!(
        lost["message"].as_str().unwrap().contains("MQTT broker"),
        "{lost}"
    );
    let r = command(&mut dash2, "unmute", json!({})).await;
    assert_eq!(r["ok"], true, "{r}");
    dash2.wait_json(STATE, |v| v["mic_muted"] == false).await;
    drop(dash);
    agent.stop().await;
}

/// The ACL the README shows, as written there.
fn readme_acl() -> String {
    let readme = include_str!("../README.md");
    let start = readme
        .find("# mosquitto acl_file for roomagent")
        .expect("the README shows the broker ACL");
    let end = start + readme[start..].find("```").unwrap();
    readme[start..end].to_string()
}

/// On a mosquitto running the README's ACL, a device uses its own topics (state, status, will,
/// commands, replies, fleet commands) but another device can neither command it, the fleet,
/// nor forge its state, nor read anything it publishes.
#[tokio::test]
async fn the_readme_acl_confines_each_device_to_its_own_topics() {
    let server = Server::start().await;
    let users = [
        ("dashboard", "dash-pw"),
        (ID, "room-pw"),
        ("room2", "room2-pw"),
        ("berlin-ops", "ops-pw"),
    ];
    let broker = Broker::start_with_acl(&users, &readme_acl());
    let mut dash =
        Dashboard::connect_as(broker.port, &["roomagent/#"], "dashboard", "dash-pw").await;
    let login = format!("username = \"{ID}\"\npassword = \"room-pw\"\nsite = \"berlin\"");
    let agent = Agent::start_toml(&mqtt_toml(
        &server.api(),
        ID,
        broker.port,
        "mode = \"never\"",
        &login,
    ))
    .await;
    dash.wait(STATUS, |p| p == "online").await;
    dash.wait_json(STATE, |v| v["registered"] == true).await;
    dash.wait_json(HEALTH, |v| v["device"] == ID).await;
    dash.wait_json("roomagent/room/info", |v| v["device"] == ID)
        .await;
    let r = command(&mut dash, "volume", json!({"level": 12})).await;
    assert_eq!(r["ok"], true, "{r}");
    dash.wait_json(STATE, |v| v["volume"] == 12).await;
    dash.publish("roomagent/all/cmd/state", r#"{"id":"fleet"}"#)
        .await;
    dash.wait_json(REPLY, |v| v["id"] == "fleet" && v["ok"] == true)
        .await;

    let mut other = Dashboard::connect_as(
        broker.port,
        &["roomagent/#", "roomagent/room2/cmd/+"],
        "room2",
        "room2-pw",
    )
    .await;
    other
        .publish(&format!("roomagent/{ID}/cmd/mute"), r#"{"id":"forged"}"#)
        .await;
    other
        .publish("roomagent/all/cmd/mute", r#"{"id":"forged-fleet"}"#)
        .await;
    other
        .client
        .publish(STATE, QoS::AtLeastOnce, true, r#"{"call":"forged"}"#)
        .await
        .unwrap();
    // Its own state topic is allowed: once the dashboard reads this, the broker has handled
    // the forgeries above.
    other
        .publish("roomagent/room2/state", r#"{"marker":1}"#)
        .await;
    dash.wait("roomagent/room2/state", |p| p.contains("marker"))
        .await;
    let r = command(&mut dash, "state", json!({})).await;
    assert_eq!(r["ok"], true, "{r}");
    dash.publish("roomagent/room2/cmd/ping", "{}").await;
    other.wait("roomagent/room2/cmd/ping", |_| true).await;

    let read = other.drain(Duration::from_millis(200)).await;
    let leaked: Vec<_> = read
        .iter()
        .filter(|(t, _, _)| t.starts_with(&format!("roomagent/{ID}/")))
        .collect();
    assert!(leaked.is_empty(), "room2 read room's messages: {leaked:?}");
    let seen = dash.drain(Duration::from_millis(300)).await;
    let forged: Vec<_> = seen
        .iter()
        .filter(|(t, p, _)| (t == REPLY || t == STATE) && p.contains("forged"))
        .collect();
    assert!(forged.is_empty(), "room2 reached room's topics: {forged:?}");
    assert!(!agent.now().mic_muted, "nobody muted the room");

    // A site's operators reach the site's rooms through the site's topic, and nothing else.
    let ops = Dashboard::connect_as(broker.port, &[], "berlin-ops", "ops-pw").await;
    ops.publish("roomagent/all/cmd/mute", r#"{"id":"ops-fleet"}"#)
        .await;
    ops.publish(
        &format!("roomagent/{ID}/cmd/mute"),
        r#"{"id":"ops-direct"}"#,
    )
    .await;
    ops.publish("roomagent/site/paris/cmd/mute", r#"{"id":"ops-paris"}"#)
        .await;
    ops.publish(
        "roomagent/site/berlin/cmd/volume",
        r#"{"id":"ops-site","level":21}"#,
    )
    .await;
    dash.wait_json(REPLY, |v| v["id"] == "ops-site" && v["ok"] == true)
        .await;
    dash.wait_json(STATE, |v| v["volume"] == 21).await;
    let seen = dash.drain(Duration::from_millis(300)).await;
    let beyond: Vec<_> = seen
        .iter()
        .filter(|(t, p, _)| t == REPLY && p.contains("ops-") && !p.contains("ops-site"))
        .collect();
    assert!(
        beyond.is_empty(),
        "berlin-ops reached beyond its site's topic: {beyond:?}"
    );
    assert!(
        !agent.now().mic_muted,
        "the operator's fleet and direct mutes were refused"
    );
    agent.stop().await;
}

fn codes(health: &Value) -> Vec<String> {
    health["issues"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|i| i["code"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The health a dashboard reads: ok on a sound device; a hot board, an unsynchronised clock
/// and a lost signaling server each appear as an issue with a level, and go when mended. The
/// board is a stand-in root (its thermal zone and timesyncd's flag) given to the agent as
/// ROOMAGENT_BOARD_ROOT.
#[test]
fn the_health_a_dashboard_reads_names_what_is_wrong_and_clears_when_mended() {
    // The parent makes the root; the child (in the namespace) finds it in its environment.
    let root = std::env::var_os("ROOMAGENT_BOARD_ROOT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::env::temp_dir().join(format!("roomagent-health-{}", std::process::id()))
        });
    let zone = root.join("sys/class/thermal/thermal_zone0");
    let timesync = root.join("run/systemd/timesync");
    std::fs::create_dir_all(&zone).unwrap();
    std::fs::create_dir_all(&timesync).unwrap();
    std::fs::write(zone.join("temp"), "45000\n").unwrap();
    std::fs::write(timesync.join("synchronized"), "").unwrap();
    std::fs::create_dir_all(root.join("proc/device-tree")).unwrap();
    std::fs::write(
        root.join("proc/device-tree/model"),
        "Raspberry Pi 5 Model B Rev 1.0\0",
    )
    .unwrap();
    std::fs::write(
        root.join("proc/device-tree/serial-number"),
        "a1b2c3d4e5f60718\0",
    )
    .unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(
        root.join("etc/os-release"),
        "PRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\nID=debian\nVERSION_ID=\"13\"\n",
    )
    .unwrap();
    let env = [("ROOMAGENT_BOARD_ROOT", root.display().to_string())];
    support::netns::run_isolated_with(
        "the_health_a_dashboard_reads_names_what_is_wrong_and_clears_when_mended",
        &env,
        async {
            let server = Server::start().await;
            let broker = Broker::start();
            let mut dash = Dashboard::connect(broker.port, &["roomagent/#"]).await;
            let toml = mqtt_toml(&server.api(), ID, broker.port, "mode = \"never\"", "")
                + "\n[health]\nsignaling_grace_s = 1\n# Only a nearly full disk of the machine running the test.\ndisk_free_warning_percent = 1\n";
            let mut agent = Agent::start_toml(&toml).await;
            agent.registered().await;
            let h = dash.wait_json(HEALTH, |v| v["level"] == "ok").await;
            assert_eq!(h["issues"], json!([]), "{h}");
            assert_eq!(h["device"], ID);
            assert!(
                h["seq"].is_u64() && h["run"].is_u64() && h["at"].is_u64(),
                "{h}"
            );
            let s = dash.wait_json(STATE, |v| v["registered"] == true).await;
            assert!(s["seq"].is_u64() && s["run"] == h["run"], "{s}");
            // The inventory: the board's files, and this namespace's own interfaces.
            let info = dash
                .wait_json("roomagent/room/info", |v| v["device"] == ID)
                .await;
            assert_eq!(
                info["board"]["model"], "Raspberry Pi 5 Model B Rev 1.0",
                "{info}"
            );
            assert_eq!(info["board"]["serial"], "a1b2c3d4e5f60718");
            assert_eq!(info["os"]["name"], "Debian GNU/Linux 13 (trixie)");
            assert_eq!(info["clock_synced"], true);
            assert!(info["kernel"]["release"].is_string() && info["seq"].is_u64());
            let v0 = info["network"]
                .as_array()
                .unwrap()
                .iter()
                .find(|n| n["interface"] == "v0")
                .cloned()
                .unwrap_or_else(|| panic!("no v0 in {info}"));
            assert!(
                v0["addresses"]
                    .as_array()
                    .unwrap()
                    .contains(&json!("10.250.0.1")),
                "{v0}"
            );
            assert!(v0["mac"].as_str().is_some_and(|m| m.len() == 17), "{v0}");

            // A hot board: an error, with the temperature in words.
            std::fs::write(zone.join("temp"), "87300\n").unwrap();
            let r = command(&mut dash, "volume", json!({"level": 30})).await;
            assert_eq!(r["ok"], true);
            let h = dash.wait_json(HEALTH, |v| v["level"] == "error").await;
            assert_eq!(codes(&h), ["temperature"], "{h}");
            assert!(
                h["issues"][0]["detail"].as_str().unwrap().contains("87 °C"),
                "{h}"
            );
            let hot_since = h["issues"][0]["since"].clone();

            // Cooler but the clock lost its synchronisation: a warning.
            std::fs::write(zone.join("temp"), "50000\n").unwrap();
            std::fs::remove_file(timesync.join("synchronized")).unwrap();
            command(&mut dash, "volume", json!({"level": 31})).await;
            let h = dash.wait_json(HEALTH, |v| v["level"] == "warning").await;
            assert_eq!(codes(&h), ["clock_unsynchronised"], "{h}");
            std::fs::write(timesync.join("synchronized"), "").unwrap();
            command(&mut dash, "volume", json!({"level": 32})).await;
            dash.wait_json(HEALTH, |v| v["level"] == "ok").await;

            // The signaling server goes away: an error once the grace has passed, by itself
            // (no other change wakes the agent), and ok again once it is back.
            let addr = server.stop().await;
            let h = dash.wait_json(HEALTH, |v| v["level"] == "error").await;
            assert_eq!(codes(&h), ["signaling_down"], "{h}");
            let since = h["issues"][0]["since"].as_u64().unwrap();
            assert!(since <= h["at"].as_u64().unwrap() && json!(since) != hot_since);
            let server = Server::start_on(addr).await;
            agent.registered().await;
            dash.wait_json(HEALTH, |v| v["level"] == "ok").await;
            agent.stop().await;
            drop(server);
        },
    );
    let _ = std::fs::remove_dir_all(&root);
}

fn restarting(result: anyhow::Result<()>) -> bool {
    result.err().is_some_and(|e| {
        e.downcast_ref::<roomagent::daemon::RestartRequested>()
            .is_some()
    })
}

/// `cmd/restart`: the agent's restart waits for the call to end unless the sender says
/// `now`, and ends the agent with the status systemd restarts it after; the system's leaves a
/// reboot request for the privileged helper, or says why it cannot.
#[tokio::test]
async fn a_restart_never_interrupts_a_call_unless_told_now() {
    let dir = std::env::temp_dir().join(format!("roomagent-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let server = Server::start().await;
    let broker = Broker::start();
    let mut dash = Dashboard::connect(broker.port, &["roomagent/#"]).await;
    let toml = mqtt_toml(&server.api(), ID, broker.port, "mode = \"always\"", "");

    // No helper (not the service, no requests_dir): a clear refusal, nothing else happens.
    let mut agent = Agent::start_toml(&toml).await;
    agent.registered().await;
    dash.wait(STATUS, |p| p == "online").await;
    let r = command(&mut dash, "restart", json!({"scope": "system"})).await;
    assert_eq!(r["ok"], false, "{r}");
    assert!(
        r["error"].as_str().unwrap().contains("privileged helper"),
        "{r}"
    );
    let r = command(&mut dash, "restart", json!({"scope": "everything"})).await;
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("\"agent\" or \"system\""),
        "{r}"
    );

    // In a call: queued; the call goes on; when it ends, the agent restarts.
    let mut alice = Peer::connect(&server.api(), "alice", "alice").await;
    let room = alice.call_agent(ROOM).await;
    agent.phase(CallPhase::InCall).await;
    let r = command(&mut dash, "restart", json!({})).await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["queued"], true, "{r}");
    assert_eq!(
        (r["scope"].as_str(), r["when"].as_str()),
        (Some("agent"), Some("idle"))
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        agent.now().call,
        CallPhase::InCall,
        "the call was not interrupted"
    );
    alice
        .request("meeting", "exit", json!({"roomId": room}))
        .await;
    assert!(
        restarting(agent.ended().await),
        "restarted once the call ended"
    );

    // In a call with "now": the call ends at once (the caller is told) and the agent restarts.
    let mut agent = Agent::start_toml(&toml).await;
    agent.registered().await;
    dash.wait(STATUS, |p| p == "online").await;
    alice.call_agent(ROOM).await;
    agent.phase(CallPhase::InCall).await;
    let r = command(&mut dash, "restart", json!({"when": "now"})).await;
    assert_eq!(
        (r["ok"].clone(), r["queued"].clone()),
        (json!(true), json!(false)),
        "{r}"
    );
    assert!(restarting(agent.ended().await));
    let exit = alice.push("meeting", "ExitRoom").await;
    assert_eq!(exit["client"]["id"], ROOM, "{exit}");

    // The system's restart with a helper: a reboot request is left for it; the agent runs on.
    let with_helper = format!("{toml}\n[service]\nrequests_dir = \"{}\"\n", dir.display());
    let mut agent = Agent::start_toml(&with_helper).await;
    agent.registered().await;
    dash.wait(STATUS, |p| p == "online").await;
    let r = command(
        &mut dash,
        "restart",
        json!({"scope": "system", "when": "now"}),
    )
    .await;
    assert_eq!(r["ok"], true, "{r}");
    let requests: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let action = roomagent::privileged::read(&requests[0]).unwrap();
    assert!(matches!(
        action,
        roomagent::privileged::Action::Reboot { .. }
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = command(&mut dash, "volume", json!({"level": 50})).await;
    assert_eq!(
        r["ok"], true,
        "the agent runs until the reboot stops it: {r}"
    );
    agent.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `roomagent fleet --config CONF ARGS…`: success, stdout, stderr.
async fn fleet(conf: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_roomagent"))
        .arg("fleet")
        .arg("--config")
        .arg(conf)
        .args(args)
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `roomagent fleet`, the binary as a person runs it: `ls` shows the devices as their retained
/// documents say, `cmd` reaches the selected ones once and counts who ran it, who refused and
/// who is offline.
#[tokio::test]
async fn the_fleet_command_lists_devices_and_counts_their_replies() {
    let server = Server::start().await;
    let broker = Broker::start();
    let mut dash = Dashboard::connect(broker.port, &["roomagent/#"]).await;
    let mut agents = lobby_and_boardroom(&server, &broker, &mut dash).await;
    let room2 = agents.remove(1);
    room2.stop().await;
    dash.wait("roomagent/room2/status", |p| p == "offline")
        .await;

    let dir = std::env::temp_dir().join(format!("roomagent-fleet-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("ops.toml");
    std::fs::write(
        &conf,
        format!(
            "[device]\nid = \"ops\"\n[media]\nenabled = false\n[gpio]\nenabled = false\n\
             [mqtt]\nenabled = true\nhost = \"127.0.0.1\"\nport = {}\n",
            broker.port
        ),
    )
    .unwrap();
    let (ok, table, err) = fleet(&conf, &["ls"]).await;
    assert!(ok, "{err}");
    let line = |id: &str| {
        table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .unwrap_or_else(|| panic!("no {id} in\n{table}"))
            .to_string()
    };
    assert!(
        line("room").contains("online") && line("room").contains("lobby"),
        "{table}"
    );
    assert!(line("room2").contains("offline"), "{table}");
    assert!(
        line("room3").contains("boardroom") && line("room3").contains("idle"),
        "{table}"
    );
    assert!(
        table.contains("3 devices: 2 online, 1 offline or unknown"),
        "{table}"
    );

    let (ok, out, err) = fleet(
        &conf,
        &[
            "cmd",
            "volume",
            "--args",
            r#"{"level":20}"#,
            "--group",
            "lobby",
        ],
    )
    .await;
    assert!(!ok, "someone was offline: {out}{err}");
    assert!(
        out.starts_with("1 ok, 0 refused, 1 offline, 0 no answer"),
        "{out}{err}"
    );
    assert!(out.contains("offline   room2"), "{out}");
    assert_eq!(agents[0].now().volume, 20);
    assert_ne!(agents[1].now().volume, 20, "room3 is not in the lobby");

    let (_, out, _) = fleet(
        &conf,
        &[
            "cmd",
            "volume",
            "--args",
            r#"{"level":500}"#,
            "--site",
            "berlin",
        ],
    )
    .await;
    assert!(out.starts_with("0 ok, 2 refused, 1 offline"), "{out}");
    assert!(
        out.contains("refused   room3: volume: \"level\" must be 0-100"),
        "{out}"
    );

    let (ok, out, err) = fleet(&conf, &["cmd", "state", "--ids", "room,room3"]).await;
    assert!(ok, "{out}{err}");
    assert!(
        out.starts_with("2 ok, 0 refused, 0 offline, 0 no answer"),
        "{out}"
    );
    for a in agents {
        a.stop().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Remote configuration: a dashboard's retained `config/desired` is checked with the file's
/// loader, kept on the device, applied like a reload (a restart for what needs one), and
/// answered on `config/reported`; a bad one, or one with a secret, changes nothing and says
/// why; clearing it goes back to the file.
#[tokio::test]
async fn a_desired_configuration_is_checked_applied_kept_and_reported() {
    const DESIRED: &str = "roomagent/room/config/desired";
    const REPORTED: &str = "roomagent/room/config/reported";
    let dir = std::env::temp_dir().join(format!("roomagent-desired-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let server = Server::start().await;
    let broker = Broker::start();
    let mut dash = Dashboard::connect(broker.port, &["roomagent/#"]).await;
    let overlay = dir.join("state/desired.toml");
    let file = dir.join("config.toml");
    std::fs::write(
        &file,
        format!(
            "{}\n[service]\ndesired_file = \"{}\"\n",
            mqtt_toml(&server.api(), ID, broker.port, "mode = \"never\"", ""),
            overlay.display()
        ),
    )
    .unwrap();
    let start = || async {
        let cfg = roomagent::config::load_running(&file).expect("valid");
        let mut a = Agent::start(cfg).await;
        a.registered().await;
        a
    };
    let mut agent = start().await;
    dash.wait(STATUS, |p| p == "online").await;
    let set = |dash: &Dashboard, v: Value| {
        let text = if v.is_null() {
            String::new()
        } else {
            v.to_string()
        };
        let c = dash.client.clone();
        async move {
            c.publish(DESIRED, QoS::AtLeastOnce, true, text)
                .await
                .unwrap();
        }
    };

    // Auto-answer on, from the dashboard: applied at once, no restart.
    set(
        &dash,
        json!({"answer": {"mode": "always", "delay_ms": 100}}),
    )
    .await;
    let r = dash
        .wait_json(REPORTED, |v| v["applied"] == json!(["answer"]))
        .await;
    assert_eq!(
        (r["restart"].clone(), r["errors"].clone()),
        (json!("none"), json!([])),
        "{r}"
    );
    assert_eq!(r["hash"].as_str().map(str::len), Some(64), "{r}");
    assert_eq!(r["file"]["changed"], false, "{r}");
    assert!(overlay.exists(), "kept on the device");
    let mut alice = Peer::connect(&server.api(), "alice", "alice").await;
    let room = alice.call_agent(ROOM).await;
    agent.phase(CallPhase::InCall).await;
    alice
        .request("meeting", "exit", json!({"roomId": room}))
        .await;
    agent.phase(CallPhase::Idle).await;

    // A bad one and one with a secret: nothing changes, the report says why.
    let kept = std::fs::read(&overlay).unwrap();
    set(&dash, json!({"answer": {"mode": "sometimes"}})).await;
    let r = dash.wait_json(REPORTED, |v| v["errors"] != json!([])).await;
    assert!(
        r["errors"][0].as_str().unwrap().starts_with("answer.mode"),
        "{r}"
    );
    set(
        &dash,
        json!({"signaling": {"login": {"password": "Hunter2-x9Qv"}}}),
    )
    .await;
    let r = dash
        .wait_json(REPORTED, |v| {
            v.to_string().contains("secrets are never sent")
        })
        .await;
    assert!(
        !r.to_string().contains("Hunter2"),
        "the secret is not echoed: {r}"
    );
    assert_eq!(std::fs::read(&overlay).unwrap(), kept, "nothing changed");

    // What needs a restart: the agent restarts itself (idle: at once) and comes back with it.
    set(
        &dash,
        json!({"answer": {"mode": "always"}, "signaling": {"keepalive_s": 25}}),
    )
    .await;
    let r = dash
        .wait_json(REPORTED, |v| v["needs_restart"] == json!(["signaling"]))
        .await;
    assert_eq!(r["restart"], "now", "{r}");
    let hash = r["hash"].clone();
    assert!(restarting(agent.ended().await));
    let agent = start().await;
    let r = dash
        .wait_json(REPORTED, |v| v["in_effect"] == true && v["hash"] == hash)
        .await;
    assert_eq!(r["needs_restart"], json!([]), "{r}");

    // A hand edit of the file shows as drift.
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str("# edited by hand\n");
    std::fs::write(&file, text).unwrap();
    set(
        &dash,
        json!({"answer": {"mode": "always", "delay_ms": 300}, "signaling": {"keepalive_s": 25}}),
    )
    .await;
    let r = dash
        .wait_json(REPORTED, |v| v["file"]["changed"] == true)
        .await;
    assert_eq!(r["applied"], json!(["answer"]), "{r}");
    assert_eq!(r["restart"], "none", "{r}");

    // Cleared: back to the file alone (its keep-alive needs a restart again).
    set(&dash, Value::Null).await;
    let r = dash
        .wait_json(REPORTED, |v| {
            v["hash"].is_null() && v["errors"] == json!([])
        })
        .await;
    assert_eq!(r["needs_restart"], json!(["signaling"]), "{r}");
    assert!(!overlay.exists());
    assert!(restarting(agent.ended().await));
    let _ = std::fs::remove_dir_all(&dir);
}
