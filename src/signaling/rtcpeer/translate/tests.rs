//! Translation both ways, frame by frame.

use serde_json::json;

use super::*;
use crate::core::{ClientId, MediaSignal, Peer, RoomId};

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
    assert_eq!((r.route.module(), r.route.method()), ("call", "doEvent"));
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
    assert_eq!((r.route.module(), r.route.method()), ("meeting", "muteMsg"));
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
    let e = push(&env(
        json!({"module":"meeting","method":"EnterRoom","roomId":2,"client":{"id":100},"result":9}),
    ))
    .unwrap();
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
        route: Route::Call(CallMethod::DoInvite),
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
        route: Route::Meeting(MeetingMethod::Enter),
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

#[test]
fn quality_requests_go_both_ways_and_a_bad_layer_is_named() {
    let r = media::request(
        &me(),
        RoomId(5),
        ClientId(7),
        &MediaSignal::Quality { layer: 0 },
    );
    assert_eq!(r.route, Route::Media(MediaMethod::Quality));
    assert_eq!(r.body["sim"], 0);
    assert_eq!(r.body["toClientId"], 7);
    assert_eq!(r.body["fromClientId"], 100);
    let got = push(&env(
        json!({"module":"media","method":"quality","roomId":5,"fromClientId":7,"toClientId":100,"sim":1}),
    ));
    assert!(matches!(
        got,
        Ok(Some(SignalingEvent::Media {
            from: ClientId(7),
            signal: MediaSignal::Quality { layer: 1 },
            ..
        }))
    ));
    for bad in [json!(3), json!(-1), json!(99999999999i64)] {
        let got = push(&env(
            json!({"module":"media","method":"quality","roomId":5,"fromClientId":7,"toClientId":100,"sim":bad}),
        ));
        match got {
            Err(WireError::Field { field, problem }) => {
                assert_eq!(field, "sim");
                assert!(problem.contains("0 (small)"), "{problem}");
            }
            other => panic!("sim {bad} was taken: {other:?}"),
        }
    }
    assert!(matches!(
        push(&env(
            json!({"module":"media","method":"quality","roomId":5,"fromClientId":7,"toClientId":100,"sim":"large"})
        )),
        Err(WireError::Field { .. })
    ));
}
