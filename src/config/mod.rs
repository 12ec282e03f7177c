//! The configuration file: types, defaults, and validation with errors that name the key,
//! line and column.
//!
//! Every option is documented in `config.example.toml`. Unknown keys and wrong types are
//! rejected; [`load`] reports every problem it can find, not just the first.

pub mod desired;
pub mod led;
mod load;
mod secret;
mod setup;
mod signaling;
mod validate;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

pub use desired::load_running;
pub use load::{ConfigError, ConfigErrors, load, load_for, parse, parse_bytes};
pub use secret::{Secret, SecretBytes, SecretSource};
pub use setup::{NOT_CONFIGURED, not_configured_status};
pub use signaling::{
    Backend, DeviceType, LoginConfig, LoginMethod, PullPolicy, RelayPolicy, RtcTransport,
    RtmCipherMode, RtmConfig, RtmCurve, RtmEncryption, SignalingConfig, Transport, UdpVideo,
};
pub use validate::Purpose;

use crate::core::{AnswerMode, AnswerPolicy, CoreConfig, UserId};

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Who this device is.
    pub device: DeviceConfig,
    /// How it reaches the signaling server.
    pub signaling: SignalingConfig,
    /// Which calls it answers by itself.
    pub answer: AnswerConfig,
    /// Cameras, microphones, encoders, displays.
    pub media: MediaConfig,
    /// Remote management over MQTT.
    pub mqtt: MqttConfig,
    /// Buttons and LEDs.
    pub gpio: GpioConfig,
    /// The development room server, started in-process when enabled.
    pub room_server: RoomServerConfig,
    /// Logging.
    pub log: LogConfig,
    /// Running under a service manager (systemd).
    pub service: ServiceConfig,
    /// When the device reports itself unhealthy.
    pub health: HealthConfig,
    /// The file this configuration came from (for reloads).
    #[serde(skip)]
    pub source: Option<PathBuf>,
    /// The file names no signaling server yet (a fresh install): the agent runs without
    /// signaling and says so. Set by [`parse`]; see `setup.rs` for the rule.
    #[serde(skip)]
    pub not_configured: bool,
}

/// `[device]`
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeviceConfig {
    /// Stable id: MQTT client id and topic segment. Letters, digits, `-` and `_`.
    pub id: String,
    /// Human-readable name shown on dashboards and used to name rooms the device creates.
    pub name: String,
}

impl DeviceConfig {
    /// The display name, falling back to the id.
    pub fn display_name(&self) -> &str {
        if self.name.is_empty() {
            &self.id
        } else {
            &self.name
        }
    }
}

/// `[answer]`: the auto-answer policy.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnswerConfig {
    /// `always`, `allow_list` or `never`.
    pub mode: AnswerMode,
    /// User ids `allow_list` answers.
    pub allow: Vec<UserId>,
    /// Ring this long before answering automatically.
    pub delay_ms: u64,
    /// Enter answered calls with the microphone muted.
    pub answer_muted: bool,
    /// Decline calls nobody answered after this long; also how long a dialed call rings.
    pub ring_timeout_s: u64,
    /// After answering, how long the caller has to enter the room.
    pub connect_timeout_s: u64,
}

impl Default for AnswerConfig {
    fn default() -> Self {
        AnswerConfig {
            mode: AnswerMode::Always,
            allow: Vec::new(),
            delay_ms: 1000,
            answer_muted: false,
            ring_timeout_s: 30,
            connect_timeout_s: 20,
        }
    }
}

