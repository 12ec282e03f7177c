//! The browser call again, with the agent restricted to relayed candidates through a real
//! TURN server (coturn) in the test's namespace: over UDP, and over TCP.

mod support;

use std::time::Duration;

use roomagent::core::CallPhase;
use serde_json::Value;
use support::browser::Browser;
use support::turn::Turn;
use support::*;

static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

async fn relayed_call(transport: &str) {
    let turn = Turn::start("10.250.0.1");
    let server = Server::start().await;
    let signaling = format!(
        "relay_server = \"{}\"\nrelay_username = \"{}\"\nrelay_password = \"{}\"\nrelay = \"relay\"\ntransport = \"{transport}\"",
        turn.addr, turn.user, turn.password
    );
    let mut agent = Agent::start_toml(&media_toml(
        &server.api(),
        "room",
        "mode = \"always\"\ndelay_ms = 0",
        &signaling,
    ))
    .await;
    agent.registered().await;

    let browser = Browser::calling_the_room(&server.handle.page_url()).await;
    let expr = format!("window.roomagent.stats().then(s => s['{ROOM}'] || null)");
    let stats = browser
        .wait_for(
            "relayed video decoded in Chromium",
            &expr,
            Duration::from_secs(40),
            |v: &Value| v["video"]["framesDecoded"].as_u64().unwrap_or(0) > 10,
        )
        .await;
    let candidates: Vec<String> = stats["remoteCandidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert!(!candidates.is_empty());
    assert!(
        candidates.iter().all(|c| c.contains("typ relay")),
        "the agent offered non-relayed candidates: {candidates:?}"
    );
    let s = agent
        .wait_for("Chromium's video through the relay", |s| {
            s.members.iter().any(|m| m.video_in)
        })
        .await;
    assert_eq!(s.call, CallPhase::InCall);
    let log = turn.log();
    assert!(
        log.lines()
            .any(|l| l.contains("ALLOCATE processed, success") && l.contains("user <room>")),
        "coturn saw no allocation:\n{log}"
    );
    if transport == "tcp" {
        assert!(
            log.contains("TCP"),
            "the relay was not reached over TCP:\n{log}"
        );
    } else {
        assert!(
            !log.contains("TCP socket"),
            "UDP was asked for, TCP was used:\n{log}"
        );
    }
    println!("MEASURE relayed over {transport}: {}", stats["video"]);
    browser.eval("window.roomagent.hangup()").await;
    agent.phase(CallPhase::Idle).await;
    drop(browser);
    agent.stop().await;
}

fn run(test: &str, transport: &'static str) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    netns::run_isolated(test, relayed_call(transport));
}

#[test]
fn relay_only_call_through_turn_over_udp() {
    run("relay_only_call_through_turn_over_udp", "udp");
}

#[test]
fn relay_only_call_through_turn_over_tcp() {
    run("relay_only_call_through_turn_over_tcp", "tcp");
}
