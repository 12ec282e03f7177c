//! Every `(module, method)` pair the hub answers, parsed once per frame into a [`Route`], so
//! that dispatch is a match on a closed enum instead of on strings.

/// One request the hub answers. Each variant's doc names its `module/method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Route {
    /// `call/doRegister`: binds the socket to a device type. Allowed before registration.
    Register,
    /// `account/logout` over the socket: ends every session of the user (the HTTP `logout`
    /// ends only one). Allowed before registration.
    Logout,
    /// `call/*`: forwarded to the target user's devices.
    Call(CallKind),
    /// `room/newAppRoom`.
    NewAppRoom,
    /// `meeting/enter`.
    Enter,
    /// `meeting/exit`.
    Exit,
    /// `meeting/finish`.
    Finish,
    /// `meeting/muteMsg`.
    MuteMsg,
    /// `meeting/muteAll`.
    MuteAll,
    /// `meeting/kickOut`.
    KickOut,
    /// `meeting/raiseHand`.
    RaiseHand,
    /// `meeting/setCompere`.
    SetCompere,
    /// `meeting/chat`.
    Chat,
    /// `meeting/privateChat`.
    PrivateChat,
    /// `meeting/updateVideo`.
    UpdateVideo,
    /// `meeting/audioOnlyMeeting`.
    AudioOnlyMeeting,
    /// `meeting/shareScreen`.
    ShareScreen,
    /// `meeting/updateMeetingName`.
    UpdateMeetingName,
    /// `meeting/updateClientName`.
    UpdateClientName,
    /// `media/*`: relayed to one participant of the room.
    Media(MediaKind),
}

impl Route {
    /// The route of a frame; `None` for a pair the hub does not know (matching is exact,
    /// case included).
    pub(super) fn parse(module: &str, method: &str) -> Option<Route> {
        Some(match (module, method) {
            ("call", "doRegister") => Route::Register,
            ("call", method) => Route::Call(CallKind::parse(method)?),
            ("account", "logout") => Route::Logout,
            ("room", "newAppRoom") => Route::NewAppRoom,
            ("meeting", "enter") => Route::Enter,
            ("meeting", "exit") => Route::Exit,
            ("meeting", "finish") => Route::Finish,
            ("meeting", "muteMsg") => Route::MuteMsg,
            ("meeting", "muteAll") => Route::MuteAll,
            ("meeting", "kickOut") => Route::KickOut,
            ("meeting", "raiseHand") => Route::RaiseHand,
            ("meeting", "setCompere") => Route::SetCompere,
            ("meeting", "chat") => Route::Chat,
            ("meeting", "privateChat") => Route::PrivateChat,
            ("meeting", "updateVideo") => Route::UpdateVideo,
            ("meeting", "audioOnlyMeeting") => Route::AudioOnlyMeeting,
            ("meeting", "shareScreen") => Route::ShareScreen,
            ("meeting", "updateMeetingName") => Route::UpdateMeetingName,
            ("meeting", "updateClientName") => Route::UpdateClientName,
            ("media", method) => Route::Media(MediaKind::parse(method)?),
            _ => return None,
        })
    }

    /// Whether the socket must have sent `call/doRegister` first. An unregistered socket
    /// gets 401 for everything else, unknown routes included.
    pub(super) fn needs_registration(self) -> bool {
        !matches!(self, Route::Register | Route::Logout)
    }
}

/// The `call/*` messages, all forwarded under the method they came with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CallKind {
    /// `doInvite`: the only one whose reply echoes the `roomId`.
    Invite,
    /// `doEvent`: needs an `event`.
    Event,
    /// `doAgree`.
    Agree,
    /// `reject`.
    Reject,
    /// `cancel`.
    Cancel,
}

impl CallKind {
    const ALL: [CallKind; 5] = [
        CallKind::Invite,
        CallKind::Event,
        CallKind::Agree,
        CallKind::Reject,
        CallKind::Cancel,
    ];