/// `[media]`: capture, encoding and playback.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// Run the media engine. Off: signaling only (calls are answered but carry no media).
    pub enabled: bool,
    /// `auto` (best profile that fits this machine) or a profile name.
    pub profile: String,
    /// Directory with extra board profiles (`*.toml`).
    pub profiles_dir: Option<PathBuf>,
    /// `auto`, `none` (test pattern) or a device path such as `/dev/video0`.
    pub camera: String,
    /// `auto`, `none` (silence) or a device name.
    pub microphone: String,
    /// `auto` (recognised by name), `none`, or a device path.
    pub hdmi_capture: String,
    /// `auto`: a source plugged into the HDMI input is shared during a call (and its loss
    /// ends the share); `manual`: only `share_start`/`share_stop`.
    pub hdmi_share: HdmiShare,
    /// `auto` or an element name (`alsasink`, `pulsesink`, `fakesink`).
    pub speaker: String,
    /// `auto` or an element name (`kmssink`, `autovideosink`, `fakesink`).
    pub display: String,
    /// Sent video width.
    pub width: u32,
    /// Sent video height.
    pub height: u32,
    /// Frames per second.
    pub framerate: u32,
    /// Video bitrate, kbit/s (the most that is sent).
    pub video_bitrate_kbps: u32,
    /// Follow the network (RTCP receiver reports): bitrate, then size and frame rate, go down
    /// when the path to a participant is narrow and back up when it widens.
    pub adaptive_bitrate: bool,
    /// The least video bitrate adaptation goes down to, kbit/s.
    pub min_video_bitrate_kbps: u32,
    /// How a far end's request for a lower quality layer (`switchVideoBySim`) is served while
    /// others watch a higher one: `encode` (a second, smaller encode for it; falls back to
    /// `scale` when the encoder cannot run twice) or `scale` (one encode, at the largest layer
    /// anyone asks for).
    pub quality_layers: QualityLayers,
    /// Audio (Opus) bitrate, kbit/s.
    pub audio_bitrate_kbps: u32,
    /// Display width (remote participants are composed into a grid of this size).
    pub display_width: u32,
    /// Display height.
    pub display_height: u32,
    /// `auto` (on with a real microphone), `on` or `off`.
    pub echo_cancellation: EchoMode,
    /// `stun://host:port`, if any (also `[media.ice] stun_server`).
    pub stun_server: Option<String>,
    /// `[media.ice]`: STUN and TURN for WebRTC sessions.
    pub ice: IceConfig,
    /// How often media statistics are collected.
    pub stats_interval_s: u64,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            enabled: true,
            profile: "auto".into(),
            profiles_dir: None,
            camera: "auto".into(),
            microphone: "auto".into(),
            hdmi_capture: "auto".into(),
            hdmi_share: HdmiShare::Auto,
            speaker: "auto".into(),
            display: "auto".into(),
            width: 1280,
            height: 720,
            framerate: 30,
            video_bitrate_kbps: 1500,
            adaptive_bitrate: true,
            min_video_bitrate_kbps: 150,
            quality_layers: QualityLayers::Encode,
            audio_bitrate_kbps: 32,
            display_width: 1280,
            display_height: 720,
            echo_cancellation: EchoMode::Auto,
            stun_server: None,
            ice: IceConfig::default(),
            stats_interval_s: 2,
        }
    }
}

/// When the HDMI capture input is shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum HdmiShare {
    /// When a source sends on it (during a call).
    #[default]
    Auto,
    /// Only on `share_start`.
    Manual,
}

/// How lower quality layers are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum QualityLayers {
    /// A smaller encode of its own for each lower layer asked for.
    #[default]
    Encode,
    /// One encode, scaled to the largest layer asked for.
    Scale,
}

/// `[media.ice]`: how WebRTC sessions find a path, whichever backend delivers the call.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IceConfig {
    /// `stun://host:port`.
    pub stun_server: Option<String>,
    /// TURN relay `host:port`.
    pub turn_server: Option<String>,
    /// TURN user name.
    pub turn_username: Option<String>,
    /// TURN password.
    pub turn_password: Option<Secret>,
    /// `relay`: media only through the TURN relay; `all` (default): direct when possible.
    pub policy: Option<RelayPolicy>,
    /// Transport to the TURN relay (default `udp`).
    pub turn_transport: Option<Transport>,
    /// Local UDP ports for media, `"min-max"` (default: any), for a firewall that opens only
    /// these.
    pub port_range: Option<String>,
}

/// Parses a `"min-max"` port range.
pub fn port_range(s: &str) -> Result<(u16, u16), String> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| format!("{s:?} must be min-max, e.g. 40000-40099"))?;
    let parse = |v: &str| {
        v.trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("{v:?} in {s:?} is not a port (1-65535)"))
    };
    let (a, b) = (parse(a)?, parse(b)?);
    if a > b {
        return Err(format!(
            "{s:?}: the first port must not be above the second"
        ));
    }
    Ok((a, b))
}

