//! Two agents call each other with real GStreamer media; frames are verified at both ends.
//! Runs in its own network namespace.

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
        a.handle.command(Command::Hangup).await.unwrap();
        a.phase(CallPhase::Idle).await;
        b.phase(CallPhase::Idle).await;
        a.stop().await;
        b.stop().await;
    });
}
