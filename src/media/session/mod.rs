//! One WebRTC session (one `webrtcbin`) with one remote participant: its webrtcbin with our
//! certificate and ICE servers, a sending branch per medium off the shared encoders
//! ([`send`]), and the decoding of what the participant sends ([`receive`]).

mod receive;
mod send;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_webrtc as gst_webrtc;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::engine::Internal;
use super::pipeline::{CallPipeline, RemoteOutputs, make};
use super::{IceOptions, MediaError};
use crate::core::{CallType, ClientId};
use receive::{Received, Receiver};

/// Payload types this session sends and accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadTypes {
    /// Opus.
    pub opus: Option<u8>,
    /// H.264 (we send it and accept it).
    pub h264: Option<u8>,
    /// VP8 (accepted from the peer).
    pub vp8: Option<u8>,
}

impl PayloadTypes {
    /// What we offer when we are the offerer.
    pub const OFFER: PayloadTypes = PayloadTypes {
        opus: Some(111),
        h264: Some(102),
        vp8: Some(96),
    };
}

/// Frame counters, shared with the pad probes.
#[derive(Debug, Default)]
pub struct Counters {
    /// Video frames handed to the payloader.
    pub frames_sent: AtomicU64,
    /// Remote video frames decoded.
    pub frames_decoded: AtomicU64,
}

/// A live session.
pub struct Session {
    /// The participant.
    pub peer: ClientId,
    /// Distinguishes sessions with the same participant over time.
    pub epoch: u64,
    /// The session's `webrtcbin`.
    pub webrtc: gst::Element,
    send: Vec<gst::Element>,
    valves: Vec<gst::Element>,
    tee_pads: Vec<(gst::Element, gst::Pad)>,
    received: Arc<Mutex<Received>>,
    /// Whether the remote description is set (candidates wait until it is).
    remote_set: bool,
    /// Candidates that arrived early: (m-line index, candidate).
    pending: Vec<(u32, String)>,
    /// Frame counters.
    pub counters: Arc<Counters>,
    /// Whether our ECDSA certificate went into the DTLS transport (then SDP fingerprints
    /// must be corrected).
    pub cert_applied: Arc<AtomicBool>,
    /// Connected at least once.
    pub connected: bool,
    /// Its failure was reported to the core (once is enough).
    pub failed: bool,
    /// The payload types negotiated for this session.
    pub pts: PayloadTypes,
}

/// Everything needed to create a session.
pub struct Spec<'a> {
    /// The participant.
    pub peer: ClientId,
    /// Generation number.
    pub epoch: u64,
    /// Audio only, or audio + video.
    pub call_type: CallType,
    /// Payload types.
    pub pts: PayloadTypes,
    /// STUN/TURN.
    pub ice: &'a IceOptions,
    /// Certificate + key PEM.
    pub cert_pem: &'a str,
    /// Where callbacks report.
    pub internal: mpsc::UnboundedSender<Internal>,
}

fn add(pipeline: &gst::Pipeline, e: &gst::Element) -> Result<(), MediaError> {
    pipeline
        .add(e)
        .map_err(|_| MediaError::Invalid(format!("cannot add {}", e.name())))
}

impl Session {
    /// Creates the session's elements in the running call pipeline.
    pub fn create(call: &CallPipeline, spec: Spec<'_>) -> Result<Session, MediaError> {
        let (peer, epoch) = (spec.peer, spec.epoch);
        let webrtc = webrtcbin(&spec)?;
        let cert_applied = use_certificate(&webrtc, spec.cert_pem);
        report_candidates_and_state(&webrtc, &spec.internal, peer, epoch);
        let received: Arc<Mutex<Received>> = Arc::default();
        let counters: Arc<Counters> = Arc::default();
        Receiver {
            pipeline: call.pipeline.downgrade(),
            remote: call.remote.clone(),
            received: received.clone(),
            counters: counters.clone(),
            internal: spec.internal.clone(),
            peer,
            epoch,
        }
        .connect(&webrtc);
        add(&call.pipeline, &webrtc)?;
        webrtc
            .sync_state_with_parent()
            .map_err(|_| MediaError::Invalid("cannot start webrtcbin".into()))?;
        let mut session = Session {
            peer,
            epoch,
            webrtc,
            send: Vec::new(),
            valves: Vec::new(),
            tee_pads: Vec::new(),
            received,
            remote_set: false,
            pending: Vec::new(),
            counters,
            cert_applied,
            connected: false,
            failed: false,
            pts: spec.pts,
        };
        if let Some(pt) = spec.pts.opus {
            session.send_audio(call, pt)?;
        }
        if spec.call_type.has_video() {
            session.send_video(call, spec.pts)?;
        }
        Ok(session)
    }

