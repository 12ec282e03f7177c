//! Call scenarios between whole agent cores through the real room-server hub and the real
//! RTCPeer sessions, in memory and on virtual time (`support::world`): each runs in
//! milliseconds and the same way every time.

mod support;

use std::time::Duration;

use roomagent::core::{
    AnswerMode, AnswerPolicy, CallEvent, CallPhase, Command, EndReason, MediaState, UserId,
};
use serde_json::json;
use support::world::{World, client, members, rooms};

const ROOM: UserId = UserId(1001);
const ROOM2: UserId = UserId(1002);

fn answers_after(ms: u64) -> AnswerPolicy {
    AnswerPolicy {
        delay: Duration::from_millis(ms),
        ..AnswerPolicy::default()
    }
}

fn never() -> AnswerPolicy {
    AnswerPolicy {
        mode: AnswerMode::Never,
        ..AnswerPolicy::default()
    }
}

/// A (room) dials B (room2), B answers after a second: both in the call with media up.
fn call() -> (World, usize, usize) {
    let mut w = World::new();
    let a = w.device("room", never());
    let b = w.device("room2", answers_after(1000));
    w.devices[a]
        .agent
        .command(w.now, Command::Dial { user: ROOM2 })
        .unwrap();
    w.progress();
    assert_eq!(w.devices[b].phase(), CallPhase::Ringing);
    assert_eq!(w.devices[a].phase(), CallPhase::Dialing);
    w.advance(Duration::from_secs(1));
    (w, a, b)
}

fn connected_with(w: &World, i: usize, other: UserId) {
    let m = members(w, i);
    assert_eq!(
        m.get(&other.0),
        Some(&(MediaState::Connected, true)),
        "device {i} sees {other} connected with video: {m:?}"
    );
}

#[test]
fn dial_and_answer() {
    let (w, a, b) = call();
    assert_eq!(w.devices[a].phase(), CallPhase::InCall);
    assert_eq!(w.devices[b].phase(), CallPhase::InCall);
    assert_eq!(rooms(&w, a), rooms(&w, b));
    connected_with(&w, a, ROOM2);
    connected_with(&w, b, ROOM);
    assert!(w.devices[b].events.contains(&CallEvent::Answered {
        from: ROOM,
        auto: true
    }));
}

#[test]
fn a_second_caller_gets_busy() {
    let (mut w, _a, b) = call();
    let c = w.device("room3", never());
    w.devices[c]
        .agent
        .command(w.now, Command::Dial { user: ROOM2 })
        .unwrap();
    w.advance(Duration::from_millis(10));
    assert_eq!(w.devices[c].endings(), vec![EndReason::RemoteBusy]);
    assert!(
        w.devices[b]
            .events
            .contains(&CallEvent::Busy { from: UserId(1003) })
    );
    assert_eq!(w.devices[b].phase(), CallPhase::InCall);
}

#[test]
fn the_caller_cancels_before_the_answer() {
    let mut w = World::new();
    let a = w.device("room", never());
    let b = w.device("room2", never());
    w.devices[a]
        .agent
        .command(w.now, Command::Dial { user: ROOM2 })
        .unwrap();
    w.advance(Duration::from_secs(3));
    assert_eq!(w.devices[b].phase(), CallPhase::Ringing);
    w.devices[a].agent.command(w.now, Command::Hangup).unwrap();
    w.progress();
    assert_eq!(w.devices[b].endings(), vec![EndReason::Cancelled]);
    assert_eq!(w.devices[a].endings(), vec![EndReason::LocalHangup]);
}

#[test]
fn nobody_answers_before_the_ring_timeout() {
    let mut w = World::new();
    let a = w.device("room", never());
    let b = w.device("room2", never());
    w.devices[a]
        .agent
        .command(w.now, Command::Dial { user: ROOM2 })
        .unwrap();
    w.advance(Duration::from_secs(29));
    assert_eq!(w.devices[b].phase(), CallPhase::Ringing);
    w.advance(Duration::from_secs(2));
    assert_eq!(w.devices[b].endings(), vec![EndReason::RingTimeout]);
    assert_eq!(w.devices[a].phase(), CallPhase::Idle);
}

#[test]
fn a_server_restart_mid_call_ends_in_the_same_call_after_re_registering() {
    let (mut w, a, b) = call();
    let room = rooms(&w, a);
    w.server_down();
    assert!(!w.devices[a].state().registered);
    assert_eq!(
        w.devices[a].phase(),
        CallPhase::InCall,
        "the call continues"
    );
    w.server_up(true);
    w.advance(Duration::from_millis(10));
    for (i, other) in [(a, ROOM2), (b, ROOM)] {
        assert!(w.devices[i].state().registered);
        assert_eq!(w.devices[i].phase(), CallPhase::InCall);
        assert_eq!(rooms(&w, i), room, "re-entered the same room");
        connected_with(&w, i, other);
    }
}

