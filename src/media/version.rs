//! Which GStreamer the agent runs on, and what it may use of it.
//!
//! The code is built against the 1.18 API (gstreamer-rs feature `v1_18`: Debian 11, and older
//! than Ubuntu 22.04's 1.20 under JetPack 6), so it loads on every supported system. What
//! newer releases added, or changed, is decided here at run time from [`gst::version`], in one
//! place, each with the fallback that older releases get (docs/platforms.md lists them).

use std::fmt;

use gstreamer as gst;

/// A GStreamer release, as `gst::version()` reports it (major, minor, micro; nano left out:
/// it only marks git and pre-release builds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct GstVersion(pub u32, pub u32, pub u32);

/// The oldest GStreamer the agent runs on.
pub const FLOOR: GstVersion = GstVersion(1, 18, 0);

impl GstVersion {
    /// The GStreamer this process has loaded (after `gst::init`).
    pub fn running() -> GstVersion {
        let (major, minor, micro, _nano) = gst::version();
        GstVersion(major, minor, micro)
    }

    /// Whether this is at least `major.minor.micro`.
    pub fn at_least(self, major: u32, minor: u32, micro: u32) -> bool {
        self >= GstVersion(major, minor, micro)
    }

    /// Refuses a GStreamer below [`FLOOR`], naming both versions.
    pub fn check_floor(self) -> Result<(), String> {
        if self >= FLOOR {
            return Ok(());
        }
        Err(format!(
            "GStreamer {self} is too old: roomagent needs GStreamer {FLOOR} or newer \
             (Debian 11, Ubuntu 22.04 / JetPack 6, Raspberry Pi OS Bullseye and later; \
             JetPack 5's 1.16 is not supported)"
        ))
    }

    /// `webrtcbin`'s ICE agent has `min-rtp-port`/`max-rtp-port` (1.20): without them
    /// `[media.ice] port_range` cannot be honoured and the agent says so.
    pub fn ice_port_range(self) -> bool {
        self.at_least(1, 20, 0)
    }

    /// A device monitor carries on with the providers that started (1.20); a 1.18 one fails
    /// as a whole when one cannot start, so the providers are then run one by one.
    pub fn device_monitor_skips_failed_providers(self) -> bool {
        self.at_least(1, 20, 0)
    }

    /// webrtcbin ties a session's sink pads to media sections by kind (seen on 1.22); 1.18
    /// ties them by the order they were made, and aborts on a pad left without a section
    /// (1.20 is taken to be like 1.18: not checked).
    pub fn pads_bound_by_kind(self) -> bool {
        self.at_least(1, 22, 0)
    }

    /// A transceiver's `codec-preferences` is a property (1.20); before, webrtcbin offers
    /// what its sink pad's peer accepts.
    pub fn codec_preferences(self) -> bool {
        self.at_least(1, 20, 0)
    }
}

impl fmt::Display for GstVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_below_the_floor_are_refused_by_name() {
        let err = GstVersion(1, 16, 3).check_floor().unwrap_err();
        assert!(err.contains("GStreamer 1.16.3 is too old"), "{err}");
        assert!(err.contains("needs GStreamer 1.18.0 or newer"), "{err}");
        assert!(GstVersion(1, 14, 5).check_floor().is_err());
        assert!(GstVersion(0, 10, 36).check_floor().is_err());
    }

    #[test]
    fn the_floor_and_newer_releases_pass() {
        for v in [
            GstVersion(1, 18, 0),
            GstVersion(1, 18, 4),
            GstVersion(1, 20, 3),
            GstVersion(1, 22, 0),
            GstVersion(1, 26, 2),
            GstVersion(2, 0, 0),
        ] {
            assert_eq!(v.check_floor(), Ok(()), "{v}");
        }
    }

    #[test]
    fn the_running_gstreamer_is_at_or_above_the_floor() {
        gst::init().unwrap();
        let v = GstVersion::running();
        assert_eq!(v.check_floor(), Ok(()), "{v}");
        assert!(v.at_least(1, 18, 0));
        assert!(!v.at_least(v.0, v.1, v.2 + 1));
    }

    #[test]
    fn features_follow_the_release_that_added_them() {
        assert!(!GstVersion(1, 18, 4).ice_port_range());
        assert!(!GstVersion(1, 18, 4).codec_preferences());
        assert!(GstVersion(1, 20, 3).codec_preferences());
        assert!(!GstVersion(1, 18, 4).device_monitor_skips_failed_providers());
        assert!(GstVersion(1, 22, 0).device_monitor_skips_failed_providers());
        assert!(!GstVersion(1, 20, 3).pads_bound_by_kind());
        assert!(GstVersion(1, 22, 0).pads_bound_by_kind());
        assert!(GstVersion(1, 20, 0).ice_port_range());
        assert!(GstVersion(1, 26, 2).ice_port_range());
    }
}
