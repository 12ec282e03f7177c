//! RTM media benchmark (prints numbers; asserts nothing). Run with `scripts/bench.sh`.
//!
//! The agent runs as its own process (`roomagent run`, backend `rtm`) against the test RTM
//! gate and its RTC gate side in this process (FPNN over TCP on loopback). In one run, side
//! by side:
//! * an RTM call: the agent sends 720p30 H.264 and Opus as `video`/`voice` quests while a
//!   member's 640×480@30 H.264 and Opus are pushed to it (and decoded onto its display and
//!   speaker, fakesinks here): the agent's CPU and RSS, by thread;
//! * `gst-launch-1.0` doing the same encode (720p30 → x264enc as the test profile, Opus
//!   32 kb/s) and the same decode (640×480@30 with OpenH264) bare, measured right after: the
//!   ratio;
//! * the gate-side latency: each quest's capture timestamp (server time) to its arrival at
//!   the gate, p50 and p90, video and voice.

#[path = "../tests/support/mod.rs"]
#[allow(unused_imports)]
mod support;

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use support::rtc_gate::{RtcGate, unix_ms};
use support::rtm_gate::Gate;

const UID: i64 = 9001;
const MEMBER: i64 = 42;
const RID: i64 = 555;

fn config(gate: &Gate) -> String {
    format!(
        r#"
[device]
id = "room-rtm"
[signaling]
backend = "rtm"
[signaling.rtm]
pid = 11000001
uid = {UID}
gate = "{}"
token = "bench-token"
[answer]
mode = "always"
delay_ms = 0
{MEDIA_720P30}
[log]
level = "warn"
"#,
        gate.endpoint()
    )
}

/// Pushes member 42's 640×480@30 camera (a key frame a second) and microphone to the agent
/// for `until`.
async fn member(rtc: Arc<RtcGate>, until: Duration) {
    let video = tokio::task::spawn_blocking(|| support::encoded::h264(300, 640, 480, 30))
        .await
        .unwrap();
    let voice = tokio::task::spawn_blocking(|| support::encoded::opus(500))
        .await
        .unwrap();
    rtc.play(UID, MEMBER, RID, &video, &voice, until).await;
}

fn latency(rtc: &RtcGate, method: &str, since: i64) -> (f64, f64, usize) {
    let mut ms: Vec<f64> = rtc
        .sent(UID, method)
        .iter()
        .filter(|g| g.arrived_ms >= since)
        .map(|g| (g.arrived_ms - g.int("timestamp")) as f64)
        .collect();
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if ms.is_empty() {
        return (f64::NAN, f64::NAN, 0);
    }
    (percentile(&ms, 0.5), percentile(&ms, 0.9), ms.len())
}

async fn rtm_call() {
    let gate = Gate::start(None).await;
    let rtc = Arc::new(RtcGate::start().await);
    gate.set_rtc_endpoint(&rtc.endpoint());
    gate.accept_token(UID, "bench-token");
    gate.room(RID, &[MEMBER], &[MEMBER], MEMBER);
    let dir = std::env::temp_dir().join(format!("roomagent-bench-rtm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.toml");
    std::fs::write(&path, config(&gate)).unwrap();
    let agent = AgentChild::start(&path);
    let pid = agent.pid();
    gate.wait_login(UID).await;
    gate.invite(UID, RID, MEMBER).await;
    rtc.wait_in_room(UID).await;
    let warm_up = Duration::from_secs(4);
    let sender = tokio::spawn(member(
        rtc.clone(),
        warm_up + CPU_WINDOW + Duration::from_secs(1),
    ));
    tokio::time::sleep(warm_up).await;
    let since = unix_ms();
    let (call_cpu, threads) = cpu_by_thread(pid, CPU_WINDOW).await;
    let call_rss = rss_mib(pid);
    let _ = sender.await;
    let (v50, v90, vn) = latency(&rtc, "video", since);
    let (a50, a90, an) = latency(&rtc, "voice", since);
    drop(agent);
    let decode = bare_decode("h264", &dir, 640, 480);
    let encode = "videotestsrc is-live=true pattern=smpte ! video/x-raw,width=1280,height=720,framerate=30/1 \
        ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=60 bitrate=1500 \
        ! video/x-h264,profile=constrained-baseline ! h264parse ! fakesink \
        audiotestsrc is-live=true wave=sine ! audio/x-raw,rate=48000,channels=1 ! opusenc bitrate=32000 ! fakesink";
    let (bare_cpu, bare_rss) = bare(&format!("{encode} {decode}")).await;
    println!(
        "BENCH rtm call (720p30 out, 640x480@30 in): agent {call_cpu:.1}% of a core, RSS {call_rss:.0} MiB / bare encode+decode {bare_cpu:.1}%, RSS {bare_rss:.0} MiB = {:.2}x",
        call_cpu / bare_cpu
    );
    println!("BENCH   by thread (rtm call): {}", show(&threads));
    println!(
        "BENCH rtm capture -> gate arrival: video p50 {v50:.0} ms, p90 {v90:.0} ms ({vn} quests); voice p50 {a50:.0} ms, p90 {a90:.0} ms ({an} quests)"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(rtm_call());
}
