//! Messages inside a room that do not change who sits in it: moderation (mute, host role,
//! names), announcements about the sender's seat (hand, camera, screen) and chat. Each needs
//! the sender in the room; each push goes to the others, unless said otherwise.

use serde_json::json;

use super::rooms::{client_push, short_text};
use super::{Handled, Hub, Me, Out, deliver, ok};
use crate::signaling::rtcpeer::wire::{
    self, Chat, ClientPush, FROM_SUPER, MuteAll, MuteMsg, PrivateChat, RoomRef, ShareScreen,
    UpdateClientName, UpdateMeetingName, UpdateVideo, UserRoom,
};

impl Hub {
    /// `meeting/muteMsg`: anyone may announce a mute; it sticks to the target's seat only
    /// when the sender mutes itself or is the host sending `super: fromSuper`.
    pub(super) fn mute(&mut self, out: &mut Out, me: &Me, m: MuteMsg) -> Handled {
        self.own_seat(m.room_id, me.id)?;
        let from_host = m.from_super.as_deref() == Some(FROM_SUPER);
        if from_host {
            self.host_only(m.room_id, me.id, "send host mute orders")?;
        }
        let target = self.seat_mut(m.room_id, m.user_id)?;
        if m.user_id == me.id || from_host {
            target.client.is_muted = Some(m.is_mute);
        }
        self.tell_room(out, m.room_id, Some(me.id), "onMute", &m);
        ok()
    }

    /// `meeting/muteAll` (host only): everyone but the host; the push names the host as
    /// sender and is marked `fromSuper`.
    pub(super) fn mute_all(&mut self, out: &mut Out, me: &Me, m: MuteAll) -> Handled {
        self.host_only(m.room_id, me.id, "mute everyone")?;
        if let Some(room) = self.rooms.get_mut(&m.room_id) {
            for (id, seat) in room.seats.iter_mut() {
                if *id != me.id {
                    seat.client.is_muted = Some(m.is_mute);
                }
            }
        }
        let push = MuteAll {
            user_id: me.id,
            from_super: Some(FROM_SUPER.into()),
            ..m
        };
        self.tell_room(out, push.room_id, Some(me.id), "onMuteAll", &push);
        ok()
    }

    /// `meeting/setCompere` (host only): hands the host role over; everyone, the sender
    /// included, gets `onCompere`.
    pub(super) fn set_compere(&mut self, out: &mut Out, me: &Me, s: UserRoom) -> Handled {
        self.host_only(s.room_id, me.id, "hand over the host role")?;
        self.seat(s.room_id, s.user_id)?;
        if let Some(room) = self.rooms.get_mut(&s.room_id) {
            room.room.super_mode_id = Some(s.user_id);
            for (id, seat) in room.seats.iter_mut() {
                seat.client.is_super_moderator = Some(*id == s.user_id);
            }
        }
        self.tell_room(out, s.room_id, None, "onCompere", &s);
        ok()
    }

    /// `meeting/updateMeetingName` (host only); keeps the appointment id when none is sent.
    pub(super) fn rename_meeting(
        &mut self,
        out: &mut Out,
        me: &Me,
        u: UpdateMeetingName,
    ) -> Handled {
        self.host_only(u.room_id, me.id, "rename the meeting")?;
        short_text("appointmentName", &u.appointment_name)?;
        if let Some(room) = self.rooms.get_mut(&u.room_id) {
            room.room.appointment_name = Some(u.appointment_name.clone());
            room.room.appointment_id = u.appointment_id.or(room.room.appointment_id);
        }
        let push = json!({
            "userId": me.id,
            "roomId": u.room_id,
            "appointmentName": u.appointment_name,
        });
        self.tell_room(out, u.room_id, Some(me.id), "onUpdateMeeting", &push);
        ok()
    }

    /// `meeting/updateClientName`: one's own name, or anyone's by the host; everyone, the
    /// sender included, gets `onUpdateClient`.
    pub(super) fn rename_client(&mut self, out: &mut Out, me: &Me, u: UpdateClientName) -> Handled {
        if u.user_id != me.id {
            self.host_only(u.room_id, me.id, "rename other participants")?;
        }
        short_text("name", &u.name)?;
        let seat = self.seat_mut(u.room_id, u.user_id)?;
        seat.client.name = Some(u.name);
        let client = seat.client.clone();
        let push = json!({"userId": u.user_id, "roomId": u.room_id, "client": client});
        self.tell_room(out, u.room_id, None, "onUpdateClient", &push);
        ok()
    }

    /// `meeting/raiseHand`: `onRaiseHand` with the sender's participant.
    pub(super) fn raise_hand(&self, out: &mut Out, me: &Me, r: RoomRef) -> Handled {
        let client = self.own_seat(r.room_id, me.id)?.client.clone();
        let push = client_push(r.room_id, client);
        self.tell_room(out, r.room_id, Some(me.id), "onRaiseHand", &push);
        ok()
    }

    /// `meeting/updateVideo`: `onPublished` with event `play` (camera on) or `close`.
    pub(super) fn update_video(&self, out: &mut Out, me: &Me, u: UpdateVideo) -> Handled {
        let event = if u.video { "play" } else { "close" };
        self.publish(out, me, u.room_id, event)
    }

    /// `meeting/audioOnlyMeeting`: `onPublished` with event `audioMode`.
    pub(super) fn audio_only(&self, out: &mut Out, me: &Me, r: RoomRef) -> Handled {
        self.publish(out, me, r.room_id, "audioMode")
    }

    fn publish(&self, out: &mut Out, me: &Me, room_id: i64, event: &str) -> Handled {
        let client = self.own_seat(room_id, me.id)?.client.clone();
        let push = ClientPush {
            event: Some(event.into()),
            ..client_push(room_id, client)
        };
        self.tell_room(out, room_id, Some(me.id), "onPublished", &push);
        ok()
    }

    /// `meeting/shareScreen`: `onShareScreen` naming who shares (`null`: sharing stopped).
    pub(super) fn share_screen(&self, out: &mut Out, me: &Me, s: ShareScreen) -> Handled {
        let client = self.own_seat(s.room_id, me.id)?.client.clone();
        let push = ClientPush {
            share_screen_id: Some(s.share_screen_id),
            ..client_push(s.room_id, client)
        };
        self.tell_room(out, s.room_id, Some(me.id), "onShareScreen", &push);
        ok()
    }

    /// `meeting/chat`: `onChat` with the sender's real id and participant.
    pub(super) fn chat(&self, out: &mut Out, me: &Me, m: Chat) -> Handled {
        short_text("content", &m.content)?;
        let client = self.own_seat(m.room_id, me.id)?.client.clone();
        let push = Chat {
            user_id: me.id,
            client: Some(client),
            ..m
        };
        self.tell_room(out, push.room_id, Some(me.id), "onChat", &push);
        ok()
    }

    /// `meeting/privateChat`: `onPrivateChat` to one participant only.
    pub(super) fn private_chat(&self, out: &mut Out, me: &Me, m: PrivateChat) -> Handled {
        short_text("content", &m.content)?;
        let client = self.own_seat(m.room_id, me.id)?.client.clone();
        let to = self.seat_conn(m.room_id, m.other_user_id)?;
        let push = PrivateChat {
            user_id: me.id,
            client: Some(client),
            ..m
        };
        deliver(
            out,
            to,
            wire::frame("meeting", "onPrivateChat", None, &push),
        );
        ok()
    }
}
