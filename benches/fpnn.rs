//! FPNN codec throughput: encode (`Link::write`) and decode (`Link::read` + `Link::next_frame`)
//! for a small RTM quest, a voice-sized and a video-sized media quest, plain and encrypted.
//! Run with `cargo bench --bench fpnn`; prints frames/s and MB/s (10^6 bytes of wire data).

use std::hint::black_box;
use std::time::{Duration, Instant};

use rmpv::Value;
use roomagent::signaling::rtm::fpnn::{
    Cipher, DEFAULT_MAX_PAYLOAD, Frame, KeyBits, Link, Mode, empty_map, map,
};

/// Each measurement runs at least this long.
const BUDGET: Duration = Duration::from_millis(300);
/// Bytes handed to `Link::read` at a time, like a socket read.
const READ_CHUNK: usize = 16 * 1024;

fn small_quest() -> Frame {
    Frame::twoway(
        42,
        "sendmsg",
        map([
            ("to", Value::from(1_234_567_u64)),
            ("mid", Value::from(1_700_000_000_123_456_u64)),
            ("mtype", Value::from(30)),
            ("msg", Value::from("hello from the meeting room")),
            ("attrs", Value::from("")),
        ]),
    )
}

/// A one-way media quest whose whole encoded frame is about `total` bytes.
fn media(method: &str, total: usize) -> Frame {
    let data = vec![0xa5; total.saturating_sub(60)];
    Frame::oneway(
        method,
        map([
            ("rid", Value::from(900_001_u64)),
            ("seq", Value::from(12_345)),
            ("timestamp", Value::from(1_700_000_000_000_u64)),
            ("data", Value::Binary(data)),
        ]),
    )
}

fn link(mode: Option<(Mode, KeyBits)>) -> Link {
    match mode {
        None => Link::plain(DEFAULT_MAX_PAYLOAD),
        Some((mode, bits)) => Link::encrypted(
            Cipher::from_shared_secret(&[0x42; 32], bits, mode),
            DEFAULT_MAX_PAYLOAD,
        ),
    }
}

/// Runs `step` (which handles `batch` frames) until the budget is spent; returns frames/s.
fn measure(batch: usize, mut step: impl FnMut()) -> f64 {
    step(); // warm-up
    let (start, mut frames) = (Instant::now(), 0usize);
    while start.elapsed() < BUDGET {
        step();
        frames += batch;
    }
    frames as f64 / start.elapsed().as_secs_f64()
}

fn bench_encode(frame: &Frame, mode: Option<(Mode, KeyBits)>) -> (f64, usize) {
    let mut tx = link(mode);
    let mut out = Vec::with_capacity(64 * 1024);
    let mut wire_len = 0;
    let rate = measure(1, || {
        out.clear();
        tx.write(black_box(frame), &mut out).expect("encodes");
        wire_len = out.len();
        black_box(&out);
    });
    (rate, wire_len)
}

fn bench_decode(frame: &Frame, mode: Option<(Mode, KeyBits)>) -> f64 {
    // One batch of ~1 MB of consecutive frames, encrypted as one connection would send them.
    let mut tx = link(mode);
    let mut wire = Vec::new();
    let mut batch = 0;
    while wire.len() < 1 << 20 {
        tx.write(frame, &mut wire).expect("encodes");
        batch += 1;
    }
    measure(batch, || {
        let mut rx = link(mode);
        let mut n = 0;
        for chunk in wire.chunks(READ_CHUNK) {
            rx.read(chunk);
            while let Some(f) = rx.next_frame().expect("decodes") {
                black_box(f);
                n += 1;
            }
        }
        assert_eq!(n, batch);
    })
}

fn main() {
    let frames = [
        ("small quest", small_quest()),
        ("voice 1.2 KB", media("voice", 1200)),
        ("video 30 KB", media("video", 30 * 1024)),
    ];
    let modes: [(&str, Option<(Mode, KeyBits)>); 4] = [
        ("plain", None),
        ("stream aes128", Some((Mode::Stream, KeyBits::Aes128))),
        ("package aes128", Some((Mode::Package, KeyBits::Aes128))),
        ("package aes256", Some((Mode::Package, KeyBits::Aes256))),
    ];
    println!(
        "{:<13} {:<15} {:>6} {:>13} {:>9} {:>13} {:>9}",
        "frame", "mode", "bytes", "encode fr/s", "MB/s", "decode fr/s", "MB/s"
    );
    for (name, frame) in &frames {
        for (mode_name, mode) in modes {
            let (enc, len) = bench_encode(frame, mode);
            let dec = bench_decode(frame, mode);
            let mb = |rate: f64| rate * len as f64 / 1e6;
            println!(
                "{name:<13} {mode_name:<15} {len:>6} {enc:>13.0} {:>9.1} {dec:>13.0} {:>9.1}",
                mb(enc),
                mb(dec)
            );
        }
    }
    black_box(empty_map());
}
