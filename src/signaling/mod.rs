//! Signaling backends: adapters between a signaling server's wire protocol and the core's
//! [`crate::core::SignalingEvent`] / [`crate::core::Outgoing`].

pub mod rtcpeer;
