//! The room server's state and its message handlers. Transport-free: every handler takes a
//! connection id and a frame and returns the frames to deliver, so the whole dialect server
//! is testable without sockets.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Value, json};

use super::accounts::Accounts;
use crate::signaling::rtcpeer::wire::{
    self, AccountParams, CallMsg, Chat, ClientPush, Enter, Envelope, FROM_SUPER, LoginReply,
    MediaBye, MediaCandidate, MediaSdp, MuteAll, MuteMsg, NewAppRoom, PrivateChat, Register, Room,
    RoomRef, ShareScreen, SignReply, UpdateClientName, UpdateMeetingName, UpdateVideo, UserRoom,
    WireError, code, reply,
};
use route::{MediaKind, Route};

mod route;

/// A WebSocket connection's id.
pub type ConnId = u64;

/// A frame to deliver to a connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The connection.
    pub to: ConnId,
    /// The frame.
    pub text: String,
}

#[derive(Debug)]
struct Conn {
    user_id: i64,
    sid: String,
    /// `deviceType` once registered.
    device: Option<String>,
}

#[derive(Debug)]
struct Seat {
    client: wire::Client,
    conn: ConnId,
}

#[derive(Debug)]
struct RoomState {
    room: Room,
    seats: BTreeMap<i64, Seat>,
    /// Created by `newAppRoom` or by entering an unknown id: removed when empty.
    temporary: bool,
}

/// Someone online, for the browser page's device list.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Online {
    /// User id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// Login account.
    pub account: String,
    /// Registered device type.
    pub device_type: String,
    /// The room they are in, if any.
    pub room_id: Option<i64>,
}

/// All server state.
#[derive(Debug)]
pub struct Hub {
    accounts: Accounts,
    sessions: HashMap<String, i64>,
    conns: HashMap<ConnId, Conn>,
    rooms: BTreeMap<i64, RoomState>,
    next_room: i64,
}

type Out = Vec<Delivery>;

fn deliver(out: &mut Out, to: ConnId, text: String) {
    out.push(Delivery { to, text });
}

fn new_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// A handler's failure: becomes a reply with `result` and `message`.
struct Refusal {
    code: i64,
    message: String,
}

impl Refusal {
    fn new(code: i64, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
        }
    }
}

impl From<WireError> for Refusal {
    fn from(e: WireError) -> Refusal {
        Refusal::new(e.code(), e.to_string())
    }
}

type Handled = Result<Value, Refusal>;

fn ok() -> Handled {
    Ok(json!({}))
}

impl Hub {
    /// A hub with the configured accounts and apps.
    pub fn new(accounts: Accounts) -> Hub {
        Hub {
            accounts,
            sessions: HashMap::new(),
            conns: HashMap::new(),
            rooms: BTreeMap::new(),
            next_room: 1000,
        }
    }

    // ------------------------------------------------------------ HTTP side

    /// `GET getSign?appId&secret`.
    pub fn get_sign(&mut self, app_id: Option<&str>, secret: Option<&str>) -> SignReply {
        match (app_id, secret) {
            (Some(app), Some(secret)) => match self.accounts.sign(app, secret) {
                Some(sign) => SignReply {
                    code: 200,
                    data: Some(sign),
                    message: Some("ok".into()),
                },
                None => SignReply {
                    code: 401,
                    data: None,
                    message: Some("appId or secret is wrong".into()),
                },
            },
            _ => SignReply {
                code: 400,
                data: None,
                message: Some("appId and secret are both required".into()),
            },
        }
    }

