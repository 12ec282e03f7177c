//! The RTM session on virtual time: frames in, frames and events out.

use std::time::{Duration, Instant};

use rmpv::Value;

use super::*;
use crate::core::{ClientId, Command, Member, ModeratorOrder, Peer};

const UID: UserId = UserId(9001);
const UID_C: ClientId = ClientId(9001);

fn settings() -> Settings {
    Settings {
        pid: 11000001,
        uid: UID,
        version: "test".into(),
        keepalive: Duration::from_secs(20),
        request_timeout: Duration::from_secs(5),
        pull: PullPolicy::Obey,
        command_mtype: Some(77),
        rtc_gate: Some("127.0.0.1:13702".into()),
        video_subscriptions: 0,
    }
}

struct T {
    s: Session,
    now: Instant,
}

impl T {
    /// A session logged in at t0, with the login's frames and events taken.
    fn authed() -> T {
        T::authed_with(settings())
    }

    fn authed_with(settings: Settings) -> T {
        let mut t = T {
            s: Session::new(settings),
            now: Instant::now(),
        };
        t.s.connected(t.now, "tok", None);
        let auth = t.sent();
        assert_eq!(auth.len(), 1);
        let seq = quest_seq(&auth[0], "auth");
        t.gate(Frame::answer(seq, map([("ok", Value::from(true))])))
            .unwrap();
        assert_eq!(
            t.events(),
            vec![SignalingEvent::Registered { user_id: UID }]
        );
        t
    }

    fn gate(&mut self, f: Frame) -> Result<(), Fatal> {
        self.s.handle_frame(self.now, f)
    }

    fn push(&mut self, seq: u32, method: &str, body: Value) -> Result<(), Fatal> {
        self.gate(Frame::Quest {
            seq: Some(seq),
            method: method.into(),
            body,
        })
    }

    fn core(&mut self, out: Outgoing) {
        self.s.handle_outgoing(self.now, out);
    }

    fn sent(&mut self) -> Vec<Frame> {
        std::iter::from_fn(|| self.s.poll_transmit()).collect()
    }

    fn events(&mut self) -> Vec<SignalingEvent> {
        std::iter::from_fn(|| self.s.poll_event()).collect()
    }

    /// The one quest sent, checked by method; returns its seq and body.
    fn one_quest(&mut self, method: &str) -> (u32, Value) {
        let sent = self.sent();
        assert_eq!(sent.len(), 1, "expected one {method} quest, got {sent:?}");
        match &sent[0] {
            Frame::Quest {
                seq: Some(seq),
                method: m,
                body,
            } if m == method => (*seq, body.clone()),
            other => panic!("expected {method}, got {other:?}"),
        }
    }

    fn advance(&mut self, by: Duration) -> Result<(), Fatal> {
        let target = self.now + by;
        while let Some(at) = self.s.poll_timeout() {
            if at > target {
                break;
            }
            self.now = at;
            self.s.handle_timeout(at)?;
        }
        self.now = target;
        Ok(())
    }
}

fn quest_seq(f: &Frame, method: &str) -> u32 {
    match f {
        Frame::Quest {
            seq: Some(seq),
            method: m,
            ..
        } if m == method => *seq,
        other => panic!("expected {method}, got {other:?}"),
    }
}

fn get<'a>(v: &'a Value, k: &str) -> &'a Value {
    field(v, k).unwrap_or_else(|| panic!("no {k} in {v}"))
}

fn rid(v: i64) -> Value {
    map([("rid", Value::from(v))])
}

