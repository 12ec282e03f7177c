//! Video that follows the network: Chromium calls the room, then the path from the agent
//! narrows to 300 kbit/s for 30 s (traffic shaping inside the test's own network namespace)
//! and widens again. Chromium keeps decoding through the bottleneck at a lower size, and the
//! bitrate and size come back once the path is open.

mod support;

use std::time::{Duration, Instant};

use support::bottleneck::{self, Call};
use support::*;

#[test]
fn video_follows_a_300_kbps_bottleneck_and_comes_back() {
    netns::run_isolated(
        "video_follows_a_300_kbps_bottleneck_and_comes_back",
        async {
            let call = Call::start(true).await;
            let open = call.record(5).await;
            let before = bottleneck::summary(&open[0], &open);
            println!("MEASURE open path: {before:?}");
            assert!(
                before.kbps > 800.0,
                "on the open path Chromium should receive well above the bottleneck: {before:?}"
            );

            bottleneck::narrow();
            let narrowed = Instant::now();
            let narrow = call.record(30).await;
            let dropped = bottleneck::dropped();
            println!("MEASURE bottleneck dropped {dropped} packets");
            assert!(
                dropped > 0,
                "the bottleneck dropped nothing: is it in the path?"
            );
            // The agent found the bottleneck: its target went to or below it within 15 s
            // and stayed there (probing a little above at most).
            let found = narrow
                .iter()
                .position(|s| s.target_kbps.is_some_and(|t| t <= bottleneck::LIMIT_KBPS))
                .expect("the agent never went down to the bottleneck");
            assert!(
                narrow[found].t - narrow[0].t < 15.0,
                "found the bottleneck only after {:.1} s",
                narrow[found].t - narrow[0].t
            );
            // Chromium keeps decoding in every 5 s of the second half, at a smaller size.
            let half = &narrow[15..];
            for w in half.chunks(5) {
                let s = bottleneck::summary(&w[0], w);
                assert!(
                    s.fps >= 5.0,
                    "Chromium nearly stopped decoding under the bottleneck: {s:?}\n{narrow:#?}"
                );
            }
            assert!(
                half.iter().any(|s| s.height > 0 && s.height < 540),
                "Chromium never saw the smaller size: {half:#?}"
            );
            let under = bottleneck::summary(&narrow[10], &narrow[10..]);
            println!("MEASURE under the bottleneck (last 20 s): {under:?}");

            bottleneck::widen();
            let widened = Instant::now();
            let mut back = None;
            while widened.elapsed() < Duration::from_secs(45) {
                let s = call.sample().await;
                println!("MEASURE {s:?}");
                if s.target_kbps == Some(bottleneck::CEILING_KBPS) && s.height == 540 {
                    back = Some(widened.elapsed());
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            let back = back.unwrap_or_else(|| {
                panic!(
                    "bitrate and size did not come back within 45 s: {:?}",
                    call.agent.media_now()
                )
            });
            println!(
                "MEASURE back to full bitrate and size {:.1} s after the path widened ({:.0} s of bottleneck)",
                back.as_secs_f64(),
                (widened - narrowed).as_secs_f64()
            );
            let after = call.record(5).await;
            let s = bottleneck::summary(&after[0], &after);
            println!("MEASURE open again: {s:?}");
            assert!(s.kbps > 800.0, "{s:?}");
            assert!(s.fps >= 15.0, "{s:?}");
        },
    );
}
