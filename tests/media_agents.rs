//! Two agents call each other with real GStreamer media; frames are verified at both ends,
//! also while the room server is away mid-call and after it came back. Runs in its own network
//! namespace.

mod support;

use std::time::Duration;

use roomagent::core::{CallPhase, Command};
use support::*;

const ROOM2: i64 = 1002;

#[test]
fn agent_to_agent_call_decodes_video_at_both_ends() {
    netns::run_isolated("agent_to_agent_call_decodes_video_at_both_ends", async {
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
        // Frames keep coming: wait for at least 15 decoded at each end.
        for (who, agent) in [("a", &a), ("b", &b)] {
            let mut stats = agent.handle.media_stats().unwrap();
            let got = tokio::time::timeout(
                Duration::from_secs(15),
                stats.wait_for(|st| st.sessions.iter().any(|s| s.frames_decoded >= 15)),
            )
            .await
            .is_ok();
            assert!(got, "{who}: frames stopped; stats {:?}", *stats.borrow());
            let st = stats.borrow().clone();
            println!("MEASURE {who}: {:?}", st.sessions);
        }

        // The room server goes away mid-call: the media between the agents does not need it.
        let decoded = |agent: &Agent| {
            agent
                .handle
                .media_stats()
                .unwrap()
                .borrow()
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
            let mut a =
                Agent::start_toml(&media_toml(&server.api(), "room", "mode = \"never\"", "")).await;
            let headless = media_toml(
                &server.api(),
                "room2",
                "mode = \"always\"\ndelay_ms = 0",
                "",
            )
            .replace(
                "display = \"fakesink\"\nspeaker = \"fakesink\"",
                "display = \"none\"\nspeaker = \"none\"",
            );
            assert!(headless.contains("display = \"none\""));
            let mut b = Agent::start_toml(&headless).await;
            a.registered().await;
            b.registered().await;
            a.handle
                .command(Command::Dial {
                    user: roomagent::core::UserId(ROOM2),
                })
                .await
                .unwrap();
            a.wait_for("a sees b's video", |s| s.members.iter().any(|m| m.video_in))
                .await;
            b.wait_for("b notes a's video", |s| {
                s.members.iter().any(|m| m.video_in)
            })
            .await;
            let mut stats = b.handle.media_stats().unwrap();
            let got = tokio::time::timeout(
                Duration::from_secs(15),
                stats.wait_for(|st| st.sessions.iter().any(|s| s.frames_received >= 15)),
            )
            .await
            .is_ok();
            let st = stats.borrow().clone();
            assert!(got, "b: no frames counted; stats {st:?}");
            assert!(
                st.sessions.iter().all(|s| s.frames_decoded == 0),
                "b decoded video without a display: {st:?}"
            );
            let mut stats = a.handle.media_stats().unwrap();
            let got = tokio::time::timeout(
                Duration::from_secs(15),
                stats.wait_for(|st| st.sessions.iter().any(|s| s.frames_decoded >= 15)),
            )
            .await
            .is_ok();
            assert!(got, "a: b's video not decoded; stats {:?}", *stats.borrow());
            a.handle.command(Command::Hangup).await.unwrap();
            a.phase(CallPhase::Idle).await;
            b.phase(CallPhase::Idle).await;
            a.stop().await;
            b.stop().await;
        },
    );
}