/// The ICE settings in force: `[media.ice]`, falling back to the older places the same
/// settings could be written (`[media] stun_server`, RTCPeer's `[signaling] relay_*`).
#[derive(Debug, Clone, PartialEq)]
pub struct IceSettings {
    /// `stun://host:port`.
    pub stun_server: Option<String>,
    /// TURN relay `host:port`.
    pub turn_server: Option<String>,
    /// TURN user name.
    pub turn_username: Option<String>,
    /// TURN password.
    pub turn_password: Option<Secret>,
    /// Relay only, or every path.
    pub policy: RelayPolicy,
    /// Transport to the TURN relay.
    pub turn_transport: Transport,
    /// The key the TURN settings came from, for error messages (`media.ice` or `signaling`).
    pub source: &'static str,
}

/// Echo cancellation setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EchoMode {
    /// On with a real microphone, off with test sources.
    Auto,
    /// Always on.
    On,
    /// Off.
    Off,
}

/// `[mqtt]`: fleet management over MQTT.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// Connect to a broker.
    pub enabled: bool,
    /// Broker host name or address.
    pub host: String,
    /// Broker port (1883 plain, 8883 TLS by convention).
    pub port: u16,
    /// Topic prefix: `<prefix>/<device id>/…` and `<prefix>/all/…`.
    pub prefix: String,
    /// User name.
    pub username: Option<String>,
    /// Password.
    pub password: Option<Secret>,
    /// File holding the password (relative: under `$CREDENTIALS_DIRECTORY`).
    pub password_file: Option<PathBuf>,
    /// CA certificate (PEM) that signed the broker's certificate; setting it turns TLS on.
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for brokers that require one.
    pub client_cert_file: Option<PathBuf>,
    /// Its private key (PEM).
    pub client_key_file: Option<PathBuf>,
    /// MQTT keep-alive.
    pub keep_alive_s: u64,
    /// How often telemetry is published.
    pub telemetry_interval_s: u64,
    /// Publish Home Assistant discovery configs.
    pub discovery: bool,
    /// Home Assistant's discovery prefix.
    pub discovery_prefix: String,
    /// A local web page for this device (http or https), shown in Home Assistant's device page.
    pub configuration_url: Option<String>,
    /// Fleet group this device belongs to (fleet commands can select it).
    pub group: Option<String>,
    /// Site this device is at (fleet commands can select it).
    pub site: Option<String>,
    /// First reconnect delay.
    pub reconnect_min_ms: u64,
    /// Longest reconnect delay.
    pub reconnect_max_ms: u64,
    /// Commands whose `"ts"` is further than this from the device's clock are refused.
    pub command_max_age_s: u64,
    /// Refuse commands without a `"ts"` (Home Assistant's controls send none).
    pub require_timestamp: bool,
    /// TLS ALPN protocols to offer (AWS IoT Core's custom authentication on port 443 needs
    /// `["mqtt"]`); empty: none.
    pub alpn: Vec<String>,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            enabled: false,
            host: "127.0.0.1".into(),
            port: 1883,
            prefix: "roomagent".into(),
            username: None,
            password: None,
            password_file: None,
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
            keep_alive_s: 30,
            telemetry_interval_s: 60,
            discovery: true,
            discovery_prefix: "homeassistant".into(),
            configuration_url: None,
            group: None,
            site: None,
            reconnect_min_ms: 500,
            reconnect_max_ms: 30_000,
            command_max_age_s: 30,
            require_timestamp: false,
            alpn: Vec::new(),
        }
    }
}

impl MqttConfig {
    /// Where the password comes from.
    pub fn password_source(&self) -> SecretSource {
        SecretSource {
            inline: self.password.clone(),
            file: self.password_file.clone(),
        }
    }
}

/// `[gpio]`: mute button, answer button, privacy switch, status and mute LEDs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GpioConfig {
    /// Use buttons and LEDs.
    pub enabled: bool,
    /// `gpiocdev` (Linux GPIO character device: any board), `rppal` (Raspberry Pi, needs the
    /// `rppal` build feature) or `sim` (in-process, for development and tests).
    pub backend: GpioBackend,
    /// Software debounce: a level counts once it held this long (kernel debounce is asked for
    /// too where the driver offers it).
    pub debounce_ms: u64,
    /// Holding the mute button this long hangs up.
    pub long_press_ms: u64,
    /// `sim` backend: a Unix socket accepting `press mute`, `hold mute 2000`, `leds`, ….
    pub control_socket: Option<PathBuf>,
    /// Toggles the microphone; a long press hangs up.
    pub mute_button: Option<LineConfig>,
    /// Answers a ringing call.
    pub answer_button: Option<LineConfig>,
    /// Camera off while engaged.
    pub privacy_switch: Option<LineConfig>,
    /// Shows idle / connecting / ringing / in call / error.
    pub status_led: Option<LineConfig>,
    /// Lit while the microphone is muted.
    pub mute_led: Option<LineConfig>,
    /// The status LED's pattern per situation.
    pub patterns: led::PatternTable,
}

