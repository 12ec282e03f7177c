//! Fleet benchmark (prints numbers; asserts nothing). Run with `scripts/bench.sh`.
//!
//! 1,000 simulated devices in this one process, each a whole agent (core, MQTT adapter with
//! health and inventory, no signaling configured, no media) on a local mosquitto. Measured:
//! how long they take to come online, then a fleet-wide command's replies, publish to each
//! reply (p50, p99, last) over several rounds, and `roomagent fleet cmd`'s own count.

#[path = "../tests/support/mod.rs"]
#[allow(unused_imports)]
mod support;

#[path = "common/mod.rs"]
mod common;

use common::percentile;

use std::time::{Duration, Instant};

use roomagent::mqtt::fleet::{self, Target};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{Value, json};
use support::mqtt::Broker;
use support::*;
use tokio::sync::mpsc;

const DEVICES: usize = 1000;
const ROUNDS: usize = 5;

fn device_toml(id: &str, port: u16) -> String {
    format!(
        "[device]\nid = \"{id}\"\n[media]\nenabled = false\n[gpio]\nenabled = false\n\
         [mqtt]\nenabled = true\nhost = \"127.0.0.1\"\nport = {port}\ndiscovery = false\n\
         telemetry_interval_s = 3600\ngroup = \"g{}\"\nsite = \"bench\"\n[log]\nlevel = \"error\"\n",
        id.len() % 4
    )
}

/// Room for 2,000 sockets here and in mosquitto (which inherits the limit).
#[allow(unsafe_code)]
fn raise_open_files() {
    // SAFETY: getrlimit/setrlimit with a valid struct; raising the soft limit to the hard one.
    unsafe {
        let mut l: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 {
            l.rlim_cur = l.rlim_max.min(65_536);
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}

/// A dashboard's connection: every message on `filters`, with when it arrived.
async fn watch(
    port: u16,
    filters: &[&str],
) -> (
    AsyncClient,
    mpsc::UnboundedReceiver<(String, Value, Instant)>,
) {
    let mut o = MqttOptions::new("bench-dashboard", "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30));
    o.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut events) = AsyncClient::new(o, 4096);
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(ev) = events.poll().await {
            if let Event::Incoming(Packet::Publish(p)) = ev {
                let v = serde_json::from_slice(&p.payload)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&p.payload).into()));
                let _ = tx.send((p.topic.clone(), v, Instant::now()));
            }
        }
    });
    for f in filters {
        client.subscribe(*f, QoS::AtLeastOnce).await.unwrap();
    }
    (client, rx)
}

async fn run() {
    raise_open_files();
    let broker = Broker::start();
    let (dash, mut seen) = watch(broker.port, &["roomagent/+/status", "roomagent/+/reply"]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let mut agents = Vec::with_capacity(DEVICES);
    for i in 0..DEVICES {
        agents.push(Agent::start_toml(&device_toml(&format!("sim-{i:04}"), broker.port)).await);
    }
    let mut online = std::collections::BTreeSet::new();
    while online.len() < DEVICES {
        let (topic, v, _) = tokio::time::timeout(Duration::from_secs(60), seen.recv())
            .await
            .expect("devices come online")
            .unwrap();
        if topic.ends_with("/status") && v == "online" {
            online.insert(topic);
        }
    }
    println!(
        "BENCH fleet: {DEVICES} simulated agents started and online in {:.1} s (one process, RSS {:.0} MiB)",
        started.elapsed().as_secs_f64(),
        roomagent::mqtt::telemetry::rss_mib().unwrap_or(0.0)
    );

    let mut all = Vec::new();
    let mut last = Vec::new();
    for round in 0..ROUNDS {
        let id = format!("bench-{round}");
        let t = Instant::now();
        dash.publish(
            "roomagent/all/cmd/volume",
            QoS::AtLeastOnce,
            false,
            json!({"id": id, "level": 10 + round}).to_string(),
        )
        .await
        .unwrap();
        let mut got = Vec::with_capacity(DEVICES);
        while got.len() < DEVICES {
            let (topic, v, at) = tokio::time::timeout(Duration::from_secs(60), seen.recv())
                .await
                .expect("every device answers")
                .unwrap();
            if topic.ends_with("/reply") && v["id"] == json!(id) {
                got.push(at.duration_since(t).as_secs_f64() * 1000.0);
            }
        }
        last.push(got[got.len() - 1]);
        all.extend(got);
    }
    all.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "BENCH fleet: all/cmd/volume to {DEVICES} devices, {ROUNDS} rounds: reply p50 {:.0} ms, p99 {:.0} ms; last reply of a round {:.0}-{:.0} ms",
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        last.iter().cloned().fold(f64::MAX, f64::min),
        last.iter().cloned().fold(0.0, f64::max),
    );

    // `roomagent fleet cmd` as a library: read the directory, send once, count.
    let cfg = roomagent::config::parse(
        &device_toml("ops", broker.port),
        roomagent::config::Purpose::Agent,
    )
    .expect("valid");
    let opts = roomagent::mqtt::Options::from_config(&cfg).unwrap();
    let t = Instant::now();
    let outcome = fleet::command(
        &opts,
        "state",
        json!({}),
        &Target::All,
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    println!(
        "BENCH fleet cmd state to all: {} in {:.1} s (reading {DEVICES} devices' retained documents, then the replies)",
        outcome.summary().lines().next().unwrap_or(""),
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let dir = fleet::directory(&opts).await.unwrap();
    println!(
        "BENCH fleet ls: {} devices read in {:.1} s",
        dir.rows().count(),
        t.elapsed().as_secs_f64()
    );
    for a in agents {
        a.stop().await;
    }
}

fn main() {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(run());
}
