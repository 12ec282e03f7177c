//! Orders from whoever runs the room: forced joins, moderator orders, commands by message.

use super::*;

#[test]
fn a_pull_enters_the_room_from_idle() {
    let mut h = Harness::default_policy();
    h.signal(SignalingEvent::PulledIntoRoom {
        room_id: ROOM,
        call_type: CallType::Video,
    });
    assert_eq!(
        h.sent(),
        vec![Outgoing::Enter {
            room_id: ROOM,
            room_type: CallType::Video
        }]
    );
    assert_eq!(h.phase(), CallPhase::Connecting);
}

#[test]
fn a_pull_into_another_room_leaves_the_current_call_first() {
    let mut h = Harness::in_call_with(&[CALLER_C]);
    h.signal(SignalingEvent::PulledIntoRoom {
        room_id: RoomId(6000),
        call_type: CallType::Audio,
    });
    let actions = h.take();
    assert_eq!(ended(&actions), Some(EndReason::MovedToAnotherRoom));
    let sent: Vec<_> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Signal(o) => Some(o.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        sent,
        vec![
            Outgoing::Exit { room_id: ROOM },
            Outgoing::Enter {
                room_id: RoomId(6000),
                room_type: CallType::Audio
            }
        ]
    );
    assert_eq!(h.agent.state().room_id, Some(RoomId(6000)));
}

#[test]
fn a_pull_into_the_room_we_are_in_changes_nothing() {
    let mut h = Harness::in_call_with(&[CALLER_C]);
    h.signal(SignalingEvent::PulledIntoRoom {
        room_id: ROOM,
        call_type: CallType::Video,
    });
    assert!(h.take().is_empty());
    assert_eq!(h.phase(), CallPhase::InCall);
}

#[test]
fn forbidden_audio_mutes_and_refuses_unmute_until_allowed() {
    let mut h = Harness::in_call_with(&[CALLER_C]);
    h.signal(SignalingEvent::Moderated {
        order: ModeratorOrder::ForbidAudio,
    });
    let actions = h.take();
    assert!(media(&actions).contains(&MediaCommand::SetMicMuted(true)));
    let state = h.agent.state();
    assert!(state.mic_muted && state.audio_forbidden);
    assert_eq!(
        h.command(Command::Unmute),
        Err(CommandError::AudioForbidden)
    );
    assert!(
        h.agent.state().mic_muted,
        "a refused unmute changes nothing"
    );
    h.signal(SignalingEvent::Moderated {
        order: ModeratorOrder::AllowAudio,
    });
    assert!(
        h.agent.state().mic_muted,
        "allowing does not unmute by itself"
    );
    h.command(Command::Unmute).unwrap();
    assert!(!h.agent.state().mic_muted);
}

#[test]
fn forbidden_video_turns_the_camera_off_and_keeps_it_off() {
    let mut h = Harness::in_call_with(&[CALLER_C]);
    h.signal(SignalingEvent::Moderated {
        order: ModeratorOrder::ForbidVideo,
    });
    assert!(media(&h.take()).contains(&MediaCommand::SetCameraOn(false)));
    assert_eq!(
        h.command(Command::CameraOn),
        Err(CommandError::VideoForbidden)
    );
    h.signal(SignalingEvent::Moderated {
        order: ModeratorOrder::AllowVideo,
    });
    h.command(Command::CameraOn).unwrap();
    assert!(h.agent.state().camera_on);
}

#[test]
fn close_orders_switch_off_once_but_may_be_undone_locally() {
    let mut h = Harness::in_call_with(&[CALLER_C]);
    h.signal(SignalingEvent::Moderated {
        order: ModeratorOrder::CloseMic,
    });
    h.signal(SignalingEvent::Moderated {
        order: ModeratorOrder::CloseCamera,
    });
    let state = h.agent.state();
    assert!(state.mic_muted && !state.camera_on);
    assert!(!state.audio_forbidden && !state.video_forbidden);
    let sent = h.sent();
    assert!(sent.contains(&Outgoing::AnnounceMute {
        room_id: ROOM,
        muted: true
    }));
    h.command(Command::Unmute).unwrap();
    h.command(Command::CameraOn).unwrap();
}

#[test]
fn moderation_ends_with_the_call() {
    let mut h = Harness::in_call_with(&[CALLER_C]);
    h.signal(SignalingEvent::Moderated {
        order: ModeratorOrder::ForbidAudio,
    });
    h.command(Command::Hangup).unwrap();
    assert!(!h.agent.state().audio_forbidden);
}

#[test]
fn remote_commands_are_run_and_answered_to_their_sender() {
    let mut h = Harness::in_call_with(&[CALLER_C]);
    h.signal(SignalingEvent::RemoteCommand {
        from: UserId(42),
        tag: "m1".into(),
        command: Command::Mute,
    });
    assert!(h.agent.state().mic_muted);
    let replies: Vec<_> = h
        .sent()
        .into_iter()
        .filter(|o| matches!(o, Outgoing::CommandReply { .. }))
        .collect();
    assert_eq!(
        replies,
        vec![Outgoing::CommandReply {
            to: UserId(42),
            tag: "m1".into(),
            result: Ok(())
        }]
    );
    h.signal(SignalingEvent::RemoteCommand {
        from: UserId(42),
        tag: "m2".into(),
        command: Command::Answer,
    });
    assert_eq!(
        h.sent(),
        vec![Outgoing::CommandReply {
            to: UserId(42),
            tag: "m2".into(),
            result: Err("no incoming call is ringing".into())
        }]
    );
}

#[test]
fn messages_become_events() {
    let mut h = Harness::default_policy();
    h.signal(SignalingEvent::Message {
        from: UserId(42),
        room_id: None,
        kind: 30,
        text: "hello".into(),
    });
    assert_eq!(
        events(&h.take()),
        vec![CallEvent::Message {
            from: UserId(42),
            room_id: None,
            kind: 30,
            text: "hello".into()
        }]
    );
}

#[test]
fn rooms_without_per_participant_media_start_no_sessions() {
    let mut h = Harness::new(AnswerPolicy::default());
    h.agent.reconfigure(CoreConfig {
        per_participant_media: false,
        ..CoreConfig::default()
    });
    h.command(Command::Join { room: ROOM }).unwrap();
    h.signal(SignalingEvent::Entered {
        room: room_info(),
        me: member(ME_C),
        members: vec![member(ClientId(1))],
    });
    let actions = h.take();
    assert!(
        !media(&actions)
            .iter()
            .any(|c| matches!(c, MediaCommand::StartSession { .. }))
    );
    assert!(
        media(&actions).contains(&MediaCommand::Prepare),
        "a join starts the call media itself: {actions:?}"
    );
    assert_eq!(h.agent.state().members.len(), 1);
    h.signal(SignalingEvent::MemberLeft {
        room_id: ROOM,
        client_id: ClientId(1),
    });
    assert_eq!(ended(&h.take()), Some(EndReason::RemoteLeft));
}
