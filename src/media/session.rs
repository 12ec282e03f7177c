//! One WebRTC session (one `webrtcbin`) with one remote participant.
//!
//! Sending: a queue and payloader per medium hang off the shared encoder tees; the queue is
//! leaky so a session that is still connecting never stalls the encoder for the others.
//! Receiving: each incoming stream is decoded and linked into the compositor / mixer from
//! GStreamer's own thread (it must be linked before the first buffer arrives); the elements it
//! creates are recorded so closing the session removes every one of them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_webrtc as gst_webrtc;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::pipeline::{CallPipeline, RemoteOutputs, make};
use super::{IceOptions, Internal, MediaError};
use crate::core::{CallType, ClientId};

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
    /// Remote video frames received (RTP packets that end a frame), decoded or not.
    pub frames_received: AtomicU64,
}

#[derive(Default)]
struct Received {
    closed: bool,
    elements: Vec<gst::Element>,
    mixer_pads: Vec<(gst::Element, gst::Pad)>,
    tiles: Vec<gst::Pad>,
    video_codec: Option<String>,
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
    /// The gate after each caps filter: keeps buffers (not the caps) out of webrtcbin until
    /// the session is connected; the valves before the queues close only for teardown.
    sending: Arc<AtomicBool>,
    tee_pads: Vec<(gst::Element, gst::Pad)>,
    received: Arc<Mutex<Received>>,
    /// Whether the remote description is set (candidates wait until it is).
    pub remote_set: bool,
    /// Candidates that arrived early.
    pub pending: Vec<(u32, String)>,
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
    /// The remote description, as checked (candidates are checked against it).
    pub remote: Option<super::check::Checked>,
    /// Inbound packet times, for the stall watchdog (watched once connected).
    pub inbound: Arc<super::inbound::Inbound>,
    /// Which of `tee_pads` feeds the video payloader (none: the session sends no video).
    video_branch: Option<usize>,
    /// The quality layer whose own encode feeds the video (`None`: the call's main encoder).
    pub layer_source: Option<u8>,
}

/// Candidates kept while the remote description is not yet set.
pub const MAX_EARLY_CANDIDATES: usize = 64;

/// The encodings a remote participant's stream may use: anything else (a codec an offer
/// smuggled in, `X-GST` payloads and the like) is received and dropped, never decoded.
const DECODED: &[&str] = &["H264", "VP8", "OPUS"];

fn rtp_caps(kind: &str, name: &str, pt: u8, clock: u32, extra: &str) -> String {
    format!(
        "application/x-rtp,media=(string){kind},encoding-name=(string){name},payload=(int){pt},clock-rate=(int){clock}{extra}"
    )
}

const FB: &str =
    ",rtcp-fb-nack-pli=(boolean)true,rtcp-fb-nack=(boolean)true,rtcp-fb-ccm-fir=(boolean)true";

/// Video leaves at most this many times the encoder's bitrate (WebRTC's own pacer does 2.5
/// with encoders that keep key frames small; x264's are up to 600 ms of bitrate):
/// a key frame is spread over a few hundred milliseconds instead of arriving at the narrowest
/// link of the path as one burst that its queue cannot hold.
const PACE_FACTOR: f64 = 1.5;
/// The longest a packet is held back (a key frame far above the bitrate is sent faster).
const PACE_MAX_WAIT: Duration = Duration::from_millis(150);

/// Paces what the payloader sends at [`PACE_FACTOR`] × `kbps` (the encoder's current bitrate),
/// in the session's own sending thread (the queue in front of the payloader holds what waits).
fn pacer(pay: &gst::Element, kbps: Arc<std::sync::atomic::AtomicU32>) {
    let next: Mutex<Option<std::time::Instant>> = Mutex::new(None);
    pay.static_pad("src").expect("payloader src").add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |_, info| {
            let bytes = match &info.data {
                Some(gst::PadProbeData::Buffer(b)) => b.size(),
                Some(gst::PadProbeData::BufferList(l)) => l.calculate_size(),
                _ => return gst::PadProbeReturn::Ok,
            };
            let rate = f64::from(kbps.load(Ordering::Relaxed).max(64)) * 1000.0 * PACE_FACTOR;
            let now = std::time::Instant::now();
            let mut next = next.lock().unwrap_or_else(|e| e.into_inner());
            let at = next.filter(|t| *t > now).unwrap_or(now);
            let wait = at - now;
            if !wait.is_zero() {
                std::thread::sleep(wait.min(PACE_MAX_WAIT));
            }
            let sent = Duration::from_secs_f64(bytes as f64 * 8.0 / rate);
            // Never more than the longest wait in debt.
            *next = Some((at + sent).min(std::time::Instant::now() + PACE_MAX_WAIT));
            gst::PadProbeReturn::Ok
        },
    );
}

