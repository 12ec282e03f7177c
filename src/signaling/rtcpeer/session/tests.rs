//! The control-socket session on virtual time: instants passed in, frames and events out.

use std::io;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::*;
use crate::core::{CallType, ClientId, Peer, RequestKind, RoomId, UserId};

const KEEPALIVE: Duration = Duration::from_secs(20);
const TIMEOUT: Duration = Duration::from_secs(10);

fn settings() -> Settings {
    Settings {
        me: Identity {
            user_id: UserId(100),
            device_type: "tv".into(),
            name: "Room 101".into(),
        },
        keepalive: KEEPALIVE,
        request_timeout: TIMEOUT,
    }
}

/// A session registered at `t0`.
struct T {
    s: Session,
    t0: Instant,
}

impl T {
    fn new() -> T {
        let t0 = Instant::now();
        T {
            s: Session::new(settings(), t0),
            t0,
        }
    }

    /// `t0` plus this many milliseconds.
    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    fn sent(&mut self) -> Vec<Transmit> {
        std::iter::from_fn(|| self.s.poll_transmit()).collect()
    }

    fn events(&mut self) -> Vec<SignalingEvent> {
        std::iter::from_fn(|| self.s.poll_event()).collect()
    }

    /// The one text frame sent, as JSON.
    fn one_frame(&mut self) -> Value {
        match self.sent().as_slice() {
            [Transmit::Text(text)] => serde_json::from_str(text).unwrap(),
            other => panic!("expected one text frame, got {other:?}"),
        }
    }

    fn server(&mut self, ms: u64, frame: Value) {
        let now = self.at(ms);
        self.s.handle_frame(now, &frame.to_string()).unwrap();
    }
}

fn enter(room: i64) -> Outgoing {
    Outgoing::Enter {
        room_id: RoomId(room),
        room_type: CallType::Video,
    }
}

