//! The stand-in backend of a file that names no signaling server yet (see
//! `config::setup`): it reports "not configured: edit <file>" once, as a disconnection the
//! core shows as its signaling error, then drops whatever the core sends until shutdown. It
//! opens no connection and no socket.

use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::{Link, channels};
use crate::core::SignalingEvent;

/// Starts the stand-in; `reason` is the status line to report.
pub fn start(reason: String, shutdown: CancellationToken) -> Link {
    let (ends, outbox, events) = channels();
    let task = async move {
        warn!("{reason}: no signaling server is set, so this device cannot be called yet");
        let _ = ends
            .events
            .send(SignalingEvent::Disconnected { reason })
            .await;
        let mut outgoing = ends.outgoing;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                out = outgoing.recv() => match out {
                    Some(out) => debug!(?out, "not configured: nothing to send it over"),
                    None => return,
                },
            }
        }
    };
    Link::new(outbox, events, task)
}
