//! The call/room state machine.

mod remote;

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use thiserror::Error;
use tracing::{debug, info, warn};

use super::action::{
    Action, CallEvent, EndReason, MediaCommand, Outgoing, RejectReason, SessionRole,
};
use super::input::{Command, MediaEvent, MediaSignal, RequestKind, SignalingEvent};
use super::policy::AnswerPolicy;
use super::state::{AgentState, CallPhase, MediaState, MemberState};
use super::timers::{Timer, Timers};
use super::types::{CallType, ClientId, Member, Peer, RoomId, RoomInfo, UserId};

/// How often a failed media session we offered is offered again before it is reported failed.
pub const MEDIA_RETRIES: u32 = 3;

/// What the core needs to know from the configuration.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// The auto-answer policy.
    pub policy: AnswerPolicy,
    /// The device's display name, used to name rooms it creates when dialing.
    pub device_name: String,
    /// After we agreed to a call, how long the caller has to enter the room.
    pub connect_timeout: Duration,
    /// The signaling backend's name, reported in the state.
    pub backend: &'static str,
    /// Media runs as one session per participant, negotiated over signaling (WebRTC). Off
    /// for backends whose rooms carry media through a server of their own.
    pub per_participant_media: bool,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            policy: AnswerPolicy::default(),
            device_name: "roomagent".into(),
            connect_timeout: Duration::from_secs(20),
            backend: "rtcpeer",
            per_participant_media: true,
        }
    }
}

/// Why a local command was refused. Nothing changed when a command is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CommandError {
    /// `answer`/`reject` without a ringing call.
    #[error("no incoming call is ringing")]
    NotRinging,
    /// `hangup`/`leave` without a call.
    #[error("there is no call to end")]
    NoCall,
    /// `dial`/`join` during another call.
    #[error("already in a call ({0:?}); hang up first")]
    Busy(CallPhase),
    /// `dial`/`join` before registration.
    #[error("not registered with the signaling server yet; try again when registered")]
    NotRegistered,
    /// `dial` naming ourselves.
    #[error("cannot dial our own user id {0}")]
    DialSelf(UserId),
    /// `share_start`/`share_stop` outside a room.
    #[error("screen sharing needs a call in progress")]
    NotInCall,
    /// `volume` above 100.
    #[error("volume {0} is out of range 0-100")]
    VolumeOutOfRange(u8),
    /// `unmute` while the room's moderator forbids audio.
    #[error("the room's moderator forbade sending audio; it cannot be unmuted until they allow it")]
    AudioForbidden,
    /// `camera_on` while the room's moderator forbids video.
    #[error("the room's moderator forbade sending video; the camera stays off until they allow it")]
    VideoForbidden,
}

/// The agent core: call lifecycle, room membership, mute/camera state and auto-answer.
///
/// # Contract
///
/// The core is sans-IO. The caller (the daemon, or a test):
///
/// 1. feeds every input with the instant it happened: [`Agent::handle_signaling`],
///    [`Agent::handle_media`], [`Agent::command`];
/// 2. after each input drains [`Agent::poll_action`] until `None` and carries the actions out
///    in order;
/// 3. sleeps until [`Agent::next_timeout`] (recomputed after every input) and then calls
///    [`Agent::handle_timeout`] with the current instant.
///
/// The core never reads the clock, never blocks and never fails on bad input: events that do
/// not fit the current state are ignored (and logged at debug level). Commands that cannot be
/// carried out return a [`CommandError`] and change nothing.
#[derive(Debug)]
pub struct Agent {
    cfg: CoreConfig,
    me: Option<UserId>,
    registered: bool,
    signaling_error: Option<String>,
    phase: Phase,
    mic_muted: bool,
    muted_by_host: bool,
    audio_forbidden: bool,
    video_forbidden: bool,
    camera_on: bool,
    sharing: bool,
    volume: u8,
    timers: Timers,
    actions: VecDeque<Action>,
    published: Option<AgentState>,
}

#[derive(Debug, Clone)]
enum Phase {
    Idle,
    Ringing(Incoming),
    /// Agreed; waiting for the caller's `onConnected`.
    Answering(Incoming),
    Dialing(Dialing),
    Meeting(Meeting),
}

#[derive(Debug, Clone)]
struct Incoming {
    caller: Peer,
    room_id: Option<RoomId>,
    call_type: CallType,
}

