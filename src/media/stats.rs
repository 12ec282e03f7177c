//! Per-session statistics from `webrtcbin`'s `get-stats` plus our own frame counters:
//! bitrates, frame rates, packets lost and round-trip time, for telemetry.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Instant;

use gstreamer as gst;
use gstreamer_webrtc as gst_webrtc;
use serde::Serialize;

use super::session::Session;
use crate::core::ClientId;

/// One session's numbers.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SessionStats {
    /// The participant.
    pub peer: ClientId,
    /// ICE/DTLS connected.
    pub connected: bool,
    /// Sent bitrate (all media), kbit/s.
    pub bitrate_out_kbps: f64,
    /// Received bitrate, kbit/s.
    pub bitrate_in_kbps: f64,
    /// Video frames sent per second.
    pub fps_out: f64,
    /// Remote video frames received per second.
    pub fps_in: f64,
    /// Packets lost on the way to us (cumulative).
    pub packets_lost_in: i64,
    /// Packets the peer reports lost on the way to it (cumulative).
    pub packets_lost_out: i64,
    /// Round-trip time, ms, when the peer reports it.
    pub rtt_ms: Option<f64>,
    /// Remote video frames decoded (cumulative; stays 0 without a display).
    pub frames_decoded: u64,
    /// Remote video frames received (cumulative), decoded or not.
    pub frames_received: u64,
    /// Video frames sent (cumulative).
    pub frames_sent: u64,
    /// The codec the peer sends video with.
    pub video_codec_in: Option<String>,
    /// Remote audio packets received (cumulative; RTM rooms).
    pub audio_received: u64,
    /// Remote audio packets decoded (cumulative; RTM rooms, stays 0 without a speaker).
    pub audio_decoded: u64,
    /// Remote frames that could not be used: before a key frame, after a gap, stale voice
    /// (cumulative; RTM rooms).
    pub frames_discarded: u64,
    /// The quality layer the participant asked for (`switchVideoBySim`: 0 small, 1 medium,
    /// 2 large; `None`: it never asked, so large).
    pub quality_layer: Option<u8>,
    /// The size and frame rate of the video it is sent.
    pub video_sent: Option<super::adapt::Level>,
    /// Its video comes from an encode of its own (a lower layer than others watch).
    pub layer_encode: bool,
}

/// All sessions.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MediaStats {
    /// By participant.
    pub sessions: Vec<SessionStats>,
    /// Raw video frames that reached the encoder during this call.
    pub frames_to_encoder: u64,
    /// Encoded video frames the encoder produced during this call.
    pub frames_encoded: u64,
    /// An RTM call's connection to the RTC gate (sent, dropped, queued).
    pub rtm: Option<super::relay::RtmStats>,
    /// The video bitrate adaptation set the encoder to, kbit/s (`None`: not adapting yet).
    pub video_target_kbps: Option<u32>,
    /// The size and frame rate sent, as adaptation stepped them.
    pub video_sent: Option<super::adapt::Level>,
}

/// The video stream's feedback in one `get-stats` reply: the outbound stream with the 90 kHz
/// clock (audio's is 48 kHz) and the peer's receiver report about it (same SSRC).
pub fn video_feedback(report: &gst::StructureRef) -> super::adapt::Feedback {
    let mut clock_of: BTreeMap<String, i128> = BTreeMap::new();
    let mut outbound: Vec<gst::Structure> = Vec::new();
    let mut remote: Vec<gst::Structure> = Vec::new();
    for (id, value) in report.iter() {
        let Ok(s) = value.get::<gst::Structure>() else {
            continue;
        };
        match s.get::<gst_webrtc::WebRTCStatsType>("type") {
            Ok(gst_webrtc::WebRTCStatsType::Codec) => {
                if let Some(c) = num(&s, "clock-rate") {
                    clock_of.insert(id.to_string(), c);
                }
            }
            Ok(gst_webrtc::WebRTCStatsType::OutboundRtp) => outbound.push(s),
            Ok(gst_webrtc::WebRTCStatsType::RemoteInboundRtp) => remote.push(s),
            _ => {}
        }
    }
    let is_video = |s: &gst::Structure| {
        s.get::<String>("codec-id")
            .ok()
            .and_then(|c| clock_of.get(&c).copied())
            == Some(90_000)
    };
    let reported = |s: &gst::Structure| {
        let ssrc = num(s, "ssrc");
        ssrc.is_some() && remote.iter().any(|r| num(r, "ssrc") == ssrc)
    };
    // The video stream the peer reports on (a retransmission stream also runs at 90 kHz);
    // without codec statistics, the stream with more packets.
    let most = |it: &mut dyn Iterator<Item = &gst::Structure>| {
        it.max_by_key(|s| num(s, "packets-sent").unwrap_or(0))
            .cloned()
    };
    let video = most(&mut outbound.iter().filter(|s| is_video(s) && reported(s)))
        .or_else(|| most(&mut outbound.iter().filter(|s| is_video(s))))
        .or_else(|| most(&mut outbound.iter()));
    let video = video.as_ref();
    let Some(video) = video else {
        return super::adapt::Feedback::default();
    };
    let ssrc = num(video, "ssrc");
    let mut fb = super::adapt::Feedback {
        packets_sent: num(video, "packets-sent")
            .unwrap_or(0)
            .clamp(0, u64::MAX as i128) as u64,
        bytes_sent: num(video, "bytes-sent")
            .unwrap_or(0)
            .clamp(0, u64::MAX as i128) as u64,
        ..super::adapt::Feedback::default()
    };
    if let Some(r) = remote
        .iter()
        .find(|r| ssrc.is_some() && num(r, "ssrc") == ssrc)
    {
        fb.packets_lost = num(r, "packets-lost")
            .unwrap_or(0)
            .clamp(i64::MIN as i128, i64::MAX as i128) as i64;
        fb.fraction_lost = r.get::<f64>("fraction-lost").ok().filter(|f| f.is_finite());
        let block = r.get::<gst::Structure>("gst-rtpsource-stats").ok();
        let field = |name: &str| block.as_ref().and_then(|g| g.get::<u32>(name).ok());
        fb.report = match (field("rb-lsr"), field("rb-dlsr"), field("rb-exthighestseq")) {
            (None, None, None) => None,
            (lsr, dlsr, seq) => Some((lsr.unwrap_or(0), dlsr.unwrap_or(0), seq.unwrap_or(0))),
        };
        fb.rtt = round_trip(r).map(std::time::Duration::from_secs_f64);
    }
    fb
}

