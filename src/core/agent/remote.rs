//! What a room's owner does to the device from afar: forced joins, moderator orders about the
//! microphone and camera, and commands sent over signaling by a back end.

use std::time::Instant;

use tracing::{debug, info};

use super::{Agent, Meeting, Origin, Phase};
use crate::core::action::{CallEvent, EndReason, MediaCommand, Outgoing};
use crate::core::input::Command;
use crate::core::types::{CallType, ModeratorOrder, RoomId, UserId};

impl Agent {
    /// The server put us into `room_id`: any other call ends, and we enter.
    pub(super) fn on_pulled(&mut self, room_id: RoomId, call_type: CallType) {
        if let Phase::Meeting(m) = &self.phase
            && m.room_id == room_id
        {
            debug!(%room_id, "pulled into the room we are in");
            return;
        }
        if !matches!(self.phase, Phase::Idle) {
            info!(%room_id, "pulled into another room: ending the current call");
            self.hang_up(EndReason::MovedToAnotherRoom);
        }
        info!(%room_id, "pulled into a room by the server");
        self.start_incoming_media();
        self.enter(Meeting::new(room_id, call_type, Origin::Joined));
    }

    /// Obeys a moderator's order. Orders outside a call still set what is allowed, so a
    /// forbidden microphone stays forbidden while the device (re-)enters.
    pub(super) fn on_moderated(&mut self, order: ModeratorOrder) {
        info!(?order, "order from the room's moderator");
        match order {
            ModeratorOrder::ForbidAudio => {
                self.audio_forbidden = true;
                self.set_mic(true);
            }
            ModeratorOrder::AllowAudio => self.audio_forbidden = false,
            ModeratorOrder::ForbidVideo => {
                self.video_forbidden = true;
                self.set_camera(false);
            }
            ModeratorOrder::AllowVideo => self.video_forbidden = false,
            ModeratorOrder::CloseMic => self.set_mic(true),
            ModeratorOrder::CloseCamera => self.set_camera(false),
        }
        self.event(CallEvent::Moderated { order });
    }

    /// Runs a command that came over signaling and answers its sender.
    pub(super) fn on_remote_command(
        &mut self,
        now: Instant,
        from: UserId,
        tag: String,
        command: Command,
    ) {
        info!(%from, ?command, "command from a remote user");
        let result = self.on_command(now, command).map_err(|e| e.to_string());
        self.send(Outgoing::CommandReply {
            to: from,
            tag,
            result,
        });
    }

    /// Mutes or unmutes the microphone and tells the room, as a local mute would.
    pub(super) fn set_mic(&mut self, muted: bool) {
        if self.mic_muted == muted {
            return;
        }
        self.mic_muted = muted;
        self.media(MediaCommand::SetMicMuted(muted));
        if let Phase::Meeting(m) = &self.phase
            && m.present()
        {
            let room_id = m.room_id;
            self.send(Outgoing::AnnounceMute { room_id, muted });
        }
    }

    /// Turns the camera on or off and tells the room.
    pub(super) fn set_camera(&mut self, on: bool) {
        if self.camera_on == on {
            return;
        }
        self.camera_on = on;
        self.media(MediaCommand::SetCameraOn(on));
        if let Phase::Meeting(m) = &self.phase
            && m.present()
        {
            let room_id = m.room_id;
            self.send(Outgoing::AnnounceVideo { room_id, video: on });
        }
    }
}