/// How long a new send branch waits for its caps to reach webrtcbin.
const EARLY_CAPS_WAIT: Duration = Duration::from_secs(2);

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

/// A payload type for a payloader's `pt` property, which GLib limits to 0–127 (setting more
/// would panic).
fn rtp_pt(pt: u8) -> Result<u32, MediaError> {
    if pt > 127 {
        return Err(MediaError::Invalid(format!(
            "payload type {pt} is above 127"
        )));
    }
    Ok(u32::from(pt))
}

fn add(pipeline: &gst::Pipeline, e: &gst::Element) -> Result<(), MediaError> {
    pipeline
        .add(e)
        .map_err(|_| MediaError::Invalid(format!("cannot add {}", e.name())))
}

/// Adds `chain` to the running pipeline and links it in order (`from` → `to` name it in an
/// error).
pub(super) fn add_chain(
    pipeline: &gst::Pipeline,
    chain: &[gst::Element],
    from: &str,
    to: &str,
) -> Result<(), MediaError> {
    for e in chain {
        add(pipeline, e)?;
    }
    gst::Element::link_many(chain).map_err(|_| MediaError::Link {
        from: from.into(),
        to: to.into(),
    })
}

impl Session {
    /// Creates the session's elements in the running call pipeline.
    pub fn create(call: &CallPipeline, spec: Spec<'_>) -> Result<Session, MediaError> {
        // Long on purpose, for now: a split of this module (commit 1dab2ee) lost a call's media in
        // the fifty-sequential-calls test (2 runs of 3) and was backed out; split it again with that
        // test run several times.
        let pipeline = &call.pipeline;
        let (peer, epoch) = (spec.peer, spec.epoch);
        let webrtc = make("webrtcbin")?;
        webrtc.set_property("name", format!("webrtc-{peer}-{epoch}"));
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
        // Before 1.20 the ICE agent has no port range (the engine warned at start).
        if let Some((min, max)) = spec
            .ice
            .ports
            .filter(|_| super::version::GstVersion::running().ice_port_range())
        {
            let agent = webrtc.property::<glib::Object>("ice-agent");
            agent.set_property("min-rtp-port", u32::from(min));
            agent.set_property("max-rtp-port", u32::from(max));
        }
        no_upnp(&webrtc);

        // Our ECDSA certificate goes into each DTLS transport as webrtcbin creates it, before
        // its elements start (they pick the certificate up when they leave NULL).
        let cert_applied = Arc::new(AtomicBool::new(false));
        {
            let pem = spec.cert_pem.to_string();
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
        }

        let internal = spec.internal.clone();
        webrtc.connect("on-ice-candidate", false, move |args| {
            let mline = args[1].get::<u32>().unwrap_or(0);
            let candidate = args[2].get::<String>().unwrap_or_default();
            let _ = internal.send(Internal::Candidate {
                peer,
                epoch,
                mline,
                candidate,
            });
            None
        });
        let internal = spec.internal.clone();
        webrtc.connect_notify(Some("connection-state"), move |w, _| {
            let state = w.property::<gst_webrtc::WebRTCPeerConnectionState>("connection-state");
            let _ = internal.send(Internal::State { peer, epoch, state });
        });

        let received: Arc<Mutex<Received>> = Arc::default();
        let counters: Arc<Counters> = Arc::default();
        {
            let pipeline = pipeline.downgrade();
            let remote = call.remote.clone();
            let received = received.clone();
            let counters = counters.clone();
            let internal = spec.internal.clone();
            webrtc.connect_pad_added(move |_, pad| {
                if pad.direction() != gst::PadDirection::Src {
                    return;
                }
                let Some(pipeline) = pipeline.upgrade() else {
                    return;
                };
                if let Err(e) = on_remote_stream(
                    &pipeline, &remote, &received, &counters, &internal, peer, epoch, pad,
                ) {
                    warn!(%peer, error = %e, "cannot play a remote stream");
                }
            });
        }
        add(pipeline, &webrtc)?;
        webrtc
            .sync_state_with_parent()
            .map_err(|_| MediaError::Invalid("cannot start webrtcbin".into()))?;

        let mut session = Session {
            peer,
            epoch,
            webrtc: webrtc.clone(),
            send: Vec::new(),
            valves: Vec::new(),
            sending: Arc::default(),
            tee_pads: Vec::new(),
            received,
            remote_set: false,
            pending: Vec::new(),
            counters,
            cert_applied,
            connected: false,
            failed: false,
            pts: spec.pts,
            remote: None,
            inbound: Arc::default(),
            video_branch: None,
            layer_source: None,
        };

        if let Some(pt) = spec.pts.opus {
            let pay = make("rtpopuspay")?;
            pay.set_property("pt", rtp_pt(pt)?);
            // Browsers only accept Opus as `opus/48000/2` (stereo-capable), whatever we send.
            let caps = rtp_caps("audio", "OPUS", pt, 48000, ",encoding-params=(string)2");
            session.attach(pipeline, &call.audio_tee, pay, &caps, &caps, None)?;
        }
        if spec.call_type.has_video()
            && let Some(pt) = spec.pts.h264
        {
            let pay = make("rtph264pay")?;
            pay.set_property("pt", rtp_pt(pt)?);
            // No config-interval here: the encoder chain's h264parse already puts SPS/PPS in
            // front of every key frame, and a second copy from the payloader makes OpenH264
            // (Firefox's H.264 decoder, and ours) conceal errors on every frame.
            pay.set_property("mtu", 1200u32);
            pay.set_property_from_str("aggregate-mode", "zero-latency");
            let send_caps = rtp_caps("video", "H264", pt, 90000, "");
            let mut prefs = rtp_caps(
                "video",
                "H264",
                pt,
                90000,
                &format!(",packetization-mode=(string)1,level-asymmetry-allowed=(string)1{FB}"),
            );
            if let Some(vp8) = spec.pts.vp8 {
                prefs.push(';');
                prefs.push_str(&rtp_caps("video", "VP8", vp8, 90000, FB));
            }
            let counters = session.counters.clone();
            session.video_branch = Some(session.tee_pads.len());
            session.attach(
                pipeline,
                &call.video_tee,
                pay,
                &send_caps,
                &prefs,
                Some((counters, call.pace_kbps.clone())),
            )?;
        }
        Ok(session)
    }

