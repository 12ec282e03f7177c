//! The room server's state and its message handlers. Transport-free: every handler takes a
//! connection id and a frame and returns the frames to deliver, so the whole dialect server
//! is testable without sockets.
//!
//! [`Hub::frame`] parses a frame's `(module, method)` once into a `Route` (`route.rs`) and
//! hands it to one handler per route. The handlers live next to the data they touch:
//! `session.rs` (logins, sockets, registration), `call.rs` (call forwarding), `rooms.rs`
//! (who sits in which room), `meeting.rs` (messages inside a room) and `media.rs` (the
//! WebRTC relay).

mod call;
mod media;
mod meeting;
mod rooms;
mod route;
mod session;

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use serde_json::{Value, json};

use super::accounts::Accounts;
use crate::signaling::rtcpeer::wire::{self, Envelope, Room, WireError, code, reply};
use route::Route;

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

/// `Debug` leaves the session id out: it is the user's login.
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

/// A room and who sits in it. Rooms live only in memory: created by `room/newAppRoom` or
/// by entering an unknown id, removed when the last participant leaves (or, never entered,
/// after [`UNENTERED_ROOM_TTL`](crate::room_server::limits::UNENTERED_ROOM_TTL)).
#[derive(Debug)]
struct RoomState {
    room: Room,
    seats: BTreeMap<i64, Seat>,
    /// When it was created.
    created: Instant,
    /// Whether anyone ever sat in it.
    entered: bool,
}

/// A login session: whose, and since when.
#[derive(Debug, Clone, Copy)]
struct Session {
    user: i64,
    opened: Instant,
}

/// Where the hub reads the time; tests replace it to move time on.
pub type Clock = Box<dyn Fn() -> Instant + Send>;

/// Someone online, for the browser page's device list: one entry per registered device
/// type of a user (two sockets registered as the same type count once).
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
    /// The room the user (on any device) is in, if any.
    pub room_id: Option<i64>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("user_id", &self.user_id)
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

/// All server state. `Debug` shows the users of the open sessions, not their ids.
pub struct Hub {
    accounts: Accounts,
    sessions: HashMap<String, Session>,
    conns: HashMap<ConnId, Conn>,
    rooms: BTreeMap<i64, RoomState>,
    next_room: i64,
    clock: Clock,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("accounts", &self.accounts)
            .field(
                "sessions_of",
                &self.sessions.values().map(|s| s.user).collect::<Vec<_>>(),
            )
            .field("conns", &self.conns)
            .field("rooms", &self.rooms)
            .field("next_room", &self.next_room)
            .finish()
    }
}

type Out = Vec<Delivery>;

fn deliver(out: &mut Out, to: ConnId, text: String) {
    out.push(Delivery { to, text });
}

/// Who sent the frame being handled.
struct Me {
    conn: ConnId,
    /// The user the connection's session belongs to.
    id: i64,
    /// The registered `deviceType`; empty before registration, when only
    /// `Route::Register` and `Route::Logout` are handled.
    device: String,
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

/// A handler's outcome: the fields its reply adds to `result: 0`, or why it refused.
type Handled = Result<Value, Refusal>;

fn ok() -> Handled {
    Ok(json!({}))
}

impl Hub {
    /// A hub with the accounts and apps of `[room_server]` (for in-memory tests of whole
    /// agents; the server itself uses the same).
    pub fn from_config(cfg: &crate::config::RoomServerConfig) -> Hub {
        Hub::new(Accounts::new(&cfg.accounts, &cfg.apps))
    }

    /// A hub with the configured accounts and apps.
    pub fn new(accounts: Accounts) -> Hub {
        Hub {
            accounts,
            sessions: HashMap::new(),
            conns: HashMap::new(),
            rooms: BTreeMap::new(),
            next_room: 1000,
            clock: Box::new(Instant::now),
        }
    }

    /// Replaces the clock (tests move time on with it).
    pub fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }

    fn now(&self) -> Instant {
        (self.clock)()
    }

    /// Handles one text frame from `conn`. The reply to the sender always comes first, so it
    /// learns the outcome before anything its request caused.
    pub fn frame(&mut self, conn: ConnId, text: &str) -> Out {
        let mut out = Vec::new();
        let answered = match Envelope::parse(text) {
            Ok(env) => {
                let result = self.dispatch(conn, &env, &mut out);
                answer(&env.module, &env.method, env.req_id.as_ref(), result)
            }
            Err(e) => {
                // Echo what routing we can so a client can match the error to its request.
                let (module, method, req_id) = salvage(text);
                answer(&module, &method, req_id.as_ref(), Err(e.into()))
            }
        };
        let reply = Delivery {
            to: conn,
            text: answered,
        };
        out.insert(0, reply);
        out
    }

    /// Checks who sent the frame and whether its route may run yet, then runs it.
    fn dispatch(&mut self, conn: ConnId, env: &Envelope, out: &mut Out) -> Handled {
        let Some(c) = self.conns.get(&conn) else {
            return Err(Refusal::new(code::UNAUTHORIZED, "unknown connection"));
        };
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
        let me = Me {
            conn,
            id: c.user_id,
            device: c.device.clone().unwrap_or_default(),
        };
        self.handle(out, &me, route, env)
    }

    /// One handler per route; each decodes its own body type, so a missing or mistyped
    /// field is refused (400, naming the field) before the handler runs.
    fn handle(&mut self, out: &mut Out, me: &Me, route: Route, env: &Envelope) -> Handled {
        match route {
            Route::Register => self.register(me, env.decode()?),
            Route::Logout => self.logout_everywhere(me),
            Route::Call(kind) => self.call(out, me, kind, env.decode()?),
            Route::NewAppRoom => self.new_app_room(me, env.decode()?),
            Route::Enter => self.enter(out, me, env.decode()?),
            Route::Exit => self.exit(out, me, env.decode()?),
            Route::Finish => self.finish(out, me, env.decode()?),
            Route::KickOut => self.kick_out(out, me, env.decode()?),
            Route::MuteMsg => self.mute(out, me, env.decode()?),
            Route::MuteAll => self.mute_all(out, me, env.decode()?),
            Route::SetCompere => self.set_compere(out, me, env.decode()?),
            Route::UpdateMeetingName => self.rename_meeting(out, me, env.decode()?),
            Route::UpdateClientName => self.rename_client(out, me, env.decode()?),
            Route::RaiseHand => self.raise_hand(out, me, env.decode()?),
            Route::UpdateVideo => self.update_video(out, me, env.decode()?),
            Route::AudioOnlyMeeting => self.audio_only(out, me, env.decode()?),
            Route::ShareScreen => self.share_screen(out, me, env.decode()?),
            Route::Chat => self.chat(out, me, env.decode()?),
            Route::PrivateChat => self.private_chat(out, me, env.decode()?),
            Route::Media(kind) => self.relay(out, me, kind, env),
        }
    }
}

/// The reply to a request: `result` 0 plus the fields the handler returned, or the
/// refusal's code and message.
fn answer(module: &str, method: &str, req_id: Option<&Value>, result: Handled) -> String {
    match result {
        Ok(extra) => reply(module, method, req_id, code::OK, None, &extra),
        Err(r) => reply(module, method, req_id, r.code, Some(&r.message), &json!({})),
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

#[cfg(test)]
mod limit_tests;
