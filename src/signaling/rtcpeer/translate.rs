//! Translation between RTCPeer frames and the core's enums. Pure: no sockets, no clock.

use serde_json::{Value, json};

use super::wire::{
    self, CallMsg, ClientPush, EnterReply, Envelope, FROM_SUPER, FinishPush, InviteReply, MediaBye,
    MediaCandidate, MediaSdp, MuteAll, MuteMsg, NewAppRoomReply, UserRoom, WireError, event,
};
use crate::core::{
    CallType, ClientId, MediaSignal, Member, Outgoing, Peer, RequestKind, RoomId, RoomInfo,
    SignalingEvent, UserId,
};

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
    /// `module`.
    pub module: &'static str,
    /// `method`.
    pub method: &'static str,
    /// The other fields.
    pub body: Value,
    /// How a failure is reported to the core.
    pub kind: RequestKind,
    /// For invites: who was invited.
    pub target: Option<UserId>,
}

/// Capacity of the temporary rooms the device creates when dialing.
const CALL_ROOM_LIMIT: i64 = 16;

fn call_msg(me: &Identity, to: &Peer) -> CallMsg {
    CallMsg {
        own_user_id: Some(me.user_id.0),
        target_user_id: Some(to.user_id.0),
        own_device_type: Some(me.device_type.clone()),
        target_device_type: to.device_type.clone(),
        ..CallMsg::default()
    }
}

fn to_value<T: serde::Serialize>(v: T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
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
    let req = |module, method, body: Value| Request {
        module,
        method,
        body,
        kind: RequestKind::Other,
        target: None,
    };
    let ev = |to: &Peer, name: &str| {
        to_value(CallMsg {
            event: Some(name.into()),
            ..call_msg(me, to)
        })
    };
    Some(match out {
        Outgoing::CommandReply { .. } => return None,
        Outgoing::Ringing { to } => req("call", "doEvent", ev(to, event::RINGING)),
        Outgoing::Busy { to } => req("call", "doEvent", ev(to, event::BUSY)),
        Outgoing::Connected {
            to,
            room_id,
            room_type,
        } => req(
            "call",
            "doEvent",
            to_value(CallMsg {
                event: Some(event::CONNECTED.into()),
                room_id: Some(room_id.0),
                room_type: Some(call_type_code(*room_type)),
                ..call_msg(me, to)
            }),
        ),
        Outgoing::Agree {
            to,
            room_id,
            call_type,
        } => req(
            "call",
            "doAgree",
            to_value(CallMsg {
                room_id: room_id.map(|r| r.0),
                call_type: Some(call_type_code(*call_type)),
                ..call_msg(me, to)
            }),
        ),
        Outgoing::Reject { to } => req("call", "reject", to_value(call_msg(me, to))),
        Outgoing::Cancel { to } => req("call", "cancel", to_value(call_msg(me, to))),
        Outgoing::Invite {
            to,
            room_id,
            call_type,
        } => Request {
            kind: RequestKind::Invite,
            target: Some(*to),
            ..req(
                "call",
                "doInvite",
                to_value(CallMsg {
                    room_id: Some(room_id.0),
                    call_type: Some(call_type_code(*call_type)),
                    ..call_msg(me, &Peer::user(*to))
                }),
            )
        },
        Outgoing::CreateRoom { name, call_type } => Request {
            kind: RequestKind::CreateRoom,
            ..req(
                "room",
                "newAppRoom",
                to_value(wire::NewAppRoom {
                    name: name.clone(),
                    number_limit: CALL_ROOM_LIMIT,
                    roomtype: call_type_code(*call_type),
                    user_id: me.user_id.0,
                }),
            )
        },
        Outgoing::Enter { room_id, room_type } => Request {
            kind: RequestKind::Enter,
            ..req(
                "meeting",
                "enter",
                to_value(wire::Enter {
                    user_id: me.user_id.0,
                    room_id: room_id.0,
                    room_type: call_type_code(*room_type),
                    username: Some(me.name.clone()),
                }),
            )
        },
        Outgoing::Exit { room_id } => req("meeting", "exit", json!({ "roomId": room_id })),
        Outgoing::AnnounceMute { room_id, muted } => req(
            "meeting",
            "muteMsg",
            to_value(MuteMsg {
                user_id: me.user_id.0,
                room_id: room_id.0,
                is_mute: *muted,
                from_super: None,
            }),
        ),
        Outgoing::AnnounceVideo { room_id, video } => req(
            "meeting",
            "updateVideo",
            to_value(wire::UpdateVideo {
                room_id: room_id.0,
                video: *video,
            }),
        ),
        Outgoing::AnnounceShare { room_id, share_id } => req(
            "meeting",
            "shareScreen",
            to_value(wire::ShareScreen {
                room_id: room_id.0,
                share_screen_id: share_id.map(|c| c.0),
            }),
        ),
        Outgoing::Media {
            room_id,
            to,
            signal,
        } => {
            let from = Some(me.user_id.0);
            match signal {
                MediaSignal::Offer { sdp } | MediaSignal::Answer { sdp } => req(
                    "media",
                    if matches!(signal, MediaSignal::Offer { .. }) {
                        "offer"
                    } else {
                        "answer"
                    },
                    to_value(MediaSdp {
                        room_id: room_id.0,
                        from_client_id: from,
                        to_client_id: to.0,
                        sdp: sdp.clone(),
                    }),
                ),
                MediaSignal::Candidate {
                    candidate,
                    sdp_mline_index,
                    sdp_mid,
                } => req(
                    "media",
                    "candidate",
                    to_value(MediaCandidate {
                        room_id: room_id.0,
                        from_client_id: from,
                        to_client_id: to.0,
                        candidate: candidate.clone(),
                        sdp_mline_index: *sdp_mline_index,
                        sdp_mid: sdp_mid.clone(),
                    }),
                ),
                MediaSignal::Bye => req(
                    "media",
                    "bye",
                    to_value(MediaBye {
                        room_id: room_id.0,
                        from_client_id: from,
                        to_client_id: to.0,
                    }),
                ),
            }
        }
    })
}

