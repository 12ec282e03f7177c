//! `meeting/*`: being in a room. We enter, leave and announce our own microphone, camera and
//! screen; the server pushes who comes and goes and what the host orders.

use super::{Identity, MeetingMethod, Request, Route, call_type_code};
use crate::core::{
    CallType, ClientId, Member, RequestKind, RoomId, RoomInfo, SignalingEvent, UserId,
};
use crate::signaling::rtcpeer::wire::{
    self, ClientPush, Enter, EnterReply, Envelope, FROM_SUPER, FinishPush, MuteAll, MuteMsg,
    RoomRef, ShareScreen, UpdateVideo, UserRoom, WireError,
};

/// `enter`, with our display name for the others' lists.
pub(super) fn enter(me: &Identity, room_id: RoomId, room_type: CallType) -> Request {
    let body = Enter {
        user_id: me.user_id.0,
        room_id: room_id.0,
        room_type: call_type_code(room_type),
        username: Some(me.name.clone()),
    };
    Request {
        kind: RequestKind::Enter,
        ..Request::new(Route::Meeting(MeetingMethod::Enter), body)
    }
}

/// `exit`: the server tells the others with `ExitRoom`.
pub(super) fn exit(room_id: RoomId) -> Request {
    let body = RoomRef { room_id: room_id.0 };
    Request::new(Route::Meeting(MeetingMethod::Exit), body)
}

/// `muteMsg` naming ourselves, without `super`: it reports, it does not order.
pub(super) fn mute(me: &Identity, room_id: RoomId, muted: bool) -> Request {
    let body = MuteMsg {
        user_id: me.user_id.0,
        room_id: room_id.0,
        is_mute: muted,
        from_super: None,
    };
    Request::new(Route::Meeting(MeetingMethod::MuteMsg), body)
}

/// `updateVideo`: the others hear of it as `onPublished` `play`/`close`; our video keeps
/// flowing (black while the camera is off).
pub(super) fn video(room_id: RoomId, video: bool) -> Request {
    let body = UpdateVideo {
        room_id: room_id.0,
        video,
    };
    Request::new(Route::Meeting(MeetingMethod::UpdateVideo), body)
}

/// `shareScreen`; `None` (sent as `null`) stops sharing.
pub(super) fn share(room_id: RoomId, share_id: Option<ClientId>) -> Request {
    let body = ShareScreen {
        room_id: room_id.0,
        share_screen_id: share_id.map(|c| c.0),
    };
    Request::new(Route::Meeting(MeetingMethod::ShareScreen), body)
}

/// The successful reply to `enter`: the room, ourselves and everyone already there.
pub(super) fn entered(r: EnterReply) -> SignalingEvent {
    SignalingEvent::Entered {
        room: RoomInfo {
            id: RoomId(r.room.id),
            name: r.room.name,
            owner_id: r.room.owner_id.map(UserId),
            host_id: r.room.super_mode_id.map(ClientId),
        },
        me: member(&r.client),
        members: r.members.iter().map(member).collect(),
    }
}

/// A `meeting/*` push. Our own request methods are never pushed: they are unknown here.
pub(super) fn push(
    method: MeetingMethod,
    env: &Envelope,
) -> Result<Option<SignalingEvent>, WireError> {
    use MeetingMethod as M;
    let event = match method {
        M::EnterRoom => someone_entered(env.decode()?),
        M::ExitRoom => someone_left(env.decode()?),
        M::OnFinish => finished(env.decode()?),
        M::Tiren => kicked(env.decode()?),
        M::OnMute => muted(env.decode()?),
        M::OnMuteAll => muted_all(env.decode()?),
        M::OnCompere => host_changed(env.decode()?),
        M::OnRaiseHand
        | M::OnChat
        | M::OnPrivateChat
        | M::OnPublished
        | M::OnShareScreen
        | M::OnUpdateMeeting
        | M::OnUpdateClient
        | M::MemberTalking => return Ok(None),
        M::Enter | M::Exit | M::MuteMsg | M::UpdateVideo | M::ShareScreen => {
            return Err(super::unknown(env));
        }
    };
    Ok(Some(event))
}

/// `EnterRoom`: someone entered, or (result 9) our account entered again elsewhere and this
/// socket lost its seat.
fn someone_entered(p: ClientPush) -> SignalingEvent {
    if p.result == Some(wire::code::REPLACED) {
        SignalingEvent::ReplacedByOtherLogin {
            room_id: RoomId(p.room_id),
        }
    } else {
        SignalingEvent::MemberEntered {
            room_id: RoomId(p.room_id),
            member: member(&p.client),
        }
    }
}

fn someone_left(p: ClientPush) -> SignalingEvent {
    SignalingEvent::MemberLeft {
        room_id: RoomId(p.room_id),
        client_id: ClientId(p.client.id),
    }
}

fn finished(p: FinishPush) -> SignalingEvent {
    SignalingEvent::Finished {
        room_id: RoomId(p.room_id),
        by: p.user_id.map(UserId),
    }
}

/// `tiren`: the host removed a participant (possibly us).
fn kicked(p: UserRoom) -> SignalingEvent {
    SignalingEvent::Kicked {
        room_id: RoomId(p.room_id),
        client_id: ClientId(p.user_id),
    }
}

/// `onMute`: an order only when `super` is exactly `fromSuper`.
fn muted(p: MuteMsg) -> SignalingEvent {
    SignalingEvent::Muted {
        room_id: RoomId(p.room_id),
        client_id: ClientId(p.user_id),
        muted: p.is_mute,
        from_host: p.from_super.as_deref() == Some(FROM_SUPER),
    }
}

fn muted_all(p: MuteAll) -> SignalingEvent {
    SignalingEvent::MutedAll {
        room_id: RoomId(p.room_id),
        muted: p.is_mute,
        from_host: p.from_super.as_deref() == Some(FROM_SUPER),
    }
}

/// `onCompere`: the named participant is the host now.
fn host_changed(p: UserRoom) -> SignalingEvent {
    SignalingEvent::HostChanged {
        room_id: RoomId(p.room_id),
        client_id: ClientId(p.user_id),
    }
}

/// A participant as the core sees it; absent flags mean no.
fn member(c: &wire::Client) -> Member {
    Member {
        client_id: ClientId(c.id),
        name: c.name.clone(),
        muted: c.is_muted.unwrap_or(false),
        host: c.is_super_moderator.unwrap_or(false),
    }
}
