//! Incoming calls: ringing, auto-answer policy, busy, cancel, ring timeout.

use super::*;

fn caller() -> Peer {
    Peer {
        user_id: CALLER,
        device_type: Some("webphone".into()),
    }
}

#[test]
fn ringing_call_is_answered_after_delay() {
    let mut h = Harness::default_policy();
    h.invite(CALLER);
    assert_eq!(h.phase(), CallPhase::Ringing);
    assert_eq!(h.sent(), vec![Outgoing::Ringing { to: caller() }]);

    h.advance(ms(999));
    assert!(h.sent().is_empty(), "must not answer before delay_ms");
    assert_eq!(h.phase(), CallPhase::Ringing);

    h.advance(ms(1));
    let actions = h.take();
    assert!(actions.contains(&Action::Signal(Outgoing::Agree {
        to: caller(),
        room_id: Some(ROOM),
        call_type: CallType::Video,
    })));
    assert!(events(&actions).contains(&CallEvent::Answered {
        from: CALLER,
        auto: true
    }));
    assert_eq!(h.phase(), CallPhase::Answering);
}

#[test]
fn zero_delay_answers_in_the_same_step() {
    let mut h = Harness::new(AnswerPolicy {
        delay: Duration::ZERO,
        ..AnswerPolicy::default()
    });
    h.invite(CALLER);
    let sent = h.sent();
    assert!(matches!(
        sent[..],
        [Outgoing::Ringing { .. }, Outgoing::Agree { .. }]
    ));
}

#[test]
fn connected_after_agree_enters_the_room() {
    let mut h = Harness::default_policy();
    h.invite(CALLER);
    h.advance(ms(1000));
    h.take();
    h.signal(SignalingEvent::RemoteConnected {
        from: CALLER,
        room_id: Some(ROOM),
        room_type: Some(CallType::Video),
    });
    assert_eq!(
        h.sent(),
        vec![Outgoing::Enter {
            room_id: ROOM,
            room_type: CallType::Video
        }]
    );
    assert_eq!(h.phase(), CallPhase::Connecting);
    h.signal(SignalingEvent::Entered {
        room: room_info(),
        me: member(ME_C),
        members: vec![member(CALLER_C)],
    });
    assert_eq!(h.phase(), CallPhase::InCall);
    let actions = h.take();
    assert!(events(&actions).contains(&CallEvent::InCall { room_id: ROOM }));
}

#[test]
fn allow_list_answers_listed_callers() {
    let mut h = Harness::new(AnswerPolicy {
        mode: AnswerMode::AllowList,
        allow: vec![CALLER],
        ..AnswerPolicy::default()
    });
    h.invite(CALLER);
    h.advance(ms(1000));
    assert_eq!(h.phase(), CallPhase::Answering);
}

#[test]
fn allow_list_rings_for_others_until_answered_locally() {
    let mut h = Harness::new(AnswerPolicy {
        mode: AnswerMode::AllowList,
        allow: vec![UserId(1)],
        ..AnswerPolicy::default()
    });
    h.invite(CALLER);
    let actions = h.take();
    assert!(events(&actions).contains(&CallEvent::Ringing {
        from: CALLER,
        auto_answer: false
    }));
    h.advance(Duration::from_secs(10));
    assert_eq!(h.phase(), CallPhase::Ringing);
    h.command(Command::Answer).unwrap();
    assert_eq!(h.phase(), CallPhase::Answering);
    assert!(events(&h.take()).contains(&CallEvent::Answered {
        from: CALLER,
        auto: false
    }));
}

#[test]
fn unanswered_call_is_rejected_at_ring_timeout() {
    let mut h = Harness::new(AnswerPolicy {
        mode: AnswerMode::Never,
        ring_timeout: Duration::from_secs(30),
        ..AnswerPolicy::default()
    });
    h.invite(CALLER);
    h.take();
    h.advance(Duration::from_millis(29_999));
    assert_eq!(h.phase(), CallPhase::Ringing);
    h.advance(ms(1));
    let actions = h.take();
    assert!(actions.contains(&Action::Signal(Outgoing::Reject { to: caller() })));
    assert!(events(&actions).contains(&CallEvent::Rejected {
        from: CALLER,
        reason: RejectReason::RingTimeout
    }));
    assert_eq!(ended(&actions), Some(EndReason::RingTimeout));
    assert_eq!(h.phase(), CallPhase::Idle);
    assert_eq!(h.agent.next_timeout(), None);
}

