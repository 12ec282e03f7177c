//! A call from headless Chromium to the room whose path from the agent narrows to 300 kbit/s
//! and widens again: traffic shaping inside the test's own network namespace (htb with a tbf
//! leaf on loopback, `netem` is not available), applied only to UDP leaving the agent's media
//! ports (`[media.ice] port_range`), so signaling and Chromium's own video are untouched.
//! Used by `tests/adaptation.rs` (which asserts) and `benches/adaptation.rs` (which prints).

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::browser::Browser;
use super::{Agent, Server, media_toml};

/// The agent's media ports: 40000–40063, one u32 match (`sport 40000 0xffc0`).
pub const PORTS: &str = "40000-40063";
/// The bottleneck.
pub const LIMIT_KBPS: u32 = 300;
/// What the agent sends on an open path.
pub const CEILING_KBPS: u32 = 1500;

fn tc(args: &str) {
    let out = Command::new("sh")
        .args(["-ec", &format!("tc {args}")])
        .output()
        .expect("run tc (iproute2)");
    assert!(
        out.status.success(),
        "tc {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Classes on loopback: 1:10 unlimited (everything by default), 1:30 the bottleneck; the
/// filter that sends the agent's media into 1:30 is added by [`narrow`].
pub fn prepare() {
    // A previous run in this namespace (the benchmark runs twice) leaves its classes.
    let _ = Command::new("tc")
        .args(["qdisc", "del", "dev", "lo", "root"])
        .output();
    tc("qdisc add dev lo root handle 1: htb default 10");
    tc("class add dev lo parent 1: classid 1:10 htb rate 10gbit");
    tc(&format!(
        "class add dev lo parent 1: classid 1:30 htb rate {LIMIT_KBPS}kbit ceil {LIMIT_KBPS}kbit burst 16kbit"
    ));
    // The leaf drops what waited more than 300 ms (a router's queue), instead of blocking
    // the sender as htb alone does.
    tc(&format!(
        "qdisc add dev lo parent 1:30 handle 30: tbf rate {LIMIT_KBPS}kbit burst 16kbit latency 300ms"
    ));
}

/// The path from the agent narrows to [`LIMIT_KBPS`].
pub fn narrow() {
    tc(
        "filter add dev lo parent 1: protocol ip prio 1 u32 match ip protocol 17 0xff match ip sport 40000 0xffc0 flowid 1:30",
    );
}

/// The path widens again.
pub fn widen() {
    tc("filter del dev lo parent 1: prio 1");
}

/// Packets the bottleneck dropped so far.
pub fn dropped() -> u64 {
    let out = Command::new("tc")
        .args(["-s", "qdisc", "show", "dev", "lo"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    // "qdisc tbf 30: ... \n Sent N bytes M pkt (dropped D, ..."
    out.split("qdisc ")
        .filter(|q| q.starts_with("tbf 30:"))
        .filter_map(|q| q.split("dropped ").nth(1))
        .filter_map(|d| d.split(|c: char| !c.is_ascii_digit()).next())
        .filter_map(|d| d.parse::<u64>().ok())
        .sum()
}

/// The agent's configuration: 960x540@30 of incompressible video (snow: the encoder always
/// fills the bitrate it is given, as a busy camera picture does), up to [`CEILING_KBPS`].
pub fn agent_toml(api: &str, adaptive: bool) -> String {
    media_toml(api, "room", "mode = \"always\"\ndelay_ms = 0", "")
        .replace(
            "camera = \"none\"",
            "camera = \"pipeline: videotestsrc is-live=true pattern=snow\"",
        )
        .replace("width = 320\nheight = 180\nframerate = 15\nvideo_bitrate_kbps = 300",
            &format!("width = 960\nheight = 540\nframerate = 30\nvideo_bitrate_kbps = {CEILING_KBPS}\nmin_video_bitrate_kbps = 100\nadaptive_bitrate = {adaptive}"))
        .replace(
            "[log]",
            &format!("[media.ice]\nport_range = \"{PORTS}\"\n\n[log]"),
        )
}

/// One second of what Chromium and the agent report.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Seconds since the call's video was first decoded.
    pub t: f64,
    /// Chromium: frames decoded so far.
    pub frames: u64,
    /// Chromium: freezes so far and their total duration (s).
    pub freezes: u64,
    pub frozen_s: f64,
    /// Chromium: video bytes received so far.
    pub bytes: u64,
    /// Chromium: the frame height it decodes.
    pub height: u64,
    /// The agent: the bitrate adaptation set (kbit/s) and the height it sends.
    pub target_kbps: Option<u32>,
    pub sent_height: Option<u32>,
}

pub fn chromium_video(v: &Value) -> Option<&Value> {
    v.as_object()?.values().next().map(|p| &p["video"])
}

/// A running call: the room server, the agent, Chromium calling it.
pub struct Call {
    pub server: Server,
    pub agent: Agent,
    pub browser: Browser,
    pub started: Instant,
}

impl Call {
    /// Chromium calls the room and decodes its video.
    pub async fn start(adaptive: bool) -> Call {
        prepare();
        let server = Server::start().await;
        let agent = Agent::start_toml(&agent_toml(&server.api(), adaptive)).await;
        let browser = Browser::calling_the_room(&server.handle.page_url()).await;
        browser
            .wait_for(
                "the agent's video decoded in Chromium",
                "window.roomagent.stats()",
                Duration::from_secs(30),
                |v| {
                    chromium_video(v).is_some_and(|v| v["framesDecoded"].as_u64().unwrap_or(0) > 10)
                },
            )
            .await;
        Call {
            server,
            agent,
            browser,
            started: Instant::now(),
        }
    }

    pub async fn sample(&self) -> Sample {
        let v = self.browser.eval("window.roomagent.stats()").await;
        let video = chromium_video(&v).cloned().unwrap_or_default();
        let n = |k: &str| video[k].as_u64().unwrap_or(0);
        let media = self.agent.media_now();
        Sample {
            t: self.started.elapsed().as_secs_f64(),
            frames: n("framesDecoded"),
            freezes: n("freezeCount"),
            frozen_s: video["totalFreezesDuration"].as_f64().unwrap_or(0.0),
            bytes: n("bytesReceived"),
            height: n("frameHeight"),
            target_kbps: media.video_target_kbps,
            sent_height: media.video_sent.map(|l| l.height),
        }
    }

    /// One sample a second for `seconds`.
    pub async fn record(&self, seconds: u32) -> Vec<Sample> {
        let mut out = Vec::new();
        for _ in 0..seconds {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let s = self.sample().await;
            println!("MEASURE {s:?}");
            out.push(s);
        }
        out
    }
}

/// What a stretch of samples shows at the far end.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub seconds: f64,
    pub fps: f64,
    pub freezes: u64,
    pub frozen_s: f64,
    pub kbps: f64,
}

pub fn summary(first: &Sample, samples: &[Sample]) -> Summary {
    let last = samples.last().unwrap_or(first);
    let seconds = (last.t - first.t).max(0.001);
    Summary {
        seconds,
        fps: last.frames.saturating_sub(first.frames) as f64 / seconds,
        freezes: last.freezes.saturating_sub(first.freezes),
        frozen_s: last.frozen_s - first.frozen_s,
        kbps: last.bytes.saturating_sub(first.bytes) as f64 * 8.0 / 1000.0 / seconds,
    }
}
