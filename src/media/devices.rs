//! What is attached: cameras, HDMI capture inputs, microphones and speakers, found with
//! GstDeviceMonitor, plus the board model and the H.264 encoders GStreamer offers.

use std::fmt::Write as _;

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;

use super::profile::{self, Capabilities, DeviceKind, Profile};

/// One device.
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    /// Display name.
    pub name: String,
    /// Device path or id, when the provider reports one (`/dev/video0`, a PulseAudio name…).
    pub path: Option<String>,
    /// The provider's device, which can create a ready-configured source or sink.
    pub device: Option<gst::Device>,
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
    /// `/proc/device-tree/model`.
    pub model: Option<String>,
    /// H.264 encoders present, best first.
    pub encoders: Vec<String>,
}

/// H.264 encoders the profiles know, hardware first.
const H264_ENCODERS: &[&str] = &[
    "v4l2h264enc",
    "nvv4l2h264enc",
    "vah264enc",
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
    "macrosilicon",
    "elgato",
    "usb3 video",
];

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

fn info(d: gst::Device) -> DeviceInfo {
    DeviceInfo {
        name: d.display_name().to_string(),
        path: path_of(&d),
        device: Some(d),
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
        // /sys first: under systemd's ProcSubset=pid, /proc/device-tree is hidden.
        model: std::fs::read_to_string("/sys/firmware/devicetree/base/model")
            .or_else(|_| std::fs::read_to_string("/proc/device-tree/model"))
            .ok()
            .map(|m| m.trim_end_matches('\0').trim().to_string())
            .filter(|m| !m.is_empty()),
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
        let class = d.device_class().to_string();
        let i = info(d);
        if class.contains("Video/Source") {
            let forced = hdmi_path.is_some_and(|p| i.path.as_deref() == Some(p));
            if forced || looks_like_hdmi(&i.name) {
                found.hdmi.push(i);
            } else {
                found.cameras.push(i);
            }
        } else if class.contains("Audio/Source") {
            // Monitors of outputs are not microphones.
            if !i.name.to_lowercase().starts_with("monitor of") {
                found.microphones.push(i);
            }
        } else if class.contains("Audio/Sink") {
            found.speakers.push(i);
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
        self.found.model.clone()
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
                    .map(|p| format!("  [{p}]"))
                    .unwrap_or_default()
            );
        }
    };
    list(&mut s, "Cameras", &found.cameras);
    list(&mut s, "HDMI capture inputs", &found.hdmi);
    list(&mut s, "Microphones", &found.microphones);
    list(&mut s, "Speakers", &found.speakers);
    let _ = writeln!(
        s,
        "Board model: {}",
        found.model.as_deref().unwrap_or("(unknown)")
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

    #[test]
    fn capture_sticks_are_recognised_as_hdmi_inputs() {
        assert!(looks_like_hdmi("USB3.0 Capture: USB3.0 Capture"));
        assert!(looks_like_hdmi("Cam Link 4K"));
        assert!(looks_like_hdmi("HDMI to USB"));
        assert!(!looks_like_hdmi("HD Pro Webcam C920"));
    }
}
