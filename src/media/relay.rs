//! The meeting point of the call's encoders and a signaling system that carries the media
//! itself (RTM's RTC gate): encoded frames go out through a bounded [`Relay`] queue, frames of
//! the room's members come in through a bounded channel. Nothing here knows GStreamer or FPNN.
//!
//! # Back-pressure
//!
//! The encoder never waits for the network. The send queue holds at most `max_bytes`; when a
//! slow connection lets it fill, whole video frames go first: the frame that does not fit is
//! dropped, every later one too until a key frame (a receiver cannot decode frames that refer
//! to a dropped one), and a key frame is asked for. Voice that does not fit throws out the
//! queued video first, and only then the oldest voice. Every drop is counted ([`RtmStats`]).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::{Notify, mpsc};
use tracing::debug;

/// Frames from the room waiting for the media engine; more are dropped (and counted).
const INBOUND_QUEUE: usize = 512;

/// An encoded frame of ours, to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutFrame {
    /// One Opus packet (20 ms).
    Voice {
        /// The packet.
        data: Vec<u8>,
        /// When it was captured, Unix ms (local clock).
        captured_ms: i64,
    },
    /// One H.264 access unit, Annex B.
    Video(VideoUnit),
}

/// One H.264 access unit as RTM carries it: parameter sets apart, on key frames only.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VideoUnit {
    /// The access unit without its parameter sets (start codes kept).
    pub data: Vec<u8>,
    /// An instantaneous decoder refresh: decoding can start here.
    pub key: bool,
    /// The sequence parameter set with its start code (key frames only).
    pub sps: Vec<u8>,
    /// The picture parameter set with its start code (key frames only).
    pub pps: Vec<u8>,
    /// When it was captured, Unix ms (local clock).
    pub captured_ms: i64,
}

impl OutFrame {
    fn len(&self) -> usize {
        match self {
            OutFrame::Voice { data, .. } => data.len(),
            OutFrame::Video(v) => v.data.len() + v.sps.len() + v.pps.len(),
        }
    }

    fn is_video(&self) -> bool {
        matches!(self, OutFrame::Video(_))
    }
}

/// A frame a member of the room sent, as the gate pushed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFrame {
    /// The sender.
    pub uid: i64,
    /// The sender's counter for this kind of frame.
    pub seq: i64,
    /// Capture time, server ms.
    pub timestamp: i64,
    /// Voice or video.
    pub kind: InKind,
    /// The Opus packet, or the H.264 access unit.
    pub data: Vec<u8>,
}

/// What an [`InFrame`] carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InKind {
    /// Opus.
    Voice,
    /// H.264; `sps`/`pps` are empty except on key frames.
    Video {
        /// A key frame.
        key: bool,
        /// Sequence parameter set (Annex B).
        sps: Vec<u8>,
        /// Picture parameter set (Annex B).
        pps: Vec<u8>,
    },
}

/// What reaches the media engine from the room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// The device is in the room's media: start the call media if it is not running.
    Joined,
    /// A member's frame.
    Frame(InFrame),
    /// A member left: take their picture off the display.
    Left(i64),
}

/// Send-side numbers, for the media statistics and telemetry.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RtmStats {
    /// Connected to the RTC gate and in the room.
    pub connected: bool,
    /// `voice` quests sent (cumulative for this connection's call).
    pub voice_sent: u64,
    /// `video` quests sent.
    pub video_sent: u64,
    /// Bytes of media sent.
    pub bytes_sent: u64,
    /// Voice packets dropped because the connection was too slow.
    pub voice_dropped: u64,
    /// Video frames dropped because the connection was too slow (including those waiting
    /// for the next key frame after a drop).
    pub video_dropped: u64,
    /// Frames from the room dropped because the media engine fell behind.
    pub inbound_dropped: u64,
    /// Bytes waiting to be sent now.
    pub queued_bytes: u64,
    /// The most bytes that ever waited.
    pub queued_bytes_peak: u64,
    /// The send queue's bound.
    pub queue_limit_bytes: u64,
    /// Connections to the RTC gate made during this call (1 = no reconnect).
    pub connections: u64,
    /// Server time minus local time, ms (from `adjustTime`).
    pub server_offset_ms: i64,
    /// Media sent, kbit/s, since the previous statistics.
    pub bitrate_out_kbps: f64,
    /// Video frames sent per second, since the previous statistics.
    pub fps_out: f64,
}