    /// Hangs `valve ! queue ! payloader ! capsfilter` off `tee` into a new webrtcbin sink pad;
    /// `video` (its frame counters and the bitrate it is paced by) for the video stream.
    ///
    /// The shared encoder's thread must never enter a webrtcbin: webrtcbin holds its lock while
    /// it waits for streaming threads, so an encoder thread blocked in a webrtcbin pad query
    /// stalls every session (seen: an answering session froze the encoder after one frame).
    /// So the valve answers caps queries itself, the queue hands buffers to a thread of the
    /// session's own, and the valve stays closed until the session is connected (webrtcbin
    /// holds data back until DTLS is up).
    fn attach(
        &mut self,
        pipeline: &gst::Pipeline,
        tee: &gst::Element,
        pay: gst::Element,
        send_caps: &str,
        prefs: &str,
        video: Option<(Arc<Counters>, Arc<std::sync::atomic::AtomicU32>)>,
    ) -> Result<(), MediaError> {
        // Long on purpose, for now: a split of this module (commit 1dab2ee) lost a call's media in
        // the fifty-sequential-calls test (2 runs of 3) and was backed out; split it again with that
        // test run several times.
        let valve = make("valve")?;
        valve.set_property(
            "name",
            format!("valve-{}-{}-{}", pay.name(), self.peer, self.epoch),
        );
        // The stream's caps must reach webrtcbin before the offer or answer is made: 1.18
        // connects a sink pad to the session only if its caps came before the descriptions
        // were set (later ones leave it blocked for good), and only caps that carry the
        // stream's SSRC put `a=ssrc` lines into the SDP, without which a 1.18 receiver cannot
        // tell our streams apart (it fed our video into its Opus decoder). A closed valve
        // holds the caps back too, so the valve is open and a gate after the caps filter
        // drops buffers until the session is connected (webrtcbin holds data back until DTLS
        // is up anyway); the valve closes for teardown.
        valve.set_property("drop", false);
        valve.static_pad("sink").expect("valve sink").add_probe(
            gst::PadProbeType::QUERY_DOWNSTREAM,
            |_, info| {
                let Some(gst::PadProbeData::Query(q)) = info.data.as_mut() else {
                    return gst::PadProbeReturn::Ok;
                };
                let serialized = q.is_serialized();
                match q.view_mut() {
                    gst::QueryViewMut::Caps(c) => {
                        let caps = c.filter_owned().unwrap_or_else(gst::Caps::new_any);
                        c.set_result(&caps);
                        gst::PadProbeReturn::Handled
                    }
                    gst::QueryViewMut::AcceptCaps(a) => {
                        a.set_result(true);
                        gst::PadProbeReturn::Handled
                    }
                    // Serialized queries (allocation, drain) would make the encoder wait for
                    // this session's queue and webrtcbin: answer with the defaults here.
                    _ if serialized => gst::PadProbeReturn::Handled,
                    _ => gst::PadProbeReturn::Ok,
                }
            },
        );
        let queue = make("queue")?;
        queue.set_property(
            "name",
            format!("send-{}-{}-{}", pay.name(), self.peer, self.epoch),
        );
        queue.set_property("max-size-buffers", 30u32);
        queue.set_property("max-size-bytes", 0u32);
        queue.set_property("max-size-time", 0u64);
        queue.set_property_from_str("leaky", "downstream");
        // Before 1.20 a transceiver has no `codec-preferences` property: webrtcbin then offers
        // what the pad's peer answers to a caps query, so the filter carries the first (sent)
        // codec with its parameters and feedback; a second codec to receive (VP8) is not
        // offered there.
        let prefs_settable = super::version::GstVersion::running().codec_preferences();
        let send_caps = if prefs_settable {
            send_caps
        } else {
            prefs.split(';').next().unwrap_or(send_caps)
        };
        let filter = make("capsfilter")?;
        let caps: gst::Caps = send_caps
            .parse()
            .map_err(|_| MediaError::Invalid(format!("bad caps {send_caps}")))?;
        filter.set_property("caps", &caps);
        for e in [&valve, &queue, &pay, &filter] {
            add(pipeline, e)?;
        }
        gst::Element::link_many([&valve, &queue, &pay, &filter]).map_err(|_| MediaError::Link {
            from: valve.name().to_string(),
            to: filter.name().to_string(),
        })?;
        if let Some((counters, pace)) = video {
            pacer(&pay, pace);
            pay.static_pad("sink").expect("payloader sink").add_probe(
                gst::PadProbeType::BUFFER,
                move |_, _| {
                    counters.frames_sent.fetch_add(1, Ordering::Relaxed);
                    gst::PadProbeReturn::Ok
                },
            );
        }
        let sink = self
            .webrtc
            .request_pad_simple("sink_%u")
            .ok_or_else(|| MediaError::Invalid("webrtcbin gave no sink pad".into()))?;
        if let Some(trans) = sink
            .find_property("transceiver")
            .map(|_| sink.property::<gst_webrtc::WebRTCRTPTransceiver>("transceiver"))
        {
            if prefs_settable {
                let prefs: gst::Caps = prefs
                    .parse()
                    .map_err(|_| MediaError::Invalid(format!("bad caps {prefs}")))?;
                trans.set_property("codec-preferences", &prefs);
            }
            trans.set_property(
                "direction",
                gst_webrtc::WebRTCRTPTransceiverDirection::Sendrecv,
            );
        }
        // Set once a buffer came through the payloader: its caps (with the stream's SSRC and
        // parameter sets) are then final.
        let primed = Arc::new(AtomicBool::new(false));
        let (sending, seen) = (self.sending.clone(), primed.clone());
        filter.static_pad("src").expect("capsfilter src").add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
            move |_, _| {
                seen.store(true, Ordering::Release);
                if sending.load(Ordering::Acquire) {
                    gst::PadProbeReturn::Ok
                } else {
                    gst::PadProbeReturn::Drop
                }
            },
        );
        filter
            .static_pad("src")
            .expect("capsfilter src")
            .link(&sink)
            .map_err(|e| MediaError::Link {
                from: filter.name().to_string(),
                to: format!("{} ({e:?})", self.webrtc.name()),
            })?;
        // Everything runs before the shared tee feeds it: a push into a branch that is still
        // in NULL returns FLUSHING, which a tee with one branch passes back to the encoder,
        // whose queue then stops for good.
        for e in [&valve, &queue, &pay, &filter] {
            e.sync_state_with_parent()
                .map_err(|_| MediaError::Invalid(format!("cannot start {}", e.name())))?;
        }
        let tee_pad = tee
            .request_pad_simple("src_%u")
            .ok_or_else(|| MediaError::Invalid("tee gave no pad".into()))?;
        tee_pad
            .link(&valve.static_pad("sink").expect("valve sink"))
            .map_err(|_| MediaError::Link {
                from: tee.name().to_string(),
                to: valve.name().to_string(),
            })?;
        self.tee_pads.push((tee.clone(), tee_pad));
        self.valves.push(valve.clone());
        self.send.extend([valve, queue, pay, filter]);
        // The caps travel with the branch's first buffer (a frame interval away at most, once
        // the encoder runs). Without them in time the offer or answer lacks this stream's
        // SSRC, and on 1.18 the stream does not start (the stall watchdog then fails the
        // session and a new one is offered).
        let deadline = std::time::Instant::now() + EARLY_CAPS_WAIT;
        while !primed.load(Ordering::Acquire) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if !primed.load(Ordering::Acquire) {
            warn!(peer = %self.peer, pad = %sink.name(), "no caps reached webrtcbin in time: this stream's SSRC is not in the SDP");
        }
        Ok(())
    }

    /// Whether the session sends video.
    pub fn sends_video(&self) -> bool {
        self.video_branch.is_some()
    }

    /// Feeds the video payloader from `tee` (another encode of the same picture) instead,
    /// at an idle point of the branch now feeding it, and asks the new encoder for a key
    /// frame: the payloader, its SSRC and sequence carry on, so the far end sees a new size
    /// and no renegotiation. Blocks briefly (call it off the async runtime).
    pub fn switch_video(
        &mut self,
        tee: &gst::Element,
        layer: Option<u8>,
    ) -> Result<(), MediaError> {
        let Some(i) = self.video_branch else {
            return Ok(());
        };
        let (old_tee, old_pad) = self.tee_pads[i].clone();
        if &old_tee == tee {
            self.layer_source = layer;
            return Ok(());
        }
        let new_pad = tee
            .request_pad_simple("src_%u")
            .ok_or_else(|| MediaError::Invalid("tee gave no pad".into()))?;
        let (tx, rx) = std::sync::mpsc::channel();
        let relink = new_pad.clone();
        let probe = old_pad.add_probe(gst::PadProbeType::IDLE, move |pad, _| {
            let linked = match pad.peer() {
                Some(valve) => {
                    let _ = pad.unlink(&valve);
                    relink.link(&valve).is_ok()
                }
                None => false,
            };
            if linked {
                let ev = gstreamer_video::UpstreamForceKeyUnitEvent::builder()
                    .all_headers(true)
                    .build();
                relink.send_event(ev);
            }
            let _ = tx.send(linked);
            gst::PadProbeReturn::Remove
        });
        let moved = rx.recv_timeout(Duration::from_secs(2));
        if moved.is_err()
            && let Some(id) = probe
        {
            old_pad.remove_probe(id);
        }
        match moved {
            Ok(true) => {
                old_tee.release_request_pad(&old_pad);
                self.tee_pads[i] = (tee.clone(), new_pad);
                self.layer_source = layer;
                Ok(())
            }
            Ok(false) | Err(_) => {
                tee.release_request_pad(&new_pad);
                Err(MediaError::Invalid(format!(
                    "the video of {} could not be moved to {}",
                    self.peer,
                    tee.name()
                )))
            }
        }
    }

    /// Starts sending (the session is connected).
    pub fn open(&self) {
        self.sending.store(true, Ordering::Release);
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

    /// Whether `src` is one of the elements that decode what this session receives, or inside
    /// one (those live in the call pipeline, outside the session's webrtcbin).
    pub fn decodes_with(&self, src: &gst::Object) -> bool {
        self.received
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elements
            .iter()
            .any(|e| e.upcast_ref::<gst::Object>() == src || src.has_as_ancestor(e))
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
        // Let the session's own queues run dry before stopping them: deactivating a queue
        // whose thread is mid-push can leave that thread spinning (GStreamer 1.22).
        self.sending.store(false, Ordering::Release);
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
        // Each element is locked in its state before it stops, so no state change of the
        // running pipeline can start it again before it is removed (an element disposed while
        // PLAYING leaves its thread running on freed memory).
        for e in &self.send {
            stop(e);
        }
        self.stop_ice();
        stop(&self.webrtc);
        let r = std::mem::take(&mut *self.received.lock().unwrap_or_else(|p| p.into_inner()));
        for e in &r.elements {
            stop(e);
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

/// Stops an element of a running pipeline for good (see [`Session::close`]).
fn stop(e: &gst::Element) {
    e.set_locked_state(true);
    if let Err(err) = e.set_state(gst::State::Null) {
        warn!(element = %e.name(), error = %err, "an element of a closing session did not stop");
    }
}

/// Turns libnice's UPnP off for the session's ICE agent. Left on (libnice's default), every
/// session searches the room's network for an Internet gateway and asks it to forward a port
/// to the device: multicast traffic and router changes nobody asked a meeting-room box to
/// make, and threads, sockets and an HTTP server per call.
fn no_upnp(webrtc: &gst::Element) {
    let ice = webrtc.property::<glib::Object>("ice-agent");
    if ice.find_property("agent").is_none() {
        return;
    }
    let agent = ice.property::<glib::Object>("agent");
    if agent.find_property("upnp").is_some() {
        agent.set_property("upnp", false);
    }
}

/// Adds `element` to the running pipeline, starts it and links `pad` to its sink.
fn start_and_link(
    pipeline: &gst::Pipeline,
    element: &gst::Element,
    pad: &gst::Pad,
) -> Result<(), MediaError> {
    let factory = element
        .factory()
        .map(|f| f.name().to_string())
        .unwrap_or_default();
    add(pipeline, element)?;
    element
        .sync_state_with_parent()
        .map_err(|_| MediaError::Invalid(format!("cannot start {factory}")))?;
    let sink = element.static_pad("sink").expect("a sink element");
    pad.link(&sink).map_err(|_| MediaError::Link {
        from: pad.name().to_string(),
        to: factory,
    })?;
    Ok(())
}

/// Ends `pad`'s stream in a running `fakesink` (received, never decoded); returns it.
fn drop_stream(pipeline: &gst::Pipeline, pad: &gst::Pad) -> Result<gst::Element, MediaError> {
    let drop = make("fakesink")?;
    drop.set_property("sync", false);
    drop.set_property("async", false);
    start_and_link(pipeline, &drop, pad)?;
    Ok(drop)
}

/// Counts the remote video frames arriving on `pad` (RTP, after the jitter buffer) by the
/// marker bit that ends each frame, for H.264 and VP8 alike; when they are not decoded
/// (`first_event`), the first one is reported as the participant's first video.
fn count_frames(
    pad: &gst::Pad,
    counters: &Arc<Counters>,
    internal: &mpsc::UnboundedSender<Internal>,
    peer: ClientId,
    epoch: u64,
    first_event: bool,
) {
    let counters = counters.clone();
    let internal = internal.clone();
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let ends_frame = info.buffer().is_some_and(|b| {
            let mut marker = [0u8; 2];
            b.copy_to_slice(0, &mut marker).is_ok() && marker[1] & 0x80 != 0
        });
        if ends_frame
            && counters.frames_received.fetch_add(1, Ordering::Relaxed) == 0
            && first_event
        {
            let _ = internal.send(Internal::FirstFrame { peer, epoch });
        }
        gst::PadProbeReturn::Ok
    });
}

/// A remote RTP stream appeared: decode it into the compositor or mixer. Runs on GStreamer's
/// thread and links before returning.
#[allow(clippy::too_many_arguments)]
fn on_remote_stream(
    pipeline: &gst::Pipeline,
    remote: &RemoteOutputs,
    received: &Arc<Mutex<Received>>,
    counters: &Arc<Counters>,
    internal: &mpsc::UnboundedSender<Internal>,
    peer: ClientId,
    epoch: u64,
    pad: &gst::Pad,
) -> Result<(), MediaError> {
    if received.lock().map(|r| r.closed).unwrap_or(true) {
        return Ok(());
    }
    let codec = pad.current_caps().and_then(|c| {
        c.structure(0)
            .and_then(|s| s.get::<String>("encoding-name").ok())
            .map(|n| n.to_ascii_uppercase())
    });
    if !codec
        .as_deref()
        .is_some_and(|c| DECODED.iter().any(|d| c.eq_ignore_ascii_case(d)))
    {
        warn!(%peer, ?codec, "a remote stream in an encoding that is not decoded: dropped");
        let drop = drop_stream(pipeline, pad)?;
        received
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elements
            .push(drop);
        return Ok(());
    }
    let is_video = codec.as_deref() != Some("OPUS");
    if is_video {
        count_frames(
            pad,
            counters,
            internal,
            peer,
            epoch,
            remote.compositor.is_none(),
        );
    }
    let shown = if is_video {
        remote.compositor.is_some()
    } else {
        remote.mixer.is_some()
    };
    if !shown {
        // No display (speaker): the stream is received, counted and dropped, not decoded.
        let drop = drop_stream(pipeline, pad)?;
        let mut r = received.lock().unwrap_or_else(|p| p.into_inner());
        if is_video {
            r.video_codec = codec;
        }
        r.elements.push(drop);
        return Ok(());
    }
    // An explicit chain per codec (no decodebin: nothing is autoplugged from what a stranger
    // sends, and FFmpeg with its hundred libraries is not loaded unless it is the decoder).
    let chain = decode_chain(codec.as_deref().unwrap_or_default(), remote, peer)?;
    add_chain(pipeline, &chain, "depayloader", "decoder")?;
    {
        let mut r = received.lock().unwrap_or_else(|p| p.into_inner());
        if is_video {
            r.video_codec = codec;
        }
        r.elements.extend(chain.iter().cloned());
    }
    let decoded = chain
        .last()
        .expect("a decode chain")
        .static_pad("src")
        .expect("a decoder's src pad");
    on_decoded(
        pipeline, remote, received, counters, internal, peer, epoch, &decoded, is_video,
    )?;
    for e in &chain {
        e.sync_state_with_parent()
            .map_err(|_| MediaError::Invalid(format!("cannot start {}", e.name())))?;
    }
    pad.link(
        &chain[0]
            .static_pad("sink")
            .expect("a depayloader's sink pad"),
    )
    .map_err(|_| MediaError::Link {
        from: pad.name().to_string(),
        to: chain[0].name().to_string(),
    })?;
    Ok(())
}

/// The H.264 decoders tried in order when the profile names none that exists: OpenH264 (its
/// own small library) before FFmpeg's (which brings ~150 libraries into the process).
const H264_DECODERS: &[&str] = &["openh264dec", "avdec_h264"];

/// The H.264 decoding stages a call uses: the profile's (a board's hardware decoder, and the
/// element it needs after it, such as Jetson's `nvvidconv` out of NVMM memory) when they
/// exist here, else the first of [`H264_DECODERS`] that does.
pub fn h264_decoder(profile: &super::profile::Profile) -> Option<Vec<super::profile::Stage>> {
    let exists = |s: &super::profile::Stage| gst::ElementFactory::find(&s.element).is_some();
    match &profile.video_decoder {
        Some(d) if exists(d) && profile.video_decoder_output.as_ref().is_none_or(exists) => Some(
            std::iter::once(d.clone())
                .chain(profile.video_decoder_output.clone())
                .collect(),
        ),
        _ => software_h264_decoder().map(|s| vec![s]),
    }
}

/// Drops the H.264 byte stream on `pad` until a buffer carries a sequence parameter set (the
/// key frame the session asks for on connecting): decoding starts there, and the parser
/// announces the stream's profile and size before the decoder sees any of it.
fn from_first_sps(pad: &gst::Pad) {
    let seen = AtomicBool::new(false);
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if seen.load(Ordering::Relaxed) {
            return gst::PadProbeReturn::Remove;
        }
        let has_sps = info.buffer().is_some_and(|b| {
            b.map_readable()
                .is_ok_and(|m| has_nal(m.as_slice(), NAL_SPS))
        });
        if has_sps {
            seen.store(true, Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        } else {
            gst::PadProbeReturn::Drop
        }
    });
}

