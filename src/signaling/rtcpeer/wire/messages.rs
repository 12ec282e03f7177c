//! Control-socket message bodies, grouped by the dialect's modules: `call`, `room`,
//! `meeting` and `media`. Each struct is the object minus `module`, `method` and `reqId`.

use serde::{Deserialize, Serialize};

use super::{Client, Room};

// ------------------------------------------------------------------ call module

/// `call/doRegister`. `Debug` hides the session id.
#[derive(Clone, Serialize, Deserialize)]
pub struct Register {
    /// Session id from login.
    #[serde(rename = "SID")]
    pub sid: String,
    /// Our user id.
    #[serde(rename = "userId")]
    pub user_id: i64,
    /// `tv` for an appliance.
    #[serde(
        rename = "deviceType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub device_type: Option<String>,
}

impl std::fmt::Debug for Register {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Register")
            .field("sid", &"***")
            .field("user_id", &self.user_id)
            .field("device_type", &self.device_type)
            .finish()
    }
}

/// Every `call/*` message (`doInvite`, `doEvent`, `doAgree`, `reject`, `cancel`), both the
/// request a client sends and the copy the server forwards.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallMsg {
    /// Sender (rewritten by the server to the authenticated user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own_user_id: Option<i64>,
    /// Recipient (requests only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_user_id: Option<i64>,
    /// Sender's device type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own_device_type: Option<String>,
    /// Recipient's device type, to reach one device of a multi-device account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_device_type: Option<String>,
    /// 1 audio, 2 video, 3 video return.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub call_type: Option<i64>,
    /// The call's room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<i64>,
    /// `doEvent` only: `onRinging`, `onBusy`, `onConnected`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// `doEvent onConnected`: the room's type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_type: Option<i64>,
}

/// `doEvent` names.
pub mod event {
    /// The callee rings.
    pub const RINGING: &str = "onRinging";
    /// The callee is busy.
    pub const BUSY: &str = "onBusy";
    /// The caller entered the room.
    pub const CONNECTED: &str = "onConnected";
}

/// Reply to `call/doInvite`: 0 delivered, 1 target offline.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InviteReply {
    /// The room of the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<i64>,
}

// ------------------------------------------------------------------ room module

/// `room/newAppRoom` (seed §5.10).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewAppRoom {
    /// Room name.
    pub name: String,
    /// Capacity (at most 200).
    pub number_limit: i64,
    /// 1 audio, 2 video, 3 training (lower-case `roomtype`, as in the seed).
    #[serde(rename = "roomtype")]
    pub roomtype: i64,
    /// Creator.
    pub user_id: i64,
}

/// Reply to `room/newAppRoom`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewAppRoomReply {
    /// The new room.
    pub room_id: i64,
}

// ------------------------------------------------------------------ meeting module

/// `meeting/enter`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Enter {
    /// Who enters.
    pub user_id: i64,
    /// Which room.
    pub room_id: i64,
    /// 1 audio, 2 video, 3 training.
    pub room_type: i64,
    /// Guest name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

/// Reply to `meeting/enter`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnterReply {
    /// Our participant.
    pub client: Client,
    /// Everyone else.
    pub members: Vec<Client>,
    /// The room.
    pub room: Room,
}

/// Messages that only name a room (`exit`, `finish`, `raiseHand`, `audioOnlyMeeting`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomRef {
    /// The room.
    pub room_id: i64,
}

/// Messages that name a participant in a room (`kickOut`/`tiren`, `setCompere`/`onCompere`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRoom {
    /// The participant (`Client.id`).
    pub user_id: i64,
    /// The room.
    pub room_id: i64,
}

/// `meeting/muteMsg` and the `onMute` push.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MuteMsg {
    /// Whose microphone (`Client.id`).
    pub user_id: i64,
    /// The room.
    pub room_id: i64,
    /// Muted or not.
    pub is_mute: bool,
    /// `fromSuper` when the host sends it.
    #[serde(rename = "super", default, skip_serializing_if = "Option::is_none")]
    pub from_super: Option<String>,
}

/// The `super` value marking a host order.
pub const FROM_SUPER: &str = "fromSuper";

