//! `[signaling]`: which signaling backend the device uses, and each backend's settings.
//!
//! The RTCPeer keys sit directly in `[signaling]` (they were there before a second backend
//! existed); RTM's live in `[signaling.rtm]`. The timing keys (`keepalive_s`,
//! `request_timeout_s`, `reconnect_*`) apply to whichever backend runs.

use std::path::PathBuf;

use serde::Deserialize;

use super::{Secret, SecretSource};

/// `[signaling]`: the backend, its settings, and timing shared by every backend.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignalingConfig {
    /// Which signaling system the device joins rooms over.
    pub backend: Backend,
    /// `[signaling.rtm]`: used when `backend = "rtm"`.
    pub rtm: RtmConfig,
    /// HTTP API base, e.g. `https://meet.example.com/app` (the seed's `host`).
    pub host: String,
    /// Control socket path under `host` (WebSocket, `?SID=` appended).
    pub socket_path: String,
    /// For an `https` host: a CA certificate (PEM) trusted besides the system's trust store.
    pub ca_file: Option<PathBuf>,
    /// For an `https` host: client certificate (PEM) for servers that require one.
    pub client_cert_file: Option<PathBuf>,
    /// Its private key (PEM); a secret.
    pub client_key_file: Option<PathBuf>,
    /// `deviceType` announced at registration: `tv` for a room appliance.
    pub device_type: DeviceType,
    /// TURN relay `host:port` (the seed's `relayServer`).
    pub relay_server: Option<String>,
    /// TURN user name.
    pub relay_username: Option<String>,
    /// TURN password.
    pub relay_password: Option<Secret>,
    /// `relay`: media only through the TURN relay; `all`: direct when possible.
    pub relay: RelayPolicy,
    /// Transport to the TURN relay.
    pub transport: Transport,
    /// How to log in.
    pub login: LoginConfig,
    /// Keep-alive interval (RTCPeer: WebSocket ping, three missed pongs mean the connection is
    /// dead; RTM: the FPNN `*ping`, which must stay well inside the server's 60 s idle limit).
    pub keepalive_s: u64,
    /// A request without a reply after this long counts as failed.
    pub request_timeout_s: u64,
    /// First reconnect delay.
    pub reconnect_min_ms: u64,
    /// Longest reconnect delay.
    pub reconnect_max_ms: u64,
}

impl Default for SignalingConfig {
    fn default() -> Self {
        SignalingConfig {
            backend: Backend::RtcPeer,
            rtm: RtmConfig::default(),
            host: "http://127.0.0.1:8080/app".into(),
            socket_path: "/socket".into(),
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
            device_type: DeviceType::Tv,
            relay_server: None,
            relay_username: None,
            relay_password: None,
            relay: RelayPolicy::All,
            transport: Transport::Udp,
            login: LoginConfig::default(),
            keepalive_s: 20,
            request_timeout_s: 10,
            reconnect_min_ms: 500,
            reconnect_max_ms: 30_000,
        }
    }
}

/// Device types of the dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub enum DeviceType {
    /// `pc`
    #[serde(rename = "pc")]
    Pc,
    /// `Android`
    #[serde(rename = "Android")]
    Android,
    /// `iOS`
    #[serde(rename = "iOS")]
    Ios,
    /// `webphone`
    #[serde(rename = "webphone")]
    Webphone,
    /// `tv`: a room appliance.
    #[serde(rename = "tv")]
    Tv,
}

impl DeviceType {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceType::Pc => "pc",
            DeviceType::Android => "Android",
            DeviceType::Ios => "iOS",
            DeviceType::Webphone => "webphone",
            DeviceType::Tv => "tv",
        }
    }
}

/// ICE transport policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelayPolicy {
    /// Only relayed candidates (through `relay_server`).
    Relay,
    /// Every candidate type.
    All,
}

/// Transport to the TURN server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// TURN over UDP.
    Udp,
    /// TURN over TCP (for networks that block UDP).
    Tcp,
}

/// `[signaling.login]`
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginConfig {
    /// `password` (account name + password) or `docking` (appId/secret signature + account).
    pub method: LoginMethod,
    /// Account name for `password`.
    pub name: Option<String>,
    /// Password for `password`.
    pub password: Option<Secret>,
    /// File holding the password (relative: under `$CREDENTIALS_DIRECTORY`).
    pub password_file: Option<PathBuf>,
    /// `appId` for `docking`.
    pub app_id: Option<String>,
    /// App secret for `docking` (used for `getSign`).
    pub secret: Option<Secret>,
    /// File holding the app secret.
    pub secret_file: Option<PathBuf>,
    /// Third-party account for `docking`.
    pub account: Option<String>,
    /// Display name for `docking`.
    pub user_name: Option<String>,
}

impl LoginConfig {
    /// Where the password comes from.
    pub fn password_source(&self) -> SecretSource {
        SecretSource {
            inline: self.password.clone(),
            file: self.password_file.clone(),
        }
    }

    /// Where the app secret comes from.
    pub fn secret_source(&self) -> SecretSource {
        SecretSource {
            inline: self.secret.clone(),
            file: self.secret_file.clone(),
        }
    }
}

