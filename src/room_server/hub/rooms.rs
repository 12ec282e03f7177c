//! Who sits in which room: creating rooms, entering, leaving, being removed, finishing, and
//! the lookups every in-room handler starts with (seats, the host check, room pushes).

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;
use serde_json::json;

use super::{ConnId, Handled, Hub, Me, Out, Refusal, RoomState, Seat, deliver, ok};
use crate::room_server::limits::{
    MAX_EMPTY_ROOMS_PER_OWNER, MAX_ROOMS_PER_USER, MAX_TEXT, UNENTERED_ROOM_TTL,
};
use crate::signaling::rtcpeer::wire::{
    self, ClientPush, Enter, FinishPush, NewAppRoom, Room, RoomRef, User, UserRoom, code,
};

/// The most participants a room holds: the cap on `newAppRoom`'s `numberLimit`, and the
/// capacity of a room created by entering an unknown id.
const MAX_PARTICIPANTS: i64 = 200;

/// A room `owner` creates and hosts; callers add the name, capacity and visibility.
fn new_room(id: i64, owner: i64, room_type: i64) -> Room {
    Room {
        id,
        owner_id: Some(owner),
        room_type: Some(room_type),
        is_has_pwd: Some(false),
        super_mode_id: Some(owner),
        ..Room::default()
    }
}

/// A room push about one participant (`EnterRoom`, `ExitRoom`, `onRaiseHand`, …); callers
/// add what the particular push carries.
pub(super) fn client_push(room_id: i64, client: wire::Client) -> ClientPush {
    ClientPush {
        room_id,
        client,
        result: None,
        event: None,
        share_screen_id: None,
    }
}

/// The participant `me` becomes on entering: named by the request, else by the account.
fn participant(me: &Me, username: Option<String>, user: &User, host: bool) -> wire::Client {
    wire::Client {
        id: me.id,
        name: username.or(user.name.clone()),
        email: user.email.clone(),
        phone: user.phone.clone(),
        pictureurl: user.photo.clone(),
        company: user.company.clone(),
        mode: Some(me.device.clone()),
        stream_id: Some(me.id),
        broad_cast_id: Some(me.id),
        is_muted: Some(false),
        is_super_moderator: Some(host),
    }
}

/// Refusal when a request's `userId` is not the sender's own.
fn must_be_me(me: &Me, user_id: i64) -> Result<(), Refusal> {
    if user_id == me.id {
        Ok(())
    } else {
        Err(Refusal::new(
            code::UNAUTHORIZED,
            "userId is not the logged-in user",
        ))
    }
}

/// Refusal when a text field is longer than [`MAX_TEXT`].
pub(super) fn short_text(field: &str, text: &str) -> Result<(), Refusal> {
    if text.len() <= MAX_TEXT {
        Ok(())
    } else {
        Err(Refusal::new(
            code::BAD_REQUEST,
            format!("field `{field}`: longer than {MAX_TEXT} bytes"),
        ))
    }
}

/// Refusal when the sender is not in the room it names.
fn not_entered(room_id: i64) -> Refusal {
    Refusal::new(
        code::FAILED,
        format!("not in room {room_id}: enter it first"),
    )
}

/// Refusal when the participant a request names is not in the room.
pub(super) fn not_in_room(user: i64, room_id: i64) -> Refusal {
    Refusal::new(
        code::FAILED,
        format!("client {user} is not in room {room_id}"),
    )
}

impl RoomState {
    /// An empty room, created `now`.
    fn new(room: Room, now: Instant) -> RoomState {
        RoomState {
            room,
            seats: BTreeMap::new(),
            created: now,
            entered: false,
        }
    }

    /// The host left: the longest-present participant (the lowest id) takes over.
    fn pass_host_role(&mut self) {
        let next = self.seats.keys().next().copied();
        self.room.super_mode_id = next;
        if let Some(seat) = next.and_then(|n| self.seats.get_mut(&n)) {
            seat.client.is_super_moderator = Some(true);
        }
    }
}

