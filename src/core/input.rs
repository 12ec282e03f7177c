//! What the core consumes: signaling events, local commands and media events.

use super::types::{CallType, ClientId, Member, ModeratorOrder, Peer, RoomId, RoomInfo, UserId};

/// Something the signaling backend reported, already translated from the wire.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SignalingEvent {
    /// Logged in and registered (also after every reconnect): the device can be called.
    Registered {
        /// Our own user id.
        user_id: UserId,
    },
    /// The control connection was lost; the adapter is reconnecting.
    Disconnected {
        /// Why, for logs and the dashboard.
        reason: String,
    },
    /// The server refused to log us in again (a revoked or expired token, a banned user):
    /// the device is in no room any more, so a call in progress ends. The adapter keeps
    /// trying, and a `Disconnected` follows.
    LoginRefused {
        /// What the server said, for logs and the dashboard.
        reason: String,
    },
    /// `doInvite`: someone calls us.
    Invite {
        /// The caller.
        from: Peer,
        /// Audio or video.
        call_type: CallType,
        /// The room the caller prepared, if any.
        room_id: Option<RoomId>,
    },
    /// `doEvent onRinging`: the user we dial is ringing.
    RemoteRinging {
        /// Who rings.
        from: UserId,
    },
    /// `doEvent onBusy`: the user we dial is busy.
    RemoteBusy {
        /// Who is busy.
        from: UserId,
    },
    /// `doAgree`: the user we dial answered.
    RemoteAgreed {
        /// Who answered.
        from: UserId,
        /// The room they will enter.
        room_id: Option<RoomId>,
    },
    /// `reject`: the user we dial declined.
    RemoteRejected {
        /// Who declined.
        from: UserId,
    },
    /// `cancel`: the caller gave up before we answered.
    RemoteCancelled {
        /// The caller.
        from: UserId,
    },
    /// `doEvent onConnected`: the caller entered the room; we enter too.
    RemoteConnected {
        /// The caller.
        from: UserId,
        /// The room to enter.
        room_id: Option<RoomId>,
        /// Its type.
        room_type: Option<CallType>,
    },
    /// Reply to our `doInvite`: whether the target was online.
    InviteResult {
        /// The invited user.
        to: Option<UserId>,
        /// `false`: the target is offline (`result:1`).
        delivered: bool,
    },
    /// Reply to `room/newAppRoom`.
    RoomCreated {
        /// The new room.
        room_id: RoomId,
    },
    /// A request of ours failed (non-zero `result`, or no reply in time).
    RequestFailed {
        /// Which request.
        request: RequestKind,
        /// The server's `result` code (0 when there was no reply).
        code: i64,
        /// The server's message, or what went wrong.
        message: String,
    },
    /// Reply to `meeting/enter`: we are in the room.
    Entered {
        /// The room.
        room: RoomInfo,
        /// Our own participant.
        me: Member,
        /// Everyone else already there.
        members: Vec<Member>,
    },
    /// `EnterRoom` push: someone joined.
    MemberEntered {
        /// The room.
        room_id: RoomId,
        /// Who.
        member: Member,
    },
    /// `EnterRoom` with `result:9`: our account entered the room from somewhere else, which
    /// replaces this device in the meeting.
    ReplacedByOtherLogin {
        /// The room.
        room_id: RoomId,
    },
    /// `ExitRoom` push: someone left.
    MemberLeft {
        /// The room.
        room_id: RoomId,
        /// Who.
        client_id: ClientId,
    },
    /// `onFinish`: the meeting was ended for everyone.
    Finished {
        /// The room.
        room_id: RoomId,
        /// Who ended it.
        by: Option<UserId>,
    },
    /// `tiren`: a participant was removed.
    Kicked {
        /// The room.
        room_id: RoomId,
        /// Who must leave.
        client_id: ClientId,
    },
    /// `onMute`: a participant's microphone state.
    Muted {
        /// The room.
        room_id: RoomId,
        /// Whose microphone.
        client_id: ClientId,
        /// Muted or not.
        muted: bool,
        /// `super:"fromSuper"`: an order from the host, which the named device obeys.
        from_host: bool,
    },
    /// `onMuteAll`: everyone's microphone.
    MutedAll {
        /// The room.
        room_id: RoomId,
        /// Muted or not.
        muted: bool,
        /// `super:"fromSuper"`: an order from the host.
        from_host: bool,
    },
    /// `onCompere`: the host changed.
    HostChanged {
        /// The room.
        room_id: RoomId,
        /// The new host.
        client_id: ClientId,
    },
    /// The server put us into a room without asking (a forced join by the customer's back
    /// end): we are entering it, leaving any other call.
    PulledIntoRoom {
        /// The room.
        room_id: RoomId,
        /// Its type.
        call_type: CallType,
    },
    /// An order about our microphone or camera from whoever runs the room.
    Moderated {
        /// What to do.
        order: ModeratorOrder,
    },
    /// A text message to the device (one-to-one, or to a room it is in).
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
    /// A command sent by a remote user (a back end that speaks only signaling); the result
    /// goes back to them as [`crate::core::Outgoing::CommandReply`].
    RemoteCommand {
        /// Who sent it (the reply goes to them).
        from: UserId,
        /// Echoed in the reply so the sender can match it.
        tag: String,
        /// What to do.
        command: Command,
    },
    /// A `media/*` message from another participant.
    Media {
        /// The room.
        room_id: RoomId,
        /// The sending participant.
        from: ClientId,
        /// Offer, answer, candidate or bye.
        signal: MediaSignal,
    },
}

