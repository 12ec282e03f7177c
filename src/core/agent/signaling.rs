//! Signaling events: the call flow (invites, dialing, answers) and the room (entry, members,
//! host orders).

use std::time::Instant;

use tracing::{debug, info, warn};

use super::{Agent, DialStep, Incoming, Meeting, Origin, Phase};
use crate::core::action::{CallEvent, EndReason, Outgoing};
use crate::core::input::{RequestKind, SignalingEvent};
use crate::core::timers::Timer;
use crate::core::types::{CallType, Peer, RoomId, UserId};

impl Agent {
    /// Dispatches a signaling event: the link and the call flow here, the room in
    /// [`Agent::on_room_event`].
    pub(super) fn on_signaling(&mut self, now: Instant, event: SignalingEvent) {
        match event {
            SignalingEvent::Registered { user_id } => self.on_registered(user_id),
            SignalingEvent::Disconnected { reason } => {
                if self.registered {
                    warn!(%reason, "signaling connection lost; the call (if any) continues");
                }
                self.registered = false;
                self.signaling_error = Some(reason);
            }
            SignalingEvent::LoginRefused { reason } => {
                if !matches!(self.phase, Phase::Idle) {
                    warn!(%reason, "signaling login refused: the call ends");
                    self.end_call(EndReason::Error(format!("login refused: {reason}")));
                }
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
            other => self.on_room_event(now, other),
        }
    }

    /// Events about the room we are in (or entering).
    fn on_room_event(&mut self, now: Instant, event: SignalingEvent) {
        match event {
            SignalingEvent::Entered { room, me, members } => {
                self.on_entered(now, room, me, members)
            }
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
            } => self.on_remote_media(now, room_id, from, signal),
            other => debug!(?other, "not a room event"),
        }
    }

    pub(super) fn dialing(&self, from: UserId) -> bool {
        matches!(&self.phase, Phase::Dialing(d) if d.target.user_id == from)
    }

    pub(super) fn on_registered(&mut self, user_id: UserId) {
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

    pub(super) fn on_invite(
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

    pub(super) fn on_remote_agreed(&mut self, from: UserId, room_id: Option<RoomId>) {
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

    pub(super) fn on_remote_connected(
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

    pub(super) fn on_room_created(&mut self, now: Instant, room_id: RoomId) {
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

    pub(super) fn on_request_failed(&mut self, request: RequestKind, code: i64, message: String) {
        let text = format!("{request:?} failed (code {code}): {message}");
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
}
