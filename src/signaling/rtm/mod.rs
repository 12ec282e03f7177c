//! The RTM backend: the device as a user of an RTM project, over FPNN on TCP.
//!
//! An app built on RTM puts the room appliance into its RTC rooms from its business back end
//! (invites, forced pulls, kicks, admin commands) and may run it by message. The backend:
//!
//! * finds a gate (a fixed `gate`, or the dispatch service's `which`), opens FPNN over TCP,
//!   optionally encrypted with the gate's public key ([`fpnn::crypto`]), and logs in with
//!   `auth {pid, uid, token, version}`; the token file is read again on every attempt, so a
//!   freshly provisioned token is picked up without a restart;
//! * keeps the link alive with FPNN's `*ping`, answers the gate's own `ping`, and calls the
//!   gate dead when an answer misses its deadline or nothing arrives for too long;
//! * translates RTC-room pushes into core events and the core's requests into quests
//!   ([`session::Session`], sans-IO and unit-tested on virtual time);
//! * reconnects forever; after each login the core re-enters the room it was in.
//!
//! An RTM call has no per-participant WebRTC sessions
//! ([`crate::core::CoreConfig::per_participant_media`] is off): its media travels over a
//! second FPNN connection, to the RTC gate ([`rtc`]), fed by the media engine through a
//! [`Relay`], over TCP or FPNN's reliable UDP (`rtc_transport`). The RTM gate's session says
//! which room that connection serves
//! ([`session::Session::rtc_target`]); the connection lives on across RTM gate reconnects.

mod connection;
pub mod fpnn;
pub mod rtc;
pub mod session;
mod wire;

use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info};

use super::{Ends, Link};
use crate::backoff::Reconnect;
use crate::config::{Config, PullPolicy, RtmCipherMode, RtmCurve, SecretSource};
use crate::core::SignalingEvent;
use crate::media::relay::Relay;

/// Everything the backend needs. The token is not read here: it is read on every login.
#[derive(Debug, Clone)]
pub struct Options {
    /// Project id.
    pub pid: i64,
    /// The device's uid.
    pub uid: i64,
    /// Where the token comes from.
    pub token: SecretSource,
    /// How to find the gate.
    pub gate: GateAddress,
    /// Encrypt the connection.
    pub encryption: Option<Encryption>,
    /// What a forced pull does.
    pub pull: PullPolicy,
    /// Messages of this type carry commands.
    pub command_mtype: Option<i64>,
    /// `version` in `auth`.
    pub version: String,
    /// `*ping` after this long without sending anything.
    pub keepalive: Duration,
    /// Deadline for every answer (and for connecting).
    pub request_timeout: Duration,
    /// First reconnect delay.
    pub reconnect_min: Duration,
    /// Longest reconnect delay.
    pub reconnect_max: Duration,
    /// A configured RTC gate `host:port` (else the RTM gate names one).
    pub rtc_gate: Option<String>,
    /// TCP, FPNN's reliable UDP, or UDP falling back to TCP.
    pub rtc_transport: crate::config::RtcTransport,
    /// Over UDP, whether video pieces are resent.
    pub udp_video: crate::config::UdpVideo,
    /// Encrypt the RTC gate connection (its own key).
    pub rtc_encryption: Option<Encryption>,
    /// Members whose video is subscribed to, at most.
    pub video_subscriptions: usize,
    /// `captureLevel` of the video sent.
    pub capture_level: i64,
}

/// Where the RTM gate is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateAddress {
    /// A fixed `host:port`.
    Fixed(String),
    /// Ask this dispatch service (`host:port`) with `which`.
    Dispatch(String),
}

/// The encrypted connection's settings, with the key already read.
#[derive(Debug, Clone)]
pub struct Encryption {
    /// The gate's public key.
    pub server_key: fpnn::ServerKey,
    /// AES key size.
    pub bits: fpnn::KeyBits,
    /// Stream or package mode.
    pub mode: fpnn::Mode,
}

