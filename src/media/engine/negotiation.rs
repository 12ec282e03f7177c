//! Offer/answer and ICE for the engine's sessions. An offerer session is created at once and
//! asks webrtcbin for an offer; an answerer waits for the peer's offer, whose payload types it
//! must use, before its session exists. Local descriptions are corrected (our certificate's
//! fingerprint, browser-compatible bundling, VP8 reception) before they are sent; remote
//! candidates wait in the session until its remote description is set.

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_sdp as gst_sdp;
use gstreamer_webrtc as gst_webrtc;
use tracing::debug;

use super::{Engine, Internal};
use crate::core::{CallType, ClientId, MediaEvent, MediaSignal};
use crate::media::session::{PayloadTypes, Session, Spec};
use crate::media::{MediaError, cert, sdp};

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

/// Parses SDP text into a description of the given type.
fn parse(
    sdp: &str,
    kind: gst_webrtc::WebRTCSDPType,
) -> Option<gst_webrtc::WebRTCSessionDescription> {
    let msg = gst_sdp::SDPMessage::parse_buffer(sdp.as_bytes()).ok()?;
    Some(gst_webrtc::WebRTCSessionDescription::new(kind, msg))
}

/// The payload types a remote offer uses for what we send and accept.
fn offered_payload_types(offer: &str) -> PayloadTypes {
    let sections = sdp::sections(offer);
    let audio = sections.iter().find(|s| s.kind == "audio");
    let video = sections.iter().find(|s| s.kind == "video");
    PayloadTypes {
        opus: audio.and_then(|s| sdp::pick(&s.codecs, "OPUS")),
        h264: video.and_then(|s| sdp::pick_h264(&s.codecs)),
        vp8: video.and_then(|s| sdp::pick(&s.codecs, "VP8")),
    }
}

impl Engine {
    /// We start the session: create it with our payload types and make an offer.
    pub(super) fn offer(&mut self, peer: ClientId, call_type: CallType) {
        match self.start_session(peer, call_type, PayloadTypes::OFFER) {
            Ok(epoch) => self.create_description(peer, epoch, Description::Offer),
            Err(e) => self.fail(peer, e.to_string()),
        }
    }

    /// The peer will offer: drop any older session with it and have the call pipeline ready.
    pub(super) async fn await_offer(&mut self, peer: ClientId, call_type: CallType) {
        self.close_session(peer).await;
        self.awaiting_offer.insert(peer, call_type);
        if let Err(e) = self.ensure_call() {
            self.fail(peer, e.to_string());
        }
    }

    /// Creates a session in the call pipeline (started if need be); returns its epoch.
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

    /// webrtcbin made our description: correct it, set it as the local one, send it.
    pub(super) fn local_description(
        &mut self,
        peer: ClientId,
        epoch: u64,
        sdp: String,
        kind: Description,
    ) {
        let Some(s) = self.session(peer, epoch) else {
            return;
        };
        let sdp = self.outgoing_sdp(s, sdp);
        let Some(desc) = parse(&sdp, kind.sdp_type()) else {
            self.fail(peer, "webrtcbin produced SDP it cannot parse".into());
            return;
        };
        s.webrtc
            .emit_by_name::<()>("set-local-description", &[&desc, &None::<gst::Promise>]);
        tracing::trace!(%peer, %sdp, "local description");
        let signal = kind.signal(sdp);
        self.emit(MediaEvent::LocalSignal { peer, signal });
    }

    /// A local description as the peer must see it: the fingerprint of the certificate really
    /// in use, VP8 offered for receiving (we decode it), and bundling spelt the way browsers
    /// accept.
    fn outgoing_sdp(&self, s: &Session, sdp: String) -> String {
        let ecdsa = s.cert_applied.load(std::sync::atomic::Ordering::SeqCst);
        debug!(peer = %s.peer, ecdsa, "local description created");
        let sdp = if ecdsa {
            cert::fix_fingerprints(&sdp, &self.cert.fingerprint)
        } else {
            sdp
        };
        let vp8: Vec<(u8, &str)> = s.pts.vp8.map(|pt| (pt, "VP8")).into_iter().collect();
        sdp::for_browsers(&sdp, &vp8)
    }

    /// The peer's offer is set: waiting candidates go in, and we answer.
    pub(super) fn remote_description_set(&mut self, peer: ClientId, epoch: u64) {
        if let Some(s) = self.session_mut(peer, epoch) {
            s.remote_description_set();
        }
        self.create_description(peer, epoch, Description::Answer);
    }

    /// webrtcbin found a local candidate: send it to the peer.
    pub(super) fn local_candidate(
        &mut self,
        peer: ClientId,
        epoch: u64,
        mline: u32,
        candidate: String,
    ) {
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

    /// A signal from the peer.
    pub(super) async fn remote_signal(&mut self, peer: ClientId, signal: MediaSignal) {
        match signal {
            MediaSignal::Offer { sdp } => self.remote_offer(peer, sdp).await,
            MediaSignal::Answer { sdp } => self.remote_answer(peer, sdp),
            MediaSignal::Candidate {
                candidate,
                sdp_mline_index,
                ..
            } => {
                if let Some(s) = self.sessions.get_mut(&peer)
                    && !candidate.is_empty()
                {
                    let candidate = candidate.strip_prefix("a=").unwrap_or(&candidate);
                    s.add_remote_candidate(sdp_mline_index, candidate.to_string());
                }
            }
            MediaSignal::Bye => self.close_session(peer).await,
        }
    }

    /// The peer offers: a new session with the offer's payload types takes the offer as its
    /// remote description; [`Engine::remote_description_set`] answers once webrtcbin took it.
    async fn remote_offer(&mut self, peer: ClientId, sdp: String) {
        let call_type = self.awaiting_offer.remove(&peer).unwrap_or(CallType::Video);
        self.close_session(peer).await;
        let epoch = match self.start_session(peer, call_type, offered_payload_types(&sdp)) {
            Ok(epoch) => epoch,
            Err(e) => {
                self.fail(peer, e.to_string());
                return;
            }
        };
        let Some(s) = self.session(peer, epoch) else {
            return;
        };
        let Some(desc) = parse(&sdp, gst_webrtc::WebRTCSDPType::Offer) else {
            self.fail(peer, "the offer is not valid SDP".into());
            return;
        };
        let internal = self.internal.clone();
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

    /// The peer answers our offer.
    fn remote_answer(&mut self, peer: ClientId, sdp: String) {
        let Some(s) = self.sessions.get_mut(&peer) else {
            return;
        };
        let Some(desc) = parse(&sdp, gst_webrtc::WebRTCSDPType::Answer) else {
            self.fail(peer, "the answer is not valid SDP".into());
            return;
        };
        s.webrtc
            .emit_by_name::<()>("set-remote-description", &[&desc, &None::<gst::Promise>]);
        s.remote_description_set();
    }
}
