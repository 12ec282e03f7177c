//! Board profiles: which elements capture, convert and encode on a given board. Profiles are
//! data (`pipelines/*.toml`, built in, plus any in `media.profiles_dir`), so adding a board is
//! adding a file. This module parses and checks them and picks one; it builds nothing.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

/// The profiles shipped in the binary (the `pipelines/` directory of the source tree).
const BUILT_IN: &[(&str, &str)] = &[
    (
        "pipelines/test.toml",
        include_str!("../../pipelines/test.toml"),
    ),
    (
        "pipelines/software.toml",
        include_str!("../../pipelines/software.toml"),
    ),
    (
        "pipelines/rpi4.toml",
        include_str!("../../pipelines/rpi4.toml"),
    ),
    (
        "pipelines/rpi5.toml",
        include_str!("../../pipelines/rpi5.toml"),
    ),
    (
        "pipelines/jetson.toml",
        include_str!("../../pipelines/jetson.toml"),
    ),
    (
        "pipelines/vaapi.toml",
        include_str!("../../pipelines/vaapi.toml"),
    ),
    (
        "pipelines/vaapi-lp.toml",
        include_str!("../../pipelines/vaapi-lp.toml"),
    ),
];

/// What a profile needs present before it can be chosen.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requires {
    /// Element factories that must exist.
    #[serde(default)]
    pub elements: Vec<String>,
    /// Devices that must be attached.
    #[serde(default)]
    pub devices: Vec<DeviceKind>,
    /// A substring of `/proc/device-tree/model` (e.g. `Raspberry Pi 4`).
    #[serde(default)]
    pub model: Option<String>,
    /// Any one of these in the device tree's `compatible` list: the SoC (`brcm,bcm2711` is
    /// every Pi 4, Pi 400 and Compute Module 4, whose model strings differ) or the board.
    #[serde(default)]
    pub compatible: Vec<String>,
    /// Device nodes that must exist (`/dev/v4l2-nvenc`: an Orin Nano has none).
    #[serde(default)]
    pub device_nodes: Vec<String>,
}

/// Kinds of devices a profile can require.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    /// A video capture device that is not an HDMI capture input.
    Camera,
    /// An audio capture device.
    Microphone,
}

/// One element of a chain, with typed properties checked against the element at build time.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// Element factory name.
    pub element: String,
    /// Properties, by GStreamer property name.
    #[serde(default)]
    pub properties: BTreeMap<String, toml::Value>,
    /// For sources: the property that receives the device path (e.g. `device`).
    #[serde(default)]
    pub device_property: Option<String>,
    /// For encoders: the property that sets the target bitrate, or `property.field` for a
    /// field of a structure property (`extra-controls.video_bitrate` for V4L2 encoders).
    #[serde(default)]
    pub bitrate_property: Option<String>,
    /// Unit of `bitrate_property`.
    #[serde(default)]
    pub bitrate_unit: BitrateUnit,
}

/// Unit an encoder's bitrate property takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BitrateUnit {
    /// kbit/s (x264enc, vah264enc).
    #[default]
    Kbit,
    /// bit/s (nvv4l2h264enc).
    Bit,
}

/// Caps forced after the encoder.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderCaps {
    /// A caps string, e.g. `video/x-h264,profile=constrained-baseline`.
    pub caps: String,
    /// Adds the lowest H.264 level that carries the call's size and rate: encoders that take
    /// their level from the caps and refuse to start when it is too low for the size (the
    /// Pi's bcm2835-codec) need it.
    #[serde(default)]
    pub level_for_size: bool,
}

