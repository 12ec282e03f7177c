//! What the benchmarks measure with: a process's CPU (whole and by thread name) and RSS
//! from `/proc/<pid>`, and a bare `gst-launch-1.0` of the same work, measured the same way.
#![allow(dead_code)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The agent's media settings in every benchmark: the test profile at 720p30, test sources,
/// fake display and speaker.
pub const MEDIA_720P30: &str = r#"[media]
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
"#;

/// `roomagent run --config <config>` as a process of its own, ended (SIGTERM, by its pid, as
/// systemd stops it) when dropped.
pub struct AgentChild(pub std::process::Child);

impl AgentChild {
    pub fn start(config: &std::path::Path) -> AgentChild {
        AgentChild(
            Command::new(env!("CARGO_BIN_EXE_roomagent"))
                .arg("run")
                .arg("--config")
                .arg(config)
                .stdout(Stdio::null())
                .spawn()
                .expect("start roomagent"),
        )
    }

    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for AgentChild {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

/// Re-executes the benchmark inside a network namespace of its own (loopback and a veth pair
/// that stays inside, as the WebRTC tests do) and exits with its status; returns inside it.
pub fn in_own_namespace() {
    if std::env::var_os("ROOMAGENT_NETNS").is_some() {
        return;
    }
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

/// How long each CPU measurement lasts.
pub const CPU_WINDOW: Duration = Duration::from_secs(20);

pub fn ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces): utime is field 14, stime 15.
    let after = stat.rsplit_once(')').map(|(_, a)| a).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

pub fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// USER_HZ on Linux.
pub const HZ: f64 = 100.0;

/// Percent of one core `pid` used over `window`.
pub async fn cpu(pid: u32, window: Duration) -> f64 {
    cpu_by_thread(pid, window).await.0
}

/// Each thread's name (digits dropped, so `compositor448:src` counts as `compositor:src`) and
/// CPU ticks so far.
pub fn thread_ticks(pid: u32) -> Vec<(u64, String, u64)> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|t| {
            let tid: u64 = t.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(t.path().join("stat")).ok()?;
            let (head, after) = stat.rsplit_once(')')?;
            let name: String = head
                .split_once('(')?
                .1
                .chars()
                .filter(|c| !c.is_ascii_digit())
                .collect();
            let f: Vec<&str> = after.split_whitespace().collect();
            let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
            Some((tid, name, ticks))
        })
        .collect()
}

/// Percent of one core `pid` used over `window`, and the same by thread name, largest first.
pub async fn cpu_by_thread(pid: u32, window: Duration) -> (f64, Vec<(String, f64)>) {
    let start = ticks(pid);
    let before = thread_ticks(pid);
    let t = Instant::now();
    tokio::time::sleep(window).await;
    let secs = t.elapsed().as_secs_f64();
    let total = (ticks(pid) - start) as f64 / HZ / secs * 100.0;
    let mut by_name: std::collections::BTreeMap<String, u64> = Default::default();
    for (tid, name, now) in thread_ticks(pid) {
        let was = before
            .iter()
            .find(|(t, _, _)| *t == tid)
            .map_or(0, |(_, _, v)| *v);
        *by_name.entry(name).or_default() += now.saturating_sub(was);
    }
    let mut threads: Vec<(String, f64)> = by_name
        .into_iter()
        .map(|(n, v)| (n, v as f64 / HZ / secs * 100.0))
        .filter(|(_, p)| *p >= 0.5)
        .collect();
    threads.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap());
    (total, threads)
}

pub fn show(threads: &[(String, f64)]) -> String {
    threads
        .iter()
        .map(|(n, p)| format!("{n} {p:.1}%"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs `gst-launch-1.0 args` for `window` after a 2 s warm-up; returns its CPU and RSS.
pub async fn bare(args: &str) -> (f64, f64) {
    let mut child = Command::new("gst-launch-1.0")
        .arg("-q")
        .args(args.split_whitespace())
        .stdout(Stdio::null())
        .spawn()
        .expect("gst-launch-1.0");
    tokio::time::sleep(Duration::from_secs(2)).await;
    if let Ok(Some(status)) = child.try_wait() {
        panic!("the bare pipeline ended ({status}): gst-launch-1.0 {args}");
    }
    let pid = child.id();
    let c = cpu(pid, CPU_WINDOW).await;
    let rss = rss_mib(pid);
    let _ = child.kill();
    let _ = child.wait();
    (c, rss)
}

/// A bare decode of a `width`×`height`@30 stream of `codec` (as a far end sends it), made
/// beforehand in `dir`.
pub fn bare_decode(codec: &str, dir: &std::path::Path, width: u32, height: u32) -> String {
    let (enc, dec) = match codec {
        "vp8" => ("vp8enc deadline=1 target-bitrate=800000", "vp8dec"),
        // The agent's own H.264 decoder (OpenH264), so the ratio compares the same work.
        // (constrained baseline, as Chromium sends it and as OpenH264 takes it).
        _ => (
            "x264enc tune=zerolatency speed-preset=ultrafast bitrate=800 ! video/x-h264,profile=constrained-baseline",
            "openh264dec",
        ),
    };
    let file = dir.join(format!("peer.{codec}.mkv"));
    let made = Command::new("gst-launch-1.0")
        .arg("-q")
        .args(
            format!(
                "videotestsrc num-buffers=900 pattern=ball ! video/x-raw,width={width},height={height},framerate=30/1 ! {enc} ! matroskamux ! filesink location={}",
                file.display()
            )
            .split_whitespace(),
        )
        .status()
        .expect("gst-launch-1.0");
    assert!(made.success(), "cannot make the peer's stream");
    let parse = if codec == "vp8" { "" } else { "h264parse !" };
    format!(
        "filesrc location={} ! matroskademux ! {parse} {dec} ! videoconvert ! fakesink sync=true",
        file.display()
    )
}
