//! Runs a test inside a network namespace of its own: loopback plus a veth pair that stays
//! inside it, so ICE candidates, WebRTC peers and browsers can only reach addresses this test
//! created (see docs/testing.md). The test re-executes itself under `unshare -rn`.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SETUP: &str = r#"
ip link set lo up
ip link add v0 type veth peer name v1
ip addr add 10.250.0.1/24 dev v0; ip link set v0 up
ip addr add 10.250.1.1/24 dev v1; ip link set v1 up
exec "$@"
"#;

/// A test that has not finished after this long is stopped and reported with its output
/// (`ROOMAGENT_TEST_LIMIT_S` raises it for soak runs).
const LIMIT: Duration = Duration::from_secs(240);

fn limit() -> Duration {
    std::env::var("ROOMAGENT_TEST_LIMIT_S")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(LIMIT, Duration::from_secs)
}

/// Runs a WebRTC test's body on a two-thread tokio runtime inside its own network namespace
/// (see [`isolate`]); in the parent it only waits for that child.
pub fn run_isolated(test_name: &str, body: impl std::future::Future<Output = ()>) {
    run_isolated_with(test_name, &[], body)
}

/// [`run_isolated`] with environment variables set for the child from its start (what
/// GStreamer reads once, at its initialisation: GST_PLUGIN_PATH, say).
pub fn run_isolated_with(
    test_name: &str,
    env: &[(&str, String)],
    body: impl std::future::Future<Output = ()>,
) {
    if !isolate_with(test_name, env) {
        return;
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(body);
}

/// Call first in a WebRTC test. Returns `true` inside the namespace (run the test body);
/// returns `false` in the parent after the child passed (and panics with the child's output
/// if it failed or hung).
pub fn isolate(test_name: &str) -> bool {
    isolate_with(test_name, &[])
}

/// [`isolate`], the child started with `env` set.
pub fn isolate_with(test_name: &str, env: &[(&str, String)]) -> bool {
    if std::env::var_os("ROOMAGENT_NETNS").is_some() {
        return true;
    }
    let exe = std::env::current_exe().expect("test executable");
    let mut child = Command::new("unshare")
        .args(["-rn", "sh", "-ec", SETUP, "sh"])
        .arg(exe)
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("ROOMAGENT_NETNS", test_name)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run unshare (util-linux) to create the test's network namespace");
    let collect = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = r.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = collect(Box::new(child.stdout.take().expect("stdout")));
    let err = collect(Box::new(child.stderr.take().expect("stderr")));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the test") {
            break Some(status);
        }
        if started.elapsed() > limit() {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    let passed = status.is_some_and(|s| s.success()) && stdout.contains("1 passed");
    assert!(
        passed,
        "{test_name} {} inside its network namespace:\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        match status {
            Some(s) => format!("failed ({s})"),
            None => format!("did not finish within {:?} and was stopped", limit()),
        }
    );
    // Numbers the test printed (benchmarks, timings) are worth seeing.
    for line in stdout.lines().filter(|l| l.contains("MEASURE")) {
        println!("{line}");
    }
    false
}
