//! Video encoding: the profile's converters and encoder, shared by every session through a
//! tee, and the start-up check that the encoder really encodes here.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;

use super::Build;
use super::capture::raw_video_caps;
use super::elements::{capsfilter, link_all, make, make_stage};
use crate::media::profile::{BitrateUnit, Profile};
use crate::media::{MediaError, MediaOptions, props};

/// Raw frames into the encoder, encoded frames out of it.
type EncoderCounts = Arc<(AtomicU64, AtomicU64)>;

/// The shared video encoder.
pub(super) struct VideoEncoder {
    /// The encoder (first element of the profile's encoder chain).
    pub encoder: gst::Element,
    /// Encoded H.264 (byte-stream, AU) for the sessions' payloaders.
    pub tee: gst::Element,
    /// Frames in and out of the encoder.
    pub counts: EncoderCounts,
}

impl Build<'_> {
    /// selector ─ queue ─ the profile's converters and encoder ─ h264parse ─ byte-stream/AU ─
    /// tee. The queue holds two frames and drops the oldest, so a slow encoder loses frames
    /// rather than adding delay; h264parse sends SPS/PPS with every key frame
    /// (`config-interval` −1), so a participant who joins late can decode; the tee accepts
    /// having no branch (`allow-not-linked`) while no session is attached.
    pub(super) fn video_encoder(
        &self,
        selector: &gst::Element,
    ) -> Result<VideoEncoder, MediaError> {
        let vqueue = make("queue")?;
        vqueue.set_property("name", "encoder-queue");
        vqueue.set_property("max-size-buffers", 2u32);
        vqueue.set_property("max-size-time", 0u64);
        vqueue.set_property("max-size-bytes", 0u32);
        vqueue.set_property_from_str("leaky", "downstream");
        let mut chain: Vec<gst::Element> = vec![vqueue];
        let (stages, encoder) = encoder_stages(self.o, self.profile)?;
        chain.extend(stages);
        let counts = EncoderCounts::default();
        count_buffers(&encoder, &counts, |c| &c.0);
        let parse = make("h264parse")?;
        parse.set_property("config-interval", -1i32);
        chain.push(parse);
        chain.push(capsfilter(
            "video/x-h264,stream-format=(string)byte-stream,alignment=(string)au",
        )?);
        let tee = make("tee")?;
        tee.set_property("allow-not-linked", true);
        count_buffers(&tee, &counts, |c| &c.1);
        chain.push(tee.clone());
        self.add(&chain.iter().collect::<Vec<_>>())?;
        let refs: Vec<&gst::Element> = std::iter::once(selector).chain(chain.iter()).collect();
        link_all(&refs)?;
        Ok(VideoEncoder {
            encoder,
            tee,
            counts,
        })
    }
}

/// Counts the buffers into `element`'s sink pad in the counter `which` picks.
fn count_buffers(
    element: &gst::Element,
    counts: &EncoderCounts,
    which: fn(&(AtomicU64, AtomicU64)) -> &AtomicU64,
) {
    let counts = counts.clone();
    element
        .static_pad("sink")
        .expect("encoder and tee have a sink pad")
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            which(&counts).fetch_add(1, Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });
}

/// A profile's encoding stages as a call uses them: its converters, its encoder(s) with the
/// call's bitrate, and the encoder's output caps. Returns them in order, and the encoder.
fn encoder_stages(
    o: &MediaOptions,
    profile: &Profile,
) -> Result<(Vec<gst::Element>, gst::Element), MediaError> {
    let mut chain = Vec::new();
    if profile.video_convert.is_empty() {
        chain.push(make("videoconvert")?);
    } else {
        for s in &profile.video_convert {
            chain.push(make_stage(s)?);
        }
    }
    let mut encoder = None;
    for s in &profile.video_encoder {
        let e = make_stage(s)?;
        if let Some(prop) = &s.bitrate_property {
            let value = match s.bitrate_unit {
                BitrateUnit::Kbit => o.video_kbps as i64,
                BitrateUnit::Bit => o.video_kbps as i64 * 1000,
            };
            props::apply(&e, [(prop, &toml::Value::Integer(value))])?;
        }
        encoder.get_or_insert_with(|| e.clone());
        chain.push(e);
    }
    let encoder = encoder.ok_or_else(|| MediaError::Invalid("profile without encoder".into()))?;
    chain.push(capsfilter(profile.encoder_caps())?);
    Ok((chain, encoder))
}

