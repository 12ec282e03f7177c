//! Key frames on demand from every encoder a board profile may use. A new viewer, a picture-loss
//! request (RTCP PLI or FIR), a quality-layer switch and RTM's key frame every second all ask
//! with GStreamer's force-key-unit event, sent upstream to the encoder. x264enc and openh264enc
//! answer it with an IDR; the hardware encoders do not, each in its own way:
//!
//! - `v4l2h264enc` (Raspberry Pi 4) has no handler for the event before GStreamer 1.22.4, but
//!   the driver has the button control `force_key_frame` (V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME),
//!   which the element's `extra-controls` reach while it runs.
//! - NVIDIA's `nvv4l2h264enc` has no handler in any release; its action signal `force-IDR`
//!   makes the next frame an IDR.
//! - `vah264enc`/`vah264lpenc` before 1.25.1 make an I frame that is not an IDR, on which a new
//!   viewer cannot start; a `bitrate` change makes the encoder reconfigure, and the frame after
//!   a reconfiguration is an IDR (read from gstvabaseenc.c at 1.22, not seen on hardware).
//!
//! [`install`] watches the encoder's source pad for the event and does what that encoder
//! needs besides letting the event through. What it does per encoder and release is
//! [`method`]'s pure choice; docs/boards.md has the evidence.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;

use super::version::GstVersion;

/// How an encoder is made to send an IDR now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// The force-key-unit event alone.
    Event,
    /// The V4L2 button control `force_key_frame`, through `extra-controls`.
    V4l2Control,
    /// NVIDIA's `force-IDR` action signal.
    NvForceIdr,
    /// A change of `bitrate` by 1 kbit/s (the va encoders restart their GOP on it).
    VaReconfigure,
}

/// What `factory` on GStreamer `v` needs to send an IDR when asked.
pub fn method(factory: &str, v: GstVersion) -> Method {
    match factory {
        "v4l2h264enc" if !v.at_least(1, 22, 4) => Method::V4l2Control,
        "nvv4l2h264enc" => Method::NvForceIdr,
        "vah264enc" | "vah264lpenc" if !v.at_least(1, 25, 1) => Method::VaReconfigure,
        _ => Method::Event,
    }
}

/// Requests closer together than this make one key frame (several viewers asking at once,
/// the request repeated by every layer's branch).
const COALESCE: Duration = Duration::from_millis(250);

/// Makes `encoder` answer force-key-unit requests with an IDR (see the module text). Returns
/// the method used.
pub fn install(encoder: &gst::Element, v: GstVersion) -> Method {
    let factory = encoder
        .factory()
        .map(|f| f.name().to_string())
        .unwrap_or_default();
    let m = method(&factory, v);
    if m == Method::Event {
        return m;
    }
    let Some(src) = encoder.static_pad("src") else {
        return Method::Event;
    };
    let weak = encoder.downgrade();
    let last: Mutex<Option<Instant>> = Mutex::new(None);
    src.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
        let asked = info
            .event()
            .is_some_and(|e| gstreamer_video::ForceKeyUnitEvent::is(e));
        if asked && let Some(encoder) = weak.upgrade() {
            let now = Instant::now();
            let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_none_or(|t| now.duration_since(t) >= COALESCE) {
                *last = Some(now);
                drop(last);
                force(&encoder, m);
            }
        }
        gst::PadProbeReturn::Ok
    });
    m
}

fn force(encoder: &gst::Element, m: Method) {
    match m {
        Method::Event => {}
        Method::V4l2Control => {
            // A button: set, then taken out again, since every later change of
            // extra-controls (the bitrate) re-sends the whole structure to the driver.
            for pressed in [true, false] {
                let edited = super::props::edit_structure(encoder, "extra-controls", |c| {
                    if pressed {
                        c.set("force_key_frame", 1i32);
                    } else {
                        c.remove_field("force_key_frame");
                    }
                });
                if let Err(e) = edited {
                    tracing::warn!(error = %e, "cannot ask the encoder for a key frame");
                    return;
                }
            }
        }
        Method::NvForceIdr => {
            encoder.emit_by_name::<()>("force-IDR", &[]);
        }
        Method::VaReconfigure => {
            let kbps = encoder.property::<u32>("bitrate");
            // 0 is "the driver chooses": nothing to nudge.
            if kbps > 1 {
                encoder.set_property("bitrate", kbps ^ 1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_encoder_gets_what_its_release_needs() {
        let (v1_18, v1_22_0, v1_22_4, v1_24, v1_26) = (
            GstVersion(1, 18, 4),
            GstVersion(1, 22, 0),
            GstVersion(1, 22, 4),
            GstVersion(1, 24, 12),
            GstVersion(1, 26, 2),
        );
        assert_eq!(method("v4l2h264enc", v1_18), Method::V4l2Control);
        assert_eq!(method("v4l2h264enc", v1_22_0), Method::V4l2Control);
        assert_eq!(method("v4l2h264enc", v1_22_4), Method::Event);
        assert_eq!(method("v4l2h264enc", v1_26), Method::Event);
        for v in [v1_18, v1_22_0, v1_26] {
            assert_eq!(method("nvv4l2h264enc", v), Method::NvForceIdr);
            assert_eq!(method("x264enc", v), Method::Event);
            assert_eq!(method("openh264enc", v), Method::Event);
        }
        assert_eq!(method("vah264enc", v1_22_0), Method::VaReconfigure);
        assert_eq!(method("vah264lpenc", v1_24), Method::VaReconfigure);
        assert_eq!(method("vah264lpenc", v1_26), Method::Event);
    }
}
