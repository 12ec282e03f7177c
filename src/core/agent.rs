//! The call/room state machine.

mod commands;
mod limits;
mod media;
mod remote;
mod room;
mod signaling;

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use thiserror::Error;
use tracing::{debug, info};

use super::action::{Action, CallEvent, EndReason, MediaCommand, Outgoing, RejectReason};
use super::input::{Command, MediaEvent, SignalingEvent};
use super::policy::AnswerPolicy;
use super::state::{AgentState, CallPhase, MediaState, MemberState};
use super::timers::{Timer, Timers};
use super::types::{CallType, ClientId, Member, Peer, RoomId, RoomInfo, UserId};

/// How often a failed media session we offered is offered again before it is reported failed.
pub const MEDIA_RETRIES: u32 = 3;

/// The answering side of a failed session waits for the offerer's new offer before it offers
/// a fresh session itself (an offer always starts a fresh session in the dialect, and not
/// every offerer notices a lost path: a browser waits for its consent checks, ~30 s). It waits
/// the offerer's back-off for that attempt ([`reoffer_backoff`], counting the answered
/// sessions that failed since one connected) plus this much, so a roomagent offerer is not
/// raced.
pub const REOFFER_WAIT: Duration = Duration::from_secs(2);

/// How long the answering side waits after the `n`th failure in a row of a session it
/// answered (see [`REOFFER_WAIT`]).
pub fn answerer_wait(n: u32) -> Duration {
    reoffer_backoff(n) + REOFFER_WAIT
}

/// A media session that has not connected this long after it started is treated as failed
/// (and so offered again, or waited for, like any failed session).
pub const MEDIA_SETUP: Duration = Duration::from_secs(15);

/// The wait before the `n`th new offer of a failed session (1 s, 2 s, 4 s, …): a path that
/// just broke gets a moment, and a peer that keeps failing is not hammered.
pub fn reoffer_backoff(n: u32) -> Duration {
    Duration::from_secs(1u64 << n.saturating_sub(1).min(5))
}

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
    /// A signal on the HDMI capture input starts sharing it, and its loss stops the share.
    pub auto_share: bool,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            policy: AnswerPolicy::default(),
            device_name: "roomagent".into(),
            connect_timeout: Duration::from_secs(20),
            backend: "rtcpeer",
            per_participant_media: true,
            auto_share: false,
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
    devices: crate::core::state::Devices,
    timers: Timers,
    actions: VecDeque<Action>,
    published: Option<AgentState>,
    /// The instant of the input being handled (the core reads no clock of its own).
    clock: Option<Instant>,
}

#[derive(Debug, Clone)]
enum Phase {
    Idle,
    Ringing(Incoming),
    /// Agreed; waiting for the caller's `onConnected`.
    Answering(Incoming),
    Dialing(Dialing),
    Meeting(Box<Meeting>),
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
    /// Sessions we offered, with how often each was offered again after failing. The offerer
    /// restarts a failed session; the answerer waits [`REOFFER_WAIT`] for the new offer and
    /// then offers itself (two offerers at once would both turn answerer on each other's
    /// offer).
    offered: BTreeMap<ClientId, u32>,
    /// Participants whose video has been decoded.
    video_in: std::collections::BTreeSet<ClientId>,
    /// Whether anyone else was ever in the room with us: the last one leaving ends the call.
    had_peers: bool,
    /// Sessions we answered that failed, with the instant by which the offerer's new offer
    /// must arrive before we offer one ourselves.
    recovering: BTreeMap<ClientId, Instant>,
    /// Sessions we answered that failed in a row (since one connected), by participant.
    answer_failures: BTreeMap<ClientId, u32>,
    /// Each member's allowance of media messages.
    budgets: BTreeMap<ClientId, limits::Budget>,
    /// Sessions not yet connected, with the instant by which they must be.
    setup_by: BTreeMap<ClientId, Instant>,
    /// Failed sessions we offered, with the instant of the next offer.
    reoffer_at: BTreeMap<ClientId, Instant>,
    /// Participants we have a session with who were not in the room when we re-entered it
    /// (a restarted server lost the room; they are re-entering too). Their sessions are kept
    /// until [`Timer::ReturnTimeout`].
    returning: std::collections::BTreeSet<ClientId>,
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
            recovering: BTreeMap::new(),
            answer_failures: BTreeMap::new(),
            budgets: BTreeMap::new(),
            setup_by: BTreeMap::new(),
            reoffer_at: BTreeMap::new(),
            returning: Default::default(),
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
            devices: Default::default(),
            timers: Timers::default(),
            actions: VecDeque::new(),
            published: None,
            clock: None,
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
            devices: self.devices,
        }
    }

    // ----------------------------------------------------------------- inputs

    /// Fires the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.clock = Some(now);
        for timer in self.timers.take_expired(now) {
            self.on_timer(now, timer);
        }
        self.publish_state();
    }

    /// A signaling event happened at `now`.
    pub fn handle_signaling(&mut self, now: Instant, event: SignalingEvent) {
        self.clock = Some(now);
        self.on_signaling(now, event);
        self.publish_state();
    }

    /// A media event happened at `now`.
    pub fn handle_media(&mut self, now: Instant, event: MediaEvent) {
        self.clock = Some(now);
        self.on_media(now, event);
        self.publish_state();
    }

    /// A local command at `now`. On error nothing changed.
    pub fn command(&mut self, now: Instant, command: Command) -> Result<(), CommandError> {
        self.clock = Some(now);
        let result = self.on_command(now, command);
        self.publish_state();
        result
    }

    // ----------------------------------------------------------------- helpers

    fn send(&mut self, out: Outgoing) {
        self.actions.push_back(Action::Signal(out));
    }

    fn media(&mut self, cmd: MediaCommand) {
        if let (Phase::Meeting(m), Some(now)) = (&mut self.phase, self.clock) {
            match &cmd {
                MediaCommand::StartSession { peer, .. } => {
                    m.setup_by.insert(*peer, now + MEDIA_SETUP);
                }
                MediaCommand::StopSession { peer } => {
                    m.setup_by.remove(peer);
                }
                MediaCommand::StopAll => m.setup_by.clear(),
                _ => {}
            }
            self.arm_media_schedule();
        }
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
        // Answering and dialing prepared the call media already.
        if matches!(
            self.phase,
            Phase::Meeting(_) | Phase::Answering(_) | Phase::Dialing(_)
        ) || self.sharing
        {
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
        self.media(MediaCommand::Prepare);
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
        let joined = !matches!(self.phase, Phase::Answering(_) | Phase::Dialing(_));
        self.phase = Phase::Meeting(Box::new(meeting));
        // A room that carries its media itself (RTM) has no sessions to start the media: a
        // join or a pull starts it here (answering and dialing prepared it already).
        if joined && !self.cfg.per_participant_media {
            self.media(MediaCommand::Prepare);
        }
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
            Timer::ReturnTimeout => self.on_return_timeout(),
            Timer::MediaRecovery => self.on_media_recovery(now),
            Timer::MediaSchedule => self.on_media_schedule(now),
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
}
