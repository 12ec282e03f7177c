//! The agent core: a pure call/room state machine with the auto-answer policy.
//!
//! Nothing in here performs I/O or reads the clock; see [`Agent`] for the calling contract.
//! Adapters translate their wire formats into [`SignalingEvent`], [`MediaEvent`] and
//! [`Command`], and carry out the [`Action`]s the core yields.

mod action;
mod agent;
mod input;
mod policy;
mod state;
mod timers;
mod types;

#[cfg(test)]
mod tests;

pub use action::{Action, CallEvent, EndReason, MediaCommand, Outgoing, RejectReason, SessionRole};
pub use agent::{Agent, CommandError, CoreConfig, MEDIA_RETRIES, REOFFER_WAIT, answerer_wait};
pub use input::{Command, MediaEvent, MediaSignal, RequestKind, SignalingEvent};
pub use policy::{AnswerMode, AnswerPolicy};
pub use state::{AgentState, Attached, CallPhase, Devices, MediaState, MemberState};
pub use timers::Timer;
pub use types::{
    CallType, ClientId, DeviceKind, Member, ModeratorOrder, Peer, RoomId, RoomInfo, UserId,
};
