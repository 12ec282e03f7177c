//! Raspberry Pi 4's VideoCore encoder as GStreamer's V4L2 elements drive it (bcm2835-codec):
//!
//! - `v4l2h264enc` takes its settings as V4L2 controls in `extra-controls`, re-applied on
//!   every change while the device is open (`video_bitrate`, `video_bitrate_mode`,
//!   `h264_i_frame_period`, `repeat_sequence_header`, and the button `force_key_frame`,
//!   which makes the next frame an IDR).
//! - Before GStreamer 1.22.4 it has no handler for force-key-unit requests: they end at it.
//! - The H.264 level comes from the caps downstream; without one, negotiation settles on the
//!   lowest level, and the driver refuses to start when the level cannot carry the size and
//!   rate ("The encoder validates the configuration of level, framerate, and resolution and
//!   will refuse to start if invalid": raspberrypi/linux#3467, #3974, #4906).
//! - `v4l2convert` (the ISP's converter) scales and converts.

use std::sync::{LazyLock, Mutex, OnceLock};

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer::subclass::prelude::*;

use crate::encoder::{
    Core, bin_standin, element, fill, ignore_force_key_unit, size_of, software_decoder, templates,
};
use crate::h264_levels;

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "v4l2h264enc",
        gst::Rank::PRIMARY + 1,
        V4l2H264Enc::static_type(),
    )?;
    gst::Element::register(
        Some(plugin),
        "v4l2convert",
        gst::Rank::NONE,
        V4l2Convert::static_type(),
    )
}

glib::wrapper! {
    pub struct V4l2H264Enc(ObjectSubclass<imp::V4l2H264Enc>)
        @extends gst::Bin, gst::Element, gst::Object, @implements gst::ChildProxy;
}

mod imp {
    use super::*;

    #[derive(Default)]
    pub struct V4l2H264Enc {
        controls: Mutex<Option<gst::Structure>>,
        device: Mutex<String>,
        core: OnceLock<Core>,
    }

    impl V4l2H264Enc {
        fn core(&self) -> &Core {
            self.core.get().expect("constructed")
        }

        /// Applies the controls as the driver takes them (VIDIOC_S_CTRL one by one).
        fn apply(&self, controls: &gst::StructureRef) {
            let core = self.core();
            for (name, value) in controls.iter() {
                let v = value
                    .get::<i32>()
                    .map(i64::from)
                    .or_else(|_| value.get::<u32>().map(i64::from))
                    .or_else(|_| value.get::<i64>())
                    .unwrap_or(0);
                match name.as_str() {
                    "video_bitrate" => {
                        // The driver's range: 25,000 to 25,000,000 bit/s.
                        let bps = v.clamp(25_000, 25_000_000);
                        core.x264.set_property("bitrate", (bps / 1000) as u32);
                    }
                    "h264_i_frame_period" if v > 0 => {
                        core.x264.set_property("key-int-max", v as u32);
                    }
                    "force_key_frame" => core.force_idr(),
                    _ => {}
                }
            }
        }

        /// The driver's check at the start of encoding: the level (from the caps downstream,
        /// else the lowest) must carry the size and rate.
        fn check_level(&self, raw: &gst::CapsRef) -> Result<(), String> {
            let Some((w, h, fps)) = size_of(raw) else {
                return Ok(());
            };
            let obj = self.obj();
            let downstream = obj
                .static_pad("src")
                .map(|p| p.peer_query_caps(None))
                .unwrap_or_else(gst::Caps::new_any);
            let level = downstream
                .structure(0)
                .and_then(|s| s.get::<String>("level").ok())
                .unwrap_or_else(|| "1".to_string());
            if h264_levels::carries(&level, w, h, fps) {
                Ok(())
            } else {
                Err(format!(
                    "bcm2835-codec refuses to start: H.264 level {level} cannot carry {w}x{h} at {fps} fps"
                ))
            }
        }
    }

    #[glib::object_subclass]
    impl ObjectSubclass for V4l2H264Enc {
        const NAME: &'static str = "RoomagentStandinV4l2H264Enc";
        type Type = super::V4l2H264Enc;
        type ParentType = gst::Bin;
    }

