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
//! sessions ─▶ compositor (grid over a black background) ─ display sink
//! sessions ─▶ audiomixer (over silence) ─ [webrtcechoprobe] ─ volume ─ speaker sink
//! ```
//!
//! Every element is made from a factory name and typed properties; no launch strings.
//! [`build`] assembles the parts, each a method of one small `Build` context in the file of its
//! part: `capture` (camera, black and HDMI into the selector), `encode` (video encoder and
//! tee, and the start-up encoder check), `audio` (microphone and speaker, with echo
//! cancellation), `display` (the compositor's grid); `elements` makes and links elements.

mod audio;
mod capture;
mod display;
mod elements;
mod encode;

use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::prelude::*;

pub use capture::{CaptureFormat, capture_format};
pub use display::Layout;
use elements::link_all;
pub use elements::{make, make_stage};
pub use encode::check_encoder;

use super::devices::Discovered;
use super::profile::Profile;
use super::{MediaError, MediaOptions};

/// The elements the remote side of every session connects to.
#[derive(Clone)]
pub struct RemoteOutputs {
    /// Video mixer (grid).
    pub compositor: gst::Element,
    /// Audio mixer.
    pub mixer: gst::Element,
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
    camera_pad: gst::Pad,
    black_pad: gst::Pad,
    hdmi_pad: Option<gst::Pad>,
    mic_volume: gst::Element,
    speaker_volume: gst::Element,
    /// Where remote media goes.
    pub remote: RemoteOutputs,
    /// The video encoder (first element of the encoder chain), for statistics and fallback.
    pub encoder: gst::Element,
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

impl CallPipeline {
    /// Chooses what the camera input shows: HDMI when sharing, else camera or black.
    pub fn set_video_input(&self, camera_on: bool, sharing: bool) -> Result<(), MediaError> {
        let pad = if sharing {
            self.hdmi_pad.as_ref().ok_or(MediaError::NoHdmi)?
        } else if camera_on {
            &self.camera_pad
        } else {
            &self.black_pad
        };
        self.selector.set_property("active-pad", pad);
        Ok(())
    }

    /// Whether an HDMI capture input is wired.
    pub fn has_hdmi(&self) -> bool {
        self.hdmi_pad.is_some()
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

/// What every part of the call pipeline is built from, and what the parts share: each part is
/// a method that adds its elements to `pipeline` and returns what the call needs of it.
struct Build<'a> {
    o: &'a MediaOptions,
    profile: &'a Profile,
    found: &'a Discovered,
    pipeline: gst::Pipeline,
    /// Every live source, in the order they are stopped when the call ends.
    sources: Vec<gst::Element>,
}

impl Build<'_> {
    fn add(&self, elements: &[&gst::Element]) -> Result<(), MediaError> {
        self.pipeline
            .add_many(elements)
            .map_err(|_| MediaError::Invalid("cannot add elements".into()))
    }

    /// Adds a chain of elements and links each to the next.
    fn add_linked(&self, chain: &[gst::Element]) -> Result<(), MediaError> {
        let refs: Vec<&gst::Element> = chain.iter().collect();
        self.add(&refs)?;
        link_all(&refs)
    }
}

/// Builds the call pipeline (not yet playing).
pub fn build(
    o: &MediaOptions,
    profile: &Profile,
    found: &Discovered,
) -> Result<CallPipeline, MediaError> {
    let mut b = Build {
        o,
        profile,
        found,
        pipeline: gst::Pipeline::with_name("roomagent-call"),
        sources: Vec::new(),
    };
    let input = b.video_input()?;
    let video = b.video_encoder(&input.selector)?;
    let echo_cancel = b.echo_cancel();
    let microphone = b.microphone(echo_cancel)?;
    let compositor = b.display()?;
    let speaker = b.speaker(echo_cancel)?;
    Ok(CallPipeline {
        pipeline: b.pipeline,
        video_tee: video.tee,
        audio_tee: microphone.tee,
        selector: input.selector,
        camera_pad: input.camera_pad,
        black_pad: input.black_pad,
        hdmi_pad: input.hdmi_pad,
        mic_volume: microphone.volume,
        speaker_volume: speaker.volume,
        remote: RemoteOutputs {
            compositor,
            mixer: speaker.mixer,
            layout: Arc::new(Mutex::new(Layout::sized(
                o.display_width as i32,
                o.display_height as i32,
            ))),
        },
        encoder: video.encoder,
        sources: b.sources,
        encoder_counts: video.counts,
    })
}
