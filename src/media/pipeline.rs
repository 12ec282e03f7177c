//! The call pipeline: local capture and encoding shared by every session (encode once, fan
//! out RTP), and the remote side: decoded participants composed into a grid on the display and
//! mixed to the speaker.
//!
//! ```text
//! camera ─ convert/scale/rate ─┐
//! black   (camera off) ────────┼ input-selector ─ queue ─ convert ─ encoder ─ h264parse ─ tee ─▶ sessions
//! HDMI capture (sharing) ──────┘
//! microphone ─ convert/resample ─ [webrtcdsp] ─ volume(mute) ─ opusenc ─ tee ─▶ sessions
//!
//! sessions ─▶ compositor (one participant as it is, or a grid; I420) ─ display sink
//! sessions ─▶ audiomixer (over silence) ─ [webrtcechoprobe] ─ volume ─ speaker sink
//! ```
//!
//! Without a display (or speaker) there is no compositor (or mixer): remote video is counted
//! and audio dropped, never decoded.
//!
//! Every element is made from a factory name and typed properties; no launch strings.

use crate::core::ClientId;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::prelude::*;
use tracing::info;

use super::devices::Discovered;
use super::profile::{BitrateUnit, DeviceKind, Profile, Stage};
use super::{DeviceChoice, MediaError, MediaOptions, SinkChoice, props};

/// Debian packages that provide elements, for "install X" hints.
fn package_for(factory: &str) -> &'static str {
    match factory {
        "x264enc" => "gstreamer1.0-plugins-ugly",
        "webrtcbin" | "webrtcdsp" | "webrtcechoprobe" | "dtlssrtpenc" | "openh264enc"
        | "openh264dec" | "h264parse" | "kmssink" | "compositor" | "vah264enc" => {
            "gstreamer1.0-plugins-bad"
        }
        "nicesrc" | "nicesink" => "gstreamer1.0-nice",
        "avdec_h264" => "gstreamer1.0-libav",
        "alsasrc" | "alsasink" => "gstreamer1.0-alsa",
        "pulsesrc" | "pulsesink" => "gstreamer1.0-pulseaudio",
        "v4l2src" | "rtph264pay" | "rtph264depay" | "rtpvp8depay" | "rtpopusdepay" | "vp8dec"
        | "vp8enc" | "jpegdec" | "imagefreeze" => "gstreamer1.0-plugins-good",
        _ => "gstreamer1.0-plugins-base",
    }
}

/// Makes an element, or explains which package is missing.
pub fn make(factory: &str) -> Result<gst::Element, MediaError> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|_| MediaError::MissingElement {
            factory: factory.into(),
            package: package_for(factory),
        })
}

/// Makes an element from a profile stage with its typed properties.
pub fn make_stage(stage: &Stage) -> Result<gst::Element, MediaError> {
    let e = make(&stage.element)?;
    props::apply(&e, &stage.properties)?;
    Ok(e)
}

fn caps(s: &str) -> Result<gst::Caps, MediaError> {
    s.parse::<gst::Caps>()
        .map_err(|_| MediaError::Invalid(format!("bad caps {s:?}")))
}

fn capsfilter(s: &str) -> Result<gst::Element, MediaError> {
    let e = make("capsfilter")?;
    e.set_property("caps", caps(s)?);
    Ok(e)
}

fn link_all(elements: &[&gst::Element]) -> Result<(), MediaError> {
    for w in elements.windows(2) {
        w[0].link(w[1]).map_err(|_| MediaError::Link {
            from: w[0].name().to_string(),
            to: w[1].name().to_string(),
        })?;
    }
    Ok(())
}

/// The remote video tiles on the display. One participant is shown at the size it sends,
/// handed through the compositor untouched (the display scales it, as kmssink and window
/// sinks do for free); two or more share a grid of the display's size.
#[derive(Debug, Default)]
pub struct Layout {
    tiles: Vec<(ClientId, gst::Pad)>,
    width: i32,
    height: i32,
    framerate: i32,
    /// The compositor's output caps.
    filter: Option<gst::Element>,
}

impl Layout {
    /// Adds a participant's tile and re-arranges the grid.
    pub fn add(&mut self, peer: ClientId, pad: gst::Pad) {
        self.tiles.push((peer, pad));
        self.arrange();
    }

    /// Removes a tile (by pad) and re-arranges the grid.
    pub fn remove(&mut self, pad: &gst::Pad) {
        self.tiles.retain(|(_, p)| p != pad);
        self.arrange();
    }

    /// How many tiles are shown.
    pub fn len(&self) -> usize {
        self.tiles.len()
    }

    /// Whether no tile is shown.
    pub fn is_empty(&self) -> bool {
        self.tiles.is_empty()
    }

    fn arrange(&self) {
        let n = self.tiles.len() as i32;
        let size = (n != 1).then_some((self.width, self.height));
        // Nobody to show: the black background once a second is enough.
        let framerate = if n == 0 { 1 } else { self.framerate };
        if let Some(filter) = &self.filter
            && let Ok(c) = display_caps(framerate, size).parse::<gst::Caps>()
            && filter.property::<gst::Caps>("caps") != c
        {
            filter.set_property("caps", c);
        }
        if n == 0 {
            return;
        }
        if n == 1 {
            let pad = &self.tiles[0].1;
            for p in ["xpos", "ypos", "width", "height"] {
                pad.set_property(p, 0i32);
            }
            pad.set_property("zorder", 1u32);
            return;
        }
        let cols = (n as f64).sqrt().ceil() as i32;
        let rows = (n + cols - 1) / cols;
        let (w, h) = (self.width / cols, self.height / rows);
        for (i, (_, pad)) in self.tiles.iter().enumerate() {
            let i = i as i32;
            pad.set_property("xpos", (i % cols) * w);
            pad.set_property("ypos", (i / cols) * h);
            pad.set_property("width", w);
            pad.set_property("height", h);
            pad.set_property("zorder", 1u32 + i as u32);
        }
    }
}

/// The elements the remote side of every session connects to.
#[derive(Clone)]
pub struct RemoteOutputs {
    /// Video mixer (grid); `None` without a display: remote video is counted, not decoded.
    pub compositor: Option<gst::Element>,
    /// Audio mixer; `None` without a speaker: remote audio is not decoded.
    pub mixer: Option<gst::Element>,
    /// The H.264 decoding stages remote video gets: a decoder and what it needs after it
    /// (`None`: none installed).
    pub h264_decoder: Option<Vec<super::profile::Stage>>,
    /// Participants whose video the call's (hardware) decoder failed on: theirs is decoded in
    /// software for the rest of the call.
    pub software_video: Arc<Mutex<std::collections::HashSet<crate::core::ClientId>>>,
    /// Tile positions.
    pub layout: Arc<Mutex<Layout>>,
}

/// A running call pipeline. Dropping it stops everything (state `Null`).
pub struct CallPipeline {
    /// The pipeline.
    pub pipeline: gst::Pipeline,
    /// Encoded H.264 (byte-stream, AU) for the sessions' payloaders.
    pub video_tee: gst::Element,
    /// Encoded Opus for the sessions' payloaders.
    pub audio_tee: gst::Element,
    selector: gst::Element,
    /// The camera (`None` while it is lost).
    camera: Option<VideoInput>,
    black_pad: gst::Pad,
    /// The HDMI capture input (`None` when there is none or while it is lost).
    hdmi: Option<VideoInput>,
    /// An HDMI capture input belongs to this call (it may be lost for a while).
    hdmi_wanted: bool,
    audio_selector: gst::Element,
    /// The microphone (`None` while it is lost: silence is sent).
    microphone: Option<VideoInput>,
    silence_pad: gst::Pad,
    mic_volume: gst::Element,
    speaker_volume: gst::Element,
    /// Where remote media goes.
    pub remote: RemoteOutputs,
    /// The video encoder (first element of the encoder chain), for statistics and fallback.
    pub encoder: gst::Element,
    /// The encoding stages (converters, encoders, caps) between `encoder_upstream` and
    /// `encoder_downstream`: what an encoder failure replaces.
    encoder_stages: Vec<gst::Element>,
    encoder_upstream: gst::Element,
    encoder_downstream: gst::Element,
    /// The encoder returned an error: its input is dropped until it is replaced.
    encoder_failed: Arc<std::sync::atomic::AtomicBool>,
    /// The profile whose encoding stages run.
    pub encoding: String,
    /// Where the encoder's bitrate is set during the call (`None`: the profile names none).
    pub bitrate: Option<BitrateControl>,
    /// The video bitrate now (kbit/s), which the sessions pace their packets by.
    pub pace_kbps: Arc<std::sync::atomic::AtomicU32>,
    /// The size and rate sent, stepped down by bitrate adaptation and quality layers.
    adapt_caps: gst::Element,
    /// Raw frames, before the main encoder: quality layers' own encodes branch off here.
    raw_tee: gst::Element,
    /// The smaller encodes serving quality layers (0 small, 1 medium) while others watch a
    /// larger one.
    layers: BTreeMap<u8, LayerEncode>,
    /// The speaker and the display, which can fail and come back during the call.
    outputs: BTreeMap<Output, OutputSlot>,
    /// The Opus encoder.
    pub audio_encoder: gst::Element,
    /// Every live source, stopped first when the call ends.
    sources: Vec<gst::Element>,
    /// Raw frames into the encoder, encoded frames out of it.
    pub encoder_counts: Arc<(std::sync::atomic::AtomicU64, std::sync::atomic::AtomicU64)>,
}

