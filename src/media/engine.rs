//! The engine task: owns the call pipeline and the sessions, turns the core's
//! [`MediaCommand`]s into pipeline changes and GStreamer's callbacks (posted as [`Internal`]
//! messages) into [`MediaEvent`]s.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;

use futures_util::StreamExt;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_sdp as gst_sdp;
use gstreamer_webrtc as gst_webrtc;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::pipeline::{self, CallPipeline};
use super::session::{PayloadTypes, Session, Spec};
use super::startup::Ready;
use super::{
    MediaError, MediaHandle, MediaOptions, MediaStats, cert, devices, profile, sdp, stats,
};
use crate::core::{CallType, ClientId, MediaCommand, MediaEvent, MediaSignal, SessionRole};

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

/// The two descriptions the engine asks webrtcbin for: what differs between making an offer
/// and making an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Description {
    /// We offer (we start the session).
    Offer,
    /// We answer the peer's offer.
    Answer,
}

impl Description {
    /// webrtcbin's action signal that creates it.
    fn action(self) -> &'static str {
        match self {
            Description::Offer => "create-offer",
            Description::Answer => "create-answer",
        }
    }

    /// The field of webrtcbin's reply that holds it.
    fn field(self) -> &'static str {
        match self {
            Description::Offer => "offer",
            Description::Answer => "answer",
        }
    }

    /// Why the session fails when webrtcbin gives none.
    fn failure(self) -> &'static str {
        match self {
            Description::Offer => "webrtcbin could not create an offer",
            Description::Answer => "webrtcbin could not create an answer (no common codec?)",
        }
    }

    /// How webrtcbin types it when it is set as the local description.
    fn sdp_type(self) -> gst_webrtc::WebRTCSDPType {
        match self {
            Description::Offer => gst_webrtc::WebRTCSDPType::Offer,
            Description::Answer => gst_webrtc::WebRTCSDPType::Answer,
        }
    }

    /// The signal that carries it to the peer.
    fn signal(self, sdp: String) -> MediaSignal {
        match self {
            Description::Offer => MediaSignal::Offer { sdp },
            Description::Answer => MediaSignal::Answer { sdp },
        }
    }
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

struct Engine {
    opts: MediaOptions,
    profile: profile::Profile,
    found: devices::Discovered,
    cert: cert::DtlsCertificate,
    events: mpsc::UnboundedSender<MediaEvent>,
    internal: mpsc::UnboundedSender<Internal>,
    call: Option<CallPipeline>,
    sessions: BTreeMap<ClientId, Session>,
    /// Answerer sessions wait for the offer to learn its payload types.
    awaiting_offer: HashMap<ClientId, CallType>,
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
                Some(msg) = next_bus(&mut bus) => self.bus(&msg),
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
                SessionRole::Offerer => {
                    match self.start_session(peer, call_type, PayloadTypes::OFFER) {
                        Ok(epoch) => self.create_description(peer, epoch, Description::Offer),
                        Err(e) => self.fail(peer, e.to_string()),
                    }
                }
                SessionRole::Answerer => {
                    self.close_session(peer).await;
                    self.awaiting_offer.insert(peer, call_type);
                    if let Err(e) = self.ensure_call() {
                        self.fail(peer, e.to_string());
                    }
                }
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

    fn start_session(
        &mut self,
        peer: ClientId,
        call_type: CallType,
        pts: PayloadTypes,
    ) -> Result<u64, MediaError> {
        self.ensure_call()?;
        let epoch = self.next_gen;
        self.next_gen += 1;
        let call = self.call.as_ref().expect("call pipeline exists");
        let session = Session::create(
            call,
            Spec {
                peer,
                epoch,
                call_type,
                pts,
                ice: &self.opts.ice,
                cert_pem: &self.cert.pem,
                internal: self.internal.clone(),
            },
        )?;
        self.sessions.insert(peer, session);
        Ok(epoch)
    }

    fn session(&self, peer: ClientId, epoch: u64) -> Option<&Session> {
        self.sessions.get(&peer).filter(|s| s.epoch == epoch)
    }

