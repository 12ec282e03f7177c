//! `roomagent run` under a service manager: the shipped unit's hardening score, the sd_notify
//! protocol (READY, STATUS, WATCHDOG, RELOADING, STOPPING) against a socket the test owns,
//! SIGHUP reloads and a clean SIGTERM stop of an agent in a call. The binary itself runs, as
//! systemd would run it.

mod support;

use std::time::{Duration, Instant};

use roomagent::core::{CallPhase, Command};
use roomagent::media::MediaStats;
use support::mqtt::{Broker, Dashboard};
use support::service::{Service, field};
use support::*;

const ROOM2: i64 = 1002;

fn ready(m: &str) -> bool {
    field(m, "READY") == Some("1")
}

/// SIGHUP, then RELOADING=1 and READY=1 from the service; returns the READY message (with
/// the STATUS that says what the reload did).
async fn reload(svc: &mut Service) -> String {
    svc.signal("HUP");
    svc.notify
        .wait("RELOADING=1", Duration::from_secs(5), |m| {
            field(m, "RELOADING") == Some("1")
        })
        .await;
    svc.notify
        .wait("READY=1 after the reload", Duration::from_secs(5), ready)
        .await
}

fn status_is(want: &'static str) -> impl Fn(&str) -> bool {
    move |m| field(m, "STATUS") == Some(want)
}

#[test]
fn the_unit_file_scores_at_most_2_5_in_systemd_analyze_security() {
    let unit = concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/roomagent.service");
    let out = std::process::Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager", unit])
        .output()
        .expect("systemd-analyze (package systemd) is needed");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let score: f64 = text
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for roomagent.service:")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure score in:\n{text}"));
    println!("MEASURE systemd-analyze security exposure: {score}");
    assert!(score <= 2.5, "exposure {score} > 2.5:\n{text}");
    // The analysis must have understood every line of the unit.
    assert!(
        !text.contains("Unknown key") && !text.contains("Failed to parse"),
        "{text}"
    );
}

#[tokio::test]
async fn without_signaling_it_reports_ready_after_the_bounded_wait_and_keeps_the_watchdog_fed() {
    // A port nobody listens on (yet).
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let api = format!("http://{addr}/app");
    let config =
        agent_toml(&api, "mode = \"always\"\ndelay_ms = 0") + "\n[service]\nready_timeout_s = 1\n";
    let mut svc = Service::start("bounded", &config, &[("WATCHDOG_USEC", "400000")]);

    let r = svc
        .notify
        .wait("READY=1", Duration::from_secs(10), ready)
        .await;
    let status = field(&r, "STATUS").unwrap_or_default().to_string();
    assert!(
        status.starts_with("not registered after 1 s:")
            && status.ends_with("retrying in the background"),
        "{status}"
    );

    // WATCHDOG_USEC = 400 ms: a ping every 200 ms.
    let pings = svc
        .notify
        .collect(Duration::from_millis(1500))
        .await
        .iter()
        .filter(|m| field(m, "WATCHDOG") == Some("1"))
        .count();
    assert!(
        pings >= 3,
        "{pings} watchdog pings in 1.5 s; seen {:#?}",
        svc.notify.seen
    );

    // The server comes up: the status follows.
    let server = Server::start_on(addr).await;
    svc.notify
        .wait(
            "registered",
            Duration::from_secs(10),
            status_is("registered as user 1001, idle"),
        )
        .await;

    // A broken file on SIGHUP changes nothing and says why.
    std::fs::write(
        &svc.config,
        config.replace("mode = \"always\"", "mode = \"sometimes\""),
    )
    .unwrap();
    let r = reload(&mut svc).await;
    let status = field(&r, "STATUS").unwrap_or_default();
    assert!(
        status.starts_with("configuration reload refused, still running the old one:")
            && status.contains("answer.mode"),
        "{status}"
    );

    // Still serving: Alice's call is answered under the old policy.
    let mut alice = Peer::connect(&server.api(), "alice", "alice").await;
    alice.call_agent(ROOM).await;
    svc.notify
        .wait("in call", Duration::from_secs(10), |m| {
            field(m, "STATUS").is_some_and(|s| s.starts_with("in call with"))
        })
        .await;

    svc.signal("TERM");
    let exit = svc
        .exited_within(Duration::from_secs(5))
        .await
        .expect("no exit within 5 s of SIGTERM");
    assert!(exit.success(), "exit status {exit}; log:\n{}", svc.log());
    assert!(
        svc.notify
            .collect(Duration::from_millis(100))
            .await
            .iter()
            .chain(svc.notify.seen.iter())
            .any(|m| field(m, "STOPPING") == Some("1")),
        "no STOPPING=1; seen {:#?}",
        svc.notify.seen
    );
    // Alice sees the agent leave the room.
    let exit = alice.push("meeting", "ExitRoom").await;
    assert_eq!(exit["client"]["id"], ROOM);
    server.stop().await;
}

/// The service under test: device `room2`, media from test sources, MQTT on.
fn service_toml(api: &str, mqtt_port: u16, answer: &str, name: &str, bitrate: u32) -> String {
    media_toml(api, "room2", answer, "")
        .replace(
            "name = \"room2\"\n\n[signaling]",
            &format!("name = \"{name}\"\n\n[signaling]"),
        )
        .replace(
            "video_bitrate_kbps = 300",
            &format!("video_bitrate_kbps = {bitrate}"),
        )
        + &format!(
            r#"
[mqtt]
enabled = true
host = "127.0.0.1"
port = {mqtt_port}
reconnect_min_ms = 200
reconnect_max_ms = 1000

[service]
ready_timeout_s = 20
"#
        )
}

