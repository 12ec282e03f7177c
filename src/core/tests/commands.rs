//! Local commands outside their state are refused and change nothing.

use super::*;

#[test]
fn commands_out_of_state_are_refused_and_change_nothing() {
    let mut h = Harness::default_policy();
    let before = h.agent.state();
    assert_eq!(h.command(Command::Answer), Err(CommandError::NotRinging));
    assert_eq!(h.command(Command::Reject), Err(CommandError::NotRinging));
    assert_eq!(h.command(Command::Hangup), Err(CommandError::NoCall));
    assert_eq!(h.command(Command::ShareStart), Err(CommandError::NotInCall));
    assert_eq!(
        h.command(Command::Volume { level: 101 }),
        Err(CommandError::VolumeOutOfRange(101))
    );
    assert_eq!(
        h.command(Command::Dial { user: ME }),
        Err(CommandError::DialSelf(ME))
    );
    assert_eq!(h.agent.state(), before);
    assert!(h.take().is_empty());
}

#[test]
fn dial_and_join_need_registration() {
    let mut h = Harness::default_policy();
    h.signal(SignalingEvent::Disconnected { reason: "x".into() });
    assert_eq!(
        h.command(Command::Dial { user: UserId(5) }),
        Err(CommandError::NotRegistered)
    );
    assert_eq!(
        h.command(Command::Join { room: RoomId(5) }),
        Err(CommandError::NotRegistered)
    );
}

#[test]
fn dial_while_in_a_call_is_refused() {
    let mut h = Harness::in_call_with(&[CALLER_C]);
    assert_eq!(
        h.command(Command::Dial { user: UserId(5) }),
        Err(CommandError::Busy(CallPhase::InCall))
    );
}

#[test]
fn state_is_published_once_per_change() {
    let mut h = Harness::default_policy();
    h.command(Command::Volume { level: 30 }).unwrap();
    let states: Vec<_> = h
        .take()
        .into_iter()
        .filter(|a| matches!(a, Action::State(_)))
        .collect();
    assert_eq!(states.len(), 1);
    h.command(Command::Volume { level: 30 }).unwrap();
    assert!(h.take().is_empty());
}

#[test]
fn a_mute_pressed_while_idle_carries_into_the_next_call() {
    let mut h = Harness::new(AnswerPolicy {
        delay: Duration::ZERO,
        ..AnswerPolicy::default()
    });
    h.command(Command::Mute).unwrap();
    h.invite(CALLER);
    assert!(media(&h.take()).contains(&MediaCommand::SetMicMuted(true)));
}
