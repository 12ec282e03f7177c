//! The RTCPeer dialect v1 on the wire: frame envelope, bean types and message bodies.
//!
//! Shared by the client adapter and the development room server, so both agree byte for
//! byte. Field names are exactly those of the seed (camelCase, `SID`, `pictureurl`, …).
//! Every frame is one JSON object with `module` and `method`; replies echo them plus
//! `result` and the request's `reqId`.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use thiserror::Error;

/// Frames above this size are refused (dialect §1).
pub const MAX_FRAME: usize = 64 * 1024;

/// `result` codes of the dialect.
pub mod code {
    /// Success.
    pub const OK: i64 = 0;
    /// Generic failure (seed: `1` = failed / wrong password / target offline).
    pub const FAILED: i64 = 1;
    /// `EnterRoom` to the older socket of an account that entered again.
    pub const REPLACED: i64 = 9;
    /// Malformed frame, or a missing/mistyped field.
    pub const BAD_REQUEST: i64 = 400;
    /// Not registered, or bad SID.
    pub const UNAUTHORIZED: i64 = 401;
    /// Unknown module/method.
    pub const UNKNOWN: i64 = 404;
}

/// Why a frame could not be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum WireError {
    /// Over [`MAX_FRAME`].
    #[error("frame of {0} bytes is over the 64 KiB limit")]
    TooLarge(usize),
    /// Not JSON.
    #[error("frame is not valid JSON: {0}")]
    Json(String),
    /// JSON, but not an object.
    #[error("frame is not a JSON object")]
    NotObject,
    /// A required field is missing or has the wrong type.
    #[error("field `{field}`: {problem}")]
    Field {
        /// The field's path, e.g. `client.id`.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A module/method this side does not handle.
    #[error("unknown module/method {module}/{method}")]
    Unknown {
        /// `module`.
        module: String,
        /// `method`.
        method: String,
    },
}

impl WireError {
    /// The `result` code a server answers with.
    pub fn code(&self) -> i64 {
        match self {
            WireError::Unknown { .. } => code::UNKNOWN,
            _ => code::BAD_REQUEST,
        }
    }

    /// A short name for rate-limited logging ("once per kind").
    pub fn kind(&self) -> &'static str {
        match self {
            WireError::TooLarge(_) => "too-large",
            WireError::Json(_) => "json",
            WireError::NotObject => "not-object",
            WireError::Field { .. } => "field",
            WireError::Unknown { .. } => "unknown",
        }
    }

    fn field(field: &str, problem: impl Into<String>) -> WireError {
        WireError::Field {
            field: field.to_string(),
            problem: problem.into(),
        }
    }
}

/// A parsed frame: routing fields plus the rest of the object.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// `module`.
    pub module: String,
    /// `method`.
    pub method: String,
    /// `reqId`, kept as sent so a reply echoes it exactly.
    pub req_id: Option<Value>,
    /// Every field, including the routing ones.
    pub body: Map<String, Value>,
}

impl Envelope {
    /// Parses one text frame.
    pub fn parse(text: &str) -> Result<Envelope, WireError> {
        if text.len() > MAX_FRAME {
            return Err(WireError::TooLarge(text.len()));
        }
        let value: Value =
            serde_json::from_str(text).map_err(|e| WireError::Json(e.to_string()))?;
        let Value::Object(body) = value else {
            return Err(WireError::NotObject);
        };
        let get = |k: &str| match body.get(k) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(WireError::field(k, "must be a string")),
            None => Err(WireError::field(k, "missing")),
        };
        let module = get("module")?;
        let method = get("method")?;
        let req_id = body.get("reqId").filter(|v| !v.is_null()).cloned();
        Ok(Envelope {
            module,
            method,
            req_id,
            body,
        })
    }

    /// `(module, method)` for matching.
    pub fn route(&self) -> (&str, &str) {
        (&self.module, &self.method)
    }

    /// The `result` field, if present and an integer.
    pub fn result(&self) -> Option<i64> {
        self.body.get("result").and_then(Value::as_i64)
    }

    /// The `message` field, if present.
    pub fn message(&self) -> Option<&str> {
        self.body.get("message").and_then(Value::as_str)
    }

    /// Reads the body as `T`; errors name the offending field.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, WireError> {
        let value = Value::Object(self.body.clone());
        serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            // serde reports a missing field at its parent; name the field itself.
            if let Some(rest) = inner.strip_prefix("missing field `") {
                let name = rest.split('`').next().unwrap_or(rest);
                let field = if path == "." || path.is_empty() {
                    name.to_string()
                } else {
                    format!("{path}.{name}")
                };
                return WireError::field(&field, "missing");
            }
            WireError::field(if path.is_empty() { "." } else { &path }, inner)
        })
    }
}