#[test]
fn the_host_mutes_the_room() {
    let mut w = World::new();
    let a = w.device("room", answers_after(0));
    let alice = w.raw("alice");
    let room = w.request(
        alice,
        "room",
        "newAppRoom",
        json!({"name": "call", "numberLimit": 8, "roomtype": 2, "userId": 2001}),
    );
    let room = room["roomId"].as_i64().unwrap();
    let r = w.request(alice, "call", "doInvite", json!({"ownUserId": 2001, "targetUserId": ROOM.0, "ownDeviceType": "webphone", "type": 2, "roomId": room}));
    assert_eq!(r["result"], 0, "{r}");
    assert_eq!(
        w.pushes(alice, "call", "doAgree").len(),
        1,
        "answered at once"
    );
    w.request(
        alice,
        "meeting",
        "enter",
        json!({"userId": 2001, "roomId": room, "roomType": 2}),
    );
    w.request(alice, "call", "doEvent", json!({"ownUserId": 2001, "targetUserId": ROOM.0, "event": "onConnected", "roomId": room, "roomType": 2}));
    assert_eq!(w.devices[a].phase(), CallPhase::InCall);
    let r = w.request(
        alice,
        "meeting",
        "muteMsg",
        json!({"userId": ROOM.0, "roomId": room, "isMute": true, "super": "fromSuper"}),
    );
    assert_eq!(r["result"], 0, "{r}");
    let s = w.devices[a].state();
    assert!(s.mic_muted && s.muted_by_host, "{s:?}");
}

#[test]
fn a_failed_session_is_offered_again_and_connects() {
    let mut w = World::new();
    let a = w.device("room", never());
    let b = w.device("room2", answers_after(0));
    // The first handshake fails on both ends, as a lost DTLS flight does.
    w.devices[a].media.fail.push(client(ROOM2));
    w.devices[b].media.fail.push(client(ROOM));
    w.devices[a]
        .agent
        .command(w.now, Command::Dial { user: ROOM2 })
        .unwrap();
    w.advance(Duration::from_millis(10));
    assert!(
        w.devices[a].media.connected().is_empty(),
        "the new offer waits a moment"
    );
    w.advance(Duration::from_millis(1100));
    connected_with(&w, a, ROOM2);
    connected_with(&w, b, ROOM);
    let starts = |i: usize| {
        w.devices[i]
            .media
            .commands
            .iter()
            .filter(|c| matches!(c, roomagent::core::MediaCommand::StartSession { .. }))
            .count()
    };
    assert_eq!(
        (starts(a), starts(b)),
        (2, 2),
        "one session, started again once"
    );
    assert!(
        !w.devices[a]
            .events
            .iter()
            .chain(&w.devices[b].events)
            .any(|e| matches!(e, CallEvent::Error { .. })),
        "a retried session is not reported as an error"
    );
}

#[test]
fn a_room_that_empties_while_the_server_is_away_ends_the_call() {
    let (mut w, a, b) = call();
    w.server_down();
    // B hangs up while the server is away: its exit never reaches the server.
    w.devices[b].agent.command(w.now, Command::Hangup).unwrap();
    w.progress();
    assert_eq!(w.devices[b].phase(), CallPhase::Idle);
    assert_eq!(w.devices[a].phase(), CallPhase::InCall);
    w.server_up(false);
    w.advance(Duration::from_secs(1));
    assert_eq!(
        w.devices[a].phase(),
        CallPhase::InCall,
        "others may still be coming back"
    );
    w.advance(Duration::from_secs(20));
    assert_eq!(
        w.devices[a].phase(),
        CallPhase::Idle,
        "A does not sit alone"
    );
    assert_eq!(w.devices[a].endings(), vec![EndReason::RemoteLeft]);
}

fn starts(w: &World, i: usize) -> usize {
    w.devices[i]
        .media
        .commands
        .iter()
        .filter(|c| matches!(c, roomagent::core::MediaCommand::StartSession { .. }))
        .count()
}

