//! What the core asks the outside world to do.

use serde::Serialize;

use super::input::MediaSignal;
use super::state::AgentState;
use super::types::{CallType, ClientId, ModeratorOrder, Peer, RoomId, UserId};

/// One thing to do, in order. Drain them with [`crate::core::Agent::poll_action`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Action {
    /// Send a signaling message.
    Signal(Outgoing),
    /// Drive the media engine.
    Media(MediaCommand),
    /// The reported state changed (publish it; drive the LEDs from it).
    State(AgentState),
    /// A call lifecycle event for dashboards and logs.
    Event(CallEvent),
}

/// A signaling message, backend-neutral; the adapter fills in its own ids and wire names.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Outgoing {
    /// `doEvent onRinging`.
    Ringing {
        /// The caller.
        to: Peer,
    },
    /// `doEvent onBusy`.
    Busy {
        /// The second caller.
        to: Peer,
    },
    /// `doAgree`.
    Agree {
        /// The caller.
        to: Peer,
        /// The room from the invite.
        room_id: Option<RoomId>,
        /// The call type from the invite.
        call_type: CallType,
    },
    /// `reject`.
    Reject {
        /// The caller.
        to: Peer,
    },
    /// `cancel`.
    Cancel {
        /// The user we were dialing.
        to: Peer,
    },
    /// `doEvent onConnected`: we entered; the callee enters too.
    Connected {
        /// The callee.
        to: Peer,
        /// The room.
        room_id: RoomId,
        /// Its type.
        room_type: CallType,
    },
    /// `room/newAppRoom`.
    CreateRoom {
        /// A name for the temporary room.
        name: String,
        /// Its type.
        call_type: CallType,
    },
    /// `doInvite`.
    Invite {
        /// The callee.
        to: UserId,
        /// The room we created.
        room_id: RoomId,
        /// Audio or video.
        call_type: CallType,
    },
    /// `meeting/enter`.
    Enter {
        /// The room.
        room_id: RoomId,
        /// Its type.
        room_type: CallType,
    },
    /// `meeting/exit`.
    Exit {
        /// The room.
        room_id: RoomId,
    },
    /// `meeting/muteMsg` naming ourselves: announce our microphone state.
    AnnounceMute {
        /// The room.
        room_id: RoomId,
        /// Muted or not.
        muted: bool,
    },
    /// `meeting/updateVideo`: announce our camera state.
    AnnounceVideo {
        /// The room.
        room_id: RoomId,
        /// Camera on or off.
        video: bool,
    },
    /// `meeting/shareScreen`: announce screen sharing (`None` stops it).
    AnnounceShare {
        /// The room.
        room_id: RoomId,
        /// Our client id while sharing.
        share_id: Option<ClientId>,
    },
    /// The result of a [`crate::core::SignalingEvent::RemoteCommand`], to its sender.
    CommandReply {
        /// The sender of the command.
        to: UserId,
        /// The command's tag.
        tag: String,
        /// `Err` says why it was refused.
        result: Result<(), String>,
    },
    /// A `media/*` message to one participant.
    Media {
        /// The room.
        room_id: RoomId,
        /// The participant.
        to: ClientId,
        /// What.
        signal: MediaSignal,
    },
}

/// What the media engine should do.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum MediaCommand {
    /// Open a WebRTC session with a participant.
    StartSession {
        /// The participant.
        peer: ClientId,
        /// Whether we send the offer (we entered later) or wait for one.
        role: SessionRole,
        /// Audio only or audio + video.
        call_type: CallType,
    },
    /// Negotiation from the participant.
    RemoteSignal {
        /// The participant.
        peer: ClientId,
        /// Offer, answer or candidate.
        signal: MediaSignal,
    },
    /// Close one session.
    StopSession {
        /// The participant.
        peer: ClientId,
    },
    /// A call is about to start (answered, or dialing): open the capture devices and start
    /// the encoders now, while signaling finishes, so the first session sends at once.
    Prepare,
    /// Close every session and release capture devices.
    StopAll,
    /// Microphone muted (silence is sent; no renegotiation).
    SetMicMuted(bool),
    /// Camera on (off sends black frames; no renegotiation).
    SetCameraOn(bool),
    /// Send the HDMI capture input instead of the camera.
    SetSharing(bool),
    /// Speaker volume 0–100.
    SetVolume(u8),
}