impl Drop for CallPipeline {
    /// Stops the call quietly: the live sources first, so no buffer is in flight when the
    /// queues and webrtcbins are deactivated (GStreamer 1.22 can leave a queue thread spinning
    /// when a push fails with FLUSHING during its deactivation), then everything else.
    fn drop(&mut self) {
        for s in &self.sources {
            let _ = s.set_state(gst::State::Null);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

fn raw_video_caps(o: &MediaOptions) -> String {
    format!(
        "video/x-raw,format=I420,width={},height={},framerate={}/1,pixel-aspect-ratio=1/1",
        o.width, o.height, o.framerate
    )
}

/// A discovered or configured device's source element, with the formats the device offers
/// when its provider reported them.
fn device_source(
    choice: &DeviceChoice,
    found: &[super::devices::DeviceInfo],
    stage: Option<&Stage>,
    fallback_element: &str,
) -> Result<Option<(gst::Element, Option<gst::Caps>)>, MediaError> {
    match choice {
        DeviceChoice::None => Ok(None),
        DeviceChoice::Pipeline(description) => {
            Ok(Some((DeviceChoice::pipeline_source(description)?, None)))
        }
        // A device found (by that path or id): its own element (v4l2src with the device set,
        // libcamerasrc with the camera's name, …).
        _ if let Some(d) = chosen_device(choice, found).and_then(|d| d.device.as_ref()) => {
            device_element(d, stage).map(Some)
        }
        DeviceChoice::Path(path) => {
            let element = stage.map_or(fallback_element, |s| s.element.as_str());
            let prop = stage
                .and_then(|s| s.device_property.as_deref())
                .unwrap_or("device");
            let e = make(element)?;
            props::apply(
                &e,
                [(&prop.to_string(), &toml::Value::String(path.clone()))],
            )?;
            if let Some(s) = stage {
                props::apply(&e, &s.properties)?;
            }
            Ok(Some((e, None)))
        }
        DeviceChoice::Auto => Ok(None),
    }
}

/// The discovered device `choice` means: for `auto` the first found that makes its own
/// element, for a path the one found there.
fn chosen_device<'a>(
    choice: &DeviceChoice,
    found: &'a [super::devices::DeviceInfo],
) -> Option<&'a super::devices::DeviceInfo> {
    match choice {
        DeviceChoice::Auto => found.iter().find(|d| d.device.is_some()),
        DeviceChoice::Path(path) => found
            .iter()
            .find(|d| d.path.as_deref() == Some(path.as_str())),
        DeviceChoice::None | DeviceChoice::Pipeline(_) => None,
    }
}

/// The element a discovered device makes for itself, with the profile's settings when it is
/// the profile's source element (v4l2src; a device of another provider, libcamerasrc, makes
/// its own), and the formats the device offers.
fn device_element(
    d: &gst::Device,
    stage: Option<&Stage>,
) -> Result<(gst::Element, Option<gst::Caps>), MediaError> {
    let e = d
        .create_element(None)
        .map_err(|_| MediaError::Invalid(format!("cannot open {}", d.display_name())))?;
    if let Some(s) = stage
        && e.factory().is_some_and(|f| f.name() == s.element.as_str())
    {
        props::apply(&e, &s.properties)?;
    }
    Ok((e, d.caps()))
}

/// What a capture device is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureFormat {
    /// Raw video: used when the device gives the call's size and rate raw, or when nothing
    /// better is known (the converters then scale and drop frames as needed).
    Raw,
    /// Motion JPEG, decoded with `jpegdec`: most USB webcams and HDMI capture dongles give
    /// 720p30 or 1080p30 only this way (raw only at a few frames per second over USB 2).
    Jpeg,
}

/// Chooses how to capture `width`×`height` at `fps` from a device that offers `device` caps.
pub fn capture_format(
    device: Option<&gst::Caps>,
    width: u32,
    height: u32,
    fps: u32,
) -> CaptureFormat {
    let Some(device) = device else {
        return CaptureFormat::Raw;
    };
    let wanted = |media: &str| {
        gst::Caps::builder(media)
            .field("width", width as i32)
            .field("height", height as i32)
            .field("framerate", gst::Fraction::new(fps as i32, 1))
            .build()
    };
    if device.can_intersect(&wanted("video/x-raw")) {
        CaptureFormat::Raw
    } else if device.can_intersect(&wanted("image/jpeg")) {
        CaptureFormat::Jpeg
    } else {
        CaptureFormat::Raw
    }
}

/// Chooses the capture format for a device offering `device_caps` and adds what turns its
/// output into raw video; returns the element that gives raw video.
fn capture(
    pipeline: &gst::Bin,
    src: &gst::Element,
    device_caps: Option<&gst::Caps>,
    input: &str,
    o: &MediaOptions,
) -> Result<gst::Element, MediaError> {
    let format = capture_format(device_caps, o.width, o.height, o.framerate);
    if format == CaptureFormat::Jpeg {
        info!(
            input,
            width = o.width,
            height = o.height,
            fps = o.framerate,
            "capturing MJPEG (raw is not offered at this size and rate)"
        );
    }
    capture_output(pipeline, src, format, o)
}

/// Adds what turns a capture source's output into raw video (a JPEG decoder for
/// [`CaptureFormat::Jpeg`]) and returns the element that gives raw video.
fn capture_output(
    pipeline: &gst::Bin,
    src: &gst::Element,
    format: CaptureFormat,
    o: &MediaOptions,
) -> Result<gst::Element, MediaError> {
    match format {
        CaptureFormat::Raw => Ok(src.clone()),
        CaptureFormat::Jpeg => {
            let filter = capsfilter(&format!(
                "image/jpeg,width={},height={},framerate={}/1",
                o.width, o.height, o.framerate
            ))?;
            let decoder = make("jpegdec")?;
            pipeline
                .add_many([&filter, &decoder])
                .map_err(|_| MediaError::Invalid("cannot add elements".into()))?;
            link_all(&[src, &filter, &decoder])?;
            Ok(decoder)
        }
    }
}

/// Where an encoder takes its bitrate, so it can be changed during the call.
#[derive(Debug, Clone)]
pub struct BitrateControl {
    element: gst::Element,
    property: String,
    unit: BitrateUnit,
}

impl BitrateControl {
    /// Sets the encoder's target bitrate in kbit/s (x264enc, openh264enc and V4L2 encoders
    /// take it while playing).
    pub fn set(&self, kbps: u32) -> Result<(), MediaError> {
        let value = match self.unit {
            BitrateUnit::Kbit => i64::from(kbps),
            BitrateUnit::Bit => i64::from(kbps) * 1000,
        };
        match self.property.split_once('.') {
            // A field of a structure property: V4L2 encoders take their bitrate as one of
            // their `extra-controls` (rpi4's v4l2h264enc).
            Some((property, field)) => props::set_field(&self.element, property, field, value)?,
            None => props::apply(
                &self.element,
                [(&self.property, &toml::Value::Integer(value))],
            )?,
        }
        Ok(())
    }
}

/// A profile's encoding stages as a call uses them: its converters, its encoder(s) with the
/// call's bitrate, and the encoder's output caps. Returns them in order, the encoder, and where
/// its bitrate is set.
fn encoder_stages(
    o: &MediaOptions,
    profile: &Profile,
) -> Result<(Vec<gst::Element>, gst::Element, Option<BitrateControl>), MediaError> {
    let mut chain = Vec::new();
    if profile.video_convert.is_empty() {
        chain.push(make("videoconvert")?);
    } else {
        for s in &profile.video_convert {
            chain.push(make_stage(s)?);
        }
    }
    let mut encoder = None;
    let mut control = None;
    for s in &profile.video_encoder {
        let e = make_stage(s)?;
        if let Some(prop) = &s.bitrate_property {
            let c = BitrateControl {
                element: e.clone(),
                property: prop.clone(),
                unit: s.bitrate_unit,
            };
            c.set(o.video_kbps)?;
            control.get_or_insert(c);
        }
        // Key frames on demand, whatever this encoder needs for them (keyframe.rs).
        super::keyframe::install(&e, super::version::GstVersion::running());
        encoder.get_or_insert_with(|| e.clone());
        chain.push(e);
    }
    let encoder = encoder.ok_or_else(|| MediaError::Invalid("profile without encoder".into()))?;
    chain.push(capsfilter(&profile.encoder_caps_for(
        o.width,
        o.height,
        o.framerate,
    ))?);
    Ok((chain, encoder, control))
}

/// A profile's encoding elements as a call builds them (converters, encoder(s) with the call's
/// bitrate and key-frame handling, the caps after them), unlinked and in no pipeline: for
/// tests and benchmarks that drive an encoder the way a call does.
pub fn encoding_chain(
    o: &MediaOptions,
    profile: &Profile,
) -> Result<Vec<gst::Element>, MediaError> {
    encoder_stages(o, profile).map(|(chain, _, _)| chain)
}

/// Frames the encoder check encodes.
const CHECK_FRAMES: i32 = 5;

/// Encodes a few frames of the call's size and rate through the profile's encoding stages,
/// exactly as a call feeds them: proof that the encoder does not only exist but works here (a
/// hardware encoder's device node present and free, the size and format accepted). Returns
/// how long it took, or what went wrong.
pub fn check_encoder(o: &MediaOptions, profile: &Profile) -> Result<std::time::Duration, String> {
    let started = std::time::Instant::now();
    let pipeline = gst::Pipeline::with_name("roomagent-encoder-check");
    let result = (|| -> Result<(), String> {
        let src = make("videotestsrc").map_err(|e| e.to_string())?;
        src.set_property("num-buffers", CHECK_FRAMES);
        let raw = capsfilter(&raw_video_caps(o)).map_err(|e| e.to_string())?;
        let (stages, _, _) = encoder_stages(o, profile).map_err(|e| e.to_string())?;
        let parse = make("h264parse").map_err(|e| e.to_string())?;
        let sink = make("fakesink").map_err(|e| e.to_string())?;
        sink.set_property("sync", false);
        let encoded = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counter = encoded.clone();
        sink.static_pad("sink")
            .expect("fakesink has a sink pad")
            .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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
        let bus = pipeline.bus().expect("a pipeline has a bus");
        let started = pipeline.set_state(gst::State::Playing);
        let msg = bus.timed_pop_filtered(
            gst::ClockTime::from_seconds(5),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
        match msg.as_ref().map(|m| m.view()) {
            Some(gst::MessageView::Eos(_))
                if encoded.load(std::sync::atomic::Ordering::Relaxed) > 0 =>
            {
                Ok(())
            }
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
                encoded.load(std::sync::atomic::Ordering::Relaxed)
            )),
        }
    })();
    let _ = pipeline.set_state(gst::State::Null);
    result.map(|()| started.elapsed())
}

/// A capture input of the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Input {
    /// The camera.
    Camera,
    /// The HDMI capture input.
    Hdmi,
    /// The microphone.
    Microphone,
}

impl Input {
    fn label(self) -> &'static str {
        match self {
            Input::Camera => "camera",
            Input::Hdmi => "HDMI input",
            Input::Microphone => "microphone",
        }
    }
}

/// An input that ends (its device gone, its process ended) sends EOS: it must not reach the
/// selector, which holds an EOS from a pad back (and with it the thread that a removal of
/// that input waits for): inputs come and go, the call goes on.
fn no_eos(pad: &gst::Pad) {
    pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, |_, info| {
        match info.event() {
            Some(e) if e.type_() == gst::EventType::Eos => gst::PadProbeReturn::Drop,
            _ => gst::PadProbeReturn::Ok,
        }
    });
}

