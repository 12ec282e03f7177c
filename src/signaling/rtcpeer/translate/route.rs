//! The `module`/`method` pairs the agent sends or understands, as types.
//!
//! A pushed frame's route is parsed once ([`Route::parse`]) and then matched on; a request
//! names its route as a value, and the strings appear only here. Routes outside this list
//! (the room server's own requests, such as `meeting/kickOut`) do not parse: for the agent
//! they are unknown, like any misspelt one.

use std::fmt;

/// Declares one dialect module's methods: the enum, and its wire names both ways.
macro_rules! methods {
    (
        $(#[$meta:meta])*
        $name:ident {
            $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// The method's name on the wire (case matters: `EnterRoom` is not `enter`).
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The method spelt exactly `text`, if this module has it.
            pub fn from_name(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

methods! {
    /// `call/*`: one-to-one calling between users. Apart from `doRegister`, each is both a
    /// request we send and the push the server forwards to the other side.
    CallMethod {
        /// Binds the control socket to the logged-in user (sent once per connection).
        DoRegister = "doRegister",
        /// Rings a user into a room.
        DoInvite = "doInvite",
        /// Reports the callee's progress; the `event` field says which.
        DoEvent = "doEvent",
        /// The callee accepts.
        DoAgree = "doAgree",
        /// The callee declines.
        Reject = "reject",
        /// The caller gives up.
        Cancel = "cancel",
    }
}

methods! {
    /// `room/*`: room administration. The agent only creates temporary rooms to dial from.
    RoomMethod {
        /// Creates a room; the reply carries its id.
        NewAppRoom = "newAppRoom",
    }
}

methods! {
    /// `meeting/*`: being in a room. Lower-case methods are our requests; the server's
    /// pushes are `on…`, `EnterRoom`/`ExitRoom`, `tiren` and `memberTalking`.
    MeetingMethod {
        /// Request: enter a room (the reply lists who is there).
        Enter = "enter",
        /// Request: leave a room.
        Exit = "exit",
        /// Request: announce our microphone state.
        MuteMsg = "muteMsg",
        /// Request: announce our camera state.
        UpdateVideo = "updateVideo",
        /// Request: announce that we share a screen, or stopped.
        ShareScreen = "shareScreen",
        /// Push: someone entered (`result` 9 tells an older socket it was replaced).
        EnterRoom = "EnterRoom",
        /// Push: someone left.
        ExitRoom = "ExitRoom",
        /// Push: the meeting was ended for everyone.
        OnFinish = "onFinish",
        /// Push: the host removed someone.
        Tiren = "tiren",
        /// Push: someone's microphone changed, possibly by the host's order.
        OnMute = "onMute",
        /// Push: the host muted or unmuted everyone.
        OnMuteAll = "onMuteAll",
        /// Push: the host role moved.
        OnCompere = "onCompere",
        /// Push the core does not act on.
        OnRaiseHand = "onRaiseHand",
        /// Push the core does not act on.
        OnChat = "onChat",
        /// Push the core does not act on.
        OnPrivateChat = "onPrivateChat",
        /// Push the core does not act on (media follows `media/*` instead).
        OnPublished = "onPublished",
        /// Push the core does not act on.
        OnShareScreen = "onShareScreen",
        /// Push the core does not act on.
        OnUpdateMeeting = "onUpdateMeeting",
        /// Push the core does not act on.
        OnUpdateClient = "onUpdateClient",
        /// Push the core does not act on.
        MemberTalking = "memberTalking",
    }
}

methods! {
    /// `media/*`: WebRTC negotiation between two participants, relayed by the server. The
    /// same methods go both ways.
    MediaMethod {
        /// An SDP offer.
        Offer = "offer",
        /// An SDP answer.
        Answer = "answer",
        /// A trickled ICE candidate.
        Candidate = "candidate",
        /// The sender closed its connection with the recipient.
        Bye = "bye",
        /// The sender asks for a quality layer of the recipient's video.
        Quality = "quality",
    }
}

/// A frame's `module` and `method`, known to the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// `call/*`.
    Call(CallMethod),
    /// `room/*`.
    Room(RoomMethod),
    /// `meeting/*`.
    Meeting(MeetingMethod),
    /// `media/*`.
    Media(MediaMethod),
}

impl Route {
    /// The route of a frame; `None` for pairs the agent does not know.
    pub fn parse(module: &str, method: &str) -> Option<Route> {
        match module {
            "call" => CallMethod::from_name(method).map(Route::Call),
            "room" => RoomMethod::from_name(method).map(Route::Room),
            "meeting" => MeetingMethod::from_name(method).map(Route::Meeting),
            "media" => MediaMethod::from_name(method).map(Route::Media),
            _ => None,
        }
    }

    /// `module` on the wire.
    pub fn module(self) -> &'static str {
        match self {
            Route::Call(_) => "call",
            Route::Room(_) => "room",
            Route::Meeting(_) => "meeting",
            Route::Media(_) => "media",
        }
    }

    /// `method` on the wire.
    pub fn method(self) -> &'static str {
        match self {
            Route::Call(m) => m.name(),
            Route::Room(m) => m.name(),
            Route::Meeting(m) => m.name(),
            Route::Media(m) => m.name(),
        }
    }
}

/// `module/method`, as logs and error messages print it.
impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.module(), self.method())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_read_back_what_they_write() {
        let all = [
            Route::Call(CallMethod::DoRegister),
            Route::Call(CallMethod::Cancel),
            Route::Room(RoomMethod::NewAppRoom),
            Route::Meeting(MeetingMethod::EnterRoom),
            Route::Meeting(MeetingMethod::Enter),
            Route::Meeting(MeetingMethod::MemberTalking),
            Route::Media(MediaMethod::Candidate),
        ];
        for r in all {
            assert_eq!(Route::parse(r.module(), r.method()), Some(r));
        }
        assert_eq!(
            Route::Meeting(MeetingMethod::OnMuteAll).to_string(),
            "meeting/onMuteAll"
        );
    }

    #[test]
    fn names_match_exactly_and_only_in_their_module() {
        assert_eq!(Route::parse("meeting", "enterRoom"), None);
        assert_eq!(Route::parse("media", "Offer"), None);
        assert_eq!(Route::parse("call", "enter"), None);
        assert_eq!(Route::parse("meeting", "kickOut"), None);
        assert_eq!(Route::parse("x", "offer"), None);
    }
}
