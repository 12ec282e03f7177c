//! The core's requests as RTM quests. RTM has no ringing, busy, decline or mute
//! announcements: those are dropped here (logged at debug level).

use std::time::Instant;

use rmpv::Value;
use tracing::debug;

use super::{MAX_MESSAGE, Purpose, Session};
use crate::command::{self, Verb};
use crate::core::{CallType, Command, Outgoing, RoomId, UserId};
use crate::signaling::rtm::fpnn::map;

/// The RTM room type of a call: 1 voice, 2 video.
fn room_type(call_type: CallType) -> i64 {
    if call_type.has_video() { 2 } else { 1 }
}

impl Session {
    pub(super) fn on_outgoing(&mut self, now: Instant, out: Outgoing) {
        let rid_body = |rid: RoomId| map([("rid", Value::from(rid.0))]);
        match out {
            Outgoing::Agree { to, room_id, .. } => match room_id {
                Some(rid) if self.tokens.contains_key(&rid) => {
                    // Pulled in with a token already: nothing to ask the gate.
                    self.emit(crate::core::SignalingEvent::RemoteConnected {
                        from: to.user_id,
                        room_id: Some(rid),
                        room_type: None,
                    });
                }
                Some(rid) => {
                    let purpose = Purpose::Answer {
                        rid,
                        from: to.user_id,
                    };
                    self.quest(now, "enterRTCRoom", rid_body(rid), purpose);
                }
                None => debug!("agreed to an invite without a room"),
            },
            Outgoing::Enter { room_id, .. } => {
                self.room = Some(room_id);
                if self.tokens.contains_key(&room_id) {
                    self.ask_members(now, room_id);
                } else {
                    let purpose = Purpose::Enter { rid: room_id };
                    self.quest(now, "enterRTCRoom", rid_body(room_id), purpose);
                }
            }
            Outgoing::Exit { room_id } => self.exit(now, room_id),
            Outgoing::CreateRoom { call_type, .. } => self.create(now, call_type),
            Outgoing::Invite { to, room_id, .. } => {
                let body = map([
                    ("rid", Value::from(room_id.0)),
                    ("uids", Value::Array(vec![Value::from(to.0)])),
                ]);
                let purpose = Purpose::Invite { rid: room_id, to };
                self.quest(now, "inviteUserIntoRTCRoom", body, purpose);
            }
            Outgoing::Cancel { .. } => {
                // The room we made for the call is ours to leave.
                if let Some((rid, _)) = self.dialing.take() {
                    self.exit(now, rid);
                }
            }
            Outgoing::CommandReply { to, tag, result } => self.reply(now, to, &tag, result),
            other => debug!(?other, "nothing to send for this over RTM"),
        }
    }

    fn exit(&mut self, now: Instant, rid: RoomId) {
        self.forget_room(rid);
        let body = map([("rid", Value::from(rid.0))]);
        self.quest(now, "exitRTCRoom", body, Purpose::Exit);
    }

    /// We are out of room `rid` (left, removed, or it closed): its token, members and media
    /// connection go.
    pub(super) fn forget_room(&mut self, rid: RoomId) {
        self.tokens.remove(&rid);
        if self.room == Some(rid) {
            self.room = None;
            self.members.clear();
            self.subscribed.clear();
        }
    }

    fn create(&mut self, now: Instant, call_type: CallType) {
        // Room ids are the application's to choose; a random 48-bit id does not collide in
        // practice and stays exact in every client's number type.
        let rid = RoomId((rand::random::<u64>() >> 16) as i64);
        let body = map([
            ("rid", Value::from(rid.0)),
            ("type", Value::from(room_type(call_type))),
            ("enableRecord", Value::from(0)),
        ]);
        self.quest(now, "createRTCRoom", body, Purpose::Create { rid });
    }

    /// Answers a command sent by message with `sendmsg` to its sender, in the command type.
    pub(super) fn reply(
        &mut self,
        now: Instant,
        to: UserId,
        tag: &str,
        result: Result<(), String>,
    ) {
        let Some(mtype) = self.s.command_mtype else {
            return;
        };
        let mut text = match &result {
            Ok(()) => serde_json::json!({"re": tag, "ok": true}),
            Err(e) => serde_json::json!({"re": tag, "ok": false, "error": e}),
        }
        .to_string();
        text.truncate(MAX_MESSAGE);
        let mid = self.next_mid;
        self.next_mid += 1;
        let body = map([
            ("to", Value::from(to.0)),
            ("mid", Value::from(mid)),
            ("mtype", Value::from(mtype)),
            ("msg", Value::from(text)),
            ("attrs", Value::from("")),
        ]);
        self.quest(now, "sendmsg", body, Purpose::Reply);
    }
}

/// Reads a command message: a JSON object with `verb` and the verb's arguments, exactly as
/// the MQTT command payloads (`{"verb": "dial", "user": 42}`).
pub fn parse_command(text: &str) -> Result<Command, String> {
    let mut args = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(m)) => m,
        Ok(_) => return Err("a command is a JSON object with a \"verb\"".into()),
        Err(e) => return Err(format!("not valid JSON: {e}")),
    };
    let verb = match args.remove("verb") {
        Some(serde_json::Value::String(v)) => v,
        _ => return Err("missing \"verb\" (a string such as \"mute\")".into()),
    };
    let payload = serde_json::Value::Object(args).to_string();
    match command::parse(&verb, payload.as_bytes(), false) {
        Ok(request) => match request.verb {
            Verb::Core(c) => Ok(c),
            _ => Err(format!("{verb:?} is not available by message")),
        },
        Err(refused) => Err(refused.error),
    }
}