/// The microphone's echo canceller and noise suppressor. Delay-agnostic: the delay between
/// what is played and what the microphone hears back differs per sound card and changes
/// with the sound server's buffering (a fixed estimate cancels nothing on many USB
/// speakerphones and HDMI audio paths). Set where the property is live (webrtc-audio-processing
/// 0.3: Debian 11 and 12); Debian 13's webrtcdsp marks it deprecated and it is left alone.
pub fn echo_canceller() -> Result<gst::Element, MediaError> {
    let dsp = make("webrtcdsp")?;
    dsp.set_property("echo-cancel", true);
    dsp.set_property("noise-suppression", true);
    if let Some(p) = dsp.find_property("delay-agnostic")
        && !p.flags().contains(gstreamer::glib::ParamFlags::DEPRECATED)
    {
        dsp.set_property("delay-agnostic", true);
    }
    Ok(dsp)
}

/// Live silence.
fn silence() -> Result<gst::Element, MediaError> {
    let e = make("audiotestsrc")?;
    e.set_property("is-live", true);
    e.set_property_from_str("wave", "silence");
    Ok(e)
}

/// The microphone (or silence) in a bin of its own, linked to a new pad of `selector`.
fn audio_input(
    pipeline: &gst::Pipeline,
    selector: &gst::Element,
    src: gst::Element,
) -> Result<VideoInput, MediaError> {
    let bin = gst::Bin::new();
    // The same format whichever input is selected: nothing downstream renegotiates.
    let conv = make("audioconvert")?;
    let resample = make("audioresample")?;
    let filter = capsfilter("audio/x-raw,format=S16LE,rate=48000,channels=1")?;
    bin.add_many([&src, &conv, &resample, &filter])
        .map_err(|_| MediaError::Invalid("cannot add elements".into()))?;
    link_all(&[&src, &conv, &resample, &filter])?;
    let out = filter.static_pad("src").expect("capsfilter src");
    let frames = Arc::new(std::sync::atomic::AtomicU64::new(0));
    plug_in(pipeline, selector, bin, &out, frames, "microphone")
}

/// Puts an input's bin into the call: `out` (its last pad; an EOS there stops) exposed on the
/// bin, the bin in `pipeline`, linked to a new pad of `selector`.
fn plug_in(
    pipeline: &gst::Pipeline,
    selector: &gst::Element,
    bin: gst::Bin,
    out: &gst::Pad,
    frames: Arc<std::sync::atomic::AtomicU64>,
    label: &str,
) -> Result<VideoInput, MediaError> {
    no_eos(out);
    let ghost = gst::GhostPad::with_target(out)
        .map_err(|_| MediaError::Invalid("cannot expose the input's output".into()))?;
    bin.add_pad(&ghost)
        .map_err(|_| MediaError::Invalid("cannot expose the input's output".into()))?;
    pipeline
        .add(&bin)
        .map_err(|_| MediaError::Invalid("cannot add elements".into()))?;
    let pad = selector
        .request_pad_simple("sink_%u")
        .ok_or_else(|| MediaError::Invalid("input-selector gave no pad".into()))?;
    ghost.link(&pad).map_err(|_| MediaError::Link {
        from: label.into(),
        to: "input-selector".into(),
    })?;
    Ok(VideoInput { bin, pad, frames })
}

/// A video capture input: its source and what turns it into the call's raw video, in a bin of
/// its own (so it can leave and come back while the call runs), linked to a selector pad.
pub struct VideoInput {
    bin: gst::Bin,
    pad: gst::Pad,
    /// Frames it delivered.
    frames: Arc<std::sync::atomic::AtomicU64>,
}

/// The source element for `input` (and the formats its device offers, when known): the
/// configured or discovered device, else (for the camera) the profile's source or a test
/// pattern. `None`: no such input.
pub fn input_source(
    input: Input,
    o: &MediaOptions,
    profile: &Profile,
    found: &Discovered,
) -> Result<Option<(gst::Element, Option<gst::Caps>)>, MediaError> {
    match input {
        Input::Hdmi => device_source(&o.hdmi, &found.hdmi, None, "v4l2src"),
        Input::Microphone => Ok(Some(
            match device_source(
                &o.microphone,
                &found.microphones,
                profile.audio_source.as_ref(),
                "pulsesrc",
            )? {
                Some(m) => m,
                None => match &profile.audio_source {
                    Some(stage) => (make_stage(stage)?, None),
                    None => (silence()?, None),
                },
            },
        )),
        Input::Camera => {
            // A `pipeline:` camera is used whatever the profile (the test profile included).
            let needs_camera = profile.requires.devices.contains(&DeviceKind::Camera)
                || matches!(o.camera, DeviceChoice::Pipeline(_));
            let camera = if needs_camera {
                device_source(
                    &o.camera,
                    &found.cameras,
                    profile.video_source.as_ref(),
                    "v4l2src",
                )?
            } else {
                None
            };
            Ok(Some(match camera {
                Some(c) => c,
                None => match &profile.video_source {
                    Some(stage) if !needs_camera => (make_stage(stage)?, None),
                    _ => {
                        // No camera at all: a pattern rather than nothing, so the far end
                        // sees life.
                        let e = make("videotestsrc")?;
                        e.set_property("is-live", true);
                        (e, None)
                    }
                },
            }))
        }
    }
}

/// Builds `input`'s bin around `src` and links it to a new pad of `selector`.
fn video_input(
    pipeline: &gst::Pipeline,
    selector: &gst::Element,
    input: Input,
    src: gst::Element,
    caps: Option<&gst::Caps>,
    o: &MediaOptions,
) -> Result<VideoInput, MediaError> {
    let bin = gst::Bin::new();
    let add = |e: &[&gst::Element]| {
        bin.add_many(e.iter().copied())
            .map_err(|_| MediaError::Invalid("cannot add elements".into()))
    };
    add(&[&src])?;
    let raw = capture(&bin, &src, caps, input.label(), o)?;
    let conv = make("videoconvert")?;
    let scale = make("videoscale")?;
    let rate = make("videorate")?;
    rate.set_property("drop-only", true);
    let filter = capsfilter(&raw_video_caps(o))?;
    add(&[&conv, &scale, &rate, &filter])?;
    link_all(&[&raw, &conv, &scale, &rate, &filter])?;
    let out = filter.static_pad("src").expect("capsfilter src");
    let frames = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = frames.clone();
    out.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        gst::PadProbeReturn::Ok
    });
    plug_in(pipeline, selector, bin, &out, frames, input.label())
}

/// Counts raw frames into `encoder` (the first of `counts`).
fn count_into_encoder(
    encoder: &gst::Element,
    counts: &Arc<(std::sync::atomic::AtomicU64, std::sync::atomic::AtomicU64)>,
) {
    let c = counts.clone();
    if let Some(pad) = encoder.static_pad("sink") {
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            c.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });
    }
}

/// A playback device of the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Output {
    /// Where remote audio plays.
    Speaker,
    /// Where remote video shows.
    Display,
}

/// The structure name of the message posted when a speaker or display sink fails.
pub const OUTPUT_FAILED: &str = "roomagent-output-failed";

/// A speaker or display sink behind its queue. The queue hands it buffers through a guard
/// (see `guard_element`): a sink that fails (unplugged, its device gone) returns an error the
/// queue does not see, so the mixer or compositor in front never stops, and a stand-in that
/// only keeps time takes its place until the device is back.
struct OutputSlot {
    queue: gst::Element,
    sink: gst::Element,
    failed: Arc<std::sync::atomic::AtomicBool>,
    /// A stand-in runs in the device's place.
    standing_in: bool,
}

impl OutputSlot {
    /// A slot with `sink` playing (a stand-in: `standing_in`).
    fn new(queue: gst::Element, sink: gst::Element, standing_in: bool) -> OutputSlot {
        let failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        guard_element(&queue, failed.clone(), OUTPUT_FAILED);
        OutputSlot {
            queue,
            sink,
            failed,
            standing_in,
        }
    }
}

/// Plays in a speaker's or display's place: keeps time, shows and plays nothing.
fn stand_in() -> Result<gst::Element, MediaError> {
    let s = make("fakesink")?;
    s.set_property("sync", true);
    s.set_property("async", false);
    Ok(s)
}

/// The structure name of the message posted when a quality layer's own encoder fails.
pub const LAYER_FAILED: &str = "roomagent-layer-failed";

/// Raw caps of a size and rate.
fn level_caps(width: u32, height: u32, framerate: u32) -> gst::Caps {
    gst::Caps::builder("video/x-raw")
        .field("format", "I420")
        .field("width", width as i32)
        .field("height", height as i32)
        .field("framerate", gst::Fraction::new(framerate as i32, 1))
        .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
        .build()
}

/// A quality layer's own encode: `queue ! videoscale ! videorate ! caps ! <the profile's
/// encoding stages> ! h264parse ! caps` in a bin of its own off the raw tee, into a tee the
/// sessions watching that layer hang off.
pub struct LayerEncode {
    bin: gst::Bin,
    /// Encoded H.264 of this layer, for the sessions' payloaders.
    pub tee: gst::Element,
    raw_pad: gst::Pad,
    bitrate: Option<BitrateControl>,
    /// The bitrate it was last set to.
    pub kbps: u32,
    /// Its size and rate.
    pub level: super::adapt::Level,
}

/// The structure name of the message posted when the encoder fails.
pub const ENCODER_FAILED: &str = "roomagent-encoder-failed";

/// Keeps the failure of the element behind `upstream` (the encoder, a quality layer's
/// encoder, a speaker or display sink) from stopping everything in front of it: buffers are
/// handed to it from `upstream`'s src pad here, and an error it returns is not passed back up
/// (where it would stop the queue's thread, then every source behind it) but noted in `failed`
/// and posted to the bus as `message`; buffers are then dropped until it is replaced.
fn guard_element(
    upstream: &gst::Element,
    failed: Arc<std::sync::atomic::AtomicBool>,
    message: &'static str,
) {
    use std::sync::atomic::Ordering;
    let Some(src) = upstream.static_pad("src") else {
        return;
    };
    let element = upstream.clone();
    src.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        if failed.load(Ordering::Acquire) {
            return gst::PadProbeReturn::Drop;
        }
        let (Some(peer), Some(gst::PadProbeData::Buffer(buffer))) = (pad.peer(), info.data.take())
        else {
            return gst::PadProbeReturn::Ok;
        };
        match peer.chain(buffer) {
            Ok(_) => {}
            // The element behind is being swapped (the flag was set first): its FLUSHING must
            // not stop the thread in front for good. Otherwise the pipeline is stopping.
            Err(gst::FlowError::Flushing) if failed.load(Ordering::Acquire) => {}
            Err(gst::FlowError::Flushing) => info.flow_res = Err(gst::FlowError::Flushing),
            Err(e) => {
                if !failed.swap(true, Ordering::AcqRel) {
                    let name = peer
                        .parent_element()
                        .map(|e| e.name().to_string())
                        .unwrap_or_default();
                    let msg = gst::message::Application::builder(
                        gst::Structure::builder(message)
                            .field("flow", format!("{e:?}"))
                            .field("element", name)
                            .build(),
                    )
                    .src(&element)
                    .build();
                    let _ = element.post_message(msg);
                }
            }
        }
        gst::PadProbeReturn::Handled
    });
}

