//! `call/*`: every message is a [`CallMsg`] between two users; ours name us as `own…` and the
//! other side as `target…`, and the server forwards them with `own…` rewritten to the sender.

use super::{CallMethod, Identity, Request, Route, call_type_code, call_type_from_code, missing};
use crate::core::{CallType, Peer, RoomId, SignalingEvent, UserId};
use crate::signaling::rtcpeer::wire::{self, CallMsg, Envelope, InviteReply, WireError, event};

/// The fields every call message from us carries.
fn addressing(me: &Identity, to: &Peer) -> CallMsg {
    CallMsg {
        own_user_id: Some(me.user_id.0),
        target_user_id: Some(to.user_id.0),
        own_device_type: Some(me.device_type.clone()),
        target_device_type: to.device_type.clone(),
        ..CallMsg::default()
    }
}

/// A message that says nothing beyond who it is from and to (`reject`, `cancel`).
pub(super) fn addressed(me: &Identity, to: &Peer, method: CallMethod) -> Request {
    Request::new(Route::Call(method), addressing(me, to))
}

/// `doEvent` with a progress event that needs no room (`onRinging`, `onBusy`).
pub(super) fn event(me: &Identity, to: &Peer, name: &str) -> Request {
    let msg = CallMsg {
        event: Some(name.into()),
        ..addressing(me, to)
    };
    Request::new(Route::Call(CallMethod::DoEvent), msg)
}

/// `doEvent onConnected`: we are in the room; the callee should enter it too.
pub(super) fn connected(me: &Identity, to: &Peer, room_id: RoomId, room_type: CallType) -> Request {
    let msg = CallMsg {
        event: Some(event::CONNECTED.into()),
        room_id: Some(room_id.0),
        room_type: Some(call_type_code(room_type)),
        ..addressing(me, to)
    };
    Request::new(Route::Call(CallMethod::DoEvent), msg)
}

/// `doAgree`, echoing the invite's room (if it named one) and call type.
pub(super) fn agree(
    me: &Identity,
    to: &Peer,
    room_id: Option<RoomId>,
    call_type: CallType,
) -> Request {
    let msg = CallMsg {
        room_id: room_id.map(|r| r.0),
        call_type: Some(call_type_code(call_type)),
        ..addressing(me, to)
    };
    Request::new(Route::Call(CallMethod::DoAgree), msg)
}

/// `doInvite` into a room we created; the reply says whether the user is online.
pub(super) fn invite(me: &Identity, to: UserId, room_id: RoomId, call_type: CallType) -> Request {
    let msg = CallMsg {
        room_id: Some(room_id.0),
        call_type: Some(call_type_code(call_type)),
        ..addressing(me, &Peer::user(to))
    };
    Request {
        kind: crate::core::RequestKind::Invite,
        target: Some(to),
        ..Request::new(Route::Call(CallMethod::DoInvite), msg)
    }
}

/// The reply to `doInvite`: `result` 0 delivered, anything else not (the callee is offline).
pub(super) fn invite_reply(
    env: &Envelope,
    result: i64,
    to: Option<UserId>,
) -> Result<SignalingEvent, WireError> {
    let _: InviteReply = env.decode()?;
    Ok(SignalingEvent::InviteResult {
        to,
        delivered: result == wire::code::OK,
    })
}

/// A `call/*` push. `doRegister` is never pushed: it is unknown here.
pub(super) fn push(
    method: CallMethod,
    env: &Envelope,
) -> Result<Option<SignalingEvent>, WireError> {
    use SignalingEvent as E;
    let event = match method {
        CallMethod::DoInvite => invited(env.decode()?)?,
        CallMethod::DoEvent => return progress(env.decode()?),
        CallMethod::DoAgree => {
            let msg: CallMsg = env.decode()?;
            E::RemoteAgreed {
                from: sender(&msg)?,
                room_id: msg.room_id.map(RoomId),
            }
        }
        CallMethod::Reject => E::RemoteRejected {
            from: sender(&env.decode()?)?,
        },
        CallMethod::Cancel => E::RemoteCancelled {
            from: sender(&env.decode()?)?,
        },
        CallMethod::DoRegister => return Err(super::unknown(env)),
    };
    Ok(Some(event))
}

/// Someone calls us; a call type the dialect does not define is taken as video.
fn invited(msg: CallMsg) -> Result<SignalingEvent, WireError> {
    Ok(SignalingEvent::Invite {
        from: Peer {
            user_id: sender(&msg)?,
            device_type: msg.own_device_type,
        },
        call_type: msg
            .call_type
            .and_then(call_type_from_code)
            .unwrap_or(CallType::Video),
        room_id: msg.room_id.map(RoomId),
    })
}

/// `doEvent` from the user we call. `Ok(None)` for event names the core has no use for.
fn progress(msg: CallMsg) -> Result<Option<SignalingEvent>, WireError> {
    use SignalingEvent as E;
    let from = sender(&msg)?;
    Ok(Some(match msg.event.as_deref() {
        Some(event::RINGING) => E::RemoteRinging { from },
        Some(event::BUSY) => E::RemoteBusy { from },
        Some(event::CONNECTED) => E::RemoteConnected {
            from,
            room_id: msg.room_id.map(RoomId),
            room_type: msg.room_type.and_then(call_type_from_code),
        },
        Some(_) => return Ok(None),
        None => return Err(missing("event")),
    }))
}

/// The user a forwarded message is from.
fn sender(m: &CallMsg) -> Result<UserId, WireError> {
    m.own_user_id
        .map(UserId)
        .ok_or_else(|| missing("ownUserId"))
}
