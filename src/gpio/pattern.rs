//! What the LEDs show, derived only from the agent's reported state: the LEDs never keep an
//! idea of the state of their own. The pattern table itself is configuration
//! ([`crate::config::led`]).

pub use crate::config::led::{Pattern, PatternTable, Patterns, Situation};
use crate::core::{AgentState, CallPhase};

/// Where the device is, as the status LED tells it.
pub fn situation(s: &AgentState) -> Situation {
    match s.call {
        CallPhase::Ringing => Situation::Ringing,
        CallPhase::InCall => Situation::InCall,
        CallPhase::Answering | CallPhase::Dialing | CallPhase::Connecting => Situation::Connecting,
        _ if !s.registered && s.signaling_error.is_some() => Situation::Error,
        _ if !s.registered => Situation::Connecting,
        _ => Situation::Idle,
    }
}
