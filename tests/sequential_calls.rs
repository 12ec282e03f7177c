//! Fifty calls in a row between two agents in one process: after the last hang-up, threads
//! and file descriptors are back at their idle values (nothing leaks per call). Prints RSS.
//!
//! `SOAK_CALLS=1000` (see `scripts/soak.sh`) makes it a soak run outside CI, printing RSS,
//! threads and file descriptors every 100 calls.

mod support;

use std::time::Duration;

use roomagent::core::{CallPhase, Command};
use support::*;

/// Calls in a CI run.
const CALLS: usize = 50;

fn calls() -> usize {
    std::env::var("SOAK_CALLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(CALLS)
        .max(2)
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

async fn video_in(x: &mut Agent, other: &Agent, who: &str) {
    let ok = tokio::time::timeout(
        Duration::from_secs(10),
        x.state.wait_for(|s| s.members.iter().any(|m| m.video_in)),
    )
    .await
    .is_ok();
    assert!(
        ok,
        "no video at {who}: state {:?}\nits media {:?}\nthe other's media {:?}",
        x.now(),
        x.handle.media_stats().map(|m| m.borrow().clone()),
        other.handle.media_stats().map(|m| m.borrow().clone()),
    );
}

async fn one_call(a: &mut Agent, b: &mut Agent) {
    a.handle
        .command(Command::Dial {
            user: roomagent::core::UserId(1002),
        })
        .await
        .unwrap();
    video_in(a, b, "a").await;
    video_in(b, a, "b").await;
    a.handle.command(Command::Hangup).await.unwrap();
    a.phase(CallPhase::Idle).await;
    b.phase(CallPhase::Idle).await;
}

/// Waits (up to 15 s) until the counts settle at or below `want`; returns the last reading.
async fn settle(want: (usize, usize)) -> (usize, usize) {
    let mut now = (threads(), fds());
    for _ in 0..150 {
        if now.0 <= want.0 && now.1 <= want.1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        now = (threads(), fds());
    }
    now
}

#[test]
fn fifty_sequential_calls_leak_no_threads_or_file_descriptors() {
    netns::run_isolated(
        "fifty_sequential_calls_leak_no_threads_or_file_descriptors",
        async {
            let server = Server::start().await;
            let mut a =
                Agent::start_toml(&media_toml(&server.api(), "room", "mode = \"never\"", "")).await;
            let mut b = Agent::start_toml(&media_toml(
                &server.api(),
                "room2",
                "mode = \"always\"\ndelay_ms = 0",
                "",
            ))
            .await;
            a.registered().await;
            b.registered().await;
            let rss_start = rss_kib();
            // The first call warms up what GStreamer keeps for the process (plugin registry,
            // type classes, thread pools); idle is measured after it.
            one_call(&mut a, &mut b).await;
            tokio::time::sleep(Duration::from_secs(2)).await;
            let idle = (threads(), fds());
            let rss_idle = rss_kib();
            let started = std::time::Instant::now();
            let calls = calls();
            let every = if calls > 100 { 100 } else { 10 };
            for i in 1..calls {
                one_call(&mut a, &mut b).await;
                // The 10th call too: the soak compares the last one with it.
                if (i + 1) % every == 0 || i + 1 == 10 {
                    println!(
                        "MEASURE after call {}: threads {} fds {} rss {} KiB",
                        i + 1,
                        threads(),
                        fds(),
                        rss_kib()
                    );
                }
            }
            let elapsed = started.elapsed();
            let after = settle(idle).await;
            let rss_end = rss_kib();
            println!(
                "MEASURE {calls} calls in {elapsed:?}; idle threads/fds {idle:?}, after {after:?}; RSS start {rss_start} KiB, idle after first call {rss_idle} KiB, after last {rss_end} KiB"
            );
            // Idle thread-pool workers may also have exited meanwhile: at most idle, never more.
            assert!(
                after.0 <= idle.0,
                "threads leaked: idle {idle:?}, after {after:?}"
            );
            assert!(
                after.1 <= idle.1,
                "file descriptors leaked: idle {idle:?}, after {after:?}"
            );
            a.stop().await;
            b.stop().await;
        },
    );
}