#[derive(Default)]
struct Queue {
    frames: VecDeque<OutFrame>,
    bytes: usize,
    /// A video frame was dropped: video waits for the next key frame.
    video_blocked: bool,
}

struct Inner {
    queue: Mutex<Queue>,
    max_bytes: usize,
    ready: Notify,
    /// Frames are wanted (connected to the gate and in the room).
    open: AtomicBool,
    /// The encoder should make a key frame now.
    want_key: AtomicBool,
    /// Voice is sent (microphone on).
    voice_on: AtomicBool,
    /// Video is sent (camera on or sharing).
    video_on: AtomicBool,
    server_offset_ms: AtomicI64,
    inbound: mpsc::Sender<Inbound>,
    inbound_rx: Mutex<Option<mpsc::Receiver<Inbound>>>,
    voice_sent: AtomicU64,
    video_sent: AtomicU64,
    bytes_sent: AtomicU64,
    voice_dropped: AtomicU64,
    video_dropped: AtomicU64,
    inbound_dropped: AtomicU64,
    peak: AtomicU64,
    connections: AtomicU64,
}

/// Shared by the media engine (which fills the send queue and reads the room's frames) and
/// the signaling backend (which sends the queue and delivers the room's frames). Cheap to
/// clone.
#[derive(Clone)]
pub struct Relay {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("max_bytes", &self.inner.max_bytes)
            .finish_non_exhaustive()
    }
}

impl Relay {
    /// A relay whose send queue holds at most `max_bytes`.
    pub fn new(max_bytes: usize) -> Relay {
        let (tx, rx) = mpsc::channel(INBOUND_QUEUE);
        Relay {
            inner: Arc::new(Inner {
                queue: Mutex::new(Queue::default()),
                max_bytes,
                ready: Notify::new(),
                open: AtomicBool::new(false),
                want_key: AtomicBool::new(false),
                voice_on: AtomicBool::new(true),
                video_on: AtomicBool::new(true),
                server_offset_ms: AtomicI64::new(0),
                inbound: tx,
                inbound_rx: Mutex::new(Some(rx)),
                voice_sent: AtomicU64::new(0),
                video_sent: AtomicU64::new(0),
                bytes_sent: AtomicU64::new(0),
                voice_dropped: AtomicU64::new(0),
                video_dropped: AtomicU64::new(0),
                inbound_dropped: AtomicU64::new(0),
                peak: AtomicU64::new(0),
                connections: AtomicU64::new(0),
            }),
        }
    }

