//! Quality layers (the SDK's `switchVideoBySim`): two Chromium pages watch the room device in
//! a room it was told to join, and each asks it for a layer (`media/quality`). What each page
//! decodes is read from its own `getStats()`:
//!
//! * a page asking for the small layer while the other watches the large one gets a picture a
//!   quarter of the size (from a second, small encode), and the other keeps the full size;
//! * when nobody watches the large layer any more, the single main encode is scaled down to the
//!   largest layer watched, and the smaller one keeps its own encode;
//! * when both ask for large again, the extra encode stops and both get the full size;
//! * all on the same peer connections (no renegotiation).
//!
//! Runs in its own network namespace.

mod support;

use std::time::Duration;

use roomagent::core::{CallPhase, Command, RoomId};
use roomagent::media::MediaStats;
use serde_json::Value;
use support::browser::Browser;
use support::*;

/// The room the agent is told to join (the server makes it on the first entry).
const MEETING: i64 = 4711;
/// What the agent sends at the large layer.
const HEIGHT: u64 = 360;

fn agent_toml(api: &str) -> String {
    media_toml(api, "room", "mode = \"always\"\ndelay_ms = 0", "")
        .replace(
            "width = 320\nheight = 180\nframerate = 15\nvideo_bitrate_kbps = 300",
            "width = 640\nheight = 360\nframerate = 15\nvideo_bitrate_kbps = 800",
        )
        .replace(
            "camera = \"none\"",
            "camera = \"pipeline: videotestsrc is-live=true pattern=ball\"",
        )
}

/// A page logged in as `name` that joined the meeting.
async fn viewer(url: &str, name: &str) -> Browser {
    let b = Browser::start().await;
    b.goto(url).await;
    b.eval(&format!("window.roomagent.login('{name}', '{name}')"))
        .await;
    b.eval(&format!("window.roomagent.join({MEETING})")).await;
    b
}

/// What a page decodes of the room device's video: (height, frames decoded, peer created at).
async fn seen(b: &Browser) -> (u64, u64, u64) {
    let s = b.eval("window.roomagent.stats()").await;
    let p = &s[ROOM.to_string()];
    let v = &p["video"];
    (
        v["frameHeight"].as_u64().unwrap_or(0),
        v["framesDecoded"].as_u64().unwrap_or(0),
        p["created"].as_u64().unwrap_or(0),
    )
}

/// Waits until the page decodes the room device's video at `height`, still decoding.
async fn wait_height(b: &Browser, who: &str, height: u64, limit: Duration) -> Duration {
    let started = tokio::time::Instant::now();
    let expr = format!("window.roomagent.stats().then(s => s['{ROOM}'] && s['{ROOM}'].video)");
    b.wait_for(
        &format!("{who} to decode the room's video at height {height}"),
        &expr,
        limit,
        |v: &Value| v["frameHeight"].as_u64() == Some(height),
    )
    .await;
    let took = started.elapsed();
    // Still moving at that size.
    let (_, before, _) = seen(b).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (h, after, _) = seen(b).await;
    assert_eq!(h, height, "{who} left height {height}");
    assert!(
        after >= before + 5,
        "{who} stopped decoding at height {height}: {before} → {after} frames in 1.5 s"
    );
    took
}

/// The agent's numbers for the session with the page logged in as `user`.
fn session(stats: &MediaStats, user: i64) -> roomagent::media::SessionStats {
    stats
        .sessions
        .iter()
        .find(|s| s.peer.0 == user)
        .cloned()
        .unwrap_or_else(|| panic!("no session with {user}: {stats:#?}"))
}

async fn user_id(b: &Browser) -> i64 {
    b.eval("window.roomagent.state().userId")
        .await
        .as_i64()
        .expect("logged in")
}

