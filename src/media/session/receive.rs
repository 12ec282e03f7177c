//! Receiving: each stream webrtcbin brings out is decoded and linked into the compositor (a
//! tile of the grid) or the audio mixer. This runs on GStreamer's own threads, since a stream
//! must be linked before its first buffer arrives; everything it creates is recorded in
//! [`Received`] so closing the session removes every element and gives back every mixer pad.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use tokio::sync::mpsc;
use tracing::warn;

use super::{Counters, add};
use crate::core::ClientId;
use crate::media::MediaError;
use crate::media::engine::Internal;
use crate::media::pipeline::{RemoteOutputs, make};

/// What a session's received streams added to the pipeline.
#[derive(Default)]
pub(super) struct Received {
    /// The session is closing: streams that appear now are not linked.
    pub closed: bool,
    /// Decoders and converters.
    pub elements: Vec<gst::Element>,
    /// Pads requested from the compositor and the audio mixer.
    pub mixer_pads: Vec<(gst::Element, gst::Pad)>,
    /// The compositor pads that are tiles of the grid.
    pub tiles: Vec<gst::Pad>,
    /// The encoding name of the remote video.
    pub video_codec: Option<String>,
}

/// Everything the receiving callbacks of one session need; cloned into each of them.
#[derive(Clone)]
pub(super) struct Receiver {
    /// Weak, so the callbacks do not keep a stopped call pipeline alive.
    pub pipeline: glib::WeakRef<gst::Pipeline>,
    pub remote: RemoteOutputs,
    pub received: Arc<Mutex<Received>>,
    pub counters: Arc<Counters>,
    pub internal: mpsc::UnboundedSender<Internal>,
    pub peer: ClientId,
    pub epoch: u64,
}

impl Receiver {
    /// Decodes and plays every stream `webrtc` brings out from now on.
    pub(super) fn connect(self, webrtc: &gst::Element) {
        webrtc.connect_pad_added(move |_, pad| {
            if pad.direction() != gst::PadDirection::Src {
                return;
            }
            let Some(pipeline) = self.pipeline.upgrade() else {
                return;
            };
            if let Err(e) = self.on_remote_stream(&pipeline, pad) {
                let peer = self.peer;
                warn!(%peer, error = %e, "cannot play a remote stream");
            }
        });
    }

    /// A remote RTP stream appeared: decode it into the compositor or mixer. Runs on
    /// GStreamer's thread and links before returning.
    fn on_remote_stream(&self, pipeline: &gst::Pipeline, pad: &gst::Pad) -> Result<(), MediaError> {
        if self.received.lock().map(|r| r.closed).unwrap_or(true) {
            return Ok(());
        }
        let codec = pad.current_caps().and_then(|c| {
            c.structure(0)
                .and_then(|s| s.get::<String>("encoding-name").ok())
        });
        let decode = make("decodebin")?;
        let this = self.clone();
        decode.connect_pad_added(move |_, pad| {
            let Some(pipeline) = this.pipeline.upgrade() else {
                return;
            };
            if let Err(e) = this.on_decoded(&pipeline, pad) {
                let peer = this.peer;
                warn!(%peer, error = %e, "cannot show a decoded stream");
            }
        });
        add(pipeline, &decode)?;
        decode
            .sync_state_with_parent()
            .map_err(|_| MediaError::Invalid("cannot start decodebin".into()))?;
        pad.link(&decode.static_pad("sink").expect("decodebin sink"))
            .map_err(|_| MediaError::Link {
                from: pad.name().to_string(),
                to: "decodebin".into(),
            })?;
        let mut r = self.received.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = codec.filter(|c| c != "OPUS") {
            r.video_codec = Some(c);
        }
        r.elements.push(decode);
        Ok(())
    }

    /// decodebin gave a decoded stream: convert it and link it into the compositor (a new tile)
    /// or the audio mixer.
    fn on_decoded(&self, pipeline: &gst::Pipeline, pad: &gst::Pad) -> Result<(), MediaError> {
        let mut r = self.received.lock().unwrap_or_else(|p| p.into_inner());
        if r.closed {
            return Ok(());
        }
        let caps = pad.current_caps().or_else(|| Some(pad.query_caps(None)));
        let is_video = caps
            .as_ref()
            .and_then(|c| c.structure(0).map(|s| s.name().starts_with("video/")))
            .unwrap_or(false);
        let (chain, mixer) = self.converters(is_video)?;
        for e in &chain {
            add(pipeline, e)?;
        }
        gst::Element::link_many(chain.iter()).map_err(|_| MediaError::Link {
            from: "decoded stream".into(),
            to: "converter".into(),
        })?;
        let mix_pad = link_to_mixer(&chain, &mixer)?;
        let convert = &chain[0];
        if is_video {
            self.report_first_frame(convert);
            self.remote
                .layout
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .add(self.peer, mix_pad.clone());
            r.tiles.push(mix_pad.clone());
        }
        r.mixer_pads.push((mixer, mix_pad));
        for e in &chain {
            e.sync_state_with_parent()
                .map_err(|_| MediaError::Invalid(format!("cannot start {}", e.name())))?;
        }
        pad.link(&convert.static_pad("sink").expect("converter sink"))
            .map_err(|_| MediaError::Link {
                from: "decodebin".into(),
                to: convert.name().to_string(),
            })?;
        r.elements.extend(chain);
        Ok(())
    }

    /// The converters a decoded stream goes through (video: its format only, the compositor
    /// scales it to its tile; audio: to the mixer's 48 kHz stereo S16), and the mixer it joins.
    fn converters(&self, is_video: bool) -> Result<(Vec<gst::Element>, gst::Element), MediaError> {
        if is_video {
            return Ok((vec![make("videoconvert")?], self.remote.compositor.clone()));
        }
        let convert = make("audioconvert")?;
        let filter = make("capsfilter")?;
        filter.set_property(
            "caps",
            gst::Caps::builder("audio/x-raw")
                .field("format", "S16LE")
                .field("rate", 48000i32)
                .field("channels", 2i32)
                .build(),
        );
        Ok((
            vec![convert, make("audioresample")?, filter],
            self.remote.mixer.clone(),
        ))
    }

    /// Counts the frames decoded, and reports the first.
    fn report_first_frame(&self, convert: &gst::Element) {
        let (counters, internal) = (self.counters.clone(), self.internal.clone());
        let (peer, epoch) = (self.peer, self.epoch);
        convert
            .static_pad("sink")
            .expect("converter sink")
            .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                if counters.frames_decoded.fetch_add(1, Ordering::Relaxed) == 0 {
                    let _ = internal.send(Internal::FirstFrame { peer, epoch });
                }
                gst::PadProbeReturn::Ok
            });
    }
}

/// Links the end of `chain` into a new pad of `mixer`, and returns that pad.
fn link_to_mixer(chain: &[gst::Element], mixer: &gst::Element) -> Result<gst::Pad, MediaError> {
    let mix_pad = mixer
        .request_pad_simple("sink_%u")
        .ok_or_else(|| MediaError::Invalid("mixer gave no pad".into()))?;
    chain
        .last()
        .expect("non-empty chain")
        .static_pad("src")
        .expect("src pad")
        .link(&mix_pad)
        .map_err(|_| MediaError::Link {
            from: "converter".into(),
            to: mixer.name().to_string(),
        })?;
    Ok(mix_pad)
}
