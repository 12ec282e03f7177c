//! Media benchmark (prints numbers; asserts nothing). Run with `scripts/bench.sh`.
//!
//! The agent runs as its own process (`roomagent run`, the room server in this one) and is
//! measured from `/proc/<pid>`; Chromium over WebDriver is the far end. In one run, side by
//! side:
//! * idle CPU and RSS (registered, no call);
//! * invite → first frame decoded in Chromium, over 20 calls (p50, p90);
//! * a 720p30 call with Chromium receiving only, against `gst-launch-1.0` encoding the same
//!   video and audio bare (videotestsrc 1280×720@30 → x264enc as the test profile → rtph264pay,
//!   audiotestsrc → opusenc 32 kb/s → rtpopuspay), measured right after it: the ratio;
//! * the same with Chromium sending 640×360 video and audio, against the bare encode plus a
//!   bare decode of a 640×360@30 stream of the codec Chromium sent: the ratio;
//! * RSS in each call, and each call's CPU by thread name (GStreamer names its streaming
//!   threads after their element: where the cost beside the encoder is);
//! * time from the room server's return to the agent's re-registration, default backoff.
//!
//! Everything runs inside a network namespace of its own (the binary re-executes itself
//! under `unshare -rn`), like the WebRTC tests.

#[path = "../tests/support/mod.rs"]
#[allow(unused_imports)]
mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use support::browser::Browser;
use support::*;

#[path = "common/mod.rs"]
mod common;

const CALLS: usize = 20;

/// `BENCH_QUICK=1`: 3 first-frame calls instead of 20, no reconnect measurement (for
/// profiling rounds; the numbers quoted in notes come from full runs).
fn quick() -> bool {
    std::env::var_os("BENCH_QUICK").is_some()
}

/// `BENCH_PERF=<dir>`: records `perf` samples of the agent during a call's CPU window into
/// `<dir>/<name>.data` (read with `perf report -i … --sort comm,dso,sym`). Stopped on drop.
struct Perf(Option<Child>);

fn perf(pid: u32, name: &str) -> Perf {
    let Some(dir) = std::env::var_os("BENCH_PERF") else {
        return Perf(None);
    };
    let out = std::path::Path::new(&dir).join(format!("{name}.data"));
    let child = Command::new("perf")
        .args([
            "record",
            "-q",
            "-F",
            "499",
            "-g",
            "-p",
            &pid.to_string(),
            "-o",
        ])
        .arg(out)
        .stdout(Stdio::null())
        .spawn()
        .ok();
    Perf(child)
}

/// With `BENCH_PERF`, copies the agent's `/proc/<pid>/smaps` to `<dir>/<name>.smaps`.
fn smaps(pid: u32, name: &str) {
    if let Some(dir) = std::env::var_os("BENCH_PERF") {
        let _ = std::fs::copy(
            format!("/proc/{pid}/smaps"),
            std::path::Path::new(&dir).join(format!("{name}.smaps")),
        );
    }
}

impl Drop for Perf {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            // Our own child: SIGINT makes perf write its file and end.
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
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
{MEDIA_720P30}
[log]
level = "{level}"
"#,
        level = std::env::var("BENCH_LOG").unwrap_or_else(|_| "warn".into())
    )
}

/// `roomagent run` as a process of its own.
struct AgentProcess {
    child: AgentChild,
}