impl Default for GpioConfig {
    fn default() -> Self {
        GpioConfig {
            enabled: false,
            backend: GpioBackend::Gpiocdev,
            debounce_ms: 30,
            long_press_ms: 1500,
            control_socket: None,
            mute_button: None,
            answer_button: None,
            privacy_switch: None,
            status_led: None,
            mute_led: None,
            patterns: Default::default(),
        }
    }
}

/// GPIO backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GpioBackend {
    /// The GPIO character device (uAPI v2).
    Gpiocdev,
    /// rppal (Raspberry Pi).
    Rppal,
    /// Simulated.
    Sim,
}

/// One GPIO line: by chip and offset, or by line name.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineConfig {
    /// Chip name or path (`gpiochip0`, `/dev/gpiochip4`).
    #[serde(default)]
    pub chip: Option<String>,
    /// Line offset on the chip (for `rppal`: the BCM GPIO number).
    #[serde(default)]
    pub offset: Option<u32>,
    /// Line name as the board names it (`GPIO17`, `PH.00`); searched on every chip.
    #[serde(default)]
    pub line: Option<String>,
    /// Active when the line is low (buttons to ground, LEDs wired to sink current).
    #[serde(default)]
    pub active_low: bool,
    /// Inputs: `pull_up`, `pull_down`, `disabled`, or leave as is.
    #[serde(default)]
    pub bias: LineBias,
    /// LEDs on `rppal`: brightness 0.0-1.0 (software PWM).
    #[serde(default)]
    pub brightness: Option<f64>,
}

/// Input bias.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineBias {
    /// Whatever it is.
    #[default]
    AsIs,
    /// Pull-up.
    PullUp,
    /// Pull-down.
    PullDown,
    /// No bias.
    Disabled,
}

/// `[room_server]`: the development room server.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoomServerConfig {
    /// Start it inside `roomagent run`.
    pub enabled: bool,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Path prefix of the API (the `/app` in `http://host/app`).
    pub base_path: String,
    /// Accounts that can log in with name and password.
    pub accounts: Vec<AccountConfig>,
    /// Third-party platforms allowed to use `getSign` + `dockingLogin`.
    pub apps: Vec<AppConfig>,
}

impl Default for RoomServerConfig {
    fn default() -> Self {
        RoomServerConfig {
            enabled: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            base_path: "/app".into(),
            accounts: Vec::new(),
            apps: Vec::new(),
        }
    }
}

/// `[[room_server.accounts]]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// User id (unique).
    pub id: i64,
    /// Login name (unique).
    pub name: String,
    /// Password.
    pub password: Secret,
    /// Display name; defaults to the login name.
    #[serde(default)]
    pub display_name: Option<String>,
}

/// `[[room_server.apps]]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// `appId`.
    pub app_id: String,
    /// Its secret.
    pub secret: Secret,
    /// The organisation its users belong to.
    #[serde(default)]
    pub company: Option<String>,
}

/// `[health]`: the thresholds of the health a dashboard reads (`<prefix>/<id>/health`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// The board this hot (°C) is a warning.
    pub temperature_warning_c: u32,
    /// And this hot an error.
    pub temperature_error_c: u32,
    /// Less free disk space than this share (%) is a warning; less than half of it an error.
    pub disk_free_warning_percent: u32,
    /// Not registered with the signaling server for this long is an error (registering
    /// after a start or a network change takes a few seconds).
    pub signaling_grace_s: u64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            temperature_warning_c: 80,
            temperature_error_c: 85,
            disk_free_warning_percent: 10,
            signaling_grace_s: 30,
        }
    }
}