/// Serializes one frame: `body`'s fields plus `module`, `method` and `reqId`.
pub fn frame<T: Serialize>(module: &str, method: &str, req_id: Option<&Value>, body: &T) -> String {
    let mut map = match serde_json::to_value(body) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    map.insert("module".into(), Value::String(module.into()));
    map.insert("method".into(), Value::String(method.into()));
    if let Some(id) = req_id {
        map.insert("reqId".into(), id.clone());
    }
    Value::Object(map).to_string()
}

/// A reply frame: `result`, optional `message`, plus `extra`'s fields.
pub fn reply<T: Serialize>(
    module: &str,
    method: &str,
    req_id: Option<&Value>,
    result: i64,
    message: Option<&str>,
    extra: &T,
) -> String {
    let mut map = match serde_json::to_value(extra) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    map.insert("result".into(), Value::from(result));
    if let Some(m) = message {
        map.insert("message".into(), Value::String(m.into()));
    }
    frame(module, method, req_id, &map)
}

/// Nothing beyond the envelope.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Empty {}

// ------------------------------------------------------------------ beans (seed §8)

/// `User`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// Unique id.
    pub id: i64,
    /// Login account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Nickname.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// E-mail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Avatar URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub photo: Option<String>,
    /// Company name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
}

/// `Company` (`organisation` in `dockingLogin`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Company {
    /// Unique id.
    pub id: i64,
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// E-mail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Logo URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo: Option<String>,
    /// Address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// `Room`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Room {
    /// Unique id.
    pub id: i64,
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Owner's user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<i64>,
    /// 1 audio, 2 video, 3 training.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_type: Option<i64>,
    /// `1080p`, `720p`, `480p`, `240p`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<String>,
    /// Capacity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_limit: Option<i64>,
    /// Public room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_public: Option<bool>,
    /// Has a password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_has_pwd: Option<bool>,
    /// Appointment in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appointment_id: Option<i64>,
    /// Its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appointment_name: Option<String>,
    /// The host's id during a meeting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub super_mode_id: Option<i64>,
    /// Logo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo: Option<String>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// `Client`: a participant of a meeting.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Client {
    /// Participant id (the user id in this dialect).
    pub id: i64,
    /// Nickname.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// E-mail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Avatar URL (lower-case `pictureurl`, as in the seed).
    #[serde(
        default,
        rename = "pictureurl",
        skip_serializing_if = "Option::is_none"
    )]
    pub pictureurl: Option<String>,
    /// Company name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    /// Terminal type (`pc`, `tv`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Stream id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<i64>,
    /// Media-server id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broad_cast_id: Option<i64>,
    /// Muted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_muted: Option<bool>,
    /// Host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_super_moderator: Option<bool>,
}

// ------------------------------------------------------------------ account (HTTP)

/// `getSign` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignReply {
    /// 200 on success.
    pub code: i64,
    /// The signature.
    #[serde(default)]
    pub data: Option<String>,
    /// Description.
    #[serde(default)]
    pub message: Option<String>,
}

/// The `params` JSON of `POST <host>/account`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "method")]
pub enum AccountParams {
    /// Name + password.
    #[serde(rename = "login")]
    Login {
        /// Account name.
        name: String,
        /// Password.
        password: String,
    },
    /// Third-party platform login.
    #[serde(rename = "dockingLogin")]
    DockingLogin {
        /// Third-party account.
        account: String,
        /// Display name.
        #[serde(rename = "userName", default)]
        user_name: Option<String>,
        /// The platform's appId.
        #[serde(default)]
        appkey: Option<String>,
        /// The signature from `getSign`.
        sign: String,
        /// Avatar.
        #[serde(default)]
        avatar: Option<String>,
    },
    /// End the session.
    #[serde(rename = "logout")]
    Logout {
        /// The session.
        #[serde(rename = "SID")]
        sid: String,
        /// The user.
        #[serde(rename = "userId")]
        user_id: i64,
    },
}