    /// The wire method, both of the request and of the forwarded copy.
    pub(super) fn method(self) -> &'static str {
        match self {
            CallKind::Invite => "doInvite",
            CallKind::Event => "doEvent",
            CallKind::Agree => "doAgree",
            CallKind::Reject => "reject",
            CallKind::Cancel => "cancel",
        }
    }

    fn parse(method: &str) -> Option<CallKind> {
        Self::ALL.into_iter().find(|k| k.method() == method)
    }
}

/// The `media/*` messages, all relayed under the method they came with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MediaKind {
    /// `offer` (an SDP).
    Offer,
    /// `answer` (an SDP).
    Answer,
    /// `candidate` (one ICE candidate).
    Candidate,
    /// `bye` (the peer connection ends).
    Bye,
    /// `quality` (a viewer asks for a quality layer of the video it receives).
    Quality,
}

impl MediaKind {
    const ALL: [MediaKind; 5] = [
        MediaKind::Offer,
        MediaKind::Answer,
        MediaKind::Candidate,
        MediaKind::Bye,
        MediaKind::Quality,
    ];

    /// The wire method, both of the request and of the relayed copy.
    pub(super) fn method(self) -> &'static str {
        match self {
            MediaKind::Offer => "offer",
            MediaKind::Answer => "answer",
            MediaKind::Candidate => "candidate",
            MediaKind::Bye => "bye",
            MediaKind::Quality => "quality",
        }
    }

    fn parse(method: &str) -> Option<MediaKind> {
        Self::ALL.into_iter().find(|k| k.method() == method)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_pair_parses_and_kinds_keep_their_method() {
        let meeting = [
            "enter",
            "exit",
            "finish",
            "muteMsg",
            "muteAll",
            "kickOut",
            "raiseHand",
            "setCompere",
            "chat",
            "privateChat",
            "updateVideo",
            "audioOnlyMeeting",
            "shareScreen",
            "updateMeetingName",
            "updateClientName",
        ];
        let mut seen = Vec::new();
        for method in meeting {
            seen.push(Route::parse("meeting", method).expect(method));
        }
        for method in ["doInvite", "doEvent", "doAgree", "reject", "cancel"] {
            let Some(Route::Call(kind)) = Route::parse("call", method) else {
                panic!("call/{method}");
            };
            assert_eq!(kind.method(), method);
            seen.push(Route::Call(kind));
        }
        for method in ["offer", "answer", "candidate", "bye"] {
            let Some(Route::Media(kind)) = Route::parse("media", method) else {
                panic!("media/{method}");
            };
            assert_eq!(kind.method(), method);
            seen.push(Route::Media(kind));
        }
        seen.push(Route::parse("room", "newAppRoom").unwrap());
        seen.push(Route::parse("call", "doRegister").unwrap());
        seen.push(Route::parse("account", "logout").unwrap());
        for (i, r) in seen.iter().enumerate() {
            assert!(!seen[..i].contains(r), "{r:?} parsed from two pairs");
        }
    }

    #[test]
    fn unknown_pairs_and_other_cases_do_not_parse() {
        for (module, method) in [
            ("meeting", "dance"),
            ("Meeting", "enter"),
            ("call", "hangUp"),
            ("call", "DoInvite"),
            ("media", "renegotiate"),
            ("account", "login"),
            ("room", "enter"),
            ("", ""),
        ] {
            assert_eq!(Route::parse(module, method), None, "{module}/{method}");
        }
    }

    #[test]
    fn only_register_and_logout_run_before_registration() {
        assert!(!Route::Register.needs_registration());
        assert!(!Route::Logout.needs_registration());
        assert!(Route::Enter.needs_registration());
        assert!(Route::Call(CallKind::Invite).needs_registration());
        assert!(Route::Media(MediaKind::Bye).needs_registration());
    }
}