    /// Asks the session's webrtcbin for a local description; it comes back as
    /// [`Internal::LocalDescription`], or [`Internal::Failed`] when webrtcbin gives none.
    fn create_description(&self, peer: ClientId, epoch: u64, kind: Description) {
        let Some(s) = self.session(peer, epoch) else {
            return;
        };
        let internal = self.internal.clone();
        let promise = gst::Promise::with_change_func(move |reply| {
            let sdp = reply
                .ok()
                .flatten()
                .and_then(|r| {
                    r.get::<gst_webrtc::WebRTCSessionDescription>(kind.field())
                        .ok()
                })
                .and_then(|d| d.sdp().as_text().ok());
            let msg = match sdp {
                Some(sdp) => Internal::LocalDescription {
                    peer,
                    epoch,
                    sdp,
                    kind,
                },
                None => Internal::Failed {
                    peer,
                    epoch,
                    reason: kind.failure().into(),
                },
            };
            let _ = internal.send(msg);
        });
        s.webrtc
            .emit_by_name::<()>(kind.action(), &[&None::<gst::Structure>, &promise]);
    }

    async fn remote_signal(&mut self, peer: ClientId, signal: MediaSignal) {
        match signal {
            MediaSignal::Offer { sdp } => {
                let call_type = self.awaiting_offer.remove(&peer).unwrap_or(CallType::Video);
                self.close_session(peer).await;
                let sections = sdp::sections(&sdp);
                let audio = sections.iter().find(|s| s.kind == "audio");
                let video = sections.iter().find(|s| s.kind == "video");
                let pts = PayloadTypes {
                    opus: audio.and_then(|s| sdp::pick(&s.codecs, "OPUS")),
                    h264: video.and_then(|s| sdp::pick_h264(&s.codecs)),
                    vp8: video.and_then(|s| sdp::pick(&s.codecs, "VP8")),
                };
                if let Err(e) = self.start_session(peer, call_type, pts) {
                    self.fail(peer, e.to_string());
                    return;
                }
                let Some(s) = self.sessions.get(&peer) else {
                    return;
                };
                let Ok(msg) = gst_sdp::SDPMessage::parse_buffer(sdp.as_bytes()) else {
                    self.fail(peer, "the offer is not valid SDP".into());
                    return;
                };
                let desc = gst_webrtc::WebRTCSessionDescription::new(
                    gst_webrtc::WebRTCSDPType::Offer,
                    msg,
                );
                let (internal, epoch) = (self.internal.clone(), s.epoch);
                let promise = gst::Promise::with_change_func(move |reply| {
                    let failed = matches!(&reply, Ok(Some(r)) if r.has_field("error"));
                    let msg = if failed {
                        Internal::Failed {
                            peer,
                            epoch,
                            reason: "webrtcbin refused the offer".into(),
                        }
                    } else {
                        Internal::RemoteDescriptionSet { peer, epoch }
                    };
                    let _ = internal.send(msg);
                });
                s.webrtc
                    .emit_by_name::<()>("set-remote-description", &[&desc, &promise]);
            }
            MediaSignal::Answer { sdp } => {
                let Some(s) = self.sessions.get_mut(&peer) else {
                    return;
                };
                let Ok(msg) = gst_sdp::SDPMessage::parse_buffer(sdp.as_bytes()) else {
                    let reason = "the answer is not valid SDP".to_string();
                    self.fail(peer, reason);
                    return;
                };
                let desc = gst_webrtc::WebRTCSessionDescription::new(
                    gst_webrtc::WebRTCSDPType::Answer,
                    msg,
                );
                s.webrtc
                    .emit_by_name::<()>("set-remote-description", &[&desc, &None::<gst::Promise>]);
                s.remote_set = true;
                for (mline, c) in std::mem::take(&mut s.pending) {
                    s.webrtc
                        .emit_by_name::<()>("add-ice-candidate", &[&mline, &c]);
                }
            }
            MediaSignal::Candidate {
                candidate,
                sdp_mline_index,
                ..
            } => {
                let Some(s) = self.sessions.get_mut(&peer) else {
                    return;
                };
                if candidate.is_empty() {
                    return;
                }
                let candidate = candidate
                    .strip_prefix("a=")
                    .unwrap_or(&candidate)
                    .to_string();
                if s.remote_set {
                    s.webrtc
                        .emit_by_name::<()>("add-ice-candidate", &[&sdp_mline_index, &candidate]);
                } else {
                    s.pending.push((sdp_mline_index, candidate));
                }
            }
            MediaSignal::Bye => self.close_session(peer).await,
        }
    }