    /// The remote description is set: candidates that arrived before it go to webrtcbin now,
    /// later ones at once.
    pub fn remote_description_set(&mut self) {
        self.remote_set = true;
        for (mline, c) in std::mem::take(&mut self.pending) {
            self.webrtc
                .emit_by_name::<()>("add-ice-candidate", &[&mline, &c]);
        }
    }

    /// Hands a remote candidate to webrtcbin, or keeps it until the remote description is set
    /// (signaling can deliver a candidate before the description it belongs to).
    pub fn add_remote_candidate(&mut self, mline: u32, candidate: String) {
        if self.remote_set {
            self.webrtc
                .emit_by_name::<()>("add-ice-candidate", &[&mline, &candidate]);
        } else {
            self.pending.push((mline, candidate));
        }
    }

    /// Starts sending (the session is connected).
    pub fn open(&self) {
        for v in &self.valves {
            v.set_property("drop", false);
        }
    }

    /// Asks the encoder for a key frame (a new participant must not wait for the next one).
    pub fn request_key_frame(&self) {
        for e in &self.send {
            if e.factory().is_some_and(|f| f.name() == "rtph264pay")
                && let Some(pad) = e.static_pad("src")
            {
                let ev = gstreamer_video::UpstreamForceKeyUnitEvent::builder()
                    .all_headers(true)
                    .build();
                pad.send_event(ev);
            }
        }
    }

    /// The codec of the remote video, once it arrived.
    pub fn remote_video_codec(&self) -> Option<String> {
        self.received
            .lock()
            .ok()
            .and_then(|r| r.video_codec.clone())
    }

    /// Removes every element of the session from the running pipeline, leaving the other
    /// sessions untouched. Order matters: first detach from the shared encoders (at an idle
    /// point of each tee pad), then stop our own sending threads, then webrtcbin, then the
    /// receiving branches, and last give their mixer pads back. Blocks briefly, so call it off
    /// the async runtime. (When the whole call ends, the pipeline is stopped as one instead.)
    pub fn close(self, call_pipeline: &gst::Pipeline, remote: &RemoteOutputs) {
        {
            let mut r = self.received.lock().unwrap_or_else(|p| p.into_inner());
            r.closed = true;
        }
        self.detach_from_encoders();
        self.drain_sending();
        for e in &self.send {
            let _ = e.set_state(gst::State::Null);
        }
        self.stop_ice();
        let _ = self.webrtc.set_state(gst::State::Null);
        let r = std::mem::take(&mut *self.received.lock().unwrap_or_else(|p| p.into_inner()));
        for e in &r.elements {
            let _ = e.set_state(gst::State::Null);
        }
        {
            let mut layout = remote.layout.lock().unwrap_or_else(|p| p.into_inner());
            for pad in &r.tiles {
                layout.remove(pad);
            }
        }
        for (mixer, pad) in &r.mixer_pads {
            mixer.release_request_pad(pad);
        }
        let _ = call_pipeline.remove(&self.webrtc);
        for e in self.send.iter().chain(r.elements.iter()) {
            let _ = call_pipeline.remove(e);
        }
        debug!(peer = %self.peer, "session closed");
    }

    /// Unlinks the session's branches from the shared encoder tees, each at an idle point of
    /// its tee pad (2 s at most), and gives the tee pads back.
    fn detach_from_encoders(&self) {
        for (tee, pad) in &self.tee_pads {
            let (tx, rx) = std::sync::mpsc::channel();
            pad.add_probe(gst::PadProbeType::IDLE, move |pad, _| {
                if let Some(peer) = pad.peer() {
                    let _ = pad.unlink(&peer);
                }
                let _ = tx.send(());
                gst::PadProbeReturn::Remove
            });
            if rx.recv_timeout(Duration::from_secs(2)).is_err() {
                warn!(
                    peer = %self.peer,
                    "encoder branch did not become idle; detaching anyway"
                );
                if let Some(peer) = pad.peer() {
                    let _ = pad.unlink(&peer);
                }
            }
            tee.release_request_pad(pad);
        }
    }