/// A problem turning the configuration into [`Options`].
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum OptionsError {
    /// Neither `gate` nor `dispatch`.
    #[error("signaling.rtm: set gate or dispatch")]
    NoGate,
    /// The public key file could not be read or parsed.
    #[error("signaling.rtm.{table}.public_key_file {path}: {problem}")]
    PublicKey {
        /// `encryption` or `rtc_encryption`.
        table: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

impl Options {
    /// Builds options from a validated configuration, reading the gate's public key.
    pub fn from_config(c: &Config) -> Result<Options, OptionsError> {
        let s = &c.signaling;
        let r = &s.rtm;
        let gate = match (&r.gate, &r.dispatch) {
            (Some(g), _) => GateAddress::Fixed(g.clone()),
            (None, Some(d)) => GateAddress::Dispatch(d.clone()),
            (None, None) => return Err(OptionsError::NoGate),
        };
        let encryption = r
            .encryption
            .as_ref()
            .map(|e| read_encryption("encryption", e))
            .transpose()?;
        let rtc_encryption = r
            .rtc_encryption
            .as_ref()
            .map(|e| read_encryption("rtc_encryption", e))
            .transpose()?;
        Ok(Options {
            pid: r.pid,
            uid: r.uid,
            token: r.token_source(),
            gate,
            encryption,
            pull: r.pull,
            command_mtype: r.command_mtype,
            version: r.version.clone(),
            keepalive: Duration::from_secs(s.keepalive_s),
            request_timeout: Duration::from_secs(s.request_timeout_s),
            reconnect_min: Duration::from_millis(s.reconnect_min_ms),
            reconnect_max: Duration::from_millis(s.reconnect_max_ms),
            rtc_gate: r.rtc_gate.clone(),
            rtc_transport: r.rtc_transport,
            udp_video: r.udp_video,
            rtc_encryption,
            video_subscriptions: r.video_subscriptions as usize,
            capture_level: rtc::capture_level(c.media.width, c.media.height, c.media.framerate),
        })
    }
}

fn read_encryption(
    table: &'static str,
    e: &crate::config::RtmEncryption,
) -> Result<Encryption, OptionsError> {
    let problem = |problem: String| OptionsError::PublicKey {
        table,
        path: e.public_key_file.clone(),
        problem,
    };
    let bytes = std::fs::read(&e.public_key_file).map_err(|err| problem(err.to_string()))?;
    let server_key = match std::str::from_utf8(&bytes) {
        Ok(text) if text.contains("-----BEGIN") => fpnn::ServerKey::from_pem(text),
        _ => {
            let curve = match e.curve {
                RtmCurve::Secp256k1 => fpnn::Curve::Secp256k1,
                RtmCurve::Secp256r1 => fpnn::Curve::Secp256r1,
            };
            fpnn::ServerKey::from_raw(curve, &bytes)
        }
    }
    .map_err(|err| problem(err.to_string()))?;
    Ok(Encryption {
        server_key,
        bits: if e.bits == 256 {
            fpnn::KeyBits::Aes256
        } else {
            fpnn::KeyBits::Aes128
        },
        mode: match e.mode {
            RtmCipherMode::Stream => fpnn::Mode::Stream,
            RtmCipherMode::Package => fpnn::Mode::Package,
        },
    })
}

/// Starts the backend. Spawn the link's task; it ends when `shutdown` is cancelled, after
/// saying `bye` to the gate. With a `relay` (media on), calls carry media over the RTC gate.
pub fn start(opts: Options, relay: Option<Relay>, shutdown: CancellationToken) -> Link {
    let (ends, outbox, events) = super::channels();
    Link::new(outbox, events, run(opts, relay, ends, shutdown))
}

/// The RTC gate's side of the backend: a target to set, and the relay to tell of members
/// leaving.
pub(super) struct Media {
    target: tokio::sync::watch::Sender<Option<rtc::Target>>,
    relay: Relay,
}

impl Media {
    /// Points the RTC gate connection at where the session says the room's media goes.
    fn follow(&self, session: &session::Session) {
        let next = session.rtc_target();
        self.target.send_if_modified(|current| {
            if *current == next {
                return false;
            }
            // A room still being (re-)entered keeps its connection: a new token is only
            // needed for the next connection, and the RTM gate's reconnect does not end the
            // media.
            if next.is_none()
                && session.room().is_some()
                && current.as_ref().map(|c| c.rid) == session.room()
            {
                return false;
            }
            *current = next;
            true
        });
    }
}

async fn run(opts: Options, relay: Option<Relay>, mut ends: Ends, shutdown: CancellationToken) {
    let mut reconnect = Reconnect::new(opts.reconnect_min, opts.reconnect_max);
    let mut session = session::Session::new(session::Settings::from(&opts));
    let media = relay.map(|relay| {
        let (target, rx) = tokio::sync::watch::channel(None);
        let settings = rtc::Settings {
            pid: opts.pid,
            uid: opts.uid,
            request_timeout: opts.request_timeout,
            reconnect_min: opts.reconnect_min,
            reconnect_max: opts.reconnect_max,
            capture_level: opts.capture_level,
            transport: opts.rtc_transport,
            udp_video: opts.udp_video,
            encryption: opts.rtc_encryption.clone(),
        };
        tokio::spawn(rtc::run(
            settings,
            relay.clone(),
            rx,
            ends.events.clone(),
            shutdown.clone(),
        ));
        Media { target, relay }
    });
    loop {
        let mut kicked_pause = Duration::ZERO;
        let attempt = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = connection::connect(&opts) => r,
        };
        let reason = match attempt {
            Ok(conn) => {
                while let Ok(stale) = ends.outgoing.try_recv() {
                    debug!(?stale, "dropping a message queued while disconnected");
                }
                match conn
                    .run(
                        &mut session,
                        &mut ends,
                        &shutdown,
                        &mut reconnect,
                        media.as_ref(),
                    )
                    .await
                {
                    connection::End::Shutdown => return,
                    connection::End::Lost { reason, kicked } => {
                        // A kickout or a refused login took the room with it: its media
                        // connection ends now, not at the next login. (A plain loss keeps
                        // the room, and the media flows on meanwhile.)
                        if let Some(m) = &media {
                            m.follow(&session);
                        }
                        if kicked {
                            // Coming straight back would throw the other login out in turn.
                            kicked_pause = opts.reconnect_max;
                        }
                        reason
                    }
                }
            }
            Err(e) => e.to_string(),
        };
        if reconnect.failed(&reason) {
            error!(%reason, "RTM gate: not connected; will keep retrying");
        } else {
            debug!(%reason, attempt = reconnect.attempts(), "RTM gate: still not connected");
        }
        if ends
            .events
            .send(SignalingEvent::Disconnected { reason })
            .await
            .is_err()
        {
            return;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(kicked_pause) => {}
        }
        if !reconnect.wait(&shutdown).await {
            info!("RTM backend stopped");
            return;
        }
    }
}