impl Hub {
    /// `room/newAppRoom`: a private room the sender hosts, empty until someone enters.
    pub(super) fn new_app_room(&mut self, me: &Me, r: NewAppRoom) -> Handled {
        must_be_me(me, r.user_id)?;
        if !(1..=MAX_PARTICIPANTS).contains(&r.number_limit) {
            return Err(Refusal::new(
                code::BAD_REQUEST,
                "field `numberLimit`: must be between 1 and 200",
            ));
        }
        short_text("name", &r.name)?;
        self.drop_unentered_rooms();
        let empty = self
            .rooms
            .values()
            .filter(|r| r.room.owner_id == Some(me.id) && r.seats.is_empty())
            .count();
        if empty >= MAX_EMPTY_ROOMS_PER_OWNER {
            return Err(Refusal::new(
                code::FAILED,
                format!("you have {empty} rooms nobody entered yet: enter or finish one first"),
            ));
        }
        let id = self.new_room_id();
        let room = Room {
            name: Some(r.name),
            number_limit: Some(r.number_limit),
            is_public: Some(false),
            ..new_room(id, me.id, r.roomtype)
        };
        let now = self.now();
        self.rooms.insert(id, RoomState::new(room, now));
        Ok(json!({ "roomId": id }))
    }

    /// Removes rooms nobody entered within [`UNENTERED_ROOM_TTL`].
    fn drop_unentered_rooms(&mut self) {
        let now = self.now();
        self.rooms.retain(|_, r| {
            r.entered || now.saturating_duration_since(r.created) < UNENTERED_ROOM_TTL
        });
    }

    /// Refused when `me` already sits in [`MAX_ROOMS_PER_USER`] rooms other than `room_id`.
    fn may_enter_another(&self, me: i64, room_id: i64) -> Result<(), Refusal> {
        let sitting = self
            .rooms
            .iter()
            .filter(|(id, r)| **id != room_id && r.seats.contains_key(&me))
            .count();
        if sitting >= MAX_ROOMS_PER_USER {
            return Err(Refusal::new(
                code::FAILED,
                format!("you are in {sitting} rooms already: exit one first"),
            ));
        }
        Ok(())
    }

    fn new_room_id(&mut self) -> i64 {
        while self.rooms.contains_key(&self.next_room) {
            self.next_room += 1;
        }
        let id = self.next_room;
        self.next_room += 1;
        id
    }

    /// `meeting/enter`. An unknown room is created (a development server: rooms do not
    /// survive a restart); entering again from another socket replaces the older one, which
    /// gets `EnterRoom` with result 9.
    pub(super) fn enter(&mut self, out: &mut Out, me: &Me, e: Enter) -> Handled {
        must_be_me(me, e.user_id)?;
        if !(1..=3).contains(&e.room_type) {
            return Err(Refusal::new(
                code::BAD_REQUEST,
                "field `roomType`: must be 1, 2 or 3",
            ));
        }
        if let Some(name) = &e.username {
            short_text("username", name)?;
        }
        self.may_enter_another(me.id, e.room_id)?;
        let user = self.accounts.user(me.id).cloned().unwrap_or_default();
        let room = self.room_to_enter(me, &e);
        let limit = room.room.number_limit.unwrap_or(MAX_PARTICIPANTS) as usize;
        let old = room.seats.remove(&me.id);
        if old.is_none() && room.seats.len() >= limit {
            return Err(Refusal::new(
                code::FAILED,
                format!("room {} is full ({limit})", e.room_id),
            ));
        }
        let host = *room.room.super_mode_id.get_or_insert(me.id);
        let client = participant(me, e.username, &user, host == me.id);
        if let Some(old) = old.filter(|old| old.conn != me.conn) {
            let push = ClientPush {
                result: Some(code::REPLACED),
                ..client_push(e.room_id, old.client)
            };
            deliver(
                out,
                old.conn,
                wire::frame("meeting", "EnterRoom", None, &push),
            );
        }
        let members: Vec<wire::Client> = room.seats.values().map(|s| s.client.clone()).collect();
        let seat = Seat {
            client: client.clone(),
            conn: me.conn,
        };
        room.seats.insert(me.id, seat);
        room.entered = true;
        let snapshot = room.room.clone();
        let push = ClientPush {
            result: Some(code::OK),
            ..client_push(e.room_id, client.clone())
        };
        self.tell_room(out, e.room_id, Some(me.id), "EnterRoom", &push);
        Ok(json!({ "client": client, "members": members, "room": snapshot }))
    }

    /// The room `e` names, created (public, hosted by the sender) when unknown.
    fn room_to_enter(&mut self, me: &Me, e: &Enter) -> &mut RoomState {
        let now = self.now();
        self.rooms.entry(e.room_id).or_insert_with(|| {
            let room = Room {
                name: Some(format!("room {}", e.room_id)),
                number_limit: Some(MAX_PARTICIPANTS),
                is_public: Some(true),
                ..new_room(e.room_id, me.id, e.room_type)
            };
            RoomState::new(room, now)
        })
    }