#[test]
fn a_session_that_never_connects_times_out_and_is_offered_again() {
    let mut w = World::new();
    let a = w.device("room", never());
    let b = w.device("room2", answers_after(0));
    // The first attempt goes nowhere on both ends: no failure, no connection.
    w.devices[a].media.stall.push(client(ROOM2));
    w.devices[b].media.stall.push(client(ROOM));
    w.devices[a]
        .agent
        .command(w.now, Command::Dial { user: ROOM2 })
        .unwrap();
    w.advance(Duration::from_secs(14));
    assert!(w.devices[a].media.connected().is_empty());
    assert_eq!(starts(&w, a), 1, "still waiting for the first session");
    // At 15 s the session counts as failed, and 1 s later it is offered again.
    w.advance(Duration::from_secs(3));
    connected_with(&w, a, ROOM2);
    connected_with(&w, b, ROOM);
    assert_eq!(starts(&w, a), 2);
    assert_eq!(w.devices[a].phase(), CallPhase::InCall, "the call went on");
}

#[test]
fn new_offers_back_off_and_a_connection_resets_the_count() {
    let mut w = World::new();
    let a = w.device("room", never());
    let b = w.device("room2", answers_after(0));
    // Three failed handshakes in a row (on both ends, as a lost DTLS flight does): the offerer
    // offers again after 1 s, 2 s and 4 s.
    for _ in 0..3 {
        w.devices[a].media.fail.push(client(ROOM2));
        w.devices[b].media.fail.push(client(ROOM));
    }
    w.devices[a]
        .agent
        .command(w.now, Command::Dial { user: ROOM2 })
        .unwrap();
    w.advance(Duration::from_millis(10));
    let offerer = if offered(&w, a) { a } else { b };
    let (answerer, other) = if offerer == a { (b, ROOM2) } else { (a, ROOM) };
    let mut seen = Vec::new();
    for _ in 0..80 {
        w.advance(Duration::from_millis(100));
        seen.push(starts(&w, offerer));
    }
    // The instants (in tenths of a second after the dial) at which each new offer went out.
    let at: Vec<usize> = (2..=4)
        .map(|n| seen.iter().position(|c| *c >= n).expect("offered again"))
        .collect();
    assert!((9..=11).contains(&at[0]), "first retry after ~1 s: {at:?}");
    assert!((19..=21).contains(&(at[1] - at[0])), "then ~2 s: {at:?}");
    assert!((39..=41).contains(&(at[2] - at[1])), "then ~4 s: {at:?}");
    connected_with(&w, offerer, other);
    // Once connected, later breaks are retried from the start again, not reported as final.
    for _ in 0..4 {
        w.devices[offerer].media.break_session(client(other));
        w.devices[answerer]
            .media
            .break_session(client(if other == ROOM2 { ROOM } else { ROOM2 }));
        w.advance(Duration::from_millis(1100));
        connected_with(&w, offerer, other);
    }
    assert!(
        !w.devices[offerer]
            .events
            .iter()
            .any(|e| matches!(e, CallEvent::Error { .. })),
        "sessions that came back are not errors"
    );
}

fn offered(w: &World, i: usize) -> bool {
    w.devices[i].media.commands.iter().any(|c| {
        matches!(
            c,
            roomagent::core::MediaCommand::StartSession {
                role: roomagent::core::SessionRole::Offerer,
                ..
            }
        )
    })
}

/// Any logged-in user can enter a room by its id. Bob enters the call between the two rooms
/// uninvited and offers media to both: neither answers, neither offers to him, and the call
/// between the two goes on with its media.
#[test]
fn someone_entering_the_call_uninvited_gets_no_camera_or_microphone() {
    let (mut w, a, b) = call();
    let room = rooms(&w, a).expect("in a room");
    let bob = w.raw("bob");
    let r = w.request(
        bob,
        "meeting",
        "enter",
        json!({"userId": 2002, "roomId": room, "roomType": 2}),
    );
    assert_eq!(r["result"], 0, "the server lets him in: {r}");
    for (i, me) in [(a, ROOM), (b, ROOM2)] {
        let r = w.request(
            bob,
            "media",
            "offer",
            json!({"roomId": room, "fromClientId": 2002, "toClientId": me.0, "sdp": "v=0 from bob"}),
        );
        assert_eq!(r["result"], 0, "{r}");
        let started_with_bob = w.devices[i].media.commands.iter().any(|c| {
            matches!(c, roomagent::core::MediaCommand::StartSession { peer, .. } if peer.0 == 2002)
        });
        assert!(!started_with_bob, "device {i} started a session with bob");
        assert_eq!(
            members(&w, i).get(&2002),
            Some(&(MediaState::None, false)),
            "device {i} lists bob without media"
        );
    }
    assert!(w.pushes(bob, "media", "answer").is_empty());
    assert!(w.pushes(bob, "media", "offer").is_empty());
    connected_with(&w, a, ROOM2);
    connected_with(&w, b, ROOM);
}
