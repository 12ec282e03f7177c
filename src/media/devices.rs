//! What is attached: cameras, HDMI capture inputs, microphones and speakers, found with
//! GstDeviceMonitor, plus the board model and the H.264 encoders GStreamer offers.

use std::fmt::Write as _;

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;

pub use crate::board::Board;

use super::profile::{self, Capabilities, DeviceKind, Profile};

/// One device.
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    /// Display name.
    pub name: String,
    /// Device path or id, when the provider reports one (`/dev/video0`, a PulseAudio name, a
    /// libcamera camera id…).
    pub path: Option<String>,
    /// The provider's device, which can create a ready-configured source or sink.
    pub device: Option<gst::Device>,
    /// Why it is where it is (a camera, an HDMI input, unused), for `roomagent devices`.
    pub why: String,
}

/// Everything found.
#[derive(Debug, Clone, Default)]
pub struct Discovered {
    /// Cameras.
    pub cameras: Vec<DeviceInfo>,
    /// HDMI (or other) capture inputs used for screen sharing.
    pub hdmi: Vec<DeviceInfo>,
    /// Microphones.
    pub microphones: Vec<DeviceInfo>,
    /// Speakers.
    pub speakers: Vec<DeviceInfo>,
    /// Capture devices that are none of these (a Pi's ISP nodes, a CSI receiver that needs
    /// libcamera, an HDMI dongle's sound), each with why.
    pub unused: Vec<DeviceInfo>,
    /// What the device tree says the board is.
    pub board: Board,
    /// H.264 encoders present, best first.
    pub encoders: Vec<String>,
}

/// H.264 encoders the profiles know, hardware first.
const H264_ENCODERS: &[&str] = &[
    "v4l2h264enc",
    "nvv4l2h264enc",
    "vah264enc",
    "vah264lpenc",
    "vaapih264enc",
    "x264enc",
    "openh264enc",
];

/// Names that mark a video capture device as an HDMI capture input rather than a camera.
const HDMI_HINTS: &[&str] = &[
    "hdmi",
    "capture",
    "cam link",
    "ms2109",
    "ms2130",
    "macrosilicon",
    "elgato",
    "usb3 video",
];

/// Names that mark a sound card as an HDMI capture input's: narrower than [`HDMI_HINTS`],
/// since sound cards are commonly called "… Capture" and "… HDMI" (a display's output).
const HDMI_AUDIO_HINTS: &[&str] = &["ms2109", "ms2130", "cam link", "hdmi capture", "usb3 video"];

/// USB HDMI capture devices by vendor and product id (what udev reports as ID_VENDOR_ID and
/// ID_MODEL_ID, and the v4l2 provider as `device.vendor.id`/`device.product.id`). Their UVC
/// names say nothing of HDMI: an MS2109 calls itself "UVC Camera (534d:2109): USB Vid".
/// Sources: docs/boards.md.
pub const HDMI_USB_IDS: &[(&str, &str, &str)] = &[
    ("534d", "2109", "MacroSilicon MS2109"),
    ("534d", "2130", "MacroSilicon MS2130"),
    ("345f", "2109", "MacroSilicon MS2109S"),
    ("345f", "2130", "MacroSilicon MS2130"),
    ("0fd9", "0066", "Elgato Cam Link 4K"),
];

/// V4L2 drivers whose capture nodes are not cameras a call can use directly, and why.
const NOT_CAMERAS: &[(&str, &str)] = &[
    (
        "bcm2835-isp",
        "a node of the Raspberry Pi's image signal processor, not a camera",
    ),
    (
        "pispbe",
        "a node of the Raspberry Pi 5's image signal processor, not a camera",
    ),
    (
        "bcm2835-codec",
        "a node of the Raspberry Pi's video codec, not a camera",
    ),
    (
        "unicam",
        "the Raspberry Pi's CSI-2 receiver: a camera module on it gives raw Bayer data and is \
         captured through libcamera (install gstreamer1.0-libcamera); an HDMI bridge \
         (TC358743) on it needs its EDID and timings set first (docs/boards.md), then \
         media.hdmi_capture naming this node",
    ),
    (
        "rp1-cfe",
        "the Raspberry Pi 5's CSI-2 receiver: a camera module on it is captured through \
         libcamera (install gstreamer1.0-libcamera); an HDMI bridge on it needs media-ctl \
         links, EDID and timings first (docs/boards.md)",
    ),
    (
        "tegra-video",
        "a Jetson CSI port: its cameras are captured through nvarguscamerasrc",
    ),
];

