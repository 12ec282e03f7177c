//! What the engine settles before any call: the devices attached, the board profile whose
//! encoder really encodes here, the elements every call needs and the DTLS certificate.
//! [`super::start`] does it once; `roomagent devices` ([`devices_report`]) makes the same
//! survey and choice and prints them.

use std::fmt::Write as _;

use gstreamer as gst;
use tracing::{debug, info, warn};

use super::{DeviceChoice, MediaError, MediaOptions, cert, devices, init, pipeline, profile};

/// What the engine chose at start-up.
#[derive(Debug, Clone)]
pub struct EngineInfo {
    /// The board profile.
    pub profile: String,
    /// Its video encoder.
    pub encoder: String,
    /// Devices found (names).
    pub cameras: Vec<String>,
    /// Microphones found.
    pub microphones: Vec<String>,
    /// HDMI capture inputs found.
    pub hdmi: Vec<String>,
    /// Profiles that fitted but whose encoder failed its check, with why.
    pub passed_over: Vec<(String, String)>,
}

/// The devices found and the profiles known, before anything is chosen.
struct Survey {
    found: devices::Discovered,
    profiles: Vec<profile::Profile>,
}

impl Survey {
    /// Probes the devices (a configured HDMI path is looked at even if its name does not say
    /// HDMI) and loads the built-in and extra profiles.
    fn take(opts: &MediaOptions) -> Result<Survey, MediaError> {
        let hdmi_path = match &opts.hdmi {
            DeviceChoice::Path(p) => Some(p.as_str()),
            _ => None,
        };
        let found = devices::probe(hdmi_path);
        let profiles = profile::load_all(opts.profiles_dir.as_deref())
            .map_err(|e| MediaError::Profile(e.to_string()))?;
        Ok(Survey { found, profiles })
    }

    /// The machine as profiles see it: a configured device path counts as present.
    fn machine<'a>(&'a self, opts: &MediaOptions) -> devices::Machine<'a> {
        devices::Machine {
            found: &self.found,
            configured_camera: matches!(opts.camera, DeviceChoice::Path(_)),
            configured_microphone: matches!(opts.microphone, DeviceChoice::Path(_)),
        }
    }
}

/// Elements every call uses besides those the profile names.
const CALL_ELEMENTS: [&str; 6] = [
    "webrtcbin",
    "rtph264pay",
    "rtpopuspay",
    "compositor",
    "audiomixer",
    "decodebin",
];

/// What the engine task starts from.
pub(super) struct Ready {
    /// The profile whose encoder passed its check.
    pub profile: profile::Profile,
    /// The devices found.
    pub found: devices::Discovered,
    /// Our DTLS certificate.
    pub cert: cert::DtlsCertificate,
    /// What was chosen, for the handle.
    pub info: EngineInfo,
}

/// Surveys the machine, chooses a working profile, checks that every element a call needs
/// exists (now rather than in the middle of a call) and makes the certificate.
pub(super) fn prepare(opts: &MediaOptions) -> Result<Ready, MediaError> {
    let survey = Survey::take(opts)?;
    let (chosen, passed_over) = choose_working(opts, &survey.profiles, &survey.machine(opts))?;
    for e in chosen.elements().chain(CALL_ELEMENTS) {
        pipeline::make(e)?;
    }
    let cert = cert::generate()?;
    // dtlsdec makes GStreamer's default RSA certificate on first use (~300 ms); pay for it
    // now rather than in the first call.
    let _ = gst::ElementFactory::make("dtlssrtpdec").build();
    let info = EngineInfo {
        profile: chosen.name.clone(),
        encoder: chosen
            .video_encoder
            .first()
            .map(|s| s.element.clone())
            .unwrap_or_default(),
        cameras: survey
            .found
            .cameras
            .iter()
            .map(|d| d.name.clone())
            .collect(),
        microphones: survey
            .found
            .microphones
            .iter()
            .map(|d| d.name.clone())
            .collect(),
        hdmi: survey.found.hdmi.iter().map(|d| d.name.clone()).collect(),
        passed_over,
    };
    info!(profile = %info.profile, encoder = %info.encoder, cameras = ?info.cameras, "media engine ready");
    Ok(Ready {
        profile: chosen,
        found: survey.found,
        cert,
        info,
    })
}

