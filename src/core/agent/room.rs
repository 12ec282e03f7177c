//! Being in a room: entry, members coming and going, host mute orders, WebRTC negotiation
//! messages from participants.

use std::collections::BTreeMap;
use std::time::Instant;

use tracing::{debug, info, warn};

use super::limits::{Budget, MAX_MEMBERS, MAX_SESSIONS};
use super::{Agent, Meeting, Origin, Phase};
use crate::core::action::{CallEvent, EndReason, MediaCommand, Outgoing, SessionRole};
use crate::core::input::MediaSignal;
use crate::core::state::MediaState;
use crate::core::timers::Timer;
use crate::core::types::{CallType, ClientId, Member, RoomId, RoomInfo};

impl Agent {
    pub(super) fn on_entered(
        &mut self,
        now: Instant,
        room: RoomInfo,
        me: Member,
        members: Vec<Member>,
    ) {
        let mic_muted = self.mic_muted;
        let camera_on = self.camera_on;
        let sharing = self.sharing;
        let starts;
        let mut notify = None;
        let first;
        let waiting;
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
            let mut fresh: BTreeMap<ClientId, Member> = members
                .into_iter()
                .filter(|member| member.client_id != me.client_id)
                .map(|member| (member.client_id, member))
                .collect();
            if fresh.len() > MAX_MEMBERS {
                warn!(
                    reported = fresh.len(),
                    max = MAX_MEMBERS,
                    "the room reports more members than tracked; the rest are ignored"
                );
                // Keep those we have sessions with, then the lowest ids.
                let keep: Vec<ClientId> = fresh
                    .keys()
                    .filter(|c| m.sessions.contains_key(c))
                    .chain(fresh.keys().filter(|c| !m.sessions.contains_key(c)))
                    .take(MAX_MEMBERS)
                    .copied()
                    .collect();
                fresh.retain(|c, _| keep.contains(c));
            }
            m.budgets.retain(|c, _| fresh.contains_key(c));
            starts = m.reconcile_sessions(&fresh, self.cfg.per_participant_media);
            // Back in a room with someone missing: they may be re-entering too (a restarted
            // server lost the room), or they left while we could not hear it.
            waiting = !first && (!m.returning.is_empty() || (m.had_peers && fresh.is_empty()));
            m.had_peers |= !fresh.is_empty();
            m.members = fresh;
            if first && let Origin::Dialed(target) = &m.origin {
                notify = Some(target.clone());
            }
        }
        if waiting {
            // Give them the time a caller has to enter a room.
            info!(%room_id, "back in the room; waiting for the others to come back");
            self.timers
                .arm(Timer::ReturnTimeout, now + self.cfg.connect_timeout);
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

    pub(super) fn meeting_origin(&self) -> Option<&Origin> {
        match &self.phase {
            Phase::Meeting(m) => Some(&m.origin),
            _ => None,
        }
    }

    pub(super) fn my_client_id(&self) -> Option<ClientId> {
        match &self.phase {
            Phase::Meeting(m) => m.me,
            _ => None,
        }
    }

    pub(super) fn on_member_entered(&mut self, room_id: RoomId, member: Member) {
        let gatekeeping = self.cfg.per_participant_media;
        let mut stop = None;
        {
            let Some(m) = self.meeting_mut(room_id) else {
                return;
            };
            if Some(member.client_id) == m.me {
                return;
            }
            if !m.members.contains_key(&member.client_id) && m.members.len() >= MAX_MEMBERS {
                warn!(peer = %member.client_id, max = MAX_MEMBERS, "a member beyond the tracked number entered; ignored");
                return;
            }
            if m.returning.remove(&member.client_id) {
                // Back after a server restart, like us: the media between us never stopped.
            } else {
                // A participant we already had a session with came back (its connection
                // dropped): the old session is dead; it offers a new one, having entered later.
                m.video_in.remove(&member.client_id);
                if m.sessions.remove(&member.client_id).is_some() {
                    stop = Some(member.client_id);
                }
            }
            m.recovering.remove(&member.client_id);
            m.had_peers = true;
            let id = member.client_id;
            m.members.insert(id, member);
            if !m.admitted(id, &m.members, gatekeeping) {
                info!(peer = %id, room = %room_id, "entered our call uninvited: no media session with them");
            }
        }
        if self
            .meeting_mut(room_id)
            .is_some_and(|m| m.returning.is_empty())
        {
            self.timers.cancel(Timer::ReturnTimeout);
        }
        if let Some(peer) = stop {
            self.media(MediaCommand::StopSession { peer });
        }
    }

    /// Whoever has not come back to the room we re-entered is gone: their sessions close,
    /// and an empty room ends the call.
    pub(crate) fn on_return_timeout(&mut self) {
        let Phase::Meeting(m) = &mut self.phase else {
            return;
        };
        let gone: Vec<ClientId> = std::mem::take(&mut m.returning).into_iter().collect();
        for peer in &gone {
            m.sessions.remove(peer);
            m.offered.remove(peer);
            m.video_in.remove(peer);
            m.recovering.remove(peer);
        }
        let alone = m.members.is_empty() && m.had_peers;
        let room_id = m.room_id;
        for peer in gone {
            self.media(MediaCommand::StopSession { peer });
        }
        if alone {
            info!(%room_id, "nobody came back to the room; ending the call");
            self.leave_room(EndReason::RemoteLeft);
        }
    }

    pub(super) fn on_member_left(&mut self, room_id: RoomId, client_id: ClientId) {
        let gatekeeping = self.cfg.per_participant_media;
        let (had_session, now_alone) = {
            let Some(m) = self.meeting_mut(room_id) else {
                return;
            };
            if Some(client_id) == m.me {
                return;
            }
            let known = m.members.remove(&client_id).is_some();
            m.budgets.remove(&client_id);
            m.answer_failures.remove(&client_id);
            m.video_in.remove(&client_id);
            m.recovering.remove(&client_id);
            let had_session = m.sessions.remove(&client_id).is_some();
            let nobody_admitted = !m
                .members
                .keys()
                .any(|c| m.admitted(*c, &m.members, gatekeeping));
            (had_session, known && nobody_admitted && m.had_peers)
        };
        if had_session {
            self.media(MediaCommand::StopSession { peer: client_id });
        }
        if now_alone {
            self.leave_room(EndReason::RemoteLeft);
        }
    }

    pub(super) fn on_muted(
        &mut self,
        room_id: RoomId,
        client_id: ClientId,
        muted: bool,
        from_host: bool,
    ) {
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

    pub(super) fn on_remote_media(
        &mut self,
        now: Instant,
        room_id: RoomId,
        from: ClientId,
        signal: MediaSignal,
    ) {
        let gatekeeping = self.cfg.per_participant_media;
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
            let offer = matches!(signal, MediaSignal::Offer { .. });
            let budget = m.budgets.entry(from).or_insert_with(|| Budget::new(now));
            if !budget.take(now, offer) {
                if budget.dropped == 0 {
                    warn!(%from, offer, "participant sends media messages faster than allowed; dropping them");
                }
                budget.dropped += 1;
                return;
            }
            if budget.dropped > 0 {
                info!(%from, dropped = budget.dropped, "participant's media messages taken again");
                budget.dropped = 0;
            }
            let call_type = m.room_type;
            match signal {
                MediaSignal::Offer { .. } if !m.admitted(from, &m.members, gatekeeping) => {
                    debug!(%from, "offer from a participant we were not called by or with; refused");
                }
                MediaSignal::Offer { .. }
                    if !m.sessions.contains_key(&from) && m.sessions.len() >= MAX_SESSIONS =>
                {
                    warn!(%from, max = MAX_SESSIONS, "offer refused: the call has as many media sessions as it may");
                }
                MediaSignal::Offer { .. } => {
                    // An offer always starts a fresh session: the peer (re)started its side.
                    if m.sessions.contains_key(&from) {
                        cmds.push(MediaCommand::StopSession { peer: from });
                    }
                    m.video_in.remove(&from);
                    m.offered.remove(&from);
                    m.recovering.remove(&from);
                    m.sessions.insert(from, MediaState::Connecting);
                    cmds.push(MediaCommand::StartSession {
                        peer: from,
                        role: SessionRole::Answerer,
                        call_type,
                    });
                    cmds.push(MediaCommand::RemoteSignal { peer: from, signal });
                }
                MediaSignal::Answer { .. }
                | MediaSignal::Candidate { .. }
                | MediaSignal::Quality { .. } => {
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
}

impl Meeting {
    /// Whether `client` may have a media session with us (see the README, "Who gets the
    /// room's camera and microphone"). In a call — we answered someone's invitation or
    /// dialed someone — only that person and whoever holds the room's authority (its host
    /// or its owner, as the server reports them) do: any other logged-in user who enters the
    /// call's room by its id is listed but gets neither our offer nor an answer to theirs.
    /// In a room we were told to join (a command, a pull from the back end) everyone there
    /// does. A participant's id is its user id in both dialects.
    ///
    /// `gatekeeping` is off for backends whose rooms admit only whom their server gave a token
    /// (RTM): there everyone present was let in by the server, and media goes through it.
    fn admitted(
        &self,
        client: ClientId,
        members: &BTreeMap<ClientId, Member>,
        gatekeeping: bool,
    ) -> bool {
        if !gatekeeping {
            return true;
        }
        let Some(peer) = self.peer() else {
            return true;
        };
        let room = self.room.as_ref();
        client.0 == peer.0
            || room.is_some_and(|r| {
                r.host_id == Some(client) || r.owner_id.is_some_and(|o| o.0 == client.0)
            })
            || members.get(&client).is_some_and(|m| m.host)
    }

    /// Matches our sessions to the members present: everyone present we have no session with,
    /// or only a failed one, gets an offer (when media runs per participant), because we are
    /// the one entering later; sessions with participants who are not there are kept, as `returning`, until
    /// they come back or [`Timer::ReturnTimeout`]. Returns the sessions to start.
    fn reconcile_sessions(
        &mut self,
        present: &BTreeMap<ClientId, Member>,
        per_participant_media: bool,
    ) -> Vec<ClientId> {
        self.returning = self
            .sessions
            .keys()
            .filter(|peer| !present.contains_key(peer))
            .copied()
            .collect();
        let mut starts = Vec::new();
        for peer in present.keys().filter(|_| per_participant_media) {
            if !self.admitted(*peer, present, per_participant_media) {
                info!(%peer, "in the room uninvited: no media session with them");
                continue;
            }
            match self.sessions.get(peer) {
                // A session that failed for good (its retries ran out, say while the network
                // was down) gets a fresh start now that we are back in the room.
                Some(MediaState::Failed) => {
                    info!(%peer, "back in the room: offering the failed media session again");
                    self.recovering.remove(peer);
                    self.reoffer_at.remove(peer);
                }
                Some(_) => continue,
                None if self.sessions.len() >= MAX_SESSIONS => {
                    warn!(%peer, max = MAX_SESSIONS, "no media session: the call has as many as it may");
                    continue;
                }
                None => {}
            }
            self.sessions.insert(*peer, MediaState::Connecting);
            self.offered.insert(*peer, 0);
            starts.push(*peer);
        }
        starts
    }
}
