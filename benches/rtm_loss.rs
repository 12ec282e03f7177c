//! RTM media over a lossy path, TCP against FPNN's reliable UDP (prints numbers; asserts
//! nothing). Run with `scripts/bench.sh`.
//!
//! Inside a network namespace of its own, the RTC gate is reached through a TUN device whose
//! packets this process drops at random (`tests/support/lossy.rs`; `netem` is not available
//! here): 0 %, 2 % and 5 % of the packets in each direction, the same seeds for both
//! transports, with 20 ms each way (room Wi-Fi to a nearby gate). Three ways: TCP; UDP as the
//! device sends it (voice discardable, video pieces resent for up to 400 ms); UDP with video
//! discardable too, as the RTM SDKs send one-way quests (`udp_video = "discard"`). The agent (in this process, real GStreamer, 640×360@30 at 800 kbit/s, a key
//! frame every second as RTM does) is in a call; the RTM gate stays on loopback. For 20 s the
//! gate records every `video` quest. A frame counts as shown when it and every frame since its
//! key frame arrived (what a receiver can decode without artefacts; the agent's own receivers
//! do the same); the shown frames are also decoded with GStreamer (OpenH264). Reported per run:
//! shown frames per second, decoded, freezes (a gap between shown frames over 183 ms, WebRTC's
//! definition at 30 fps: max(3 frame times, a frame time + 150 ms)) and the time frozen, and the
//! capture → gate latency of shown frames (p50, p95). Voice: the share of the packets sent
//! that arrived at all, and that arrived within 150 ms of capture (in time for a jitter
//! buffer), and the p95 latency.

#[path = "../tests/support/mod.rs"]
#[allow(unused_imports)]
mod support;

#[path = "common/mod.rs"]
mod common;

use std::time::Duration;

use roomagent::core::CallPhase;
use roomagent::media::relay::VideoUnit;
use support::Agent;
use support::lossy::{FAR, LossyPath};
use support::rtc_gate::{Got, RtcGate};
use support::rtm_gate::Gate;

const UID: i64 = 9001;
const MEMBER: i64 = 42;
const RID: i64 = 555;
const SECONDS: u64 = 20;
const FREEZE_MS: i64 = 183;
const ONE_WAY: Duration = Duration::from_millis(20);
const VOICE_IN_TIME_MS: i64 = 150;

fn config(gate: &Gate, transport: &str) -> String {
    let (transport, video) = match transport {
        "udp-discard" => ("udp", "discard"),
        other => (other, "resend"),
    };
    format!(
        r#"
[device]
id = "room-rtm-loss"
[signaling]
backend = "rtm"
reconnect_min_ms = 50
reconnect_max_ms = 400
[signaling.rtm]
pid = 11000001
uid = {UID}
gate = "{}"
token = "bench-token"
rtc_transport = "{transport}"
udp_video = "{video}"
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
width = 640
height = 360
framerate = 30
video_bitrate_kbps = 800
[log]
level = "error"
"#,
        gate.endpoint()
    )
}

struct Run {
    transport: &'static str,
    loss: f64,
    sent: u64,
    arrived: usize,
    shown: usize,
    decoded: usize,
    freezes: usize,
    frozen_ms: i64,
    worst_ms: i64,
    p50: i64,
    p95: i64,
    packets: (u64, u64),
    voice_sent: u64,
    voice_arrived: usize,
    voice_in_time: usize,
    voice_p95: i64,
}

async fn run(transport: &'static str, loss: f64, seed: u64) -> Run {
    let path = LossyPath::start(0.0, ONE_WAY, seed);
    let gate = Gate::start(None).await;
    let rtc = RtcGate::start_with("0.0.0.0", true).await;
    gate.set_rtc_endpoint(&format!("{FAR}:{}", rtc.addr.port()));
    gate.accept_token(UID, "bench-token");
    gate.room(RID, &[MEMBER], &[MEMBER], MEMBER);
    let mut agent = Agent::start_toml(&config(&gate, transport)).await;
    agent.registered().await;
    gate.wait_login(UID).await;
    gate.invite(UID, RID, MEMBER).await;
    agent.phase(CallPhase::InCall).await;
    rtc.wait_in_room(UID).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    path.set_loss(loss);
    let before = path.counts();
    let since = roomagent::media::relay::unix_ms();
    let counters = |a: &Agent| {
        a.media_now()
            .rtm
            .map_or((0, 0), |r| (r.video_sent, r.voice_sent))
    };
    let sent_before = counters(&agent);
    tokio::time::sleep(Duration::from_secs(SECONDS)).await;
    let sent_after = counters(&agent);
    let (sent, voice_sent) = (sent_after.0 - sent_before.0, sent_after.1 - sent_before.1);
    let until = roomagent::media::relay::unix_ms();
    let after = path.counts();
    agent.stop().await;
    let window = |g: &&Got| g.arrived_ms > since && g.arrived_ms <= until;
    let all = rtc.sent(UID, "video");
    let video: Vec<&Got> = all.iter().filter(window).collect();
    // The chain of each frame back to its key frame may start before the window.
    let shown: Vec<(i64, &Got)> = shown(&all)
        .into_iter()
        .filter(|(at, _)| *at > since && *at <= until)
        .collect();
    let voice_all = rtc.sent(UID, "voice");
    let voice: Vec<&Got> = voice_all.iter().filter(window).collect();
    let mut voice_latency: Vec<i64> = voice
        .iter()
        .map(|g| g.arrived_ms - g.int("timestamp"))
        .collect();
    voice_latency.sort_unstable();
    let voice_in_time = voice_latency
        .iter()
        .filter(|l| **l <= VOICE_IN_TIME_MS)
        .count();
    let voice_p95 = voice_latency
        .get(((voice_latency.len() as f64 - 1.0) * 0.95).round().max(0.0) as usize)
        .copied()
        .unwrap_or(-1);
    let units: Vec<VideoUnit> = shown.iter().map(|(_, g)| g.unit()).collect();
    let decoded = tokio::task::block_in_place(|| support::encoded::decode_h264(&units));
    let mut times: Vec<i64> = shown.iter().map(|(at, _)| *at).collect();
    times.insert(0, since);
    times.push(until);
    let gaps: Vec<i64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    let freezes: Vec<i64> = gaps.iter().copied().filter(|g| *g > FREEZE_MS).collect();
    let mut latency: Vec<i64> = shown
        .iter()
        .map(|(at, g)| at - g.int("timestamp"))
        .collect();
    latency.sort_unstable();
    let pick = |p: f64| {
        latency
            .get(((latency.len() as f64 - 1.0) * p).round().max(0.0) as usize)
            .copied()
            .unwrap_or(-1)
    };
    Run {
        transport,
        loss,
        sent,
        arrived: video.len(),
        shown: shown.len(),
        decoded,
        freezes: freezes.len(),
        frozen_ms: freezes.iter().sum(),
        worst_ms: gaps.iter().copied().max().unwrap_or(0),
        p50: pick(0.5),
        p95: pick(0.95),
        packets: (after.0 - before.0, after.1 - before.1),
        voice_sent,
        voice_arrived: voice.len(),
        voice_in_time,
        voice_p95,
    }
}