/// h264parse announces byte-stream caps as soon as it has its input caps, before it has
/// seen a sequence parameter set, so without the profile that decoders such as
/// `openh264dec` require (a refusal would stop the stream for good). Those caps are held
/// back; the complete ones follow with the first SPS.
fn complete_caps_only(pad: &gst::Pad) {
    pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, |_, info| {
        let incomplete = match &info.data {
            Some(gst::PadProbeData::Event(e)) => match e.view() {
                gst::EventView::Caps(c) => c
                    .caps()
                    .structure(0)
                    .is_none_or(|s| !s.has_field("profile")),
                _ => false,
            },
            _ => false,
        };
        if incomplete {
            // Taken and handled here: returning `Drop` for an event makes GStreamer 1.22
            // unref it a second time through a cleared pointer (a CRITICAL in the log).
            info.data.take();
            gst::PadProbeReturn::Handled
        } else {
            gst::PadProbeReturn::Ok
        }
    });
}

/// H.264 NAL unit type of a sequence parameter set.
const NAL_SPS: u8 = 7;

/// Whether the Annex B byte stream `data` holds a NAL unit of type `kind`.
fn has_nal(data: &[u8], kind: u8) -> bool {
    data.windows(4)
        .any(|w| w[0] == 0 && w[1] == 0 && w[2] == 1 && w[3] & 0x1f == kind)
}