#[test]
fn login_sends_key_first_then_auth_with_pid_uid_token_and_version() {
    let mut s = Session::new(settings());
    let key = map([("publicKey", Value::Binary(vec![1; 64]))]);
    s.connected(Instant::now(), "secret-token", Some(key));
    let frames: Vec<_> = std::iter::from_fn(|| s.poll_transmit()).collect();
    assert_eq!(quest_seq(&frames[0], "*key"), 1);
    assert_eq!(quest_seq(&frames[1], "auth"), 2);
    let Frame::Quest { body, .. } = &frames[1] else {
        unreachable!()
    };
    assert_eq!(get(body, "pid"), &Value::from(11000001));
    assert_eq!(get(body, "uid"), &Value::from(UID.0));
    assert_eq!(get(body, "token"), &Value::from("secret-token"));
    assert_eq!(get(body, "version"), &Value::from("test"));
    assert!(!s.authenticated());
}

#[test]
fn a_refused_token_ends_the_connection_with_a_clear_reason() {
    let mut s = Session::new(settings());
    let now = Instant::now();
    s.connected(now, "old", None);
    let seq = quest_seq(&s.poll_transmit().unwrap(), "auth");
    let r = s.handle_frame(now, Frame::answer(seq, map([("ok", Value::from(false))])));
    assert_eq!(r, Err(Fatal::TokenRefused));
    assert!(Fatal::TokenRefused.to_string().contains("token refused"));
    match s.poll_event() {
        Some(SignalingEvent::LoginRefused { reason }) => {
            assert!(reason.contains("token refused"), "{reason}")
        }
        other => panic!("not registered, but {other:?}"),
    }
    assert!(s.poll_event().is_none());
}

#[test]
fn an_auth_error_answer_carries_the_gates_code() {
    let mut s = Session::new(settings());
    let now = Instant::now();
    s.connected(now, "t", None);
    let seq = quest_seq(&s.poll_transmit().unwrap(), "auth");
    let r = s.handle_frame(now, Frame::error_answer(seq, 200001, "bad pid"));
    assert!(matches!(r, Err(Fatal::AuthFailed { code: 200001, .. })));
}

#[test]
fn requests_before_login_are_dropped() {
    let mut s = Session::new(settings());
    s.connected(Instant::now(), "t", None);
    let _ = s.poll_transmit();
    s.handle_outgoing(Instant::now(), Outgoing::Exit { room_id: RoomId(1) });
    assert!(s.poll_transmit().is_none());
}

#[test]
fn keepalive_pings_after_silence_and_an_unanswered_ping_kills_the_link() {
    let mut t = T::authed();
    t.advance(Duration::from_secs(19)).unwrap();
    assert!(t.sent().is_empty());
    t.advance(Duration::from_secs(1)).unwrap();
    let (seq, _) = t.one_quest("*ping");
    t.gate(Frame::answer(seq, map([("ts", Value::from(1))])))
        .unwrap();
    t.advance(Duration::from_secs(20)).unwrap();
    let _unanswered = t.one_quest("*ping");
    let r = t.advance(Duration::from_secs(5));
    assert!(
        matches!(r, Err(Fatal::Dead(ref why)) if why.contains("*ping")),
        "{r:?}"
    );
}

#[test]
fn gate_pings_are_answered_and_count_as_life() {
    let mut t = T::authed();
    t.push(4242, "ping", fpnn::empty_map()).unwrap();
    assert_eq!(t.sent(), vec![Frame::answer(4242, fpnn::empty_map())]);
}

