//! Runs a test inside a network namespace of its own: loopback plus a veth pair that stays
//! inside it, so ICE candidates, WebRTC peers and browsers can only reach addresses this test
//! created (see TESTING.md). The test re-executes itself under `unshare -rn`.

use std::process::Command;

const SETUP: &str = r#"
ip link set lo up
ip link add v0 type veth peer name v1
ip addr add 10.250.0.1/24 dev v0; ip link set v0 up
ip addr add 10.250.1.1/24 dev v1; ip link set v1 up
exec "$@"
"#;

/// Call first in a WebRTC test. Returns `true` inside the namespace (run the test body);
/// returns `false` in the parent after the child passed (and panics with the child's output
/// if it failed).
pub fn isolate(test_name: &str) -> bool {
    if std::env::var_os("ROOMAGENT_NETNS").is_some() {
        return true;
    }
    let exe = std::env::current_exe().expect("test executable");
    let out = Command::new("unshare")
        .args(["-rn", "sh", "-ec", SETUP, "sh"])
        .arg(exe)
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env("ROOMAGENT_NETNS", test_name)
        .output()
        .expect("cannot run unshare (util-linux) to create the test's network namespace");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{test_name} failed inside its network namespace ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    // Numbers the test printed (benchmarks, timings) are worth seeing.
    for line in stdout.lines().filter(|l| l.starts_with("MEASURE")) {
        println!("{line}");
    }
    false
}
