//! One RTM gate connection's logic, sans-IO: the login, the quests waiting for answers with
//! their deadlines, keep-alive, and the translation of pushes and answers into core events.
//!
//! # Contract
//!
//! The connection task (or a test) owns the socket and the clock:
//! 1. on a fresh connection it calls [`Session::connected`], which queues `*key` (when
//!    encrypting) and `auth`;
//! 2. it feeds every frame read with [`Session::handle_frame`], every core request with
//!    [`Session::handle_outgoing`], and calls [`Session::handle_timeout`] at
//!    [`Session::poll_timeout`];
//! 3. after each call it writes every [`Session::poll_transmit`] frame in order (switching
//!    the link to encryption right after a `*key` quest) and forwards every
//!    [`Session::poll_event`];
//! 4. an `Err(Fatal)` from any of them ends the connection; the reason says why.
//!
//! The session outlives connections, so messages already seen stay deduplicated across
//! reconnects; everything tied to one connection is reset by [`Session::connected`].

mod push;
mod request;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use rmpv::Value;
use tracing::{debug, info, warn};

use super::Options;
use super::fpnn::{self, Frame, as_bool, field, map};
use crate::config::PullPolicy;
use crate::core::{CallType, ClientId, Outgoing, RequestKind, RoomId, SignalingEvent, UserId};

/// FPNN's code for "no answer in time" (`FPNN_EC_CORE_TIMEOUT`).
pub const CODE_TIMEOUT: i64 = 20003;
/// FPNN's code for a method the receiver does not know (`FPNN_EC_CORE_UNKNOWN_METHOD`).
pub const CODE_UNKNOWN_METHOD: i64 = 20004;
/// FPNN's code for a quest without a parameter it needs (`FPNN_EC_PROTO_KEY_NOT_FOUND`).
pub const CODE_MISSING_PARAMETER: i64 = 10009;
/// FPNN's code for a parameter of the wrong type (`FPNN_EC_PROTO_TYPE_CONVERT`).
pub const CODE_MISTYPED_PARAMETER: i64 = 10010;
/// Messages above this many bytes are refused (the RTS message limit the device follows).
pub const MAX_MESSAGE: usize = 64 * 1024;
/// How many `(from, mid)` pairs are remembered to drop repeated messages.
const SEEN_MESSAGES: usize = 4096;

/// What the session needs from the options.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Project id.
    pub pid: i64,
    /// Our uid.
    pub uid: UserId,
    /// `version` in `auth`.
    pub version: String,
    /// `*ping` after this long without sending.
    pub keepalive: Duration,
    /// Deadline for every answer.
    pub request_timeout: Duration,
    /// What a forced pull does.
    pub pull: PullPolicy,
    /// Messages of this type carry commands.
    pub command_mtype: Option<i64>,
    /// A configured RTC gate; without one the RTM gate is asked (`getRTCGateEndpoint`).
    pub rtc_gate: Option<String>,
    /// Members whose video is subscribed to, at most.
    pub video_subscriptions: usize,
}

impl From<&Options> for Settings {
    fn from(o: &Options) -> Settings {
        Settings {
            pid: o.pid,
            uid: UserId(o.uid),
            version: o.version.clone(),
            keepalive: o.keepalive,
            request_timeout: o.request_timeout,
            pull: o.pull,
            command_mtype: o.command_mtype,
            rtc_gate: o.rtc_gate.clone(),
            video_subscriptions: o.video_subscriptions,
        }
    }
}

impl Settings {
    /// Silence from the gate for this long means it is gone: two missed keep-alive rounds
    /// and an answer deadline.
    fn dead_after(&self) -> Duration {
        self.keepalive * 2 + self.request_timeout
    }
}

/// Why a connection must end.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fatal {
    /// `auth` answered `{ok: false}`.
    TokenRefused,
    /// `auth` got an error answer.
    AuthFailed {
        /// FPNN or RTM error code.
        code: i64,
        /// The gate's explanation.
        ex: String,
    },
    /// `kickout`: the same uid logged in elsewhere.
    Kicked,
    /// The gate stopped answering.
    Dead(String),
}

impl fmt::Display for Fatal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fatal::TokenRefused => write!(
                f,
                "token refused: the RTM gate did not accept the token for this uid (provision a fresh one from the business back end)"
            ),
            Fatal::AuthFailed { code, ex } => write!(f, "login failed (code {code}): {ex}"),
            Fatal::Kicked => write!(f, "kicked out: this uid logged in somewhere else"),
            Fatal::Dead(why) => write!(f, "the RTM gate stopped answering: {why}"),
        }
    }
}