/// A request of ours that awaits its reply.
#[derive(Debug, Clone)]
pub struct Pending {
    /// `module/method` as sent.
    pub route: (&'static str, &'static str),
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
    let message = env.message().unwrap_or("").to_string();
    if pending.route == ("call", "doInvite") {
        let _ = env.decode::<InviteReply>()?;
        return Ok(Some(SignalingEvent::InviteResult {
            to: pending.target,
            delivered: result == wire::code::OK,
        }));
    }
    if result != wire::code::OK {
        let message = if message.is_empty() {
            format!("{}/{} refused", pending.route.0, pending.route.1)
        } else {
            message
        };
        return Ok(Some(SignalingEvent::RequestFailed {
            request: pending.kind,
            code: result,
            message,
        }));
    }
    Ok(match pending.route {
        ("room", "newAppRoom") => Some(SignalingEvent::RoomCreated {
            room_id: RoomId(env.decode::<NewAppRoomReply>()?.room_id),
        }),
        ("meeting", "enter") => {
            let r: EnterReply = env.decode()?;
            Some(SignalingEvent::Entered {
                room: RoomInfo {
                    id: RoomId(r.room.id),
                    name: r.room.name,
                    owner_id: r.room.owner_id.map(UserId),
                    host_id: r.room.super_mode_id.map(ClientId),
                },
                me: member(&r.client),
                members: r.members.iter().map(member).collect(),
            })
        }
        _ => None,
    })
}

fn member(c: &wire::Client) -> Member {
    Member {
        client_id: ClientId(c.id),
        name: c.name.clone(),
        muted: c.is_muted.unwrap_or(false),
        host: c.is_super_moderator.unwrap_or(false),
    }
}

fn sender(m: &CallMsg) -> Result<UserId, WireError> {
    m.own_user_id.map(UserId).ok_or_else(|| WireError::Field {
        field: "ownUserId".into(),
        problem: "missing".into(),
    })
}

fn from_client(id: Option<i64>) -> Result<ClientId, WireError> {
    id.map(ClientId).ok_or_else(|| WireError::Field {
        field: "fromClientId".into(),
        problem: "missing".into(),
    })
}