    /// `POST account` with the `params` JSON.
    pub fn account(&mut self, params: &str) -> LoginReply {
        let fail = |result: i64, method: Option<&str>, message: String| LoginReply {
            result,
            module: Some("account".into()),
            method: method.map(str::to_string),
            sid: None,
            user: None,
            company: None,
            organisation: None,
            message: Some(message),
        };
        let params: AccountParams = match serde_json::from_str(params) {
            Ok(p) => p,
            Err(e) => return fail(code::BAD_REQUEST, None, format!("bad params: {e}")),
        };
        match params {
            AccountParams::Login { name, password } => {
                match self.accounts.check(&name, &password) {
                    Some(user) => {
                        let sid = new_token();
                        self.sessions.insert(sid.clone(), user.id);
                        LoginReply {
                            result: code::OK,
                            module: Some("account".into()),
                            method: Some("login".into()),
                            sid: Some(sid),
                            company: Some(self.accounts.company()),
                            user: Some(user),
                            organisation: None,
                            message: None,
                        }
                    }
                    None => fail(code::FAILED, Some("login"), "wrong name or password".into()),
                }
            }
            AccountParams::DockingLogin {
                account,
                user_name,
                appkey,
                sign,
                ..
            } => match self.accounts.docking(
                &account,
                user_name.as_deref(),
                appkey.as_deref(),
                &sign,
            ) {
                Ok((user, org)) => {
                    let sid = new_token();
                    self.sessions.insert(sid.clone(), user.id);
                    LoginReply {
                        result: code::OK,
                        module: Some("account".into()),
                        method: Some("dockingLogin".into()),
                        sid: Some(sid),
                        user: Some(user),
                        company: None,
                        organisation: Some(org),
                        message: None,
                    }
                }
                Err((code, message)) => fail(code, Some("dockingLogin"), message.into()),
            },
            AccountParams::Logout { sid, user_id } => {
                if self.sessions.get(&sid) == Some(&user_id) {
                    self.sessions.remove(&sid);
                    LoginReply {
                        result: code::OK,
                        module: Some("account".into()),
                        method: Some("logout".into()),
                        sid: None,
                        user: None,
                        company: None,
                        organisation: None,
                        message: None,
                    }
                } else {
                    fail(code::FAILED, Some("logout"), "no such session".into())
                }
            }
        }
    }

    /// The user a session id belongs to.
    pub fn session_user(&self, sid: &str) -> Option<i64> {
        self.sessions.get(sid).copied()
    }

    /// Everyone registered.
    pub fn online(&self) -> Vec<Online> {
        let mut seen = HashSet::new();
        let mut list: Vec<Online> = self
            .conns
            .values()
            .filter_map(|c| {
                let device = c.device.clone()?;
                if !seen.insert((c.user_id, device.clone())) {
                    return None;
                }
                let user = self.accounts.user(c.user_id)?;
                Some(Online {
                    id: c.user_id,
                    name: user.name.clone().unwrap_or_default(),
                    account: user.account.clone().unwrap_or_default(),
                    device_type: device,
                    room_id: self.room_of(c.user_id),
                })
            })
            .collect();
        list.sort_by_key(|o| o.id);
        list
    }

    fn room_of(&self, user: i64) -> Option<i64> {
        self.rooms
            .iter()
            .find(|(_, r)| r.seats.contains_key(&user))
            .map(|(id, _)| *id)
    }