#[test]
fn busy_when_already_ringing() {
    let mut h = Harness::new(AnswerPolicy {
        mode: AnswerMode::Never,
        ..AnswerPolicy::default()
    });
    h.invite(CALLER);
    h.take();
    h.invite(UserId(8));
    assert_eq!(
        h.sent(),
        vec![Outgoing::Busy {
            to: Peer {
                user_id: UserId(8),
                device_type: Some("webphone".into())
            }
        }]
    );
    assert_eq!(h.agent.state().peer, Some(CALLER));
}

#[test]
fn busy_when_already_in_call() {
    let mut h = Harness::in_call_with(&[CALLER_C]);
    h.invite(UserId(9));
    let actions = h.take();
    assert!(matches!(
        actions[..],
        [
            Action::Signal(Outgoing::Busy { .. }),
            Action::Event(CallEvent::Busy { from: UserId(9) })
        ]
    ));
    assert_eq!(h.phase(), CallPhase::InCall);
}

#[test]
fn caller_cancel_while_ringing_returns_to_idle() {
    let mut h = Harness::default_policy();
    h.invite(CALLER);
    h.take();
    h.signal(SignalingEvent::RemoteCancelled { from: CALLER });
    assert_eq!(h.phase(), CallPhase::Idle);
    assert_eq!(ended(&h.take()), Some(EndReason::Cancelled));
    h.advance(Duration::from_secs(60));
    assert!(h.sent().is_empty(), "no agree or reject after a cancel");
}

#[test]
fn cancel_from_someone_else_is_ignored() {
    let mut h = Harness::default_policy();
    h.invite(CALLER);
    h.signal(SignalingEvent::RemoteCancelled { from: UserId(99) });
    assert_eq!(h.phase(), CallPhase::Ringing);
}

#[test]
fn local_reject_declines_the_call() {
    let mut h = Harness::new(AnswerPolicy {
        mode: AnswerMode::Never,
        ..AnswerPolicy::default()
    });
    h.invite(CALLER);
    h.take();
    h.command(Command::Reject).unwrap();
    let actions = h.take();
    assert!(actions.contains(&Action::Signal(Outgoing::Reject { to: caller() })));
    assert_eq!(ended(&actions), Some(EndReason::Rejected));
    assert_eq!(h.phase(), CallPhase::Idle);
}

#[test]
fn caller_that_never_connects_times_out() {
    let mut h = Harness::default_policy();
    h.invite(CALLER);
    h.advance(ms(1000));
    h.take();
    h.advance(Duration::from_secs(20));
    assert_eq!(ended(&h.take()), Some(EndReason::ConnectTimeout));
    assert_eq!(h.phase(), CallPhase::Idle);
}

#[test]
fn answer_muted_enters_with_the_mic_muted_and_announces_it() {
    let mut h = Harness::new(AnswerPolicy {
        delay: Duration::ZERO,
        answer_muted: true,
        ..AnswerPolicy::default()
    });
    h.invite(CALLER);
    let actions = h.take();
    assert!(media(&actions).contains(&MediaCommand::SetMicMuted(true)));
    assert!(h.agent.state().mic_muted);
    h.signal(SignalingEvent::RemoteConnected {
        from: CALLER,
        room_id: Some(ROOM),
        room_type: None,
    });
    h.signal(SignalingEvent::Entered {
        room: room_info(),
        me: member(ME_C),
        members: vec![member(CALLER_C)],
    });
    assert!(h.sent().contains(&Outgoing::AnnounceMute {
        room_id: ROOM,
        muted: true
    }));
}

#[test]
fn invite_from_ourselves_is_ignored() {
    let mut h = Harness::default_policy();
    h.invite(ME);
    assert_eq!(h.phase(), CallPhase::Idle);
    assert!(h.take().is_empty());
}

#[test]
fn repeated_invite_from_the_same_caller_rings_again_instead_of_busy() {
    let mut h = Harness::new(AnswerPolicy {
        mode: AnswerMode::Never,
        ..AnswerPolicy::default()
    });
    h.invite(CALLER);
    h.take();
    h.invite(CALLER);
    assert_eq!(h.sent(), vec![Outgoing::Ringing { to: caller() }]);
}

/// Answering starts the call media while signaling finishes; a caller that never connects
/// releases it again.
#[test]
fn answering_prepares_the_media_and_a_failed_answer_releases_it() {
    let mut h = Harness::default_policy();
    h.invite(CALLER);
    assert!(
        !media(&h.take()).contains(&MediaCommand::Prepare),
        "not while ringing"
    );
    h.advance(ms(1000));
    assert!(media(&h.take()).contains(&MediaCommand::Prepare));
    h.advance(Duration::from_secs(20));
    let actions = h.take();
    assert_eq!(ended(&actions), Some(EndReason::ConnectTimeout));
    assert!(media(&actions).contains(&MediaCommand::StopAll));
}
