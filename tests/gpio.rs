//! Buttons and LEDs through a whole agent with the simulated board: a press mutes (state,
//! LED and `muteMsg` all seen), a long press hangs up, bouncing edges count once, a host mute
//! lights the LED, the control socket works, and a missing chip is reported while the agent
//! runs on.

mod support;

use std::time::Duration;

use roomagent::core::CallPhase;
use roomagent::gpio::{Input, Led};
use serde_json::json;
use support::*;

fn gpio_toml(api: &str, gpio: &str) -> String {
    agent_toml(api, "mode = \"always\"\ndelay_ms = 0").replace(
        "[log]",
        &format!("[gpio]\nenabled = true\ndebounce_ms = 20\nlong_press_ms = 600\n{gpio}\n\n[log]"),
    )
}

const SIM: &str = "backend = \"sim\"\n[gpio.mute_button]\n[gpio.status_led]\n[gpio.mute_led]";

async fn in_call(api: &str, gpio: &str) -> (Agent, Peer, i64) {
    let mut agent = Agent::start_toml(&gpio_toml(api, gpio)).await;
    agent.registered().await;
    let mut alice = Peer::connect(api, "alice", "alice").await;
    let room = alice.call_agent(ROOM).await;
    agent.phase(CallPhase::InCall).await;
    (agent, alice, room)
}

#[tokio::test]
async fn a_press_mutes_lights_the_led_and_tells_the_room() {
    let server = Server::start().await;
    let (mut agent, mut alice, _) = in_call(&server.api(), SIM).await;
    let board = agent.gpio_board.clone().unwrap();
    assert!(!board.led(Led::Mute));
    board.press(Input::Mute, Duration::from_millis(100)).await;
    agent.wait_for("muted by the button", |s| s.mic_muted).await;
    let m = alice.push("meeting", "onMute").await;
    assert_eq!(
        (m["userId"].clone(), m["isMute"].clone()),
        (json!(ROOM), json!(true))
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(board.led(Led::Mute), "the mute LED shows the mute");
    assert!(board.led(Led::Status), "in a call the status LED is on");
    board.press(Input::Mute, Duration::from_millis(100)).await;
    agent
        .wait_for("unmuted by the button", |s| !s.mic_muted)
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!board.led(Led::Mute));
    agent.stop().await;
}

#[tokio::test]
async fn a_long_press_in_a_call_hangs_up() {
    let server = Server::start().await;
    let (mut agent, mut alice, _) = in_call(&server.api(), SIM).await;
    let board = agent.gpio_board.clone().unwrap();
    board.press(Input::Mute, Duration::from_millis(900)).await;
    agent.phase(CallPhase::Idle).await;
    let exit = alice.push("meeting", "ExitRoom").await;
    assert_eq!(exit["client"]["id"], ROOM);
    assert!(!agent.now().mic_muted, "a long press is not also a mute");
    agent.stop().await;
}

#[tokio::test]
async fn ten_edges_within_5ms_count_as_one_press() {
    let server = Server::start().await;
    let (mut agent, _alice, _) = in_call(&server.api(), SIM).await;
    let board = agent.gpio_board.clone().unwrap();
    for i in 0..10 {
        board.edge(Input::Mute, i % 2 == 0);
        tokio::time::sleep(Duration::from_micros(400)).await;
    }
    board.edge(Input::Mute, true);
    tokio::time::sleep(Duration::from_millis(150)).await;
    board.edge(Input::Mute, false);
    agent.wait_for("one toggle", |s| s.mic_muted).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(agent.now().mic_muted, "toggled once, not back");
    agent.stop().await;
}

#[tokio::test]
async fn a_host_mute_lights_the_mute_led() {
    let server = Server::start().await;
    let (mut agent, mut alice, room) = in_call(&server.api(), SIM).await;
    let board = agent.gpio_board.clone().unwrap();
    alice
        .request(
            "meeting",
            "muteMsg",
            json!({"userId": ROOM, "roomId": room, "isMute": true, "super": "fromSuper"}),
        )
        .await;
    agent.wait_for("host mute", |s| s.mic_muted).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(board.led(Led::Mute));
    agent.stop().await;
}

#[tokio::test]
async fn the_sim_control_socket_presses_buttons_and_reports_leds() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let server = Server::start().await;
    let sock = std::env::temp_dir().join(format!("roomagent-gpio-{}.sock", std::process::id()));
    let gpio = SIM.to_string().replace(
        "backend = \"sim\"",
        &format!("backend = \"sim\"\ncontrol_socket = \"{}\"", sock.display()),
    );
    let (mut agent, _alice, _) = in_call(&server.api(), &gpio).await;
    let stream = tokio::net::UnixStream::connect(&sock).await.unwrap();
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r).lines();
    w.write_all(b"press mute\n").await.unwrap();
    assert_eq!(lines.next_line().await.unwrap().unwrap(), "ok");
    agent
        .wait_for("muted from the socket", |s| s.mic_muted)
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    w.write_all(b"leds\n").await.unwrap();
    let leds = lines.next_line().await.unwrap().unwrap();
    assert!(
        leds.contains("mute_led=on") && leds.contains("status_led=on"),
        "{leds}"
    );
    w.write_all(b"dance\n").await.unwrap();
    assert!(
        lines
            .next_line()
            .await
            .unwrap()
            .unwrap()
            .starts_with("commands:")
    );
    agent.stop().await;
    let _ = std::fs::remove_file(&sock);
}

#[tokio::test]
async fn a_missing_gpio_chip_is_named_and_the_agent_runs_on() {
    let server = Server::start().await;
    let gpio = "backend = \"gpiocdev\"\n[gpio.mute_button]\nchip = \"gpiochip99\"\noffset = 17\nactive_low = true\nbias = \"pull_up\"";
    let mut agent = Agent::start_toml(&gpio_toml(&server.api(), gpio)).await;
    agent.registered().await;
    let e = agent
        .gpio_error
        .clone()
        .expect("the GPIO error is reported");
    assert!(
        e.contains("/dev/gpiochip99") && e.contains("mute_button"),
        "{e}"
    );
    // Still answers calls.
    let mut alice = Peer::connect(&server.api(), "alice", "alice").await;
    alice.call_agent(ROOM).await;
    agent.phase(CallPhase::InCall).await;
    agent.stop().await;
}