    /// A bound of about one second of the call's media (`video_kbps` + audio), at least
    /// 256 KiB: enough for a key frame and a burst, small enough that a stalled link costs
    /// little memory and the far end sees fresh frames when it recovers.
    pub fn for_bitrate(video_kbps: u32, audio_kbps: u32) -> Relay {
        let second = (video_kbps as usize + audio_kbps as usize) * 1000 / 8;
        Relay::new(second.max(256 * 1024))
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.inner.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    // ------------------------------------------------------------- the encoders' side

    /// Queues a frame of ours (called from GStreamer's streaming threads; never blocks on the
    /// network). Dropped silently while no gate takes frames or while that kind is off
    /// (muted, camera off); dropped and counted when the queue is full (see the module doc).
    pub fn push(&self, frame: OutFrame) {
        let i = &self.inner;
        if !i.open.load(Ordering::Relaxed) {
            return;
        }
        let on = if frame.is_video() {
            &i.video_on
        } else {
            &i.voice_on
        };
        if !on.load(Ordering::Relaxed) {
            return;
        }
        let len = frame.len();
        let mut q = self.queue();
        match &frame {
            OutFrame::Video(v) => {
                if q.video_blocked && !v.key {
                    i.video_dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                q.video_blocked = false;
                if q.bytes + len > i.max_bytes {
                    q.video_blocked = true;
                    i.video_dropped.fetch_add(1, Ordering::Relaxed);
                    i.want_key.store(true, Ordering::Relaxed);
                    return;
                }
            }
            OutFrame::Voice { .. } => {
                if q.bytes + len > i.max_bytes {
                    self.drop_queued_video(&mut q);
                }
                while q.bytes + len > i.max_bytes {
                    let Some(old) = q.frames.pop_front() else {
                        break;
                    };
                    q.bytes -= old.len();
                    i.voice_dropped.fetch_add(1, Ordering::Relaxed);
                }
                if len > i.max_bytes {
                    i.voice_dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
        q.bytes += len;
        q.frames.push_back(frame);
        i.peak.fetch_max(q.bytes as u64, Ordering::Relaxed);
        drop(q);
        i.ready.notify_one();
    }

    fn drop_queued_video(&self, q: &mut Queue) {
        let before = q.frames.len();
        q.frames.retain(|f| !f.is_video());
        let dropped = before - q.frames.len();
        if dropped > 0 {
            q.bytes = q.frames.iter().map(OutFrame::len).sum();
            q.video_blocked = true;
            self.inner
                .video_dropped
                .fetch_add(dropped as u64, Ordering::Relaxed);
            self.inner.want_key.store(true, Ordering::Relaxed);
        }
    }

    /// Whether a key frame is wanted; clears the wish.
    pub fn take_key_request(&self) -> bool {
        self.inner.want_key.swap(false, Ordering::Relaxed)
    }

    /// Whether anyone takes frames now (the encoders' taps skip their work otherwise).
    pub fn is_open(&self) -> bool {
        self.inner.open.load(Ordering::Relaxed)
    }

    /// Microphone on or off: voice is sent or not.
    pub fn set_voice(&self, on: bool) {
        self.inner.voice_on.store(on, Ordering::Relaxed);
    }

    /// Camera (or a shared screen) on or off: video is sent or not. Turning it on asks for a
    /// key frame, so receivers can decode at once.
    pub fn set_video(&self, on: bool) {
        let was = self.inner.video_on.swap(on, Ordering::Relaxed);
        if on && !was {
            self.queue().video_blocked = true;
            self.inner.want_key.store(true, Ordering::Relaxed);
        }
    }

    /// The room's frames; the media engine takes this once.
    pub fn take_inbound(&self) -> Option<mpsc::Receiver<Inbound>> {
        self.inner
            .inbound_rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Server time minus local time, ms.
    pub fn server_offset_ms(&self) -> i64 {
        self.inner.server_offset_ms.load(Ordering::Relaxed)
    }

    /// Server time now, ms (local time plus the offset from `adjustTime`).
    pub fn server_now_ms(&self) -> i64 {
        unix_ms().saturating_add(self.inner.server_offset_ms.load(Ordering::Relaxed))
    }

    // ------------------------------------------------------------- the gate's side

    /// A connection entered the room: start taking frames, from a key frame.
    pub fn open(&self) {
        {
            let mut q = self.queue();
            q.frames.clear();
            q.bytes = 0;
            q.video_blocked = true;
        }
        self.inner.want_key.store(true, Ordering::Relaxed);
        self.inner.connections.fetch_add(1, Ordering::Relaxed);
        self.inner.open.store(true, Ordering::Relaxed);
        self.deliver(Inbound::Joined);
    }

    /// The connection ended: stop taking frames and forget the queued ones.
    pub fn close(&self) {
        self.inner.open.store(false, Ordering::Relaxed);
        let mut q = self.queue();
        q.frames.clear();
        q.bytes = 0;
    }

    /// A new call: counters start from zero.
    pub fn reset_counters(&self) {
        let i = &self.inner;
        for c in [
            &i.voice_sent,
            &i.video_sent,
            &i.bytes_sent,
            &i.voice_dropped,
            &i.video_dropped,
            &i.inbound_dropped,
            &i.peak,
            &i.connections,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }

    /// The next frame to send, if one waits.
    pub fn pop(&self) -> Option<OutFrame> {
        let mut q = self.queue();
        let f = q.frames.pop_front()?;
        q.bytes -= f.len();
        Some(f)
    }

    /// Whether a frame waits.
    pub fn has_pending(&self) -> bool {
        !self.queue().frames.is_empty()
    }

    /// Resolves when a frame may have been queued since the last call.
    pub async fn ready(&self) {
        self.inner.ready.notified().await;
    }

    /// Counts a frame as sent (`bytes` on the wire).
    pub fn sent(&self, frame: &OutFrame, bytes: usize) {
        let c = if frame.is_video() {
            &self.inner.video_sent
        } else {
            &self.inner.voice_sent
        };
        c.fetch_add(1, Ordering::Relaxed);
        self.inner
            .bytes_sent
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Server time minus local time, ms.
    pub fn set_server_offset(&self, ms: i64) {
        self.inner.server_offset_ms.store(ms, Ordering::Relaxed);
    }

    /// Hands something to the media engine; dropped (and counted) when it is behind.
    pub fn deliver(&self, msg: Inbound) {
        if let Err(e) = self.inner.inbound.try_send(msg) {
            self.inner.inbound_dropped.fetch_add(1, Ordering::Relaxed);
            debug!(error = %e, "a frame from the room was dropped: the media engine is behind");
        }
    }

    /// The numbers as they are now.
    pub fn stats(&self) -> RtmStats {
        let i = &self.inner;
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RtmStats {
            connected: i.open.load(Ordering::Relaxed),
            voice_sent: l(&i.voice_sent),
            video_sent: l(&i.video_sent),
            bytes_sent: l(&i.bytes_sent),
            voice_dropped: l(&i.voice_dropped),
            video_dropped: l(&i.video_dropped),
            inbound_dropped: l(&i.inbound_dropped),
            queued_bytes: self.queue().bytes as u64,
            queued_bytes_peak: l(&i.peak),
            queue_limit_bytes: i.max_bytes as u64,
            connections: l(&i.connections),
            server_offset_ms: i.server_offset_ms.load(Ordering::Relaxed),
            ..RtmStats::default()
        }
    }
}

/// Local wall-clock time, Unix ms.
pub fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// H.264 NAL unit types this module cares about.
const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
const NAL_AUD: u8 = 9;

/// The NAL units of an Annex B byte stream, each with its start code.
pub fn nal_units(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            // A four-byte start code belongs to the unit too.
            let s = if i > 0 && data[i - 1] == 0 { i - 1 } else { i };
            starts.push((s, i + 3));
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut units = Vec::with_capacity(starts.len());
    for (n, &(s, _)) in starts.iter().enumerate() {
        let end = starts.get(n + 1).map_or(data.len(), |&(next, _)| next);
        units.push(&data[s..end]);
    }
    units
}

/// The type of a NAL unit that starts with its start code.
fn nal_type(unit: &[u8]) -> Option<u8> {
    let at = unit.iter().position(|b| *b == 1)?;
    unit.get(at + 1).map(|b| b & 0x1f)
}

/// Cuts an encoded access unit into what a `video` quest carries: the parameter sets apart
/// (taken from the unit, else the last ones seen, kept in `last`), access unit delimiters
/// left out, the rest as it is.
pub fn split_access_unit(au: &[u8], last: &mut (Vec<u8>, Vec<u8>)) -> VideoUnit {
    let mut unit = VideoUnit::default();
    for nal in nal_units(au) {
        match nal_type(nal) {
            Some(NAL_SPS) => last.0 = nal.to_vec(),
            Some(NAL_PPS) => last.1 = nal.to_vec(),
            Some(NAL_AUD) => {}
            Some(t) => {
                unit.key |= t == NAL_IDR;
                unit.data.extend_from_slice(nal);
            }
            None => {}
        }
    }
    if unit.key {
        unit.sps = last.0.clone();
        unit.pps = last.1.clone();
    }
    unit
}

/// Joins what a `pushVideo` carries into one access unit for a decoder: parameter sets (with
/// a start code added where one is missing) before the picture.
pub fn join_access_unit(sps: &[u8], pps: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(sps.len() + pps.len() + data.len() + 8);
    for part in [sps, pps] {
        if part.is_empty() {
            continue;
        }
        if !part.starts_with(&[0, 0, 1]) && !part.starts_with(&[0, 0, 0, 1]) {
            out.extend_from_slice(&[0, 0, 0, 1]);
        }
        out.extend_from_slice(part);
    }
    out.extend_from_slice(data);
    out
}

/// Whether `data` holds a NAL unit of type `kind`.
pub fn has_nal_type(data: &[u8], kind: u8) -> bool {
    nal_units(data).iter().any(|u| nal_type(u) == Some(kind))
}

/// NAL type of a sequence parameter set.
pub const SPS: u8 = NAL_SPS;
/// NAL type of a picture parameter set.
pub const PPS: u8 = NAL_PPS;

#[cfg(test)]
mod tests {
    use super::*;

    fn video(len: usize, key: bool) -> OutFrame {
        OutFrame::Video(VideoUnit {
            data: vec![0; len],
            key,
            ..VideoUnit::default()
        })
    }

    fn voice(len: usize) -> OutFrame {
        OutFrame::Voice {
            data: vec![1; len],
            captured_ms: 0,
        }
    }

    fn drain(r: &Relay) -> Vec<OutFrame> {
        std::iter::from_fn(|| r.pop()).collect()
    }

    #[test]
    fn nothing_is_queued_before_a_gate_takes_frames_and_video_starts_at_a_key_frame() {
        let r = Relay::new(1000);
        r.push(voice(10));
        assert!(!r.has_pending());
        r.open();
        assert!(
            r.take_key_request(),
            "a fresh connection asks for a key frame"
        );
        r.push(video(10, false));
        r.push(video(10, true));
        r.push(video(10, false));
        r.push(voice(10));
        let sent = drain(&r);
        assert_eq!(sent, vec![video(10, true), video(10, false), voice(10)]);
        assert_eq!(r.stats().video_dropped, 1);
    }

    #[test]
    fn a_full_queue_drops_whole_video_frames_until_the_next_key_frame() {
        let r = Relay::new(100);
        r.open();
        r.take_key_request();
        r.push(video(60, true));
        r.push(video(60, false)); // does not fit
        assert!(r.take_key_request());
        r.pop();
        r.push(video(10, false)); // fits, but refers to the dropped frame
        r.push(video(50, true));
        r.push(video(10, false));
        assert_eq!(drain(&r), vec![video(50, true), video(10, false)]);
        let s = r.stats();
        assert_eq!(s.video_dropped, 2);
        assert_eq!(s.queued_bytes, 0);
        assert!(s.queued_bytes_peak <= 100);
    }

    #[test]
    fn voice_pushes_out_queued_video_before_older_voice() {
        let r = Relay::new(100);
        r.open();
        r.push(video(40, true));
        r.push(voice(30));
        r.push(video(20, false));
        r.push(voice(30)); // 120 > 100: both video frames go
        assert_eq!(drain(&r), vec![voice(30), voice(30)]);
        assert_eq!(r.stats().video_dropped, 2);
        for _ in 0..5 {
            r.push(voice(30));
        }
        assert_eq!(drain(&r).len(), 3, "only what fits is kept, the newest");
        assert_eq!(r.stats().voice_dropped, 2);
    }

    #[test]
    fn muted_voice_and_a_closed_camera_are_not_sent() {
        let r = Relay::new(1000);
        r.open();
        r.set_voice(false);
        r.set_video(false);
        r.push(voice(10));
        r.push(video(10, true));
        assert!(!r.has_pending());
        r.take_key_request();
        r.set_video(true);
        assert!(
            r.take_key_request(),
            "the camera coming back asks for a key frame"
        );
        r.push(video(10, false));
        r.push(video(10, true));
        assert_eq!(drain(&r), vec![video(10, true)]);
    }

    #[test]
    fn an_access_unit_is_cut_as_rtm_carries_it() {
        let aud = [0, 0, 0, 1, 0x09, 0xf0];
        let sps = [0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f];
        let pps = [0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80];
        let sei = [0, 0, 1, 0x06, 0x05, 0x01];
        let idr = [0, 0, 0, 1, 0x65, 0x88, 0x84, 0x00, 0x00, 0x03];
        let au: Vec<u8> = [&aud[..], &sps, &pps, &sei, &idr].concat();
        let mut last = Default::default();
        let u = split_access_unit(&au, &mut last);
        assert!(u.key);
        assert_eq!(u.sps, sps);
        assert_eq!(u.pps, pps);
        assert_eq!(u.data, [&sei[..], &idr].concat());
        let p = [0, 0, 0, 1, 0x41, 0x9a, 0x00];
        let u = split_access_unit(&p, &mut last);
        assert!(!u.key);
        assert!(u.sps.is_empty() && u.pps.is_empty());
        assert_eq!(u.data, p);
        // A key frame without parameter sets of its own takes the last ones.
        let u = split_access_unit(&idr, &mut last);
        assert_eq!((u.sps.as_slice(), u.pps.as_slice()), (&sps[..], &pps[..]));
        let joined = join_access_unit(&sps[4..], &pps, &idr);
        assert_eq!(joined, [&sps[..], &pps, &idr].concat());
        assert!(has_nal_type(&joined, SPS) && has_nal_type(&joined, PPS));
    }
}