    /// The connections registered for `user` (for diagnostics and tests).
    pub fn conns_of(&self, user: i64) -> Vec<ConnId> {
        let mut v: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.user_id == user && c.device.is_some())
            .map(|(id, _)| *id)
            .collect();
        v.sort_unstable();
        v
    }

    // ------------------------------------------------------------ socket side

    /// A WebSocket connected with `sid`. `false`: unknown session.
    pub fn connect(&mut self, conn: ConnId, sid: &str) -> bool {
        let Some(&user_id) = self.sessions.get(sid) else {
            return false;
        };
        self.conns.insert(
            conn,
            Conn {
                user_id,
                sid: sid.to_string(),
                device: None,
            },
        );
        true
    }

    /// A WebSocket closed: leave every room, unregister.
    pub fn disconnect(&mut self, conn: ConnId) -> Out {
        let mut out = Vec::new();
        let Some(c) = self.conns.remove(&conn) else {
            return out;
        };
        let rooms: Vec<i64> = self
            .rooms
            .iter()
            .filter(|(_, r)| r.seats.get(&c.user_id).is_some_and(|s| s.conn == conn))
            .map(|(id, _)| *id)
            .collect();
        for room_id in rooms {
            self.leave(&mut out, room_id, c.user_id);
        }
        out
    }

    /// Handles one text frame from `conn`.
    pub fn frame(&mut self, conn: ConnId, text: &str) -> Out {
        let mut out = Vec::new();
        let env = match Envelope::parse(text) {
            Ok(env) => env,
            Err(e) => {
                // Echo what routing we can so a client can match the error to its request.
                let (module, method, req_id) = salvage(text);
                deliver(
                    &mut out,
                    conn,
                    reply(
                        &module,
                        &method,
                        req_id.as_ref(),
                        e.code(),
                        Some(&e.to_string()),
                        &json!({}),
                    ),
                );
                return out;
            }
        };
        let result = self.dispatch(conn, &env, &mut out);
        let (code, message, extra) = match result {
            Ok(extra) => (code::OK, None, extra),
            Err(r) => (r.code, Some(r.message), json!({})),
        };
        // Replies go first: the sender learns the outcome before anything it caused.
        out.insert(
            0,
            Delivery {
                to: conn,
                text: reply(
                    &env.module,
                    &env.method,
                    env.req_id.as_ref(),
                    code,
                    message.as_deref(),
                    &extra,
                ),
            },
        );
        out
    }

    fn dispatch(&mut self, conn: ConnId, env: &Envelope, out: &mut Out) -> Handled {
        let Some(c) = self.conns.get(&conn) else {
            return Err(Refusal::new(code::UNAUTHORIZED, "unknown connection"));
        };
        let me = c.user_id;
        let route = Route::parse(&env.module, &env.method);
        if c.device.is_none() && route.is_none_or(Route::needs_registration) {
            return Err(Refusal::new(
                code::UNAUTHORIZED,
                "not registered: send call/doRegister first",
            ));
        }
        let Some(route) = route else {
            return Err(Refusal::new(
                code::UNKNOWN,
                format!("unknown module/method {}/{}", env.module, env.method),
            ));
        };
        // Empty only before registration, when just `Register` and `Logout` get here.
        let device = c.device.clone().unwrap_or_default();
        match route {
            Route::Register => {
                let r: Register = env.decode()?;
                if r.sid != c.sid || r.user_id != me {
                    return Err(Refusal::new(
                        code::UNAUTHORIZED,
                        "SID and userId do not match this session",
                    ));
                }
                let device = r.device_type.unwrap_or_else(|| "pc".into());
                if !matches!(
                    device.as_str(),
                    "pc" | "Android" | "iOS" | "webphone" | "tv"
                ) {
                    return Err(Refusal::new(
                        code::BAD_REQUEST,
                        format!("field `deviceType`: unknown device type {device:?}"),
                    ));
                }
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.device = Some(device);
                }
                ok()
            }
            Route::Logout => {
                self.sessions.retain(|_, u| *u != me);
                ok()
            }
            Route::Call(kind) => self.call(out, me, &device, kind.method(), env),
            Route::NewAppRoom => {
                let r: NewAppRoom = env.decode()?;
                if r.user_id != me {
                    return Err(Refusal::new(
                        code::UNAUTHORIZED,
                        "userId is not the logged-in user",
                    ));
                }
                if !(1..=200).contains(&r.number_limit) {
                    return Err(Refusal::new(
                        code::BAD_REQUEST,
                        "field `numberLimit`: must be between 1 and 200",
                    ));
                }
                let id = self.new_room_id();
                self.rooms.insert(
                    id,
                    RoomState {
                        room: Room {
                            id,
                            name: Some(r.name),
                            owner_id: Some(me),
                            room_type: Some(r.roomtype),
                            number_limit: Some(r.number_limit),
                            is_public: Some(false),
                            is_has_pwd: Some(false),
                            super_mode_id: Some(me),
                            ..Room::default()
                        },
                        seats: BTreeMap::new(),
                        temporary: true,
                    },
                );
                Ok(json!({ "roomId": id }))
            }
            Route::Enter => self.enter(out, conn, me, &device, env.decode()?),
            Route::Exit => {
                let r: RoomRef = env.decode()?;
                self.seat(r.room_id, me)?;
                self.leave(out, r.room_id, me);
                ok()
            }
            Route::Finish => {
                let r: RoomRef = env.decode()?;
                self.host_only(r.room_id, me, "finish the meeting")?;
                let room = self.rooms.remove(&r.room_id).map(|r| r.seats);
                for (id, seat) in room.into_iter().flatten() {
                    if id != me {
                        deliver(
                            out,
                            seat.conn,
                            wire::frame(
                                "meeting",
                                "onFinish",
                                None,
                                &json!({"roomId": r.room_id, "userId": me}),
                            ),
                        );
                    }
                }
                ok()
            }
            Route::MuteMsg => {
                let m: MuteMsg = env.decode()?;
                self.seat(m.room_id, me)?;
                let from_host = m.from_super.as_deref() == Some(FROM_SUPER);
                if from_host {
                    self.host_only(m.room_id, me, "send host mute orders")?;
                }
                let target = self.seat(m.room_id, m.user_id).map_err(|_| {
                    Refusal::new(
                        code::FAILED,
                        format!("client {} is not in room {}", m.user_id, m.room_id),
                    )
                })?;
                let _ = target;
                if (m.user_id == me || from_host)
                    && let Some(seat) = self
                        .rooms
                        .get_mut(&m.room_id)
                        .and_then(|r| r.seats.get_mut(&m.user_id))
                {
                    seat.client.is_muted = Some(m.is_mute);
                }
                self.broadcast(
                    out,
                    m.room_id,
                    Some(me),
                    &wire::frame("meeting", "onMute", None, &m),
                );
                ok()
            }
            Route::MuteAll => {
                let m: MuteAll = env.decode()?;
                self.host_only(m.room_id, me, "mute everyone")?;
                if let Some(room) = self.rooms.get_mut(&m.room_id) {
                    for (id, seat) in room.seats.iter_mut() {
                        if *id != me {
                            seat.client.is_muted = Some(m.is_mute);
                        }
                    }
                }
                let push = MuteAll {
                    user_id: me,
                    from_super: Some(FROM_SUPER.into()),
                    ..m
                };
                self.broadcast(
                    out,
                    m.room_id,
                    Some(me),
                    &wire::frame("meeting", "onMuteAll", None, &push),
                );
                ok()
            }
            Route::KickOut => {
                let k: UserRoom = env.decode()?;
                self.host_only(k.room_id, me, "remove participants")?;
                self.seat(k.room_id, k.user_id).map_err(|_| {
                    Refusal::new(
                        code::FAILED,
                        format!("client {} is not in room {}", k.user_id, k.room_id),
                    )
                })?;
                self.broadcast(
                    out,
                    k.room_id,
                    Some(me),
                    &wire::frame("meeting", "tiren", None, &k),
                );
                self.leave(out, k.room_id, k.user_id);
                ok()
            }
            Route::RaiseHand => {
                let r: RoomRef = env.decode()?;
                let client = self.seat(r.room_id, me)?;
                self.broadcast(
                    out,
                    r.room_id,
                    Some(me),
                    &wire::frame(
                        "meeting",
                        "onRaiseHand",
                        None,
                        &json!({"roomId": r.room_id, "client": client}),
                    ),
                );
                ok()
            }
            Route::SetCompere => {
                let s: UserRoom = env.decode()?;
                self.host_only(s.room_id, me, "hand over the host role")?;
                self.seat(s.room_id, s.user_id).map_err(|_| {
                    Refusal::new(
                        code::FAILED,
                        format!("client {} is not in room {}", s.user_id, s.room_id),
                    )
                })?;
                if let Some(room) = self.rooms.get_mut(&s.room_id) {
                    room.room.super_mode_id = Some(s.user_id);
                    for (id, seat) in room.seats.iter_mut() {
                        seat.client.is_super_moderator = Some(*id == s.user_id);
                    }
                }
                self.broadcast(
                    out,
                    s.room_id,
                    None,
                    &wire::frame("meeting", "onCompere", None, &s),
                );
                ok()
            }
            Route::Chat => {
                let m: Chat = env.decode()?;
                let client = self.seat(m.room_id, me)?;
                let push = Chat {
                    user_id: me,
                    client: Some(client),
                    ..m
                };
                self.broadcast(
                    out,
                    push.room_id,
                    Some(me),
                    &wire::frame("meeting", "onChat", None, &push),
                );
                ok()
            }
            Route::PrivateChat => {
                let m: PrivateChat = env.decode()?;
                let client = self.seat(m.room_id, me)?;
                let to = self.seat_conn(m.room_id, m.other_user_id).ok_or_else(|| {
                    Refusal::new(
                        code::FAILED,
                        format!("client {} is not in room {}", m.other_user_id, m.room_id),
                    )
                })?;
                let push = PrivateChat {
                    user_id: me,
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
            Route::UpdateVideo => {
                let u: UpdateVideo = env.decode()?;
                let client = self.seat(u.room_id, me)?;
                let event = if u.video { "play" } else { "close" };
                self.broadcast(
                    out,
                    u.room_id,
                    Some(me),
                    &wire::frame(
                        "meeting",
                        "onPublished",
                        None,
                        &json!({"roomId": u.room_id, "client": client, "event": event}),
                    ),
                );
                ok()
            }
            Route::AudioOnlyMeeting => {
                let r: RoomRef = env.decode()?;
                let client = self.seat(r.room_id, me)?;
                self.broadcast(
                    out,
                    r.room_id,
                    Some(me),
                    &wire::frame(
                        "meeting",
                        "onPublished",
                        None,
                        &json!({"roomId": r.room_id, "client": client, "event": "audioMode"}),
                    ),
                );
                ok()
            }
            Route::ShareScreen => {
                let s: ShareScreen = env.decode()?;
                let client = self.seat(s.room_id, me)?;
                self.broadcast(out, s.room_id, Some(me), &wire::frame("meeting", "onShareScreen", None, &json!({"roomId": s.room_id, "shareScreenId": s.share_screen_id, "client": client})));
                ok()
            }
            Route::UpdateMeetingName => {
                let u: UpdateMeetingName = env.decode()?;
                self.host_only(u.room_id, me, "rename the meeting")?;
                if let Some(room) = self.rooms.get_mut(&u.room_id) {
                    room.room.appointment_name = Some(u.appointment_name.clone());
                    room.room.appointment_id = u.appointment_id.or(room.room.appointment_id);
                }
                self.broadcast(out, u.room_id, Some(me), &wire::frame("meeting", "onUpdateMeeting", None, &json!({"userId": me, "roomId": u.room_id, "appointmentName": u.appointment_name})));
                ok()
            }
            Route::UpdateClientName => {
                let u: UpdateClientName = env.decode()?;
                if u.user_id != me {
                    self.host_only(u.room_id, me, "rename other participants")?;
                }
                self.seat(u.room_id, u.user_id).map_err(|_| {
                    Refusal::new(
                        code::FAILED,
                        format!("client {} is not in room {}", u.user_id, u.room_id),
                    )
                })?;
                let client = {
                    let seat = self
                        .rooms
                        .get_mut(&u.room_id)
                        .and_then(|r| r.seats.get_mut(&u.user_id))
                        .ok_or_else(|| Refusal::new(code::FAILED, "not in the room"))?;
                    seat.client.name = Some(u.name.clone());
                    seat.client.clone()
                };
                self.broadcast(
                    out,
                    u.room_id,
                    None,
                    &wire::frame(
                        "meeting",
                        "onUpdateClient",
                        None,
                        &json!({"userId": u.user_id, "roomId": u.room_id, "client": client}),
                    ),
                );
                ok()
            }
            Route::Media(kind @ (MediaKind::Offer | MediaKind::Answer)) => {
                let mut m: MediaSdp = env.decode()?;
                let to = self.media_route(m.room_id, me, m.to_client_id)?;
                m.from_client_id = Some(me);
                deliver(out, to, wire::frame("media", kind.method(), None, &m));
                ok()
            }
            Route::Media(MediaKind::Candidate) => {
                let mut m: MediaCandidate = env.decode()?;
                let to = self.media_route(m.room_id, me, m.to_client_id)?;
                m.from_client_id = Some(me);
                deliver(out, to, wire::frame("media", "candidate", None, &m));
                ok()
            }
            Route::Media(MediaKind::Bye) => {
                let mut m: MediaBye = env.decode()?;
                let to = self.media_route(m.room_id, me, m.to_client_id)?;
                m.from_client_id = Some(me);
                deliver(out, to, wire::frame("media", "bye", None, &m));
                ok()
            }
        }
    }

    fn new_room_id(&mut self) -> i64 {
        while self.rooms.contains_key(&self.next_room) {
            self.next_room += 1;
        }
        let id = self.next_room;
        self.next_room += 1;
        id
    }

    /// Forwards a `call/*` message to the target's registered devices, rewriting the sender.
    fn call(
        &mut self,
        out: &mut Out,
        me: i64,
        device: &str,
        method: &str,
        env: &Envelope,
    ) -> Handled {
        let m: CallMsg = env.decode()?;
        let Some(target) = m.target_user_id else {
            return Err(Refusal::new(
                code::BAD_REQUEST,
                "field `targetUserId`: missing",
            ));
        };
        if method == "doEvent" && m.event.is_none() {
            return Err(Refusal::new(code::BAD_REQUEST, "field `event`: missing"));
        }
        let conns: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.user_id == target)
            .filter(|(_, c)| match (&c.device, &m.target_device_type) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(d), Some(want)) => d == want,
            })
            .map(|(id, _)| *id)
            .collect();
        if conns.is_empty() {
            return Err(Refusal::new(
                code::FAILED,
                format!("user {target} is not online"),
            ));
        }
        let forwarded = CallMsg {
            own_user_id: Some(me),
            own_device_type: Some(device.to_string()),
            target_user_id: None,
            target_device_type: None,
            ..m.clone()
        };
        let text = wire::frame("call", method, None, &forwarded);
        for c in conns {
            deliver(out, c, text.clone());
        }
        Ok(match m.room_id {
            Some(room) if method == "doInvite" => json!({ "roomId": room }),
            _ => json!({}),
        })
    }

    fn enter(&mut self, out: &mut Out, conn: ConnId, me: i64, device: &str, e: Enter) -> Handled {
        if e.user_id != me {
            return Err(Refusal::new(
                code::UNAUTHORIZED,
                "userId is not the logged-in user",
            ));
        }
        if !(1..=3).contains(&e.room_type) {
            return Err(Refusal::new(
                code::BAD_REQUEST,
                "field `roomType`: must be 1, 2 or 3",
            ));
        }
        let user = self.accounts.user(me).cloned().unwrap_or_default();
        let room = self.rooms.entry(e.room_id).or_insert_with(|| RoomState {
            // A development server: an unknown room (e.g. after a restart) is created on entry.
            room: Room {
                id: e.room_id,
                name: Some(format!("room {}", e.room_id)),
                owner_id: Some(me),
                room_type: Some(e.room_type),
                number_limit: Some(200),
                is_public: Some(true),
                is_has_pwd: Some(false),
                super_mode_id: Some(me),
                ..Room::default()
            },
            seats: BTreeMap::new(),
            temporary: true,
        });
        let limit = room.room.number_limit.unwrap_or(200) as usize;
        let old = room.seats.remove(&me);
        if old.is_none() && room.seats.len() >= limit {
            return Err(Refusal::new(
                code::FAILED,
                format!("room {} is full ({limit})", e.room_id),
            ));
        }
        if room.room.super_mode_id.is_none() {
            room.room.super_mode_id = Some(me);
        }
        let host = room.room.super_mode_id;
        let client = wire::Client {
            id: me,
            name: e.username.clone().or(user.name.clone()),
            email: user.email.clone(),
            phone: user.phone.clone(),
            pictureurl: user.photo.clone(),
            company: user.company.clone(),
            mode: Some(device.to_string()),
            stream_id: Some(me),
            broad_cast_id: Some(me),
            is_muted: Some(false),
            is_super_moderator: Some(host == Some(me)),
        };
        if let Some(old) = old
            && old.conn != conn
        {
            // The same account entered from another socket: the older one is replaced.
            deliver(
                out,
                old.conn,
                wire::frame(
                    "meeting",
                    "EnterRoom",
                    None,
                    &ClientPush {
                        room_id: e.room_id,
                        client: old.client.clone(),
                        result: Some(code::REPLACED),
                        event: None,
                        share_screen_id: None,
                    },
                ),
            );
        }
        let members: Vec<wire::Client> = room.seats.values().map(|s| s.client.clone()).collect();
        room.seats.insert(
            me,
            Seat {
                client: client.clone(),
                conn,
            },
        );
        let snapshot = room.room.clone();
        let push = wire::frame(
            "meeting",
            "EnterRoom",
            None,
            &ClientPush {
                room_id: e.room_id,
                client: client.clone(),
                result: Some(code::OK),
                event: None,
                share_screen_id: None,
            },
        );
        self.broadcast(out, e.room_id, Some(me), &push);
        Ok(json!({ "client": client, "members": members, "room": snapshot }))
    }

    /// Removes `user` from a room and tells the others.
    fn leave(&mut self, out: &mut Out, room_id: i64, user: i64) {
        let Some(room) = self.rooms.get_mut(&room_id) else {
            return;
        };
        let Some(seat) = room.seats.remove(&user) else {
            return;
        };
        if room.room.super_mode_id == Some(user) {
            // The host left: the longest-present participant takes over.
            let next = room.seats.keys().next().copied();
            room.room.super_mode_id = next;
            if let Some(n) = next
                && let Some(s) = room.seats.get_mut(&n)
            {
                s.client.is_super_moderator = Some(true);
            }
        }
        let push = wire::frame(
            "meeting",
            "ExitRoom",
            None,
            &json!({"roomId": room_id, "client": seat.client}),
        );
        for s in room.seats.values() {
            deliver(out, s.conn, push.clone());
        }
        if room.seats.is_empty() && room.temporary {
            self.rooms.remove(&room_id);
        }
    }

    fn broadcast(&self, out: &mut Out, room_id: i64, except: Option<i64>, text: &str) {
        if let Some(room) = self.rooms.get(&room_id) {
            for (id, seat) in &room.seats {
                if Some(*id) != except {
                    deliver(out, seat.conn, text.to_string());
                }
            }
        }
    }

    fn seat(&self, room_id: i64, user: i64) -> Result<wire::Client, Refusal> {
        self.rooms
            .get(&room_id)
            .and_then(|r| r.seats.get(&user))
            .map(|s| s.client.clone())
            .ok_or_else(|| {
                Refusal::new(
                    code::FAILED,
                    format!("not in room {room_id}: enter it first"),
                )
            })
    }

    fn seat_conn(&self, room_id: i64, user: i64) -> Option<ConnId> {
        self.rooms.get(&room_id)?.seats.get(&user).map(|s| s.conn)
    }

    fn host_only(&self, room_id: i64, me: i64, what: &str) -> Result<(), Refusal> {
        let room = self
            .rooms
            .get(&room_id)
            .ok_or_else(|| Refusal::new(code::FAILED, format!("no room {room_id}")))?;
        if !room.seats.contains_key(&me) {
            return Err(Refusal::new(
                code::FAILED,
                format!("not in room {room_id}: enter it first"),
            ));
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

    fn media_route(&self, room_id: i64, me: i64, to: i64) -> Result<ConnId, Refusal> {
        self.seat(room_id, me)?;
        self.seat_conn(room_id, to)
            .filter(|_| to != me)
            .ok_or_else(|| {
                Refusal::new(
                    code::FAILED,
                    format!("client {to} is not in room {room_id}"),
                )
            })
    }
}

/// Best-effort routing fields from a frame that did not parse as an envelope.
fn salvage(text: &str) -> (String, String, Option<Value>) {
    let v: Option<serde_json::Map<String, Value>> = serde_json::from_str(text).ok();
    let get = |k: &str| {
        v.as_ref()
            .and_then(|m| m.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let req = v.as_ref().and_then(|m| m.get("reqId")).cloned();
    (get("module"), get("method"), req)
}

#[cfg(test)]
mod transcript;

#[cfg(test)]
mod tests;
