//! The stall watchdog: notices when nothing arrives any more over a connected session.
//!
//! webrtcbin 1.22 does not notice a broken network path by itself (libnice's consent checks
//! are not enabled by it, and its connection state stays `connected` when the packets stop).
//! So every packet that arrives on a session's ICE sources is counted here, and the engine
//! fails a connected session that has heard nothing for longer than its allowance: the core
//! then starts a fresh session (new ICE credentials, new candidates, a new DTLS handshake),
//! which is how the call's media comes back after a link went down and up or an address
//! changed.
//!
//! The allowance adapts to the peer: a participant that sends audio and video is heard every
//! few milliseconds, one that only receives is heard only through its RTCP reports (every
//! 1–7.5 s from a GStreamer peer). Three times the longest gap seen since the session
//! connected, never below [`MIN_ALLOWANCE`] nor above [`MAX_ALLOWANCE`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;

/// The shortest silence that counts as a lost path.
pub const MIN_ALLOWANCE: Duration = Duration::from_secs(3);

/// The longest silence tolerated from a peer that has been quiet before.
pub const MAX_ALLOWANCE: Duration = Duration::from_secs(20);

/// Inbound packet times of one session, written from GStreamer's streaming threads.
#[derive(Debug)]
pub struct Inbound {
    origin: Instant,
    /// Milliseconds after `origin` of the last packet (or of the start of watching).
    last_ms: AtomicU64,
    /// The longest gap between two packets since watching started, in milliseconds.
    max_gap_ms: AtomicU64,
    /// Packets counted since watching started.
    packets: AtomicU64,
}

impl Default for Inbound {
    fn default() -> Self {
        Inbound {
            origin: Instant::now(),
            last_ms: AtomicU64::new(0),
            max_gap_ms: AtomicU64::new(0),
            packets: AtomicU64::new(0),
        }
    }
}

impl Inbound {
    fn now_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    /// Notes a packet.
    pub fn note(&self) {
        self.note_at(self.now_ms());
    }

    /// Notes a packet that arrived `now` milliseconds after the origin.
    fn note_at(&self, now: u64) {
        let before = self.last_ms.swap(now, Ordering::Relaxed);
        if self.packets.fetch_add(1, Ordering::Relaxed) > 0 {
            self.max_gap_ms
                .fetch_max(now.saturating_sub(before), Ordering::Relaxed);
        }
    }

    /// Starts counting the packets of every ICE source inside `webrtc` (call once the session
    /// is connected: the sources exist by then).
    pub fn watch(self: &std::sync::Arc<Self>, webrtc: &gst::Element) -> usize {
        self.last_ms.store(self.now_ms(), Ordering::Relaxed);
        let Some(bin) = webrtc.downcast_ref::<gst::Bin>() else {
            return 0;
        };
        let mut sources = 0;
        for e in bin.iterate_recurse().into_iter().flatten() {
            if e.factory().is_none_or(|f| f.name() != "nicesrc") {
                continue;
            }
            let Some(pad) = e.static_pad("src") else {
                continue;
            };
            let me = self.clone();
            pad.add_probe(
                gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
                move |_, _| {
                    me.note();
                    gst::PadProbeReturn::Ok
                },
            );
            sources += 1;
        }
        sources
    }

    /// How long nothing has arrived.
    pub fn silent_for(&self) -> Duration {
        Duration::from_millis(
            self.now_ms()
                .saturating_sub(self.last_ms.load(Ordering::Relaxed)),
        )
    }

    /// How much silence this peer is allowed before its path counts as lost.
    pub fn allowance(&self) -> Duration {
        if self.packets.load(Ordering::Relaxed) < 2 {
            return MAX_ALLOWANCE;
        }
        let gap = Duration::from_millis(self.max_gap_ms.load(Ordering::Relaxed));
        (gap * 3).clamp(MIN_ALLOWANCE, MAX_ALLOWANCE)
    }

    /// Whether the session's path counts as lost.
    pub fn stalled(&self) -> bool {
        self.silent_for() > self.allowance()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: &[u64]) -> Inbound {
        let i = Inbound::default();
        for &t in ms {
            i.note_at(t);
        }
        i
    }

    #[test]
    fn a_peer_sending_media_gets_the_minimum_allowance() {
        let i = at(&[0, 20, 40, 60, 500, 520]);
        assert_eq!(i.allowance(), MIN_ALLOWANCE);
    }

    #[test]
    fn a_peer_heard_only_through_rtcp_gets_three_of_its_gaps() {
        let i = at(&[0, 5_000, 9_000]);
        assert_eq!(i.allowance(), Duration::from_secs(15));
        let i = at(&[0, 30_000]);
        assert_eq!(i.allowance(), MAX_ALLOWANCE);
    }

    #[test]
    fn a_peer_never_heard_since_connecting_gets_the_maximum() {
        assert_eq!(at(&[]).allowance(), MAX_ALLOWANCE);
        assert_eq!(at(&[10]).allowance(), MAX_ALLOWANCE);
    }

    #[test]
    fn silence_past_the_allowance_is_a_stall() {
        let i = at(&[0, 20, 40]);
        assert!(!i.stalled());
        // The last packet 4 s ago (as if it had been at -4 s).
        i.last_ms.store(0, Ordering::Relaxed);
        let i = Inbound {
            origin: Instant::now() - Duration::from_secs(4),
            ..i
        };
        assert!(i.stalled());
    }
}