/// `meeting/muteAll` and the `onMuteAll` push.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MuteAll {
    /// Who sends it.
    pub user_id: i64,
    /// The room.
    pub room_id: i64,
    /// Muted or not.
    pub is_mute: bool,
    /// `fromSuper` when the host sends it.
    #[serde(rename = "super", default, skip_serializing_if = "Option::is_none")]
    pub from_super: Option<String>,
}

/// `meeting/chat` and `onChat`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Chat {
    /// Sender.
    pub user_id: i64,
    /// The room.
    pub room_id: i64,
    /// Text.
    pub content: String,
    /// Sender's participant (pushes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<Client>,
}

/// `meeting/privateChat` and `onPrivateChat`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrivateChat {
    /// Sender.
    pub user_id: i64,
    /// Recipient.
    pub other_user_id: i64,
    /// The room.
    pub room_id: i64,
    /// Text.
    pub content: String,
    /// Sender's participant (pushes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<Client>,
}

/// `meeting/updateVideo`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateVideo {
    /// The room.
    pub room_id: i64,
    /// Camera on.
    pub video: bool,
}

/// `meeting/shareScreen`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShareScreen {
    /// The room.
    pub room_id: i64,
    /// The sharing participant; `null` = stopped.
    pub share_screen_id: Option<i64>,
}

/// `meeting/updateMeetingName`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateMeetingName {
    /// Sender.
    pub user_id: i64,
    /// The room.
    pub room_id: i64,
    /// New name.
    pub appointment_name: String,
    /// The appointment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appointment_id: Option<i64>,
}

/// `meeting/updateClientName`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateClientName {
    /// Whose name.
    pub user_id: i64,
    /// The room.
    pub room_id: i64,
    /// New name.
    pub name: String,
}

/// `EnterRoom` / `ExitRoom` / `onRaiseHand` / `onPublished` / `onShareScreen` pushes: a room
/// and a participant, plus what the particular push adds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientPush {
    /// The room.
    pub room_id: i64,
    /// The participant.
    pub client: Client,
    /// `EnterRoom`: 0, or 9 to the older socket of the same account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<i64>,
    /// `onPublished`: `play`, `close` or `audioMode`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// `onShareScreen`: who shares, `null` when stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_screen_id: Option<Option<i64>>,
}

/// `onFinish`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FinishPush {
    /// The room.
    pub room_id: i64,
    /// Who finished it.
    #[serde(default)]
    pub user_id: Option<i64>,
}

/// `memberTalking`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberTalking {
    /// The active speaker.
    pub member: Client,
}

// ------------------------------------------------------------------ media module (dialect §5)

/// `media/offer` and `media/answer`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaSdp {
    /// The room.
    pub room_id: i64,
    /// Sender (rewritten by the server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_client_id: Option<i64>,
    /// Recipient.
    pub to_client_id: i64,
    /// SDP text.
    pub sdp: String,
}

/// `media/candidate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaCandidate {
    /// The room.
    pub room_id: i64,
    /// Sender (rewritten by the server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_client_id: Option<i64>,
    /// Recipient.
    pub to_client_id: i64,
    /// `candidate:…`, or empty for end of candidates.
    pub candidate: String,
    /// m-line index.
    #[serde(rename = "sdpMLineIndex")]
    pub sdp_mline_index: u32,
    /// m-line mid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
}

/// `media/bye`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaBye {
    /// The room.
    pub room_id: i64,
    /// Sender (rewritten by the server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_client_id: Option<i64>,
    /// Recipient.
    pub to_client_id: i64,
}

/// `media/quality`: the sender (a viewer) asks the recipient for a quality layer of the video
/// it sends, as the SDK's `switchVideoBySim` names them (a development extension of the
/// dialect: docs/rtcpeer.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaQuality {
    /// The room.
    pub room_id: i64,
    /// Sender (rewritten by the server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_client_id: Option<i64>,
    /// Recipient.
    pub to_client_id: i64,
    /// 0 small, 1 medium, 2 large (the full picture).
    pub sim: i64,
}

impl MediaQuality {
    /// The layer asked for, or what is wrong with it.
    pub fn layer(&self) -> Result<u8, String> {
        match self.sim {
            0..=2 => Ok(self.sim as u8),
            other => Err(format!(
                "sim must be 0 (small), 1 (medium) or 2 (large), not {other}"
            )),
        }
    }
}