#[test]
fn invite_then_agree_enters_then_lists_members() {
    let mut t = T::authed();
    t.push(
        7,
        "pushInviteIntoRTCRoom",
        map([("rid", 55.into()), ("fromUid", 42.into())]),
    )
    .unwrap();
    assert_eq!(t.sent(), vec![Frame::answer(7, fpnn::empty_map())]);
    assert_eq!(
        t.events(),
        vec![SignalingEvent::Invite {
            from: Peer::user(UserId(42)),
            call_type: CallType::Video,
            room_id: Some(RoomId(55))
        }]
    );
    t.core(Outgoing::Agree {
        to: Peer::user(UserId(42)),
        room_id: Some(RoomId(55)),
        call_type: CallType::Video,
    });
    let (seq, body) = t.one_quest("enterRTCRoom");
    assert_eq!(get(&body, "rid"), &Value::from(55));
    t.gate(Frame::answer(
        seq,
        map([("token", "rt".into()), ("type", 1.into())]),
    ))
    .unwrap();
    assert_eq!(
        t.events(),
        vec![SignalingEvent::RemoteConnected {
            from: UserId(42),
            room_id: Some(RoomId(55)),
            room_type: Some(CallType::Audio)
        }]
    );
    t.core(Outgoing::Enter {
        room_id: RoomId(55),
        room_type: CallType::Audio,
    });
    let (seq, _) = t.one_quest("getRTCRoomMembers");
    let uids = Value::Array(vec![UID.0.into(), 42.into(), 43.into()]);
    t.gate(Frame::answer(
        seq,
        map([
            ("uids", uids),
            ("administrators", Value::Array(vec![42.into()])),
            ("owner", 42.into()),
        ]),
    ))
    .unwrap();
    let ev = t.events();
    let SignalingEvent::Entered { room, me, members } = &ev[0] else {
        panic!("{ev:?}")
    };
    assert_eq!((room.id, room.owner_id), (RoomId(55), Some(UserId(42))));
    assert_eq!(me.client_id, UID_C);
    let ids: Vec<_> = members.iter().map(|m| (m.client_id, m.host)).collect();
    assert_eq!(ids, vec![(ClientId(42), true), (ClientId(43), false)]);
}

#[test]
fn a_refused_entry_is_a_failed_enter_request() {
    let mut t = T::authed();
    t.core(Outgoing::Enter {
        room_id: RoomId(8),
        room_type: CallType::Video,
    });
    let (seq, _) = t.one_quest("enterRTCRoom");
    t.gate(Frame::error_answer(seq, 200020, "no such room"))
        .unwrap();
    let ev = t.events();
    assert!(
        matches!(&ev[..], [SignalingEvent::RequestFailed { request: RequestKind::Enter, code: 200020, message }] if message.contains("no such room")),
        "{ev:?}"
    );
}

#[test]
fn an_unanswered_entry_times_out_as_a_failed_request() {
    let mut t = T::authed();
    t.core(Outgoing::Enter {
        room_id: RoomId(8),
        room_type: CallType::Video,
    });
    t.sent();
    t.advance(Duration::from_secs(5)).unwrap();
    let ev = t.events();
    assert!(matches!(
        &ev[..],
        [SignalingEvent::RequestFailed {
            request: RequestKind::Enter,
            code: CODE_TIMEOUT,
            ..
        }]
    ));
}

#[test]
fn a_pull_joins_with_its_token_without_asking_the_gate_to_enter() {
    let mut t = T::authed();
    t.push(
        3,
        "pushPullIntoRTCRoom",
        map([("rid", 66.into()), ("token", "pt".into())]),
    )
    .unwrap();
    t.sent();
    assert_eq!(
        t.events(),
        vec![SignalingEvent::PulledIntoRoom {
            room_id: RoomId(66),
            call_type: CallType::Video
        }]
    );
    t.core(Outgoing::Enter {
        room_id: RoomId(66),
        room_type: CallType::Video,
    });
    t.one_quest("getRTCRoomMembers");
}

#[test]
fn a_pull_can_be_treated_as_an_invite() {
    let mut t = T::authed_with(Settings {
        pull: PullPolicy::Invite,
        ..settings()
    });
    t.push(
        3,
        "pushPullIntoRTCRoom",
        map([("rid", 66.into()), ("token", "pt".into())]),
    )
    .unwrap();
    t.sent();
    assert!(matches!(
        &t.events()[..],
        [SignalingEvent::Invite {
            room_id: Some(RoomId(66)),
            ..
        }]
    ));
    t.core(Outgoing::Agree {
        to: Peer::user(UserId(0)),
        room_id: Some(RoomId(66)),
        call_type: CallType::Video,
    });
    assert!(t.sent().is_empty(), "the pull's token admits us");
    assert!(matches!(
        &t.events()[..],
        [SignalingEvent::RemoteConnected {
            room_id: Some(RoomId(66)),
            ..
        }]
    ));
}

