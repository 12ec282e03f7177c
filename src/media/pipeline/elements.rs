//! Elements made from factory names, profile stages, devices and sink settings, and the
//! helpers every part of the pipeline links them with. A missing element is reported with the
//! Debian package that provides it.

use gstreamer as gst;
use gstreamer::prelude::*;

use crate::media::devices::DeviceInfo;
use crate::media::profile::Stage;
use crate::media::{DeviceChoice, MediaError, SinkChoice, props};

/// Debian packages that provide elements, for "install X" hints.
fn package_for(factory: &str) -> &'static str {
    match factory {
        "x264enc" => "gstreamer1.0-plugins-ugly",
        "webrtcbin" | "webrtcdsp" | "webrtcechoprobe" | "dtlssrtpenc" | "openh264enc"
        | "kmssink" | "compositor" | "vah264enc" => "gstreamer1.0-plugins-bad",
        "nicesrc" | "nicesink" => "gstreamer1.0-nice",
        "avdec_h264" => "gstreamer1.0-libav",
        "alsasrc" | "alsasink" => "gstreamer1.0-alsa",
        "pulsesrc" | "pulsesink" => "gstreamer1.0-pulseaudio",
        "v4l2src" | "rtph264pay" | "vp8dec" | "vp8enc" | "jpegdec" => "gstreamer1.0-plugins-good",
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

/// A `capsfilter` that lets only `s` through.
pub(super) fn capsfilter(s: &str) -> Result<gst::Element, MediaError> {
    let e = make("capsfilter")?;
    e.set_property("caps", caps(s)?);
    Ok(e)
}

/// Links each element to the next.
pub(super) fn link_all(elements: &[&gst::Element]) -> Result<(), MediaError> {
    for w in elements.windows(2) {
        w[0].link(w[1]).map_err(|_| MediaError::Link {
            from: w[0].name().to_string(),
            to: w[1].name().to_string(),
        })?;
    }
    Ok(())
}

/// A discovered or configured device's source element, with the formats the device offers
/// when its provider reported them.
pub(super) fn device_source(
    choice: &DeviceChoice,
    found: &[DeviceInfo],
    stage: Option<&Stage>,
    fallback_element: &str,
) -> Result<Option<(gst::Element, Option<gst::Caps>)>, MediaError> {
    match choice {
        DeviceChoice::None => Ok(None),
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
            let caps = found
                .iter()
                .find(|d| d.path.as_deref() == Some(path.as_str()))
                .and_then(|d| d.device.as_ref())
                .and_then(|d| d.caps());
            Ok(Some((e, caps)))
        }
        DeviceChoice::Auto => {
            let Some(d) = found.iter().find_map(|d| d.device.clone()) else {
                return Ok(None);
            };
            let e = d
                .create_element(None)
                .map_err(|_| MediaError::Invalid(format!("cannot open {}", d.display_name())))?;
            if let Some(s) = stage {
                props::apply(&e, &s.properties)?;
            }
            Ok(Some((e, d.caps())))
        }
    }
}

/// The display (`video`) or speaker sink a setting names; `auto` picks by environment. A
/// `fakesink` neither syncs nor prerolls (nothing waits on a sink nobody sees), a real sink
/// plays in time.
pub(super) fn sink_element(choice: &SinkChoice, video: bool) -> Result<gst::Element, MediaError> {
    let name = match choice {
        SinkChoice::Element(name) => name.clone(),
        SinkChoice::Auto => auto_sink(video).to_string(),
    };
    let e = make(&name)?;
    if name == "fakesink" {
        e.set_property("sync", false);
        e.set_property("async", false);
    } else if e.find_property("sync").is_some() {
        e.set_property("sync", true);
    }
    Ok(e)
}

/// The sink for this environment: a display server's, DRM's (`kmssink`) or a sound server's
/// or card's, else `fakesink`.
fn auto_sink(video: bool) -> &'static str {
    if video {
        if std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some() {
            "autovideosink"
        } else if std::path::Path::new("/dev/dri/card0").exists()
            && gst::ElementFactory::find("kmssink").is_some()
        {
            "kmssink"
        } else {
            "fakesink"
        }
    } else if std::env::var_os("PULSE_SERVER").is_some()
        || std::path::Path::new("/run/user").exists()
            && std::env::var_os("XDG_RUNTIME_DIR").is_some()
        || std::path::Path::new("/dev/snd/controlC0").exists()
    {
        "autoaudiosink"
    } else {
        "fakesink"
    }
}