#[test]
fn requests_are_numbered_and_their_replies_become_the_right_events() {
    let mut t = T::new();
    t.s.handle_outgoing(t.at(0), enter(5));
    let enter = t.one_frame();
    assert_eq!(
        (&enter["module"], &enter["method"], &enter["reqId"]),
        (&json!("meeting"), &json!("enter"), &json!("1"))
    );
    assert_eq!(enter["username"], "Room 101");
    t.s.handle_outgoing(
        t.at(1),
        Outgoing::CreateRoom {
            name: "call".into(),
            call_type: CallType::Audio,
        },
    );
    let create = t.one_frame();
    assert_eq!(create["reqId"], "2");
    assert_eq!(create["roomtype"], 1);

    // Replies may come in any order; each is matched by its reqId.
    t.server(
        2,
        json!({"module":"room","method":"newAppRoom","reqId":"2","result":0,"roomId":77}),
    );
    t.server(
        3,
        json!({"module":"meeting","method":"enter","reqId":"1","result":0,
            "client":{"id":100},"members":[{"id":7,"isMuted":true}],"room":{"id":5}}),
    );
    let events = t.events();
    assert_eq!(
        events[0],
        SignalingEvent::RoomCreated {
            room_id: RoomId(77)
        }
    );
    match &events[1] {
        SignalingEvent::Entered { room, me, members } => {
            assert_eq!(room.id, RoomId(5));
            assert_eq!(me.client_id, ClientId(100));
            assert!(members[0].muted);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(events.len(), 2);
    // Nothing is waited for any more: only the ping is due.
    assert_eq!(t.s.poll_timeout(), Some(t.t0 + KEEPALIVE));
}

#[test]
fn an_invite_reply_names_the_invited_user_and_a_refusal_carries_the_servers_message() {
    let mut t = T::new();
    t.s.handle_outgoing(
        t.at(0),
        Outgoing::Invite {
            to: UserId(42),
            room_id: RoomId(3),
            call_type: CallType::Video,
        },
    );
    assert_eq!(t.one_frame()["reqId"], "1");
    t.s.handle_outgoing(t.at(0), enter(3));
    t.sent();
    t.server(
        5,
        json!({"module":"call","method":"doInvite","reqId":"1","result":1}),
    );
    t.server(
        6,
        json!({"module":"meeting","method":"enter","reqId":"2","result":1,"message":"room is full"}),
    );
    assert_eq!(
        t.events(),
        vec![
            SignalingEvent::InviteResult {
                to: Some(UserId(42)),
                delivered: false
            },
            SignalingEvent::RequestFailed {
                request: RequestKind::Enter,
                code: 1,
                message: "room is full".into()
            }
        ]
    );
}

#[test]
fn a_reply_that_never_comes_fails_the_request_at_its_deadline() {
    let mut t = T::new();
    t.s.handle_outgoing(t.at(1000), enter(5));
    t.sent();
    assert_eq!(t.s.poll_timeout(), Some(t.at(11_000)));
    t.s.handle_timeout(t.at(10_999)).unwrap();
    assert_eq!(t.events(), vec![]);
    t.s.handle_timeout(t.at(11_000)).unwrap();
    assert_eq!(
        t.events(),
        vec![SignalingEvent::RequestFailed {
            request: RequestKind::Enter,
            code: 0,
            message: "no reply to meeting/enter within 10s".into()
        }]
    );
    assert_eq!(t.sent(), vec![], "a failed request is not sent again");
    // The reply turning up later is dropped.
    t.server(
        12_000,
        json!({"module":"meeting","method":"enter","reqId":"1","result":0,
            "client":{"id":100},"members":[],"room":{"id":5}}),
    );
    assert_eq!(t.events(), vec![]);
    assert_eq!(t.s.poll_timeout(), Some(t.t0 + KEEPALIVE));
}

#[test]
fn a_reply_after_its_deadline_is_late_even_if_the_timer_has_not_fired() {
    let mut t = T::new();
    t.s.handle_outgoing(t.at(0), enter(5));
    t.sent();
    t.server(
        10_000,
        json!({"module":"meeting","method":"enter","reqId":"1","result":0,
            "client":{"id":100},"members":[],"room":{"id":5}}),
    );
    assert!(matches!(
        t.events().as_slice(),
        [SignalingEvent::RequestFailed {
            request: RequestKind::Enter,
            ..
        }]
    ));
}

#[test]
fn replies_match_only_the_req_ids_we_sent() {
    let mut t = T::new();
    t.s.handle_outgoing(t.at(0), enter(5));
    t.s.handle_outgoing(t.at(0), enter(6));
    t.sent();
    // The registration's id, and one we never used: both dropped without a warning.
    t.server(
        1,
        json!({"module":"call","method":"doRegister","reqId":"register","result":0}),
    );
    t.server(
        1,
        json!({"module":"meeting","method":"enter","reqId":"01","result":1}),
    );
    assert_eq!(t.events(), vec![]);
    assert!(t.s.warned.is_empty());
    // The same digits as a JSON number are ours.
    t.server(
        2,
        json!({"module":"meeting","method":"enter","reqId":2,"result":1}),
    );
    assert_eq!(
        t.events(),
        vec![SignalingEvent::RequestFailed {
            request: RequestKind::Enter,
            code: 1,
            message: "meeting/enter refused".into()
        }]
    );
}

#[test]
fn pings_are_due_every_keepalive_and_three_unanswered_are_fatal() {
    let mut t = T::new();
    assert_eq!(t.s.poll_timeout(), Some(t.at(20_000)));
    t.s.handle_timeout(t.at(19_999)).unwrap();
    assert_eq!(t.sent(), vec![], "not due yet");
    for n in 1..=3u64 {
        // The timer may fire a little late; the next ping is a keepalive after this one.
        let now = t.s.poll_timeout().unwrap() + Duration::from_millis(5);
        t.s.handle_timeout(now).unwrap();
        assert_eq!(t.sent(), vec![Transmit::Ping], "ping {n}");
        assert_eq!(t.s.poll_timeout(), Some(now + KEEPALIVE));
    }
    let fourth = t.s.poll_timeout().unwrap();
    let fatal = t.s.handle_timeout(fourth).unwrap_err();
    assert_eq!(fatal, Fatal::Unanswered(3));
    assert_eq!(fatal.to_string(), "no answer to 3 keep-alive pings");
    assert_eq!(t.sent(), vec![]);
}

#[test]
fn a_pong_or_any_frame_from_the_server_resets_the_unanswered_pings() {
    /// Fires the due ping; returns when.
    fn ping(t: &mut T) -> Result<Instant, Fatal> {
        let now = t.s.poll_timeout().unwrap();
        t.s.handle_timeout(now).map(|()| now)
    }
    let mut t = T::new();
    ping(&mut t).unwrap();
    ping(&mut t).unwrap();
    let now = ping(&mut t).unwrap();
    t.s.handle_pong(now + Duration::from_millis(30));
    for _ in 0..3 {
        ping(&mut t).unwrap();
    }
    // A push counts as much as a pong.
    let now = t.s.poll_timeout().unwrap() - Duration::from_millis(1);
    t.s.handle_frame(
        now,
        r#"{"module":"meeting","method":"onChat","userId":7,"roomId":5,"content":"hi"}"#,
    )
    .unwrap();
    for _ in 0..3 {
        ping(&mut t).unwrap();
    }
    assert_eq!(t.sent().len(), 9);
    assert_eq!(ping(&mut t), Err(Fatal::Unanswered(3)));
}

/// Collects what the session logs.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl io::Write for Log {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Log {
    fn lines(&self, level: &str) -> Vec<String> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .filter(|l| l.contains(level) && l.contains("skipping a bad signaling frame"))
            .map(str::to_string)
            .collect()
    }
}

