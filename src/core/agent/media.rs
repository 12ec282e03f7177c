//! What the media engine reports.

use std::collections::BTreeMap;
use std::time::Instant;

use tracing::{debug, info, warn};

use super::{Agent, Phase};
use crate::core::action::{CallEvent, MediaCommand, Outgoing, SessionRole};
use crate::core::agent::{MEDIA_RETRIES, MEDIA_SETUP, answerer_wait, reoffer_backoff};
use crate::core::input::MediaEvent;
use crate::core::state::MediaState;
use crate::core::timers::Timer;
use crate::core::types::ClientId;

impl Agent {
    pub(super) fn on_media(&mut self, now: Instant, event: MediaEvent) {
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
                    m.setup_by.remove(&peer);
                    m.answer_failures.remove(&peer);
                    // A session that connected starts its retries afresh if it fails later.
                    if let Some(retries) = m.offered.get_mut(&peer) {
                        *retries = 0;
                    }
                    self.arm_media_schedule();
                }
            }
            MediaEvent::RemoteVideo { peer } => {
                // Per-participant sessions name the peer; a room that carries its media
                // itself (RTM) names a member.
                if let Phase::Meeting(m) = &mut self.phase
                    && (m.sessions.contains_key(&peer)
                        || (!self.cfg.per_participant_media && m.members.contains_key(&peer)))
                {
                    m.video_in.insert(peer);
                }
            }
            MediaEvent::SessionFailed { peer, reason } => {
                let Phase::Meeting(m) = &mut self.phase else {
                    return;
                };
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
                    let wait = reoffer_backoff(*retries);
                    m.reoffer_at.insert(peer, now + wait);
                    warn!(%peer, %reason, attempt = %*retries, wait_ms = wait.as_millis() as u64, "media session failed; offering again");
                    self.media(MediaCommand::StopSession { peer });
                    return;
                }
                if !m.offered.contains_key(&peer) && !m.recovering.contains_key(&peer) {
                    // We answered: the offerer offers again; wait for it before reporting.
                    *state = MediaState::Connecting;
                    m.video_in.remove(&peer);
                    let n = m.answer_failures.entry(peer).or_insert(0);
                    *n += 1;
                    m.recovering.insert(peer, now + answerer_wait(*n));
                    m.setup_by.remove(&peer);
                    info!(%peer, %reason, "media session we answered failed; waiting for a new offer");
                    self.arm_media_recovery();
                    return;
                }
                m.recovering.remove(&peer);
                self.media_failed(peer, &reason);
            }
            MediaEvent::Device { kind, present } => {
                let to = if present {
                    crate::core::state::Attached::Present
                } else {
                    crate::core::state::Attached::Lost
                };
                if present {
                    info!(?kind, "device attached");
                } else {
                    warn!(?kind, "device lost; the call goes on without it");
                }
                self.devices.set(kind, to);
                self.event(CallEvent::Device { kind, present });
            }
            MediaEvent::HdmiSignal { present } => {
                if self.devices.hdmi_signal == present {
                    return;
                }
                self.devices.hdmi_signal = present;
                self.event(CallEvent::HdmiSignal { present });
                // With automatic sharing, the signal is the share (only in a call: outside
                // one there is nothing to share into).
                if self.cfg.auto_share
                    && matches!(self.phase, Phase::Meeting(_))
                    && self.sharing != present
                {
                    info!(present, "HDMI signal: sharing follows it");
                    let _ = self.share(present);
                }
            }
            MediaEvent::EncoderReplaced { from, to, reason } => {
                warn!(%from, %to, %reason, "video encoder replaced during the call");
                self.event(CallEvent::EncoderReplaced { from, to, reason });
            }
            MediaEvent::DecoderReplaced {
                peer,
                from,
                to,
                reason,
            } => {
                warn!(%peer, %from, %to, %reason, "a participant's video decoder replaced during the call");
                self.event(CallEvent::DecoderReplaced {
                    peer,
                    from,
                    to,
                    reason,
                });
            }
            MediaEvent::EngineError { message } => {
                warn!(%message, "media engine error");
                self.event(CallEvent::Error { message });
            }
        }
    }

    /// Reports a session as failed for good; the other participants carry on.
    fn media_failed(&mut self, peer: ClientId, reason: &str) {
        if let Phase::Meeting(m) = &mut self.phase {
            m.setup_by.remove(&peer);
            m.reoffer_at.remove(&peer);
            if let Some(state) = m.sessions.get_mut(&peer) {
                *state = MediaState::Failed;
            }
        }
        warn!(%peer, %reason, "media session failed; other participants continue");
        self.event(CallEvent::Error {
            message: format!("media with participant {peer} failed: {reason}"),
        });
    }

    /// Arms [`Timer::MediaRecovery`] for the earliest session still waiting for a new offer.
    pub(super) fn arm_media_recovery(&mut self) {
        let next = match &self.phase {
            Phase::Meeting(m) => m.recovering.values().min().copied(),
            _ => None,
        };
        match next {
            Some(at) => self.timers.arm(Timer::MediaRecovery, at),
            None => self.timers.cancel(Timer::MediaRecovery),
        }
    }

    /// Sessions whose offerer did not offer again in time are offered by us instead, with the
    /// retries of a session we offered (this one counting as the first); a participant who
    /// left meanwhile is not.
    pub(super) fn on_media_recovery(&mut self, now: Instant) {
        let Phase::Meeting(m) = &mut self.phase else {
            return;
        };
        let due: Vec<ClientId> = m
            .recovering
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(p, _)| *p)
            .collect();
        let mut offers = Vec::new();
        for peer in &due {
            m.recovering.remove(peer);
            if m.members.contains_key(peer) && m.sessions.contains_key(peer) {
                m.offered.insert(*peer, 1);
                offers.push(*peer);
            }
        }
        let call_type = m.room_type;
        for peer in offers {
            info!(%peer, "no new offer came for the failed session; offering one");
            self.media(MediaCommand::StopSession { peer });
            self.media(MediaCommand::StartSession {
                peer,
                role: SessionRole::Offerer,
                call_type,
            });
        }
        self.arm_media_recovery();
        self.arm_media_schedule();
    }

    /// Arms [`Timer::MediaSchedule`] for the earliest new offer or setup deadline.
    pub(super) fn arm_media_schedule(&mut self) {
        let next = match &self.phase {
            Phase::Meeting(m) => m
                .setup_by
                .values()
                .chain(m.reoffer_at.values())
                .min()
                .copied(),
            _ => None,
        };
        match next {
            Some(at) => self.timers.arm(Timer::MediaSchedule, at),
            None => self.timers.cancel(Timer::MediaSchedule),
        }
    }

    /// Offers failed sessions again once their wait is over, and fails sessions that did not
    /// connect in time.
    pub(super) fn on_media_schedule(&mut self, now: Instant) {
        let Phase::Meeting(m) = &mut self.phase else {
            return;
        };
        let due = |map: &mut BTreeMap<ClientId, Instant>| -> Vec<ClientId> {
            let due: Vec<ClientId> = map
                .iter()
                .filter(|(_, at)| **at <= now)
                .map(|(p, _)| *p)
                .collect();
            for p in &due {
                map.remove(p);
            }
            due
        };
        // Participants not in the room (re-entering after a server restart) are left to
        // [`Timer::ReturnTimeout`].
        let reoffers: Vec<ClientId> = due(&mut m.reoffer_at)
            .into_iter()
            .filter(|p| m.members.contains_key(p) && m.offered.contains_key(p))
            .filter(|p| m.sessions.contains_key(p))
            .collect();
        let stalled: Vec<ClientId> = due(&mut m.setup_by)
            .into_iter()
            .filter(|p| m.members.contains_key(p))
            .filter(|p| m.sessions.get(p) == Some(&MediaState::Connecting))
            .collect();
        let room_type = m.room_type;
        for peer in reoffers {
            info!(%peer, "offering the failed media session again");
            self.media(MediaCommand::StartSession {
                peer,
                role: SessionRole::Offerer,
                call_type: room_type,
            });
        }
        for peer in stalled {
            let reason = format!("did not connect within {} s", MEDIA_SETUP.as_secs());
            self.on_media(now, MediaEvent::SessionFailed { peer, reason });
        }
        self.arm_media_schedule();
    }
}