/// Who offers in a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionRole {
    /// We create the offer.
    Offerer,
    /// We answer the peer's offer.
    Answerer,
}

/// Call lifecycle events, as a dashboard shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CallEvent {
    /// An incoming call rings.
    Ringing {
        /// The caller.
        from: UserId,
        /// Whether the policy will answer it by itself.
        auto_answer: bool,
    },
    /// A second caller got `onBusy`.
    Busy {
        /// That caller.
        from: UserId,
    },
    /// We answered an incoming call.
    Answered {
        /// The caller.
        from: UserId,
        /// Whether the policy answered it.
        auto: bool,
    },
    /// We declined an incoming call.
    Rejected {
        /// The caller.
        from: UserId,
        /// Why.
        reason: RejectReason,
    },
    /// The user we dial is ringing.
    RemoteRinging {
        /// Who.
        to: UserId,
    },
    /// We are in a meeting room.
    InCall {
        /// The room.
        room_id: RoomId,
    },
    /// A call attempt or a call ended. Every attempt ends with exactly one of these.
    Ended {
        /// Why.
        reason: EndReason,
        /// The room, if we got that far.
        room_id: Option<RoomId>,
    },
    /// A text message reached the device.
    Message {
        /// The sender.
        from: UserId,
        /// The room, for a room message.
        room_id: Option<RoomId>,
        /// The application's message type.
        kind: i64,
        /// The text.
        text: String,
    },
    /// The room's moderator gave an order about our microphone or camera.
    Moderated {
        /// Which.
        order: ModeratorOrder,
    },
    /// A capture device came or went.
    Device {
        /// Which.
        kind: super::types::DeviceKind,
        /// Attached and working now.
        present: bool,
    },
    /// A source was plugged into the HDMI capture input (or unplugged).
    HdmiSignal {
        /// A source sends.
        present: bool,
    },
    /// The video encoder failed during a call and another profile's encoder took over (the
    /// call goes on).
    EncoderReplaced {
        /// The profile whose encoder failed.
        from: String,
        /// The profile whose encoder runs now.
        to: String,
        /// What failed.
        reason: String,
    },
    /// A participant's video decoder (a board's hardware decoder) failed during the call;
    /// their video is decoded in software from now on (the call goes on).
    DecoderReplaced {
        /// The participant.
        peer: ClientId,
        /// The decoder that failed.
        from: String,
        /// The decoder used now.
        to: String,
        /// What failed.
        reason: String,
    },
    /// Something failed that a person should know about; the agent carries on.
    Error {
        /// What.
        message: String,
    },
}

/// Why an incoming call was declined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// A local command (button, dashboard).
    Local,
    /// Nobody answered within `ring_timeout_s`.
    RingTimeout,
}

/// Why a call ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EndReason {
    /// Hung up here.
    LocalHangup,
    /// The last other participant left.
    RemoteLeft,
    /// The meeting was finished for everyone.
    Finished,
    /// The host removed us.
    Kicked,
    /// Our account entered the room from another device.
    Replaced,
    /// The server moved us into another room.
    MovedToAnotherRoom,
    /// The caller cancelled before we answered.
    Cancelled,
    /// We declined the incoming call.
    Rejected,
    /// Nobody answered before the ring timeout, so we declined.
    RingTimeout,
    /// We answered but the caller never entered the room.
    ConnectTimeout,
    /// The user we dialed declined.
    RemoteRejected,
    /// The user we dialed was busy.
    RemoteBusy,
    /// The user we dialed did not answer in time.
    NoAnswer,
    /// The user we dialed is not online.
    Offline,
    /// A request failed; the message says which.
    Error(String),
}