/// Translates a server push. `Ok(None)`: a known push the core does not act on.
pub fn push(env: &Envelope) -> Result<Option<SignalingEvent>, WireError> {
    use SignalingEvent as E;
    let ev = match env.route() {
        ("call", "doInvite") => {
            let m: CallMsg = env.decode()?;
            E::Invite {
                from: Peer {
                    user_id: sender(&m)?,
                    device_type: m.own_device_type,
                },
                call_type: m
                    .call_type
                    .and_then(call_type_from_code)
                    .unwrap_or(CallType::Video),
                room_id: m.room_id.map(RoomId),
            }
        }
        ("call", "doEvent") => {
            let m: CallMsg = env.decode()?;
            let from = sender(&m)?;
            match m.event.as_deref() {
                Some(event::RINGING) => E::RemoteRinging { from },
                Some(event::BUSY) => E::RemoteBusy { from },
                Some(event::CONNECTED) => E::RemoteConnected {
                    from,
                    room_id: m.room_id.map(RoomId),
                    room_type: m.room_type.and_then(call_type_from_code),
                },
                Some(_) => return Ok(None),
                None => {
                    return Err(WireError::Field {
                        field: "event".into(),
                        problem: "missing".into(),
                    });
                }
            }
        }
        ("call", "doAgree") => {
            let m: CallMsg = env.decode()?;
            E::RemoteAgreed {
                from: sender(&m)?,
                room_id: m.room_id.map(RoomId),
            }
        }
        ("call", "reject") => E::RemoteRejected {
            from: sender(&env.decode()?)?,
        },
        ("call", "cancel") => E::RemoteCancelled {
            from: sender(&env.decode()?)?,
        },
        ("meeting", "EnterRoom") => {
            let p: ClientPush = env.decode()?;
            if p.result == Some(wire::code::REPLACED) {
                E::ReplacedByOtherLogin {
                    room_id: RoomId(p.room_id),
                }
            } else {
                E::MemberEntered {
                    room_id: RoomId(p.room_id),
                    member: member(&p.client),
                }
            }
        }
        ("meeting", "ExitRoom") => {
            let p: ClientPush = env.decode()?;
            E::MemberLeft {
                room_id: RoomId(p.room_id),
                client_id: ClientId(p.client.id),
            }
        }
        ("meeting", "onFinish") => {
            let p: FinishPush = env.decode()?;
            E::Finished {
                room_id: RoomId(p.room_id),
                by: p.user_id.map(UserId),
            }
        }
        ("meeting", "tiren") => {
            let p: UserRoom = env.decode()?;
            E::Kicked {
                room_id: RoomId(p.room_id),
                client_id: ClientId(p.user_id),
            }
        }
        ("meeting", "onMute") => {
            let p: MuteMsg = env.decode()?;
            E::Muted {
                room_id: RoomId(p.room_id),
                client_id: ClientId(p.user_id),
                muted: p.is_mute,
                from_host: p.from_super.as_deref() == Some(FROM_SUPER),
            }
        }
        ("meeting", "onMuteAll") => {
            let p: MuteAll = env.decode()?;
            E::MutedAll {
                room_id: RoomId(p.room_id),
                muted: p.is_mute,
                from_host: p.from_super.as_deref() == Some(FROM_SUPER),
            }
        }
        ("meeting", "onCompere") => {
            let p: UserRoom = env.decode()?;
            E::HostChanged {
                room_id: RoomId(p.room_id),
                client_id: ClientId(p.user_id),
            }
        }
        ("media", "offer") | ("media", "answer") => {
            let m: MediaSdp = env.decode()?;
            let signal = if env.method == "offer" {
                MediaSignal::Offer { sdp: m.sdp }
            } else {
                MediaSignal::Answer { sdp: m.sdp }
            };
            E::Media {
                room_id: RoomId(m.room_id),
                from: from_client(m.from_client_id)?,
                signal,
            }
        }
        ("media", "candidate") => {
            let m: MediaCandidate = env.decode()?;
            E::Media {
                room_id: RoomId(m.room_id),
                from: from_client(m.from_client_id)?,
                signal: MediaSignal::Candidate {
                    candidate: m.candidate,
                    sdp_mline_index: m.sdp_mline_index,
                    sdp_mid: m.sdp_mid,
                },
            }
        }
        ("media", "bye") => {
            let m: MediaBye = env.decode()?;
            E::Media {
                room_id: RoomId(m.room_id),
                from: from_client(m.from_client_id)?,
                signal: MediaSignal::Bye,
            }
        }
        (
            "meeting",
            "onRaiseHand" | "onChat" | "onPrivateChat" | "onPublished" | "onShareScreen"
            | "onUpdateMeeting" | "onUpdateClient" | "memberTalking",
        ) => return Ok(None),
        (module, method) => {
            return Err(WireError::Unknown {
                module: module.into(),
                method: method.into(),
            });
        }
    };
    Ok(Some(ev))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> Identity {
        Identity {
            user_id: UserId(100),
            device_type: "tv".into(),
            name: "Room 101".into(),
        }
    }

    fn env(v: Value) -> Envelope {
        Envelope::parse(&v.to_string()).unwrap()
    }

    #[test]
    fn ringing_is_a_do_event_addressed_to_the_caller() {
        let r = request(
            &me(),
            &Outgoing::Ringing {
                to: Peer {
                    user_id: UserId(7),
                    device_type: Some("webphone".into()),
                },
            },
        )
        .unwrap();
        assert_eq!((r.module, r.method), ("call", "doEvent"));
        assert_eq!(
            r.body,
            json!({"ownUserId":100,"targetUserId":7,"ownDeviceType":"tv","targetDeviceType":"webphone","event":"onRinging"})
        );
    }

    #[test]
    fn own_mute_is_announced_naming_ourselves() {
        let r = request(
            &me(),
            &Outgoing::AnnounceMute {
                room_id: RoomId(9),
                muted: true,
            },
        )
        .unwrap();
        assert_eq!((r.module, r.method), ("meeting", "muteMsg"));
        assert_eq!(r.body, json!({"userId":100,"roomId":9,"isMute":true}));
    }

    #[test]
    fn invites_decode_with_the_callers_device() {
        let e = push(&env(json!({"module":"call","method":"doInvite","ownUserId":7,"ownDeviceType":"pc","type":1,"roomId":3}))).unwrap();
        assert_eq!(
            e,
            Some(SignalingEvent::Invite {
                from: Peer {
                    user_id: UserId(7),
                    device_type: Some("pc".into())
                },
                call_type: CallType::Audio,
                room_id: Some(RoomId(3))
            })
        );
    }

    #[test]
    fn host_mute_needs_from_super() {
        let e = push(&env(json!({"module":"meeting","method":"onMute","userId":1,"roomId":2,"isMute":true,"super":"fromSuper"}))).unwrap();
        assert!(matches!(
            e,
            Some(SignalingEvent::Muted {
                from_host: true,
                ..
            })
        ));
        let e = push(&env(
            json!({"module":"meeting","method":"onMute","userId":1,"roomId":2,"isMute":true}),
        ))
        .unwrap();
        assert!(matches!(
            e,
            Some(SignalingEvent::Muted {
                from_host: false,
                ..
            })
        ));
    }

    #[test]
    fn enter_room_with_result_9_means_replaced() {
        let e = push(&env(json!({"module":"meeting","method":"EnterRoom","roomId":2,"client":{"id":100},"result":9}))).unwrap();
        assert_eq!(
            e,
            Some(SignalingEvent::ReplacedByOtherLogin { room_id: RoomId(2) })
        );
    }

    #[test]
    fn unknown_pushes_and_bad_fields_are_errors_that_name_them() {
        assert!(matches!(
            push(&env(json!({"module":"x","method":"y"}))),
            Err(WireError::Unknown { .. })
        ));
        assert_eq!(
            push(&env(json!({"module":"call","method":"doAgree","roomId":1}))),
            Err(WireError::Field {
                field: "ownUserId".into(),
                problem: "missing".into()
            })
        );
    }

    #[test]
    fn offline_invite_reply_reports_undelivered() {
        let p = Pending {
            route: ("call", "doInvite"),
            kind: RequestKind::Invite,
            target: Some(UserId(42)),
        };
        let e = reply(
            &env(json!({"module":"call","method":"doInvite","reqId":"1","result":1})),
            &p,
        )
        .unwrap();
        assert_eq!(
            e,
            Some(SignalingEvent::InviteResult {
                to: Some(UserId(42)),
                delivered: false
            })
        );
    }

    #[test]
    fn enter_reply_lists_members() {
        let p = Pending {
            route: ("meeting", "enter"),
            kind: RequestKind::Enter,
            target: None,
        };
        let e = reply(
            &env(
                json!({"module":"meeting","method":"enter","reqId":"1","result":0,
                "client":{"id":100},"members":[{"id":7,"name":"alice","isSuperModerator":true}],
                "room":{"id":5,"superModeId":7}}),
            ),
            &p,
        )
        .unwrap();
        match e {
            Some(SignalingEvent::Entered { room, me, members }) => {
                assert_eq!(room.host_id, Some(ClientId(7)));
                assert_eq!(me.client_id, ClientId(100));
                assert!(members[0].host);
            }
            other => panic!("{other:?}"),
        }
    }
}
