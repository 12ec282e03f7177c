//! Intel's low-power H.264 encoder as GStreamer's va plugin exposes it (`vah264lpenc`, the only
//! H.264 encoder the free intel-media driver, Jasper Lake and Arc offer):
//!
//! - `rate-control` is an enum built from what the driver reports; without HuC firmware the
//!   low-power entry point reports CQP only, and in CQP the `bitrate` does nothing. Which
//!   modes this stand-in reports comes from `ROOMAGENT_STANDIN_VA_RATE_CONTROL` (comma-separated
//!   nicks, default `cqp`).
//! - On 1.22 a `bitrate` change marks the encoder for reconfiguration: it drains and restarts,
//!   and the next frame is an IDR (gstvabaseenc.c; read from the source, not observed).
//! - Before 1.25.1 a force-key-unit request gives an I frame that is not an IDR: a new viewer
//!   cannot start on it. This stand-in gives no key frame at all for it.

use std::ffi::CString;
use std::sync::{LazyLock, Mutex, OnceLock};

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::glib::translate::*;
use gstreamer::prelude::*;
use gstreamer::subclass::prelude::*;

use crate::encoder::{Core, ignore_force_key_unit};

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "vah264lpenc",
        gst::Rank::NONE,
        VaH264LpEnc::static_type(),
    )
}

/// VA_RC_* values and nicks.
const MODES: &[(i32, &str, &str)] = &[
    (0x02, "cbr", "Constant Bitrate"),
    (0x04, "vbr", "Variable Bitrate"),
    (0x10, "cqp", "Constant Quantizer"),
];

/// The rate-control enum of this "driver": registered once, from the environment.
fn rate_control_type() -> glib::Type {
    static TYPE: LazyLock<glib::Type> = LazyLock::new(|| {
        let offered =
            std::env::var("ROOMAGENT_STANDIN_VA_RATE_CONTROL").unwrap_or_else(|_| "cqp".into());
        let mut values: Vec<glib::gobject_ffi::GEnumValue> = MODES
            .iter()
            .filter(|(_, nick, _)| offered.split(',').any(|o| o.trim() == *nick))
            .map(|(v, nick, name)| glib::gobject_ffi::GEnumValue {
                value: *v,
                value_name: CString::new(*name).unwrap().into_raw(),
                value_nick: CString::new(*nick).unwrap().into_raw(),
            })
            .collect();
        values.push(glib::gobject_ffi::GEnumValue {
            value: 0,
            value_name: std::ptr::null(),
            value_nick: std::ptr::null(),
        });
        let values: &'static [glib::gobject_ffi::GEnumValue] = values.leak();
        unsafe {
            from_glib(glib::gobject_ffi::g_enum_register_static(
                c"GstVaEncoderRateControl_standin".as_ptr(),
                values.as_ptr(),
            ))
        }
    });
    *TYPE
}

glib::wrapper! {
    pub struct VaH264LpEnc(ObjectSubclass<imp::VaH264LpEnc>)
        @extends gst::Bin, gst::Element, gst::Object, @implements gst::ChildProxy;
}

mod imp {
    use super::*;

    #[derive(Debug, Clone, Copy, Default)]
    struct Settings {
        bitrate: u32,
        key_int_max: u32,
        b_frames: u32,
        /// A VA_RC_* value; 0 until set (then the first offered).
        rate_control: i32,
    }

    #[derive(Default)]
    pub struct VaH264LpEnc {
        settings: Mutex<Settings>,
        core: OnceLock<Core>,
    }

    impl VaH264LpEnc {
        fn mode(&self) -> i32 {
            let s = self.settings.lock().unwrap();
            if s.rate_control != 0 {
                return s.rate_control;
            }
            glib::EnumClass::with_type(rate_control_type())
                .and_then(|c| c.values().first().map(|v| v.value()))
                .unwrap_or(0x10)
        }

        fn sync(&self, bitrate_changed: bool) {
            let Some(core) = self.core.get() else {
                return;
            };
            let s = *self.settings.lock().unwrap();
            if self.mode() == 0x10 {
                core.x264.set_property_from_str("pass", "quant");
                core.x264.set_property("quantizer", 26u32);
            } else {
                core.x264.set_property_from_str("pass", "cbr");
                if s.bitrate > 0 {
                    core.x264.set_property("bitrate", s.bitrate);
                }
            }
            if s.key_int_max > 0 {
                core.x264.set_property("key-int-max", s.key_int_max);
            }
            // A bitrate change reconfigures the running encoder: the GOP starts again.
            if bitrate_changed && self.obj().current_state() >= gst::State::Paused {
                core.force_idr();
            }
        }
    }

