//! In the room: membership, offers, host orders, reconnects.

use super::*;

#[test]
fn entering_later_offers_to_every_member_already_there() {
    let mut h = Harness::default_policy();
    h.command(Command::Join { room: ROOM }).unwrap();
    h.signal(SignalingEvent::Entered {
        room: room_info(),
        me: member(ME_C),
        members: vec![member(ClientId(1)), member(ClientId(2)), member(ME_C)],
    });
    let starts: Vec<_> = media(&h.take())
        .into_iter()
        .filter_map(|c| match c {
            MediaCommand::StartSession { peer, role, .. } => Some((peer, role)),
            _ => None,
        })
        .collect();
    assert_eq!(
        starts,
        vec![
            (ClientId(1), SessionRole::Offerer),
            (ClientId(2), SessionRole::Offerer)
        ],
        "one offer per other member, none to ourselves"
    );
}

#[test]
fn local_media_signals_are_sent_to_that_peer() {
    let mut h = Harness::in_call_with(&[CALLER_C]);
    h.media(MediaEvent::LocalSignal {
        peer: CALLER_C,
        signal: MediaSignal::Offer { sdp: "v=0".into() },
    });
    assert_eq!(
        h.sent(),
        vec![Outgoing::Media {
            room_id: ROOM,
            to: CALLER_C,
            signal: MediaSignal::Offer { sdp: "v=0".into() }
        }]
    );
    h.media(MediaEvent::LocalSignal {
        peer: ClientId(555),
        signal: MediaSignal::Bye,
    });
    assert!(h.sent().is_empty(), "nothing for a peer without a session");
}

#[test]
fn last_peer_leaving_ends_the_call() {
    let mut h = Harness::in_room_with(&[CALLER_C, ClientId(8)]);
    h.signal(SignalingEvent::MemberLeft {
        room_id: ROOM,
        client_id: ClientId(8),
    });
    assert_eq!(h.phase(), CallPhase::InCall);
    assert_eq!(
        media(&h.take()),
        vec![MediaCommand::StopSession { peer: ClientId(8) }]
    );
    h.signal(SignalingEvent::MemberLeft {
        room_id: ROOM,
        client_id: CALLER_C,
    });
    let actions = h.take();
    assert!(actions.contains(&Action::Signal(Outgoing::Exit { room_id: ROOM })));
    assert!(media(&actions).contains(&MediaCommand::StopAll));
    assert_eq!(ended(&actions), Some(EndReason::RemoteLeft));
    assert_eq!(h.phase(), CallPhase::Idle);
}

#[test]
fn kick_naming_us_ends_the_call() {
    let mut h = Harness::in_call_with(&[CALLER_C]);
    h.signal(SignalingEvent::Kicked {
        room_id: ROOM,
        client_id: ME_C,
    });
    let actions = h.take();
    assert!(actions.contains(&Action::Signal(Outgoing::Exit { room_id: ROOM })));
    assert_eq!(ended(&actions), Some(EndReason::Kicked));
}

#[test]
fn kick_naming_someone_else_keeps_us_in() {
    let mut h = Harness::in_room_with(&[CALLER_C, ClientId(8)]);
    h.signal(SignalingEvent::Kicked {
        room_id: ROOM,
        client_id: ClientId(8),
    });
    assert_eq!(h.phase(), CallPhase::InCall);
}

#[test]
fn finish_ends_the_call() {
    let mut h = Harness::in_call_with(&[CALLER_C]);
    h.signal(SignalingEvent::Finished {
        room_id: ROOM,
        by: Some(CALLER),
    });
    assert_eq!(ended(&h.take()), Some(EndReason::Finished));
    assert_eq!(h.phase(), CallPhase::Idle);
}

#[test]
fn finish_for_another_room_is_ignored() {
    let mut h = Harness::in_call_with(&[CALLER_C]);
    h.signal(SignalingEvent::Finished {
        room_id: RoomId(ROOM.0 + 1),
        by: None,
    });
    assert_eq!(h.phase(), CallPhase::InCall);
}

