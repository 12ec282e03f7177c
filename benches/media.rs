//! Media benchmark (prints numbers; asserts nothing). Run with `scripts/bench.sh`.
//!
//! * invite → first frame decoded in Chromium, over 10 browser calls (p50, p90);
//! * agent CPU over a 30 s 720p30 call, next to the same encode pipeline run bare with
//!   `gst-launch-1.0`;
//! * agent RSS idle and in a call;
//! * time from the room server's return to the agent's re-registration, default backoff.
//!
//! Everything runs inside a network namespace of its own (the binary re-executes itself
//! under `unshare -rn`), like the WebRTC tests.

#[path = "../tests/support/mod.rs"]
#[allow(unused_imports)]
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use roomagent::core::CallPhase;
use serde_json::Value;
use support::browser::Browser;
use support::*;

const CALLS: usize = 10;
const CPU_WINDOW: Duration = Duration::from_secs(30);

fn ticks(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces): utime is field 14, stime 15.
    let after = stat.rsplit_once(')').map(|(_, a)| a).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn hz() -> f64 {
    100.0 // USER_HZ on Linux
}

fn agent_config(api: &str, extra_signaling: &str) -> String {
    format!(
        r#"
[device]
id = "room-101"
[signaling]
host = "{api}"
{extra_signaling}
[signaling.login]
name = "room"
password = "room"
[answer]
mode = "always"
delay_ms = 0
[media]
profile = "test"
camera = "none"
microphone = "none"
hdmi_capture = "none"
display = "fakesink"
speaker = "fakesink"
width = 1280
height = 720
framerate = 30
display_width = 1280
display_height = 720
[log]
level = "warn"
"#
    )
}

async fn browser_calls() {
    let server = Server::start().await;
    let mut agent = Agent::start_toml(&agent_config(&server.api(), "")).await;
    agent.registered().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_idle = rss_mib();

    let browser = Browser::start().await;
    browser.goto(&server.handle.page_url()).await;
    browser
        .eval("window.roomagent.login('alice', 'alice')")
        .await;
    let expr = format!("window.roomagent.stats().then(s => s['{ROOM}'] || null)");
    let mut first_frame = Vec::new();
    for i in 0..CALLS {
        let t0 = Instant::now();
        browser
            .eval(&format!("window.roomagent.dial({ROOM})"))
            .await;
        loop {
            let v: Value = browser.eval(&expr).await;
            if v["video"]["framesDecoded"].as_u64().unwrap_or(0) > 0 {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "call {i}: no frame in 30 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        first_frame.push(t0.elapsed().as_secs_f64() * 1000.0);
        browser.eval("window.roomagent.hangup()").await;
        agent.phase(CallPhase::Idle).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    first_frame.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "BENCH invite -> first frame decoded in Chromium over {CALLS} calls: p50 {:.0} ms, p90 {:.0} ms (min {:.0}, max {:.0})",
        percentile(&first_frame, 0.5),
        percentile(&first_frame, 0.9),
        first_frame[0],
        first_frame[first_frame.len() - 1]
    );

    // One long 720p30 call: the agent's CPU (encode, decode of Chromium's video, composition,
    // audio, WebRTC) over 30 s.
    browser
        .eval(&format!("window.roomagent.dial({ROOM})"))
        .await;
    agent
        .wait_for("the long call", |s| s.members.iter().any(|m| m.video_in))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let start = ticks("self");
    let t = Instant::now();
    tokio::time::sleep(CPU_WINDOW).await;
    let agent_cpu = (ticks("self") - start) as f64 / hz() / t.elapsed().as_secs_f64() * 100.0;
    let rss_call = rss_mib();
    let st = agent.handle.media_stats().unwrap().borrow().clone();
    browser.eval("window.roomagent.hangup()").await;
    agent.phase(CallPhase::Idle).await;
    drop(browser);

    // The same 720p30 encode, bare.
    let mut bare = Command::new("gst-launch-1.0")
        .args([
            "-q",
            "videotestsrc",
            "is-live=true",
            "pattern=smpte",
            "!",
            "video/x-raw,width=1280,height=720,framerate=30/1",
            "!",
            "x264enc",
            "tune=zerolatency",
            "speed-preset=ultrafast",
            "key-int-max=60",
            "bitrate=1500",
            "!",
            "video/x-h264,profile=constrained-baseline",
            "!",
            "fakesink",
        ])
        .spawn()
        .expect("gst-launch-1.0");
    let pid = bare.id().to_string();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let start = ticks(&pid);
    let t = Instant::now();
    tokio::time::sleep(CPU_WINDOW).await;
    let bare_cpu = (ticks(&pid) - start) as f64 / hz() / t.elapsed().as_secs_f64() * 100.0;
    let _ = bare.kill();
    let _ = bare.wait();

    println!(
        "BENCH CPU over {}s of a 720p30 call: agent {agent_cpu:.0}% of one core (send 720p30 H.264 + receive/decode/compose Chromium's video + Opus both ways); bare gst-launch x264 720p30 encode {bare_cpu:.0}%",
        CPU_WINDOW.as_secs()
    );
    println!("BENCH call stats: {:?}", st.sessions);
    println!("BENCH RSS: idle {rss_idle:.0} MiB, in a 720p30 call {rss_call:.0} MiB");
    agent.stop().await;
}

async fn reconnect() {
    // Default backoff (500 ms .. 30 s); the server is away for 5 s.
    let server = Server::start().await;
    let api = server.api();
    let mut agent = Agent::start_toml(
        &agent_config(&api, "").replace("[media]\nprofile", "[media]\nenabled = false\nprofile"),
    )
    .await;
    agent.registered().await;
    let mut samples = Vec::new();
    let mut server = Some(server);
    for _ in 0..5 {
        let addr = server.take().unwrap().stop().await;
        agent.wait_for("disconnect", |s| !s.registered).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let back = Server::start_on(addr).await;
        let t = Instant::now();
        agent.registered().await;
        samples.push(t.elapsed().as_secs_f64() * 1000.0);
        server = Some(back);
    }
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "BENCH room server back -> agent re-registered (default backoff, 5 s outage): {:?} ms, median {:.0} ms",
        samples.iter().map(|s| s.round()).collect::<Vec<_>>(),
        percentile(&samples, 0.5)
    );
    agent.stop().await;
}

fn main() {
    if std::env::var_os("ROOMAGENT_NETNS").is_none() {
        let exe = std::env::current_exe().unwrap();
        let status = Command::new("unshare")
            .args([
                "-rn", "sh", "-ec",
                "ip link set lo up; ip link add v0 type veth peer name v1; ip addr add 10.250.0.1/24 dev v0; ip link set v0 up; ip addr add 10.250.1.1/24 dev v1; ip link set v1 up; exec \"$@\"",
                "sh",
            ])
            .arg(exe)
            .env("ROOMAGENT_NETNS", "bench")
            .status()
            .expect("unshare");
        std::process::exit(status.code().unwrap_or(1));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(reconnect());
    rt.block_on(browser_calls());
}
