//! What the media engine reports.

use tracing::{debug, warn};

use super::{Agent, Phase};
use crate::core::action::{CallEvent, MediaCommand, Outgoing, SessionRole};
use crate::core::agent::MEDIA_RETRIES;
use crate::core::input::MediaEvent;
use crate::core::state::MediaState;

impl Agent {
    pub(super) fn on_media(&mut self, event: MediaEvent) {
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
}