#[test]
fn each_viewer_gets_the_quality_layer_it_asks_for() {
    netns::run_isolated("each_viewer_gets_the_quality_layer_it_asks_for", async {
        let server = Server::start().await;
        let mut agent = Agent::start_toml(&agent_toml(&server.api())).await;
        agent.registered().await;
        agent
            .handle
            .command(Command::Join {
                room: RoomId(MEETING),
            })
            .await
            .unwrap();
        agent.phase(CallPhase::InCall).await;

        let url = server.handle.page_url();
        let alice = viewer(&url, "alice").await;
        wait_height(&alice, "alice", HEIGHT, Duration::from_secs(30)).await;
        let bob = viewer(&url, "bob").await;
        wait_height(&bob, "bob", HEIGHT, Duration::from_secs(30)).await;
        let (a_id, b_id) = (user_id(&alice).await, user_id(&bob).await);
        let (_, _, alice_peer) = seen(&alice).await;
        let (_, _, bob_peer) = seen(&bob).await;

        // Alice asks the room device (only it: the SDK's per-video call) for the small layer.
        alice
            .eval(&format!(
                "window.roomagent.switchVideoSimByDom('video_{ROOM}', 0)"
            ))
            .await;
        let took = wait_height(&alice, "alice", HEIGHT / 4, Duration::from_secs(10)).await;
        println!(
            "MEASURE small layer at alice {:.2} s after she asked",
            took.as_secs_f64()
        );
        let (h, _, _) = seen(&bob).await;
        assert_eq!(h, HEIGHT, "bob's picture changed with alice's request");
        let stats = agent
            .stats_until("alice served by an encode of her own", |m| {
                m.sessions
                    .iter()
                    .any(|s| s.peer.0 == a_id && s.layer_encode)
            })
            .await;
        let (a, b) = (session(&stats, a_id), session(&stats, b_id));
        assert_eq!(a.quality_layer, Some(0));
        assert_eq!(a.video_sent.map(|l| (l.height, l.framerate)), Some((90, 7)));
        assert_eq!(b.quality_layer, None);
        assert!(!b.layer_encode);
        assert_eq!(b.video_sent.map(|l| l.height), Some(HEIGHT as u32));

        // Bob asks for the medium layer: nobody watches the large one, so the main encode is
        // scaled to medium for him; alice keeps her small encode.
        bob.eval("window.roomagent.switchVideoBySim(1)").await;
        wait_height(&bob, "bob", HEIGHT / 2, Duration::from_secs(10)).await;
        let (h, _, _) = seen(&alice).await;
        assert_eq!(
            h,
            HEIGHT / 4,
            "alice's small layer changed with bob's request"
        );
        let stats = agent
            .stats_until("bob on the scaled main encode", |m| {
                m.video_sent.is_some_and(|l| l.height == HEIGHT as u32 / 2)
            })
            .await;
        assert!(!session(&stats, b_id).layer_encode);
        assert!(session(&stats, a_id).layer_encode);

        // Alice goes back to large: the main encode is full size again for her, and bob's
        // medium layer gets an encode of its own.
        alice.eval("window.roomagent.switchVideoBySim(2)").await;
        wait_height(&alice, "alice", HEIGHT, Duration::from_secs(10)).await;
        let (h, _, _) = seen(&bob).await;
        assert_eq!(h, HEIGHT / 2, "bob lost his medium layer");
        let stats = agent
            .stats_until("bob on an encode of his own", |m| {
                m.sessions
                    .iter()
                    .any(|s| s.peer.0 == b_id && s.layer_encode)
            })
            .await;
        assert!(!session(&stats, a_id).layer_encode);

        // Both large: one encode again.
        bob.eval("window.roomagent.switchVideoBySim(2)").await;
        wait_height(&bob, "bob", HEIGHT, Duration::from_secs(10)).await;
        let stats = agent
            .stats_until("one encode for both", |m| {
                m.sessions.iter().all(|s| !s.layer_encode) && m.sessions.len() >= 2
            })
            .await;
        assert_eq!(session(&stats, b_id).quality_layer, Some(2));

        // A viewer flipping layers as fast as it can send: the device follows at its own pace
        // (one change a second) and ends on the last request.
        alice
            .eval(&format!(
                "(async () => {{ for (let i = 0; i < 120; i++) window.roomagent.switchVideoSimByDom('video_{ROOM}', i % 3); window.roomagent.switchVideoSimByDom('video_{ROOM}', 1); }})()"
            ))
            .await;
        wait_height(&alice, "alice", HEIGHT / 2, Duration::from_secs(15)).await;
        let (h, _, _) = seen(&bob).await;
        assert_eq!(h, HEIGHT, "bob's picture changed with alice's requests");

        // Nothing was renegotiated: the same peer connections all along.
        assert_eq!(seen(&alice).await.2, alice_peer);
        assert_eq!(seen(&bob).await.2, bob_peer);
        let state = agent.now();
        assert_eq!(state.call, CallPhase::InCall);
    });
}
