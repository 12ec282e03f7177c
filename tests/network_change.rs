//! The network under a call changes: a person in headless Chromium is in a call with the room
//! when the path between them is cut for several seconds (then restored), or when both
//! machines' addresses change. The agent notices that nothing arrives any more, starts a fresh
//! session (new ICE credentials and candidates: its ICE restart), and the video flows again both
//! ways while the call itself never ends. Each test runs in its own network namespace; the cut
//! and the address change are made there with `ip`.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use roomagent::core::{AgentState, CallPhase, MediaState};
use serde_json::Value;
use support::browser::Browser;
use support::*;

fn ip(args: &str) {
    let out = Command::new("sh")
        .args(["-ec", &format!("ip {args}")])
        .output()
        .expect("run ip");
    assert!(
        out.status.success(),
        "ip {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Blackholes every path between the addresses of the namespace's veth pair (traffic between
/// two local addresses normally short-cuts through the `local` table, so that table is moved
/// behind the blackhole rule first).
fn cut() {
    ip("rule add pref 100 lookup local");
    ip("rule del pref 0");
    ip("rule add pref 10 to 10.250.0.0/16 blackhole");
}

fn restore() {
    ip("rule del pref 10");
}

/// Both ends of the veth pair get new addresses: every candidate pair of the call is gone.
fn change_addresses() {
    ip("addr flush dev v0");
    ip("addr flush dev v1");
    ip("addr add 10.250.2.1/24 dev v0");
    ip("addr add 10.250.3.1/24 dev v1");
}

fn member(s: &AgentState) -> Option<&roomagent::core::MemberState> {
    s.members.first()
}

fn media_flowing(s: &AgentState) -> bool {
    member(s).is_some_and(|m| m.media == MediaState::Connected && m.video_in)
}

fn chromium_stats() -> String {
    format!("window.roomagent.stats().then(s => s['{ROOM}'] || null)")
}

fn chromium_decodes(v: &Value, made_after: f64) -> bool {
    v["created"].as_f64().unwrap_or(0.0) > made_after
        && v["video"]["framesDecoded"].as_u64().unwrap_or(0) > 10
        && v["audio"]["packetsReceived"].as_u64().unwrap_or(0) > 10
}

async fn agent_decodes(agent: &Agent, limit: Duration) -> bool {
    let mut media = agent.handle.media_stats().unwrap();
    tokio::time::timeout(
        limit,
        media.wait_for(|m| m.sessions.iter().any(|s| s.frames_decoded > 10)),
    )
    .await
    .is_ok()
}

#[derive(Clone, Copy)]
enum Change {
    /// The path is cut for this long, then restored.
    Cut(Duration),
    /// The addresses change (and stay changed).
    Addresses,
}

async fn the_call_survives(change: Change) {
    // Only IPv4 on the veth pair, so that no IPv6 link-local pair outlives the change.
    ip("-6 addr flush dev v0");
    ip("-6 addr flush dev v1");
    let server = Server::start().await;
    let mut agent = Agent::answering_room(&server.api()).await;
    let browser = Browser::calling_the_room(&server.handle.page_url()).await;
    let before = browser
        .wait_for(
            "video from the agent decoded in Chromium",
            &chromium_stats(),
            Duration::from_secs(30),
            |v| chromium_decodes(v, 0.0),
        )
        .await;
    agent
        .wait_within(
            "Chromium's video at the agent",
            Duration::from_secs(15),
            media_flowing,
        )
        .await;
    assert!(agent_decodes(&agent, Duration::from_secs(15)).await);

    // Whatever happens to the network, the call must not end.
    let mut phases = agent.state.clone();
    let watcher = tokio::spawn(async move {
        let mut left = None;
        while phases.changed().await.is_ok() {
            let p = phases.borrow().call;
            if p != CallPhase::InCall && left.is_none() {
                left = Some(p);
            }
        }
        left
    });

    let now_ms = browser.eval("Date.now()").await.as_f64().unwrap();
    let changed = Instant::now();
    match change {
        Change::Cut(_) => cut(),
        Change::Addresses => change_addresses(),
    }
    // The dashboard sees the participant's media go (the agent noticed the silence).
    let s = agent
        .wait_within("the lost path noticed", Duration::from_secs(15), |s| {
            !media_flowing(s)
        })
        .await;
    let noticed = changed.elapsed();
    assert_eq!(s.call, CallPhase::InCall);
    if let Change::Cut(d) = change {
        tokio::time::sleep(d.saturating_sub(changed.elapsed())).await;
        restore();
    }
    let restored = Instant::now();

    // Media comes back both ways on a fresh session, without anyone calling again.
    let after = browser
        .wait_for(
            "video from the agent decoded in Chromium again",
            &chromium_stats(),
            Duration::from_secs(60),
            |v| chromium_decodes(v, now_ms),
        )
        .await;
    let chromium_back = restored.elapsed();
    let s = agent
        .wait_within(
            "Chromium's video at the agent again",
            Duration::from_secs(30),
            media_flowing,
        )
        .await;
    assert!(
        agent_decodes(&agent, Duration::from_secs(15)).await,
        "the agent decodes Chromium's video again: {:?}",
        *agent.handle.media_stats().unwrap().borrow()
    );
    let agent_back = restored.elapsed();
    assert_eq!(s.call, CallPhase::InCall);
    assert_eq!(s.members.len(), 1, "{s:#?}");
    println!(
        "MEASURE {}: silence noticed after {:.1} s; after the path was back, Chromium decoded again in {:.1} s, the agent in {:.1} s",
        match change {
            Change::Cut(d) => format!("path cut for {} s", d.as_secs()),
            Change::Addresses => "addresses changed".into(),
        },
        noticed.as_secs_f32(),
        chromium_back.as_secs_f32(),
        agent_back.as_secs_f32()
    );
    println!("before: {before}\nafter: {after}");

    browser.eval("window.roomagent.hangup()").await;
    agent.phase(CallPhase::Idle).await;
    drop(browser);
    agent.stop().await;
    let left = watcher.await.unwrap();
    assert!(
        matches!(left, Some(CallPhase::Idle)),
        "the call left InCall before the hang-up: {left:?}"
    );
}

/// Two calls at once on two cores measure the machine, not the agent: one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run(test: &str, change: Change) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    netns::run_isolated(test, the_call_survives(change));
}

#[test]
fn media_comes_back_after_the_path_is_cut_for_eight_seconds() {
    run(
        "media_comes_back_after_the_path_is_cut_for_eight_seconds",
        Change::Cut(Duration::from_secs(8)),
    );
}

#[test]
fn media_comes_back_after_both_addresses_change() {
    run(
        "media_comes_back_after_both_addresses_change",
        Change::Addresses,
    );
}