    #[glib::object_subclass]
    impl ObjectSubclass for VaH264LpEnc {
        const NAME: &'static str = "RoomagentStandinVaH264LpEnc";
        type Type = super::VaH264LpEnc;
        type ParentType = gst::Bin;
    }

    impl ObjectImpl for VaH264LpEnc {
        fn properties() -> &'static [glib::ParamSpec] {
            static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
                let rc = rate_control_type();
                let class = glib::EnumClass::with_type(rc).expect("rate-control enum");
                let default = class.values().first().map(|v| v.value()).unwrap_or(0);
                let rate_control = unsafe {
                    from_glib_none(glib::gobject_ffi::g_param_spec_enum(
                        c"rate-control".as_ptr(),
                        c"rate control mode".as_ptr(),
                        c"The desired rate control mode for the encoder".as_ptr(),
                        rc.into_glib(),
                        default,
                        glib::gobject_ffi::G_PARAM_READWRITE
                            | glib::gobject_ffi::G_PARAM_STATIC_STRINGS
                                as glib::gobject_ffi::GParamFlags,
                    ))
                };
                vec![
                    glib::ParamSpecUInt::builder("bitrate")
                        .maximum(2_048_000)
                        .build(),
                    glib::ParamSpecUInt::builder("key-int-max")
                        .maximum(1024)
                        .build(),
                    glib::ParamSpecUInt::builder("b-frames").maximum(31).build(),
                    rate_control,
                ]
            });
            PROPS.as_ref()
        }

        fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
            let mut bitrate_changed = false;
            {
                let mut s = self.settings.lock().unwrap();
                match pspec.name() {
                    "bitrate" => {
                        let v: u32 = value.get().unwrap();
                        bitrate_changed = v != s.bitrate;
                        s.bitrate = v;
                    }
                    "key-int-max" => s.key_int_max = value.get().unwrap(),
                    "b-frames" => s.b_frames = value.get().unwrap(),
                    "rate-control" => unsafe {
                        s.rate_control =
                            glib::gobject_ffi::g_value_get_enum(value.to_glib_none().0);
                    },
                    _ => {}
                }
            }
            self.sync(bitrate_changed);
        }

        fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
            let s = *self.settings.lock().unwrap();
            match pspec.name() {
                "bitrate" => s.bitrate.to_value(),
                "key-int-max" => s.key_int_max.to_value(),
                "b-frames" => s.b_frames.to_value(),
                _ => unsafe {
                    let mut v = glib::Value::from_type(rate_control_type());
                    glib::gobject_ffi::g_value_set_enum(v.to_glib_none_mut().0, self.mode());
                    v
                },
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
                30,
            );
            ignore_force_key_unit(&core, || !crate::gst_at_least(1, 25, 1));
            let _ = self.core.set(core);
            self.sync(false);
        }
    }

    impl GstObjectImpl for VaH264LpEnc {}

    impl ElementImpl for VaH264LpEnc {
        fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
            static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
                gst::subclass::ElementMetadata::new(
                    "VA-API H.264 Low Power Encoder (roomagent stand-in)",
                    "Codec/Encoder/Video/Hardware",
                    "VA-API based H.264 low power video encoder (x264 inside)",
                    "roomagent",
                )
            });
            Some(&*META)
        }

        fn pad_templates() -> &'static [gst::PadTemplate] {
            static T: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
                let sink = gst::Caps::builder("video/x-raw")
                    .field("format", "NV12")
                    .build();
                let src = gst::Caps::builder("video/x-h264")
                    .field("stream-format", "byte-stream")
                    .field("alignment", "au")
                    .field(
                        "profile",
                        gst::List::new(["constrained-baseline", "main", "high"]),
                    )
                    .build();
                crate::encoder::templates(Some(&sink), &src)
            });
            T.as_ref()
        }
    }

    impl BinImpl for VaH264LpEnc {}
}
