//! Identifiers and small value types shared by inputs, actions and state.

/// A kind of device (capture or playback) the state and events report on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    /// The camera.
    Camera,
    /// The microphone.
    Microphone,
    /// The HDMI capture input.
    Hdmi,
    /// The speaker remote audio plays on.
    Speaker,
    /// The display remote video shows on.
    Display,
}

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id! {
    /// A user account: who calls, who is called, who the device logs in as.
    UserId
}
id! {
    /// A room (a meeting, an RTC room).
    RoomId
}
id! {
    /// A participant inside a room: the key of media sessions and member lists. Backends
    /// decide how it relates to a user (in both current dialects it is the user's id).
    ClientId
}

/// What kind of call or room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CallType {
    /// Audio only.
    Audio,
    /// Audio and video.
    Video,
    /// Video return / training: video from the device, treated like a video call.
    VideoReturn,
}

impl CallType {
    /// Whether the call carries video.
    pub fn has_video(self) -> bool {
        !matches!(self, CallType::Audio)
    }
}

/// The other end of a call: who to address replies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Peer {
    /// Their user id.
    pub user_id: UserId,
    /// Their device type as they announced it (`pc`, `Android`, `iOS`, `webphone`, `tv`), so a
    /// reply reaches the same device when the account is logged in on several.
    pub device_type: Option<String>,
}

impl Peer {
    /// A peer known only by user id.
    pub fn user(user_id: UserId) -> Peer {
        Peer {
            user_id,
            device_type: None,
        }
    }
}

/// A participant of a meeting, as the signaling server describes it (`Client`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    /// `Client.id`.
    pub client_id: ClientId,
    /// Display name.
    pub name: Option<String>,
    /// Whether they are muted, as last announced.
    pub muted: bool,
    /// Whether they are the host (`isSuperModerator`).
    pub host: bool,
}

/// The room as the server describes it on entry (`Room`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoomInfo {
    /// `Room.id`.
    pub id: RoomId,
    /// Room name.
    pub name: Option<String>,
    /// Owner's user id.
    pub owner_id: Option<UserId>,
    /// The host's client id (`superModeId`), when there is one.
    pub host_id: Option<ClientId>,
}

/// An order about our own microphone or camera from whoever runs the room (an administrator,
/// or the customer's back end), as opposed to a participant's wish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ModeratorOrder {
    /// Stop sending audio; the device may not unmute until allowed again.
    ForbidAudio,
    /// Sending audio is allowed again (the microphone stays as it is).
    AllowAudio,
    /// Stop sending video; the camera may not be turned on until allowed again.
    ForbidVideo,
    /// Sending video is allowed again (the camera stays as it is).
    AllowVideo,
    /// Mute the microphone now (the device may unmute later).
    CloseMic,
    /// Turn the camera off now (the device may turn it on later).
    CloseCamera,
}
