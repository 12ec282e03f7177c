//! Sending: per medium, `valve ─ queue ─ payloader ─ capsfilter` hangs off the shared encoder's
//! tee into a webrtcbin sink pad whose transceiver says which codecs we send and accept.
//!
//! The shared encoder's thread must never enter a webrtcbin: webrtcbin holds its lock while it
//! waits for streaming threads, so an encoder thread blocked in a webrtcbin pad query stalls
//! every session (seen: an answering session froze the encoder after one frame). So the valve
//! answers caps queries itself, the queue hands buffers to a thread of the session's own, and
//! the valve stays closed until the session is connected (webrtcbin holds data back until DTLS
//! is up). The queue is leaky, so a session that is still connecting never stalls the encoder
//! for the others.

use std::sync::atomic::Ordering;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_webrtc as gst_webrtc;

use super::{PayloadTypes, Session, add};
use crate::media::MediaError;
use crate::media::pipeline::{CallPipeline, make};

fn rtp_caps(kind: &str, name: &str, pt: u8, clock: u32, extra: &str) -> String {
    format!(
        "application/x-rtp,media=(string){kind},encoding-name=(string){name},payload=(int){pt},clock-rate=(int){clock}{extra}"
    )
}

const FB: &str =
    ",rtcp-fb-nack-pli=(boolean)true,rtcp-fb-nack=(boolean)true,rtcp-fb-ccm-fir=(boolean)true";

fn parse_caps(caps: &str) -> Result<gst::Caps, MediaError> {
    caps.parse()
        .map_err(|_| MediaError::Invalid(format!("bad caps {caps}")))
}

impl Session {
    /// Sends the shared Opus stream with payload type `pt`.
    pub(super) fn send_audio(&mut self, call: &CallPipeline, pt: u8) -> Result<(), MediaError> {
        let pay = make("rtpopuspay")?;
        pay.set_property("pt", pt as u32);
        // Browsers only accept Opus as `opus/48000/2` (stereo-capable), whatever we send.
        let caps = rtp_caps("audio", "OPUS", pt, 48000, ",encoding-params=(string)2");
        self.attach(&call.pipeline, &call.audio_tee, pay, &caps, &caps)
    }

    /// Sends the shared H.264 stream with `pts.h264`; accepts H.264 and, when it has a
    /// payload type, VP8. Counts the frames sent.
    pub(super) fn send_video(
        &mut self,
        call: &CallPipeline,
        pts: PayloadTypes,
    ) -> Result<(), MediaError> {
        let Some(pt) = pts.h264 else {
            return Ok(());
        };
        let pay = make("rtph264pay")?;
        pay.set_property("pt", pt as u32);
        pay.set_property("config-interval", -1i32);
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
        if let Some(vp8) = pts.vp8 {
            prefs.push(';');
            prefs.push_str(&rtp_caps("video", "VP8", vp8, 90000, FB));
        }
        let counters = self.counters.clone();
        pay.static_pad("sink").expect("payloader sink").add_probe(
            gst::PadProbeType::BUFFER,
            move |_, _| {
                counters.frames_sent.fetch_add(1, Ordering::Relaxed);
                gst::PadProbeReturn::Ok
            },
        );
        self.attach(&call.pipeline, &call.video_tee, pay, &send_caps, &prefs)
    }

    /// Hangs `valve ─ queue ─ pay ─ capsfilter(send_caps)` off `tee` into a new webrtcbin sink
    /// pad that prefers the codecs `prefs` lists.
    fn attach(
        &mut self,
        pipeline: &gst::Pipeline,
        tee: &gst::Element,
        pay: gst::Element,
        send_caps: &str,
        prefs: &str,
    ) -> Result<(), MediaError> {
        let name = |part: &str| format!("{part}-{}-{}-{}", pay.name(), self.peer, self.epoch);
        let valve = closed_valve(&name("valve"))?;
        let queue = send_queue(&name("send"))?;
        let filter = make("capsfilter")?;
        filter.set_property("caps", &parse_caps(send_caps)?);
        for e in [&valve, &queue, &pay, &filter] {
            add(pipeline, e)?;
        }
        gst::Element::link_many([&valve, &queue, &pay, &filter]).map_err(|_| MediaError::Link {
            from: valve.name().to_string(),
            to: filter.name().to_string(),
        })?;
        let sink = self.webrtc_sink(prefs)?;
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
        Ok(())
    }

    /// A new webrtcbin sink pad whose transceiver sends and receives, preferring `prefs`.
    fn webrtc_sink(&self, prefs: &str) -> Result<gst::Pad, MediaError> {
        let sink = self
            .webrtc
            .request_pad_simple("sink_%u")
            .ok_or_else(|| MediaError::Invalid("webrtcbin gave no sink pad".into()))?;
        if let Some(trans) = sink
            .find_property("transceiver")
            .map(|_| sink.property::<gst_webrtc::WebRTCRTPTransceiver>("transceiver"))
        {
            trans.set_property("codec-preferences", &parse_caps(prefs)?);
            trans.set_property(
                "direction",
                gst_webrtc::WebRTCRTPTransceiverDirection::Sendrecv,
            );
        }
        Ok(sink)
    }
}

/// A valve that drops everything until the session opens it, and answers the queries that
/// would otherwise make the encoder's thread wait on this session: caps (anything),
/// accept-caps (yes), and every serialized query (allocation, drain: the defaults).
fn closed_valve(name: &str) -> Result<gst::Element, MediaError> {
    let valve = make("valve")?;
    valve.set_property("name", name);
    valve.set_property("drop", true);
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
    Ok(valve)
}

/// The session's own sending thread: up to 30 buffers, the oldest dropped beyond.
fn send_queue(name: &str) -> Result<gst::Element, MediaError> {
    let queue = make("queue")?;
    queue.set_property("name", name);
    queue.set_property("max-size-buffers", 30u32);
    queue.set_property("max-size-bytes", 0u32);
    queue.set_property("max-size-time", 0u64);
    queue.set_property_from_str("leaky", "downstream");
    Ok(queue)
}
