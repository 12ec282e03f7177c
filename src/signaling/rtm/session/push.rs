//! Quests the gate sends us ("pushes"): every two-way one is answered, an unknown one with
//! `{}` (logged once), a malformed one with an error answer that names the field.

use std::time::Instant;

use rmpv::Value;
use tracing::{debug, info, warn};

use super::{CODE_MISSING_PARAMETER, CODE_MISTYPED_PARAMETER, Fatal, MAX_MESSAGE, Session};
use crate::config::PullPolicy;
use crate::core::{
    CallType, ClientId, Member, ModeratorOrder, Peer, RoomId, SignalingEvent, UserId,
};
use crate::signaling::rtm::fpnn::{self, as_i64, as_str, empty_map, field};

/// A required field that is missing or of the wrong type: FPNN's readers tell the two apart
/// (`FPNN_EC_PROTO_KEY_NOT_FOUND`, `FPNN_EC_PROTO_TYPE_CONVERT`), and so do we.
enum Missing {
    Absent(&'static str),
    Mistyped(&'static str),
}

impl Missing {
    /// The error answer's code and explanation.
    fn code_and_text(&self, method: &str) -> (i64, String) {
        match self {
            Missing::Absent(key) => (
                CODE_MISSING_PARAMETER,
                format!("{method}: missing field {key}"),
            ),
            Missing::Mistyped(key) => (
                CODE_MISTYPED_PARAMETER,
                format!("{method}: field {key} has the wrong type"),
            ),
        }
    }
}

/// `key`'s value converted by `convert`, or which way it is missing.
fn typed<'a, T>(
    body: &'a Value,
    key: &'static str,
    convert: impl FnOnce(&'a Value) -> Option<T>,
) -> Result<T, Missing> {
    let value = field(body, key).ok_or(Missing::Absent(key))?;
    convert(value).ok_or(Missing::Mistyped(key))
}

fn int(body: &Value, key: &'static str) -> Result<i64, Missing> {
    typed(body, key, as_i64)
}

fn room(body: &Value) -> Result<RoomId, Missing> {
    int(body, "rid").map(RoomId)
}

fn user(body: &Value, key: &'static str) -> Result<UserId, Missing> {
    int(body, key).map(UserId)
}

fn text<'a>(body: &'a Value, key: &'static str) -> Result<&'a str, Missing> {
    typed(body, key, as_str)
}

impl Session {
    /// A quest from the gate.
    pub(super) fn on_push(
        &mut self,
        now: Instant,
        seq: Option<u32>,
        method: &str,
        body: &Value,
    ) -> Result<(), Fatal> {
        if method == "kickout" {
            info!("the RTM gate kicked this uid out: it logged in somewhere else");
            if let Some(room_id) = self.room.take() {
                self.emit(SignalingEvent::ReplacedByOtherLogin { room_id });
            }
            return Err(Fatal::Kicked);
        }
        match self.dispatch(now, method, body) {
            Ok(()) => self.answer(seq, empty_map()),
            Err(missing) => {
                let (code, ex) = missing.code_and_text(method);
                self.odd(method, &ex);
                self.error_answer(seq, code, &ex);
            }
        }
        Ok(())
    }

    fn dispatch(&mut self, now: Instant, method: &str, body: &Value) -> Result<(), Missing> {
        match method {
            "ping" => {}
            "pushInviteIntoRTCRoom" => self.on_invite(room(body)?, user(body, "fromUid")?),
            "pushPullIntoRTCRoom" => self.on_pull(room(body)?, text(body, "token")?),
            "pushKickOutRTCRoom" => {
                let room_id = room(body)?;
                info!(%room_id, by = ?field(body, "fromUid").and_then(as_i64), "removed from the RTC room");
                self.forget_room(room_id);
                self.emit(SignalingEvent::Kicked {
                    room_id,
                    client_id: ClientId(self.s.uid.0),
                });
            }
            "pushRTCRoomClosed" => {
                let room_id = room(body)?;
                self.forget_room(room_id);
                self.emit(SignalingEvent::Finished { room_id, by: None })
            }
            "pushEnterRTCRoom" => {
                let (rid, uid) = (room(body)?, user(body, "uid")?);
                self.member_joined(now, rid, uid.0);
                self.on_member_entered(rid, uid, body)
            }
            "pushExitRTCRoom" => {
                let (rid, uid) = (room(body)?, int(body, "uid")?);
                self.member_left(now, rid, uid);
                self.emit(SignalingEvent::MemberLeft {
                    room_id: rid,
                    client_id: ClientId(uid),
                })
            }
            "pushAdminCommand" => self.on_admin(int(body, "command")?, body),
            "pushMicStatus" => debug!(?body, "pushMicStatus (meaning undocumented)"),
            "pushmsg" => self.on_message(now, None, body)?,
            "pushroommsg" => {
                let rid = room(body)?;
                self.on_message(now, Some(rid), body)?
            }
            "kickoutroom" => {
                info!(rid = ?field(body, "rid").and_then(as_i64), "removed from a messaging room")
            }
            other => self.odd(other, "a push this device does not handle; answered {}"),
        }
        Ok(())
    }

    fn on_invite(&mut self, rid: RoomId, from: UserId) {
        self.emit(SignalingEvent::Invite {
            from: Peer::user(from),
            call_type: CallType::Video,
            room_id: Some(rid),
        });
    }

    fn on_pull(&mut self, rid: RoomId, token: &str) {
        // The pull's token admits us to the room directly: no `enterRTCRoom` on this gate.
        self.tokens.insert(rid, token.to_string());
        match self.s.pull {
            PullPolicy::Obey => self.emit(SignalingEvent::PulledIntoRoom {
                room_id: rid,
                call_type: CallType::Video,
            }),
            // No inviter is named: uid 0 is never on an allow list, so only `always` answers.
            PullPolicy::Invite => self.on_invite(rid, UserId(0)),
        }
    }

    fn on_member_entered(&mut self, rid: RoomId, uid: UserId, body: &Value) {
        if self.dialing == Some((rid, uid)) {
            // The user we invited came in: that is their answer.
            self.dialing = None;
            self.emit(SignalingEvent::RemoteAgreed {
                from: uid,
                room_id: Some(rid),
            });
        }
        self.emit(SignalingEvent::MemberEntered {
            room_id: rid,
            member: Member {
                client_id: ClientId(uid.0),
                name: field(body, "nickName").and_then(as_str).map(str::to_string),
                muted: false,
                host: false,
            },
        });
    }

    fn on_admin(&mut self, command: i64, body: &Value) {
        let uids = super::int_list(body, "uids");
        if !uids.is_empty() && !uids.contains(&self.s.uid.0) {
            debug!(command, ?uids, "admin command for other members");
            return;
        }
        let order = match command {
            2 => ModeratorOrder::ForbidAudio,
            3 => ModeratorOrder::AllowAudio,
            4 => ModeratorOrder::ForbidVideo,
            5 => ModeratorOrder::AllowVideo,
            6 => ModeratorOrder::CloseMic,
            7 => ModeratorOrder::CloseCamera,
            0 | 1 => {
                info!(granted = command == 0, "room administrator rights changed");
                return;
            }
            other => {
                self.odd("pushAdminCommand", &format!("unknown command {other}"));
                return;
            }
        };
        self.emit(SignalingEvent::Moderated { order });
    }

    fn on_message(
        &mut self,
        now: Instant,
        room_id: Option<RoomId>,
        body: &Value,
    ) -> Result<(), Missing> {
        let from = user(body, "from")?;
        let mid = int(body, "mid")?;
        let kind = int(body, "mtype")?;
        let text = typed(body, "msg", fpnn::as_bytes)?;
        if !self.first_sighting(from, mid) {
            debug!(%from, mid, "repeated message dropped");
            return Ok(());
        }
        if text.len() > MAX_MESSAGE {
            warn!(%from, mid, bytes = text.len(), "message over 64 KiB dropped");
            return Ok(());
        }
        let text = String::from_utf8_lossy(text).into_owned();
        if Some(kind) == self.s.command_mtype {
            self.on_command_message(now, from, mid, &text);
        } else {
            self.emit(SignalingEvent::Message {
                from,
                room_id,
                kind,
                text,
            });
        }
        Ok(())
    }

    /// `{"verb": "mute", …}`: the same command as over MQTT, answered by message.
    fn on_command_message(&mut self, now: Instant, from: UserId, mid: i64, text: &str) {
        let tag = mid.to_string();
        match super::request::parse_command(text) {
            Ok(command) => self.emit(SignalingEvent::RemoteCommand { from, tag, command }),
            Err(error) => {
                info!(%from, %error, "command by message refused");
                self.reply(now, from, &tag, Err(error));
            }
        }
    }
}