/// The software H.264 decoder a participant's video falls back to when the board's decoder
/// failed on it (see [`RemoteOutputs::software_video`]).
pub fn software_h264_decoder() -> Option<super::profile::Stage> {
    H264_DECODERS
        .iter()
        .find(|f| gst::ElementFactory::find(f).is_some())
        .map(|f| super::profile::Stage {
            element: f.to_string(),
            ..Default::default()
        })
}

/// Decoding of a remote H.264 byte stream: from its first sequence parameter set, through
/// the parser (complete caps only), into the call's H.264 decoder, or a software one for a
/// participant `peer` the call's decoder failed on.
pub(super) fn h264_decoding(
    remote: &RemoteOutputs,
    peer: Option<ClientId>,
) -> Result<Vec<gst::Element>, MediaError> {
    let software = peer.is_some_and(|p| {
        remote
            .software_video
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&p)
    });
    let fallback = software
        .then(software_h264_decoder)
        .flatten()
        .map(|s| vec![s]);
    let decoder = fallback
        .as_ref()
        .or(remote.h264_decoder.as_ref())
        .ok_or_else(|| MediaError::MissingElement {
            factory: "openh264dec".into(),
            package: "gstreamer1.0-plugins-bad",
        })?;
    let bytestream = make("capsfilter")?;
    bytestream.set_property(
        "caps",
        gst::Caps::builder("video/x-h264")
            .field("stream-format", "byte-stream")
            .build(),
    );
    from_first_sps(&bytestream.static_pad("src").expect("capsfilter src"));
    let parse = make("h264parse")?;
    complete_caps_only(&parse.static_pad("src").expect("h264parse src"));
    let mut chain = vec![bytestream, parse];
    for stage in decoder {
        chain.push(super::pipeline::make_stage(stage)?);
    }
    Ok(chain)
}