#[derive(Debug, Clone)]
struct Dialing {
    target: Peer,
    call_type: CallType,
    step: DialStep,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DialStep {
    CreatingRoom,
    Inviting(RoomId),
    RemoteRinging(RoomId),
}

impl DialStep {
    fn room(self) -> Option<RoomId> {
        match self {
            DialStep::CreatingRoom => None,
            DialStep::Inviting(r) | DialStep::RemoteRinging(r) => Some(r),
        }
    }
}

/// How we came to be in a room: decides who we notify after entering.
#[derive(Debug, Clone)]
enum Origin {
    Answered(Peer),
    Dialed(Peer),
    Joined,
}

#[derive(Debug, Clone)]
struct Meeting {
    room_id: RoomId,
    room_type: CallType,
    origin: Origin,
    /// `Some` once the server confirmed our entry; `None` while (re-)entering.
    me: Option<ClientId>,
    entered_once: bool,
    room: Option<RoomInfo>,
    members: BTreeMap<ClientId, Member>,
    sessions: BTreeMap<ClientId, MediaState>,
    /// Sessions we offered, with how often each was offered again after failing. Only the
    /// offerer restarts a failed session (two restarting offerers would both turn answerer
    /// on each other's offer); the answerer waits for the new offer.
    offered: BTreeMap<ClientId, u32>,
    /// Participants whose video has been decoded.
    video_in: std::collections::BTreeSet<ClientId>,
    /// Whether anyone else was ever in the room with us: the last one leaving ends the call.
    had_peers: bool,
}

impl Meeting {
    fn new(room_id: RoomId, room_type: CallType, origin: Origin) -> Meeting {
        Meeting {
            room_id,
            room_type,
            origin,
            me: None,
            entered_once: false,
            room: None,
            members: BTreeMap::new(),
            sessions: BTreeMap::new(),
            offered: BTreeMap::new(),
            video_in: Default::default(),
            had_peers: false,
        }
    }

    fn present(&self) -> bool {
        self.me.is_some()
    }

    fn peer(&self) -> Option<UserId> {
        match &self.origin {
            Origin::Answered(p) | Origin::Dialed(p) => Some(p.user_id),
            Origin::Joined => None,
        }
    }
}

impl Agent {
    /// A fresh, idle, unregistered agent.
    pub fn new(cfg: CoreConfig) -> Agent {
        let mut agent = Agent {
            cfg,
            me: None,
            registered: false,
            signaling_error: None,
            phase: Phase::Idle,
            mic_muted: false,
            muted_by_host: false,
            audio_forbidden: false,
            video_forbidden: false,
            camera_on: true,
            sharing: false,
            volume: 80,
            timers: Timers::default(),
            actions: VecDeque::new(),
            published: None,
        };
        agent.publish_state();
        agent
    }

    /// Applies a changed configuration (answer policy, names, timeouts). Calls in progress
    /// keep their armed timers; the new values apply from the next call.
    pub fn reconfigure(&mut self, cfg: CoreConfig) {
        self.cfg = cfg;
    }

    /// The next queued action, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`Agent::handle_timeout`] must be called next, if anything is pending.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    /// The current reported state.
    pub fn state(&self) -> AgentState {
        let (call, peer, room_id, members) = match &self.phase {
            Phase::Idle => (CallPhase::Idle, None, None, Vec::new()),
            Phase::Ringing(i) => (
                CallPhase::Ringing,
                Some(i.caller.user_id),
                i.room_id,
                Vec::new(),
            ),
            Phase::Answering(i) => (
                CallPhase::Answering,
                Some(i.caller.user_id),
                i.room_id,
                Vec::new(),
            ),
            Phase::Dialing(d) => (
                CallPhase::Dialing,
                Some(d.target.user_id),
                d.step.room(),
                Vec::new(),
            ),
            Phase::Meeting(m) => (
                if m.present() {
                    CallPhase::InCall
                } else {
                    CallPhase::Connecting
                },
                m.peer(),
                Some(m.room_id),
                m.members
                    .values()
                    .map(|member| MemberState {
                        client_id: member.client_id,
                        name: member.name.clone(),
                        muted: member.muted,
                        host: member.host,
                        media: m
                            .sessions
                            .get(&member.client_id)
                            .copied()
                            .unwrap_or(MediaState::None),
                        video_in: m.video_in.contains(&member.client_id),
                    })
                    .collect(),
            ),
        };
        AgentState {
            backend: self.cfg.backend,
            registered: self.registered,
            signaling_error: self.signaling_error.clone(),
            user_id: self.me,
            call,
            peer,
            room_id,
            members,
            mic_muted: self.mic_muted,
            muted_by_host: self.muted_by_host,
            audio_forbidden: self.audio_forbidden,
            video_forbidden: self.video_forbidden,
            camera_on: self.camera_on,
            sharing: self.sharing,
            volume: self.volume,
        }
    }

    // ----------------------------------------------------------------- inputs