#[test]
fn host_mute_is_obeyed_and_only_the_host_unmutes_that_way() {
    let mut h = Harness::in_call_with(&[CALLER_C]);
    h.signal(SignalingEvent::Muted {
        room_id: ROOM,
        client_id: ME_C,
        muted: true,
        from_host: true,
    });
    assert!(media(&h.take()).contains(&MediaCommand::SetMicMuted(true)));
    let s = h.agent.state();
    assert!(s.mic_muted && s.muted_by_host);

    h.signal(SignalingEvent::Muted {
        room_id: ROOM,
        client_id: ME_C,
        muted: false,
        from_host: false,
    });
    assert!(h.agent.state().mic_muted, "a non-host cannot unmute us");

    h.signal(SignalingEvent::Muted {
        room_id: ROOM,
        client_id: ME_C,
        muted: false,
        from_host: true,
    });
    assert!(media(&h.take()).contains(&MediaCommand::SetMicMuted(false)));
    assert!(!h.agent.state().mic_muted);
}

#[test]
fn mute_all_from_the_host_mutes_us() {
    let mut h = Harness::in_call_with(&[CALLER_C]);
    h.signal(SignalingEvent::MutedAll {
        room_id: ROOM,
        muted: true,
        from_host: true,
    });
    assert!(h.agent.state().mic_muted);
}

#[test]
fn mute_all_without_host_authority_is_ignored() {
    let mut h = Harness::in_call_with(&[CALLER_C]);
    h.signal(SignalingEvent::MutedAll {
        room_id: ROOM,
        muted: true,
        from_host: false,
    });
    assert!(!h.agent.state().mic_muted);
}

#[test]
fn others_mute_state_is_tracked_for_the_dashboard() {
    let mut h = Harness::in_call_with(&[CALLER_C]);
    h.signal(SignalingEvent::Muted {
        room_id: ROOM,
        client_id: CALLER_C,
        muted: true,
        from_host: false,
    });
    assert!(h.agent.state().members[0].muted);
    assert!(!h.agent.state().mic_muted);
}

#[test]
fn local_mute_is_announced_with_mute_msg() {
    let mut h = Harness::in_call_with(&[CALLER_C]);
    h.command(Command::Mute).unwrap();
    let actions = h.take();
    assert!(media(&actions).contains(&MediaCommand::SetMicMuted(true)));
    assert!(actions.contains(&Action::Signal(Outgoing::AnnounceMute {
        room_id: ROOM,
        muted: true
    })));
    h.command(Command::Mute).unwrap();
    assert!(h.sent().is_empty(), "muting twice announces once");
}

#[test]
fn camera_off_is_announced_with_update_video() {
    let mut h = Harness::in_call_with(&[CALLER_C]);
    h.command(Command::CameraOff).unwrap();
    let actions = h.take();
    assert!(media(&actions).contains(&MediaCommand::SetCameraOn(false)));
    assert!(actions.contains(&Action::Signal(Outgoing::AnnounceVideo {
        room_id: ROOM,
        video: false
    })));
}

#[test]
fn reconnect_re_enters_the_room_and_keeps_live_sessions() {
    let mut h = Harness::in_room_with(&[CALLER_C, ClientId(8)]);
    h.media(MediaEvent::SessionConnected { peer: CALLER_C });
    h.take();
    h.signal(SignalingEvent::Disconnected {
        reason: "eof".into(),
    });
    assert!(!h.agent.state().registered);
    assert_eq!(h.phase(), CallPhase::InCall, "media continues meanwhile");
    h.signal(SignalingEvent::Registered { user_id: ME });
    assert_eq!(
        h.sent(),
        vec![Outgoing::Enter {
            room_id: ROOM,
            room_type: CallType::Video
        }]
    );
    // Only CALLER came back so far; 8 is gone.
    h.signal(SignalingEvent::Entered {
        room: room_info(),
        me: member(ME_C),
        members: vec![member(CALLER_C)],
    });
    let actions = h.take();
    assert!(
        !events(&actions)
            .iter()
            .any(|e| matches!(e, CallEvent::InCall { .. }))
    );
    let s = h.agent.state();
    assert_eq!(s.call, CallPhase::InCall);
    assert_eq!(s.members.len(), 1);
    assert_eq!(s.members[0].media, MediaState::Connected);
    // 8 may be re-entering too; once it has had the time a caller has, its session closes.
    assert!(media(&actions).is_empty());
    h.advance(Duration::from_secs(21));
    assert_eq!(
        media(&h.take()),
        vec![MediaCommand::StopSession { peer: ClientId(8) }]
    );
    assert_eq!(h.phase(), CallPhase::InCall);
}

