//! Identifiers and small value types shared by inputs, actions and state.

use serde::Serialize;

/// A user account id (`User.id` in the seed; a `Long` on the wire).
pub type UserId = i64;
/// A meeting room id (`Room.id`).
pub type RoomId = i64;
/// A participant's id inside a meeting (`Client.id`). In the RTCPeer dialect it equals the
/// participant's user id; a media server would appear with an id of its own.
pub type ClientId = i64;

/// What kind of call or room: `type` / `roomType` on the wire (1 audio, 2 video, 3 video return).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CallType {
    /// 1: audio only.
    Audio,
    /// 2: audio and video.
    Video,
    /// 3: video return / training: video from the device, treated like a video call.
    VideoReturn,
}

impl CallType {
    /// The wire code (1, 2 or 3).
    pub fn code(self) -> i64 {
        match self {
            CallType::Audio => 1,
            CallType::Video => 2,
            CallType::VideoReturn => 3,
        }
    }

    /// Reads a wire code; `None` for codes the dialect does not define.
    pub fn from_code(code: i64) -> Option<CallType> {
        match code {
            1 => Some(CallType::Audio),
            2 => Some(CallType::Video),
            3 => Some(CallType::VideoReturn),
            _ => None,
        }
    }

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