    fn internal(&mut self, msg: Internal) {
        match msg {
            Internal::LocalDescription {
                peer,
                epoch,
                sdp,
                kind,
            } => {
                let Some(s) = self.session(peer, epoch) else {
                    return;
                };
                debug!(
                    %peer,
                    ecdsa = s.cert_applied.load(std::sync::atomic::Ordering::SeqCst),
                    "local description created"
                );
                let sdp = if s.cert_applied.load(std::sync::atomic::Ordering::SeqCst) {
                    cert::fix_fingerprints(&sdp, &self.cert.fingerprint)
                } else {
                    sdp
                };
                // Let the peer send VP8 too (we decode it), and spell bundling the way
                // browsers accept.
                let vp8: Vec<(u8, &str)> = s.pts.vp8.map(|pt| (pt, "VP8")).into_iter().collect();
                let sdp = sdp::for_browsers(&sdp, &vp8);
                let Ok(msg) = gst_sdp::SDPMessage::parse_buffer(sdp.as_bytes()) else {
                    self.fail(peer, "webrtcbin produced SDP it cannot parse".into());
                    return;
                };
                let desc = gst_webrtc::WebRTCSessionDescription::new(kind.sdp_type(), msg);
                s.webrtc
                    .emit_by_name::<()>("set-local-description", &[&desc, &None::<gst::Promise>]);
                tracing::trace!(%peer, %sdp, "local description");
                let signal = kind.signal(sdp);
                self.emit(MediaEvent::LocalSignal { peer, signal });
            }
            Internal::RemoteDescriptionSet { peer, epoch } => {
                if let Some(s) = self.sessions.get_mut(&peer).filter(|s| s.epoch == epoch) {
                    s.remote_set = true;
                    for (mline, c) in std::mem::take(&mut s.pending) {
                        s.webrtc
                            .emit_by_name::<()>("add-ice-candidate", &[&mline, &c]);
                    }
                }
                self.create_description(peer, epoch, Description::Answer);
            }
            Internal::Candidate {
                peer,
                epoch,
                mline,
                candidate,
            } => {
                if self.session(peer, epoch).is_some() {
                    self.emit(MediaEvent::LocalSignal {
                        peer,
                        signal: MediaSignal::Candidate {
                            candidate,
                            sdp_mline_index: mline,
                            sdp_mid: None,
                        },
                    });
                }
            }
            Internal::State { peer, epoch, state } => {
                let Some(s) = self.sessions.get_mut(&peer).filter(|s| s.epoch == epoch) else {
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
            Internal::FirstFrame { peer, epoch } => {
                if self.session(peer, epoch).is_some() {
                    info!(%peer, "first remote video frame decoded");
                    self.emit(MediaEvent::RemoteVideo { peer });
                }
            }
            Internal::Stats { peer, epoch, stats } => {
                if let Some(s) = self.sessions.get(&peer).filter(|s| s.epoch == epoch) {
                    let mut snapshot = self.stats.update(s, &stats);
                    if let Some(c) = &self.call {
                        snapshot.frames_to_encoder = c
                            .encoder_counts
                            .0
                            .load(std::sync::atomic::Ordering::Relaxed);
                        snapshot.frames_encoded = c
                            .encoder_counts
                            .1
                            .load(std::sync::atomic::Ordering::Relaxed);
                    }
                    self.stats_tx.send_replace(snapshot);
                }
            }
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

async fn next_bus(bus: &mut Option<gst::bus::BusStream>) -> Option<gst::Message> {
    match bus {
        Some(b) => b.next().await,
        None => std::future::pending().await,
    }
}