/// The round trip, in seconds, of a `remote-inbound-rtp` entry. Without an LSR in the peer's
/// receiver report it has not seen one of our sender reports, and the round trip cannot be
/// known (RFC 3550 6.4.1): the 0 webrtcbin then reports is no measurement.
fn round_trip(remote: &gst::StructureRef) -> Option<f64> {
    let no_lsr = remote
        .get::<gst::Structure>("gst-rtpsource-stats")
        .ok()
        .and_then(|g| g.get::<u32>("rb-lsr").ok())
        == Some(0);
    remote
        .get::<f64>("round-trip-time")
        .ok()
        .filter(|t| t.is_finite() && *t >= 0.0 && *t < 60.0 && !no_lsr)
}

#[derive(Debug, Clone, Copy)]
struct Previous {
    at: Instant,
    bytes_in: u64,
    bytes_out: u64,
    frames_in: u64,
    frames_out: u64,
}

/// Turns counters into rates between collections.
#[derive(Debug, Default)]
pub struct Collector {
    previous: BTreeMap<ClientId, Previous>,
    latest: BTreeMap<ClientId, SessionStats>,
}

fn num(s: &gst::StructureRef, field: &str) -> Option<i128> {
    s.get::<u64>(field)
        .map(i128::from)
        .or_else(|_| s.get::<i64>(field).map(i128::from))
        .or_else(|_| s.get::<u32>(field).map(i128::from))
        .or_else(|_| s.get::<i32>(field).map(i128::from))
        .ok()
}

impl Collector {
    /// Folds in one `get-stats` reply for `session`; returns the snapshot of all sessions.
    pub fn update(&mut self, session: &Session, report: &gst::StructureRef) -> MediaStats {
        let (mut bytes_in, mut bytes_out, mut lost_in, mut lost_out) = (0u64, 0u64, 0i64, 0i64);
        let mut rtt: Option<f64> = None;
        for (_, value) in report.iter() {
            let Ok(s) = value.get::<gst::Structure>() else {
                continue;
            };
            let Ok(kind) = s.get::<gst_webrtc::WebRTCStatsType>("type") else {
                continue;
            };
            match kind {
                gst_webrtc::WebRTCStatsType::InboundRtp => {
                    bytes_in += num(&s, "bytes-received").unwrap_or(0).max(0) as u64;
                    lost_in += num(&s, "packets-lost").unwrap_or(0) as i64;
                }
                gst_webrtc::WebRTCStatsType::OutboundRtp => {
                    bytes_out += num(&s, "bytes-sent").unwrap_or(0).max(0) as u64;
                }
                gst_webrtc::WebRTCStatsType::RemoteInboundRtp => {
                    lost_out += num(&s, "packets-lost").unwrap_or(0) as i64;
                    if let Some(r) = round_trip(&s) {
                        rtt = Some(rtt.map_or(r, |x: f64| x.max(r)));
                    }
                }
                _ => {}
            }
        }
        let st = SessionStats {
            peer: session.peer,
            connected: session.connected,
            packets_lost_in: lost_in,
            packets_lost_out: lost_out,
            rtt_ms: rtt.map(|r| r * 1000.0),
            frames_decoded: session.counters.frames_decoded.load(Ordering::Relaxed),
            frames_received: session.counters.frames_received.load(Ordering::Relaxed),
            frames_sent: session.counters.frames_sent.load(Ordering::Relaxed),
            video_codec_in: session.remote_video_codec(),
            ..SessionStats::default()
        };
        self.record(st, bytes_in, bytes_out)
    }

