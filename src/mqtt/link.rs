//! The task that polls rumqttc's event loop. It never waits on anything but the network:
//! connection changes and Home Assistant's restarts go out on a `watch` (latest wins),
//! commands on a bounded channel with `try_send` (a flood beyond [`COMMANDS_MAX`] waiting
//! commands is dropped and logged), and it never publishes. So the publisher, which hands
//! its messages to rumqttc's bounded request channel, and this task, which empties that
//! channel, can never wait on each other.

use rumqttc::{Event, Packet, Publish};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::{LinkStatus, Options, describe};
use crate::backoff::Reconnect;

/// Commands received but not yet taken by the publisher.
pub const COMMANDS_MAX: usize = 64;

/// What the publisher needs to know about the link, latest wins.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Signal {
    /// Connected now.
    pub connected: bool,
    /// Connections made so far (each one needs subscriptions, status, discovery, state).
    pub connects: u64,
    /// Times Home Assistant said it came online (it then needs discovery again).
    pub ha_online: u64,
}

/// A command received on a command topic, or the desired configuration (verb
/// [`DESIRED`]).
#[derive(Debug)]
pub(crate) struct Incoming {
    pub verb: String,
    pub fleet: bool,
    pub payload: Vec<u8>,
}

/// The `verb` of an [`Incoming`] that is the retained desired configuration.
pub(crate) const DESIRED: &str = "config/desired";

/// The channels from the poller to the publisher.
pub(crate) struct Channels {
    pub signal: watch::Sender<Signal>,
    pub commands: mpsc::Sender<Incoming>,
    pub status: watch::Sender<LinkStatus>,
}

/// Polls the MQTT event loop until `stop`, reconnecting with backoff.
pub(crate) async fn poll(
    opts: Options,
    mut eventloop: rumqttc::EventLoop,
    out: Channels,
    stop: CancellationToken,
) {
    let mut reconnect = Reconnect::new(opts.reconnect.0, opts.reconnect.1);
    let ha_status = opts
        .discovery_prefix
        .as_ref()
        .map(|p| format!("{p}/status"));
    loop {
        let event = tokio::select! {
            _ = stop.cancelled() => return,
            e = eventloop.poll() => e,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                info!(
                    session_present = ack.session_present,
                    "connected to the MQTT broker"
                );
                reconnect.connected();
                out.status.send_replace(LinkStatus {
                    connected: true,
                    last_error: None,
                    failed_attempts: 0,
                });
                out.signal.send_modify(|s| {
                    s.connected = true;
                    s.connects += 1;
                });
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                on_publish(&opts, ha_status.as_deref(), &out, p);
            }
            Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => return,
            Ok(_) => {}
            Err(e) => {
                let text = describe(&e);
                if reconnect.failed(&text) {
                    warn!(error = %text, broker = %format!("{}:{}", opts.host, opts.port), "MQTT connection failed; will keep retrying");
                }
                out.status.send_modify(|s| {
                    s.connected = false;
                    s.last_error = Some(text);
                    s.failed_attempts += 1;
                });
                out.signal
                    .send_if_modified(|s| std::mem::replace(&mut s.connected, false));
                if !reconnect.wait(&stop).await {
                    return;
                }
            }
        }
    }
}

fn on_publish(opts: &Options, ha_status: Option<&str>, out: &Channels, p: Publish) {
    if Some(p.topic.as_str()) == ha_status {
        if p.payload.as_ref() == b"online" {
            out.signal.send_modify(|s| s.ha_online += 1);
        }
        return;
    }
    if p.topic == opts.topics.config_desired() {
        // Retained on purpose: the configuration a dashboard wants, delivered on every
        // connection (the publisher applies it once).
        let msg = Incoming {
            verb: DESIRED.to_string(),
            fleet: false,
            payload: p.payload.to_vec(),
        };
        if out.commands.try_send(msg).is_err() {
            warn!("too many MQTT commands waiting; dropped the desired configuration");
        }
        return;
    }
    let Some((verb, fleet)) = opts.topics.parse_command(&p.topic) else {
        debug!(topic = %p.topic, "ignoring a message on an unexpected topic");
        return;
    };
    if p.retain {
        // A retained command would run again on every (re)subscription: never act on one.
        debug!(topic = %p.topic, "ignoring a retained command");
        return;
    }
    let msg = Incoming {
        verb: verb.to_string(),
        fleet,
        payload: p.payload.to_vec(),
    };
    if let Err(mpsc::error::TrySendError::Full(_)) = out.commands.try_send(msg) {
        warn!(topic = %p.topic, waiting = COMMANDS_MAX, "too many MQTT commands waiting; dropped one");
    }
}
