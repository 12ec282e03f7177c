//! What the engine is told to do: devices, sinks, sizes, bitrates, ICE. The values come from
//! `[media]` (and the ICE settings [`Config::ice`] resolves), so the defaults are the ones
//! [`crate::config::MediaConfig`] writes down, in one place.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{Config, EchoMode, IceSettings, RelayPolicy, Transport};

/// A device setting: find one, use none, or use this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceChoice {
    /// The first one found.
    Auto,
    /// None (a camera setting of `none` uses the test pattern).
    None,
    /// A device path such as `/dev/video0` or an ALSA/PulseAudio name.
    Path(String),
}

impl DeviceChoice {
    /// Reads `auto`, `none` or a path.
    pub fn parse(s: &str) -> DeviceChoice {
        match s {
            "auto" | "" => DeviceChoice::Auto,
            "none" => DeviceChoice::None,
            p => DeviceChoice::Path(p.to_string()),
        }
    }
}

/// A sink setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkChoice {
    /// Pick by environment: a display server, a DRM device, or nothing (`fakesink`).
    Auto,
    /// This element factory (`kmssink`, `autovideosink`, `fakesink`, `alsasink`, …).
    Element(String),
}

impl SinkChoice {
    /// Reads `auto` or an element name.
    pub fn parse(s: &str) -> SinkChoice {
        match s {
            "auto" | "" => SinkChoice::Auto,
            e => SinkChoice::Element(e.to_string()),
        }
    }
}

/// Echo cancellation setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EchoCancellation {
    /// On with a real microphone, off with test sources.
    Auto,
    /// Always.
    On,
    /// Never.
    Off,
}

impl EchoCancellation {
    /// Whether to cancel echo, given whether the microphone is a real one.
    pub(super) fn resolve(self, real_microphone: bool) -> bool {
        match self {
            EchoCancellation::Auto => real_microphone,
            EchoCancellation::On => true,
            EchoCancellation::Off => false,
        }
    }
}

/// ICE servers and policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IceOptions {
    /// `stun://host:port`.
    pub stun: Option<String>,
    /// `turn://user:pass@host:port[?transport=tcp]` (holds a secret: never log it).
    pub turn: Option<String>,
    /// Relayed candidates only.
    pub relay_only: bool,
}

/// Everything the engine needs from the configuration.
#[derive(Debug, Clone)]
pub struct MediaOptions {
    /// Forced profile name, or automatic choice.
    pub profile: Option<String>,
    /// Extra profiles.
    pub profiles_dir: Option<PathBuf>,
    /// Camera.
    pub camera: DeviceChoice,
    /// Microphone.
    pub microphone: DeviceChoice,
    /// HDMI capture input.
    pub hdmi: DeviceChoice,
    /// Speaker sink.
    pub speaker: SinkChoice,
    /// Display sink.
    pub display: SinkChoice,
    /// Sent video width.
    pub width: u32,
    /// Sent video height.
    pub height: u32,
    /// Frames per second.
    pub framerate: u32,
    /// Video bitrate.
    pub video_kbps: u32,
    /// Audio bitrate.
    pub audio_kbps: u32,
    /// Display width.
    pub display_width: u32,
    /// Display height.
    pub display_height: u32,
    /// Echo cancellation and noise suppression.
    pub echo_cancellation: EchoCancellation,
    /// ICE.
    pub ice: IceOptions,
    /// How often statistics are collected.
    pub stats_interval: Duration,
    /// Initial speaker volume 0–100.
    pub volume: u8,
}

impl Default for MediaOptions {
    /// The options of a default configuration ([`Config::default`]).
    fn default() -> Self {
        MediaOptions::from_config(&Config::default())
    }
}

impl MediaOptions {
    /// The engine's options from the configuration (ICE from [`Config::ice`]).
    pub fn from_config(c: &Config) -> MediaOptions {
        let m = &c.media;
        let ice = c.ice();
        MediaOptions {
            profile: (m.profile != "auto").then(|| m.profile.clone()),
            profiles_dir: m.profiles_dir.clone(),
            camera: DeviceChoice::parse(&m.camera),
            microphone: DeviceChoice::parse(&m.microphone),
            hdmi: DeviceChoice::parse(&m.hdmi_capture),
            speaker: SinkChoice::parse(&m.speaker),
            display: SinkChoice::parse(&m.display),
            width: m.width,
            height: m.height,
            framerate: m.framerate,
            video_kbps: m.video_bitrate_kbps,
            audio_kbps: m.audio_bitrate_kbps,
            display_width: m.display_width,
            display_height: m.display_height,
            echo_cancellation: match m.echo_cancellation {
                EchoMode::Auto => EchoCancellation::Auto,
                EchoMode::On => EchoCancellation::On,
                EchoMode::Off => EchoCancellation::Off,
            },
            ice: IceOptions {
                stun: ice.stun_server.clone(),
                turn: turn_url(&ice),
                relay_only: ice.policy == RelayPolicy::Relay,
            },
            stats_interval: Duration::from_secs(m.stats_interval_s),
            volume: 80,
        }
    }
}

/// The TURN server as webrtcbin's `turn-server` URL, `turn://user:pass@host:port`, with the
/// credentials percent-encoded and `?transport=tcp` when the relay is reached over TCP.
fn turn_url(ice: &IceSettings) -> Option<String> {
    let server = ice.turn_server.as_ref()?;
    let enc = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    let creds = match (&ice.turn_username, &ice.turn_password) {
        (Some(u), Some(p)) => format!("{}:{}@", enc(u), enc(p.expose())),
        (Some(u), None) => format!("{}@", enc(u)),
        _ => String::new(),
    };
    let transport = if ice.turn_transport == Transport::Tcp {
        "?transport=tcp"
    } else {
        ""
    };
    Some(format!("turn://{creds}{server}{transport}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{IceConfig, Secret};

    #[test]
    fn turn_credentials_are_percent_encoded_and_tcp_is_asked_for() {
        let mut c = Config::default();
        c.media.ice = IceConfig {
            turn_server: Some("turn.example:3478".into()),
            turn_username: Some("room 101".into()),
            turn_password: Some(Secret::new("p@ss:word")),
            turn_transport: Some(Transport::Tcp),
            ..IceConfig::default()
        };
        let turn = MediaOptions::from_config(&c).ice.turn.unwrap();
        assert_eq!(
            turn,
            "turn://room+101:p%40ss%3Aword@turn.example:3478?transport=tcp"
        );
    }

    #[test]
    fn defaults_come_from_the_default_configuration() {
        let (o, m) = (
            MediaOptions::default(),
            crate::config::MediaConfig::default(),
        );
        assert_eq!(
            (o.width, o.height, o.framerate),
            (m.width, m.height, m.framerate)
        );
        assert_eq!(o.video_kbps, m.video_bitrate_kbps);
        assert_eq!(o.camera, DeviceChoice::Auto);
        assert_eq!(o.ice, IceOptions::default());
        assert_eq!(o.stats_interval, Duration::from_secs(m.stats_interval_s));
    }
}