/// What an answer we wait for means.
#[derive(Debug, Clone, PartialEq)]
enum Purpose {
    Key,
    Auth,
    Ping,
    Bye,
    /// `enterRTCRoom` after agreeing to an invite from `from`.
    Answer {
        rid: RoomId,
        from: UserId,
    },
    /// `enterRTCRoom` for a join or a re-entry.
    Enter {
        rid: RoomId,
    },
    /// `getRTCRoomMembers` after entering.
    Members {
        rid: RoomId,
    },
    Create {
        rid: RoomId,
    },
    Invite {
        rid: RoomId,
        to: UserId,
    },
    Exit,
    Reply,
    /// `getRTCGateEndpoint`.
    Endpoint,
    /// `subscribeVideo`.
    Subscribe,
}

#[derive(Debug)]
struct Waiting {
    method: &'static str,
    purpose: Purpose,
    deadline: Instant,
}

/// The RTM gate session. See the module doc for the calling contract. `Debug` leaves out the
/// room tokens and the queued frames (the `auth` frame carries the login token).
pub struct Session {
    s: Settings,
    authenticated: bool,
    next_seq: u32,
    pending: BTreeMap<u32, Waiting>,
    last_sent: Option<Instant>,
    last_received: Option<Instant>,
    /// Room tokens from entering, creating or a pull, for the RTC gate.
    tokens: HashMap<RoomId, String>,
    /// The room we are in (or entering).
    room: Option<RoomId>,
    /// The room we created and the user we invited into it, until they enter.
    dialing: Option<(RoomId, UserId)>,
    transmit: VecDeque<Frame>,
    events: VecDeque<SignalingEvent>,
    seen: VecDeque<(UserId, i64)>,
    seen_set: HashSet<(UserId, i64)>,
    warned: HashSet<String>,
    next_mid: i64,
    /// The RTC gate, configured or named by the RTM gate.
    rtc_endpoint: Option<String>,
    /// The other members of the room we are in.
    members: Vec<i64>,
    /// The members whose video we subscribed to.
    subscribed: Vec<i64>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("s", &self.s)
            .field("authenticated", &self.authenticated)
            .field("pending", &self.pending)
            .field("room", &self.room)
            .field("dialing", &self.dialing)
            .field("room_tokens", &self.tokens.len())
            .field("transmit", &self.transmit.len())
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session that has not connected yet.
    pub fn new(s: Settings) -> Session {
        Session {
            authenticated: false,
            next_seq: 1,
            pending: BTreeMap::new(),
            last_sent: None,
            last_received: None,
            tokens: HashMap::new(),
            room: None,
            dialing: None,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            seen: VecDeque::new(),
            seen_set: HashSet::new(),
            warned: HashSet::new(),
            next_mid: 1,
            rtc_endpoint: s.rtc_gate.clone(),
            members: Vec::new(),
            subscribed: Vec::new(),
            s,
        }
    }

    /// A fresh connection at `now`: forgets the previous one's quests and tokens, then queues
    /// `*key` (with `key_body`, when encrypting) and `auth` with `token`.
    pub fn connected(&mut self, now: Instant, token: &str, key_body: Option<Value>) {
        self.authenticated = false;
        self.next_seq = 1;
        self.pending.clear();
        self.tokens.clear();
        self.dialing = None;
        self.members.clear();
        self.subscribed.clear();
        self.transmit.clear();
        self.last_sent = Some(now);
        self.last_received = Some(now);
        if let Some(body) = key_body {
            self.quest(now, fpnn::KEY_METHOD, body, Purpose::Key);
        }
        let auth = map([
            ("pid", Value::from(self.s.pid)),
            ("uid", Value::from(self.s.uid.0)),
            ("token", Value::from(token)),
            ("version", Value::from(self.s.version.as_str())),
        ]);
        self.quest(now, "auth", auth, Purpose::Auth);
    }

    /// Whether `auth` succeeded on this connection.
    pub fn authenticated(&self) -> bool {
        self.authenticated
    }

    /// The next frame to write, in order.
    pub fn poll_transmit(&mut self) -> Option<Frame> {
        self.transmit.pop_front()
    }

    /// The next event for the core, in order.
    pub fn poll_event(&mut self) -> Option<SignalingEvent> {
        self.events.pop_front()
    }

