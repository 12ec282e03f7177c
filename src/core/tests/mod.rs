//! Behaviour tests of the core, time driven by passing instants.

mod commands;
mod incoming;
mod meeting;
mod outgoing;
mod remote;
mod uninvited;

use std::time::{Duration, Instant};

use super::*;

pub(crate) const ME: UserId = UserId(100);
pub(crate) const CALLER: UserId = UserId(7);
pub(crate) const ROOM: RoomId = RoomId(5000);
/// Our own and the caller's participant ids: in these dialects a participant is known by its
/// user's id, but the core keeps the two apart.
pub(crate) const ME_C: ClientId = ClientId(100);
pub(crate) const CALLER_C: ClientId = ClientId(7);

/// Drives an [`Agent`] with a virtual clock and collects what it does.
pub(crate) struct Harness {
    pub agent: Agent,
    pub now: Instant,
    pub actions: Vec<Action>,
}

impl Harness {
    pub fn new(policy: AnswerPolicy) -> Harness {
        let cfg = CoreConfig {
            policy,
            device_name: "Room 101".into(),
            connect_timeout: Duration::from_secs(20),
            ..CoreConfig::default()
        };
        let mut h = Harness {
            agent: Agent::new(cfg),
            now: Instant::now(),
            actions: Vec::new(),
        };
        h.signal(SignalingEvent::Registered { user_id: ME });
        h.actions.clear();
        h
    }

    /// Always answers after one second, rings 30 s.
    pub fn default_policy() -> Harness {
        Harness::new(AnswerPolicy::default())
    }

    fn drain(&mut self) {
        while let Some(a) = self.agent.poll_action() {
            self.actions.push(a);
        }
    }

    pub fn signal(&mut self, e: SignalingEvent) {
        self.agent.handle_signaling(self.now, e);
        self.drain();
    }

    pub fn media(&mut self, e: MediaEvent) {
        self.agent.handle_media(self.now, e);
        self.drain();
    }

    pub fn command(&mut self, c: Command) -> Result<(), CommandError> {
        let r = self.agent.command(self.now, c);
        self.drain();
        r
    }

    /// Moves the clock forward, firing every timer due on the way, like the daemon's loop.
    pub fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        while let Some(at) = self.agent.next_timeout() {
            if at > target {
                break;
            }
            self.now = at;
            self.agent.handle_timeout(self.now);
            self.drain();
        }
        self.now = target;
    }

    pub fn take(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    pub fn sent(&mut self) -> Vec<Outgoing> {
        self.take()
            .into_iter()
            .filter_map(|a| match a {
                Action::Signal(o) => Some(o),
                _ => None,
            })
            .collect()
    }

    pub fn phase(&self) -> CallPhase {
        self.agent.state().call
    }

    pub fn invite(&mut self, from: UserId) {
        self.signal(SignalingEvent::Invite {
            from: Peer {
                user_id: from,
                device_type: Some("webphone".into()),
            },
            call_type: CallType::Video,
            room_id: Some(ROOM),
        });
    }

    /// Incoming call from CALLER answered (zero delay), caller connected, room entered with
    /// the given members.
    pub fn in_call_with(members: &[ClientId]) -> Harness {
        let mut h = Harness::new(AnswerPolicy {
            delay: Duration::ZERO,
            ..AnswerPolicy::default()
        });
        h.invite(CALLER);
        h.signal(SignalingEvent::RemoteConnected {
            from: CALLER,
            room_id: Some(ROOM),
            room_type: Some(CallType::Video),
        });
        h.signal(SignalingEvent::Entered {
            room: room_info(),
            me: member(ME_C),
            members: members.iter().map(|&c| member(c)).collect(),
        });
        assert_eq!(h.phase(), CallPhase::InCall);
        h.take();
        h
    }
}

impl Harness {
    /// In a room we were told to join (where everyone present gets media) with `members`:
    /// for what holds in any room of several participants.
    pub fn in_room_with(members: &[ClientId]) -> Harness {
        let mut h = Harness::default_policy();
        h.command(Command::Join { room: ROOM }).unwrap();
        h.signal(SignalingEvent::Entered {
            room: room_info(),
            me: member(ME_C),
            members: members.iter().map(|&c| member(c)).collect(),
        });
        assert_eq!(h.phase(), CallPhase::InCall);
        h.take();
        h
    }
}

pub(crate) fn member(id: ClientId) -> Member {
    Member {
        client_id: id,
        name: Some(format!("user {id}")),
        muted: false,
        host: false,
    }
}

pub(crate) fn room_info() -> RoomInfo {
    RoomInfo {
        id: ROOM,
        name: Some("call".into()),
        owner_id: Some(CALLER),
        host_id: Some(CALLER_C),
    }
}

pub(crate) fn events(actions: &[Action]) -> Vec<CallEvent> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

pub(crate) fn media(actions: &[Action]) -> Vec<MediaCommand> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Media(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

pub(crate) fn ended(actions: &[Action]) -> Option<EndReason> {
    events(actions).into_iter().find_map(|e| match e {
        CallEvent::Ended { reason, .. } => Some(reason),
        _ => None,
    })
}

pub(crate) fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}