    /// `meeting/exit`.
    pub(super) fn exit(&mut self, out: &mut Out, me: &Me, r: RoomRef) -> Handled {
        self.own_seat(r.room_id, me.id)?;
        self.leave(out, r.room_id, me.id);
        ok()
    }

    /// `meeting/kickOut` (host only): everyone, the removed one included, gets `tiren`,
    /// then the others get its `ExitRoom`.
    pub(super) fn kick_out(&mut self, out: &mut Out, me: &Me, k: UserRoom) -> Handled {
        self.host_only(k.room_id, me.id, "remove participants")?;
        self.seat(k.room_id, k.user_id)?;
        self.tell_room(out, k.room_id, Some(me.id), "tiren", &k);
        self.leave(out, k.room_id, k.user_id);
        ok()
    }

    /// `meeting/finish` (host only): the others get `onFinish` and the room is gone.
    pub(super) fn finish(&mut self, out: &mut Out, me: &Me, r: RoomRef) -> Handled {
        self.host_only(r.room_id, me.id, "finish the meeting")?;
        let push = FinishPush {
            room_id: r.room_id,
            user_id: Some(me.id),
        };
        self.tell_room(out, r.room_id, Some(me.id), "onFinish", &push);
        self.rooms.remove(&r.room_id);
        ok()
    }

    /// Removes `user` from a room and tells the others; passes the host role on if needed
    /// and drops the room once empty.
    pub(super) fn leave(&mut self, out: &mut Out, room_id: i64, user: i64) {
        let Some(room) = self.rooms.get_mut(&room_id) else {
            return;
        };
        let Some(seat) = room.seats.remove(&user) else {
            return;
        };
        if room.room.super_mode_id == Some(user) {
            room.pass_host_role();
        }
        let drop_room = room.seats.is_empty();
        let push = client_push(room_id, seat.client);
        self.tell_room(out, room_id, None, "ExitRoom", &push);
        if drop_room {
            self.rooms.remove(&room_id);
        }
    }

    /// The room `user` is in (the first by id if several).
    pub(super) fn room_of(&self, user: i64) -> Option<i64> {
        self.rooms
            .iter()
            .find(|(_, r)| r.seats.contains_key(&user))
            .map(|(id, _)| *id)
    }

    /// Sends `meeting/<method>` with `body` to everyone in the room but `except`.
    pub(super) fn tell_room(
        &self,
        out: &mut Out,
        room_id: i64,
        except: Option<i64>,
        method: &str,
        body: &impl Serialize,
    ) {
        let Some(room) = self.rooms.get(&room_id) else {
            return;
        };
        let text = wire::frame("meeting", method, None, body);
        for (id, seat) in &room.seats {
            if Some(*id) != except {
                deliver(out, seat.conn, text.clone());
            }
        }
    }

    /// The sender's own seat; refused with "enter it first".
    pub(super) fn own_seat(&self, room_id: i64, me: i64) -> Result<&Seat, Refusal> {
        self.rooms
            .get(&room_id)
            .and_then(|r| r.seats.get(&me))
            .ok_or_else(|| not_entered(room_id))
    }

    /// The seat of a participant a request names; refused with "client … is not in room".
    pub(super) fn seat(&self, room_id: i64, user: i64) -> Result<&Seat, Refusal> {
        self.rooms
            .get(&room_id)
            .and_then(|r| r.seats.get(&user))
            .ok_or_else(|| not_in_room(user, room_id))
    }

    /// [`Hub::seat`], to change it.
    pub(super) fn seat_mut(&mut self, room_id: i64, user: i64) -> Result<&mut Seat, Refusal> {
        self.rooms
            .get_mut(&room_id)
            .and_then(|r| r.seats.get_mut(&user))
            .ok_or_else(|| not_in_room(user, room_id))
    }

    /// Whether the sender may act as host: it must sit in the room and be its host or its
    /// owner.
    pub(super) fn host_only(&self, room_id: i64, me: i64, what: &str) -> Result<(), Refusal> {
        let room = self
            .rooms
            .get(&room_id)
            .ok_or_else(|| Refusal::new(code::FAILED, format!("no room {room_id}")))?;
        if !room.seats.contains_key(&me) {
            return Err(not_entered(room_id));
        }
        if room.room.super_mode_id == Some(me) || room.room.owner_id == Some(me) {
            Ok(())
        } else {
            Err(Refusal::new(
                code::FAILED,
                format!("only the host may {what}"),
            ))
        }
    }

    /// The connection a participant sits on (for one-to-one messages).
    pub(super) fn seat_conn(&self, room_id: i64, user: i64) -> Result<ConnId, Refusal> {
        self.seat(room_id, user).map(|s| s.conn)
    }
}