    impl ObjectImpl for V4l2H264Enc {
        fn properties() -> &'static [glib::ParamSpec] {
            static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
                vec![
                    glib::ParamSpecBoxed::builder::<gst::Structure>("extra-controls")
                        .nick("Extra Controls")
                        .blurb("Extra v4l2 controls (CIDs) for the device")
                        .build(),
                    glib::ParamSpecString::builder("device")
                        .nick("Device")
                        .blurb("Device location")
                        .default_value(Some("/dev/video11"))
                        .build(),
                ]
            });
            PROPS.as_ref()
        }

        fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
            match pspec.name() {
                "extra-controls" => {
                    let s = value.get::<Option<gst::Structure>>().ok().flatten();
                    if let Some(s) = &s {
                        self.apply(s);
                    }
                    *self.controls.lock().unwrap() = s;
                }
                "device" => {
                    *self.device.lock().unwrap() = value
                        .get::<Option<String>>()
                        .ok()
                        .flatten()
                        .unwrap_or_default();
                }
                _ => {}
            }
        }

        fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
            match pspec.name() {
                "extra-controls" => self.controls.lock().unwrap().clone().to_value(),
                _ => {
                    let d = self.device.lock().unwrap().clone();
                    (if d.is_empty() {
                        "/dev/video11".to_string()
                    } else {
                        d
                    })
                    .to_value()
                }
            }
        }

        fn constructed(&self) {
            self.parent_constructed();
            let obj = self.obj();
            let core = Core::build(
                obj.upcast_ref(),
                Vec::new(),
                gst::Caps::builder("video/x-h264")
                    .field("stream-format", "byte-stream")
                    .field("alignment", "au")
                    .build(),
                60,
            );
            // The driver's start-up check, where the raw caps arrive.
            let weak = obj.downgrade();
            core.x264
                .static_pad("sink")
                .expect("x264enc sink")
                .add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
                    let (Some(this), Some(gst::EventView::Caps(c))) =
                        (weak.upgrade(), info.event().map(|e| e.view()))
                    else {
                        return gst::PadProbeReturn::Ok;
                    };
                    match this.imp().check_level(c.caps()) {
                        Ok(()) => gst::PadProbeReturn::Ok,
                        Err(why) => {
                            gst::element_error!(this, gst::StreamError::Format, ["{}", why]);
                            info.data.take();
                            gst::PadProbeReturn::Handled
                        }
                    }
                });
            // Force-key-unit handling came in 1.22.4 (v4l2videoenc, MR !4663).
            ignore_force_key_unit(&core, || !crate::gst_at_least(1, 22, 4));
            let _ = self.core.set(core);
        }
    }

    impl GstObjectImpl for V4l2H264Enc {}

    impl ElementImpl for V4l2H264Enc {
        fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
            static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
                gst::subclass::ElementMetadata::new(
                    "V4L2 H.264 Encoder (roomagent stand-in)",
                    "Codec/Encoder/Video/Hardware",
                    "Encode H.264 video streams via V4L2 API (bcm2835-codec behaviour, x264 inside)",
                    "roomagent",
                )
            });
            Some(&*META)
        }

        fn pad_templates() -> &'static [gst::PadTemplate] {
            static T: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
                let sink = gst::Caps::builder("video/x-raw")
                    .field("format", gst::List::new(["I420", "YV12", "NV12", "NV21"]))
                    .build();
                let src = gst::Caps::builder("video/x-h264")
                    .field("stream-format", "byte-stream")
                    .field("alignment", "au")
                    .build();
                crate::encoder::templates(Some(&sink), &src)
            });
            T.as_ref()
        }
    }

    impl BinImpl for V4l2H264Enc {}
}

bin_standin!(
    conv,
    V4l2Convert,
    "RoomagentStandinV4l2Convert",
    metadata: (
        "V4L2 Video Converter (roomagent stand-in)",
        "Filter/Converter/Video/Scaler/Hardware",
        "Transform streams via V4L2 API (videoconvert and videoscale inside)"
    ),
    templates: {
        let raw = gst::Caps::builder("video/x-raw").build();
        templates(Some(&raw), &raw)
    },
    build: |bin| fill(bin, &[element("videoconvert"), element("videoscale")]),
);

/// The Pi's V4L2 H.264 decoder as it fails on Bookworm: after some create/destroy cycles the
/// firmware stops (raspberrypi/firmware#1845), and some streams' colorimetry does not
/// negotiate (raspberrypi/linux#7560). Here: it fails with an error after the number of frames
/// in `ROOMAGENT_STANDIN_V4L2DEC_FAIL_AFTER` (never when unset); a software decoder inside.
pub fn register_decoder(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "v4l2h264dec",
        gst::Rank::PRIMARY + 1,
        V4l2H264Dec::static_type(),
    )
}

bin_standin!(
    dec,
    V4l2H264Dec,
    "RoomagentStandinV4l2H264Dec",
    metadata: (
        "V4L2 H264 Decoder (roomagent stand-in)",
        "Codec/Decoder/Video/Hardware",
        "Decodes H264 streams via V4L2 API (a software decoder inside)"
    ),
    templates: {
        let sink = gst::Caps::builder("video/x-h264")
            .field("stream-format", "byte-stream")
            .field("alignment", "au")
            .build();
        templates(Some(&sink), &gst::Caps::builder("video/x-raw").build())
    },
    build: |bin| {
        let inner = software_decoder();
        fill(bin, std::slice::from_ref(&inner));
        let limit: Option<u64> = std::env::var("ROOMAGENT_STANDIN_V4L2DEC_FAIL_AFTER")
            .ok()
            .and_then(|v| v.parse().ok());
        if let Some(limit) = limit {
            let frames = std::sync::atomic::AtomicU64::new(0);
            let weak = bin.downgrade();
            inner.static_pad("sink").unwrap().add_probe(
                gst::PadProbeType::BUFFER,
                move |_, info| {
                    if frames.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < limit {
                        return gst::PadProbeReturn::Ok;
                    }
                    if let Some(this) = weak.upgrade() {
                        gst::element_error!(
                            this,
                            gst::StreamError::Decode,
                            ["Failed to process frame (stand-in: the decoder stopped)"]
                        );
                    }
                    info.flow_res = Err(gst::FlowError::Error);
                    gst::PadProbeReturn::Drop
                },
            );
        }
    },
);