/// Which request a [`SignalingEvent::RequestFailed`] refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestKind {
    /// `room/newAppRoom`.
    CreateRoom,
    /// `call/doInvite`.
    Invite,
    /// `meeting/enter`.
    Enter,
    /// Anything else (mute announcements, call events): failure is logged only.
    Other,
}

/// WebRTC negotiation messages exchanged per pair of participants. Its `Debug` shows an SDP's
/// size, not its text: the text holds the session's ICE password.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediaSignal {
    /// An SDP offer.
    Offer {
        /// The SDP text.
        sdp: String,
    },
    /// An SDP answer.
    Answer {
        /// The SDP text.
        sdp: String,
    },
    /// A trickled ICE candidate; an empty `candidate` means end of candidates.
    Candidate {
        /// `candidate:…` line, or empty.
        candidate: String,
        /// The m-line index it belongs to.
        sdp_mline_index: u32,
        /// The m-line's mid, when known.
        sdp_mid: Option<String>,
    },
    /// The peer closed its connection with us.
    Bye,
    /// The peer asks for a quality layer of the video we send it (`switchVideoBySim`): 0 small,
    /// 1 medium, 2 large (the full picture).
    Quality {
        /// 0, 1 or 2.
        layer: u8,
    },
}

impl std::fmt::Debug for MediaSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MediaSignal::Offer { sdp } => write!(f, "Offer {{ sdp: <{} bytes> }}", sdp.len()),
            MediaSignal::Answer { sdp } => write!(f, "Answer {{ sdp: <{} bytes> }}", sdp.len()),
            MediaSignal::Candidate {
                candidate,
                sdp_mline_index,
                sdp_mid,
            } => f
                .debug_struct("Candidate")
                .field("candidate", candidate)
                .field("sdp_mline_index", sdp_mline_index)
                .field("sdp_mid", sdp_mid)
                .finish(),
            MediaSignal::Bye => f.write_str("Bye"),
            MediaSignal::Quality { layer } => write!(f, "Quality {{ layer: {layer} }}"),
        }
    }
}

/// A local command: from a button, an MQTT dashboard, the CLI or a test.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Command {
    /// Answer the ringing call now.
    Answer,
    /// Decline the ringing call.
    Reject,
    /// End whatever call is going on: reject when ringing, cancel when dialing, leave when in
    /// a room.
    Hangup,
    /// Call a user: create a room, invite them, enter when they agree.
    Dial {
        /// Who.
        user: UserId,
    },
    /// Enter a meeting room by id.
    Join {
        /// Which room.
        room: RoomId,
    },
    /// Leave the current room (the same as hang-up while in a room).
    Leave,
    /// Mute the microphone.
    Mute,
    /// Unmute the microphone.
    Unmute,
    /// Turn the camera on.
    CameraOn,
    /// Turn the camera off.
    CameraOff,
    /// Share the HDMI capture input as the screen.
    ShareStart,
    /// Stop sharing.
    ShareStop,
    /// Speaker volume, 0–100.
    Volume {
        /// The level.
        level: u8,
    },
}

/// Something the media engine reported.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum MediaEvent {
    /// A session produced SDP or a candidate to send to its peer.
    LocalSignal {
        /// The participant the session talks to.
        peer: ClientId,
        /// What to send.
        signal: MediaSignal,
    },
    /// A session's ICE/DTLS connection is up.
    SessionConnected {
        /// Which.
        peer: ClientId,
    },
    /// The first video frame from a participant was decoded: they can be seen.
    RemoteVideo {
        /// Which.
        peer: ClientId,
    },
    /// A session failed; other sessions are unaffected.
    SessionFailed {
        /// Which.
        peer: ClientId,
        /// What happened.
        reason: String,
    },
    /// A capture device came or went (`present`).
    Device {
        /// Which.
        kind: super::types::DeviceKind,
        /// Attached and working now.
        present: bool,
    },
    /// The HDMI capture input's signal came or went.
    HdmiSignal {
        /// A source sends.
        present: bool,
    },
    /// The video encoder failed during the call and another took over.
    EncoderReplaced {
        /// The profile whose encoder failed.
        from: String,
        /// The profile whose encoder runs now.
        to: String,
        /// What failed.
        reason: String,
    },
    /// A participant's video decoder failed during the call and a software one took over.
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
    /// The media engine failed as a whole (e.g. a source could not start).
    EngineError {
        /// What happened.
        message: String,
    },
}
