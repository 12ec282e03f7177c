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
                    if let Ok(r) = s.get::<f64>("round-trip-time") {
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