/// `[service]`: how `roomagent run` behaves under systemd (`Type=notify`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceConfig {
    /// How long start-up waits for signaling registration before telling the service manager
    /// it is ready anyway (with a status saying why it is not registered). 0: ready as soon
    /// as the configuration is loaded and the adapters run.
    pub ready_timeout_s: u64,
    /// Where the agent leaves requests for the privileged helper (a reboot); empty: the
    /// `requests` directory in the service's state directory (`$STATE_DIRECTORY`).
    pub requests_dir: Option<PathBuf>,
    /// Where the configuration a dashboard set (`config/desired` over MQTT) is kept; empty:
    /// `desired.toml` in the service's state directory (`$STATE_DIRECTORY`).
    pub desired_file: Option<PathBuf>,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            ready_timeout_s: 15,
            requests_dir: None,
            desired_file: None,
        }
    }
}

/// The service's state directory, as systemd passes it (`StateDirectory=`: the first of
/// `$STATE_DIRECTORY`); `None` outside the service.
fn state_directory() -> Option<PathBuf> {
    let dirs = std::env::var_os("STATE_DIRECTORY")?;
    std::env::split_paths(&dirs).next()
}

impl ServiceConfig {
    /// Where a dashboard's configuration is kept: [`ServiceConfig::desired_file`], else
    /// `$STATE_DIRECTORY/desired.toml` under systemd; `None` elsewhere (no remote
    /// configuration then).
    pub fn desired_file(&self) -> Option<PathBuf> {
        self.desired_file
            .clone()
            .or_else(|| Some(state_directory()?.join("desired.toml")))
    }

    /// Where requests for the privileged helper go: [`ServiceConfig::requests_dir`], else
    /// `$STATE_DIRECTORY/requests` under systemd; `None` elsewhere.
    pub fn requests_dir(&self) -> Option<PathBuf> {
        self.requests_dir
            .clone()
            .or_else(|| Some(state_directory()?.join("requests")))
    }

    /// [`ServiceConfig::ready_timeout_s`] as a duration.
    pub fn ready_timeout(&self) -> Duration {
        Duration::from_secs(self.ready_timeout_s)
    }
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A `tracing` filter, e.g. `info` or `roomagent=debug,info`. `RUST_LOG` wins when set.
    pub level: String,
    /// `auto` (readable on a terminal, JSON otherwise), `text` or `json`.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Auto,
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Text on a terminal, JSON when not (journald, files).
    Auto,
    /// Always human-readable text.
    Text,
    /// Always one JSON object per line.
    Json,
}

impl Config {
    /// The ICE settings in force (see [`IceSettings`]).
    pub fn ice(&self) -> IceSettings {
        let (i, s) = (&self.media.ice, &self.signaling);
        let own = i.turn_server.is_some() || i.policy.is_some() || i.turn_transport.is_some();
        let legacy = s.backend == Backend::RtcPeer && !own;
        IceSettings {
            stun_server: i
                .stun_server
                .clone()
                .or_else(|| self.media.stun_server.clone()),
            turn_server: if legacy {
                s.relay_server.clone()
            } else {
                i.turn_server.clone()
            },
            turn_username: if legacy {
                s.relay_username.clone()
            } else {
                i.turn_username.clone()
            },
            turn_password: if legacy {
                s.relay_password.clone()
            } else {
                i.turn_password.clone()
            },
            policy: if legacy {
                s.relay
            } else {
                i.policy.unwrap_or(RelayPolicy::All)
            },
            turn_transport: if legacy {
                s.transport
            } else {
                i.turn_transport.unwrap_or(Transport::Udp)
            },
            source: if legacy { "signaling" } else { "media.ice" },
        }
    }

    /// The core's view of the configuration.
    pub fn core(&self) -> CoreConfig {
        CoreConfig {
            policy: AnswerPolicy {
                mode: self.answer.mode,
                allow: self.answer.allow.clone(),
                delay: Duration::from_millis(self.answer.delay_ms),
                answer_muted: self.answer.answer_muted,
                ring_timeout: Duration::from_secs(self.answer.ring_timeout_s),
            },
            device_name: self.device.display_name().to_string(),
            connect_timeout: Duration::from_secs(self.answer.connect_timeout_s),
            backend: self.signaling.backend.as_str(),
            per_participant_media: self.signaling.backend == Backend::RtcPeer,
            auto_share: self.media.hdmi_share == HdmiShare::Auto,
        }
    }
}

#[cfg(test)]
mod redaction_tests;
