//! Jetson's encoder as NVIDIA's gst-v4l2 plugin (L4T r32.6 and r35) exposes it:
//!
//! - `nvv4l2h264enc` takes `video/x-raw(memory:NVMM)` only (put `nvvidconv` in front).
//! - It offers the H.264 profiles Baseline, Main and High; constrained-baseline is not among
//!   them, so caps asking for it do not negotiate.
//! - It has no handler for force-key-unit requests; the action signal `force-IDR` makes the
//!   next frame an IDR.
//! - `bitrate` is in bit/s; `iframeinterval`, `idrinterval`, `insert-sps-pps`, `profile`,
//!   `maxperf-enable` as in NVIDIA's plugin.
//! - `nvvidconv` converts and scales between system memory and NVMM.
//! - `nvv4l2decoder` gives its pictures in NVMM memory only.
//!
//! NVMM buffers here are ordinary system memory under the NVMM caps feature.

use std::sync::{LazyLock, Mutex, OnceLock};

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer::subclass::prelude::*;
use gstreamer_base as gst_base;
use gstreamer_base::subclass::prelude::*;

use crate::encoder::{
    Core, bin_standin, element, fill, ignore_force_key_unit, software_decoder, templates,
};

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "roomagentnvmmdownload",
        gst::Rank::NONE,
        NvmmDownload::static_type(),
    )?;
    gst::Element::register(
        Some(plugin),
        "roomagentnvmmany",
        gst::Rank::NONE,
        NvmmAny::static_type(),
    )?;
    gst::Element::register(
        Some(plugin),
        "roomagentnvmmupload",
        gst::Rank::NONE,
        NvmmUpload::static_type(),
    )?;
    gst::Element::register(
        Some(plugin),
        "nvv4l2decoder",
        gst::Rank::PRIMARY + 1,
        NvV4l2Decoder::static_type(),
    )?;
    gst::Element::register(
        Some(plugin),
        "nvvidconv",
        gst::Rank::NONE,
        NvVidConv::static_type(),
    )?;
    gst::Element::register(
        Some(plugin),
        "nvv4l2h264enc",
        gst::Rank::PRIMARY + 1,
        NvV4l2H264Enc::static_type(),
    )
}

const NVMM: &str = "memory:NVMM";

fn raw(nvmm: bool) -> gst::Caps {
    let mut caps = gst::Caps::new_empty();
    let s = gst::Structure::builder("video/x-raw")
        .field("format", gst::List::new(["I420", "NV12"]))
        .build();
    caps.get_mut()
        .unwrap()
        .append_structure_full(s, nvmm.then(|| gst::CapsFeatures::new([NVMM])));
    caps
}

fn raw_both() -> gst::Caps {
    let mut caps = raw(false);
    caps.merge(raw(true));
    caps
}

/// `caps` with every structure offered in system memory and in NVMM.
fn both_memories(caps: &gst::Caps, filter: Option<&gst::Caps>) -> gst::Caps {
    let mut out = gst::Caps::new_empty();
    {
        let out = out.get_mut().unwrap();
        for s in caps.iter() {
            out.append_structure_full(s.to_owned(), None);
            out.append_structure_full(s.to_owned(), Some(gst::CapsFeatures::new([NVMM])));
        }
    }
    match filter {
        Some(f) => f.intersect_with_mode(&out, gst::CapsIntersectMode::First),
        None => out,
    }
}

/// Declares a pass-through transform that moves buffers between memories (by caps feature).
macro_rules! memory_mark {
    ($module:ident, $wrapper:ident, $name:literal, $sink:expr, $src:expr) => {
        glib::wrapper! {
            pub struct $wrapper(ObjectSubclass<$module::Imp>)
                @extends gst_base::BaseTransform, gst::Element, gst::Object;
        }

        mod $module {
            use super::*;

            #[derive(Default)]
            pub struct Imp;

            #[glib::object_subclass]
            impl ObjectSubclass for Imp {
                const NAME: &'static str = $name;
                type Type = super::$wrapper;
                type ParentType = gst_base::BaseTransform;
            }

            impl ObjectImpl for Imp {}
            impl GstObjectImpl for Imp {}

            impl ElementImpl for Imp {
                fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
                    static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
                        gst::subclass::ElementMetadata::new(
                            "NVMM memory mark (roomagent stand-in)",
                            "Filter/Video",
                            "Moves buffers between system memory and NVMM caps",
                            "roomagent",
                        )
                    });
                    Some(&*META)
                }

                fn pad_templates() -> &'static [gst::PadTemplate] {
                    static T: LazyLock<Vec<gst::PadTemplate>> =
                        LazyLock::new(|| crate::encoder::templates(Some(&$sink), &$src));
                    T.as_ref()
                }
            }

            impl BaseTransformImpl for Imp {
                const MODE: gst_base::subclass::BaseTransformMode =
                    gst_base::subclass::BaseTransformMode::AlwaysInPlace;
                const PASSTHROUGH_ON_SAME_CAPS: bool = false;
                const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

                fn transform_caps(
                    &self,
                    _direction: gst::PadDirection,
                    caps: &gst::Caps,
                    filter: Option<&gst::Caps>,
                ) -> Option<gst::Caps> {
                    Some(both_memories(caps, filter))
                }

                fn transform_ip(
                    &self,
                    _buf: &mut gst::BufferRef,
                ) -> Result<gst::FlowSuccess, gst::FlowError> {
                    Ok(gst::FlowSuccess::Ok)
                }
            }
        }
    };
}

