//! Dialing out and joining rooms.

use super::*;

const CALLEE: UserId = UserId(42);
const CALLEE_C: ClientId = ClientId(42);
const NEW_ROOM: RoomId = RoomId(7777);

fn callee() -> Peer {
    Peer::user(CALLEE)
}

fn dialing() -> Harness {
    let mut h = Harness::default_policy();
    h.command(Command::Dial { user: CALLEE }).unwrap();
    assert_eq!(
        h.sent(),
        vec![Outgoing::CreateRoom {
            name: "Room 101".into(),
            call_type: CallType::Video
        }]
    );
    h.signal(SignalingEvent::RoomCreated { room_id: NEW_ROOM });
    assert_eq!(
        h.sent(),
        vec![Outgoing::Invite {
            to: CALLEE,
            room_id: NEW_ROOM,
            call_type: CallType::Video
        }]
    );
    assert_eq!(h.phase(), CallPhase::Dialing);
    h
}

#[test]
fn dial_creates_a_room_then_invites() {
    dialing();
}

#[test]
fn remote_agree_enters_then_sends_connected() {
    let mut h = dialing();
    h.signal(SignalingEvent::RemoteRinging { from: CALLEE });
    assert!(events(&h.take()).contains(&CallEvent::RemoteRinging { to: CALLEE }));
    h.signal(SignalingEvent::RemoteAgreed {
        from: CALLEE,
        room_id: Some(NEW_ROOM),
    });
    assert_eq!(
        h.sent(),
        vec![Outgoing::Enter {
            room_id: NEW_ROOM,
            room_type: CallType::Video
        }]
    );
    h.signal(SignalingEvent::Entered {
        room: RoomInfo {
            id: NEW_ROOM,
            name: None,
            owner_id: Some(ME),
            host_id: Some(ME_C),
        },
        me: member(ME_C),
        members: vec![],
    });
    assert_eq!(
        h.sent(),
        vec![Outgoing::Connected {
            to: callee(),
            room_id: NEW_ROOM,
            room_type: CallType::Video
        }]
    );
    // The callee enters later and offers; we answer.
    h.signal(SignalingEvent::MemberEntered {
        room_id: NEW_ROOM,
        member: member(CALLEE_C),
    });
    h.signal(SignalingEvent::Media {
        room_id: NEW_ROOM,
        from: CALLEE_C,
        signal: MediaSignal::Offer { sdp: "v=0".into() },
    });
    let cmds = media(&h.take());
    assert_eq!(
        cmds,
        vec![
            MediaCommand::StartSession {
                peer: CALLEE_C,
                role: SessionRole::Answerer,
                call_type: CallType::Video
            },
            MediaCommand::RemoteSignal {
                peer: CALLEE_C,
                signal: MediaSignal::Offer { sdp: "v=0".into() }
            }
        ]
    );
    // Being alone in our own room before the callee arrived did not end the call.
    assert_eq!(h.phase(), CallPhase::InCall);
}

#[test]
fn offline_target_ends_the_dial() {
    let mut h = dialing();
    h.signal(SignalingEvent::InviteResult {
        to: Some(CALLEE),
        delivered: false,
    });
    assert_eq!(ended(&h.take()), Some(EndReason::Offline));
    assert_eq!(h.phase(), CallPhase::Idle);
}

#[test]
fn remote_busy_and_reject_end_the_dial() {
    let mut h = dialing();
    h.signal(SignalingEvent::RemoteBusy { from: CALLEE });
    assert_eq!(ended(&h.take()), Some(EndReason::RemoteBusy));
    let mut h = dialing();
    h.signal(SignalingEvent::RemoteRejected { from: CALLEE });
    assert_eq!(ended(&h.take()), Some(EndReason::RemoteRejected));
}

#[test]
fn unanswered_dial_is_cancelled_after_ring_timeout() {
    let mut h = dialing();
    h.advance(Duration::from_secs(30));
    let actions = h.take();
    assert!(actions.contains(&Action::Signal(Outgoing::Cancel { to: callee() })));
    assert_eq!(ended(&actions), Some(EndReason::NoAnswer));
}

#[test]
fn hangup_while_dialing_cancels_the_invite() {
    let mut h = dialing();
    h.command(Command::Hangup).unwrap();
    let actions = h.take();
    assert!(actions.contains(&Action::Signal(Outgoing::Cancel { to: callee() })));
    assert_eq!(ended(&actions), Some(EndReason::LocalHangup));
}

#[test]
fn failed_room_creation_ends_the_dial_with_the_servers_message() {
    let mut h = Harness::default_policy();
    h.command(Command::Dial { user: CALLEE }).unwrap();
    h.signal(SignalingEvent::RequestFailed {
        request: RequestKind::CreateRoom,
        code: 1,
        message: "numberLimit too large".into(),
    });
    match ended(&h.take()) {
        Some(EndReason::Error(m)) => assert!(m.contains("numberLimit too large"), "{m}"),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn join_enters_a_room_by_id_and_offers_to_everyone_there() {
    let mut h = Harness::default_policy();
    h.command(Command::Join { room: RoomId(31) }).unwrap();
    assert_eq!(
        h.sent(),
        vec![Outgoing::Enter {
            room_id: RoomId(31),
            room_type: CallType::Video
        }]
    );
    h.signal(SignalingEvent::Entered {
        room: RoomInfo {
            id: RoomId(31),
            name: None,
            owner_id: None,
            host_id: None,
        },
        me: member(ME_C),
        members: vec![member(ClientId(1)), member(ClientId(2))],
    });
    let offers: Vec<_> = media(&h.take())
        .into_iter()
        .filter(|c| {
            matches!(
                c,
                MediaCommand::StartSession {
                    role: SessionRole::Offerer,
                    ..
                }
            )
        })
        .collect();
    assert_eq!(offers.len(), 2);
    assert_eq!(h.phase(), CallPhase::InCall);
}

#[test]
fn a_dial_survives_a_reconnect_by_repeating_its_pending_step() {
    let mut h = dialing();
    h.signal(SignalingEvent::Disconnected {
        reason: "server went away".into(),
    });
    h.signal(SignalingEvent::Registered { user_id: ME });
    assert_eq!(
        h.sent(),
        vec![Outgoing::Invite {
            to: CALLEE,
            room_id: NEW_ROOM,
            call_type: CallType::Video
        }]
    );
}

/// Dialing starts the call media while the far end rings (the first session then sends at
/// once); a dial that ends unanswered releases it again.
#[test]
fn dialing_prepares_the_media_and_an_unanswered_dial_releases_it() {
    let mut h = Harness::default_policy();
    h.command(Command::Dial { user: CALLEE }).unwrap();
    assert!(media(&h.take()).contains(&MediaCommand::Prepare));
    h.signal(SignalingEvent::RoomCreated { room_id: NEW_ROOM });
    h.signal(SignalingEvent::RemoteRejected { from: CALLEE });
    let actions = h.take();
    assert_eq!(ended(&actions), Some(EndReason::RemoteRejected));
    assert!(media(&actions).contains(&MediaCommand::StopAll));
}