fn frames(st: &MediaStats) -> u64 {
    st.sessions
        .iter()
        .map(|s| s.frames_decoded)
        .max()
        .unwrap_or(0)
}

#[test]
fn a_service_in_a_call_reloads_on_sighup_and_leaves_cleanly_on_sigterm() {
    netns::run_isolated(
        "a_service_in_a_call_reloads_on_sighup_and_leaves_cleanly_on_sigterm",
        async {
            let server = Server::start().await;
            let broker = Broker::start();
            let mut dash = Dashboard::connect(broker.port, &["roomagent/room2/#"]).await;
            let config = service_toml(
                &server.api(),
                broker.port,
                "mode = \"always\"\ndelay_ms = 0",
                "Room Two",
                300,
            );
            let mut svc = Service::start("call", &config, &[("WATCHDOG_USEC", "2000000")]);
            let r = svc
                .notify
                .wait("READY=1", Duration::from_secs(30), ready)
                .await;
            assert_eq!(field(&r, "STATUS"), Some("registered as user 1002, idle"));
            dash.wait("roomagent/room2/status", |p| p == "online").await;

            // A second room calls it; it answers by itself and video flows both ways.
            let mut caller =
                Agent::start_toml(&media_toml(&server.api(), "room", "mode = \"never\"", "")).await;
            caller.registered().await;
            caller
                .handle
                .command(Command::Dial {
                    user: roomagent::core::UserId(ROOM2),
                })
                .await
                .unwrap();
            caller
                .wait_for("the service's video", |s| {
                    s.members.iter().any(|m| m.video_in)
                })
                .await;
            svc.notify
                .wait("in-call status", Duration::from_secs(10), |m| {
                    field(m, "STATUS").is_some_and(|s| s.starts_with("in call with"))
                })
                .await;

            // SIGHUP mid-call: the answer policy and name apply now, the bitrate at restart.
            std::fs::write(
                &svc.config,
                service_toml(
                    &server.api(),
                    broker.port,
                    "mode = \"never\"",
                    "Room Two (east)",
                    600,
                ),
            )
            .unwrap();
            let r = reload(&mut svc).await;
            assert_eq!(
                field(&r, "STATUS"),
                Some("configuration reloaded: applied answer, device.name; needs a restart: media")
            );
            // The call went on through the reload: the caller keeps decoding new frames.
            let mut stats = caller.handle.media_stats().unwrap();
            let before = frames(&stats.borrow());
            let more = tokio::time::timeout(
                Duration::from_secs(10),
                stats.wait_for(|st| frames(st) >= before + 15),
            )
            .await
            .is_ok();
            assert!(
                more,
                "video stopped after the reload: {:?}",
                *stats.borrow()
            );

            // The new policy holds: the next call rings, and the dashboard answers it.
            caller.handle.command(Command::Hangup).await.unwrap();
            caller.phase(CallPhase::Idle).await;
            svc.notify
                .wait(
                    "idle again",
                    Duration::from_secs(10),
                    status_is("registered as user 1002, idle"),
                )
                .await;
            caller
                .handle
                .command(Command::Dial {
                    user: roomagent::core::UserId(ROOM2),
                })
                .await
                .unwrap();
            svc.notify
                .wait(
                    "ringing",
                    Duration::from_secs(10),
                    status_is("ringing: call from user 1001"),
                )
                .await;
            dash.publish("roomagent/room2/cmd/answer", r#"{"id":"answer-1"}"#)
                .await;
            dash.wait_json("roomagent/room2/reply", |v| {
                v["id"] == "answer-1" && v["ok"] == true
            })
            .await;
            caller
                .wait_for("the service's video again", |s| {
                    s.call == CallPhase::InCall && s.members.iter().any(|m| m.video_in)
                })
                .await;

            // SIGTERM in the call: it leaves the room, says offline, exits 0 within 5 s.
            let t0 = Instant::now();
            svc.signal("TERM");
            let exit = svc
                .exited_within(Duration::from_secs(5))
                .await
                .expect("no exit within 5 s of SIGTERM");
            let took = t0.elapsed();
            assert!(exit.success(), "exit status {exit}; log:\n{}", svc.log());
            println!("MEASURE SIGTERM in a call -> exit: {} ms", took.as_millis());
            caller.phase(CallPhase::Idle).await;
            dash.wait("roomagent/room2/status", |p| p == "offline")
                .await;
            let all: Vec<String> = svc
                .notify
                .collect(Duration::from_millis(100))
                .await
                .into_iter()
                .chain(svc.notify.seen.iter().cloned())
                .collect();
            assert!(
                all.iter().any(|m| field(m, "STOPPING") == Some("1")),
                "{all:#?}"
            );
            let pings = all
                .iter()
                .filter(|m| field(m, "WATCHDOG") == Some("1"))
                .count();
            assert!(
                pings >= 2,
                "{pings} watchdog pings during the whole test: {all:#?}"
            );
            caller.stop().await;
            server.stop().await;
        },
    );
}