/// Builds the call pipeline (not yet playing): capture from `profile`, encoding with
/// `encoding`'s stages (the same profile, unless its encoder failed before).
pub fn build(
    o: &MediaOptions,
    profile: &Profile,
    encoding: &Profile,
    found: &Discovered,
    without: &std::collections::BTreeSet<Input>,
    stand_ins: bool,
) -> Result<CallPipeline, MediaError> {
    // Long on purpose, for now: a split of this module (commit 1dab2ee) lost a call's media in
    // the fifty-sequential-calls test (2 runs of 3) and was backed out; split it again with that
    // test run several times.
    let pipeline = gst::Pipeline::with_name("roomagent-call");
    let raw = raw_video_caps(o);

    // ---- local video: camera / black / HDMI into a selector
    let selector = make("input-selector")?;
    selector.set_property("sync-streams", false);
    pipeline
        .add(&selector)
        .map_err(|_| MediaError::Invalid("cannot add elements".into()))?;
    let mut sources = Vec::new();

    // A new input of the selector, fed by `last` (which gives the call's raw caps).
    let to_selector = |last: &gst::Element| -> Result<gst::Pad, MediaError> {
        let pad = selector
            .request_pad_simple("sink_%u")
            .ok_or_else(|| MediaError::Invalid("input-selector gave no pad".into()))?;
        last.static_pad("src")
            .expect("a src pad")
            .link(&pad)
            .map_err(|_| MediaError::Link {
                from: last.name().to_string(),
                to: "input-selector".into(),
            })?;
        Ok(pad)
    };
    let camera = match input_source(Input::Camera, o, profile, found)? {
        Some((src, caps)) if !without.contains(&Input::Camera) => {
            let input = video_input(&pipeline, &selector, Input::Camera, src, caps.as_ref(), o)?;
            sources.push(input.bin.clone().upcast());
            Some(input)
        }
        _ => None,
    };

    // The camera-off slate: one black frame, repeated by imagefreeze at the call's rate (the
    // same buffer each time: nothing is drawn 30 times a second for a selector that mostly
    // drops it).
    let black = make("videotestsrc")?;
    black.set_property("num-buffers", 1i32);
    black.set_property_from_str("pattern", "black");
    let black_caps = capsfilter(&raw)?;
    let freeze = make("imagefreeze")?;
    freeze.set_property("is-live", true);
    // imagefreeze picks its output rate with downstream: the selector accepts any.
    let freeze_caps = capsfilter(&raw)?;
    pipeline
        .add_many([&black, &black_caps, &freeze, &freeze_caps])
        .map_err(|_| MediaError::Invalid("cannot add elements".into()))?;
    link_all(&[&black, &black_caps, &freeze, &freeze_caps])?;
    let black_pad = to_selector(&freeze_caps)?;
    sources.push(freeze.clone());

    let hdmi_wanted = match o.hdmi {
        DeviceChoice::None => false,
        DeviceChoice::Auto => !found.hdmi.is_empty(),
        DeviceChoice::Path(_) | DeviceChoice::Pipeline(_) => true,
    };
    let hdmi = match input_source(Input::Hdmi, o, profile, found)? {
        Some((src, caps)) if !without.contains(&Input::Hdmi) => {
            let input = video_input(&pipeline, &selector, Input::Hdmi, src, caps.as_ref(), o)?;
            sources.push(input.bin.clone().upcast());
            Some(input)
        }
        _ => None,
    };
    selector.set_property("active-pad", camera.as_ref().map_or(&black_pad, |c| &c.pad));

    // ---- encoder (behind a tee of raw frames: a quality layer's own encode branches off here)
    let raw_tee = make("tee")?;
    raw_tee.set_property("name", "raw-tee");
    raw_tee.set_property("allow-not-linked", true);
    let vqueue = make("queue")?;
    vqueue.set_property("name", "encoder-queue");
    vqueue.set_property("max-size-buffers", 2u32);
    vqueue.set_property("max-size-time", 0u64);
    vqueue.set_property("max-size-bytes", 0u32);
    vqueue.set_property_from_str("leaky", "downstream");
    let mut chain: Vec<gst::Element> = vec![raw_tee.clone(), vqueue];
    // Bitrate adaptation and quality layers step the size and rate down here (a passthrough
    // while the call's own size and rate are sent).
    let adapt_caps = {
        let scale = make("videoscale")?;
        let rate = make("videorate")?;
        rate.set_property("drop-only", true);
        let filter = capsfilter(&raw)?;
        filter.set_property("name", "adapt-caps");
        chain.extend([scale, rate, filter.clone()]);
        filter
    };
    let encoder_upstream = chain.last().expect("the encoder queue").clone();
    let (stages, encoder, bitrate) = encoder_stages(o, encoding)?;
    let encoder_stages = stages.clone();
    chain.extend(stages);
    let encoder_counts: Arc<(std::sync::atomic::AtomicU64, std::sync::atomic::AtomicU64)> =
        Arc::default();
    count_into_encoder(&encoder, &encoder_counts);
    let encoder_failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    guard_element(&encoder_upstream, encoder_failed.clone(), ENCODER_FAILED);
    let parse = make("h264parse")?;
    parse.set_property("config-interval", -1i32);
    let encoder_downstream = parse.clone();
    chain.push(parse);
    chain.push(capsfilter(
        "video/x-h264,stream-format=(string)byte-stream,alignment=(string)au",
    )?);
    let video_tee = make("tee")?;
    video_tee.set_property("allow-not-linked", true);
    {
        let c = encoder_counts.clone();
        video_tee.static_pad("sink").expect("tee sink").add_probe(
            gst::PadProbeType::BUFFER,
            move |_, _| {
                c.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                gst::PadProbeReturn::Ok
            },
        );
    }
    chain.push(video_tee.clone());
    pipeline
        .add_many(&chain)
        .map_err(|_| MediaError::Invalid("cannot add elements".into()))?;
    let refs: Vec<&gst::Element> = std::iter::once(&selector).chain(chain.iter()).collect();
    link_all(&refs)?;

    // ---- local audio
    // The microphone and, for when it is lost, silence, into a selector.
    let (mic, _) = input_source(Input::Microphone, o, profile, found)?
        .expect("a microphone source, silence at least");
    let audio_selector = make("input-selector")?;
    audio_selector.set_property("sync-streams", false);
    pipeline
        .add(&audio_selector)
        .map_err(|_| MediaError::Invalid("cannot add elements".into()))?;
    let mic = if without.contains(&Input::Microphone) {
        None
    } else {
        let mic = audio_input(&pipeline, &audio_selector, mic)?;
        sources.push(mic.bin.clone().upcast());
        Some(mic)
    };
    let silence = audio_input(&pipeline, &audio_selector, silence()?)?;
    sources.push(silence.bin.clone().upcast());
    audio_selector.set_property("active-pad", mic.as_ref().map_or(&silence.pad, |m| &m.pad));
    // Nothing is played without a speaker, so there is no echo to cancel; nor with a
    // speakerphone that cancels its own.
    let speaker = sink_element(&o.speaker, false)?;
    let microphone = chosen_device(&o.microphone, &found.microphones);
    let self_cancelling = microphone.and_then(|d| {
        let props = d.device.as_ref().and_then(|x| x.properties());
        super::devices::cancels_own_echo(&d.name, props.as_deref())
    });
    if let (Some(d), Some(what), super::EchoCancellation::Auto) =
        (microphone, &self_cancelling, o.echo_cancellation)
    {
        info!(microphone = %d.name, device = %what, "the microphone cancels its own echo: the agent's echo canceller is off");
    }
    let echo_cancel = speaker.is_some()
        && o.echo_cancellation.resolve(
            profile.audio_source.is_none() || !found.microphones.is_empty(),
            self_cancelling.is_some(),
        );
    let mut audio: Vec<gst::Element> = vec![
        audio_selector.clone(),
        make("audioconvert")?,
        make("audioresample")?,
        capsfilter("audio/x-raw,format=S16LE,rate=48000,channels=1")?,
    ];
    if echo_cancel {
        audio.push(echo_canceller()?);
        audio.push(make("audioconvert")?);
    }
    let mic_volume = make("volume")?;
    audio.push(mic_volume.clone());
    let opus = match &profile.audio_encoder {
        Some(stage) => make_stage(stage)?,
        None => make("opusenc")?,
    };
    opus.set_property("bitrate", (o.audio_kbps * 1000) as i32);
    opus.set_property_from_str("audio-type", "voice");
    opus.set_property_from_str("frame-size", "20");
    audio.push(opus.clone());
    let audio_tee = make("tee")?;
    audio_tee.set_property("allow-not-linked", true);
    audio.push(audio_tee.clone());
    pipeline
        .add_many(audio.iter().skip(1))
        .map_err(|_| MediaError::Invalid("cannot add elements".into()))?;
    link_all(&audio.iter().collect::<Vec<_>>())?;

    // ---- remote video: compositor onto the display (none: remote video is not decoded)
    // With `stand_ins`, the speaker and the display are stand-ins that only keep time (their
    // devices did not start: the call goes on without them, and they are tried again).
    let display = sink_element(&o.display, true)?;
    let mut outputs = BTreeMap::new();
    let (compositor, display_filter) = match display {
        None => (None, None),
        Some(real) => {
            let sink = if stand_ins { stand_in()? } else { real };
            let d = display_path(&pipeline, o, sink.clone())?;
            sources.push(d.background);
            outputs.insert(Output::Display, OutputSlot::new(d.queue, sink, stand_ins));
            (Some(d.compositor), Some(d.filter))
        }
    };

    // ---- remote audio: mixer over silence (none: remote audio is not decoded)
    let speaker_volume = make("volume")?;
    speaker_volume.set_property("volume", o.volume as f64 / 100.0);
    let mixer = match speaker {
        None => None,
        Some(real) => {
            let speaker = if stand_ins { stand_in()? } else { real };
            let mixer = make("audiomixer")?;
            let silence = make("audiotestsrc")?;
            silence.set_property("is-live", true);
            silence.set_property_from_str("wave", "silence");
            let silence_caps = capsfilter("audio/x-raw,format=S16LE,rate=48000,channels=2")?;
            sources.push(silence.clone());
            let mut playback: Vec<gst::Element> = vec![silence, silence_caps, mixer.clone()];
            if echo_cancel {
                playback.push(make("audioconvert")?);
                playback.push(make("audioresample")?);
                playback.push(make("webrtcechoprobe")?);
            }
            playback.push(speaker_volume.clone());
            playback.push(make("audioconvert")?);
            playback.push(make("audioresample")?);
            let sq = make("queue")?;
            sq.set_property("name", "speaker-queue");
            playback.push(sq.clone());
            playback.push(speaker.clone());
            outputs.insert(Output::Speaker, OutputSlot::new(sq, speaker, stand_ins));
            pipeline
                .add_many(&playback)
                .map_err(|_| MediaError::Invalid("cannot add elements".into()))?;
            link_all(&playback.iter().collect::<Vec<_>>())?;
            Some(mixer)
        }
    };

    Ok(CallPipeline {
        pipeline,
        video_tee,
        audio_tee,
        selector,
        hdmi_wanted,
        audio_selector,
        microphone: mic,
        silence_pad: silence.pad,
        camera,
        black_pad,
        hdmi,
        mic_volume,
        speaker_volume,
        remote: RemoteOutputs {
            compositor,
            mixer,
            h264_decoder: super::session::h264_decoder(profile),
            software_video: Arc::default(),
            layout: Arc::new(Mutex::new(Layout {
                tiles: Vec::new(),
                width: o.display_width as i32,
                height: o.display_height as i32,
                framerate: o.framerate as i32,
                filter: display_filter,
            })),
        },
        encoder,
        encoder_stages,
        encoder_upstream,
        encoder_downstream,
        encoder_failed,
        encoding: encoding.name.clone(),
        bitrate,
        pace_kbps: Arc::new(std::sync::atomic::AtomicU32::new(o.video_kbps)),
        adapt_caps,
        raw_tee,
        layers: BTreeMap::new(),
        outputs,
        audio_encoder: opus,
        sources,
        encoder_counts,
    })
}