/// A board profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Unique name (`test`, `software`, `rpi4`, …).
    pub name: String,
    /// One line for `roomagent devices`.
    pub description: String,
    /// Higher wins when several profiles fit.
    #[serde(default)]
    pub priority: i32,
    /// Preconditions.
    #[serde(default)]
    pub requires: Requires,
    /// The camera source element (a discovered device's own element is used when there is
    /// one); absent: no camera in this profile.
    #[serde(default)]
    pub video_source: Option<Stage>,
    /// The microphone source (absent: the discovered microphone, or silence).
    #[serde(default)]
    pub audio_source: Option<Stage>,
    /// Converters between the source and the encoder (default: `videoconvert`).
    #[serde(default)]
    pub video_convert: Vec<Stage>,
    /// The encoder chain.
    pub video_encoder: Vec<Stage>,
    /// Caps after the encoder (default: constrained-baseline H.264, which browsers require).
    #[serde(default)]
    pub video_encoder_caps: Option<EncoderCaps>,
    /// The H.264 decoder for remote video (a board's hardware decoder); used when it exists,
    /// else OpenH264, else FFmpeg's.
    #[serde(default)]
    pub video_decoder: Option<Stage>,
    /// An element the decoder needs after it (Jetson's `nvvidconv`, out of NVMM memory into
    /// the system memory the display's compositor takes); used with `video_decoder` only.
    #[serde(default)]
    pub video_decoder_output: Option<Stage>,
    /// The encoder should change size only when nothing else helps: adaptation follows the
    /// network with the bitrate alone, and steps size and rate down only once the bitrate is
    /// at its floor (a hardware encoder that reallocates its buffers on every size change).
    #[serde(default)]
    pub keep_size: bool,
    /// The Opus encoder's own settings (`opusenc` with these properties; the call sets its
    /// bitrate, voice mode and 20 ms frames), e.g. a lower `complexity` on small ARM cores.
    #[serde(default)]
    pub audio_encoder: Option<Stage>,
    /// Where the profile came from, for messages.
    #[serde(skip)]
    pub origin: String,
}

/// Browsers reject High-profile H.264 offers; every profile's output is constrained here.
pub const DEFAULT_ENCODER_CAPS: &str = "video/x-h264,profile=(string)constrained-baseline";

impl Profile {
    /// The caps forced after the encoder.
    pub fn encoder_caps(&self) -> &str {
        self.video_encoder_caps
            .as_ref()
            .map_or(DEFAULT_ENCODER_CAPS, |c| c.caps.as_str())
    }

    /// The caps forced after the encoder for a call of `width`×`height` at `fps`: with
    /// `level_for_size`, the lowest level that carries it (none does: the highest, and the
    /// encoder check says whether the encoder takes it).
    pub fn encoder_caps_for(&self, width: u32, height: u32, fps: u32) -> String {
        let caps = self.encoder_caps().to_string();
        if !self
            .video_encoder_caps
            .as_ref()
            .is_some_and(|c| c.level_for_size)
        {
            return caps;
        };
        let level = super::h264_levels::lowest_for(width, height, fps).unwrap_or("5.2");
        format!("{caps},level=(string){level}")
    }

    /// Every element factory the profile uses.
    pub fn elements(&self) -> impl Iterator<Item = &str> {
        self.requires
            .elements
            .iter()
            .map(String::as_str)
            .chain(self.video_source.iter().map(|s| s.element.as_str()))
            .chain(self.audio_source.iter().map(|s| s.element.as_str()))
            .chain(self.video_convert.iter().map(|s| s.element.as_str()))
            .chain(self.video_encoder.iter().map(|s| s.element.as_str()))
            .chain(self.audio_encoder.iter().map(|s| s.element.as_str()))
    }
}

/// A problem with a profile file.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// Not readable.
    #[error("cannot read profile {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not a valid profile.
    #[error("profile {path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Two profiles with one name.
    #[error("profile name {name:?} is used by both {first} and {second}")]
    Duplicate {
        /// The name.
        name: String,
        /// One file.
        first: String,
        /// The other.
        second: String,
    },
}

/// Parses one profile.
pub fn parse(origin: &str, text: &str) -> Result<Profile, ProfileError> {
    let mut p: Profile = toml::from_str(text).map_err(|e| ProfileError::Invalid {
        path: origin.into(),
        message: e.to_string(),
    })?;
    p.origin = origin.into();
    if p.name.is_empty() {
        return Err(ProfileError::Invalid {
            path: origin.into(),
            message: "name must not be empty".into(),
        });
    }
    if p.video_encoder.is_empty() {
        return Err(ProfileError::Invalid {
            path: origin.into(),
            message: "video_encoder needs at least one element".into(),
        });
    }
    if let Some(a) = p.audio_encoder.as_ref().filter(|a| a.element != "opusenc") {
        return Err(ProfileError::Invalid {
            path: origin.into(),
            message: format!(
                "audio_encoder must be opusenc (calls send Opus), not {:?}",
                a.element
            ),
        });
    }
    Ok(p)
}