#[test]
fn room_pushes_become_core_events() {
    let mut t = T::authed();
    t.push(
        1,
        "pushKickOutRTCRoom",
        map([("rid", 5.into()), ("fromUid", 1.into())]),
    )
    .unwrap();
    t.push(2, "pushRTCRoomClosed", rid(5)).unwrap();
    t.push(
        3,
        "pushEnterRTCRoom",
        map([
            ("rid", 5.into()),
            ("uid", 8.into()),
            ("mtime", 1.into()),
            ("nickName", "Bo".into()),
        ]),
    )
    .unwrap();
    t.push(
        4,
        "pushExitRTCRoom",
        map([("rid", 5.into()), ("uid", 8.into()), ("mtime", 2.into())]),
    )
    .unwrap();
    t.push(
        5,
        "pushMicStatus",
        map([
            ("rid", 5.into()),
            ("uid", 8.into()),
            ("micStatus", 1.into()),
        ]),
    )
    .unwrap();
    let answers: Vec<_> = t.sent();
    assert_eq!(
        answers,
        (1..=5)
            .map(|s| Frame::answer(s, fpnn::empty_map()))
            .collect::<Vec<_>>(),
        "every push answered {{}}"
    );
    assert_eq!(
        t.events(),
        vec![
            SignalingEvent::Kicked {
                room_id: RoomId(5),
                client_id: UID_C
            },
            SignalingEvent::Finished {
                room_id: RoomId(5),
                by: None
            },
            SignalingEvent::MemberEntered {
                room_id: RoomId(5),
                member: Member {
                    client_id: ClientId(8),
                    name: Some("Bo".into()),
                    muted: false,
                    host: false
                }
            },
            SignalingEvent::MemberLeft {
                room_id: RoomId(5),
                client_id: ClientId(8)
            },
        ]
    );
}