/// Depayloader, parser and decoder for a remote stream of `codec` (H264, VP8 or OPUS).
fn decode_chain(
    codec: &str,
    remote: &RemoteOutputs,
    peer: ClientId,
) -> Result<Vec<gst::Element>, MediaError> {
    Ok(match codec {
        "H264" => {
            let mut chain = vec![make("rtph264depay")?];
            chain.extend(h264_decoding(remote, Some(peer))?);
            chain
        }
        "VP8" => vec![make("rtpvp8depay")?, make("vp8dec")?],
        _ => vec![make("rtpopusdepay")?, make("opusdec")?],
    })
}

#[allow(clippy::too_many_arguments)]
fn on_decoded(
    pipeline: &gst::Pipeline,
    remote: &RemoteOutputs,
    received: &Arc<Mutex<Received>>,
    counters: &Arc<Counters>,
    internal: &mpsc::UnboundedSender<Internal>,
    peer: ClientId,
    epoch: u64,
    pad: &gst::Pad,
    is_video: bool,
) -> Result<(), MediaError> {
    let mut r = received.lock().unwrap_or_else(|p| p.into_inner());
    if r.closed {
        return Ok(());
    }
    let output = if is_video {
        &remote.compositor
    } else {
        &remote.mixer
    };
    let Some(mixer) = output.clone() else {
        return Ok(());
    };
    let (chain, mix_pad) = output_chain(pipeline, &mixer, is_video)?;
    let convert = chain[0].clone();
    if is_video {
        let counters = counters.clone();
        let internal = internal.clone();
        convert
            .static_pad("sink")
            .expect("converter sink")
            .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                if counters.frames_decoded.fetch_add(1, Ordering::Relaxed) == 0 {
                    let _ = internal.send(Internal::FirstFrame { peer, epoch });
                }
                gst::PadProbeReturn::Ok
            });
        remote
            .layout
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .add(peer, mix_pad.clone());
        r.tiles.push(mix_pad.clone());
    }
    r.mixer_pads.push((mixer, mix_pad));
    for e in &chain {
        e.sync_state_with_parent()
            .map_err(|_| MediaError::Invalid(format!("cannot start {}", e.name())))?;
    }
    pad.link(&convert.static_pad("sink").expect("converter sink"))
        .map_err(|_| MediaError::Link {
            from: "decodebin".into(),
            to: convert.name().to_string(),
        })?;
    r.elements.extend(chain);
    Ok(())
}

