//! MQTT benchmark (prints numbers; asserts nothing). Run with `scripts/bench.sh`.
//!
//! * command → state published latency over 1,000 commands (p50, p99), through a real
//!   mosquitto on loopback;
//! * messages per minute an idle device sends (default telemetry interval).

#[path = "../tests/support/mod.rs"]
#[allow(unused_imports)]
mod support;

#[path = "common/mod.rs"]
mod common;

use common::percentile;

use std::time::{Duration, Instant};

use support::mqtt::{Broker, Dashboard};
use support::*;

const COMMANDS: usize = 1000;

async fn run() {
    let server = Server::start().await;
    let broker = Broker::start();
    let mut dash = Dashboard::connect(broker.port, &["roomagent/room/#"]).await;
    let toml = mqtt_toml(&server.api(), "room", broker.port, "mode = \"never\"", "")
        .replace("telemetry_interval_s = 1", "telemetry_interval_s = 60");
    let mut agent = Agent::start_toml(&toml).await;
    agent.registered().await;
    dash.wait("roomagent/room/status", |p| p == "online").await;
    dash.wait_json("roomagent/room/state", |v| v["registered"] == true)
        .await;

    let mut lat = Vec::with_capacity(COMMANDS);
    for i in 0..COMMANDS {
        let mute = i % 2 == 0;
        let verb = if mute { "mute" } else { "unmute" };
        let t = Instant::now();
        dash.publish(&format!("roomagent/room/cmd/{verb}"), "")
            .await;
        dash.wait_json("roomagent/room/state", |v| v["mic_muted"] == mute)
            .await;
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "BENCH MQTT command -> state published over {COMMANDS} commands: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (includes the 50 ms state coalescing window)",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat[lat.len() - 1]
    );

    // Idle: count what the device sends for a minute.
    let _ = dash.drain(Duration::from_millis(500)).await;
    let before = dash.drain(Duration::from_millis(1)).await.len();
    let window = Duration::from_secs(60);
    let all = dash.drain(window).await;
    let sent = all.len() - before;
    println!(
        "BENCH MQTT idle device: {sent} messages in {}s (telemetry every 60 s, nothing else while idle)",
        window.as_secs()
    );
    agent.stop().await;
}

fn main() {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(run());
}