#[test]
fn reconnect_while_muted_re_announces_the_mute() {
    let mut h = Harness::in_call_with(&[CALLER_C]);
    h.command(Command::Mute).unwrap();
    h.signal(SignalingEvent::Registered { user_id: ME });
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

fn fail(h: &mut Harness, peer: ClientId) -> Vec<Action> {
    h.media(MediaEvent::SessionFailed {
        peer,
        reason: "ICE/DTLS connection failed".into(),
    });
    h.take()
}

/// Asserts that the agent's next actions offer `peer` a video session.
fn assert_offers(h: &mut Harness, peer: ClientId) {
    let cmds = media(&h.take());
    assert!(
        cmds.contains(&MediaCommand::StartSession {
            peer,
            role: SessionRole::Offerer,
            call_type: CallType::Video,
        }),
        "{cmds:?}"
    );
}

fn member_media(h: &Harness, peer: ClientId) -> MediaState {
    let s = h.agent.state();
    s.members
        .iter()
        .find(|m| m.client_id == peer)
        .unwrap()
        .media
}

#[test]
fn a_failed_session_we_offered_is_offered_again() {
    let mut h = Harness::in_room_with(&[CALLER_C, ClientId(8)]);
    let actions = fail(&mut h, ClientId(8));
    assert_eq!(
        media(&actions),
        vec![MediaCommand::StopSession { peer: ClientId(8) }]
    );
    assert!(
        events(&actions).is_empty(),
        "a retried session is not reported as an error"
    );
    assert_eq!(member_media(&h, ClientId(8)), MediaState::Connecting);
    h.advance(Duration::from_millis(900));
    assert!(media(&h.take()).is_empty(), "the new offer waits 1 s");
    h.advance(Duration::from_millis(100));
    assert_eq!(
        media(&h.take()),
        vec![MediaCommand::StartSession {
            peer: ClientId(8),
            role: SessionRole::Offerer,
            call_type: CallType::Video,
        }]
    );
    assert_eq!(h.phase(), CallPhase::InCall);
}

#[test]
fn a_session_that_keeps_failing_is_reported_failed_and_the_call_goes_on() {
    let mut h = Harness::in_room_with(&[CALLER_C, ClientId(8)]);
    for n in 1..=MEDIA_RETRIES {
        assert_eq!(media(&fail(&mut h, ClientId(8))).len(), 1, "stopped");
        h.advance(crate::core::agent::reoffer_backoff(n));
        assert_eq!(media(&h.take()).len(), 1, "offered again");
    }
    let actions = fail(&mut h, ClientId(8));
    assert!(
        media(&actions).is_empty(),
        "no more offers after {MEDIA_RETRIES} retries"
    );
    assert!(matches!(events(&actions)[..], [CallEvent::Error { .. }]));
    assert_eq!(member_media(&h, ClientId(8)), MediaState::Failed);
    assert_eq!(member_media(&h, CALLER_C), MediaState::Connecting);
    assert_eq!(h.phase(), CallPhase::InCall);
}

#[test]
fn a_failed_session_we_answered_waits_for_the_peers_new_offer() {
    let mut h = Harness::in_call_with(&[CALLER_C]);
    let offer = |h: &mut Harness| {
        h.signal(SignalingEvent::Media {
            room_id: ROOM,
            from: CALLER_C,
            signal: MediaSignal::Offer { sdp: "v=0".into() },
        });
        h.take()
    };
    offer(&mut h);
    let actions = fail(&mut h, CALLER_C);
    assert!(
        media(&actions).is_empty(),
        "the answerer does not offer: that would be glare"
    );
    assert!(
        !events(&actions)
            .iter()
            .any(|e| matches!(e, CallEvent::Error { .. })),
        "not reported while the offerer may still offer again"
    );
    assert_eq!(member_media(&h, CALLER_C), MediaState::Connecting);
    let restarted = media(&offer(&mut h));
    assert!(matches!(
        restarted[..],
        [
            MediaCommand::StopSession { peer: CALLER_C },
            MediaCommand::StartSession {
                peer: CALLER_C,
                role: SessionRole::Answerer,
                ..
            },
            ..
        ]
    ));
    assert_eq!(member_media(&h, CALLER_C), MediaState::Connecting);
}

#[test]
fn a_new_offer_from_a_peer_replaces_its_session() {
    let mut h = Harness::in_call_with(&[CALLER_C]);
    h.signal(SignalingEvent::Media {
        room_id: ROOM,
        from: CALLER_C,
        signal: MediaSignal::Offer {
            sdp: "v=0 b".into(),
        },
    });
    let cmds = media(&h.take());
    assert_eq!(cmds[0], MediaCommand::StopSession { peer: CALLER_C });
    assert!(matches!(
        cmds[1],
        MediaCommand::StartSession {
            role: SessionRole::Answerer,
            ..
        }
    ));
}

#[test]
fn media_from_a_client_not_in_the_room_is_dropped() {
    let mut h = Harness::in_call_with(&[CALLER_C]);
    h.signal(SignalingEvent::Media {
        room_id: ROOM,
        from: ClientId(12345),
        signal: MediaSignal::Offer { sdp: "v=0".into() },
    });
    assert!(media(&h.take()).is_empty());
}

#[test]
fn bye_closes_only_that_session() {
    let mut h = Harness::in_room_with(&[CALLER_C, ClientId(8)]);
    h.signal(SignalingEvent::Media {
        room_id: ROOM,
        from: ClientId(8),
        signal: MediaSignal::Bye,
    });
    assert_eq!(
        media(&h.take()),
        vec![MediaCommand::StopSession { peer: ClientId(8) }]
    );
    assert_eq!(h.phase(), CallPhase::InCall);
}

#[test]
fn a_quality_request_reaches_only_that_participants_session() {
    let mut h = Harness::in_room_with(&[CALLER_C, ClientId(8)]);
    h.signal(SignalingEvent::Media {
        room_id: ROOM,
        from: ClientId(8),
        signal: MediaSignal::Quality { layer: 0 },
    });
    assert_eq!(
        media(&h.take()),
        vec![MediaCommand::RemoteSignal {
            peer: ClientId(8),
            signal: MediaSignal::Quality { layer: 0 }
        }]
    );
    // Someone without a session with us asks in vain.
    h.signal(SignalingEvent::Media {
        room_id: ROOM,
        from: ClientId(12345),
        signal: MediaSignal::Quality { layer: 1 },
    });
    assert!(media(&h.take()).is_empty());
}

#[test]
fn same_account_entering_elsewhere_replaces_us() {
    let mut h = Harness::in_call_with(&[CALLER_C]);
    h.signal(SignalingEvent::ReplacedByOtherLogin { room_id: ROOM });
    assert_eq!(ended(&h.take()), Some(EndReason::Replaced));
}

#[test]
fn a_refused_login_mid_call_ends_the_call_and_stops_media() {
    let mut h = Harness::in_call_with(&[CALLER_C]);
    h.signal(SignalingEvent::Disconnected {
        reason: "gate restarted".into(),
    });
    assert!(
        ended(&h.take()).is_none(),
        "a lost link alone keeps the call"
    );
    h.signal(SignalingEvent::LoginRefused {
        reason: "token refused".into(),
    });
    let actions = h.take();
    assert!(media(&actions).contains(&MediaCommand::StopAll));
    match ended(&actions) {
        Some(EndReason::Error(why)) => assert!(why.contains("token refused"), "{why}"),
        other => panic!("{other:?}"),
    }
    // Idle: nothing more happens.
    h.signal(SignalingEvent::LoginRefused {
        reason: "token refused".into(),
    });
    assert!(ended(&h.take()).is_none());
}

#[test]
fn hangup_in_a_room_exits_and_stops_media() {
    let mut h = Harness::in_call_with(&[CALLER_C]);
    h.command(Command::Mute).unwrap();
    h.take();
    h.command(Command::Hangup).unwrap();
    let actions = h.take();
    assert!(actions.contains(&Action::Signal(Outgoing::Exit { room_id: ROOM })));
    assert!(media(&actions).contains(&MediaCommand::StopAll));
    assert_eq!(ended(&actions), Some(EndReason::LocalHangup));
    assert!(!h.agent.state().mic_muted, "each call starts unmuted");
}

#[test]
fn re_entering_an_emptied_room_ends_the_call_when_nobody_comes_back() {
    let mut h = Harness::in_call_with(&[CALLER_C]);
    h.signal(SignalingEvent::Disconnected {
        reason: "server away".into(),
    });
    h.signal(SignalingEvent::Registered { user_id: ME });
    assert_eq!(
        h.sent(),
        vec![Outgoing::Enter {
            room_id: ROOM,
            room_type: CallType::Video
        }]
    );
    h.signal(SignalingEvent::Entered {
        room: room_info(),
        me: member(ME_C),
        members: vec![],
    });
    h.take();
    assert_eq!(
        h.phase(),
        CallPhase::InCall,
        "the others may be re-entering too"
    );
    h.advance(Duration::from_secs(19));
    assert_eq!(h.phase(), CallPhase::InCall);
    h.advance(Duration::from_secs(2));
    let actions = h.take();
    assert!(media(&actions).contains(&MediaCommand::StopSession { peer: CALLER_C }));
    assert_eq!(ended(&actions), Some(EndReason::RemoteLeft));
    assert_eq!(h.phase(), CallPhase::Idle);
}

#[test]
fn someone_coming_back_to_a_re_entered_room_keeps_the_call() {
    let mut h = Harness::in_call_with(&[CALLER_C]);
    h.signal(SignalingEvent::Registered { user_id: ME });
    h.signal(SignalingEvent::Entered {
        room: room_info(),
        me: member(ME_C),
        members: vec![],
    });
    h.advance(Duration::from_secs(5));
    h.signal(SignalingEvent::MemberEntered {
        room_id: ROOM,
        member: member(CALLER_C),
    });
    h.advance(Duration::from_secs(60));
    assert_eq!(h.phase(), CallPhase::InCall);
}

#[test]
fn entering_an_empty_room_the_first_time_waits_for_others() {
    let mut h = Harness::default_policy();
    h.command(Command::Join { room: ROOM }).unwrap();
    h.signal(SignalingEvent::Entered {
        room: room_info(),
        me: member(ME_C),
        members: vec![],
    });
    assert_eq!(h.phase(), CallPhase::InCall);
}

#[test]
fn a_failed_session_we_answered_is_offered_by_us_when_no_new_offer_comes() {
    let mut h = Harness::in_call_with(&[CALLER_C]);
    h.signal(SignalingEvent::Media {
        room_id: ROOM,
        from: CALLER_C,
        signal: MediaSignal::Offer { sdp: "v=0".into() },
    });
    h.take();
    fail(&mut h, CALLER_C);
    h.advance(answerer_wait(1) - Duration::from_millis(1));
    assert_eq!(member_media(&h, CALLER_C), MediaState::Connecting);
    assert!(media(&h.take()).is_empty(), "waits for the offerer first");
    h.advance(Duration::from_millis(2));
    assert_offers(&mut h, CALLER_C);
    assert_eq!(member_media(&h, CALLER_C), MediaState::Connecting);
    // Our offers fail too: after the retries the session is reported failed, once.
    for _ in 1..MEDIA_RETRIES {
        fail(&mut h, CALLER_C);
        h.advance(Duration::from_secs(5));
    }
    assert_eq!(member_media(&h, CALLER_C), MediaState::Connecting);
    let last = fail(&mut h, CALLER_C);
    assert_eq!(member_media(&h, CALLER_C), MediaState::Failed);
    let errors = events(&last)
        .iter()
        .filter(|e| matches!(e, CallEvent::Error { .. }))
        .count();
    assert_eq!(errors, 1);
}

#[test]
fn a_new_offer_in_time_is_answered_and_we_do_not_offer() {
    let mut h = Harness::in_call_with(&[CALLER_C]);
    let offer = || SignalingEvent::Media {
        room_id: ROOM,
        from: CALLER_C,
        signal: MediaSignal::Offer { sdp: "v=0".into() },
    };
    h.signal(offer());
    fail(&mut h, CALLER_C);
    h.take();
    h.advance(answerer_wait(1) / 2);
    h.signal(offer());
    h.advance(Duration::from_secs(10));
    let cmds = media(&h.take());
    assert!(
        !cmds.iter().any(|c| matches!(
            c,
            MediaCommand::StartSession {
                role: SessionRole::Offerer,
                ..
            }
        )),
        "{cmds:?}"
    );
}

#[test]
fn a_joined_room_gives_media_to_at_most_sixteen_participants() {
    let mut h = Harness::default_policy();
    h.command(Command::Join { room: ROOM }).unwrap();
    let present: Vec<Member> = (0..20).map(|i| member(ClientId(500 + i))).collect();
    h.signal(SignalingEvent::Entered {
        room: room_info(),
        me: member(ME_C),
        members: present,
    });
    let starts = media(&h.take())
        .iter()
        .filter(|c| matches!(c, MediaCommand::StartSession { .. }))
        .count();
    assert_eq!(starts, 16);
    assert_eq!(h.agent.state().members.len(), 20, "all are listed");
    // One more offering is not answered either.
    h.signal(SignalingEvent::Media {
        room_id: ROOM,
        from: ClientId(519),
        signal: MediaSignal::Offer { sdp: "v=0".into() },
    });
    assert!(media(&h.take()).is_empty());
}

#[test]
fn a_participant_flooding_media_messages_is_cut_to_its_budget() {
    let mut h = Harness::in_call_with(&[CALLER_C]);
    h.take();
    for i in 0..1000 {
        h.signal(SignalingEvent::Media {
            room_id: ROOM,
            from: CALLER_C,
            signal: MediaSignal::Candidate {
                candidate: format!("candidate:{i} 1 udp 1 10.0.0.1 9 typ host"),
                sdp_mline_index: 0,
                sdp_mid: None,
            },
        });
    }
    let forwarded = media(&h.take()).len();
    assert_eq!(
        forwarded, 200,
        "the burst, then nothing in the same instant"
    );
    for _ in 0..20 {
        h.signal(SignalingEvent::Media {
            room_id: ROOM,
            from: CALLER_C,
            signal: MediaSignal::Offer { sdp: "v=0".into() },
        });
    }
    let offers = media(&h.take())
        .iter()
        .filter(|c| matches!(c, MediaCommand::RemoteSignal { .. }))
        .count();
    assert_eq!(offers, 4);
    // A second later the candidates flow again, at their rate.
    h.advance(Duration::from_secs(1));
    h.take();
    h.signal(SignalingEvent::Media {
        room_id: ROOM,
        from: CALLER_C,
        signal: MediaSignal::Candidate {
            candidate: "candidate:x 1 udp 1 10.0.0.1 9 typ host".into(),
            sdp_mline_index: 0,
            sdp_mid: None,
        },
    });
    assert_eq!(media(&h.take()).len(), 1);
}

#[test]
fn a_session_failed_for_good_is_offered_again_when_we_re_enter_the_room() {
    let mut h = Harness::in_call_with(&[CALLER_C]);
    for _ in 0..=MEDIA_RETRIES {
        fail(&mut h, CALLER_C);
        h.advance(Duration::from_secs(5));
    }
    assert_eq!(member_media(&h, CALLER_C), MediaState::Failed);
    h.take();
    // The signaling link came back: we re-enter and find them there.
    h.signal(SignalingEvent::Registered { user_id: ME });
    h.signal(SignalingEvent::Entered {
        room: room_info(),
        me: member(ME_C),
        members: vec![member(CALLER_C)],
    });
    assert_offers(&mut h, CALLER_C);
    assert_eq!(member_media(&h, CALLER_C), MediaState::Connecting);
}