/// A USB vendor:product pair from a device's properties, or from the end of a libcamera
/// camera id (`…-534d:2109`).
fn usb_ids(name: &str, props: Option<&gst::StructureRef>) -> Option<(String, String)> {
    if let Some(p) = props
        && let (Ok(v), Ok(d)) = (
            p.get::<String>("device.vendor.id"),
            p.get::<String>("device.product.id"),
        )
    {
        return Some((v.to_lowercase(), d.to_lowercase()));
    }
    let tail = name.rsplit('-').next()?;
    let (v, d) = tail.split_once(':')?;
    let hex4 = |s: &str| s.len() == 4 && s.chars().all(|c| c.is_ascii_hexdigit());
    (hex4(v) && hex4(d)).then(|| (v.to_lowercase(), d.to_lowercase()))
}

/// The HDMI capture device these USB ids name, if any.
fn hdmi_by_usb(name: &str, props: Option<&gst::StructureRef>) -> Option<String> {
    let (v, d) = usb_ids(name, props)?;
    HDMI_USB_IDS
        .iter()
        .find(|(vendor, product, _)| *vendor == v && *product == d)
        .map(|(_, _, what)| format!("{what} ({v}:{d})"))
}

/// Makers whose conference speakerphones (and headsets) cancel echo in the device, by USB
/// vendor id: the agent's own canceller on top of theirs works against it (speech clipped in
/// double talk). Jabra (GN Audio) Speak, Poly (Plantronics) Sync, Anker PowerConf, EMEET.
const SELF_CANCELLING_VENDORS: &[(&str, &str)] = &[
    ("0b0e", "Jabra"),
    ("047f", "Poly"),
    ("291a", "Anker PowerConf"),
    ("328f", "EMEET"),
];

/// Names that mark a microphone as such a device where no USB ids are reported (ALSA).
const SELF_CANCELLING_NAMES: &[&str] =
    &["jabra", "speakerphone", "powerconf", "poly sync", "emeet"];

/// Whether a microphone is a speakerphone (or headset) that cancels its own echo, and which.
pub fn cancels_own_echo(name: &str, props: Option<&gst::StructureRef>) -> Option<String> {
    if let Some((vendor, _)) = usb_ids(name, props)
        && let Some((_, maker)) = SELF_CANCELLING_VENDORS.iter().find(|(v, _)| *v == vendor)
    {
        return Some(format!("{maker} ({vendor})"));
    }
    let n = name.to_lowercase();
    SELF_CANCELLING_NAMES
        .iter()
        .find(|h| n.contains(*h))
        .map(|h| format!("named {h:?}"))
}

/// What a video capture device is to the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoRole {
    /// A camera for the call.
    Camera,
    /// An HDMI capture input, for sharing.
    Hdmi,
    /// Neither.
    Unused,
}

/// Classifies a video capture device from what its provider says of it: its name, its
/// properties (the v4l2 provider's `v4l2.device.driver`, `device.vendor.id`, …; libcamera's
/// devices have none) and the formats it offers. Returns the role and why.
pub fn classify_video(
    name: &str,
    props: Option<&gst::StructureRef>,
    caps: Option<&gst::CapsRef>,
) -> (VideoRole, String) {
    let driver = props.and_then(|p| p.get::<String>("v4l2.device.driver").ok());
    if let Some(d) = driver.as_deref()
        && let Some((_, why)) = NOT_CAMERAS.iter().find(|(n, _)| *n == d)
    {
        return (VideoRole::Unused, format!("{why} (driver {d})"));
    }
    if let Some(what) = hdmi_by_usb(name, props) {
        return (VideoRole::Hdmi, format!("USB HDMI capture: {what}"));
    }
    if looks_like_hdmi(name) {
        return (VideoRole::Hdmi, "its name says HDMI capture".into());
    }
    if let Some(caps) = caps
        && !caps.is_empty()
        && !caps.is_any()
        && caps.iter().all(|s| s.name().as_str() == "video/x-bayer")
    {
        return (
            VideoRole::Unused,
            "gives raw Bayer data only (a sensor without its ISP: use libcamera)".into(),
        );
    }
    let how = match (driver.as_deref(), props.is_none()) {
        (Some(d), _) => format!("a camera (V4L2, driver {d})"),
        (None, true) => "a camera (libcamera)".to_string(),
        (None, false) => "a camera".to_string(),
    };
    (VideoRole::Camera, how)
}

