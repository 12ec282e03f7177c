//! `room/*`: the temporary rooms the device creates to dial from.

use super::{Identity, Request, RoomMethod, Route, call_type_code};
use crate::core::{CallType, RequestKind, RoomId, SignalingEvent};
use crate::signaling::rtcpeer::wire::{NewAppRoom, NewAppRoomReply};

/// Capacity of the temporary rooms the device creates when dialing.
const CALL_ROOM_LIMIT: i64 = 16;

/// `newAppRoom` owned by us.
pub(super) fn create(me: &Identity, name: &str, call_type: CallType) -> Request {
    let body = NewAppRoom {
        name: name.to_string(),
        number_limit: CALL_ROOM_LIMIT,
        roomtype: call_type_code(call_type),
        user_id: me.user_id.0,
    };
    Request {
        kind: RequestKind::CreateRoom,
        ..Request::new(Route::Room(RoomMethod::NewAppRoom), body)
    }
}

/// The successful reply to `newAppRoom`.
pub(super) fn created(reply: NewAppRoomReply) -> SignalingEvent {
    SignalingEvent::RoomCreated {
        room_id: RoomId(reply.room_id),
    }
}