    /// Fires the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        for timer in self.timers.take_expired(now) {
            self.on_timer(now, timer);
        }
        self.publish_state();
    }

    /// A signaling event happened at `now`.
    pub fn handle_signaling(&mut self, now: Instant, event: SignalingEvent) {
        self.on_signaling(now, event);
        self.publish_state();
    }

    /// A media event happened at `now`.
    pub fn handle_media(&mut self, now: Instant, event: MediaEvent) {
        let _ = now;
        self.on_media(event);
        self.publish_state();
    }

    /// A local command at `now`. On error nothing changed.
    pub fn command(&mut self, now: Instant, command: Command) -> Result<(), CommandError> {
        let result = self.on_command(now, command);
        self.publish_state();
        result
    }

    // ----------------------------------------------------------------- helpers

    fn send(&mut self, out: Outgoing) {
        self.actions.push_back(Action::Signal(out));
    }

    fn media(&mut self, cmd: MediaCommand) {
        self.actions.push_back(Action::Media(cmd));
    }

    fn event(&mut self, event: CallEvent) {
        info!(?event, "call event");
        self.actions.push_back(Action::Event(event));
    }

    fn publish_state(&mut self) {
        let state = self.state();
        if self.published.as_ref() != Some(&state) {
            self.published = Some(state.clone());
            self.actions.push_back(Action::State(state));
        }
    }

    fn meeting_mut(&mut self, room_id: RoomId) -> Option<&mut Meeting> {
        match &mut self.phase {
            Phase::Meeting(m) if m.room_id == room_id => Some(m),
            _ => None,
        }
    }

    /// Ends whatever call is going on and returns to idle. Every call attempt ends here, so
    /// exactly one `Ended` event is emitted per attempt.
    fn end_call(&mut self, reason: EndReason) {
        let room_id = match &self.phase {
            Phase::Idle => return,
            Phase::Ringing(i) | Phase::Answering(i) => i.room_id,
            Phase::Dialing(d) => d.step.room(),
            Phase::Meeting(m) => Some(m.room_id),
        };
        if matches!(self.phase, Phase::Meeting(_)) || self.sharing {
            self.media(MediaCommand::StopAll);
        }
        self.timers.cancel_all();
        self.phase = Phase::Idle;
        if self.mic_muted {
            self.mic_muted = false;
            self.media(MediaCommand::SetMicMuted(false));
        }
        self.muted_by_host = false;
        self.audio_forbidden = false;
        self.video_forbidden = false;
        self.sharing = false;
        self.event(CallEvent::Ended { reason, room_id });
    }

    fn leave_room(&mut self, reason: EndReason) {
        if let Phase::Meeting(m) = &self.phase {
            let room_id = m.room_id;
            self.send(Outgoing::Exit { room_id });
        }
        self.end_call(reason);
    }

    fn start_incoming_media(&mut self) {
        // Each call starts from the answer policy; a mute pressed while idle carries over.
        if self.cfg.policy.answer_muted && !self.mic_muted {
            self.mic_muted = true;
        }
        self.media(MediaCommand::SetMicMuted(self.mic_muted));
    }

    fn answer(&mut self, now: Instant, auto: bool) {
        let Phase::Ringing(incoming) = &self.phase else {
            return;
        };
        let incoming = incoming.clone();
        self.timers.cancel(Timer::AutoAnswer);
        self.timers.cancel(Timer::RingTimeout);
        self.send(Outgoing::Agree {
            to: incoming.caller.clone(),
            room_id: incoming.room_id,
            call_type: incoming.call_type,
        });
        self.timers
            .arm(Timer::ConnectTimeout, now + self.cfg.connect_timeout);
        self.event(CallEvent::Answered {
            from: incoming.caller.user_id,
            auto,
        });
        self.start_incoming_media();
        self.phase = Phase::Answering(incoming);
    }

    fn reject(&mut self, reason: RejectReason) {
        let (Phase::Ringing(incoming) | Phase::Answering(incoming)) = &self.phase else {
            return;
        };
        let caller = incoming.caller.clone();
        self.send(Outgoing::Reject { to: caller.clone() });
        self.event(CallEvent::Rejected {
            from: caller.user_id,
            reason,
        });
        self.end_call(match reason {
            RejectReason::Local => EndReason::Rejected,
            RejectReason::RingTimeout => EndReason::RingTimeout,
        });
    }

    /// Ends the call in whatever phase it is: declines a ringing call, cancels a dial, leaves
    /// a room.
    fn hang_up(&mut self, reason: EndReason) {
        match &self.phase {
            Phase::Idle => {}
            Phase::Ringing(_) | Phase::Answering(_) => self.reject(RejectReason::Local),
            Phase::Dialing(d) => {
                if d.step != DialStep::CreatingRoom {
                    let to = d.target.clone();
                    self.send(Outgoing::Cancel { to });
                }
                self.end_call(reason);
            }
            Phase::Meeting(_) => self.leave_room(reason),
        }
    }

    fn enter(&mut self, meeting: Meeting) {
        self.send(Outgoing::Enter {
            room_id: meeting.room_id,
            room_type: meeting.room_type,
        });
        self.phase = Phase::Meeting(meeting);
    }

    // ----------------------------------------------------------------- timers

    fn on_timer(&mut self, now: Instant, timer: Timer) {
        debug!(?timer, "timer fired");
        match timer {
            Timer::AutoAnswer => self.answer(now, true),
            Timer::RingTimeout => {
                if matches!(self.phase, Phase::Ringing(_)) {
                    self.reject(RejectReason::RingTimeout);
                }
            }
            Timer::ConnectTimeout => {
                if matches!(self.phase, Phase::Answering(_)) {
                    self.end_call(EndReason::ConnectTimeout);
                }
            }
            Timer::DialTimeout => {
                if let Phase::Dialing(d) = &self.phase {
                    let to = d.target.clone();
                    if d.step != DialStep::CreatingRoom {
                        self.send(Outgoing::Cancel { to });
                    }
                    self.end_call(EndReason::NoAnswer);
                }
            }
        }
    }

    // ----------------------------------------------------------------- signaling

    fn on_signaling(&mut self, now: Instant, event: SignalingEvent) {
        match event {
            SignalingEvent::Registered { user_id } => self.on_registered(user_id),
            SignalingEvent::Disconnected { reason } => {
                if self.registered {
                    warn!(%reason, "signaling connection lost; the call (if any) continues");
                }
                self.registered = false;
                self.signaling_error = Some(reason);
            }
            SignalingEvent::Invite {
                from,
                call_type,
                room_id,
            } => self.on_invite(now, from, call_type, room_id),
            SignalingEvent::RemoteCancelled { from } => match &self.phase {
                Phase::Ringing(i) | Phase::Answering(i) if i.caller.user_id == from => {
                    self.end_call(EndReason::Cancelled)
                }
                _ => debug!(%from, "cancel for a call we do not have"),
            },
            SignalingEvent::RemoteRinging { from } => {
                if let Phase::Dialing(d) = &mut self.phase
                    && d.target.user_id == from
                    && let DialStep::Inviting(room) = d.step
                {
                    d.step = DialStep::RemoteRinging(room);
                    self.event(CallEvent::RemoteRinging { to: from });
                }
            }
            SignalingEvent::RemoteBusy { from } => {
                if self.dialing(from) {
                    self.end_call(EndReason::RemoteBusy);
                }
            }
            SignalingEvent::RemoteRejected { from } => {
                if self.dialing(from) {
                    self.end_call(EndReason::RemoteRejected);
                }
            }
            SignalingEvent::RemoteAgreed { from, room_id } => self.on_remote_agreed(from, room_id),
            SignalingEvent::RemoteConnected {
                from,
                room_id,
                room_type,
            } => self.on_remote_connected(from, room_id, room_type),
            SignalingEvent::InviteResult { delivered, .. } => {
                if !delivered && matches!(self.phase, Phase::Dialing(_)) {
                    self.end_call(EndReason::Offline);
                }
            }
            SignalingEvent::RoomCreated { room_id } => self.on_room_created(now, room_id),
            SignalingEvent::RequestFailed {
                request,
                code,
                message,
            } => self.on_request_failed(request, code, message),
            SignalingEvent::Entered { room, me, members } => self.on_entered(room, me, members),
            SignalingEvent::MemberEntered { room_id, member } => {
                self.on_member_entered(room_id, member)
            }
            SignalingEvent::ReplacedByOtherLogin { room_id } => {
                if self.meeting_mut(room_id).is_some() {
                    self.end_call(EndReason::Replaced);
                }
            }
            SignalingEvent::MemberLeft { room_id, client_id } => {
                self.on_member_left(room_id, client_id)
            }
            SignalingEvent::Finished { room_id, .. } => {
                if self.meeting_mut(room_id).is_some() {
                    self.end_call(EndReason::Finished);
                }
            }
            SignalingEvent::Kicked { room_id, client_id } => {
                let is_me = self
                    .meeting_mut(room_id)
                    .is_some_and(|m| m.me == Some(client_id));
                if is_me {
                    self.leave_room(EndReason::Kicked);
                } else if let Some(m) = self.meeting_mut(room_id) {
                    debug!(
                        %client_id,
                        room = %m.room_id,
                        "another participant was removed"
                    );
                }
            }
            SignalingEvent::Muted {
                room_id,
                client_id,
                muted,
                from_host,
            } => self.on_muted(room_id, client_id, muted, from_host),
            SignalingEvent::MutedAll {
                room_id,
                muted,
                from_host,
            } => {
                let me = self.meeting_mut(room_id).and_then(|m| m.me);
                if let Some(me) = me {
                    self.on_muted(room_id, me, muted, from_host);
                }
            }
            SignalingEvent::HostChanged { room_id, client_id } => {
                if let Some(m) = self.meeting_mut(room_id) {
                    for member in m.members.values_mut() {
                        member.host = member.client_id == client_id;
                    }
                    if let Some(room) = &mut m.room {
                        room.host_id = Some(client_id);
                    }
                }
            }
            SignalingEvent::PulledIntoRoom { room_id, call_type } => {
                self.on_pulled(room_id, call_type)
            }
            SignalingEvent::Moderated { order } => self.on_moderated(order),
            SignalingEvent::Message {
                from,
                room_id,
                kind,
                text,
            } => self.event(CallEvent::Message {
                from,
                room_id,
                kind,
                text,
            }),
            SignalingEvent::RemoteCommand { from, tag, command } => {
                self.on_remote_command(now, from, tag, command)
            }
            SignalingEvent::Media {
                room_id,
                from,
                signal,
            } => self.on_remote_media(room_id, from, signal),
        }
    }

    fn dialing(&self, from: UserId) -> bool {
        matches!(&self.phase, Phase::Dialing(d) if d.target.user_id == from)
    }

    fn on_registered(&mut self, user_id: UserId) {
        self.me = Some(user_id);
        self.registered = true;
        self.signaling_error = None;
        // Restore what the server forgot: re-enter the room, re-send a pending dial step.
        match &mut self.phase {
            Phase::Meeting(m) => {
                info!(room = %m.room_id, "re-entering the room after reconnect");
                m.me = None;
                let (room_id, room_type) = (m.room_id, m.room_type);
                self.send(Outgoing::Enter { room_id, room_type });
            }
            Phase::Dialing(d) => {
                let out = match d.step {
                    DialStep::CreatingRoom => Outgoing::CreateRoom {
                        name: self.cfg.device_name.clone(),
                        call_type: d.call_type,
                    },
                    DialStep::Inviting(room_id) | DialStep::RemoteRinging(room_id) => {
                        Outgoing::Invite {
                            to: d.target.user_id,
                            room_id,
                            call_type: d.call_type,
                        }
                    }
                };
                self.send(out);
            }
            Phase::Idle | Phase::Ringing(_) | Phase::Answering(_) => {}
        }
    }

    fn on_invite(
        &mut self,
        now: Instant,
        from: Peer,
        call_type: CallType,
        room_id: Option<RoomId>,
    ) {
        if Some(from.user_id) == self.me {
            debug!("ignoring an invite from ourselves");
            return;
        }
        match &self.phase {
            Phase::Idle => {
                let auto_answer = self.cfg.policy.auto_answers(from.user_id);
                self.send(Outgoing::Ringing { to: from.clone() });
                self.timers
                    .arm(Timer::RingTimeout, now + self.cfg.policy.ring_timeout);
                self.event(CallEvent::Ringing {
                    from: from.user_id,
                    auto_answer,
                });
                self.phase = Phase::Ringing(Incoming {
                    caller: from,
                    room_id,
                    call_type,
                });
                if auto_answer {
                    if self.cfg.policy.delay.is_zero() {
                        self.answer(now, true);
                    } else {
                        self.timers
                            .arm(Timer::AutoAnswer, now + self.cfg.policy.delay);
                    }
                }
            }
            Phase::Ringing(i) if i.caller.user_id == from.user_id && i.room_id == room_id => {
                // The caller repeated its invite (e.g. after its own reconnect): ring again.
                self.send(Outgoing::Ringing { to: from });
            }
            _ => {
                self.send(Outgoing::Busy { to: from.clone() });
                self.event(CallEvent::Busy { from: from.user_id });
            }
        }
    }

    fn on_remote_agreed(&mut self, from: UserId, room_id: Option<RoomId>) {
        let Phase::Dialing(d) = &self.phase else {
            return;
        };
        if d.target.user_id != from {
            return;
        }
        let Some(room_id) = d.step.room().or(room_id) else {
            return;
        };
        let (target, call_type) = (d.target.clone(), d.call_type);
        self.timers.cancel(Timer::DialTimeout);
        self.enter(Meeting::new(room_id, call_type, Origin::Dialed(target)));
    }

    fn on_remote_connected(
        &mut self,
        from: UserId,
        room_id: Option<RoomId>,
        room_type: Option<CallType>,
    ) {
        let Phase::Answering(i) = &self.phase else {
            debug!(%from, "onConnected without an answered call");
            return;
        };
        if i.caller.user_id != from {
            return;
        }
        let Some(room_id) = room_id.or(i.room_id) else {
            let caller = i.caller.user_id;
            warn!(%caller, "onConnected without a room id; cannot enter");
            self.event(CallEvent::Error {
                message: format!("caller {caller} connected without naming a room"),
            });
            return;
        };
        let origin = Origin::Answered(i.caller.clone());
        let room_type = room_type.unwrap_or(i.call_type);
        self.timers.cancel(Timer::ConnectTimeout);
        self.enter(Meeting::new(room_id, room_type, origin));
    }

    fn on_room_created(&mut self, now: Instant, room_id: RoomId) {
        let Phase::Dialing(d) = &mut self.phase else {
            return;
        };
        if d.step != DialStep::CreatingRoom {
            return;
        }
        d.step = DialStep::Inviting(room_id);
        let (to, call_type) = (d.target.user_id, d.call_type);
        self.send(Outgoing::Invite {
            to,
            room_id,
            call_type,
        });
        self.timers
            .arm(Timer::DialTimeout, now + self.cfg.policy.ring_timeout);
    }

    fn on_request_failed(&mut self, request: RequestKind, code: i64, message: String) {
        let text = format!("{request:?} failed (result {code}): {message}");
        match (request, &self.phase) {
            (RequestKind::CreateRoom | RequestKind::Invite, Phase::Dialing(_)) => {
                self.end_call(EndReason::Error(text))
            }
            (RequestKind::Enter, Phase::Meeting(m)) if !m.present() => {
                self.end_call(EndReason::Error(text))
            }
            (RequestKind::Enter, Phase::Answering(_)) => self.end_call(EndReason::Error(text)),
            _ => {
                warn!(%text, "signaling request failed");
                self.event(CallEvent::Error { message: text });
            }
        }
    }

    fn on_entered(&mut self, room: RoomInfo, me: Member, members: Vec<Member>) {
        let mic_muted = self.mic_muted;
        let camera_on = self.camera_on;
        let sharing = self.sharing;
        let mut starts = Vec::new();
        let mut stops = Vec::new();
        let mut notify = None;
        let first;
        let room_id = room.id;
        {
            let Phase::Meeting(m) = &mut self.phase else {
                debug!(room = %room.id, "enter reply without a meeting in progress");
                return;
            };
            if m.room_id != room.id {
                debug!(room = %room.id, "enter reply for another room");
                return;
            }
            first = !m.entered_once;
            m.entered_once = true;
            m.me = Some(me.client_id);
            m.room = Some(room);
            let fresh: BTreeMap<ClientId, Member> = members
                .into_iter()
                .filter(|member| member.client_id != me.client_id)
                .map(|member| (member.client_id, member))
                .collect();
            // Sessions with participants who are gone are closed; everyone present that we
            // have no session with gets an offer, because we are the one entering later.
            for peer in m.sessions.keys() {
                if !fresh.contains_key(peer) {
                    stops.push(*peer);
                }
            }
            for peer in &stops {
                m.sessions.remove(peer);
                m.offered.remove(peer);
                m.video_in.remove(peer);
            }
            for peer in fresh.keys().filter(|_| self.cfg.per_participant_media) {
                if !m.sessions.contains_key(peer) {
                    m.sessions.insert(*peer, MediaState::Connecting);
                    m.offered.insert(*peer, 0);
                    starts.push(*peer);
                }
            }
            m.had_peers |= !fresh.is_empty();
            m.members = fresh;
            if first && let Origin::Dialed(target) = &m.origin {
                notify = Some(target.clone());
            }
        }
        let room_type = match &self.phase {
            Phase::Meeting(m) => m.room_type,
            _ => CallType::Video,
        };
        if first {
            if matches!(
                self.meeting_origin(),
                Some(Origin::Joined | Origin::Dialed(_))
            ) {
                self.media(MediaCommand::SetMicMuted(mic_muted));
            }
            self.event(CallEvent::InCall { room_id });
        }
        if let Some(to) = notify {
            self.send(Outgoing::Connected {
                to,
                room_id,
                room_type,
            });
        }
        for peer in stops {
            self.media(MediaCommand::StopSession { peer });
        }
        for peer in starts {
            self.media(MediaCommand::StartSession {
                peer,
                role: SessionRole::Offerer,
                call_type: room_type,
            });
        }
        // Tell the room what it cannot see from the media alone.
        if mic_muted {
            self.send(Outgoing::AnnounceMute {
                room_id,
                muted: true,
            });
        }
        if !camera_on && room_type.has_video() {
            self.send(Outgoing::AnnounceVideo {
                room_id,
                video: false,
            });
        }
        if sharing {
            let share_id = self.my_client_id();
            self.send(Outgoing::AnnounceShare { room_id, share_id });
        }
    }

    fn meeting_origin(&self) -> Option<&Origin> {
        match &self.phase {
            Phase::Meeting(m) => Some(&m.origin),
            _ => None,
        }
    }

    fn my_client_id(&self) -> Option<ClientId> {
        match &self.phase {
            Phase::Meeting(m) => m.me,
            _ => None,
        }
    }

    fn on_member_entered(&mut self, room_id: RoomId, member: Member) {
        let mut stop = None;
        {
            let Some(m) = self.meeting_mut(room_id) else {
                return;
            };
            if Some(member.client_id) == m.me {
                return;
            }
            // A participant we already had a session with came back (its connection dropped):
            // the old session is dead; it will offer a new one since it entered later.
            m.video_in.remove(&member.client_id);
            if m.sessions.remove(&member.client_id).is_some() {
                stop = Some(member.client_id);
            }
            m.had_peers = true;
            m.members.insert(member.client_id, member);
        }
        if let Some(peer) = stop {
            self.media(MediaCommand::StopSession { peer });
        }
    }

    fn on_member_left(&mut self, room_id: RoomId, client_id: ClientId) {
        let (had_session, now_alone) = {
            let Some(m) = self.meeting_mut(room_id) else {
                return;
            };
            if Some(client_id) == m.me {
                return;
            }
            let known = m.members.remove(&client_id).is_some();
            m.video_in.remove(&client_id);
            let had_session = m.sessions.remove(&client_id).is_some();
            (had_session, known && m.members.is_empty() && m.had_peers)
        };
        if had_session {
            self.media(MediaCommand::StopSession { peer: client_id });
        }
        if now_alone {
            self.leave_room(EndReason::RemoteLeft);
        }
    }

    fn on_muted(&mut self, room_id: RoomId, client_id: ClientId, muted: bool, from_host: bool) {
        let Some(m) = self.meeting_mut(room_id) else {
            return;
        };
        if m.me != Some(client_id) {
            if let Some(member) = m.members.get_mut(&client_id) {
                member.muted = muted;
            }
            return;
        }
        if !from_host {
            // Our own announcement echoed back, or a participant without authority.
            debug!(
                muted,
                "mute message about us without host authority; ignored"
            );
            return;
        }
        info!(muted, "host changed our microphone");
        self.muted_by_host = muted;
        if self.mic_muted != muted {
            self.mic_muted = muted;
            self.media(MediaCommand::SetMicMuted(muted));
        }
    }

    fn on_remote_media(&mut self, room_id: RoomId, from: ClientId, signal: MediaSignal) {
        let mut cmds = Vec::new();
        {
            let Some(m) = self.meeting_mut(room_id) else {
                debug!(%room_id, %from, "media message for a room we are not in");
                return;
            };
            if !m.members.contains_key(&from) {
                debug!(%from, "media message from a client not in the room");
                return;
            }
            let call_type = m.room_type;
            match signal {
                MediaSignal::Offer { .. } => {
                    // An offer always starts a fresh session: the peer (re)started its side.
                    if m.sessions.contains_key(&from) {
                        cmds.push(MediaCommand::StopSession { peer: from });
                    }
                    m.video_in.remove(&from);
                    m.offered.remove(&from);
                    m.sessions.insert(from, MediaState::Connecting);
                    cmds.push(MediaCommand::StartSession {
                        peer: from,
                        role: SessionRole::Answerer,
                        call_type,
                    });
                    cmds.push(MediaCommand::RemoteSignal { peer: from, signal });
                }
                MediaSignal::Answer { .. } | MediaSignal::Candidate { .. } => {
                    if m.sessions.contains_key(&from) {
                        cmds.push(MediaCommand::RemoteSignal { peer: from, signal });
                    } else {
                        debug!(%from, "answer or candidate without a session");
                    }
                }
                MediaSignal::Bye => {
                    m.video_in.remove(&from);
                    m.offered.remove(&from);
                    if m.sessions.remove(&from).is_some() {
                        cmds.push(MediaCommand::StopSession { peer: from });
                    }
                }
            }
        }
        for cmd in cmds {
            self.media(cmd);
        }
    }

    // ----------------------------------------------------------------- media

    fn on_media(&mut self, event: MediaEvent) {
        match event {
            MediaEvent::LocalSignal { peer, signal } => {
                let target = match &self.phase {
                    Phase::Meeting(m) if m.sessions.contains_key(&peer) => Some(m.room_id),
                    _ => None,
                };
                match target {
                    Some(room_id) => self.send(Outgoing::Media {
                        room_id,
                        to: peer,
                        signal,
                    }),
                    None => debug!(%peer, "local media signal for a closed session"),
                }
            }
            MediaEvent::SessionConnected { peer } => {
                if let Phase::Meeting(m) = &mut self.phase
                    && let Some(s) = m.sessions.get_mut(&peer)
                {
                    *s = MediaState::Connected;
                }
            }
            MediaEvent::RemoteVideo { peer } => {
                if let Phase::Meeting(m) = &mut self.phase
                    && m.sessions.contains_key(&peer)
                {
                    m.video_in.insert(peer);
                }
            }
            MediaEvent::SessionFailed { peer, reason } => {
                let Phase::Meeting(m) = &mut self.phase else {
                    return;
                };
                let room_type = m.room_type;
                let Some(state) = m.sessions.get_mut(&peer) else {
                    return;
                };
                // A session we offered is offered again, a few times: a connection that
                // fails while being set up (a lost DTLS flight, an ICE pair that went away)
                // usually succeeds on a fresh one.
                if let Some(retries) = m.offered.get_mut(&peer)
                    && *retries < MEDIA_RETRIES
                {
                    *retries += 1;
                    *state = MediaState::Connecting;
                    m.video_in.remove(&peer);
                    warn!(%peer, %reason, attempt = %*retries, "media session failed; offering again");
                    self.media(MediaCommand::StopSession { peer });
                    self.media(MediaCommand::StartSession {
                        peer,
                        role: SessionRole::Offerer,
                        call_type: room_type,
                    });
                    return;
                }
                *state = MediaState::Failed;
                warn!(%peer, %reason, "media session failed; other participants continue");
                self.event(CallEvent::Error {
                    message: format!("media with participant {peer} failed: {reason}"),
                });
            }
            MediaEvent::EngineError { message } => {
                warn!(%message, "media engine error");
                self.event(CallEvent::Error { message });
            }
        }
    }

    // ----------------------------------------------------------------- commands

    fn idle_and_registered(&self) -> Result<(), CommandError> {
        match &self.phase {
            Phase::Idle => {}
            _ => return Err(CommandError::Busy(self.state().call)),
        }
        if !self.registered {
            return Err(CommandError::NotRegistered);
        }
        Ok(())
    }

    fn on_command(&mut self, now: Instant, command: Command) -> Result<(), CommandError> {
        match command {
            Command::Answer => match self.phase {
                Phase::Ringing(_) => self.answer(now, false),
                _ => return Err(CommandError::NotRinging),
            },
            Command::Reject => match self.phase {
                Phase::Ringing(_) => self.reject(RejectReason::Local),
                _ => return Err(CommandError::NotRinging),
            },
            Command::Hangup | Command::Leave => {
                if matches!(self.phase, Phase::Idle) {
                    return Err(CommandError::NoCall);
                }
                self.hang_up(EndReason::LocalHangup);
            }
            Command::Dial { user } => {
                self.idle_and_registered()?;
                if Some(user) == self.me {
                    return Err(CommandError::DialSelf(user));
                }
                let call_type = CallType::Video;
                self.send(Outgoing::CreateRoom {
                    name: self.cfg.device_name.clone(),
                    call_type,
                });
                self.timers
                    .arm(Timer::DialTimeout, now + self.cfg.policy.ring_timeout);
                self.phase = Phase::Dialing(Dialing {
                    target: Peer::user(user),
                    call_type,
                    step: DialStep::CreatingRoom,
                });
            }
            Command::Join { room } => {
                self.idle_and_registered()?;
                self.enter(Meeting::new(room, CallType::Video, Origin::Joined));
            }
            Command::Unmute if self.audio_forbidden => return Err(CommandError::AudioForbidden),
            Command::CameraOn if self.video_forbidden => return Err(CommandError::VideoForbidden),
            Command::Mute | Command::Unmute => {
                let muted = command == Command::Mute;
                self.muted_by_host &= muted;
                self.set_mic(muted);
            }
            Command::CameraOn | Command::CameraOff => self.set_camera(command == Command::CameraOn),
            Command::ShareStart | Command::ShareStop => {
                let on = command == Command::ShareStart;
                let Phase::Meeting(m) = &self.phase else {
                    return Err(CommandError::NotInCall);
                };
                if self.sharing != on {
                    let room_id = m.room_id;
                    let share_id = if on { m.me } else { None };
                    let present = m.present();
                    self.sharing = on;
                    self.media(MediaCommand::SetSharing(on));
                    if present {
                        self.send(Outgoing::AnnounceShare { room_id, share_id });
                    }
                }
            }
            Command::Volume { level } => {
                if level > 100 {
                    return Err(CommandError::VolumeOutOfRange(level));
                }
                if self.volume != level {
                    self.volume = level;
                    self.media(MediaCommand::SetVolume(level));
                }
            }
        }
        Ok(())
    }
}