/// Converts a decoded stream for the display's compositor or the speaker's mixer: the chain
/// is added to the running pipeline and linked to a new pad of `mixer` (returned); its first
/// element takes the decoded stream, and its elements are not started yet.
pub(super) fn output_chain(
    pipeline: &gst::Pipeline,
    mixer: &gst::Element,
    is_video: bool,
) -> Result<(Vec<gst::Element>, gst::Pad), MediaError> {
    let chain = if is_video {
        vec![make("videoconvert")?]
    } else {
        let filter = make("capsfilter")?;
        filter.set_property(
            "caps",
            gst::Caps::builder("audio/x-raw")
                .field("format", "S16LE")
                .field("rate", 48000i32)
                .field("channels", 2i32)
                .build(),
        );
        vec![make("audioconvert")?, make("audioresample")?, filter]
    };
    add_chain(pipeline, &chain, "decoded stream", "converter")?;
    let mix_pad = mixer
        .request_pad_simple("sink_%u")
        .ok_or_else(|| MediaError::Invalid("mixer gave no pad".into()))?;
    chain
        .last()
        .expect("non-empty chain")
        .static_pad("src")
        .expect("src pad")
        .link(&mix_pad)
        .map_err(|_| MediaError::Link {
            from: "converter".into(),
            to: mixer.name().to_string(),
        })?;
    Ok((chain, mix_pad))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sps_is_found_behind_any_start_code() {
        // 4-byte start code, SPS (0x67) after an access unit delimiter.
        assert!(has_nal(
            &[0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x67, 0x42],
            NAL_SPS
        ));
        // 3-byte start code.
        assert!(has_nal(&[0, 0, 1, 0x27, 0x42], NAL_SPS));
        // A slice only (0x41), and an SPS byte that follows no start code.
        assert!(!has_nal(&[0, 0, 0, 1, 0x41, 0x9a, 0x67, 0, 1], NAL_SPS));
        assert!(!has_nal(&[], NAL_SPS));
    }

    #[test]
    fn sessions_do_not_use_upnp() {
        gst::init().unwrap();
        let webrtc = make("webrtcbin").unwrap();
        let agent = webrtc
            .property::<glib::Object>("ice-agent")
            .property::<glib::Object>("agent");
        assert!(agent.property::<bool>("upnp"), "libnice's default is on");
        no_upnp(&webrtc);
        assert!(!agent.property::<bool>("upnp"));
    }
}
