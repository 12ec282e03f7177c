//! roomagent: the daemon that turns a small Linux board with a camera, microphone and display
//! into a meeting-room endpoint.
//!
//! The crate is shaped as a pure core with one adapter per outside system:
//!
//! * [`core`] — the call/room state machine and auto-answer policy. Sans-IO: it takes
//!   inputs (signaling events, local commands, media events, the current instant) and
//!   yields [`core::Action`]s plus its next deadline. No sockets, no clock reads.
//! * [`signaling::rtcpeer`] — the RTCPeer-compatible signaling client (HTTP login,
//!   WebSocket control socket, reconnection).
//! * [`room_server`] — a development room server speaking the same dialect, with a
//!   browser page, so a person can call the agent on a fresh machine.
//! * [`media`], [`mqtt`], [`gpio`] — GStreamer/webrtcbin, remote management, buttons and
//!   LEDs.
//! * [`daemon`] — wires the adapters to the core; `daemon::start(config, shutdown)` is what
//!   integration tests start in-process.
//! * [`systemd`] — readiness, status, watchdog, reload and stop under a service manager;
//!   `systemd::serve(config)` is what `roomagent run` calls.
#![deny(missing_docs)]
#![deny(unsafe_code)] // allowed only in `memory` (two glibc calls) and `sys` (four libc calls)

pub mod backoff;
pub mod board;
pub mod command;
pub mod config;
pub mod core;
pub mod daemon;
pub mod gpio;
pub mod handle;
pub mod health;
pub mod inventory;
pub mod logging;
pub mod media;
pub mod memory;
pub mod mqtt;
pub mod privileged;
pub mod room_server;
pub mod signaling;
pub mod sys;
pub mod systemd;
pub mod tls;
pub mod wait;
