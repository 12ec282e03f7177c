//! A video encoder that fails in the middle of a call (a hardware encoder whose device went
//! away, say) is replaced by the next profile's encoder while the call goes on: the far end, a
//! second agent, keeps decoding, and an event says what happened. The failing encoder is a
//! stand-in profile whose encoder chain starts with `identity error-after=N` (it fails with a
//! real GStreamer flow error after N frames). Runs in its own network namespace.

mod support;

use std::time::{Duration, Instant};

use roomagent::core::{CallEvent, CallPhase, Command, UserId};
use support::*;

const ROOM2: i64 = 1002;

const FLAKY: &str = r#"
name = "flaky"
description = "test sources; an encoder that fails after 45 frames (a dying hardware encoder)"
priority = 50

[requires]
elements = ["videotestsrc", "audiotestsrc", "identity", "x264enc", "opusenc"]

[video_source]
element = "videotestsrc"
properties = { is-live = true, pattern = "ball" }

[audio_source]
element = "audiotestsrc"
properties = { is-live = true, wave = "ticks", volume = 0.3 }

[[video_encoder]]
element = "identity"
properties = { error-after = 45 }

[[video_encoder]]
element = "x264enc"
bitrate_property = "bitrate"
bitrate_unit = "kbit"
properties = { tune = "zerolatency", speed-preset = "ultrafast", key-int-max = 30, bframes = 0 }
"#;

#[test]
fn a_failing_encoder_is_replaced_mid_call_and_the_far_end_keeps_decoding() {
    netns::run_isolated(
        "a_failing_encoder_is_replaced_mid_call_and_the_far_end_keeps_decoding",
        async {
            let dir = std::env::temp_dir().join(format!("roomagent-flaky-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("flaky.toml"), FLAKY).unwrap();
            let server = Server::start().await;
            let a_toml = media_toml(&server.api(), "room", "mode = \"never\"", "").replace(
                "profile = \"test\"",
                &format!("profile = \"flaky\"\nprofiles_dir = \"{}\"", dir.display()),
            );
            let mut a = Agent::start_toml(&a_toml).await;
            let mut b = Agent::start_toml(&media_toml(
                &server.api(),
                "room2",
                "mode = \"always\"\ndelay_ms = 0",
                "",
            ))
            .await;
            a.registered().await;
            b.registered().await;
            let mut events = a.handle.events();
            a.handle
                .command(Command::Dial {
                    user: UserId(ROOM2),
                })
                .await
                .unwrap();
            b.wait_for("b sees a's video", |s| s.members.iter().any(|m| m.video_in))
                .await;

            // The encoder fails after 45 frames (3 s at 15 fps); watch b's decoded frames
            // meanwhile, and wait for the event.
            let started = Instant::now();
            let mut samples: Vec<(Duration, u64)> = Vec::new();
            let event = loop {
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "no encoder replacement within 20 s"
                );
                tokio::select! {
                    ev = events.recv() => {
                        if let Ok(CallEvent::EncoderReplaced { from, to, reason }) = ev {
                            break (from, to, reason);
                        }
                    }
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {
                        samples.push((started.elapsed(), b.frames_decoded()));
                    }
                }
            };
            println!("MEASURE replaced: {event:?}");
            assert_eq!(event.0, "flaky");
            assert_eq!(event.1, "software", "the next profile's encoder (x264)");
            assert!(
                event.2.contains("identity"),
                "the reason names the failed element: {}",
                event.2
            );
            let at_event = started.elapsed();
            // b keeps decoding a's video: at least 30 more frames (2 s at 15 fps) within 4 s.
            let before = b.frames_decoded();
            let t = Instant::now();
            loop {
                samples.push((started.elapsed(), b.frames_decoded()));
                if b.frames_decoded() >= before + 30 {
                    break;
                }
                assert!(
                    t.elapsed() < Duration::from_secs(4),
                    "b stopped decoding after the encoder was replaced: {} → {}",
                    before,
                    b.frames_decoded()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            // The longest time b's decoded count stood still (b publishes its numbers once a
            // second, so this is at best one second).
            let mut longest = Duration::ZERO;
            let mut since = samples[0];
            for s in &samples[1..] {
                if s.1 != since.1 {
                    longest = longest.max(s.0 - since.0);
                    since = *s;
                }
            }
            println!(
                "MEASURE far end: longest stand-still of its decoded-frame count {:.1} s (event at {:.1} s)",
                longest.as_secs_f64(),
                at_event.as_secs_f64()
            );
            assert!(
                longest <= Duration::from_millis(2500),
                "b froze for {longest:?}"
            );
            // The call never ended, and a's new encoder encodes.
            assert_eq!(a.now().call, CallPhase::InCall);
            assert_eq!(b.now().call, CallPhase::InCall);
            let st = a.media_now();
            assert!(st.frames_encoded > 45, "{st:?}");
            a.stop().await;
            b.stop().await;
            let _ = std::fs::remove_dir_all(&dir);
        },
    );
}
