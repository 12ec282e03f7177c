//! Signaling backends: adapters between a signaling system's wire protocol and the core's
//! [`SignalingEvent`] (up) and [`Outgoing`] (down).
//!
//! # The seam
//!
//! Every backend is started the same way and hands back a [`Link`]: an [`Outbox`] the daemon
//! puts the core's [`Outgoing`] messages into, a receiver of [`SignalingEvent`]s already
//! translated from the wire, and one task future that owns the connection, reconnects on its
//! own (see [`crate::backoff::Reconnect`]) and ends when the shutdown token is cancelled. The
//! daemon never names a backend beyond [`start`].
//!
//! A backend must:
//! * emit [`SignalingEvent::Registered`] after every (re)login, so the core restores what
//!   the server forgot (it re-enters the room itself);
//! * emit [`SignalingEvent::Disconnected`] when the link drops, with a reason a person reads;
//! * carry out what it can of each [`Outgoing`] and ignore (log at debug) what its system has
//!   no word for — the core speaks of what a room means, not of one dialect.
//!
//! # Adding a backend
//!
//! 1. a folder `src/signaling/<name>/` with `Options::from_config` and
//!    `start(options, shutdown) -> Link`;
//! 2. a variant in [`crate::config::Backend`], its section in `config.example.toml` and its
//!    checks in `config::validate`;
//! 3. one arm in [`start`] below.

pub mod rtcpeer;
pub mod rtm;
mod unconfigured;

use std::future::Future;
use std::pin::Pin;

use thiserror::Error;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::config::{Backend, Config};
use crate::core::{Outgoing, SignalingEvent};

/// How many messages wait in each direction before the sender is refused.
const QUEUE: usize = 256;

/// A running backend, as the daemon sees it.
pub struct Link {
    /// Where the core's messages go.
    pub outbox: Outbox,
    /// What the backend reports, in order.
    pub events: mpsc::Receiver<SignalingEvent>,
    /// The backend's task: spawn it. It ends after `shutdown` is cancelled.
    pub task: Pin<Box<dyn Future<Output = ()> + Send + 'static>>,
}

/// Sends the core's messages to a backend. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Outgoing>,
}

impl Outbox {
    /// Queues a message. Returns `false` if the queue is full or the backend ended; the
    /// message is dropped (the core restores state after reconnects, so nothing waits on it).
    pub fn send(&self, out: Outgoing) -> bool {
        match self.tx.try_send(out) {
            Ok(()) => true,
            Err(e) => {
                warn!(error = %e, "signaling queue refused a message");
                false
            }
        }
    }
}

/// The backend's ends of a [`Link`]'s channels.
pub struct Ends {
    /// The core's messages to carry out.
    pub outgoing: mpsc::Receiver<Outgoing>,
    /// Where translated events go.
    pub events: mpsc::Sender<SignalingEvent>,
}

/// Makes the channels of a link: the backend keeps [`Ends`] and builds its task around them,
/// then calls [`Link::new`].
pub fn channels() -> (Ends, Outbox, mpsc::Receiver<SignalingEvent>) {
    let (tx, outgoing) = mpsc::channel(QUEUE);
    let (events, ev_rx) = mpsc::channel(QUEUE);
    (Ends { outgoing, events }, Outbox { tx }, ev_rx)
}

impl Link {
    /// Bundles a backend's outbox, event receiver and task.
    pub fn new(
        outbox: Outbox,
        events: mpsc::Receiver<SignalingEvent>,
        task: impl Future<Output = ()> + Send + 'static,
    ) -> Link {
        Link {
            outbox,
            events,
            task: Box::pin(task),
        }
    }
}

/// The configured backend could not be started.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StartError {
    /// RTCPeer settings.
    #[error("RTCPeer signaling: {0}")]
    RtcPeer(#[from] rtcpeer::OptionsError),
    /// RTM settings.
    #[error("RTM signaling: {0}")]
    Rtm(#[from] rtm::OptionsError),
}

/// Starts the backend `[signaling] backend` names (or, for a file that names no server yet,
/// a stand-in that only says so). Spawn the link's task. `relay` is for a backend that
/// carries the call's media itself ([`carries_media`]).
pub fn start(
    config: &Config,
    relay: Option<crate::media::relay::Relay>,
    shutdown: CancellationToken,
) -> Result<Link, StartError> {
    if config.not_configured {
        let reason = crate::config::not_configured_status(config.source.as_deref());
        return Ok(unconfigured::start(reason, shutdown));
    }
    Ok(match config.signaling.backend {
        Backend::RtcPeer => rtcpeer::start(rtcpeer::Options::from_config(config)?, shutdown),
        Backend::Rtm => rtm::start(rtm::Options::from_config(config)?, relay, shutdown),
    })
}

/// Whether the configured backend carries the call's media itself (RTM's RTC gate) rather
/// than WebRTC sessions: then it and the media engine share a relay.
pub fn carries_media(config: &Config) -> bool {
    !config.not_configured && config.signaling.backend == Backend::Rtm
}