memory_mark!(
    download,
    NvmmDownload,
    "RoomagentStandinNvmmDownload",
    raw(true),
    raw(false)
);
memory_mark!(
    any,
    NvmmAny,
    "RoomagentStandinNvmmAny",
    raw_both(),
    raw_both()
);
memory_mark!(
    upload,
    NvmmUpload,
    "RoomagentStandinNvmmUpload",
    raw(false),
    raw(true)
);

bin_standin!(
    dec,
    NvV4l2Decoder,
    "RoomagentStandinNvV4l2Decoder",
    metadata: (
        "NVIDIA v4l2 video decoder (roomagent stand-in)",
        "Codec/Decoder/Video",
        "Decode video streams via V4L2 API into NVMM memory (a software decoder inside)"
    ),
    templates: {
        let sink = gst::Caps::builder("video/x-h264")
            .field("stream-format", "byte-stream")
            .field("alignment", "au")
            .build();
        templates(Some(&sink), &raw(true))
    },
    build: |bin| fill(
        bin,
        &[software_decoder(), element("videoconvert"), element("roomagentnvmmupload")],
    ),
);

bin_standin!(
    conv,
    NvVidConv,
    "RoomagentStandinNvVidConv",
    metadata: (
        "NvVidConv Plugin (roomagent stand-in)",
        "Filter/Converter/Video/Scaler",
        "Converts video from one colorspace to another & resizes"
    ),
    templates: {
        let mut any = gst::Caps::builder("video/x-raw").build();
        any.merge(gst::Caps::builder("video/x-raw").features([NVMM]).build());
        templates(Some(&any), &any)
    },
    build: |bin| fill(
        bin,
        &[
            element("roomagentnvmmany"),
            element("videoconvert"),
            element("videoscale"),
            element("roomagentnvmmany"),
        ],
    ),
);

/// NVIDIA's H.264 profiles (V4L2_MPEG_VIDEO_H264_PROFILE_* values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, glib::Enum, Default)]
#[enum_type(name = "RoomagentStandinNvH264Profile")]
pub enum Profile {
    #[default]
    #[enum_value(name = "GST_V4L2_H264_VIDENC_BASELINE_PROFILE", nick = "Baseline")]
    Baseline = 0,
    #[enum_value(name = "GST_V4L2_H264_VIDENC_MAIN_PROFILE", nick = "Main")]
    Main = 2,
    #[enum_value(name = "GST_V4L2_H264_VIDENC_HIGH_PROFILE", nick = "High")]
    High = 4,
}

impl Profile {
    fn caps_name(self) -> &'static str {
        match self {
            Profile::Baseline => "baseline",
            Profile::Main => "main",
            Profile::High => "high",
        }
    }
}

glib::wrapper! {
    pub struct NvV4l2H264Enc(ObjectSubclass<enc::NvV4l2H264Enc>)
        @extends gst::Bin, gst::Element, gst::Object, @implements gst::ChildProxy;
}

mod enc {
    use super::*;

    #[derive(Debug, Clone, Copy)]
    struct Settings {
        bitrate: u32,
        iframeinterval: u32,
        idrinterval: u32,
        insert_sps_pps: bool,
        maxperf: bool,
        profile: Profile,
    }

    impl Default for Settings {
        fn default() -> Self {
            Settings {
                bitrate: 4_000_000,
                iframeinterval: 30,
                idrinterval: 256,
                insert_sps_pps: false,
                maxperf: false,
                profile: Profile::Baseline,
            }
        }
    }

    #[derive(Default)]
    pub struct NvV4l2H264Enc {
        settings: Mutex<Settings>,
        core: OnceLock<Core>,
    }