    /// Folds in one participant's cumulative numbers (`bytes_in`/`bytes_out` of media),
    /// computing bitrates and frame rates since the last time; returns the snapshot of all.
    pub fn record(&mut self, mut st: SessionStats, bytes_in: u64, bytes_out: u64) -> MediaStats {
        let now = Instant::now();
        let (frames_in, frames_out) = (st.frames_received, st.frames_sent);
        if let Some(p) = self.previous.get(&st.peer) {
            let dt = now.duration_since(p.at).as_secs_f64();
            if dt > 0.0 {
                st.bitrate_in_kbps = bytes_in.saturating_sub(p.bytes_in) as f64 * 8.0 / 1000.0 / dt;
                st.bitrate_out_kbps =
                    bytes_out.saturating_sub(p.bytes_out) as f64 * 8.0 / 1000.0 / dt;
                st.fps_in = frames_in.saturating_sub(p.frames_in) as f64 / dt;
                st.fps_out = frames_out.saturating_sub(p.frames_out) as f64 / dt;
            }
        }
        self.previous.insert(
            st.peer,
            Previous {
                at: now,
                bytes_in,
                bytes_out,
                frames_in,
                frames_out,
            },
        );
        self.latest.insert(st.peer, st);
        MediaStats {
            sessions: self.latest.values().cloned().collect(),
            ..MediaStats::default()
        }
    }

    /// Drops a closed session.
    pub fn forget(&mut self, peer: ClientId) {
        self.previous.remove(&peer);
        self.latest.remove(&peer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One `get-stats` reply as webrtcbin 1.26 made it in a call with Chromium: the video
    /// stream sent and the peer's receiver report on it, whose LSR and DLSR are 0 (the peer
    /// had processed none of our sender reports).
    fn reply(lsr: u32, dlsr: u32, seq: u32, rtt: f64) -> gst::Structure {
        let codec = gst::Structure::builder("codec")
            .field("type", gst_webrtc::WebRTCStatsType::Codec)
            .field("clock-rate", 90_000u32)
            .build();
        let outbound = gst::Structure::builder("outbound-rtp")
            .field("type", gst_webrtc::WebRTCStatsType::OutboundRtp)
            .field("ssrc", 81_267_551u32)
            .field("codec-id", "codec-stats-sink_1")
            .field("packets-sent", 3710u64)
            .field("bytes-sent", 3_352_771u64)
            .build();
        let block = gst::Structure::builder("application/x-rtp-source-stats")
            .field("rb-lsr", lsr)
            .field("rb-dlsr", dlsr)
            .field("rb-exthighestseq", seq)
            .build();
        let remote = gst::Structure::builder("remote-inbound-rtp")
            .field("type", gst_webrtc::WebRTCStatsType::RemoteInboundRtp)
            .field("ssrc", 81_267_551u32)
            .field("packets-lost", 1738i64)
            .field("fraction-lost", 0.796875f64)
            .field("round-trip-time", rtt)
            .field("gst-rtpsource-stats", block)
            .build();
        gst::Structure::builder("application/x-webrtc-stats")
            .field("codec-stats-sink_1", codec)
            .field("rtp-outbound-stream-stats_81267551", outbound)
            .field("rtp-remote-inbound-stream-stats_81267551", remote)
            .build()
    }

    #[test]
    fn a_report_without_lsr_has_no_round_trip_but_still_tells_new_from_old() {
        gst::init().unwrap();
        let fb = video_feedback(&reply(0, 0, 28_527, 0.0));
        assert_eq!(fb.packets_sent, 3710);
        assert_eq!(fb.fraction_lost, Some(0.796875));
        assert_eq!(fb.rtt, None, "a 0 without LSR is no round trip");
        let next = video_feedback(&reply(0, 0, 28_610, 0.0));
        assert_ne!(
            fb.report, next.report,
            "a later report is new by its sequence number"
        );
        let same = video_feedback(&reply(0, 0, 28_527, 0.0));
        assert_eq!(fb.report, same.report);
    }

    #[test]
    fn a_report_with_lsr_has_its_round_trip() {
        gst::init().unwrap();
        let fb = video_feedback(&reply(0x1234_5678, 0x0000_8000, 28_527, 0.042));
        assert_eq!(fb.rtt, Some(std::time::Duration::from_secs_f64(0.042)));
        assert_eq!(fb.report, Some((0x1234_5678, 0x0000_8000, 28_527)));
    }
}
