//! The state a dashboard reads and the LEDs show: always the device's reported truth.

use serde::Serialize;

use super::types::{ClientId, RoomId, UserId};

/// Where the device is in the call lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CallPhase {
    /// No call.
    Idle,
    /// An incoming call rings.
    Ringing,
    /// We agreed; waiting for the caller to enter the room.
    Answering,
    /// We call someone.
    Dialing,
    /// Entering a room.
    Connecting,
    /// In a room.
    InCall,
}

/// How a media session with one participant is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MediaState {
    /// No session with this participant.
    None,
    /// Negotiating.
    Connecting,
    /// Media flowing.
    Connected,
    /// The session failed.
    Failed,
}

/// One other participant of the current room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberState {
    /// Their client id.
    pub client_id: ClientId,
    /// Display name.
    pub name: Option<String>,
    /// Announced microphone state.
    pub muted: bool,
    /// Whether they host the meeting.
    pub host: bool,
    /// Our media session with them.
    pub media: MediaState,
    /// Their video has been decoded here (they appear on the display).
    pub video_in: bool,
}

/// Whether a capture device is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Attached {
    /// None was found or configured (test sources, silence).
    #[default]
    NotFound,
    /// Attached and working.
    Present,
    /// It was there and went away (unplugged, failing); the call goes on without it.
    Lost,
}

/// What is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct Devices {
    /// The camera.
    pub camera: Attached,
    /// The microphone.
    pub microphone: Attached,
    /// The HDMI capture input.
    pub hdmi: Attached,
    /// A source is plugged into the HDMI input and sending (only known during a call).
    pub hdmi_signal: bool,
    /// The speaker.
    pub speaker: Attached,
    /// The display.
    pub display: Attached,
}

impl Devices {
    /// Sets the entry for `kind`.
    pub fn set(&mut self, kind: super::types::DeviceKind, to: Attached) {
        use super::types::DeviceKind;
        match kind {
            DeviceKind::Camera => self.camera = to,
            DeviceKind::Microphone => self.microphone = to,
            DeviceKind::Hdmi => self.hdmi = to,
            DeviceKind::Speaker => self.speaker = to,
            DeviceKind::Display => self.display = to,
        }
    }
}

/// A snapshot of everything the core knows that a person would check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentState {
    /// The signaling backend (`rtcpeer`, `rtm`).
    pub backend: &'static str,
    /// Registered with the signaling server (can be called).
    pub registered: bool,
    /// Why the device is not registered, when it is not (e.g. a refused login).
    pub signaling_error: Option<String>,
    /// Our user id once logged in.
    pub user_id: Option<UserId>,
    /// Call lifecycle.
    pub call: CallPhase,
    /// The caller or callee, for a one-to-one call.
    pub peer: Option<UserId>,
    /// The room, once known.
    pub room_id: Option<RoomId>,
    /// Other participants.
    pub members: Vec<MemberState>,
    /// Microphone muted.
    pub mic_muted: bool,
    /// Muted by the host (cleared by any unmute).
    pub muted_by_host: bool,
    /// The room's moderator forbade sending audio: the device cannot unmute until allowed.
    pub audio_forbidden: bool,
    /// The room's moderator forbade sending video: the camera stays off until allowed.
    pub video_forbidden: bool,
    /// Camera sending.
    pub camera_on: bool,
    /// HDMI capture shared as the screen.
    pub sharing: bool,
    /// Speaker volume 0–100.
    pub volume: u8,
    /// Capture devices attached.
    pub devices: Devices,
}

impl AgentState {
    /// Whether a call is going on in any phase.
    pub fn busy(&self) -> bool {
        self.call != CallPhase::Idle
    }
}
