//! Translation between RTCPeer frames and the core's enums. Pure: no sockets, no clock.
//!
//! [`request`], [`reply`] and [`push`] only dispatch: what a message says is read and
//! written in one file per dialect module (`call`, `room`, `meeting`, `media`), matched on
//! the typed [`Route`] rather than on strings.

mod call;
mod media;
mod meeting;
mod room;
mod route;

use serde::Serialize;
use serde_json::Value;

pub use route::{CallMethod, MediaMethod, MeetingMethod, RoomMethod, Route};

use super::wire::{self, Envelope, WireError, event};
use crate::core::{CallType, Outgoing, RequestKind, SignalingEvent, UserId};

/// Who we are on the wire.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Our user id (from login).
    pub user_id: UserId,
    /// `deviceType` we registered with.
    pub device_type: String,
    /// Display name, sent as `username` when entering rooms.
    pub name: String,
}

/// A request ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `module` and `method`.
    pub route: Route,
    /// The other fields.
    pub body: Value,
    /// How a failure is reported to the core.
    pub kind: RequestKind,
    /// For invites: who was invited.
    pub target: Option<UserId>,
}

impl Request {
    /// A request whose failure the core hears of as [`RequestKind::Other`].
    fn new(route: Route, body: impl Serialize) -> Request {
        Request {
            route,
            body: serde_json::to_value(body).unwrap_or(Value::Null),
            kind: RequestKind::Other,
            target: None,
        }
    }

    /// The text frame, with `req_id` when a reply is to be matched to it.
    pub fn frame(&self, req_id: Option<&Value>) -> String {
        wire::frame(self.route.module(), self.route.method(), req_id, &self.body)
    }

    /// What must be remembered to read the reply.
    pub fn pending(&self) -> Pending {
        Pending {
            route: self.route,
            kind: self.kind,
            target: self.target,
        }
    }
}

/// The dialect's number for a call or room type (`type`, `roomType`).
pub fn call_type_code(t: CallType) -> i64 {
    match t {
        CallType::Audio => 1,
        CallType::Video => 2,
        CallType::VideoReturn => 3,
    }
}

/// Reads the dialect's number for a call or room type; `None` for numbers it does not define.
pub fn call_type_from_code(code: i64) -> Option<CallType> {
    match code {
        1 => Some(CallType::Audio),
        2 => Some(CallType::Video),
        3 => Some(CallType::VideoReturn),
        _ => None,
    }
}

/// The wire request for a core [`Outgoing`]; `None` for what the dialect has no word for
/// (replies to commands sent by message, which this dialect never delivers).
pub fn request(me: &Identity, out: &Outgoing) -> Option<Request> {
    Some(match out {
        Outgoing::CommandReply { .. } => return None,
        Outgoing::Ringing { to } => call::event(me, to, event::RINGING),
        Outgoing::Busy { to } => call::event(me, to, event::BUSY),
        Outgoing::Connected {
            to,
            room_id,
            room_type,
        } => call::connected(me, to, *room_id, *room_type),
        Outgoing::Agree {
            to,
            room_id,
            call_type,
        } => call::agree(me, to, *room_id, *call_type),
        Outgoing::Reject { to } => call::addressed(me, to, CallMethod::Reject),
        Outgoing::Cancel { to } => call::addressed(me, to, CallMethod::Cancel),
        Outgoing::Invite {
            to,
            room_id,
            call_type,
        } => call::invite(me, *to, *room_id, *call_type),
        Outgoing::CreateRoom { name, call_type } => room::create(me, name, *call_type),
        Outgoing::Enter { room_id, room_type } => meeting::enter(me, *room_id, *room_type),
        Outgoing::Exit { room_id } => meeting::exit(*room_id),
        Outgoing::AnnounceMute { room_id, muted } => meeting::mute(me, *room_id, *muted),
        Outgoing::AnnounceVideo { room_id, video } => meeting::video(*room_id, *video),
        Outgoing::AnnounceShare { room_id, share_id } => meeting::share(*room_id, *share_id),
        Outgoing::Media {
            room_id,
            to,
            signal,
        } => media::request(me, *room_id, *to, signal),
    })
}

/// A request of ours that awaits its reply.
#[derive(Debug, Clone)]
pub struct Pending {
    /// `module/method` as sent.
    pub route: Route,
    /// How a failure is reported.
    pub kind: RequestKind,
    /// For invites: who.
    pub target: Option<UserId>,
}

/// Translates the reply to one of our requests.
pub fn reply(env: &Envelope, pending: &Pending) -> Result<Option<SignalingEvent>, WireError> {
    let result = env.result().ok_or_else(|| WireError::Field {
        field: "result".into(),
        problem: "missing in a reply".into(),
    })?;
    if pending.route == Route::Call(CallMethod::DoInvite) {
        // An invite's only failure is an offline callee: the core ends the call, it does not
        // report a failed request.
        return call::invite_reply(env, result, pending.target).map(Some);
    }
    if result != wire::code::OK {
        let message = match env.message().unwrap_or("") {
            "" => format!("{} refused", pending.route),
            message => message.to_string(),
        };
        return Ok(Some(SignalingEvent::RequestFailed {
            request: pending.kind,
            code: result,
            message,
        }));
    }
    Ok(match pending.route {
        Route::Room(RoomMethod::NewAppRoom) => Some(room::created(env.decode()?)),
        Route::Meeting(MeetingMethod::Enter) => Some(meeting::entered(env.decode()?)),
        _ => None,
    })
}

/// Translates a server push. `Ok(None)`: a known push the core does not act on.
pub fn push(env: &Envelope) -> Result<Option<SignalingEvent>, WireError> {
    match Route::parse(&env.module, &env.method) {
        Some(Route::Call(method)) => call::push(method, env),
        Some(Route::Meeting(method)) => meeting::push(method, env),
        Some(Route::Media(method)) => media::push(method, env).map(Some),
        Some(Route::Room(_)) | None => Err(unknown(env)),
    }
}

/// The error for a route that is not a push, named as the frame spelt it.
fn unknown(env: &Envelope) -> WireError {
    WireError::Unknown {
        module: env.module.clone(),
        method: env.method.clone(),
    }
}

/// The error for a field a message cannot do without.
fn missing(field: &str) -> WireError {
    WireError::Field {
        field: field.into(),
        problem: "missing".into(),
    }
}

#[cfg(test)]
mod tests;