/// The frames a receiver shows, with when: in `seq` order, each one whose chain back to its
/// key frame arrived whole, shown once it and every frame before it have arrived (a
/// receiver's reorder buffer; a resent piece makes its frame arrive after later ones).
fn shown(video: &[Got]) -> Vec<(i64, &Got)> {
    let mut by_seq: Vec<&Got> = video.iter().collect();
    by_seq.sort_by_key(|g| g.int("seq"));
    let mut out = Vec::new();
    let mut last: Option<i64> = None;
    let mut chain_ok = false;
    let mut at = i64::MIN;
    for g in by_seq {
        let seq = g.int("seq");
        if g.int("flags") == 1 {
            chain_ok = true;
        } else if last.is_none_or(|l| seq != l + 1) {
            chain_ok = false;
        }
        last = Some(seq);
        if chain_ok {
            at = at.max(g.arrived_ms);
            out.push((at, g));
        }
    }
    out
}

fn main() {
    common::in_own_namespace();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut runs = Vec::new();
    for (i, loss) in [0.0, 0.02, 0.05].into_iter().enumerate() {
        for transport in ["tcp", "udp", "udp-discard"] {
            runs.push(rt.block_on(run(transport, loss, 0x5EED + i as u64)));
        }
    }
    println!();
    println!(
        "RTM video 640x360@30, 800 kbit/s, {SECONDS} s per run, random loss both ways on the media path, {} ms each way",
        ONE_WAY.as_millis()
    );
    println!(
        "{:<11} {:>5} | {:>6} {:>7} {:>6} {:>8} {:>7} | {:>7} {:>9} {:>8} | {:>7} {:>7} | {:>14}",
        "path",
        "loss",
        "sent",
        "arrived",
        "shown",
        "shown/s",
        "decoded",
        "freezes",
        "frozen ms",
        "worst ms",
        "p50 ms",
        "p95 ms",
        "pkts pass/drop"
    );
    println!();
    println!(
        "{:<11} {:>5} | {:>10} {:>12} {:>13} {:>9}",
        "path", "loss", "voice sent", "arrived %", "in 150 ms %", "p95 ms"
    );
    for r in &runs {
        let pct = |n: usize| 100.0 * n as f64 / r.voice_sent.max(1) as f64;
        println!(
            "{:<11} {:>4.0}% | {:>10} {:>11.1}% {:>12.1}% {:>9}",
            r.transport,
            r.loss * 100.0,
            r.voice_sent,
            pct(r.voice_arrived),
            pct(r.voice_in_time),
            r.voice_p95
        );
    }
    println!();
    for r in &runs {
        println!(
            "{:<11} {:>4.0}% | {:>6} {:>7} {:>6} {:>8.1} {:>7} | {:>7} {:>9} {:>8} | {:>7} {:>7} | {:>7}/{:<6}",
            r.transport,
            r.loss * 100.0,
            r.sent,
            r.arrived,
            r.shown,
            r.shown as f64 / SECONDS as f64,
            r.decoded,
            r.freezes,
            r.frozen_ms,
            r.worst_ms,
            r.p50,
            r.p95,
            r.packets.0,
            r.packets.1
        );
        println!(
            "BENCH rtm_loss {} loss={:.0}% shown_fps={:.1} freezes={} frozen_ms={} video_p95_ms={} voice_in_time={:.1}%",
            r.transport,
            r.loss * 100.0,
            r.shown as f64 / SECONDS as f64,
            r.freezes,
            r.frozen_ms,
            r.p95,
            100.0 * r.voice_in_time as f64 / r.voice_sent.max(1) as f64
        );
    }
}
