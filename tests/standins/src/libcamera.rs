//! libcamera's GStreamer plugin as raspberrypi/libcamera ships it (src/gstreamer):
//!
//! - The device provider `libcameraprovider` hides GStreamer's `v4l2deviceprovider` (so USB
//!   cameras come through libcamera's UVC handler too) and classes its devices `Source/Video`.
//! - A device's name is libcamera's camera id (`/base/soc/i2c0mux/i2c@1/imx708@1a` for a CSI
//!   camera, `…-046d:0825` for a USB one); it has no properties; it makes a `libcamerasrc`
//!   with `camera-name` set.
//! - The provider only probes (no start of its own); the devices are those named, `;`-separated,
//!   in `ROOMAGENT_STANDIN_LIBCAMERA` (none when unset).

use std::sync::{LazyLock, Mutex};

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer::subclass::prelude::*;

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "libcamerasrc",
        gst::Rank::PRIMARY,
        LibcameraSrc::static_type(),
    )?;
    gst::DeviceProvider::register(
        Some(plugin),
        "libcameraprovider",
        gst::Rank::PRIMARY,
        Provider::static_type(),
    )
}

fn camera_caps() -> gst::Caps {
    gst::Caps::builder("video/x-raw")
        .field("format", gst::List::new(["NV12", "YUY2"]))
        .field("width", gst::IntRange::new(64, 1920))
        .field("height", gst::IntRange::new(64, 1080))
        .field(
            "framerate",
            gst::FractionRange::new(gst::Fraction::new(1, 1), gst::Fraction::new(30, 1)),
        )
        .build()
}

glib::wrapper! {
    pub struct LibcameraSrc(ObjectSubclass<src::LibcameraSrc>)
        @extends gst::Bin, gst::Element, gst::Object, @implements gst::ChildProxy;
}

mod src {
    use super::*;

    #[derive(Default)]
    pub struct LibcameraSrc {
        camera: Mutex<Option<String>>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for LibcameraSrc {
        const NAME: &'static str = "RoomagentStandinLibcameraSrc";
        type Type = super::LibcameraSrc;
        type ParentType = gst::Bin;
    }

    impl ObjectImpl for LibcameraSrc {
        fn properties() -> &'static [glib::ParamSpec] {
            static PROPS: LazyLock<Vec<glib::ParamSpec>> =
                LazyLock::new(|| vec![glib::ParamSpecString::builder("camera-name").build()]);
            PROPS.as_ref()
        }

        fn set_property(&self, _id: usize, value: &glib::Value, _pspec: &glib::ParamSpec) {
            *self.camera.lock().unwrap() = value.get().unwrap();
        }

        fn property(&self, _id: usize, _pspec: &glib::ParamSpec) -> glib::Value {
            self.camera.lock().unwrap().to_value()
        }

        fn constructed(&self) {
            self.parent_constructed();
            let obj = self.obj();
            let test = gst::ElementFactory::make("videotestsrc")
                .property("is-live", true)
                .property_from_str("pattern", "ball")
                .build()
                .unwrap();
            crate::encoder::fill(obj.upcast_ref(), &[test]);
            obj.set_element_flags(gst::ElementFlags::SOURCE);
        }
    }

    impl GstObjectImpl for LibcameraSrc {}

    impl ElementImpl for LibcameraSrc {
        fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
            static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
                gst::subclass::ElementMetadata::new(
                    "libcamera Source (roomagent stand-in)",
                    "Source/Video",
                    "Linux Camera source using libcamera (a test pattern here)",
                    "roomagent",
                )
            });
            Some(&*META)
        }

        fn pad_templates() -> &'static [gst::PadTemplate] {
            static T: LazyLock<Vec<gst::PadTemplate>> =
                LazyLock::new(|| crate::encoder::templates(None, &camera_caps()));
            T.as_ref()
        }
    }

    impl BinImpl for LibcameraSrc {}
}

glib::wrapper! {
    pub struct Device(ObjectSubclass<dev::Device>) @extends gst::Device, gst::Object;
}

mod dev {
    use super::*;

    #[derive(Default)]
    pub struct Device {
        pub name: Mutex<String>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for Device {
        const NAME: &'static str = "RoomagentStandinLibcameraDevice";
        type Type = super::Device;
        type ParentType = gst::Device;
    }

    impl ObjectImpl for Device {}
    impl GstObjectImpl for Device {}

    impl DeviceImpl for Device {
        fn create_element(&self, name: Option<&str>) -> Result<gst::Element, gst::LoggableError> {
            let mut b = gst::ElementFactory::make("libcamerasrc")
                .property("camera-name", self.name.lock().unwrap().clone());
            if let Some(n) = name {
                b = b.name(n);
            }
            b.build()
                .map_err(|_| gst::loggable_error!(gst::CAT_RUST, "no libcamerasrc"))
        }
    }
}

glib::wrapper! {
    pub struct Provider(ObjectSubclass<prov::Provider>) @extends gst::DeviceProvider, gst::Object;
}

mod prov {
    use super::*;

    #[derive(Default)]
    pub struct Provider;

    #[glib::object_subclass]
    impl ObjectSubclass for Provider {
        const NAME: &'static str = "RoomagentStandinLibcameraProvider";
        type Type = super::Provider;
        type ParentType = gst::DeviceProvider;
    }

    impl ObjectImpl for Provider {
        fn constructed(&self) {
            self.parent_constructed();
            // Avoid devices being listed twice, as libcamera's provider says.
            self.obj().hide_provider("v4l2deviceprovider");
        }
    }

    impl GstObjectImpl for Provider {}

    impl DeviceProviderImpl for Provider {
        fn metadata() -> Option<&'static gst::subclass::DeviceProviderMetadata> {
            static META: LazyLock<gst::subclass::DeviceProviderMetadata> = LazyLock::new(|| {
                gst::subclass::DeviceProviderMetadata::new(
                    "libcamera Device Provider (roomagent stand-in)",
                    "Source/Video",
                    "List camera device using libcamera",
                    "roomagent",
                )
            });
            Some(&*META)
        }

        fn probe(&self) -> Vec<gst::Device> {
            std::env::var("ROOMAGENT_STANDIN_LIBCAMERA")
                .unwrap_or_default()
                .split(';')
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .map(|id| {
                    let d: super::Device = glib::Object::builder()
                        .property("display-name", id)
                        .property("device-class", "Source/Video")
                        .property("caps", camera_caps())
                        .build();
                    *d.imp().name.lock().unwrap() = id.to_string();
                    d.upcast()
                })
                .collect()
        }

        /// What GStreamer does for a provider that only probes.
        fn start(&self) -> Result<(), gst::LoggableError> {
            for d in self.probe() {
                self.obj().device_add(&d);
            }
            Ok(())
        }
    }
}
