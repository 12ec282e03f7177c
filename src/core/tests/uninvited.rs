//! Someone nobody invited enters our call's room (any logged-in user can enter a room by its
//! id): they are listed, but get neither our camera and microphone nor an answer to their
//! offer. Only the person we answered or dialed, and whoever holds the room's authority
//! (its host or owner), get a session.

use super::*;

const INTRUDER: ClientId = ClientId(66);

fn starts(actions: &[Action]) -> Vec<ClientId> {
    media(actions)
        .into_iter()
        .filter_map(|c| match c {
            MediaCommand::StartSession { peer, .. } => Some(peer),
            _ => None,
        })
        .collect()
}

fn offer_from(h: &mut Harness, from: ClientId) -> Vec<Action> {
    h.signal(SignalingEvent::Media {
        room_id: ROOM,
        from,
        signal: MediaSignal::Offer { sdp: "v=0".into() },
    });
    h.take()
}

/// Answered CALLER's call; the room already holds `members` when we enter.
fn answered_with(members: &[ClientId]) -> (Harness, Vec<Action>) {
    let mut h = Harness::new(AnswerPolicy {
        delay: Duration::ZERO,
        ..AnswerPolicy::default()
    });
    h.invite(CALLER);
    h.signal(SignalingEvent::RemoteConnected {
        from: CALLER,
        room_id: Some(ROOM),
        room_type: Some(CallType::Video),
    });
    h.take();
    h.signal(SignalingEvent::Entered {
        room: room_info(),
        me: member(ME_C),
        members: members.iter().map(|&c| member(c)).collect(),
    });
    let actions = h.take();
    (h, actions)
}

#[test]
fn someone_already_in_the_callers_room_gets_no_offer() {
    let (h, actions) = answered_with(&[INTRUDER, CALLER_C]);
    assert_eq!(starts(&actions), vec![CALLER_C]);
    let seen: Vec<ClientId> = h
        .agent
        .state()
        .members
        .iter()
        .map(|m| m.client_id)
        .collect();
    assert!(
        seen.contains(&INTRUDER),
        "listed for the dashboard: {seen:?}"
    );
}

#[test]
fn an_uninvited_offer_is_not_answered_and_the_callers_is() {
    let mut h = Harness::in_call_with(&[CALLER_C]);
    h.signal(SignalingEvent::MemberEntered {
        room_id: ROOM,
        member: member(INTRUDER),
    });
    assert!(media(&h.take()).is_empty());
    assert!(media(&offer_from(&mut h, INTRUDER)).is_empty());
    assert_eq!(starts(&offer_from(&mut h, CALLER_C)), vec![CALLER_C]);
}

#[test]
fn the_caller_leaving_ends_the_call_even_with_an_intruder_left() {
    let mut h = Harness::in_call_with(&[CALLER_C]);
    h.signal(SignalingEvent::MemberEntered {
        room_id: ROOM,
        member: member(INTRUDER),
    });
    h.signal(SignalingEvent::MemberLeft {
        room_id: ROOM,
        client_id: CALLER_C,
    });
    assert_eq!(ended(&h.take()), Some(EndReason::RemoteLeft));
    assert_eq!(h.phase(), CallPhase::Idle);
}

#[test]
fn a_participant_the_host_hands_the_room_to_is_answered() {
    let mut h = Harness::in_call_with(&[CALLER_C]);
    h.signal(SignalingEvent::MemberEntered {
        room_id: ROOM,
        member: member(INTRUDER),
    });
    h.signal(SignalingEvent::HostChanged {
        room_id: ROOM,
        client_id: INTRUDER,
    });
    h.take();
    assert_eq!(starts(&offer_from(&mut h, INTRUDER)), vec![INTRUDER]);
}

#[test]
fn in_a_room_we_were_told_to_join_everyone_gets_media() {
    let mut h = Harness::in_room_with(&[CALLER_C]);
    h.signal(SignalingEvent::MemberEntered {
        room_id: ROOM,
        member: member(INTRUDER),
    });
    h.take();
    assert_eq!(starts(&offer_from(&mut h, INTRUDER)), vec![INTRUDER]);
}