/// Whether an audio capture device is the sound of an HDMI capture input rather than a
/// microphone, and which.
pub fn hdmi_audio(name: &str, props: Option<&gst::StructureRef>) -> Option<String> {
    if let Some(what) = hdmi_by_usb(name, props) {
        return Some(what);
    }
    let n = name.to_lowercase();
    HDMI_AUDIO_HINTS
        .iter()
        .find(|h| n.contains(*h))
        .map(|h| format!("named {h:?}"))
}

fn path_of(d: &gst::Device) -> Option<String> {
    let props = d.properties()?;
    for key in [
        "device.path",
        "api.v4l2.path",
        "object.path",
        "device.name",
        "alsa.card_name",
    ] {
        if let Ok(v) = props.get::<String>(key) {
            return Some(v);
        }
    }
    None
}

fn info(d: gst::Device, why: String) -> DeviceInfo {
    // libcamera's devices have no properties: their name is the camera id, which is what
    // media.camera names them by.
    let path = path_of(&d).or_else(|| {
        d.properties()
            .is_none()
            .then(|| d.display_name().to_string())
    });
    DeviceInfo {
        name: d.display_name().to_string(),
        path,
        device: Some(d),
        why,
    }
}

/// Whether a capture device looks like an HDMI capture input.
pub fn looks_like_hdmi(name: &str) -> bool {
    let n = name.to_lowercase();
    HDMI_HINTS.iter().any(|h| n.contains(h))
}

/// Probes the machine. `hdmi_path` forces a device to count as the HDMI input.
pub fn probe(hdmi_path: Option<&str>) -> Discovered {
    let mut found = Discovered {
        board: Board::read(),
        encoders: H264_ENCODERS
            .iter()
            .filter(|e| gst::ElementFactory::find(e).is_some())
            .map(|e| e.to_string())
            .collect(),
        ..Discovered::default()
    };
    let Some(sources) = Sources::start(&["Video/Source", "Audio/Source", "Audio/Sink"]) else {
        return found;
    };
    for d in sources.devices() {
        let name = d.display_name().to_string();
        let props = d.properties();
        // Class tokens in any order: libcamera's devices are "Source/Video".
        if d.has_classes("Video/Source") {
            let caps = d.caps();
            let (role, why) = classify_video(&name, props.as_deref(), caps.as_deref());
            let i = info(d, why);
            if hdmi_path.is_some_and(|p| i.path.as_deref() == Some(p)) {
                found.hdmi.push(DeviceInfo {
                    why: "media.hdmi_capture names it".into(),
                    ..i
                });
                continue;
            }
            match role {
                VideoRole::Camera => found.cameras.push(i),
                VideoRole::Hdmi => found.hdmi.push(i),
                VideoRole::Unused => found.unused.push(i),
            }
        } else if d.has_classes("Audio/Source") {
            if name.to_lowercase().starts_with("monitor of") {
                // Monitors of outputs are not microphones.
                continue;
            }
            match hdmi_audio(&name, props.as_deref()) {
                Some(what) => found.unused.push(info(
                    d,
                    format!("the sound of an HDMI capture input ({what}), not a microphone"),
                )),
                None => found.microphones.push(info(d, "a microphone".into())),
            }
        } else if d.has_classes("Audio/Sink") {
            found.speakers.push(info(d, "a speaker".into()));
        }
    }
    sources.stop();
    found
}

/// The handlers [`Sources::follow`] installed; removed on drop.
struct Following(Vec<(gst::Bus, Option<glib::SignalHandlerId>)>);

impl Drop for Following {
    fn drop(&mut self) {
        for (bus, id) in &mut self.0 {
            if let Some(id) = id.take() {
                bus.disconnect(id);
                bus.disable_sync_message_emission();
            }
        }
    }
}