/// A scratch directory of this run.
fn scratch() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("roomagent-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl AgentProcess {
    async fn start(server: &Server) -> AgentProcess {
        let path = scratch().join("config.toml");
        std::fs::write(&path, agent_config(&server.api(), "")).unwrap();
        let agent = AgentProcess {
            child: AgentChild::start(&path),
        };
        agent
            .wait_room(server, "registration", |o| o.is_some())
            .await;
        agent
    }

    fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Waits until the agent's entry in the server's online list satisfies `pred`.
    async fn wait_room(
        &self,
        server: &Server,
        what: &str,
        pred: impl Fn(Option<&roomagent::room_server::hub::Online>) -> bool,
    ) {
        let t = Instant::now();
        loop {
            let online = server.handle.online();
            if pred(online.iter().find(|o| o.id == ROOM)) {
                return;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "agent: no {what} in 30 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn chromium_stats() -> String {
    format!("window.roomagent.stats().then(s => s['{ROOM}'] || null)")
}

async fn page(server: &Server, query: &str) -> Browser {
    let browser = Browser::start().await;
    browser
        .goto(&format!("{}{query}", server.handle.page_url()))
        .await;
    browser
        .eval("window.roomagent.login('alice', 'alice')")
        .await;
    browser
}

/// Dials the agent from the page and waits until Chromium decoded `frames` of its video;
/// returns the time from the dial.
async fn call(browser: &Browser, frames: u64) -> Duration {
    let t0 = Instant::now();
    browser
        .eval(&format!("window.roomagent.dial({ROOM})"))
        .await;
    loop {
        let v: Value = browser.eval(&chromium_stats()).await;
        if v["video"]["framesDecoded"].as_u64().unwrap_or(0) >= frames {
            return t0.elapsed();
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "no frame in 30 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn hang_up(browser: &Browser, agent: &AgentProcess, server: &Server) {
    browser.eval("window.roomagent.hangup()").await;
    agent
        .wait_room(server, "hang-up", |o| {
            o.is_some_and(|o| o.room_id.is_none())
        })
        .await;
}

/// The test profile's encode of 720p30 video and 32 kb/s Opus, to RTP, bare.
const BARE_ENCODE: &str = "videotestsrc is-live=true pattern=smpte ! video/x-raw,width=1280,height=720,framerate=30/1 \
    ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=60 bitrate=1500 \
    ! video/x-h264,profile=constrained-baseline ! rtph264pay ! fakesink \
    audiotestsrc is-live=true wave=sine ! audio/x-raw,rate=48000,channels=1 ! opusenc bitrate=32000 \
    ! rtpopuspay ! fakesink";

async fn browser_calls() {
    let server = Server::start().await;
    let agent = AgentProcess::start(&server).await;
    let pid = agent.pid();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_cpu = cpu(pid, Duration::from_secs(10)).await;
    let rss_idle = rss_mib(pid);
    smaps(pid, "idle");
    println!(
        "BENCH agent idle (registered, no call): CPU {idle_cpu:.2}% of one core, RSS {rss_idle:.0} MiB"
    );

    // First frame, Chromium receiving only.
    let browser = page(&server, "?send=none").await;
    let mut first_frame = Vec::new();
    let calls = if quick() { 3 } else { CALLS };
    for _ in 0..calls {
        first_frame.push(call(&browser, 1).await.as_secs_f64() * 1000.0);
        hang_up(&browser, &agent, &server).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    first_frame.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "BENCH invite -> first frame decoded in Chromium over {calls} calls (answer delay 0): p50 {:.0} ms, p90 {:.0} ms (min {:.0}, max {:.0})",
        percentile(&first_frame, 0.5),
        percentile(&first_frame, 0.9),
        first_frame[0],
        first_frame[first_frame.len() - 1]
    );

    // A 720p30 call, Chromium receiving only; then the bare encode.
    call(&browser, 30).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let profile = perf(pid, "receive-only");
    let (recv_cpu, recv_threads) = cpu_by_thread(pid, CPU_WINDOW).await;
    drop(profile);
    let rss_recv = rss_mib(pid);
    smaps(pid, "receive-only");
    hang_up(&browser, &agent, &server).await;
    drop(browser);
    let (bare_cpu, bare_rss) = bare(BARE_ENCODE).await;
    println!(
        "BENCH 720p30 call, Chromium receiving only: agent {recv_cpu:.1}% of one core, RSS {rss_recv:.0} MiB; bare encode {bare_cpu:.1}%, RSS {bare_rss:.0} MiB; ratio {:.2}x (goal <= 1.15x)",
        recv_cpu / bare_cpu
    );
    println!("BENCH   by thread (receive only): {}", show(&recv_threads));

    // The same with Chromium sending 640x360 video and audio; then encode + decode bare.
    let browser = page(&server, "").await;
    call(&browser, 30).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let profile = perf(pid, "two-way");
    let (two_cpu, two_threads) = cpu_by_thread(pid, CPU_WINDOW).await;
    drop(profile);
    let rss_two = rss_mib(pid);
    smaps(pid, "two-way");
    let v: Value = browser.eval(&chromium_stats()).await;
    let codec = v["sentVideoCodec"]
        .as_str()
        .unwrap_or("video/vp8")
        .trim_start_matches("video/")
        .to_lowercase();
    hang_up(&browser, &agent, &server).await;
    drop(browser);
    let decode = bare_decode(&codec, &scratch(), 640, 360);
    let (bare2_cpu, bare2_rss) = bare(&format!("{BARE_ENCODE} {decode}")).await;
    println!(
        "BENCH 720p30 call, Chromium also sending 640x360 {codec} + Opus: agent {two_cpu:.1}% of one core, RSS {rss_two:.0} MiB; bare encode + decode {bare2_cpu:.1}%, RSS {bare2_rss:.0} MiB; ratio {:.2}x (goal <= 1.30x)",
        two_cpu / bare2_cpu
    );
    println!("BENCH   by thread (two-way): {}", show(&two_threads));
    tokio::time::sleep(Duration::from_secs(2)).await;
    smaps(pid, "idle-after");
    println!(
        "BENCH agent RSS: idle {rss_idle:.0} MiB (goal <= 30), receive-only call {rss_recv:.0} MiB, two-way call {rss_two:.0} MiB (goal <= 80), idle again after {} calls {:.0} MiB",
        calls + 2,
        rss_mib(pid)
    );
    drop(agent);
    let _ = std::fs::remove_dir_all(scratch());
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
    common::in_own_namespace();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if !quick() {
        rt.block_on(reconnect());
    }
    rt.block_on(browser_calls());
}