#[test]
fn bad_frames_are_skipped_and_logged_once_per_kind() {
    let log = Log::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .finish();
    let mut t = T::new();
    tracing::subscriber::with_default(subscriber, || {
        for (ms, text) in [
            (1, "not json"),
            (2, "{also not json"),
            (3, "[1]"),
            (4, r#"{"module":"x","method":"y"}"#),
            (5, r#"{"module":"call","method":"doAgree","roomId":1}"#),
            (6, r#"{"module":"x","method":"z"}"#),
            (7, r#"{"module":"call","method":"reject"}"#),
        ] {
            assert_eq!(t.s.handle_frame(t.at(ms), text), Ok(()));
        }
    });
    assert_eq!(t.events(), vec![]);
    assert_eq!(t.sent(), vec![]);
    let warned = log.lines("WARN");
    assert_eq!(
        warned.len(),
        4,
        "json, not-object, unknown, field: {warned:#?}"
    );
    assert!(
        warned[3].contains("field `ownUserId`: missing"),
        "{}",
        warned[3]
    );
    assert_eq!(log.lines("DEBUG").len(), 3);
    // The session still works.
    t.server(8, json!({"module":"call","method":"cancel","ownUserId":7}));
    assert_eq!(
        t.events(),
        vec![SignalingEvent::RemoteCancelled { from: UserId(7) }]
    );
}

#[test]
fn messages_with_no_rtcpeer_equivalent_send_nothing() {
    let mut t = T::new();
    t.s.handle_outgoing(
        t.at(0),
        Outgoing::CommandReply {
            to: UserId(7),
            tag: "t1".into(),
            result: Ok(()),
        },
    );
    assert_eq!(t.sent(), vec![]);
    assert_eq!(t.events(), vec![]);
    assert_eq!(t.s.poll_timeout(), Some(t.t0 + KEEPALIVE), "nothing waits");
    t.s.handle_outgoing(
        t.at(0),
        Outgoing::Ringing {
            to: Peer::user(UserId(7)),
        },
    );
    assert_eq!(t.one_frame()["reqId"], "1", "no id was used up");
}

#[test]
fn after_close_messages_go_without_req_id_and_nothing_is_due() {
    let mut t = T::new();
    t.s.handle_outgoing(t.at(0), enter(5));
    t.sent();
    t.s.close();
    assert_eq!(t.s.poll_timeout(), None);
    t.s.handle_outgoing(t.at(1), Outgoing::Exit { room_id: RoomId(5) });
    assert_eq!(
        t.one_frame(),
        json!({"module":"meeting","method":"exit","roomId":5})
    );
    t.s.handle_timeout(t.at(60_000)).unwrap();
    assert_eq!(t.sent(), vec![]);
    assert_eq!(t.events(), vec![], "the forgotten request does not fail");
}
