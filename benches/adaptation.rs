//! Bitrate adaptation benchmark (prints numbers; asserts nothing). Run with `scripts/bench.sh`.
//!
//! Chromium calls the room; after 5 s the path from the agent narrows to 300 kbit/s for 30 s
//! (htb + tbf on loopback inside a network namespace of its own, only the agent's media
//! ports), then widens. Once with adaptation (`adaptive_bitrate = true`, the default) and once
//! without, side by side: the far end's decoded frame rate, freezes and frozen time, and
//! received bitrate under the bottleneck, and how long after the path widens the agent is back
//! at its full bitrate and size (with adaptation) or Chromium decodes smoothly again (without).

#[path = "../tests/support/mod.rs"]
#[allow(unused_imports)]
mod support;

use std::time::{Duration, Instant};

use support::bottleneck::{self, Call, Summary};

#[path = "common/mod.rs"]
mod common;

struct Run {
    adaptive: bool,
    open: Summary,
    under: Summary,
    back_s: Option<f64>,
    after: Summary,
}

async fn run(adaptive: bool) -> Run {
    let call = Call::start(adaptive).await;
    let open = call.record(5).await;
    bottleneck::narrow();
    let narrow = call.record(30).await;
    bottleneck::widen();
    let widened = Instant::now();
    let mut back_s = None;
    let mut last = call.sample().await;
    while widened.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let s = call.sample().await;
        let smooth = bottleneck::summary(&last, std::slice::from_ref(&s)).fps >= 25.0;
        let full = if adaptive {
            s.target_kbps == Some(bottleneck::CEILING_KBPS) && s.height == 540
        } else {
            s.height == 540
        };
        if full && smooth {
            back_s = Some(widened.elapsed().as_secs_f64());
            break;
        }
        last = s;
    }
    let after = call.record(5).await;
    Run {
        adaptive,
        open: bottleneck::summary(&open[0], &open),
        under: bottleneck::summary(&narrow[0], &narrow),
        back_s,
        after: bottleneck::summary(&after[0], &after),
    }
}

fn main() {
    common::in_own_namespace();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let runs: Vec<Run> = [true, false]
        .into_iter()
        .map(|adaptive| rt.block_on(run(adaptive)))
        .collect();
    println!();
    println!(
        "300 kbit/s bottleneck for 30 s on a call sending 960x540@30 at up to {} kbit/s (Chromium receiving)",
        bottleneck::CEILING_KBPS
    );
    println!(
        "{:<12} {:>10} | {:>10} {:>8} {:>9} {:>10} | {:>12} | {:>10}",
        "adaptation",
        "open fps",
        "fps",
        "freezes",
        "frozen s",
        "kbit/s",
        "back after s",
        "after fps"
    );
    for r in &runs {
        println!(
            "{:<12} {:>10.1} | {:>10.1} {:>8} {:>9.1} {:>10.0} | {:>12} | {:>10.1}",
            if r.adaptive { "on" } else { "off" },
            r.open.fps,
            r.under.fps,
            r.under.freezes,
            r.under.frozen_s,
            r.under.kbps,
            r.back_s
                .map_or("not in 60".to_string(), |s| format!("{s:.1}")),
            r.after.fps,
        );
    }
}