/// Chooses a profile as [`profile::choose`] does, then checks that its encoder really encodes
/// ([`pipeline::check_encoder`]). When it does not (a hardware encoder whose device is
/// missing or busy, a size it refuses), the next profile that fits is tried, down to the
/// software ones, so the room still sends video. Returns the profile and those passed over.
fn choose_working(
    opts: &MediaOptions,
    profiles: &[profile::Profile],
    machine: &dyn profile::Capabilities,
) -> Result<(profile::Profile, Vec<(String, String)>), MediaError> {
    let mut passed_over: Vec<(String, String)> = Vec::new();
    let mut wanted = opts.profile.as_deref();
    loop {
        let candidates: Vec<profile::Profile> = profiles
            .iter()
            .filter(|p| !passed_over.iter().any(|(name, _)| name == &p.name))
            .cloned()
            .collect();
        let chosen = match profile::choose(&candidates, wanted, machine) {
            Ok(p) => p.clone(),
            Err(e) if passed_over.is_empty() => return Err(MediaError::Profile(e)),
            Err(_) => {
                let why: Vec<String> = passed_over
                    .iter()
                    .map(|(name, why)| format!("{name}: {why}"))
                    .collect();
                return Err(MediaError::Profile(format!(
                    "no profile's encoder works here ({})",
                    why.join("; ")
                )));
            }
        };
        match pipeline::check_encoder(opts, &chosen) {
            Ok(took) => {
                debug!(profile = %chosen.name, took_ms = took.as_millis() as u64, "encoder check passed");
                return Ok((chosen, passed_over));
            }
            Err(why) => {
                warn!(
                    profile = %chosen.name,
                    error = %why,
                    "the profile's encoder does not work here; trying the next profile that fits"
                );
                passed_over.push((chosen.name.clone(), why));
                wanted = None;
            }
        }
    }
}

/// The `roomagent devices` report for a configuration: what is attached, which profiles fit,
/// the one chosen and those whose encoder failed its test encode.
pub fn devices_report(opts: &MediaOptions) -> Result<String, MediaError> {
    init()?;
    let survey = Survey::take(opts)?;
    let machine = survey.machine(opts);
    let (found, profiles) = (&survey.found, &survey.profiles);
    let mut report = match choose_working(opts, profiles, &machine) {
        Ok((chosen, passed_over)) => {
            let mut r = devices::report(found, profiles, &machine, &Ok(&chosen));
            for (name, why) in passed_over {
                let _ = writeln!(
                    r,
                    "Passed over {name}: its encoder failed a test encode: {why}"
                );
            }
            r
        }
        Err(e) => devices::report(found, profiles, &machine, &Err(e.to_string())),
    };
    if !report.ends_with('\n') {
        report.push('\n');
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A profile whose encoder exists but fails once frames flow (see the file).
    const BROKEN: &str = include_str!("../../tests/fixtures/broken-encoder-profile.toml");

    /// A profiles directory holding the broken profile, written once per test process: the
    /// tests run in parallel, and one rewriting the file while another reads it made the
    /// reader see it empty.
    fn profiles_dir() -> &'static std::path::Path {
        static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
        DIR.get_or_init(|| {
            let dir =
                std::env::temp_dir().join(format!("roomagent-profiles-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("broken.toml"), BROKEN).unwrap();
            dir
        })
    }

    fn setup() -> (Vec<profile::Profile>, MediaOptions) {
        init().unwrap();
        let profiles = profile::load_all(Some(profiles_dir())).unwrap();
        let opts = MediaOptions {
            width: 320,
            height: 240,
            ..MediaOptions::default()
        };
        (profiles, opts)
    }

    fn machine(found: &devices::Discovered) -> devices::Machine<'_> {
        devices::Machine {
            found,
            configured_camera: false,
            configured_microphone: false,
        }
    }

    #[test]
    fn a_working_encoder_passes_the_check() {
        let (profiles, opts) = setup();
        let test = profiles.iter().find(|p| p.name == "test").unwrap();
        pipeline::check_encoder(&opts, test).unwrap();
    }

    #[test]
    fn an_encoder_that_fails_at_run_time_is_passed_over_for_the_next_profile() {
        let (profiles, opts) = setup();
        let found = devices::Discovered::default();
        let (chosen, passed_over) = choose_working(&opts, &profiles, &machine(&found)).unwrap();
        assert_eq!(chosen.name, "test");
        assert_eq!(passed_over.len(), 1, "{passed_over:?}");
        assert_eq!(passed_over[0].0, "broken-hw");
        assert!(
            passed_over[0].1.contains("not-negotiated"),
            "{passed_over:?}"
        );
    }

    #[test]
    fn a_named_profile_whose_encoder_fails_still_falls_back() {
        let (profiles, mut opts) = setup();
        opts.profile = Some("broken-hw".into());
        let found = devices::Discovered::default();
        let (chosen, passed_over) = choose_working(&opts, &profiles, &machine(&found)).unwrap();
        assert_eq!(chosen.name, "test");
        assert_eq!(passed_over[0].0, "broken-hw");
    }

    #[test]
    fn when_no_encoder_works_the_error_names_each_failure() {
        let (profiles, opts) = setup();
        let only_broken: Vec<_> = profiles
            .into_iter()
            .filter(|p| p.name == "broken-hw")
            .collect();
        let found = devices::Discovered::default();
        let err = choose_working(&opts, &only_broken, &machine(&found))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no profile's encoder works here"), "{err}");
        assert!(err.contains("broken-hw:"), "{err}");
    }
}
