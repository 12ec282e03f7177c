//! A person in headless Chromium calls the room from the development room server's page:
//! the agent answers by itself, each side decodes the other's video, a host mute from the page
//! mutes the agent, and hanging up returns it to idle. Once with H.264 from Chromium, once with
//! VP8. Each test runs in its own network namespace.

mod support;

use std::time::Duration;

use roomagent::core::CallPhase;
use serde_json::Value;
use support::browser::Browser;
use support::*;

async fn browser_calls_the_room(codec: &str) {
    let server = Server::start().await;
    let mut agent = Agent::answering_room(&server.api()).await;

    let browser =
        Browser::calling_the_room(&format!("{}?codec={codec}", server.handle.page_url())).await;

    // Chromium decodes the agent's video and receives its audio.
    let expr = format!("window.roomagent.stats().then(s => s['{ROOM}'] || null)");
    let stats = browser
        .wait_for(
            "video from the agent decoded in Chromium",
            &expr,
            Duration::from_secs(30),
            |v: &Value| {
                v["video"]["framesDecoded"].as_u64().unwrap_or(0) > 10
                    && v["audio"]["packetsReceived"].as_u64().unwrap_or(0) > 10
            },
        )
        .await;
    println!("MEASURE chromium ({codec}): {stats}");
    assert_eq!(
        stats["video"]["codec"], "video/H264",
        "the agent sends H.264"
    );
    let sent = stats["sentVideoCodec"]
        .as_str()
        .unwrap_or("")
        .to_lowercase();
    assert_eq!(
        sent,
        format!("video/{codec}"),
        "Chromium sends what the page preferred"
    );

    // The agent decodes Chromium's video.
    let s = agent
        .wait_for("Chromium's video decoded by the agent", |s| {
            s.members.iter().any(|m| m.video_in)
        })
        .await;
    assert_eq!(s.call, CallPhase::InCall);
    let mut media = agent.handle.media_stats().unwrap();
    let ok = tokio::time::timeout(
        Duration::from_secs(15),
        media.wait_for(|m| m.sessions.iter().any(|s| s.frames_decoded > 10)),
    )
    .await
    .is_ok();
    let agent_stats = media.borrow().clone();
    assert!(ok, "agent decoded too few frames: {agent_stats:?}");
    let session = &agent_stats.sessions[0];
    assert_eq!(
        session.video_codec_in.as_deref(),
        Some(codec.to_uppercase().as_str()),
        "{agent_stats:?}"
    );
    println!("MEASURE agent ({codec}): {session:?}");

    // A host mute from the page mutes the agent.
    browser.eval("window.roomagent.hostMute()").await;
    let s = agent.wait_for("host mute", |s| s.mic_muted).await;
    assert!(s.muted_by_host);

    // Hanging up in the page returns the agent to idle.
    browser.eval("window.roomagent.hangup()").await;
    agent.phase(CallPhase::Idle).await;
    let mut media = agent.handle.media_stats().unwrap();
    let closed = tokio::time::timeout(
        Duration::from_secs(5),
        media.wait_for(|m| m.sessions.is_empty()),
    )
    .await
    .is_ok();
    assert!(
        closed,
        "media sessions left after hang-up: {:?}",
        *media.borrow()
    );
    drop(browser);
    agent.stop().await;
}

/// Two calls at once on two cores measure the machine, not the agent: one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run(test: &str, codec: &'static str) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    netns::run_isolated(test, browser_calls_the_room(codec));
}

#[test]
fn browser_calls_the_room_chromium_sends_h264() {
    run("browser_calls_the_room_chromium_sends_h264", "h264");
}

#[test]
fn browser_calls_the_room_chromium_sends_vp8() {
    run("browser_calls_the_room_chromium_sends_vp8", "vp8");
}