/// The built-in profiles plus those in `dir` (a profile in `dir` replaces a built-in one of
/// the same name).
pub fn load_all(dir: Option<&Path>) -> Result<Vec<Profile>, ProfileError> {
    let mut by_name: BTreeMap<String, Profile> = BTreeMap::new();
    for (origin, text) in BUILT_IN {
        let p = parse(origin, text)?;
        by_name.insert(p.name.clone(), p);
    }
    if let Some(dir) = dir {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|source| ProfileError::Read {
                path: dir.display().to_string(),
                source,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        let mut from_dir: BTreeMap<String, String> = BTreeMap::new();
        for f in files {
            let origin = f.display().to_string();
            let text = std::fs::read_to_string(&f).map_err(|source| ProfileError::Read {
                path: origin.clone(),
                source,
            })?;
            let p = parse(&origin, &text)?;
            if let Some(first) = from_dir.insert(p.name.clone(), origin.clone()) {
                return Err(ProfileError::Duplicate {
                    name: p.name,
                    first,
                    second: origin,
                });
            }
            by_name.insert(p.name.clone(), p);
        }
    }
    let mut all: Vec<Profile> = by_name.into_values().collect();
    all.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.name.cmp(&b.name)));
    Ok(all)
}

/// What the machine offers, as far as profile selection is concerned.
pub trait Capabilities {
    /// Whether an element factory exists.
    fn has_element(&self, name: &str) -> bool;
    /// Whether a device of this kind is attached (or configured).
    fn has_device(&self, kind: DeviceKind) -> bool;
    /// `/proc/device-tree/model`, if any.
    fn model(&self) -> Option<String>;
    /// The device tree's `compatible` list (empty where there is none).
    fn compatible(&self) -> Vec<String>;
    /// Whether a device node exists.
    fn has_device_node(&self, path: &str) -> bool;
}

/// Why a profile does not fit this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Misfit {
    /// A missing element factory.
    MissingElement(String),
    /// A missing device.
    MissingDevice(DeviceKind),
    /// The board model does not match.
    OtherModel(String),
    /// None of the compatible strings is the board's.
    OtherBoard(Vec<String>),
    /// A device node is missing.
    MissingDeviceNode(String),
}

impl fmt::Display for Misfit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Misfit::MissingElement(e) => write!(f, "no element {e}"),
            Misfit::MissingDevice(DeviceKind::Camera) => f.write_str("no camera"),
            Misfit::MissingDevice(DeviceKind::Microphone) => f.write_str("no microphone"),
            Misfit::OtherModel(m) => write!(f, "not a {m}"),
            Misfit::OtherBoard(c) => write!(f, "the board is none of {}", c.join(", ")),
            Misfit::MissingDeviceNode(n) => write!(f, "no {n}"),
        }
    }
}

/// Everything that keeps `p` from running here; empty when it fits.
pub fn misfits(p: &Profile, caps: &dyn Capabilities) -> Vec<Misfit> {
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for e in p.elements() {
        if seen.insert(e) && !caps.has_element(e) {
            out.push(Misfit::MissingElement(e.into()));
        }
    }
    for d in &p.requires.devices {
        if !caps.has_device(*d) {
            out.push(Misfit::MissingDevice(*d));
        }
    }
    if let Some(model) = &p.requires.model
        && !caps.model().is_some_and(|m| m.contains(model.as_str()))
    {
        out.push(Misfit::OtherModel(model.clone()));
    }
    let compatible = &p.requires.compatible;
    if !compatible.is_empty() {
        let board = caps.compatible();
        if !compatible.iter().any(|c| board.contains(c)) {
            out.push(Misfit::OtherBoard(compatible.clone()));
        }
    }
    for n in &p.requires.device_nodes {
        if !caps.has_device_node(n) {
            out.push(Misfit::MissingDeviceNode(n.clone()));
        }
    }
    out
}