/// Where devices come from: GStreamer's device monitor, or before 1.20 the device providers
/// themselves, each started alone: a 1.18 monitor gives up when any one of its providers cannot
/// start (PulseAudio's, with no sound server for the service's user, takes the cameras down
/// with it); 1.20 and later carry on with those that started.
enum Sources {
    Monitor(gst::DeviceMonitor),
    Providers(Vec<gst::DeviceProvider>, Vec<String>),
}

impl Sources {
    /// Starts following devices of `classes`; `None` when nothing could start.
    fn start(classes: &[&'static str]) -> Option<Sources> {
        if super::version::GstVersion::running().device_monitor_skips_failed_providers() {
            Sources::monitor(classes)
        } else {
            Sources::providers(classes)
        }
    }

    fn monitor(classes: &[&'static str]) -> Option<Sources> {
        let monitor = gst::DeviceMonitor::new();
        for c in classes {
            monitor.add_filter(Some(c), None);
        }
        monitor.start().ok()?;
        Some(Sources::Monitor(monitor))
    }

    fn providers(classes: &[&'static str]) -> Option<Sources> {
        let candidates: Vec<gst::DeviceProvider> =
            gst::DeviceProviderFactory::factories(gst::Rank::NONE)
                .iter()
                .filter(|f| classes.iter().any(|c| f.has_classes(Some(c))))
                .filter_map(|f| f.get())
                .collect();
        // A provider may hide another that sees the same devices (libcamera's hides V4L2's).
        let hidden: Vec<String> = candidates
            .iter()
            .flat_map(|p| p.hidden_providers())
            .map(|h| h.to_string())
            .collect();
        let started: Vec<gst::DeviceProvider> = candidates
            .into_iter()
            .filter(|p| {
                p.factory()
                    .is_none_or(|f| !hidden.iter().any(|h| h == f.name().as_str()))
            })
            .filter(|p| p.start().is_ok())
            .collect();
        if started.is_empty() {
            return None;
        }
        Some(Sources::Providers(
            started,
            classes.iter().map(|c| c.to_string()).collect(),
        ))
    }

    fn devices(&self) -> Vec<gst::Device> {
        match self {
            Sources::Monitor(m) => m.devices().into_iter().collect(),
            Sources::Providers(providers, classes) => providers
                .iter()
                .flat_map(|p| p.devices())
                .filter(|d| classes.iter().any(|c| d.has_classes(c)))
                .collect(),
        }
    }

    /// Where additions and removals are posted.
    fn buses(&self) -> Vec<gst::Bus> {
        match self {
            Sources::Monitor(m) => vec![m.bus()],
            Sources::Providers(providers, _) => providers.iter().map(|p| p.bus()).collect(),
        }
    }

    /// Sends `()` on `tx` for every device added or removed, from the thread that posts it.
    /// Synchronous handlers rather than bus watches: a device provider is shared by everyone
    /// in the process who asks for it, and a bus takes one watch only.
    fn follow(&self, tx: &tokio::sync::mpsc::UnboundedSender<()>) -> Following {
        Following(
            self.buses()
                .into_iter()
                .map(|bus| {
                    bus.enable_sync_message_emission();
                    let tx = tx.clone();
                    let id = bus.connect_sync_message(None, move |_, msg| {
                        if matches!(
                            msg.view(),
                            gst::MessageView::DeviceAdded(_) | gst::MessageView::DeviceRemoved(_)
                        ) {
                            let _ = tx.send(());
                        }
                    });
                    (bus, Some(id))
                })
                .collect(),
        )
    }

    fn stop(&self) {
        match self {
            Sources::Monitor(m) => m.stop(),
            Sources::Providers(providers, _) => providers.iter().for_each(|p| p.stop()),
        }
    }
}

/// Follows devices for the agent's whole life: GStreamer's device monitor, or before 1.20 its
/// device providers one by one (udev for V4L2 cameras and HDMI dongles, the sound server or
/// ALSA for audio), on a thread of its own that runs the GLib main context the providers use. Each addition or removal is one `()` on
/// the channel [`watch`] returns; what is attached then is [`probe`]'s to say. Dropping the watch
/// ends the thread.
pub struct DeviceWatch {
    ctx: glib::MainContext,
    stopped: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Not joined (the engine does not wait for it); a test watches it end.
    #[cfg_attr(not(test), allow(dead_code))]
    thread: std::thread::JoinHandle<()>,
}

impl DeviceWatch {
    /// Ends the watch's thread. (A flag and a wake-up rather than `MainLoop::quit`, which is
    /// lost when it comes before the loop runs.)
    fn stop(&self) {
        self.stopped
            .store(true, std::sync::atomic::Ordering::Release);
        self.ctx.wakeup();
    }
}

impl Drop for DeviceWatch {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts the [`DeviceWatch`] and returns it with the channel of changes; `None` when no device
/// monitor can run here.
pub fn watch() -> Option<(DeviceWatch, tokio::sync::mpsc::UnboundedReceiver<()>)> {
    let (tx, changes) = tokio::sync::mpsc::unbounded_channel();
    let (started_tx, started_rx) = std::sync::mpsc::channel::<Option<glib::MainContext>>();
    let stopped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = stopped.clone();
    let thread = std::thread::Builder::new()
        .name("device-monitor".into())
        .spawn(move || {
            let ctx = glib::MainContext::new();
            let ran = ctx.with_thread_default(|| {
                let Some(sources) = Sources::start(&["Video/Source", "Audio/Source"]) else {
                    let _ = started_tx.send(None);
                    return;
                };
                let following = sources.follow(&tx);
                let _ = started_tx.send(Some(ctx.clone()));
                // The providers' own sources (udev's, the sound server's) run on this context.
                while !stop.load(std::sync::atomic::Ordering::Acquire) {
                    ctx.iteration(true);
                }
                drop(following);
                sources.stop();
            });
            if ran.is_err() {
                let _ = started_tx.send(None);
            }
        })
        .ok()?;
    let ctx = started_rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .ok()??;
    Some((
        DeviceWatch {
            ctx,
            stopped,
            thread,
        },
        changes,
    ))
}

/// Profile selection's view of the machine, with configured devices counting as present.
pub struct Machine<'a> {
    /// What was found.
    pub found: &'a Discovered,
    /// A camera named in the configuration.
    pub configured_camera: bool,
    /// A microphone named in the configuration.
    pub configured_microphone: bool,
}

impl Capabilities for Machine<'_> {
    fn has_element(&self, name: &str) -> bool {
        gst::ElementFactory::find(name).is_some()
    }

    fn has_device(&self, kind: DeviceKind) -> bool {
        match kind {
            DeviceKind::Camera => self.configured_camera || !self.found.cameras.is_empty(),
            DeviceKind::Microphone => {
                self.configured_microphone || !self.found.microphones.is_empty()
            }
        }
    }

    fn model(&self) -> Option<String> {
        self.found.board.model.clone()
    }

    fn compatible(&self) -> Vec<String> {
        self.found.board.compatible.clone()
    }

    fn has_device_node(&self, path: &str) -> bool {
        self.found.board.has_node(path)
    }
}

/// The `roomagent devices` report.
pub fn report(
    found: &Discovered,
    profiles: &[Profile],
    machine: &Machine<'_>,
    chosen: &Result<&Profile, String>,
) -> String {
    let mut s = String::new();
    let list = |s: &mut String, title: &str, items: &[DeviceInfo]| {
        let _ = writeln!(s, "{title}:");
        if items.is_empty() {
            let _ = writeln!(s, "  (none)");
        }
        for d in items {
            let _ = writeln!(
                s,
                "  {}{}",
                d.name,
                d.path
                    .as_ref()
                    .filter(|p| **p != d.name)
                    .map(|p| format!("  [{p}]"))
                    .unwrap_or_default()
            );
            let _ = writeln!(s, "      {}", d.why);
        }
    };
    list(&mut s, "Cameras", &found.cameras);
    list(&mut s, "HDMI capture inputs", &found.hdmi);
    list(&mut s, "Microphones", &found.microphones);
    list(&mut s, "Speakers", &found.speakers);
    if !found.unused.is_empty() {
        list(&mut s, "Not used", &found.unused);
    }
    let _ = writeln!(
        s,
        "Board: {}{}",
        found
            .board
            .model
            .as_deref()
            .unwrap_or("(no device tree model)"),
        if found.board.compatible.is_empty() {
            String::new()
        } else {
            format!(" (compatible: {})", found.board.compatible.join(", "))
        }
    );
    let _ = writeln!(
        s,
        "H.264 encoders: {}",
        if found.encoders.is_empty() {
            "(none)".to_string()
        } else {
            found.encoders.join(", ")
        }
    );
    let _ = writeln!(s, "Profiles (best first):");
    for p in profiles {
        let why = profile::misfits(p, machine);
        let verdict = if why.is_empty() {
            "fits".to_string()
        } else {
            why.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            s,
            "  {:<10} {:<4} {}  ({verdict})",
            p.name, p.priority, p.description
        );
    }
    match chosen {
        Ok(p) => {
            let _ = writeln!(s, "Chosen profile: {}", p.name);
        }
        Err(e) => {
            let _ = writeln!(s, "No profile: {e}");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The watch starts where GStreamer runs, and its thread ends when it is stopped.
    #[test]
    fn the_device_watch_starts_and_stops() {
        gst::init().unwrap();
        let (watch, _changes) = watch().expect("a device monitor runs here");
        assert!(!watch.thread.is_finished());
        watch.stop();
        let t = std::time::Instant::now();
        while !watch.thread.is_finished() {
            assert!(
                // Generous: the unit tests also run under qemu.
                t.elapsed() < std::time::Duration::from_secs(30),
                "the watch thread did not end"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// The providers started one by one (what a GStreamer before 1.20 gets) find devices of
    /// the classes asked for only, and start where any of them can: here PulseAudio's has no
    /// server, which stops a 1.18 device monitor as a whole.
    #[test]
    fn providers_started_one_by_one_carry_on_without_those_that_fail() {
        gst::init().unwrap();
        let sources = Sources::providers(&["Video/Source", "Audio/Source"])
            .expect("some device provider starts here");
        let Sources::Providers(started, _) = &sources else {
            unreachable!()
        };
        assert!(!started.is_empty());
        assert_eq!(sources.buses().len(), started.len());
        for d in sources.devices() {
            assert!(
                d.has_classes("Video/Source") || d.has_classes("Audio/Source"),
                "{} is {}",
                d.display_name(),
                d.device_class()
            );
        }
        sources.stop();
    }

    fn props(s: &str) -> gst::Structure {
        s.parse().expect("fixture properties")
    }

    /// Capture devices as GStreamer's v4l2 and libcamera providers describe them on the
    /// boards (names, drivers and ids from public logs: docs/boards.md), each classified.
    #[test]
    fn video_devices_are_classified_from_what_their_provider_says() {
        gst::init().unwrap();
        let raw: gst::Caps = "video/x-raw, format=YUY2, width=1280, height=720"
            .parse()
            .unwrap();
        let bayer: gst::Caps = "video/x-bayer, format=rggb, width=3280, height=2464"
            .parse()
            .unwrap();
        let cases: &[(&str, Option<&str>, &gst::Caps, VideoRole, &str)] = &[
            // An MS2109 HDMI dongle: nothing in its name says HDMI.
            (
                "UVC Camera (534d:2109): USB Vid",
                Some(
                    "v4l2deviceprovider, device.path=/dev/video0, v4l2.device.driver=uvcvideo, \
                      v4l2.device.card=\"UVC Camera (534d:2109): USB Vid\", device.bus=usb, \
                      device.vendor.id=(string)534d, device.product.id=(string)2109",
                ),
                &raw,
                VideoRole::Hdmi,
                "MacroSilicon MS2109 (534d:2109)",
            ),
            (
                "USB3 Video",
                Some(
                    "v4l2deviceprovider, device.path=/dev/video0, v4l2.device.driver=uvcvideo, \
                      device.vendor.id=(string)345f, device.product.id=(string)2130",
                ),
                &raw,
                VideoRole::Hdmi,
                "MS2130",
            ),
            // A webcam.
            (
                "HD Pro Webcam C920",
                Some(
                    "v4l2deviceprovider, device.path=/dev/video0, v4l2.device.driver=uvcvideo, \
                      device.vendor.id=(string)046d, device.product.id=(string)082d",
                ),
                &raw,
                VideoRole::Camera,
                "driver uvcvideo",
            ),
            // Raspberry Pi 4 without libcamera's plugin: the CSI receiver and the ISP nodes.
            (
                "unicam",
                Some(
                    "v4l2deviceprovider, device.path=/dev/video0, v4l2.device.driver=unicam, \
                      v4l2.device.card=unicam, v4l2.device.bus_info=platform:fe801000.csi",
                ),
                &raw,
                VideoRole::Unused,
                "libcamera",
            ),
            (
                "bcm2835-isp",
                Some(
                    "v4l2deviceprovider, device.path=/dev/video14, v4l2.device.driver=bcm2835-isp, \
                      v4l2.device.card=bcm2835-isp",
                ),
                &raw,
                VideoRole::Unused,
                "image signal processor",
            ),
            (
                "pispbe",
                Some("v4l2deviceprovider, device.path=/dev/video20, v4l2.device.driver=pispbe"),
                &raw,
                VideoRole::Unused,
                "Raspberry Pi 5",
            ),
            // A sensor whose node gives Bayer only.
            (
                "mystery sensor",
                Some("v4l2deviceprovider, device.path=/dev/video3, v4l2.device.driver=something"),
                &bayer,
                VideoRole::Unused,
                "Bayer",
            ),
            // Through libcamera: no properties; the name is the camera id.
            (
                "/base/soc/i2c0mux/i2c@1/imx708@1a",
                None,
                &raw,
                VideoRole::Camera,
                "libcamera",
            ),
            (
                "/base/scb/pcie@7d500000/pci@0,0/usb@0,0-1:1.0-534d:2109",
                None,
                &raw,
                VideoRole::Hdmi,
                "MS2109",
            ),
        ];
        for (name, p, caps, role, why) in cases {
            let p = p.map(props);
            let (got, reason) = classify_video(name, p.as_deref(), Some(caps));
            assert_eq!(got, *role, "{name}: {reason}");
            assert!(
                reason.contains(why),
                "{name}: {reason:?} should say {why:?}"
            );
        }
    }

    /// An HDMI dongle's sound card is its input's sound, not the room's microphone.
    #[test]
    fn an_hdmi_dongles_sound_is_not_a_microphone() {
        gst::init().unwrap();
        let ms2109 = props(
            "pulse-proplist, device.vendor.id=(string)534d, device.product.id=(string)2109, \
             alsa.card_name=MS2109",
        );
        assert!(hdmi_audio("MS2109 Analog Stereo", Some(&ms2109)).is_some());
        assert!(hdmi_audio("MS2109", None).is_some());
        let jabra =
            props("pulse-proplist, device.vendor.id=(string)0b0e, device.product.id=(string)0412");
        assert_eq!(hdmi_audio("Jabra SPEAK 410 USB Mono", Some(&jabra)), None);
    }

    /// A conference speakerphone cancels its own echo; a webcam's microphone does not.
    #[test]
    fn speakerphones_that_cancel_their_own_echo_are_known() {
        gst::init().unwrap();
        let jabra =
            props("pulse-proplist, device.vendor.id=(string)0b0e, device.product.id=(string)0412");
        assert_eq!(
            cancels_own_echo("Jabra SPEAK 410 USB Mono", Some(&jabra)).as_deref(),
            Some("Jabra (0b0e)")
        );
        assert!(cancels_own_echo("Poly Sync 20", None).is_some());
        assert!(cancels_own_echo("Anker PowerConf S3", None).is_some());
        let c920 =
            props("pulse-proplist, device.vendor.id=(string)046d, device.product.id=(string)082d");
        assert_eq!(
            cancels_own_echo("HD Pro Webcam C920 Analog Stereo", Some(&c920)),
            None
        );
        assert_eq!(cancels_own_echo("Built-in Audio Analog Stereo", None), None);
    }

    #[test]
    fn capture_sticks_are_recognised_as_hdmi_inputs() {
        assert!(looks_like_hdmi("USB3.0 Capture: USB3.0 Capture"));
        assert!(looks_like_hdmi("Cam Link 4K"));
        assert!(looks_like_hdmi("HDMI to USB"));
        assert!(!looks_like_hdmi("HD Pro Webcam C920"));
    }
}
