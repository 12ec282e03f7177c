//! Local commands: buttons, dashboards, the CLI, remote users.

use std::time::Instant;

use super::{Agent, DialStep, Dialing, Meeting, Origin, Phase};
use crate::core::action::{EndReason, MediaCommand, Outgoing, RejectReason};
use crate::core::agent::CommandError;
use crate::core::input::Command;
use crate::core::timers::Timer;
use crate::core::types::{CallType, Peer};

impl Agent {
    pub(super) fn idle_and_registered(&self) -> Result<(), CommandError> {
        match &self.phase {
            Phase::Idle => {}
            _ => return Err(CommandError::Busy(self.state().call)),
        }
        if !self.registered {
            return Err(CommandError::NotRegistered);
        }
        Ok(())
    }

    pub(super) fn on_command(
        &mut self,
        now: Instant,
        command: Command,
    ) -> Result<(), CommandError> {
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
                self.media(MediaCommand::Prepare);
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
                self.share(command == Command::ShareStart)?
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

    /// Starts or stops sharing the HDMI input as the screen (`meeting/shareScreen`).
    pub(super) fn share(&mut self, on: bool) -> Result<(), CommandError> {
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
        Ok(())
    }
}
