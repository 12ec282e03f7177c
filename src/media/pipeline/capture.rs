//! The local video: camera, black slate (camera off) and HDMI capture (sharing), each
//! captured in the format the device gives best (raw or MJPEG) and turned into the call's raw
//! video, into an `input-selector`.

use gstreamer as gst;
use gstreamer::prelude::*;
use tracing::info;

use super::Build;
use super::elements::{capsfilter, device_source, link_all, make, make_stage};
use crate::media::profile::DeviceKind;
use crate::media::{MediaError, MediaOptions};

/// The raw video every input is converted to before the selector, and the encoder takes.
pub(super) fn raw_video_caps(o: &MediaOptions) -> String {
    format!(
        "video/x-raw,format=I420,width={},height={},framerate={}/1,pixel-aspect-ratio=1/1",
        o.width, o.height, o.framerate
    )
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
    pipeline: &gst::Pipeline,
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
    pipeline: &gst::Pipeline,
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

/// The video inputs the selector switches between, and its pads for them.
pub(super) struct VideoInput {
    /// Passes on one input.
    pub selector: gst::Element,
    /// The camera (or the profile's source, or a test pattern).
    pub camera_pad: gst::Pad,
    /// Black frames, for camera off.
    pub black_pad: gst::Pad,
    /// The HDMI capture input, when there is one.
    pub hdmi_pad: Option<gst::Pad>,
}

impl Build<'_> {
    /// Camera, black slate and HDMI capture, each turned into the call's raw video, into an
    /// `input-selector` that shows the camera.
    pub(super) fn video_input(&mut self) -> Result<VideoInput, MediaError> {
        let (camera, camera_caps) = self.camera_source()?;
        let selector = make("input-selector")?;
        selector.set_property("sync-streams", false);
        self.sources.push(camera.clone());
        self.add(&[&camera, &selector])?;
        let camera_raw = capture(
            &self.pipeline,
            &camera,
            camera_caps.as_ref(),
            "camera",
            self.o,
        )?;
        let camera_pad = self.to_selector(&selector, &camera_raw)?;
        let black_pad = self.slate(&selector)?;
        let hdmi_pad = self.hdmi(&selector)?;
        selector.set_property("active-pad", &camera_pad);
        Ok(VideoInput {
            selector,
            camera_pad,
            black_pad,
            hdmi_pad,
        })
    }

    /// The configured or first camera found when the profile needs one, else the profile's
    /// own video source; with neither, a live test pattern rather than nothing, so the far end
    /// sees life. With the formats the camera offers, when known.
    fn camera_source(&self) -> Result<(gst::Element, Option<gst::Caps>), MediaError> {
        let profile = self.profile;
        let needs_camera = profile.requires.devices.contains(&DeviceKind::Camera);
        if needs_camera
            && let Some(camera) = device_source(
                &self.o.camera,
                &self.found.cameras,
                profile.video_source.as_ref(),
                "v4l2src",
            )?
        {
            return Ok(camera);
        }
        match &profile.video_source {
            Some(stage) if !needs_camera => Ok((make_stage(stage)?, None)),
            _ => {
                let e = make("videotestsrc")?;
                e.set_property("is-live", true);
                Ok((e, None))
            }
        }
    }

    /// Black frames for when the camera is off.
    fn slate(&mut self, selector: &gst::Element) -> Result<gst::Pad, MediaError> {
        let black = make("videotestsrc")?;
        black.set_property("is-live", true);
        black.set_property_from_str("pattern", "black");
        self.add(&[&black])?;
        let pad = self.to_selector(selector, &black)?;
        self.sources.push(black);
        Ok(pad)
    }

    /// The HDMI capture input for sharing, when one is configured or found.
    fn hdmi(&mut self, selector: &gst::Element) -> Result<Option<gst::Pad>, MediaError> {
        let Some((src, caps)) = device_source(&self.o.hdmi, &self.found.hdmi, None, "v4l2src")?
        else {
            return Ok(None);
        };
        self.add(&[&src])?;
        self.sources.push(src.clone());
        let raw = capture(&self.pipeline, &src, caps.as_ref(), "HDMI input", self.o)?;
        Ok(Some(self.to_selector(selector, &raw)?))
    }

    /// Converts and scales `src` to the call's raw video, into a new pad of the selector.
    /// `videorate` only drops frames (`drop-only`): a camera slower than the call's rate is
    /// not padded with copies.
    fn to_selector(
        &self,
        selector: &gst::Element,
        src: &gst::Element,
    ) -> Result<gst::Pad, MediaError> {
        let conv = make("videoconvert")?;
        let scale = make("videoscale")?;
        let rate = make("videorate")?;
        rate.set_property("drop-only", true);
        let filter = capsfilter(&raw_video_caps(self.o))?;
        self.add(&[&conv, &scale, &rate, &filter])?;
        link_all(&[src, &conv, &scale, &rate, &filter])?;
        let pad = selector
            .request_pad_simple("sink_%u")
            .ok_or_else(|| MediaError::Invalid("input-selector gave no pad".into()))?;
        filter
            .static_pad("src")
            .expect("capsfilter has a src pad")
            .link(&pad)
            .map_err(|_| MediaError::Link {
                from: filter.name().to_string(),
                to: "input-selector".into(),
            })?;
        Ok(pad)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::media::pipeline::make;

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
        let raw = capture_output(&pipeline, camera.upcast_ref(), CaptureFormat::Jpeg, &o).unwrap();
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
}