    /// When [`Session::handle_timeout`] is due: the next `*ping`, the next answer deadline, or
    /// the moment silence from the gate means it is dead.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let ping = self.last_sent.map(|t| t + self.s.keepalive);
        let dead = self.last_received.map(|t| t + self.s.dead_after());
        let answer = self.pending.values().map(|w| w.deadline).min();
        [ping, dead, answer].into_iter().flatten().min()
    }

    /// Fires what is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Fatal> {
        let expired: Vec<u32> = self
            .pending
            .iter()
            .filter(|(_, w)| w.deadline <= now)
            .map(|(seq, _)| *seq)
            .collect();
        for seq in expired {
            if let Some(w) = self.pending.remove(&seq) {
                let ex = format!(
                    "no answer to {} within {} s",
                    w.method,
                    self.s.request_timeout.as_secs_f32()
                );
                self.failed(w.purpose, CODE_TIMEOUT, ex)?;
            }
        }
        if let Some(at) = self.last_received
            && now >= at + self.s.dead_after()
        {
            return Err(Fatal::Dead(format!(
                "nothing received for {} s",
                (now - at).as_secs()
            )));
        }
        if self.last_sent.is_some_and(|t| now >= t + self.s.keepalive) {
            self.quest(now, fpnn::PING_METHOD, fpnn::empty_map(), Purpose::Ping);
        }
        Ok(())
    }

    /// Queues `bye` (before closing on shutdown).
    pub fn bye(&mut self, now: Instant) {
        if self.authenticated {
            self.quest(now, "bye", fpnn::empty_map(), Purpose::Bye);
        }
    }

    /// Whether `bye` or `exitRTCRoom` still waits for its answer (closing now could lose it).
    pub fn awaiting_goodbye(&self) -> bool {
        self.pending
            .values()
            .any(|w| matches!(w.purpose, Purpose::Bye | Purpose::Exit))
    }

    /// A frame from the gate.
    pub fn handle_frame(&mut self, now: Instant, frame: Frame) -> Result<(), Fatal> {
        self.last_received = Some(now);
        match frame {
            Frame::Answer { seq, ok, body } => self.on_answer(now, seq, ok, body),
            Frame::Quest { seq, method, body } => self.on_push(now, seq, &method, &body),
        }
    }

    // ------------------------------------------------------------------ plumbing

    fn quest(&mut self, now: Instant, method: &'static str, body: Value, purpose: Purpose) {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1).max(1);
        self.pending.insert(
            seq,
            Waiting {
                method,
                purpose,
                deadline: now + self.s.request_timeout,
            },
        );
        self.last_sent = Some(now);
        self.transmit.push_back(Frame::Quest {
            seq: Some(seq),
            method: method.into(),
            body,
        });
    }

    fn answer(&mut self, seq: Option<u32>, body: Value) {
        if let Some(seq) = seq {
            self.transmit.push_back(Frame::answer(seq, body));
        }
    }

    fn error_answer(&mut self, seq: Option<u32>, code: i64, ex: &str) {
        if let Some(seq) = seq {
            self.transmit.push_back(Frame::error_answer(seq, code, ex));
        }
    }

    fn emit(&mut self, event: SignalingEvent) {
        self.events.push_back(event);
    }

    /// Logs something odd from the gate once per kind, then at debug level.
    fn odd(&mut self, kind: &str, detail: &str) {
        if self.warned.insert(kind.to_string()) {
            warn!(
                kind,
                detail, "unexpected from the RTM gate (further ones at debug level)"
            );
        } else {
            debug!(kind, detail, "unexpected from the RTM gate");
        }
    }

    // ------------------------------------------------------------------ answers

    fn on_answer(&mut self, now: Instant, seq: u32, ok: bool, body: Value) -> Result<(), Fatal> {
        let Some(w) = self.pending.remove(&seq) else {
            self.odd(
                "answer",
                &format!("an answer to seq {seq}, which we did not send"),
            );
            return Ok(());
        };
        if !ok {
            let code = field(&body, "code").and_then(fpnn::as_i64).unwrap_or(0);
            let ex = field(&body, "ex")
                .and_then(fpnn::as_str)
                .unwrap_or("no explanation")
                .to_string();
            return self.failed(w.purpose, code, format!("{}: {ex}", w.method));
        }
        self.succeeded(now, w.purpose, &body)
    }

    fn succeeded(&mut self, now: Instant, purpose: Purpose, body: &Value) -> Result<(), Fatal> {
        match purpose {
            Purpose::Auth => {
                if field(body, "ok").and_then(as_bool) != Some(true) {
                    self.login_refused(&Fatal::TokenRefused);
                    return Err(Fatal::TokenRefused);
                }
                self.authenticated = true;
                info!(uid = %self.s.uid, "authenticated to the RTM gate");
                self.emit(SignalingEvent::Registered {
                    user_id: self.s.uid,
                });
                if self.s.rtc_gate.is_none() {
                    self.quest(
                        now,
                        "getRTCGateEndpoint",
                        fpnn::empty_map(),
                        Purpose::Endpoint,
                    );
                }
            }
            Purpose::Answer { rid, from } => {
                let room_type = self.entered(rid, body);
                self.emit(SignalingEvent::RemoteConnected {
                    from,
                    room_id: Some(rid),
                    room_type: Some(room_type),
                });
            }
            Purpose::Enter { rid } => {
                self.entered(rid, body);
                self.ask_members(now, rid);
            }
            Purpose::Members { rid } => self.on_members(now, rid, body),
            Purpose::Create { rid } => {
                self.entered(rid, body);
                self.emit(SignalingEvent::RoomCreated { room_id: rid });
            }
            Purpose::Invite { rid, to } => {
                self.dialing = Some((rid, to));
                self.emit(SignalingEvent::InviteResult {
                    to: Some(to),
                    delivered: true,
                });
                self.emit(SignalingEvent::RemoteRinging { from: to });
            }
            Purpose::Endpoint => match field(body, "endpoint").and_then(fpnn::as_str) {
                Some(e) if !e.is_empty() => {
                    debug!(endpoint = e, "the RTM gate named the RTC gate");
                    self.rtc_endpoint = Some(e.to_string());
                }
                _ => self.odd(
                    "getRTCGateEndpoint",
                    "the answer names no endpoint: room media cannot flow",
                ),
            },
            Purpose::Key
            | Purpose::Ping
            | Purpose::Bye
            | Purpose::Exit
            | Purpose::Reply
            | Purpose::Subscribe => {}
        }
        Ok(())
    }

    fn failed(&mut self, purpose: Purpose, code: i64, message: String) -> Result<(), Fatal> {
        let request = match purpose {
            Purpose::Key | Purpose::Ping => return Err(Fatal::Dead(message)),
            Purpose::Auth if code == CODE_TIMEOUT => return Err(Fatal::Dead(message)),
            Purpose::Auth => {
                let fatal = Fatal::AuthFailed { code, ex: message };
                // The framework's own codes (five digits: a busy or restarting server) pass;
                // the RTM service's (six digits: project, user, token) are its answer.
                if code >= 100_000 {
                    self.login_refused(&fatal);
                }
                return Err(fatal);
            }
            Purpose::Answer { .. } | Purpose::Enter { .. } | Purpose::Members { .. } => {
                RequestKind::Enter
            }
            Purpose::Create { .. } => RequestKind::CreateRoom,
            Purpose::Invite { .. } => RequestKind::Invite,
            Purpose::Endpoint => {
                warn!(%message, "the RTM gate did not name an RTC gate: room media cannot flow (set signaling.rtm.rtc_gate)");
                return Ok(());
            }
            Purpose::Subscribe => {
                warn!(%message, "subscribing to members' video failed");
                return Ok(());
            }
            Purpose::Bye | Purpose::Exit | Purpose::Reply => RequestKind::Other,
        };
        self.emit(SignalingEvent::RequestFailed {
            request,
            code,
            message,
        });
        Ok(())
    }

    /// The gate will not have us back: the room we were in is gone with the login, and the
    /// core ends the call (its media connection closes with it).
    fn login_refused(&mut self, why: &Fatal) {
        if let Some(rid) = self.room {
            warn!(room = %rid, reason = %why, "login refused while in a room: leaving it");
            self.forget_room(rid);
        }
        self.emit(SignalingEvent::LoginRefused {
            reason: why.to_string(),
        });
    }

    /// Keeps the room token of a room we are now a member of; returns the room's type.
    fn entered(&mut self, rid: RoomId, body: &Value) -> CallType {
        if let Some(token) = field(body, "token").and_then(fpnn::as_str) {
            self.tokens.insert(rid, token.to_string());
        }
        self.room = Some(rid);
        match field(body, "type").and_then(fpnn::as_i64) {
            Some(1) | Some(4) => CallType::Audio,
            _ => CallType::Video,
        }
    }

    fn ask_members(&mut self, now: Instant, rid: RoomId) {
        let body = map([("rid", Value::from(rid.0))]);
        self.quest(now, "getRTCRoomMembers", body, Purpose::Members { rid });
    }

    fn on_members(&mut self, now: Instant, rid: RoomId, body: &Value) {
        let admins = int_list(body, "administrators");
        self.members = int_list(body, "uids")
            .into_iter()
            .filter(|uid| *uid != self.s.uid.0)
            .collect();
        self.subscribed.clear();
        self.subscribe_more(now, rid);
        let members = int_list(body, "uids")
            .into_iter()
            .filter(|uid| *uid != self.s.uid.0)
            .map(|uid| crate::core::Member {
                client_id: ClientId(uid),
                name: None,
                muted: false,
                host: admins.contains(&uid),
            })
            .collect();
        let owner = field(body, "owner").and_then(fpnn::as_i64);
        let me = self.s.uid.0;
        self.emit(SignalingEvent::Entered {
            room: crate::core::RoomInfo {
                id: rid,
                name: None,
                owner_id: owner.map(UserId),
                host_id: owner.map(ClientId),
            },
            me: crate::core::Member {
                client_id: ClientId(me),
                name: None,
                muted: false,
                host: admins.contains(&me),
            },
            members,
        });
    }

    /// Remembers `(from, mid)`; `false` when it was seen before.
    fn first_sighting(&mut self, from: UserId, mid: i64) -> bool {
        if !self.seen_set.insert((from, mid)) {
            return false;
        }
        self.seen.push_back((from, mid));
        if self.seen.len() > SEEN_MESSAGES
            && let Some(old) = self.seen.pop_front()
        {
            self.seen_set.remove(&old);
        }
        true
    }

    /// Subscribes to the video of members not yet subscribed to, up to the configured number
    /// (the room's video reaches a member only once subscribed).
    pub(super) fn subscribe_more(&mut self, now: Instant, rid: RoomId) {
        let room = self
            .s
            .video_subscriptions
            .saturating_sub(self.subscribed.len());
        let more: Vec<i64> = self
            .members
            .iter()
            .filter(|u| !self.subscribed.contains(u))
            .take(room)
            .copied()
            .collect();
        if more.is_empty() {
            return;
        }
        self.subscribed.extend(&more);
        let body = map([
            ("rid", Value::from(rid.0)),
            (
                "uids",
                Value::Array(more.into_iter().map(Value::from).collect()),
            ),
        ]);
        self.quest(now, "subscribeVideo", body, Purpose::Subscribe);
    }

    /// A member came into the room we are in.
    pub(super) fn member_joined(&mut self, now: Instant, rid: RoomId, uid: i64) {
        if self.room == Some(rid) && uid != self.s.uid.0 && !self.members.contains(&uid) {
            self.members.push(uid);
            self.subscribe_more(now, rid);
        }
    }

    /// A member left the room we are in: another one's video may take their place.
    pub(super) fn member_left(&mut self, now: Instant, rid: RoomId, uid: i64) {
        if self.room != Some(rid) {
            return;
        }
        self.members.retain(|u| *u != uid);
        self.subscribed.retain(|u| *u != uid);
        self.subscribe_more(now, rid);
    }

    /// Where the room's media goes while the device is in a room it has a token for: the
    /// room, its token and the RTC gate.
    pub fn rtc_target(&self) -> Option<super::rtc::Target> {
        let rid = self.room?;
        Some(super::rtc::Target {
            rid,
            token: self.tokens.get(&rid)?.clone(),
            endpoint: self.rtc_endpoint.clone()?,
        })
    }

    /// The room the device is in (or entering).
    pub fn room(&self) -> Option<RoomId> {
        self.room
    }

    /// A request from the core.
    pub fn handle_outgoing(&mut self, now: Instant, out: Outgoing) {
        if !self.authenticated {
            debug!(
                ?out,
                "not logged in to the RTM gate; dropped (the core restores state after login)"
            );
            return;
        }
        self.on_outgoing(now, out);
    }
}

/// A list of integers from a map field (missing or malformed: empty).
fn int_list(body: &Value, key: &str) -> Vec<i64> {
    match field(body, key) {
        Some(Value::Array(items)) => items.iter().filter_map(fpnn::as_i64).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests;