    /// Lets the session's own queues run dry (500 ms at most) before they are stopped:
    /// deactivating a queue whose thread is mid-push can leave that thread spinning
    /// (GStreamer 1.22).
    fn drain_sending(&self) {
        for v in &self.valves {
            v.set_property("drop", true);
        }
        let deadline = std::time::Instant::now() + Duration::from_millis(500);
        for q in self
            .send
            .iter()
            .filter(|e| e.factory().is_some_and(|f| f.name() == "queue"))
        {
            while q.property::<u32>("current-level-buffers") > 0
                && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    /// Marks the session closed so late GStreamer callbacks add nothing, and stops its ICE
    /// sources; the caller stops the pipeline as a whole.
    pub fn abandon(self) {
        self.received
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .closed = true;
        self.stop_ice();
    }

    /// webrtcbin 1.22 keeps each `nicesrc` in a locked PLAYING state until its receive bin
    /// reaches NULL, so while the bin goes PAUSED → READY the ICE source keeps pushing into an
    /// internal queue that is being deactivated, which can leave that queue's thread spinning
    /// forever. Stopping the ICE sources first avoids the race.
    fn stop_ice(&self) {
        let Some(bin) = self.webrtc.downcast_ref::<gst::Bin>() else {
            return;
        };
        for e in bin.iterate_recurse().into_iter().flatten() {
            if e.factory().is_some_and(|f| f.name() == "nicesrc") {
                e.set_locked_state(false);
                let _ = e.set_state(gst::State::Null);
            }
        }
    }
}

/// The session's webrtcbin, named after the participant and epoch (pipeline errors are
/// traced back to their session by that name), with one transport for all media and the
/// configured ICE servers and policy.
fn webrtcbin(spec: &Spec<'_>) -> Result<gst::Element, MediaError> {
    let webrtc = make("webrtcbin")?;
    webrtc.set_property("name", format!("webrtc-{}-{}", spec.peer, spec.epoch));
    webrtc.set_property_from_str("bundle-policy", "max-bundle");
    webrtc.set_property("latency", 100u32);
    if let Some(stun) = &spec.ice.stun {
        webrtc.set_property("stun-server", stun);
    }
    if let Some(turn) = &spec.ice.turn {
        webrtc.set_property("turn-server", turn);
    }
    if spec.ice.relay_only {
        webrtc.set_property_from_str("ice-transport-policy", "relay");
    }
    Ok(webrtc)
}

/// Puts our ECDSA certificate into each DTLS transport as webrtcbin creates it, before its
/// elements start (they pick the certificate up when they leave NULL). Returns the flag that
/// says it was applied.
fn use_certificate(webrtc: &gst::Element, pem: &str) -> Arc<AtomicBool> {
    let cert_applied = Arc::new(AtomicBool::new(false));
    let pem = pem.to_string();
    let applied = cert_applied.clone();
    webrtc
        .downcast_ref::<gst::Bin>()
        .expect("webrtcbin is a bin")
        .connect_element_added(move |_, element| {
            // webrtcbin 1.22 has no certificate property; its DTLS transport hands
            // `certificate` to the receive bin's dtlssrtpdec as `pem`. Set it there
            // while the bin is still in NULL, before the connection is taken.
            if element.type_().name() != "TransportReceiveBin" {
                return;
            }
            let Some(bin) = element.downcast_ref::<gst::Bin>() else {
                return;
            };
            for child in bin.iterate_recurse().into_iter().flatten() {
                if child.factory().is_some_and(|f| f.name() == "dtlssrtpdec") {
                    child.set_property("pem", &pem);
                    applied.store(true, Ordering::SeqCst);
                }
            }
        });
    cert_applied
}

/// Reports webrtcbin's local candidates and connection-state changes to the engine.
fn report_candidates_and_state(
    webrtc: &gst::Element,
    internal: &mpsc::UnboundedSender<Internal>,
    peer: ClientId,
    epoch: u64,
) {
    let tx = internal.clone();
    webrtc.connect("on-ice-candidate", false, move |args| {
        let mline = args[1].get::<u32>().unwrap_or(0);
        let candidate = args[2].get::<String>().unwrap_or_default();
        let _ = tx.send(Internal::Candidate {
            peer,
            epoch,
            mline,
            candidate,
        });
        None
    });
    let tx = internal.clone();
    webrtc.connect_notify(Some("connection-state"), move |w, _| {
        let state = w.property::<gst_webrtc::WebRTCPeerConnectionState>("connection-state");
        let _ = tx.send(Internal::State { peer, epoch, state });
    });
}
