//! Stand-ins for the board elements of Raspberry Pi, Jetson and Intel VA machines, for tests
//! on machines that have none of them. Each registers under the real element's name and does
//! what public sources say the real one does where the agent depends on it (docs/boards.md
//! names the source of each behaviour); the pictures are encoded by x264enc underneath.
//!
//! - `v4l2h264enc`, `v4l2convert`, `v4l2h264dec` (Raspberry Pi 4, bcm2835-codec)
//! - `nvvidconv`, `nvv4l2h264enc`, `nvv4l2decoder` (Jetson, NVIDIA's gst-v4l2)
//! - `vah264lpenc` (Intel VA, low-power entry point only)
//! - `libcameraprovider`, `libcamerasrc` (libcamera's GStreamer plugin)

use gstreamer as gst;
use gstreamer::glib;

mod encoder;
mod libcamera;
mod nvidia;
mod v4l2;
mod va;

#[allow(dead_code)]
#[path = "../../../src/media/h264_levels.rs"]
mod h264_levels;

/// The running GStreamer is at least `major.minor.micro`: the stand-ins behave as the release
/// the agent runs on would.
pub(crate) fn gst_at_least(major: u32, minor: u32, micro: u32) -> bool {
    let (a, b, c, _) = gst::version();
    (a, b, c) >= (major, minor, micro)
}

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    v4l2::register(plugin)?;
    v4l2::register_decoder(plugin)?;
    nvidia::register(plugin)?;
    va::register(plugin)?;
    libcamera::register(plugin)?;
    Ok(())
}

gst::plugin_define!(
    roomagentstandins,
    "Stand-ins for board elements (roomagent tests only)",
    plugin_init,
    "0.1.0",
    "MIT/X11",
    "roomagent",
    "roomagent",
    "https://localhost/roomagent"
);
