//! The engine task: owns the call pipeline and the sessions, turns the core's
//! [`MediaCommand`]s into pipeline changes and GStreamer's callbacks (posted as [`Internal`]
//! messages) into [`MediaEvent`]s. Offer/answer and ICE are in [`negotiation`].

mod negotiation;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::Ordering;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_webrtc as gst_webrtc;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::pipeline::{self, CallPipeline};
use super::session::Session;
use super::startup::Ready;
use super::{MediaError, MediaHandle, MediaOptions, MediaStats, cert, devices, profile, stats};
use crate::core::{CallType, ClientId, MediaCommand, MediaEvent, SessionRole};
pub(crate) use negotiation::Description;

/// Messages from GStreamer threads to the engine task.
#[derive(Debug)]
pub(crate) enum Internal {
    LocalDescription {
        peer: ClientId,
        epoch: u64,
        sdp: String,
        kind: Description,
    },
    RemoteDescriptionSet {
        peer: ClientId,
        epoch: u64,
    },
    Candidate {
        peer: ClientId,
        epoch: u64,
        mline: u32,
        candidate: String,
    },
    State {
        peer: ClientId,
        epoch: u64,
        state: gst_webrtc::WebRTCPeerConnectionState,
    },
    FirstFrame {
        peer: ClientId,
        epoch: u64,
    },
    Stats {
        peer: ClientId,
        epoch: u64,
        stats: gst::Structure,
    },
    Failed {
        peer: ClientId,
        epoch: u64,
        reason: String,
    },
}

/// The engine task for what start-up settled, with the handle that commands it and the
/// receiver of its events. The task runs until `shutdown` or until every handle is dropped.
pub(super) fn task(
    opts: MediaOptions,
    ready: Ready,
    shutdown: CancellationToken,
) -> (
    MediaHandle,
    mpsc::UnboundedReceiver<MediaEvent>,
    impl Future<Output = ()> + Send + 'static,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let (int_tx, int_rx) = mpsc::unbounded_channel();
    let (stats_tx, stats_rx) = watch::channel(MediaStats::default());
    let engine = Engine {
        opts,
        profile: ready.profile,
        found: ready.found,
        cert: ready.cert,
        events: ev_tx,
        internal: int_tx,
        call: None,
        sessions: BTreeMap::new(),
        awaiting_offer: HashMap::new(),
        next_gen: 1,
        mic_muted: false,
        camera_on: true,
        sharing: false,
        volume: 80,
        stats: stats::Collector::default(),
        stats_tx,
    };
    let handle = MediaHandle {
        tx,
        stats: stats_rx,
        info: ready.info,
    };
    (handle, ev_rx, engine.run(rx, int_rx, shutdown))
}

/// The engine's state: the call pipeline while a call runs, one session per participant, and
/// the local settings (mute, camera, sharing, volume) that a new call pipeline starts with.
struct Engine {
    opts: MediaOptions,
    profile: profile::Profile,
    found: devices::Discovered,
    cert: cert::DtlsCertificate,
    events: mpsc::UnboundedSender<MediaEvent>,
    /// Handed to every GStreamer callback, which reports here instead of touching the engine.
    internal: mpsc::UnboundedSender<Internal>,
    call: Option<CallPipeline>,
    sessions: BTreeMap<ClientId, Session>,
    /// Answerer sessions wait for the offer to learn its payload types.
    awaiting_offer: HashMap<ClientId, CallType>,
    /// The epoch the next session gets.
    next_gen: u64,
    mic_muted: bool,
    camera_on: bool,
    sharing: bool,
    volume: u8,
    stats: stats::Collector,
    stats_tx: watch::Sender<MediaStats>,
}