/// Picks `wanted` if named (and it fits), else the highest-priority profile that fits.
pub fn choose<'a>(
    profiles: &'a [Profile],
    wanted: Option<&str>,
    caps: &dyn Capabilities,
) -> Result<&'a Profile, String> {
    if let Some(name) = wanted {
        let p = profiles.iter().find(|p| p.name == name).ok_or_else(|| {
            let names: Vec<_> = profiles.iter().map(|p| p.name.as_str()).collect();
            format!(
                "media.profile {name:?} does not exist (known: {})",
                names.join(", ")
            )
        })?;
        let why = misfits(p, caps);
        if !why.is_empty() {
            let why: Vec<String> = why.iter().map(ToString::to_string).collect();
            return Err(format!(
                "media.profile {name:?} cannot run here: {}",
                why.join(", ")
            ));
        }
        return Ok(p);
    }
    profiles
        .iter()
        .find(|p| misfits(p, caps).is_empty())
        .ok_or_else(|| {
            "no profile fits this machine (not even \"test\": is GStreamer complete?)".into()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake {
        elements: Vec<&'static str>,
        camera: bool,
        model: Option<&'static str>,
        compatible: Vec<&'static str>,
        nodes: Vec<&'static str>,
    }

    impl Capabilities for Fake {
        fn has_element(&self, name: &str) -> bool {
            self.elements.contains(&name)
        }
        fn has_device(&self, kind: DeviceKind) -> bool {
            kind == DeviceKind::Camera && self.camera
        }
        fn model(&self) -> Option<String> {
            self.model.map(str::to_string)
        }
        fn compatible(&self) -> Vec<String> {
            self.compatible.iter().map(|c| c.to_string()).collect()
        }
        fn has_device_node(&self, path: &str) -> bool {
            self.nodes.contains(&path)
        }
    }

    const COMMON: &[&str] = &[
        "videotestsrc",
        "audiotestsrc",
        "x264enc",
        "opusenc",
        "v4l2src",
    ];

    fn fake(extra: &[&'static str], camera: bool, model: Option<&'static str>) -> Fake {
        Fake {
            elements: COMMON.iter().chain(extra).copied().collect(),
            camera,
            model,
            compatible: Vec::new(),
            nodes: Vec::new(),
        }
    }

    #[test]
    fn every_built_in_profile_parses_and_names_are_unique() {
        let all = load_all(None).unwrap();
        let names: Vec<_> = all.iter().map(|p| p.name.as_str()).collect();
        for n in ["test", "software", "rpi4", "rpi5", "jetson", "vaapi"] {
            assert!(names.contains(&n), "{n} missing from {names:?}");
        }
    }

    #[test]
    fn no_camera_means_test_sources() {
        let all = load_all(None).unwrap();
        assert_eq!(
            choose(&all, None, &fake(&[], false, None)).unwrap().name,
            "test"
        );
    }

    #[test]
    fn a_camera_on_a_plain_box_uses_software_encoding() {
        let all = load_all(None).unwrap();
        assert_eq!(
            choose(&all, None, &fake(&[], true, None)).unwrap().name,
            "software"
        );
    }

    fn board(mut f: Fake, compatible: &[&'static str], nodes: &[&'static str]) -> Fake {
        f.compatible = compatible.to_vec();
        f.nodes = nodes.to_vec();
        f
    }

    #[test]
    fn hardware_encoders_win_when_present() {
        let all = load_all(None).unwrap();
        let pi4 = board(
            fake(
                &["v4l2convert", "v4l2h264enc"],
                true,
                Some("Raspberry Pi 4 Model B Rev 1.5"),
            ),
            &["raspberrypi,4-model-b", "brcm,bcm2711"],
            &[],
        );
        assert_eq!(choose(&all, None, &pi4).unwrap().name, "rpi4");
        let pi5 = board(
            fake(&[], true, Some("Raspberry Pi 5 Model B Rev 1.0")),
            &["raspberrypi,5-model-b", "brcm,bcm2712"],
            &[],
        );
        assert_eq!(choose(&all, None, &pi5).unwrap().name, "rpi5");
        let orin = board(
            fake(&["nvvidconv", "nvv4l2h264enc", "capsfilter"], true, None),
            &[
                "nvidia,p3768-0000+p3767-0000",
                "nvidia,p3767-0000",
                "nvidia,tegra234",
            ],
            &["/dev/v4l2-nvenc"],
        );
        assert_eq!(choose(&all, None, &orin).unwrap().name, "jetson");
        let intel = fake(&["vah264enc"], true, None);
        assert_eq!(choose(&all, None, &intel).unwrap().name, "vaapi");
        let low_power = fake(&["vah264lpenc"], true, None);
        assert_eq!(choose(&all, None, &low_power).unwrap().name, "vaapi-lp");
    }

    /// A Compute Module 4's model string has no "Raspberry Pi 4" in it; its SoC is the Pi 4's.
    /// (Model and compatible strings as the boards' device trees give them.)
    #[test]
    fn every_pi_4_and_pi_5_family_board_is_known_by_its_soc() {
        let all = load_all(None).unwrap();
        for (model, compatible, want) in [
            (
                "Raspberry Pi Compute Module 4 Rev 1.0",
                &["raspberrypi,4-compute-module", "brcm,bcm2711"][..],
                "rpi4",
            ),
            (
                "Raspberry Pi 400 Rev 1.0",
                &["raspberrypi,400", "brcm,bcm2711"][..],
                "rpi4",
            ),
            (
                "Raspberry Pi Compute Module 5 Rev 1.0",
                &["raspberrypi,5-compute-module", "brcm,bcm2712"][..],
                "rpi5",
            ),
            (
                "Raspberry Pi 500 Rev 1.0",
                &["raspberrypi,500", "brcm,bcm2712"][..],
                "rpi5",
            ),
        ] {
            let m = board(
                fake(&["v4l2convert", "v4l2h264enc"], true, Some(model)),
                compatible,
                &[],
            );
            assert_eq!(choose(&all, None, &m).unwrap().name, want, "{model}");
        }
    }

    /// An Orin Nano has the Orin SoC and NVIDIA's plugins but no NVENC: the jetson profile
    /// does not fit, and says so.
    #[test]
    fn a_jetson_without_nvenc_falls_to_software_encoding() {
        let all = load_all(None).unwrap();
        let nano = board(
            fake(&["nvvidconv", "nvv4l2h264enc", "capsfilter"], true, None),
            &[
                "nvidia,p3768-0000+p3767-0005",
                "nvidia,p3767-0005",
                "nvidia,tegra234",
            ],
            &[],
        );
        assert_eq!(choose(&all, None, &nano).unwrap().name, "software");
        let jetson = all.iter().find(|p| p.name == "jetson").unwrap();
        assert_eq!(
            misfits(jetson, &nano),
            vec![Misfit::MissingDeviceNode("/dev/v4l2-nvenc".into())]
        );
        assert_eq!(misfits(jetson, &nano)[0].to_string(), "no /dev/v4l2-nvenc");
    }

    #[test]
    fn the_level_in_the_caps_follows_the_call_size_where_a_profile_asks() {
        let all = load_all(None).unwrap();
        let rpi4 = all.iter().find(|p| p.name == "rpi4").unwrap();
        for ((w, h, fps), level) in [
            ((1920, 1080, 30), "4"),
            ((1280, 720, 30), "3.1"),
            ((1280, 720, 60), "3.2"),
            ((640, 360, 30), "3"),
            ((320, 180, 15), "1.2"),
            ((1920, 1200, 30), "5"),
        ] {
            assert_eq!(
                rpi4.encoder_caps_for(w, h, fps),
                format!("video/x-h264,profile=(string)constrained-baseline,level=(string){level}"),
                "{w}x{h}@{fps}"
            );
        }
        let software = all.iter().find(|p| p.name == "software").unwrap();
        assert_eq!(
            software.encoder_caps_for(1920, 1080, 30),
            DEFAULT_ENCODER_CAPS
        );
    }

    #[test]
    fn a_named_profile_that_cannot_run_says_why() {
        let all = load_all(None).unwrap();
        let err = choose(&all, Some("rpi4"), &fake(&[], false, None)).unwrap_err();
        assert!(
            err.contains("no element v4l2h264enc") && err.contains("no camera"),
            "{err}"
        );
        let err = choose(&all, Some("nope"), &fake(&[], false, None)).unwrap_err();
        assert!(err.contains("does not exist"), "{err}");
    }

    #[test]
    fn bad_profiles_are_refused_with_their_file() {
        let err = parse(
            "x.toml",
            "name = \"x\"\ndescription = \"\"\nvideo_encoder = []\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("x.toml"), "{err}");
        let err = parse(
            "y.toml",
            "name = \"y\"\ndescription = \"\"\ncolour = 1\n[[video_encoder]]\nelement = \"x\"\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
        let err = parse(
            "z.toml",
            "name = \"z\"\ndescription = \"\"\n[[video_encoder]]\nelement = \"x\"\n[audio_encoder]\nelement = \"lamemp3enc\"\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("must be opusenc"), "{err}");
    }

    /// The ARM boards' Opus encoder runs at complexity 5, and it reaches the element.
    #[test]
    fn arm_profiles_set_the_opus_complexity() {
        gstreamer::init().unwrap();
        for p in load_all(None).unwrap() {
            let want = match p.name.as_str() {
                "rpi4" | "rpi5" | "jetson" => Some(5),
                _ => None,
            };
            let stage = p.audio_encoder.as_ref();
            assert_eq!(
                stage.and_then(|s| s.properties.get("complexity")?.as_integer()),
                want,
                "{}",
                p.name
            );
            if let Some(s) = stage {
                use gstreamer::prelude::*;
                let e = crate::media::pipeline::make_stage(s).unwrap();
                assert_eq!(e.property::<i32>("complexity"), 5);
            }
        }
    }
}