impl LayerEncode {
    /// Sets its encoder's bitrate (kbit/s).
    pub fn set_kbps(&mut self, kbps: u32) {
        if let Some(b) = &self.bitrate
            && let Err(e) = b.set(kbps)
        {
            tracing::warn!(error = %e, "cannot change a quality layer's bitrate");
        }
        self.kbps = kbps;
    }

    /// Detaches it from the raw frames at an idle point, waits (up to 2 s) for the sessions
    /// that were moved off it to be relinked, then stops and removes it. Blocks.
    pub fn stop(self, pipeline: &gst::Pipeline, raw_tee: &gst::Element) {
        let (tx, rx) = std::sync::mpsc::channel();
        self.raw_pad
            .add_probe(gst::PadProbeType::IDLE, move |pad, _| {
                if let Some(peer) = pad.peer() {
                    let _ = pad.unlink(&peer);
                }
                let _ = tx.send(());
                gst::PadProbeReturn::Remove
            });
        if rx.recv_timeout(std::time::Duration::from_secs(2)).is_err()
            && let Some(peer) = self.raw_pad.peer()
        {
            let _ = self.raw_pad.unlink(&peer);
        }
        raw_tee.release_request_pad(&self.raw_pad);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while self.tee.src_pads().iter().any(|p| p.is_linked())
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        for e in [self.bin.upcast_ref::<gst::Element>(), &self.tee] {
            e.set_locked_state(true);
            let _ = e.set_state(gst::State::Null);
            let _ = pipeline.remove(e);
        }
    }
}

/// The display or speaker element, or `None` when there is none (then remote media of that
/// kind is not decoded at all).
pub fn sink_element(choice: &SinkChoice, video: bool) -> Result<Option<gst::Element>, MediaError> {
    let name = match choice {
        SinkChoice::None => return Ok(None),
        SinkChoice::Pipeline(d) => {
            return gst::parse::bin_from_description(d, true)
                .map(|b| Some(b.upcast()))
                .map_err(|e| MediaError::Invalid(format!("pipeline:{d}: {e}")));
        }
        SinkChoice::Element(name) => name.clone(),
        SinkChoice::Auto => match auto_sink(video) {
            Some(name) => name.to_string(),
            None => return Ok(None),
        },
    };
    let e = make(&name)?;
    if name == "fakesink" {
        e.set_property("sync", false);
        e.set_property("async", false);
    } else if e.find_property("sync").is_some() {
        e.set_property("sync", true);
    }
    Ok(Some(e))
}

/// What `auto` means for the display (`video`) or the speaker here: a window on a desktop,
/// `kmssink` on a bare board with a DRM device, the sound server or ALSA; `None` when the
/// machine has no such output.
fn auto_sink(video: bool) -> Option<&'static str> {
    if video {
        if std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some() {
            Some("autovideosink")
        } else if std::path::Path::new("/dev/dri/card0").exists()
            && gst::ElementFactory::find("kmssink").is_some()
        {
            Some("kmssink")
        } else {
            None
        }
    } else if std::env::var_os("PULSE_SERVER").is_some()
        || std::path::Path::new("/run/user").exists()
            && std::env::var_os("XDG_RUNTIME_DIR").is_some()
        || std::path::Path::new("/dev/snd/controlC0").exists()
    {
        Some("autoaudiosink")
    } else {
        None
    }
}

/// The display path: `compositor ! capsfilter ! videoconvert ! queue ! display`. The
/// compositor is fed by a tiny black source at one frame a second (so it has an input and
/// paints its black background, once a second, when no participant sends video) and by
/// one pad per participant ([`Layout`]). Everything is I420, the decoders' own format: no
/// alpha to blend, nothing converted unless the display needs it.
fn display_path(
    pipeline: &gst::Pipeline,
    o: &MediaOptions,
    display: gst::Element,
) -> Result<DisplayPath, MediaError> {
    let compositor = make("compositor")?;
    compositor.set_property_from_str("background", "black");
    let bg = make("videotestsrc")?;
    bg.set_property("is-live", true);
    bg.set_property_from_str("pattern", "black");
    let bg_caps = capsfilter("video/x-raw,format=I420,width=16,height=16,framerate=1/1")?;
    let out_caps = capsfilter(&display_caps(
        1,
        Some((o.display_width as i32, o.display_height as i32)),
    ))?;
    let vconv = make("videoconvert")?;
    let vq = make("queue")?;
    vq.set_property("name", "display-queue");
    pipeline
        .add_many([&bg, &bg_caps, &compositor, &out_caps, &vconv, &vq, &display])
        .map_err(|_| MediaError::Invalid("cannot add elements".into()))?;
    link_all(&[&bg, &bg_caps, &compositor, &out_caps, &vconv, &vq, &display])?;
    // The background pad is transparent: only the compositor's own black shows.
    if let Some(pad) = bg_caps.static_pad("src").and_then(|p| p.peer()) {
        pad.set_property("alpha", 0.0f64);
    }
    Ok(DisplayPath {
        compositor,
        background: bg,
        filter: out_caps,
        queue: vq,
    })
}

/// The parts of the display path the call keeps.
struct DisplayPath {
    /// The queue in front of the display sink.
    queue: gst::Element,
    compositor: gst::Element,
    /// The live background source (stopped first when the call ends).
    background: gst::Element,
    /// The compositor's output caps, which the layout sets.
    filter: gst::Element,
}

/// The compositor's output: I420 at `framerate`, `size` or (one participant) the
/// participant's own size.
fn display_caps(framerate: i32, size: Option<(i32, i32)>) -> String {
    match size {
        Some((w, h)) => {
            format!("video/x-raw,format=I420,width={w},height={h},framerate={framerate}/1")
        }
        None => format!("video/x-raw,format=I420,framerate={framerate}/1"),
    }
}

impl CallPipeline {
    /// Chooses what the camera input shows: HDMI when sharing, else camera or black.
    /// The slate stands in for a camera that is lost, and for an HDMI input that is lost
    /// while sharing.
    pub fn set_video_input(&self, camera_on: bool, sharing: bool) -> Result<(), MediaError> {
        if sharing && !self.hdmi_wanted {
            return Err(MediaError::NoHdmi);
        }
        let pad = match (&self.hdmi, &self.camera) {
            (Some(h), _) if sharing => &h.pad,
            (_, Some(c)) if camera_on && !sharing => &c.pad,
            _ => &self.black_pad,
        };
        if self
            .selector
            .property::<Option<gst::Pad>>("active-pad")
            .as_ref()
            != Some(pad)
        {
            self.selector.set_property("active-pad", pad);
        }
        Ok(())
    }

    /// The input whose bin holds `src` (an error's source).
    pub fn input_owning(&self, src: &gst::Object) -> Option<Input> {
        [
            (Input::Camera, &self.camera),
            (Input::Hdmi, &self.hdmi),
            (Input::Microphone, &self.microphone),
        ]
        .into_iter()
        .find(|(_, i)| i.as_ref().is_some_and(|i| src.has_as_ancestor(&i.bin)))
        .map(|(k, _)| k)
    }

    /// Whether `input` is attached now.
    pub fn has_input(&self, input: Input) -> bool {
        match input {
            Input::Camera => self.camera.is_some(),
            Input::Hdmi => self.hdmi.is_some(),
            Input::Microphone => self.microphone.is_some(),
        }
    }

    /// Whether the call has (or had, before it was lost) an HDMI capture input.
    pub fn hdmi_wanted(&self) -> bool {
        self.hdmi_wanted
    }