#[test]
fn admin_commands_for_us_become_moderator_orders() {
    let mut t = T::authed();
    let cmd = |c: i64, uids: Vec<i64>| {
        map([
            ("command", c.into()),
            (
                "uids",
                Value::Array(uids.into_iter().map(Value::from).collect()),
            ),
        ])
    };
    for (seq, c) in (2..=7).enumerate() {
        t.push(seq as u32 + 1, "pushAdminCommand", cmd(c, vec![UID.0]))
            .unwrap();
    }
    t.push(20, "pushAdminCommand", cmd(2, vec![UID.0 + 1]))
        .unwrap();
    t.push(21, "pushAdminCommand", cmd(0, vec![UID.0])).unwrap();
    t.push(22, "pushAdminCommand", cmd(99, vec![UID.0]))
        .unwrap();
    assert_eq!(t.sent().len(), 9, "all answered");
    let orders: Vec<_> = t
        .events()
        .into_iter()
        .map(|e| match e {
            SignalingEvent::Moderated { order } => order,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        orders,
        vec![
            ModeratorOrder::ForbidAudio,
            ModeratorOrder::AllowAudio,
            ModeratorOrder::ForbidVideo,
            ModeratorOrder::AllowVideo,
            ModeratorOrder::CloseMic,
            ModeratorOrder::CloseCamera
        ]
    );
}

#[test]
fn kickout_ends_the_connection_and_reports_the_room_as_taken_over() {
    let mut t = T::authed();
    t.core(Outgoing::Enter {
        room_id: RoomId(5),
        room_type: CallType::Video,
    });
    t.sent();
    let r = t.gate(Frame::Quest {
        seq: None,
        method: "kickout".into(),
        body: fpnn::empty_map(),
    });
    assert_eq!(r, Err(Fatal::Kicked));
    assert_eq!(
        t.events(),
        vec![SignalingEvent::ReplacedByOtherLogin { room_id: RoomId(5) }]
    );
}

#[test]
fn unknown_pushes_are_answered_and_malformed_ones_refused_by_name() {
    let mut t = T::authed();
    t.push(1, "pushSomethingNew", rid(1)).unwrap();
    // FPNN's readers: 10009 for a key that is not there, 10010 for one of the wrong type.
    t.push(2, "pushExitRTCRoom", rid(1)).unwrap();
    let wrong_type = map([("rid", Value::from(1)), ("uid", Value::from("seven"))]);
    t.push(3, "pushExitRTCRoom", wrong_type).unwrap();
    let sent = t.sent();
    assert_eq!(sent[0], Frame::answer(1, fpnn::empty_map()));
    for (frame, want_seq, want_code, want_text) in [
        (&sent[1], 2, 10009, "missing field uid"),
        (&sent[2], 3, 10010, "field uid has the wrong type"),
    ] {
        match frame {
            Frame::Answer {
                seq,
                ok: false,
                body,
            } if *seq == want_seq => {
                assert_eq!(get(body, "code"), &Value::from(want_code));
                let ex = fpnn::as_str(get(body, "ex")).unwrap();
                assert!(ex.contains(want_text), "{ex}");
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(t.events().is_empty());
}

fn msg(from: i64, mid: i64, mtype: i64, text: &str) -> Value {
    map([
        ("from", from.into()),
        ("mid", mid.into()),
        ("mtype", mtype.into()),
        ("ftype", 0.into()),
        ("msg", text.into()),
        ("attrs", "".into()),
    ])
}

#[test]
fn messages_are_deduplicated_on_sender_and_mid() {
    let mut t = T::authed();
    t.push(1, "pushmsg", msg(42, 1, 30, "hi")).unwrap();
    t.push(2, "pushmsg", msg(42, 1, 30, "hi")).unwrap();
    t.push(3, "pushmsg", msg(43, 1, 30, "hi")).unwrap();
    let mut room = msg(42, 2, 30, "all");
    if let Value::Map(m) = &mut room {
        m.push(("rid".into(), 5.into()));
    }
    t.push(4, "pushroommsg", room).unwrap();
    assert_eq!(t.sent().len(), 4, "duplicates are answered too");
    let ev = t.events();
    assert_eq!(ev.len(), 3);
    assert_eq!(
        ev[2],
        SignalingEvent::Message {
            from: UserId(42),
            room_id: Some(RoomId(5)),
            kind: 30,
            text: "all".into()
        }
    );
}

#[test]
fn command_messages_run_commands_and_bad_ones_are_answered_by_message() {
    let mut t = T::authed();
    t.push(1, "pushmsg", msg(42, 10, 77, r#"{"verb":"dial","user":5}"#))
        .unwrap();
    assert_eq!(
        t.events(),
        vec![SignalingEvent::RemoteCommand {
            from: UserId(42),
            tag: "10".into(),
            command: Command::Dial { user: UserId(5) }
        }]
    );
    t.sent();
    t.push(
        2,
        "pushmsg",
        msg(42, 11, 77, r#"{"verb":"volume","level":500}"#),
    )
    .unwrap();
    let sent = t.sent();
    assert!(sent.contains(&Frame::answer(2, fpnn::empty_map())));
    let Some(Frame::Quest { body, .. }) = sent
        .iter()
        .find(|f| matches!(f, Frame::Quest { method, .. } if method == "sendmsg"))
    else {
        panic!("no sendmsg in {sent:?}")
    };
    assert_eq!(get(body, "to"), &Value::from(42));
    assert_eq!(get(body, "mtype"), &Value::from(77));
    let reply: serde_json::Value =
        serde_json::from_str(fpnn::as_str(get(body, "msg")).unwrap()).unwrap();
    assert_eq!(reply["re"], "11");
    assert_eq!(reply["ok"], false);
    assert!(reply["error"].as_str().unwrap().contains("0-100"));
    t.core(Outgoing::CommandReply {
        to: UserId(42),
        tag: "10".into(),
        result: Ok(()),
    });
    let (_, body) = t.one_quest("sendmsg");
    let reply: serde_json::Value =
        serde_json::from_str(fpnn::as_str(get(&body, "msg")).unwrap()).unwrap();
    assert_eq!(reply, serde_json::json!({"re": "10", "ok": true}));
}

#[test]
fn dialing_creates_a_room_invites_and_counts_the_invitees_entry_as_agreement() {
    let mut t = T::authed();
    t.core(Outgoing::CreateRoom {
        name: "Room 101".into(),
        call_type: CallType::Video,
    });
    let (seq, body) = t.one_quest("createRTCRoom");
    let rid = fpnn::as_i64(get(&body, "rid")).unwrap();
    assert!(rid > 0);
    assert_eq!(get(&body, "type"), &Value::from(2));
    t.gate(Frame::answer(seq, map([("token", "ct".into())])))
        .unwrap();
    assert_eq!(
        t.events(),
        vec![SignalingEvent::RoomCreated {
            room_id: RoomId(rid)
        }]
    );
    t.core(Outgoing::Invite {
        to: UserId(42),
        room_id: RoomId(rid),
        call_type: CallType::Video,
    });
    let (seq, body) = t.one_quest("inviteUserIntoRTCRoom");
    assert_eq!(get(&body, "uids"), &Value::Array(vec![42.into()]));
    t.gate(Frame::answer(seq, fpnn::empty_map())).unwrap();
    assert_eq!(
        t.events(),
        vec![
            SignalingEvent::InviteResult {
                to: Some(UserId(42)),
                delivered: true
            },
            SignalingEvent::RemoteRinging { from: UserId(42) }
        ]
    );
    t.push(
        9,
        "pushEnterRTCRoom",
        map([("rid", rid.into()), ("uid", 42.into())]),
    )
    .unwrap();
    assert_eq!(t.sent(), vec![Frame::answer(9, fpnn::empty_map())]);
    let ev = t.events();
    assert_eq!(
        ev[0],
        SignalingEvent::RemoteAgreed {
            from: UserId(42),
            room_id: Some(RoomId(rid))
        }
    );
    t.core(Outgoing::Enter {
        room_id: RoomId(rid),
        room_type: CallType::Video,
    });
    t.one_quest("getRTCRoomMembers");
}

#[test]
fn cancelling_a_dial_leaves_the_room_we_made() {
    let mut t = T::authed();
    t.core(Outgoing::Invite {
        to: UserId(42),
        room_id: RoomId(77),
        call_type: CallType::Video,
    });
    let (seq, _) = t.one_quest("inviteUserIntoRTCRoom");
    t.gate(Frame::answer(seq, fpnn::empty_map())).unwrap();
    t.core(Outgoing::Cancel {
        to: Peer::user(UserId(42)),
    });
    let (_, body) = t.one_quest("exitRTCRoom");
    assert_eq!(get(&body, "rid"), &Value::from(77));
}

#[test]
fn what_rtm_has_no_word_for_sends_nothing() {
    let mut t = T::authed();
    t.core(Outgoing::Ringing {
        to: Peer::user(UserId(1)),
    });
    t.core(Outgoing::Busy {
        to: Peer::user(UserId(1)),
    });
    t.core(Outgoing::AnnounceMute {
        room_id: RoomId(1),
        muted: true,
    });
    assert!(t.sent().is_empty());
}

#[test]
fn silence_from_the_gate_means_it_is_dead() {
    let mut t = T::authed();
    // Answer every ping so only the absence of anything else remains... then stop answering
    // and stop receiving: the gate is declared dead within two keep-alive rounds plus a
    // deadline.
    let r = t.advance(Duration::from_secs(60));
    assert!(matches!(r, Err(Fatal::Dead(_))), "{r:?}");
}

#[test]
fn the_message_command_parser_takes_the_mqtt_verbs() {
    assert_eq!(
        request::parse_command(r#"{"verb":"mute"}"#),
        Ok(Command::Mute)
    );
    assert_eq!(
        request::parse_command(r#"{"verb":"join","room":12}"#),
        Ok(Command::Join { room: RoomId(12) })
    );
    assert!(
        request::parse_command("not json")
            .unwrap_err()
            .contains("JSON")
    );
    assert!(
        request::parse_command(r#"{"user":1}"#)
            .unwrap_err()
            .contains("verb")
    );
    assert!(
        request::parse_command(r#"{"verb":"reload"}"#)
            .unwrap_err()
            .contains("not available by message")
    );
}

#[test]
fn debug_shows_neither_the_login_token_nor_room_tokens() {
    let mut s = Session::new(settings());
    s.connected(Instant::now(), "login-token-x9Qv", None);
    s.tokens.insert(RoomId(66), "room-token-x9Qv".into());
    let shown = format!("{s:?} {s:#?}");
    assert!(!shown.contains("x9Qv"), "{shown}");
    assert!(shown.contains("room_tokens: 1"), "{shown}");
    assert!(shown.contains("authenticated: false"), "{shown}");
}

/// A session in room 55 (entered after 42's invite) with members 42, 43 and 44 listed.
fn in_room(settings: Settings) -> T {
    let mut t = T::authed_with(settings);
    t.sent();
    t.core(Outgoing::Agree {
        to: Peer::user(UserId(42)),
        room_id: Some(RoomId(55)),
        call_type: CallType::Video,
    });
    let (seq, _) = t.one_quest("enterRTCRoom");
    t.gate(Frame::answer(
        seq,
        map([("token", "rt".into()), ("type", 2.into())]),
    ))
    .unwrap();
    t.core(Outgoing::Enter {
        room_id: RoomId(55),
        room_type: CallType::Video,
    });
    let (seq, _) = t.one_quest("getRTCRoomMembers");
    let uids = Value::Array(vec![UID.0.into(), 42.into(), 43.into(), 44.into()]);
    t.gate(Frame::answer(
        seq,
        map([("uids", uids), ("owner", 42.into())]),
    ))
    .unwrap();
    t.events();
    t
}

fn uids(v: &[i64]) -> Value {
    Value::Array(v.iter().map(|u| Value::from(*u)).collect())
}

#[test]
fn members_video_is_subscribed_up_to_the_configured_number_and_handed_on() {
    let mut t = in_room(Settings {
        video_subscriptions: 2,
        ..settings()
    });
    let (_, body) = t.one_quest("subscribeVideo");
    assert_eq!(body, map([("rid", 55.into()), ("uids", uids(&[42, 43]))]));
    // A newcomer waits for a free place; 42 leaving makes one.
    let enter = map([("rid", 55.into()), ("uid", 45.into()), ("mtime", 1.into())]);
    t.push(3, "pushEnterRTCRoom", enter).unwrap();
    assert_eq!(t.sent(), vec![Frame::answer(3, fpnn::empty_map())]);
    let exit = map([("rid", 55.into()), ("uid", 42.into()), ("mtime", 2.into())]);
    t.push(4, "pushExitRTCRoom", exit).unwrap();
    let sent = t.sent();
    assert!(
        sent.contains(&Frame::answer(4, fpnn::empty_map())),
        "{sent:?}"
    );
    let Some(Frame::Quest { method, body, .. }) =
        sent.iter().find(|f| matches!(f, Frame::Quest { .. }))
    else {
        panic!("{sent:?}")
    };
    assert_eq!(method, "subscribeVideo");
    assert_eq!(body, &map([("rid", 55.into()), ("uids", uids(&[44]))]));
}

#[test]
fn the_rtc_target_follows_the_room_and_its_token() {
    let mut t = in_room(settings());
    let target = t.s.rtc_target().expect("in a room with a token");
    assert_eq!(target.rid, RoomId(55));
    assert_eq!(target.token, "rt");
    assert_eq!(target.endpoint, "127.0.0.1:13702");
    assert!(
        !format!("{target:?}").contains("rt\""),
        "Debug hides the token"
    );
    t.core(Outgoing::Exit {
        room_id: RoomId(55),
    });
    assert_eq!(t.s.rtc_target(), None, "left: no media connection");
}

#[test]
fn without_a_configured_rtc_gate_the_rtm_gate_is_asked_for_one() {
    let mut t = T {
        s: Session::new(Settings {
            rtc_gate: None,
            ..settings()
        }),
        now: Instant::now(),
    };
    t.s.connected(t.now, "tok", None);
    let seq = quest_seq(&t.sent()[0], "auth");
    t.gate(Frame::answer(seq, map([("ok", Value::from(true))])))
        .unwrap();
    let (seq, _) = t.one_quest("getRTCGateEndpoint");
    t.gate(Frame::answer(
        seq,
        map([("endpoint", "rtc.example:13702".into())]),
    ))
    .unwrap();
    t.core(Outgoing::Enter {
        room_id: RoomId(7),
        room_type: CallType::Video,
    });
    let (seq, _) = t.one_quest("enterRTCRoom");
    t.gate(Frame::answer(
        seq,
        map([("token", "t7".into()), ("type", 2.into())]),
    ))
    .unwrap();
    let target = t.s.rtc_target().unwrap();
    assert_eq!(
        (target.rid, target.endpoint.as_str()),
        (RoomId(7), "rtc.example:13702")
    );
}

#[test]
fn a_closed_room_or_a_kick_ends_the_media_connection_too() {
    for (method, body) in [
        ("pushRTCRoomClosed", map([("rid", 55.into())])),
        (
            "pushKickOutRTCRoom",
            map([("rid", 55.into()), ("fromUid", 42.into())]),
        ),
    ] {
        let mut t = in_room(settings());
        assert!(t.s.rtc_target().is_some());
        t.push(9, method, body).unwrap();
        assert_eq!(t.s.rtc_target(), None, "{method}");
        assert_eq!(t.s.room(), None, "{method}");
    }
}

#[test]
fn a_kickout_or_a_refused_login_takes_the_room_and_its_media_connection_along() {
    // kickout: the same uid logged in elsewhere.
    let mut t = in_room(settings());
    let r = t.gate(Frame::Quest {
        seq: None,
        method: "kickout".into(),
        body: fpnn::empty_map(),
    });
    assert_eq!(r, Err(Fatal::Kicked));
    assert_eq!((t.s.room(), t.s.rtc_target()), (None, None));

    // The next login refused: by token, or by the RTM service's own code.
    for answer in [
        |seq| Frame::answer(seq, map([("ok", Value::from(false))])),
        |seq| Frame::error_answer(seq, 200020, "project disabled"),
    ] {
        let mut t = in_room(settings());
        t.s.connected(t.now, "revoked", None);
        assert_eq!(t.s.room(), Some(RoomId(55)), "a reconnect keeps the room");
        let seq = quest_seq(&t.sent()[0], "auth");
        assert!(t.gate(answer(seq)).is_err());
        assert_eq!((t.s.room(), t.s.rtc_target()), (None, None));
        assert!(matches!(
            t.events().as_slice(),
            [SignalingEvent::LoginRefused { .. }]
        ));
    }

    // A framework error (a server restarting) is not a refusal: the room stays.
    let mut t = in_room(settings());
    t.s.connected(t.now, "tok", None);
    let seq = quest_seq(&t.sent()[0], "auth");
    let r = t.gate(Frame::error_answer(seq, 20012, "server is busy"));
    assert!(matches!(r, Err(Fatal::AuthFailed { code: 20012, .. })));
    assert_eq!(t.s.room(), Some(RoomId(55)));
    assert!(t.events().is_empty());
}