    fn out_caps(profile: Profile) -> gst::Caps {
        gst::Caps::builder("video/x-h264")
            .field("stream-format", "byte-stream")
            .field("alignment", "au")
            .field("profile", profile.caps_name())
            .build()
    }

    impl NvV4l2H264Enc {
        fn sync(&self) {
            let s = *self.settings.lock().unwrap();
            if let Some(core) = self.core.get() {
                core.x264.set_property("bitrate", (s.bitrate / 1000).max(1));
                core.x264
                    .set_property("key-int-max", s.iframeinterval.max(1));
                core.out.set_property("caps", out_caps(s.profile));
            }
        }
    }

    #[glib::object_subclass]
    impl ObjectSubclass for NvV4l2H264Enc {
        const NAME: &'static str = "RoomagentStandinNvV4l2H264Enc";
        type Type = super::NvV4l2H264Enc;
        type ParentType = gst::Bin;
    }

    impl ObjectImpl for NvV4l2H264Enc {
        fn properties() -> &'static [glib::ParamSpec] {
            static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
                vec![
                    glib::ParamSpecUInt::builder("bitrate")
                        .default_value(4_000_000)
                        .build(),
                    glib::ParamSpecUInt::builder("iframeinterval")
                        .default_value(30)
                        .build(),
                    glib::ParamSpecUInt::builder("idrinterval")
                        .default_value(256)
                        .build(),
                    glib::ParamSpecBoolean::builder("insert-sps-pps").build(),
                    glib::ParamSpecBoolean::builder("maxperf-enable").build(),
                    glib::ParamSpecEnum::builder::<Profile>("profile").build(),
                ]
            });
            PROPS.as_ref()
        }

        fn signals() -> &'static [glib::subclass::Signal] {
            static SIGNALS: LazyLock<Vec<glib::subclass::Signal>> = LazyLock::new(|| {
                vec![
                    glib::subclass::Signal::builder("force-IDR")
                        .action()
                        .class_handler(|args| {
                            if let Ok(enc) = args[0].get::<super::NvV4l2H264Enc>()
                                && let Some(core) = enc.imp().core.get()
                            {
                                core.force_idr();
                            }
                            None
                        })
                        .build(),
                ]
            });
            SIGNALS.as_ref()
        }

        fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
            {
                let mut s = self.settings.lock().unwrap();
                match pspec.name() {
                    "bitrate" => s.bitrate = value.get().unwrap(),
                    "iframeinterval" => s.iframeinterval = value.get().unwrap(),
                    "idrinterval" => s.idrinterval = value.get().unwrap(),
                    "insert-sps-pps" => s.insert_sps_pps = value.get().unwrap(),
                    "maxperf-enable" => s.maxperf = value.get().unwrap(),
                    "profile" => s.profile = value.get().unwrap(),
                    _ => {}
                }
            }
            self.sync();
        }

        fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
            let s = *self.settings.lock().unwrap();
            match pspec.name() {
                "bitrate" => s.bitrate.to_value(),
                "iframeinterval" => s.iframeinterval.to_value(),
                "idrinterval" => s.idrinterval.to_value(),
                "insert-sps-pps" => s.insert_sps_pps.to_value(),
                "maxperf-enable" => s.maxperf.to_value(),
                _ => s.profile.to_value(),
            }
        }

        fn constructed(&self) {
            self.parent_constructed();
            let obj = self.obj();
            let core = Core::build(
                obj.upcast_ref(),
                vec![element("roomagentnvmmdownload")],
                out_caps(Profile::Baseline),
                30,
            );
            // NVIDIA's plugin has no force-key-unit handler in any release.
            ignore_force_key_unit(&core, || true);
            let _ = self.core.set(core);
            self.sync();
        }
    }

    impl GstObjectImpl for NvV4l2H264Enc {}

    impl ElementImpl for NvV4l2H264Enc {
        fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
            static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
                gst::subclass::ElementMetadata::new(
                    "V4L2 H.264 Encoder (roomagent stand-in for NVIDIA's)",
                    "Codec/Encoder/Video",
                    "Encode H.264 video streams via V4L2 API (NVENC behaviour, x264 inside)",
                    "roomagent",
                )
            });
            Some(&*META)
        }

        fn pad_templates() -> &'static [gst::PadTemplate] {
            static T: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
                let src = gst::Caps::builder("video/x-h264")
                    .field("stream-format", "byte-stream")
                    .field("alignment", "au")
                    .field("profile", gst::List::new(["baseline", "main", "high"]))
                    .build();
                crate::encoder::templates(Some(&raw(true)), &src)
            });
            T.as_ref()
        }
    }

    impl BinImpl for NvV4l2H264Enc {}
}