    /// Frames `input` delivered so far (`None`: not attached).
    pub fn input_frames(&self, input: Input) -> Option<u64> {
        let i = match input {
            Input::Camera => &self.camera,
            Input::Hdmi => &self.hdmi,
            Input::Microphone => &self.microphone,
        };
        i.as_ref()
            .map(|i| i.frames.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Takes a lost input out of the call (the caller selects the slate first, through
    /// [`CallPipeline::set_video_input`] with the input gone). Returns whether it was there.
    pub fn remove_input(&mut self, input: Input) -> bool {
        let slot = match input {
            Input::Camera => &mut self.camera,
            Input::Hdmi => &mut self.hdmi,
            Input::Microphone => &mut self.microphone,
        };
        let Some(i) = slot.take() else {
            return false;
        };
        // Away from it first, then cut off: nothing it still pushes reaches the call.
        if input == Input::Microphone {
            self.audio_selector
                .set_property("active-pad", &self.silence_pad);
        } else if self
            .selector
            .property::<Option<gst::Pad>>("active-pad")
            .as_ref()
            == Some(&i.pad)
        {
            self.selector.set_property("active-pad", &self.black_pad);
        }
        if let Some(ghost) = i.bin.static_pad("src") {
            let _ = ghost.unlink(&i.pad);
        }
        i.bin.set_locked_state(true);
        let _ = i.bin.set_state(gst::State::Null);
        self.selector.release_request_pad(&i.pad);
        let _ = self.pipeline.remove(&i.bin);
        self.sources
            .retain(|s| s != i.bin.upcast_ref::<gst::Element>());
        true
    }

    /// Brings `input` back (a device plugged in again, a signal back): built from `src` and
    /// started; on failure it is taken out again and the error returned.
    pub fn add_input(
        &mut self,
        input: Input,
        src: gst::Element,
        caps: Option<&gst::Caps>,
        o: &MediaOptions,
    ) -> Result<(), MediaError> {
        let i = if input == Input::Microphone {
            audio_input(&self.pipeline, &self.audio_selector, src)?
        } else {
            video_input(&self.pipeline, &self.selector, input, src, caps, o)?
        };
        let started = i.bin.sync_state_with_parent();
        let bin = i.bin.clone();
        let pad = i.pad.clone();
        match input {
            Input::Camera => self.camera = Some(i),
            Input::Hdmi => self.hdmi = Some(i),
            Input::Microphone => self.microphone = Some(i),
        }
        self.sources.push(bin.upcast());
        if started.is_err() {
            self.remove_input(input);
            return Err(MediaError::Invalid(format!(
                "the {} did not start",
                input.label()
            )));
        }
        if input == Input::Microphone {
            self.audio_selector.set_property("active-pad", &pad);
        }
        Ok(())
    }

    /// Raw frames that reached the encoder and encoded frames it produced, this call.
    pub fn encoder_totals(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.encoder_counts.0.load(Relaxed),
            self.encoder_counts.1.load(Relaxed),
        )
    }

    /// Sends `width`×`height` at `framerate` (scaled and rate-limited before the encoder,
    /// which starts a new sequence at the new size: no renegotiation with the peers).
    pub fn set_video_level(&self, width: u32, height: u32, framerate: u32) {
        self.adapt_caps
            .set_property("caps", level_caps(width, height, framerate));
    }

    /// Whether the encoder failed and is not replaced yet.
    pub fn encoder_failed(&self) -> bool {
        self.encoder_failed
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Whether `src` (an error's source) is one of the encoding stages or inside one.
    pub fn encoder_owns(&self, src: &gst::Object) -> bool {
        self.encoder_stages
            .iter()
            .any(|e| src == e.upcast_ref::<gst::Object>() || src.has_as_ancestor(e))
    }

    /// Replaces the encoding stages with `profile`'s, while the call runs: the capture side
    /// and the sessions carry on (the payload stays H.264 of the same caps, so nothing is
    /// renegotiated). The new encoder starts with a key frame at the current `kbps`.
    pub fn replace_encoder(
        &mut self,
        o: &MediaOptions,
        profile: &Profile,
        kbps: u32,
    ) -> Result<(), MediaError> {
        use std::sync::atomic::Ordering;
        self.encoder_failed.store(true, Ordering::Release);
        let (stages, encoder, bitrate) = encoder_stages(o, profile)?;
        let up = self.encoder_upstream.static_pad("src").expect("src pad");
        let down = self
            .encoder_downstream
            .static_pad("sink")
            .expect("sink pad");
        if let Some(peer) = up.peer() {
            let _ = up.unlink(&peer);
        }
        if let Some(peer) = down.peer() {
            let _ = peer.unlink(&down);
        }
        for e in std::mem::take(&mut self.encoder_stages) {
            e.set_locked_state(true);
            let _ = e.set_state(gst::State::Null);
            let _ = self.pipeline.remove(&e);
        }
        self.pipeline
            .add_many(&stages)
            .map_err(|_| MediaError::Invalid("cannot add elements".into()))?;
        let mut refs: Vec<&gst::Element> = stages.iter().collect();
        refs.push(&self.encoder_downstream);
        link_all(&refs)?;
        count_into_encoder(&encoder, &self.encoder_counts);
        if let Some(b) = &bitrate {
            b.set(kbps)?;
        }
        for e in stages.iter().rev() {
            e.sync_state_with_parent()
                .map_err(|_| MediaError::Invalid(format!("{} did not start", e.name())))?;
        }
        // Linked to the frames last, once playing: the next push sends the sticky events
        // first, and a stage still in NULL would answer FLUSHING and stop the encoder queue.
        link_all(&[&self.encoder_upstream, &stages[0]])?;
        self.encoder_stages = stages;
        self.encoder = encoder;
        self.bitrate = bitrate;
        self.encoding = profile.name.clone();
        self.encoder_failed.store(false, Ordering::Release);
        Ok(())
    }

    /// Starts a quality layer's own encode at `level` and `kbps`, with `profile`'s encoding
    /// stages (a second instance of the call's encoder); returns the tee its sessions hang
    /// off. Fails when the encoder cannot run a second time (a hardware encoder with one
    /// context), and then leaves nothing behind.
    pub fn add_layer(
        &mut self,
        o: &MediaOptions,
        profile: &Profile,
        layer: u8,
        level: super::adapt::Level,
        kbps: u32,
    ) -> Result<gst::Element, MediaError> {
        if let Some(l) = self.layers.get(&layer) {
            return Ok(l.tee.clone());
        }
        let bin = gst::Bin::with_name(&format!("layer-{layer}"));
        let queue = make("queue")?;
        queue.set_property("max-size-buffers", 2u32);
        queue.set_property("max-size-time", 0u64);
        queue.set_property("max-size-bytes", 0u32);
        queue.set_property_from_str("leaky", "downstream");
        let scale = make("videoscale")?;
        let rate = make("videorate")?;
        rate.set_property("drop-only", true);
        let filter = make("capsfilter")?;
        filter.set_property(
            "caps",
            level_caps(level.width, level.height, level.framerate),
        );
        let (stages, _encoder, bitrate) = encoder_stages(o, profile)?;
        if let Some(b) = &bitrate {
            b.set(kbps)?;
        }
        let parse = make("h264parse")?;
        parse.set_property("config-interval", -1i32);
        let out =
            capsfilter("video/x-h264,stream-format=(string)byte-stream,alignment=(string)au")?;
        let mut chain = vec![queue.clone(), scale, rate, filter.clone()];
        chain.extend(stages);
        chain.extend([parse, out.clone()]);
        bin.add_many(&chain)
            .map_err(|_| MediaError::Invalid("cannot add elements".into()))?;
        link_all(&chain.iter().collect::<Vec<_>>())?;
        let ghost = |pad: gst::Pad, name: &str| -> Result<gst::Pad, MediaError> {
            let g = gst::GhostPad::builder_with_target(&pad)
                .map_err(|_| MediaError::Invalid("cannot make a ghost pad".into()))?
                .name(name)
                .build();
            bin.add_pad(&g)
                .map_err(|_| MediaError::Invalid("cannot add a ghost pad".into()))?;
            Ok(g.upcast())
        };
        let sink = ghost(queue.static_pad("sink").expect("queue sink"), "sink")?;
        let src = ghost(out.static_pad("src").expect("caps src"), "src")?;
        // The encoder's failure stays inside the layer (see `guard_element`).
        guard_element(&filter, Arc::default(), LAYER_FAILED);
        let tee = make("tee")?;
        tee.set_property("name", format!("layer-tee-{layer}"));
        tee.set_property("allow-not-linked", true);
        self.pipeline
            .add_many([bin.upcast_ref::<gst::Element>(), &tee])
            .map_err(|_| MediaError::Invalid("cannot add elements".into()))?;
        let undo = |p: &gst::Pipeline| {
            for e in [bin.upcast_ref::<gst::Element>(), &tee] {
                let _ = e.set_state(gst::State::Null);
                let _ = p.remove(e);
            }
        };
        let started = src
            .link(&tee.static_pad("sink").expect("tee sink"))
            .map_err(|_| MediaError::Link {
                from: bin.name().to_string(),
                to: tee.name().to_string(),
            })
            .and_then(|_| {
                tee.sync_state_with_parent()
                    .map_err(|_| MediaError::Invalid("the layer's tee did not start".into()))?;
                bin.sync_state_with_parent().map_err(|_| {
                    MediaError::Invalid(format!(
                        "the layer's encoder ({}) did not start",
                        profile.name
                    ))
                })?;
                Ok(())
            });
        if let Err(e) = started {
            undo(&self.pipeline);
            return Err(e);
        }
        let Some(raw_pad) = self.raw_tee.request_pad_simple("src_%u") else {
            undo(&self.pipeline);
            return Err(MediaError::Invalid("tee gave no pad".into()));
        };
        if raw_pad.link(&sink).is_err() {
            self.raw_tee.release_request_pad(&raw_pad);
            undo(&self.pipeline);
            return Err(MediaError::Link {
                from: "raw-tee".into(),
                to: bin.name().to_string(),
            });
        }
        self.layers.insert(
            layer,
            LayerEncode {
                bin,
                tee: tee.clone(),
                raw_pad,
                bitrate,
                kbps,
                level,
            },
        );
        Ok(tee)
    }

    /// The output `src` (an error's or a message's source) belongs to: its sink, anything
    /// inside it, or the queue that feeds it.
    pub fn output_owning(&self, src: &gst::Object) -> Option<Output> {
        self.outputs.iter().find_map(|(o, slot)| {
            (src == slot.queue.upcast_ref::<gst::Object>()
                || src == slot.sink.upcast_ref::<gst::Object>()
                || src.has_as_ancestor(&slot.sink))
            .then_some(*o)
        })
    }

    /// Whether the call has a place for `output` (the setting names one).
    pub fn wants_output(&self, output: Output) -> bool {
        self.outputs.contains_key(&output)
    }

    /// Whether the call plays to `output` (`false` without one, or while a stand-in runs in
    /// its place).
    pub fn has_output(&self, output: Output) -> bool {
        self.outputs.get(&output).is_some_and(|s| !s.standing_in)
    }

    /// Puts `sink` behind the output's queue in place of the sink there, or (`None`) a
    /// stand-in that only keeps time, so the mixer or compositor in front runs on. A sink that
    /// does not start is taken out again, the stand-in runs, and the error says why.
    pub fn replace_output(
        &mut self,
        output: Output,
        sink: Option<gst::Element>,
    ) -> Result<(), MediaError> {
        use std::sync::atomic::Ordering;
        let pipeline = self.pipeline.clone();
        let Some(slot) = self.outputs.get_mut(&output) else {
            return Err(MediaError::Invalid(format!("the call has no {output:?}")));
        };
        slot.failed.store(true, Ordering::Release);
        let src = slot.queue.static_pad("src").expect("queue src");
        if let Some(peer) = src.peer() {
            let _ = src.unlink(&peer);
        }
        slot.sink.set_locked_state(true);
        let _ = slot.sink.set_state(gst::State::Null);
        let _ = pipeline.remove(&slot.sink);
        let (new, standing_in) = match sink {
            Some(s) => {
                // A sink that prerolls on its own (async) makes the running pipeline lose its
                // state: it goes to PAUSED, where the live sources stop, and never prerolls.
                let sinks: Vec<gst::Element> = match s.downcast_ref::<gst::Bin>() {
                    Some(bin) => bin.iterate_sinks().into_iter().flatten().collect(),
                    None => vec![s.clone()],
                };
                for e in sinks {
                    if e.find_property("async").is_some() {
                        e.set_property("async", false);
                    }
                }
                (s, false)
            }
            None => (stand_in()?, true),
        };
        pipeline
            .add(&new)
            .map_err(|_| MediaError::Invalid("cannot add elements".into()))?;
        // Playing before it is linked: the queue's next push sends its sticky events first,
        // and a sink still in NULL would answer FLUSHING, which stops the queue for good.
        let started = new
            .sync_state_with_parent()
            .map(|_| ())
            .map_err(|_| MediaError::Invalid(format!("{} did not start", new.name())))
            .and_then(|_| {
                slot.queue.link(&new).map_err(|_| MediaError::Link {
                    from: slot.queue.name().to_string(),
                    to: new.name().to_string(),
                })
            });
        slot.sink = new;
        slot.standing_in = standing_in;
        match started {
            Ok(()) => {
                slot.failed.store(false, Ordering::Release);
                Ok(())
            }
            Err(e) if !standing_in => {
                self.replace_output(output, None)?;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// The quality layers with an encode of their own.
    pub fn layer_ids(&self) -> Vec<u8> {
        self.layers.keys().copied().collect()
    }

    /// A quality layer's own encode.
    pub fn layer(&mut self, layer: u8) -> Option<&mut LayerEncode> {
        self.layers.get_mut(&layer)
    }

    /// The quality layer whose encode `src` (an error's or a message's source) belongs to.
    pub fn layer_owning(&self, src: &gst::Object) -> Option<u8> {
        self.layers.iter().find_map(|(l, e)| {
            (src == e.bin.upcast_ref::<gst::Object>() || src.has_as_ancestor(&e.bin)).then_some(*l)
        })
    }

    /// Takes a quality layer's encode out of the call (its sessions moved off it first); stop
    /// it with [`LayerEncode::stop`], off the async runtime.
    pub fn take_layer(&mut self, layer: u8) -> Option<(LayerEncode, gst::Pipeline, gst::Element)> {
        self.layers
            .remove(&layer)
            .map(|l| (l, self.pipeline.clone(), self.raw_tee.clone()))
    }

    /// Whether an HDMI capture input is wired.
    pub fn has_hdmi(&self) -> bool {
        self.hdmi.is_some()
    }

    /// Mutes the microphone (silence is encoded; the sessions are untouched).
    pub fn set_mic_muted(&self, muted: bool) {
        self.mic_volume.set_property("mute", muted);
    }

    /// Speaker volume 0–100.
    pub fn set_volume(&self, level: u8) {
        self.speaker_volume
            .set_property("volume", level.min(100) as f64 / 100.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Formats as a V4L2 device provider reports them (from real devices' `gst-device-monitor`).
    /// A Logitech C920-style webcam: raw 720p only at 10 fps, MJPEG 720p at 30.
    const USB_WEBCAM: &str = "video/x-raw, format=YUY2, width=640, height=480, framerate={ 30/1, 24/1, 15/1 }; \
        video/x-raw, format=YUY2, width=1280, height=720, framerate={ 10/1, 5/1 }; \
        image/jpeg, width=1280, height=720, framerate={ 30/1, 24/1, 15/1 }; \
        image/jpeg, width=1920, height=1080, framerate={ 30/1, 24/1, 15/1 }";
    /// A Pi camera through the V4L2 bridge: raw at any size and rate in range.
    const PI_CAMERA: &str = "video/x-raw, format={ I420, NV12, YUY2 }, width=[ 32, 2592 ], height=[ 32, 1944 ], framerate=[ 1/1, 90/1 ]";
    /// A cheap MS2109 HDMI dongle: 1080p30 only as MJPEG.
    const HDMI_DONGLE: &str = "image/jpeg, width=1920, height=1080, framerate=30/1; \
        video/x-raw, format=YUY2, width=1920, height=1080, framerate=5/1";

    fn caps(s: &str) -> gst::Caps {
        gst::init().unwrap();
        s.parse().unwrap()
    }

    /// The echo canceller estimates the delay itself where the library lets it.
    #[test]
    fn the_echo_canceller_is_delay_agnostic_where_it_can_be() {
        gst::init().unwrap();
        let dsp = echo_canceller().unwrap();
        assert!(dsp.property::<bool>("echo-cancel"));
        assert!(dsp.property::<bool>("noise-suppression"));
        let live = dsp
            .find_property("delay-agnostic")
            .is_some_and(|p| !p.flags().contains(gstreamer::glib::ParamFlags::DEPRECATED));
        if live {
            assert!(dsp.property::<bool>("delay-agnostic"));
        }
    }

    #[test]
    fn usb_webcam_at_720p30_is_captured_as_mjpeg() {
        let c = caps(USB_WEBCAM);
        assert_eq!(capture_format(Some(&c), 1280, 720, 30), CaptureFormat::Jpeg);
        assert_eq!(
            capture_format(Some(&c), 1920, 1080, 30),
            CaptureFormat::Jpeg
        );
    }

    #[test]
    fn raw_is_preferred_when_the_device_gives_the_size_and_rate_raw() {
        assert_eq!(
            capture_format(Some(&caps(USB_WEBCAM)), 640, 480, 30),
            CaptureFormat::Raw
        );
        assert_eq!(
            capture_format(Some(&caps(PI_CAMERA)), 1280, 720, 30),
            CaptureFormat::Raw
        );
    }

    #[test]
    fn hdmi_dongle_at_1080p30_is_captured_as_mjpeg() {
        assert_eq!(
            capture_format(Some(&caps(HDMI_DONGLE)), 1920, 1080, 30),
            CaptureFormat::Jpeg
        );
    }

    #[test]
    fn unknown_formats_or_no_match_fall_back_to_raw() {
        assert_eq!(capture_format(None, 1280, 720, 30), CaptureFormat::Raw);
        assert_eq!(
            capture_format(Some(&caps(HDMI_DONGLE)), 1280, 720, 30),
            CaptureFormat::Raw
        );
    }

    /// A stand-in MJPEG camera (test pattern encoded to JPEG) through the capture chain: every
    /// frame comes out decoded at the call's size.
    #[test]
    fn mjpeg_capture_chain_decodes_every_frame() {
        gst::init().unwrap();
        let o = MediaOptions {
            width: 320,
            height: 240,
            framerate: 30,
            ..MediaOptions::default()
        };
        let pipeline = gst::Pipeline::new();
        let camera = gst::parse::bin_from_description(
            "videotestsrc num-buffers=12 ! video/x-raw,width=320,height=240,framerate=30/1 ! jpegenc",
            true,
        )
        .unwrap();
        let sink = make("fakesink").unwrap();
        sink.set_property("sync", false);
        sink.set_property("signal-handoffs", true);
        let decoded = Arc::new(Mutex::new(Vec::new()));
        let seen = decoded.clone();
        sink.connect("handoff", false, move |args| {
            let pad = args[2].get::<gst::Pad>().unwrap();
            let caps = pad.current_caps().unwrap();
            seen.lock()
                .unwrap()
                .push(caps.structure(0).unwrap().to_string());
            None
        });
        pipeline.add_many([camera.upcast_ref(), &sink]).unwrap();
        let raw = capture_output(
            pipeline.upcast_ref(),
            camera.upcast_ref(),
            CaptureFormat::Jpeg,
            &o,
        )
        .unwrap();
        raw.link(&sink).unwrap();
        pipeline.set_state(gst::State::Playing).unwrap();
        let bus = pipeline.bus().unwrap();
        let msg = bus
            .timed_pop_filtered(
                gst::ClockTime::from_seconds(10),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            )
            .expect("EOS or error within 10 s");
        pipeline.set_state(gst::State::Null).unwrap();
        assert_eq!(msg.type_(), gst::MessageType::Eos, "{msg:?}");
        let decoded = decoded.lock().unwrap();
        assert_eq!(decoded.len(), 12);
        assert!(decoded[0].starts_with("video/x-raw"), "{}", decoded[0]);
        assert!(
            decoded[0].contains("width=(int)320") && decoded[0].contains("height=(int)240"),
            "{}",
            decoded[0]
        );
    }

    fn built_in(name: &str) -> super::super::profile::Profile {
        super::super::profile::load_all(None)
            .unwrap()
            .into_iter()
            .find(|p| p.name == name)
            .unwrap()
    }

    /// A call pipeline of the test profile (not started).
    fn test_call(o: &MediaOptions) -> CallPipeline {
        build(
            o,
            &built_in("test"),
            &built_in("test"),
            &Discovered::default(),
            &Default::default(),
            false,
        )
        .unwrap()
    }

    fn no_error(call: &CallPipeline) {
        let bus = call.pipeline.bus().unwrap();
        if let Some(e) = bus.pop_filtered(&[gst::MessageType::Error]) {
            panic!("{e:?}");
        }
    }

    /// What reached the display: each frame's size, in order.
    type Shown = Arc<Mutex<Vec<(i32, i32)>>>;

    /// A participant's decoded video, as a session links it: a live test pattern of
    /// `width`×`height` into a compositor pad placed by the layout.
    fn participant(
        call: &CallPipeline,
        peer: i64,
        width: i32,
        height: i32,
    ) -> (gst::Element, gst::Pad) {
        let src = gst::parse::bin_from_description(
            &format!("videotestsrc is-live=true pattern=ball ! video/x-raw,format=I420,width={width},height={height},framerate=30/1 ! identity"),
            true,
        )
        .unwrap();
        call.pipeline.add(&src).unwrap();
        let compositor = call.remote.compositor.as_ref().unwrap();
        let pad = compositor.request_pad_simple("sink_%u").unwrap();
        src.static_pad("src").unwrap().link(&pad).unwrap();
        call.remote
            .layout
            .lock()
            .unwrap()
            .add(ClientId(peer), pad.clone());
        src.sync_state_with_parent().unwrap();
        (src.upcast(), pad)
    }

    /// Waits until the display shows frames of `size`, then for `frames` of them.
    fn shows(shown: &Shown, size: (i32, i32), frames: usize) {
        let t = std::time::Instant::now();
        let from = loop {
            {
                let s = shown.lock().unwrap();
                if let Some(i) = s.iter().rposition(|f| *f != size) {
                    if i + 1 < s.len() {
                        break i + 1;
                    }
                } else if !s.is_empty() {
                    break 0;
                }
            }
            assert!(
                t.elapsed() < std::time::Duration::from_secs(10),
                "the display never showed {size:?}: last {:?}",
                shown.lock().unwrap().last()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        loop {
            let n = shown.lock().unwrap()[from..]
                .iter()
                .filter(|f| **f == size)
                .count();
            if n >= frames {
                return;
            }
            assert!(
                t.elapsed() < std::time::Duration::from_secs(10),
                "the display stopped after {n} frames of {size:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// The display is fed all along while participants come and go: one participant is shown
    /// as it is sent (nothing composed or scaled), two share a grid of the display's size,
    /// and back to one, with frames flowing at every step and no error.
    #[test]
    fn display_follows_participants_without_a_gap() {
        gst::init().unwrap();
        let o = MediaOptions {
            width: 320,
            height: 240,
            framerate: 30,
            display_width: 640,
            display_height: 360,
            display: SinkChoice::Element("fakesink".into()),
            speaker: SinkChoice::None,
            ..MediaOptions::default()
        };
        let call = test_call(&o);
        // What the display sink gets (behind the queue's guard, which hands buffers on itself).
        let queue = call.pipeline.by_name("display-queue").unwrap();
        let shown: Shown = Arc::default();
        let seen = shown.clone();
        queue.static_pad("src").unwrap().peer().unwrap().add_probe(
            gst::PadProbeType::BUFFER,
            move |pad, _| {
                if let Some(v) = pad
                    .current_caps()
                    .and_then(|c| gstreamer_video::VideoInfo::from_caps(&c).ok())
                {
                    assert_eq!(v.format(), gstreamer_video::VideoFormat::I420);
                    seen.lock()
                        .unwrap()
                        .push((v.width() as i32, v.height() as i32));
                }
                gst::PadProbeReturn::Ok
            },
        );
        call.pipeline.set_state(gst::State::Playing).unwrap();

        // Nobody yet: black, once a second.
        shows(&shown, (640, 360), 2);
        let (_a, _) = participant(&call, 1, 320, 240);
        shows(&shown, (320, 240), 10);
        let (b, b_pad) = participant(&call, 2, 160, 120);
        shows(&shown, (640, 360), 10);
        // The second participant leaves as a closing session does.
        b.set_locked_state(true);
        b.set_state(gst::State::Null).unwrap();
        call.remote.layout.lock().unwrap().remove(&b_pad);
        call.remote
            .compositor
            .as_ref()
            .unwrap()
            .release_request_pad(&b_pad);
        call.pipeline.remove(&b).unwrap();
        shows(&shown, (320, 240), 10);

        no_error(&call);
    }

    /// Without a display or speaker there is nothing to decode into.
    #[test]
    fn no_display_and_no_speaker_means_no_compositor_and_no_mixer() {
        gst::init().unwrap();
        let o = MediaOptions {
            display: SinkChoice::None,
            speaker: SinkChoice::None,
            ..MediaOptions::default()
        };
        let call = test_call(&o);
        assert!(call.remote.compositor.is_none());
        assert!(call.remote.mixer.is_none());
        let factories: Vec<String> = call
            .pipeline
            .iterate_elements()
            .into_iter()
            .flatten()
            .filter_map(|e| e.factory().map(|f| f.name().to_string()))
            .collect();
        for absent in ["compositor", "audiomixer", "webrtcdsp", "webrtcechoprobe"] {
            assert!(
                !factories.iter().any(|f| f == absent),
                "{absent} in {factories:?}"
            );
        }
    }

    /// What reaches the encoder follows the inputs (camera, slate, HDMI share, camera), with
    /// frames flowing throughout and the raw format never renegotiated. The HDMI input is a
    /// `pipeline:` stand-in drawing white.
    #[test]
    fn a_quality_layer_encodes_its_own_size_and_one_that_cannot_start_leaves_nothing() {
        gst::init().unwrap();
        let o = MediaOptions {
            width: 320,
            height: 240,
            framerate: 30,
            camera: DeviceChoice::None,
            display: SinkChoice::None,
            speaker: SinkChoice::None,
            ..MediaOptions::default()
        };
        let mut call = test_call(&o);
        call.pipeline.set_state(gst::State::Playing).unwrap();
        let elements = call.pipeline.children().len();
        // An encoder that cannot run (its element is not installed): an error, nothing left.
        let mut broken = built_in("test");
        broken.video_encoder[0].element = "no-such-encoder".into();
        let level = super::super::adapt::Level {
            width: 80,
            height: 60,
            framerate: 15,
        };
        assert!(call.add_layer(&o, &broken, 0, level, 100).is_err());
        assert_eq!(call.pipeline.children().len(), elements);
        assert!(call.layer_ids().is_empty());
        // The small layer: H.264 of its own size out of its tee while the main encode goes on.
        let tee = call
            .add_layer(&o, &built_in("test"), 0, level, 100)
            .unwrap();
        let sizes: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen = sizes.clone();
        let sink = make("fakesink").unwrap();
        sink.set_property("async", false);
        call.pipeline.add(&sink).unwrap();
        sink.static_pad("sink")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |pad, _| {
                if let Some(c) = pad.current_caps() {
                    seen.lock().unwrap().push(c.to_string());
                }
                gst::PadProbeReturn::Ok
            });
        sink.sync_state_with_parent().unwrap();
        tee.link(&sink).unwrap();
        let started = std::time::Instant::now();
        while sizes.lock().unwrap().len() < 5 {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(10),
                "no frames from the layer's encode"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        no_error(&call);
        let caps = sizes.lock().unwrap()[0].clone();
        assert!(
            caps.contains("video/x-h264")
                && caps.contains("width=(int)80")
                && caps.contains("height=(int)60"),
            "{caps}"
        );
        let (before, _) = call.encoder_totals();
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(call.encoder_totals().0 > before, "the main encode stopped");
        // Stopped: out of the pipeline again, the main encode still going.
        tee.unlink(&sink);
        let (encode, pipeline, raw) = call.take_layer(0).unwrap();
        encode.stop(&pipeline, &raw);
        assert_eq!(call.pipeline.children().len(), elements + 1);
        let (before, _) = call.encoder_totals();
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(call.encoder_totals().0 > before, "the main encode stopped");
        no_error(&call);
        call.pipeline.set_state(gst::State::Null).unwrap();
    }

    #[test]
    fn inputs_switch_without_renegotiation() {
        gst::init().unwrap();
        let o = MediaOptions {
            width: 320,
            height: 240,
            framerate: 30,
            display: SinkChoice::None,
            speaker: SinkChoice::None,
            hdmi: DeviceChoice::parse("pipeline: videotestsrc is-live=true pattern=white"),
            ..MediaOptions::default()
        };
        let call = test_call(&o);
        assert!(call.has_hdmi());
        #[derive(Clone, Copy, PartialEq, Debug)]
        enum Seen {
            Black,
            White,
            Pattern,
        }
        // Each raw frame into the encoder, by its luma; and each caps event.
        let frames: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let caps_events: Arc<Mutex<Vec<gst::Caps>>> = Arc::default();
        let (seen, events) = (frames.clone(), caps_events.clone());
        let pad = call.encoder.static_pad("sink").unwrap();
        pad.add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
            move |_, info| {
                if let Some(b) = info.buffer() {
                    let map = b.map_readable().unwrap();
                    let luma = &map[..320 * 240];
                    let kind = if luma.iter().all(|y| *y <= 17) {
                        Seen::Black
                    } else if luma.iter().all(|y| *y >= 230) {
                        Seen::White
                    } else {
                        Seen::Pattern
                    };
                    seen.lock().unwrap().push(kind);
                } else if let Some(gst::PadProbeData::Event(e)) = &info.data
                    && let gst::EventView::Caps(c) = e.view()
                {
                    events.lock().unwrap().push(c.caps_owned());
                }
                gst::PadProbeReturn::Ok
            },
        );
        let wait = |want: Seen| {
            let t = std::time::Instant::now();
            let from = frames.lock().unwrap().len();
            loop {
                let n = frames.lock().unwrap()[from..]
                    .iter()
                    .skip_while(|k| **k != want)
                    .filter(|k| **k == want)
                    .count();
                if n >= 10 {
                    return;
                }
                assert!(
                    t.elapsed() < std::time::Duration::from_secs(10),
                    "no {want:?} frames reach the encoder"
                );
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        };
        call.pipeline.set_state(gst::State::Playing).unwrap();
        wait(Seen::Pattern);
        call.set_video_input(false, false).unwrap();
        wait(Seen::Black);
        call.set_video_input(true, true).unwrap();
        wait(Seen::White);
        call.set_video_input(true, false).unwrap();
        wait(Seen::Pattern);
        // The selector repeats the caps when it switches; they must be the same caps (the
        // encoder then carries on without reconfiguring).
        let caps = caps_events.lock().unwrap();
        assert!(
            caps.windows(2).all(|w| w[0] == w[1]),
            "the encoder's input was renegotiated: {caps:?}"
        );
        no_error(&call);
    }

    #[test]
    fn a_broken_pipeline_setting_names_the_problem() {
        gst::init().unwrap();
        let e = DeviceChoice::pipeline_source("nosuchelement ! fakesink").unwrap_err();
        assert!(e.to_string().contains("nosuchelement"), "{e}");
    }

    /// The rpi4 profile's bitrate is the configured one: a field of the V4L2 encoder's
    /// `extra-controls`, next to the profile's own controls. (v4l2h264enc only exists on a
    /// board; v4l2src has the same `extra-controls` property and stands in for it.)
    #[test]
    fn rpi4_encoder_takes_the_configured_bitrate() {
        gst::init().unwrap();
        let mut profile = super::super::profile::load_all(None)
            .unwrap()
            .into_iter()
            .find(|p| p.name == "rpi4")
            .unwrap();
        profile.video_convert.clear();
        profile.video_encoder[0].element = "v4l2src".into();
        for kbps in [900, 2500] {
            let o = MediaOptions {
                video_kbps: kbps,
                ..MediaOptions::default()
            };
            let (_, encoder, _) = encoder_stages(&o, &profile).unwrap();
            let controls = encoder.property::<gst::Structure>("extra-controls");
            assert_eq!(
                controls.get::<i32>("video_bitrate").unwrap(),
                kbps as i32 * 1000
            );
            assert_eq!(controls.get::<i32>("repeat_sequence_header").unwrap(), 1);
            assert_eq!(controls.get::<i32>("h264_i_frame_period").unwrap(), 60);
        }
    }
}