impl Engine {
    async fn run(
        mut self,
        mut cmds: mpsc::UnboundedReceiver<MediaCommand>,
        mut internal: mpsc::UnboundedReceiver<Internal>,
        shutdown: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(self.opts.stats_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut bus: Option<gst::bus::BusStream> = None;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                cmd = cmds.recv() => match cmd {
                    Some(cmd) => {
                        let had_call = self.call.is_some();
                        self.command(cmd).await;
                        if self.call.is_some() != had_call {
                            bus = self.call.as_ref().and_then(|c| c.pipeline.bus()).map(|b| b.stream());
                        }
                    }
                    None => break,
                },
                Some(msg) = internal.recv() => self.internal(msg),
                Some(msg) = crate::wait::next_or_pending(&mut bus) => self.bus(&msg),
                _ = tick.tick() => self.request_stats(),
            }
        }
        self.stop_all().await;
    }

    fn emit(&self, ev: MediaEvent) {
        let _ = self.events.send(ev);
    }

    fn ensure_call(&mut self) -> Result<(), MediaError> {
        if self.call.is_some() {
            return Ok(());
        }
        let call = pipeline::build(&self.opts, &self.profile, &self.found)?;
        call.set_mic_muted(self.mic_muted);
        call.set_volume(self.volume);
        if let Err(e) = call.set_video_input(self.camera_on, self.sharing) {
            warn!(error = %e, "cannot select the video input");
        }
        call.pipeline.set_state(gst::State::Playing).map_err(|_| {
            MediaError::Invalid("the call pipeline did not start (see the previous error)".into())
        })?;
        info!(profile = %self.profile.name, "call media started");
        self.call = Some(call);
        Ok(())
    }

    async fn command(&mut self, cmd: MediaCommand) {
        debug!(?cmd, "media command");
        match cmd {
            MediaCommand::StartSession {
                peer,
                role,
                call_type,
            } => match role {
                SessionRole::Offerer => self.offer(peer, call_type),
                SessionRole::Answerer => self.await_offer(peer, call_type).await,
            },
            MediaCommand::RemoteSignal { peer, signal } => self.remote_signal(peer, signal).await,
            MediaCommand::StopSession { peer } => {
                self.awaiting_offer.remove(&peer);
                self.close_session(peer).await;
            }
            MediaCommand::StopAll => self.stop_all().await,
            MediaCommand::SetMicMuted(m) => {
                self.mic_muted = m;
                if let Some(c) = &self.call {
                    c.set_mic_muted(m);
                }
            }
            MediaCommand::SetCameraOn(on) => {
                self.camera_on = on;
                self.apply_video_input();
            }
            MediaCommand::SetSharing(on) => {
                self.sharing = on;
                self.apply_video_input();
            }
            MediaCommand::SetVolume(v) => {
                self.volume = v;
                if let Some(c) = &self.call {
                    c.set_volume(v);
                }
            }
        }
    }

    fn apply_video_input(&mut self) {
        if let Some(c) = &self.call
            && let Err(e) = c.set_video_input(self.camera_on, self.sharing)
        {
            self.sharing = false;
            let _ = c.set_video_input(self.camera_on, false);
            self.emit(MediaEvent::EngineError {
                message: e.to_string(),
            });
        }
    }

    /// Reports a session's failure to the core, once per session: one broken connection
    /// raises several errors (DTLS, ICE, the elements behind them), and the core restarts a
    /// session it offered on the first.
    fn fail(&mut self, peer: ClientId, reason: String) {
        if let Some(s) = self.sessions.get_mut(&peer) {
            if s.failed {
                debug!(%peer, %reason, "media session already failed");
                return;
            }
            s.failed = true;
        }
        warn!(%peer, %reason, "media session failed");
        self.emit(MediaEvent::SessionFailed { peer, reason });
    }

    /// The session with `peer`, if it is still the one of that epoch.
    fn session(&self, peer: ClientId, epoch: u64) -> Option<&Session> {
        self.sessions.get(&peer).filter(|s| s.epoch == epoch)
    }

    /// [`Engine::session`], to change.
    fn session_mut(&mut self, peer: ClientId, epoch: u64) -> Option<&mut Session> {
        self.sessions.get_mut(&peer).filter(|s| s.epoch == epoch)
    }

    /// Handles what a GStreamer callback reported, if its session is still current.
    fn internal(&mut self, msg: Internal) {
        match msg {
            Internal::LocalDescription {
                peer,
                epoch,
                sdp,
                kind,
            } => self.local_description(peer, epoch, sdp, kind),
            Internal::RemoteDescriptionSet { peer, epoch } => {
                self.remote_description_set(peer, epoch)
            }
            Internal::Candidate {
                peer,
                epoch,
                mline,
                candidate,
            } => self.local_candidate(peer, epoch, mline, candidate),
            Internal::State { peer, epoch, state } => self.connection_state(peer, epoch, state),
            Internal::FirstFrame { peer, epoch } => {
                if self.session(peer, epoch).is_some() {
                    info!(%peer, "first remote video frame decoded");
                    self.emit(MediaEvent::RemoteVideo { peer });
                }
            }
            Internal::Stats { peer, epoch, stats } => self.session_stats(peer, epoch, &stats),
            Internal::Failed {
                peer,
                epoch,
                reason,
            } => {
                if self.session(peer, epoch).is_some() {
                    self.fail(peer, reason);
                }
            }
        }
    }

    /// A session connected (it starts sending, from a key frame) or failed.
    fn connection_state(
        &mut self,
        peer: ClientId,
        epoch: u64,
        state: gst_webrtc::WebRTCPeerConnectionState,
    ) {
        let Some(s) = self.session_mut(peer, epoch) else {
            return;
        };
        debug!(%peer, ?state, "peer connection state");
        match state {
            gst_webrtc::WebRTCPeerConnectionState::Connected if !s.connected => {
                s.connected = true;
                s.open();
                s.request_key_frame();
                self.emit(MediaEvent::SessionConnected { peer });
            }
            gst_webrtc::WebRTCPeerConnectionState::Failed => {
                self.fail(peer, "ICE/DTLS connection failed".into());
            }
            _ => {}
        }
    }

    /// Publishes a session's new statistics, with the shared encoder's frame counts.
    fn session_stats(&mut self, peer: ClientId, epoch: u64, stats: &gst::Structure) {
        let Some(s) = self.sessions.get(&peer).filter(|s| s.epoch == epoch) else {
            return;
        };
        let mut snapshot = self.stats.update(s, stats);
        if let Some(c) = &self.call {
            snapshot.frames_to_encoder = c.encoder_counts.0.load(Ordering::Relaxed);
            snapshot.frames_encoded = c.encoder_counts.1.load(Ordering::Relaxed);
        }
        self.stats_tx.send_replace(snapshot);
    }

    fn bus(&mut self, msg: &gst::Message) {
        if let gst::MessageView::Error(err) = msg.view() {
            let src = msg
                .src()
                .map(|s| s.path_string().to_string())
                .unwrap_or_default();
            let text = format!("{src}: {}", err.error());
            // An error inside one session's elements fails that session only.
            let owner = self
                .sessions
                .values()
                .find(|s| src.contains(&format!("webrtc-{}-{}", s.peer, s.epoch)))
                .map(|s| s.peer);
            match owner {
                Some(peer) => self.fail(peer, text),
                None => {
                    warn!(error = %text, debug = ?err.debug(), "media pipeline error");
                    self.emit(MediaEvent::EngineError { message: text });
                }
            }
        }
    }

    fn request_stats(&self) {
        for s in self.sessions.values() {
            let (internal, peer, epoch) = (self.internal.clone(), s.peer, s.epoch);
            let promise = gst::Promise::with_change_func(move |reply| {
                if let Ok(Some(stats)) = reply {
                    let _ = internal.send(Internal::Stats {
                        peer,
                        epoch,
                        stats: stats.to_owned(),
                    });
                }
            });
            s.webrtc
                .emit_by_name::<()>("get-stats", &[&None::<gst::Pad>, &promise]);
        }
    }

    async fn close_session(&mut self, peer: ClientId) {
        let Some(session) = self.sessions.remove(&peer) else {
            return;
        };
        self.stats.forget(peer);
        let Some(call) = &self.call else { return };
        let pipeline = call.pipeline.clone();
        let remote = call.remote.clone();
        let _ = tokio::task::spawn_blocking(move || session.close(&pipeline, &remote)).await;
    }

    async fn stop_all(&mut self) {
        // The whole pipeline stops as one (sinks first, as GStreamer orders it); sessions
        // need no piecemeal removal.
        for (peer, s) in std::mem::take(&mut self.sessions) {
            self.stats.forget(peer);
            s.abandon();
        }
        self.awaiting_offer.clear();
        if let Some(call) = self.call.take() {
            let _ = tokio::task::spawn_blocking(move || drop(call)).await;
            info!("call media stopped");
        }
        self.stats_tx.send_replace(MediaStats::default());
    }
}
