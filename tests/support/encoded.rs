//! Encoded media for RTM tests, made and checked with real GStreamer: H.264 constrained
//! baseline access units cut as RTM carries them (parameter sets apart on key frames) and
//! Opus packets; and decoders that count what decodes.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use roomagent::media::relay::{VideoUnit, join_access_unit, split_access_unit};

fn init() {
    gst::init().expect("GStreamer");
}

/// The pipeline `description` describes, and its element named `out` (an `appsink`).
fn launch(description: &str) -> (gst::Pipeline, gst_app::AppSink) {
    init();
    let pipeline = gst::parse::launch(description)
        .expect("test pipeline")
        .downcast::<gst::Pipeline>()
        .unwrap();
    let sink = pipeline
        .by_name("out")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .expect("an appsink named out");
    (pipeline, sink)
}

/// Runs `description` (ending in `appsink name=out`) to its end; returns every buffer.
fn collect(description: &str) -> Vec<Vec<u8>> {
    let (pipeline, sink) = launch(description);
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut out = Vec::new();
    while let Ok(sample) = sink.pull_sample() {
        let b = sample.buffer().unwrap().map_readable().unwrap();
        out.push(b.to_vec());
    }
    pipeline.set_state(gst::State::Null).unwrap();
    out
}

/// `frames` of a moving test pattern at `w`×`h`, H.264 constrained baseline with a key frame
/// every `gop` frames, cut as `video` quests carry them.
pub fn h264(frames: u32, w: u32, h: u32, gop: u32) -> Vec<VideoUnit> {
    let aus = collect(&format!(
        "videotestsrc num-buffers={frames} pattern=ball ! video/x-raw,format=I420,width={w},height={h},framerate=30/1 \
         ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={gop} bframes=0 \
         ! video/x-h264,profile=constrained-baseline ! h264parse config-interval=-1 \
         ! video/x-h264,stream-format=byte-stream,alignment=au ! appsink name=out sync=false"
    ));
    let mut last = Default::default();
    aus.iter()
        .map(|au| split_access_unit(au, &mut last))
        .collect()
}

/// `packets` 20 ms Opus packets of a tone, 48 kHz mono.
pub fn opus(packets: u32) -> Vec<Vec<u8>> {
    collect(&format!(
        "audiotestsrc num-buffers={packets} samplesperbuffer=960 wave=sine \
         ! audio/x-raw,rate=48000,channels=1 ! opusenc frame-size=20 bitrate=32000 \
         ! appsink name=out sync=false"
    ))
}

/// Feeds `buffers` into `description` (starting with `appsrc name=in`, ending in
/// `appsink name=out`); returns how many buffers came out.
fn count_through(description: &str, buffers: Vec<Vec<u8>>, period: Duration) -> usize {
    let (pipeline, sink) = launch(description);
    let src = pipeline
        .by_name("in")
        .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        .expect("an appsrc named in");
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                let _ = s.pull_sample();
                c.fetch_add(1, Ordering::Relaxed);
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    pipeline.set_state(gst::State::Playing).unwrap();
    for (i, b) in buffers.into_iter().enumerate() {
        let mut buf = gst::Buffer::from_mut_slice(b);
        buf.get_mut()
            .unwrap()
            .set_pts(gst::ClockTime::from_nseconds(
                period.as_nanos() as u64 * i as u64,
            ));
        if src.push_buffer(buf).is_err() {
            break;
        }
    }
    let _ = src.end_of_stream();
    let bus = pipeline.bus().unwrap();
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(30),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    if let Some(m) = msg
        && let gst::MessageView::Error(e) = m.view()
    {
        eprintln!("test decoder error: {} ({:?})", e.error(), e.debug());
    }
    pipeline.set_state(gst::State::Null).unwrap();
    count.load(Ordering::Relaxed)
}

/// Decodes `video` quests' contents (key frames with their parameter sets joined back)
/// with OpenH264, as RTM receivers do (or libav's decoder where GStreamer has no OpenH264, as
/// in Debian 11); returns the frames decoded.
pub fn decode_h264(units: &[VideoUnit]) -> usize {
    init();
    let decoder = if gst::ElementFactory::find("openh264dec").is_some() {
        "openh264dec"
    } else {
        "avdec_h264"
    };
    let buffers = units
        .iter()
        .map(|u| {
            if u.key {
                join_access_unit(&u.sps, &u.pps, &u.data)
            } else {
                u.data.clone()
            }
        })
        .collect();
    count_through(
        &format!(
            "appsrc name=in format=time caps=video/x-h264,stream-format=byte-stream,alignment=au \
             ! h264parse ! {decoder} ! appsink name=out sync=false"
        ),
        buffers,
        Duration::from_millis(33),
    )
}

/// Decodes Opus packets; returns the packets decoded.
pub fn decode_opus(packets: &[Vec<u8>]) -> usize {
    count_through(
        "appsrc name=in format=time caps=audio/x-opus,channel-mapping-family=0,channels=1,rate=48000 \
         ! opusdec ! appsink name=out sync=false",
        packets.to_vec(),
        Duration::from_millis(20),
    )
}
