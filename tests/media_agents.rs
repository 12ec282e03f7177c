//! Two agents call each other with real GStreamer media; frames are verified at both ends,
//! also while the room server is away mid-call and after it came back. Runs in its own network
//! namespace.

mod support;

use std::time::Duration;

use roomagent::core::{CallPhase, Command};
use support::*;

const ROOM2: i64 = 1002;

/// Agent a ("room") dials agent b ("room2", answering at once; its configuration passed
/// through `b_config`); returns them once each has the other's video.
async fn a_calls_b(server: &Server, b_config: impl Fn(String) -> String) -> (Agent, Agent) {
    let mut a = Agent::start_toml(&media_toml(&server.api(), "room", "mode = \"never\"", "")).await;
    let b_toml = media_toml(
        &server.api(),
        "room2",
        "mode = \"always\"\ndelay_ms = 0",
        "",
    );
    let mut b = Agent::start_toml(&b_config(b_toml)).await;
    a.registered().await;
    b.registered().await;
    a.handle
        .command(Command::Dial {
            user: roomagent::core::UserId(ROOM2),
        })
        .await
        .unwrap();
    let sa = a
        .wait_for("a sees b's video", |s| s.members.iter().any(|m| m.video_in))
        .await;
    let sb = b
        .wait_for("b sees a's video", |s| s.members.iter().any(|m| m.video_in))
        .await;
    assert_eq!(sa.call, CallPhase::InCall);
    assert_eq!(sb.call, CallPhase::InCall);
    (a, b)
}

/// Waits up to 15 s until `agent`'s media statistics satisfy `pred`; returns them.
#[test]
fn agent_to_agent_call_decodes_video_at_both_ends() {
    netns::run_isolated("agent_to_agent_call_decodes_video_at_both_ends", async {
        let server = Server::start().await;
        let (mut a, mut b) = a_calls_b(&server, |t| t).await;
        // Frames keep coming: wait for at least 15 decoded at each end.
        for (who, agent) in [("a", &a), ("b", &b)] {
            let st = agent
                .stats_until(who, |st| st.sessions.iter().any(|s| s.frames_decoded >= 15))
                .await;
            println!("MEASURE {who}: {:?}", st.sessions);
        }

        // The room server goes away mid-call: the media between the agents does not need it.
        let decoded = |agent: &Agent| {
            agent
                .media_now()
                .sessions
                .iter()
                .map(|s| s.frames_decoded)
                .sum::<u64>()
        };
        let addr = server.stop().await;
        a.wait_for("a notices the server is gone", |s| !s.registered)
            .await;
        b.wait_for("b notices the server is gone", |s| !s.registered)
            .await;
        let (fa, fb) = (decoded(&a), decoded(&b));
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (ga, gb) = (decoded(&a) - fa, decoded(&b) - fb);
        assert!(
            ga >= 15 && gb >= 15,
            "frames decoded during the outage: a {ga}, b {gb}"
        );
        assert_eq!(a.now().call, CallPhase::InCall);
        assert_eq!(b.now().call, CallPhase::InCall);
        let back = std::time::Instant::now();
        let _server = Server::start_on(addr).await;
        a.wait_within(
            "a re-registered and back in the room",
            Duration::from_secs(30),
            |s| s.registered && s.call == CallPhase::InCall && s.members.len() == 1,
        )
        .await;
        b.wait_within(
            "b re-registered and back in the room",
            Duration::from_secs(30),
            |s| s.registered && s.call == CallPhase::InCall && s.members.len() == 1,
        )
        .await;
        let reentered = back.elapsed();
        let (fa, fb) = (decoded(&a), decoded(&b));
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(
            decoded(&a) > fa + 10 && decoded(&b) > fb + 10,
            "media after the server came back"
        );
        println!(
            "MEASURE room server down 3 s mid-call: frames decoded meanwhile a {ga}, b {gb}; both back in the room {:.1} s after it returned",
            reentered.as_secs_f32()
        );

        a.handle.command(Command::Hangup).await.unwrap();
        a.phase(CallPhase::Idle).await;
        b.phase(CallPhase::Idle).await;
        a.stop().await;
        b.stop().await;
    });
}

/// A room device without display and speaker (a camera-only box): it receives the far end's
/// video and counts its frames, decodes nothing, and the far end still gets its picture.
#[test]
fn headless_agent_counts_remote_frames_without_decoding_them() {
    netns::run_isolated(
        "headless_agent_counts_remote_frames_without_decoding_them",
        async {
            let server = Server::start().await;
            let (mut a, mut b) = a_calls_b(&server, |t| {
                let t = t.replace(
                    "display = \"fakesink\"\nspeaker = \"fakesink\"",
                    "display = \"none\"\nspeaker = \"none\"",
                );
                assert!(t.contains("display = \"none\""));
                t
            })
            .await;
            let st = b
                .stats_until("b", |st| {
                    st.sessions.iter().any(|s| s.frames_received >= 15)
                })
                .await;
            assert!(
                st.sessions.iter().all(|s| s.frames_decoded == 0),
                "b decoded video without a display: {st:?}"
            );
            a.stats_until("a", |st| st.sessions.iter().any(|s| s.frames_decoded >= 15))
                .await;
            a.handle.command(Command::Hangup).await.unwrap();
            a.phase(CallPhase::Idle).await;
            b.phase(CallPhase::Idle).await;
            a.stop().await;
            b.stop().await;
        },
    );
}