/// Frames the encoder check encodes.
const CHECK_FRAMES: i32 = 5;

/// Encodes a few frames of the call's size and rate through the profile's encoding stages,
/// exactly as a call feeds them: proof that the encoder does not only exist but works here (a
/// hardware encoder's device node present and free, the size and format accepted). Returns
/// how long it took, or what went wrong.
pub fn check_encoder(o: &MediaOptions, profile: &Profile) -> Result<Duration, String> {
    let started = Instant::now();
    let pipeline = gst::Pipeline::with_name("roomagent-encoder-check");
    let result =
        check_chain(&pipeline, o, profile).and_then(|encoded| run_check(&pipeline, &encoded));
    let _ = pipeline.set_state(gst::State::Null);
    result.map(|()| started.elapsed())
}

/// test pattern ─ the call's raw video ─ the profile's encoding stages ─ h264parse ─ fakesink,
/// in `pipeline`. Returns the count of encoded frames that reach the sink.
fn check_chain(
    pipeline: &gst::Pipeline,
    o: &MediaOptions,
    profile: &Profile,
) -> Result<Arc<AtomicU32>, String> {
    let src = make("videotestsrc").map_err(|e| e.to_string())?;
    src.set_property("num-buffers", CHECK_FRAMES);
    let raw = capsfilter(&raw_video_caps(o)).map_err(|e| e.to_string())?;
    let (stages, _) = encoder_stages(o, profile).map_err(|e| e.to_string())?;
    let parse = make("h264parse").map_err(|e| e.to_string())?;
    let sink = make("fakesink").map_err(|e| e.to_string())?;
    sink.set_property("sync", false);
    let encoded = Arc::new(AtomicU32::new(0));
    let counter = encoded.clone();
    sink.static_pad("sink")
        .expect("fakesink has a sink pad")
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            counter.fetch_add(1, Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });
    let mut all = vec![src, raw];
    all.extend(stages);
    all.push(parse);
    all.push(sink);
    pipeline
        .add_many(&all)
        .map_err(|_| "cannot add elements".to_string())?;
    let refs: Vec<&gst::Element> = all.iter().collect();
    link_all(&refs).map_err(|e| e.to_string())?;
    Ok(encoded)
}

/// Plays the check pipeline until its end of stream or first error (5 s at most): passed when
/// it ended with encoded frames.
fn run_check(pipeline: &gst::Pipeline, encoded: &AtomicU32) -> Result<(), String> {
    let bus = pipeline.bus().expect("a pipeline has a bus");
    let started = pipeline.set_state(gst::State::Playing);
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(5),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    match msg.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) if encoded.load(Ordering::Relaxed) > 0 => Ok(()),
        Some(gst::MessageView::Eos(_)) => Err("the encoder produced nothing".into()),
        Some(gst::MessageView::Error(e)) => {
            // The debug text's last line says why ("streaming stopped, reason
            // not-negotiated (-4)", "Cannot identify device '/dev/video11'" …).
            let detail = e
                .debug()
                .and_then(|d| d.lines().last().map(|l| format!(" ({})", l.trim())))
                .unwrap_or_default();
            Err(format!(
                "{}: {}{detail}",
                e.src().map(|s| s.name().to_string()).unwrap_or_default(),
                e.error()
            ))
        }
        _ if started.is_err() => Err("the check pipeline did not start".into()),
        _ => Err(format!(
            "no encoded frame within 5 s ({} of {CHECK_FRAMES})",
            encoded.load(Ordering::Relaxed)
        )),
    }
}