/// Login methods of the dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginMethod {
    /// `account` / `login` with name and password.
    #[default]
    Password,
    /// `getSign` + `dockingLogin`.
    Docking,
}

/// The signaling systems the agent speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Backend {
    /// RTCPeer-compatible: HTTP login plus a WebSocket control socket; WebRTC media.
    #[default]
    #[serde(rename = "rtcpeer")]
    RtcPeer,
    /// RTM over FPNN: a TCP connection to an RTM gate; RTC rooms.
    Rtm,
}

impl Backend {
    /// The name used in the configuration, the state and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::RtcPeer => "rtcpeer",
            Backend::Rtm => "rtm",
        }
    }
}

/// `[signaling.rtm]`: the device as an RTM user.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RtmConfig {
    /// Project id (`pid`).
    pub pid: i64,
    /// The device's user id (`uid`).
    pub uid: i64,
    /// Login token, issued by the customer's business back end for this uid.
    pub token: Option<Secret>,
    /// File holding the token (relative: under `$CREDENTIALS_DIRECTORY`).
    pub token_file: Option<PathBuf>,
    /// Dispatch service `host:port`, asked for a gate with `which`.
    pub dispatch: Option<String>,
    /// A fixed RTM gate `host:port` (instead of `dispatch`).
    pub gate: Option<String>,
    /// A fixed RTC gate `host:port` for room media; by default the RTM gate names one.
    pub rtc_gate: Option<String>,
    /// How room media reaches the RTC gate: TCP, FPNN's reliable UDP, or UDP falling back.
    pub rtc_transport: RtcTransport,
    /// Over UDP, whether lost pieces of video frames are sent again (for a short while).
    pub udp_video: UdpVideo,
    /// Encrypt the RTC gate connection with that gate's public key.
    pub rtc_encryption: Option<RtmEncryption>,
    /// Encrypt the gate connection with the server's public key.
    pub encryption: Option<RtmEncryption>,
    /// What a forced pull into a room (`pushPullIntoRTCRoom`) does.
    pub pull: PullPolicy,
    /// Messages of this `mtype` carry commands (the MQTT command JSON), answered by message.
    pub command_mtype: Option<i64>,
    /// Sent as `version` in `auth`.
    pub version: String,
    /// Room members whose video is subscribed to (and shown), at most; 0 shows none.
    pub video_subscriptions: u32,
}

impl Default for RtmConfig {
    fn default() -> Self {
        RtmConfig {
            pid: 0,
            uid: 0,
            token: None,
            token_file: None,
            dispatch: None,
            gate: None,
            rtc_gate: None,
            rtc_transport: RtcTransport::Tcp,
            udp_video: UdpVideo::Resend,
            rtc_encryption: None,
            encryption: None,
            pull: PullPolicy::Obey,
            command_mtype: None,
            version: concat!("roomagent/", env!("CARGO_PKG_VERSION")).into(),
            video_subscriptions: 4,
        }
    }
}

impl RtmConfig {
    /// Where the token comes from.
    pub fn token_source(&self) -> SecretSource {
        SecretSource {
            inline: self.token.clone(),
            file: self.token_file.clone(),
        }
    }
}

/// The RTC gate's transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RtcTransport {
    /// FPNN over TCP (every RTM SDK maintained since 2023).
    #[default]
    Tcp,
    /// FPNN's reliable UDP: media quests may be lost instead of holding up later ones.
    Udp,
    /// UDP, and TCP for the room when UDP gets no answer.
    Auto,
}

/// Video over FPNN's UDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UdpVideo {
    /// A lost piece of a frame is sent again for up to 400 ms (each frame is needed by every
    /// frame after it until the next key frame).
    #[default]
    Resend,
    /// Sent once, as the RTM SDKs send one-way quests: a lost piece loses the frame.
    Discard,
}

/// `[signaling.rtm.encryption]`: FPNN's optional encrypted connection.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RtmEncryption {
    /// The gate's public key: a PEM file (`-----BEGIN PUBLIC KEY-----`), or a file with the
    /// raw 64-byte X‖Y point.
    pub public_key_file: PathBuf,
    /// The curve of a raw key (a PEM key names its own).
    #[serde(default)]
    pub curve: RtmCurve,
    /// AES key size: 128 or 256.
    #[serde(default = "default_bits")]
    pub bits: u16,
    /// `stream` (one cipher stream per direction) or `package` (each packet on its own).
    #[serde(default)]
    pub mode: RtmCipherMode,
}

fn default_bits() -> u16 {
    128
}

/// Elliptic curves FPNN's key exchange uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RtmCurve {
    /// secp256k1.
    #[default]
    Secp256k1,
    /// secp256r1 (prime256v1, P-256).
    Secp256r1,
}

/// FPNN encryption modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RtmCipherMode {
    /// One continuous cipher stream per direction.
    #[default]
    Stream,
    /// Each packet encrypted on its own behind a length prefix.
    Package,
}

/// What `pushPullIntoRTCRoom` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PullPolicy {
    /// Join at once, ending any other call (the back end decided).
    #[default]
    Obey,
    /// Treat it as an invite: the answer policy decides.
    Invite,
}