/// The answer to `login` / `dockingLogin`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginReply {
    /// 0 success; `login`: 1 bad name/password; `dockingLogin`: 1..4 (seed §6.2.2.3).
    pub result: i64,
    /// `account`.
    #[serde(default)]
    pub module: Option<String>,
    /// `login` or `dockingLogin`.
    #[serde(default)]
    pub method: Option<String>,
    /// Session id.
    #[serde(rename = "SID", default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
    /// `login`: the company.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<Company>,
    /// `dockingLogin`: the company.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation: Option<Company>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

// ------------------------------------------------------------------ call module

/// `call/doRegister`.
#[derive(Debug, Clone, Serialize, Deserialize)]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_module_method_and_req_id() {
        let f = frame(
            "call",
            "doRegister",
            Some(&Value::from("r1")),
            &Register {
                sid: "S".into(),
                user_id: 5,
                device_type: Some("tv".into()),
            },
        );
        let v: Value = serde_json::from_str(&f).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"module":"call","method":"doRegister","reqId":"r1","SID":"S","userId":5,"deviceType":"tv"})
        );
    }

    #[test]
    fn missing_and_mistyped_fields_are_named() {
        let env =
            Envelope::parse(r#"{"module":"meeting","method":"enter","roomId":"x","roomType":2}"#)
                .unwrap();
        let err = env.decode::<Enter>().unwrap_err();
        assert_eq!(err.to_string().split(':').next().unwrap(), "field `roomId`");
        let env =
            Envelope::parse(r#"{"module":"meeting","method":"enter","roomId":1,"roomType":2}"#)
                .unwrap();
        assert_eq!(
            env.decode::<Enter>().unwrap_err(),
            WireError::Field {
                field: "userId".into(),
                problem: "missing".into()
            }
        );
        let env = Envelope::parse(
            r#"{"module":"meeting","method":"EnterRoom","roomId":1,"client":{"name":"x"}}"#,
        )
        .unwrap();
        match env.decode::<ClientPush>().unwrap_err() {
            WireError::Field { field, .. } => assert_eq!(field, "client.id"),
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn envelopes_refuse_what_is_not_a_frame() {
        assert!(matches!(Envelope::parse("nope"), Err(WireError::Json(_))));
        assert_eq!(Envelope::parse("[1]"), Err(WireError::NotObject));
        assert!(matches!(
            Envelope::parse(r#"{"method":"x"}"#),
            Err(WireError::Field { .. })
        ));
        assert!(matches!(
            Envelope::parse(r#"{"module":1,"method":"x"}"#),
            Err(WireError::Field { .. })
        ));
        let big = format!(
            r#"{{"module":"a","method":"b","x":"{}"}}"#,
            "y".repeat(MAX_FRAME)
        );
        assert!(matches!(Envelope::parse(&big), Err(WireError::TooLarge(_))));
    }

    #[test]
    fn beans_use_the_seeds_field_names() {
        let c = Client {
            id: 1,
            pictureurl: Some("p".into()),
            is_super_moderator: Some(true),
            broad_cast_id: Some(1),
            ..Client::default()
        };
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"id":1,"pictureurl":"p","isSuperModerator":true,"broadCastId":1})
        );
        let r = Room {
            id: 2,
            super_mode_id: Some(1),
            is_has_pwd: Some(false),
            number_limit: Some(4),
            ..Room::default()
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({"id":2,"superModeId":1,"isHasPwd":false,"numberLimit":4})
        );
        let n = NewAppRoom {
            name: "r".into(),
            number_limit: 2,
            roomtype: 2,
            user_id: 1,
        };
        assert_eq!(
            serde_json::to_value(&n).unwrap(),
            serde_json::json!({"name":"r","numberLimit":2,"roomtype":2,"userId":1})
        );
    }
}
