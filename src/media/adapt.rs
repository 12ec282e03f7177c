//! Sender-side bitrate adaptation for WebRTC sessions: how much video the path to a participant
//! carries, judged from what every standard peer sends back anyway — RTCP receiver reports
//! (loss, and the round-trip time from their timestamps) — as webrtcbin's statistics expose them.
//!
//! Why our own controller rather than `rtpgccbwe`: that element (gst-plugins-rs) is not shipped
//! by Debian 12, and it needs transport-wide congestion control feedback, which a peer may not
//! offer; receiver reports come from every peer (Chromium, Firefox, GStreamer, a second agent).
//! The rules follow the loss-based half of Google Congestion Control (RFC draft
//! `draft-ietf-rmcat-gcc`): more than 10 % lost → down by half the loss; under 2 % → up; in
//! between → hold. A queue building up on the path (the round trip more than
//! [`QUEUE_DELAY`] above its minimum of the last [`RTT_WINDOW`]) counts as congestion too, so
//! a bottleneck with a deep buffer is found before it drops packets.
//!
//! One encoder feeds every session ("encode once, fan out"), so the encoder runs at the lowest
//! participant's target; [`Level`] steps the resolution and frame rate down when that target is
//! too low for the configured size.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::Serialize;

/// How often the controller wants a report.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// The round trip's minimum is taken over this long.
const RTT_WINDOW: Duration = Duration::from_secs(30);
/// A round trip this far above its minimum means a queue is building on the path.
const QUEUE_DELAY: Duration = Duration::from_millis(100);
/// After a decrease, no increase for this long (the reports still describe the old rate).
const HOLD: Duration = Duration::from_millis(2500);
/// How long without congestion before the rate it last showed at is forgotten.
const FORGET_CONGESTION: Duration = Duration::from_secs(20);
/// Increases are careful from this share of the rate where the path last gave way…
const NEAR_BELOW: f64 = 0.7;
/// …up to this multiple of it; beyond, the path may have widened…
const NEAR_ABOVE: f64 = 1.25;
/// …and beyond this multiple it has: growth is fast again.
const WIDENED: f64 = 2.0;
/// On loss, the target goes below what the receiver got by this factor (GCC's β on
/// overuse): at what got through, a full queue on the path stays full and the far end stays
/// frozen; below it, the queue drains.
const BETA: f64 = 0.85;
/// Loss of 2 % or more above this share of where the path last gave way means a probe
/// failed; the target goes back to this share of it.
const PROBE_FAILED: f64 = 0.95;
/// Growth per second while the path shows no sign of congestion.
const GROWTH: f64 = 0.15;
/// Growth per second between [`NEAR_ABOVE`] and [`WIDENED`]: as GCC's multiplicative
/// increase (8 %), slow enough for a queue to show in the round trip before the path drops
/// packets, where the rate it last gave way at was measured too low.
const GROWTH_PAST: f64 = 0.08;

/// What the statistics say about video sent to one participant, cumulative where it counts.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Feedback {
    /// Video RTP packets sent.
    pub packets_sent: u64,
    /// Video bytes sent.
    pub bytes_sent: u64,
    /// Video packets the peer reports lost (cumulative, from its receiver reports).
    pub packets_lost: i64,
    /// The fraction lost in the peer's latest receiver report, 0–1.
    pub fraction_lost: Option<f64>,
    /// Round-trip time from the latest receiver report.
    pub rtt: Option<Duration>,
    /// What identifies the latest receiver report, when known: its LSR, DLSR and extended
    /// highest sequence number. (A peer that never processed our sender reports sends LSR
    /// and DLSR 0 in every report, as Chromium did with GStreamer 1.26; the sequence number
    /// still moves with every report that follows new packets.)
    pub report: Option<(u32, u32, u32)>,
}

/// The verdict of one update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Too little feedback to judge yet.
    Waiting,
    /// Going up.
    Increase,
    /// Holding.
    Hold,
    /// Loss: going down.
    Loss,
    /// A queue builds up: going down.
    Delay,
}

/// One participant's bitrate controller.
#[derive(Debug, Clone)]
pub struct Controller {
    floor: f64,
    ceiling: f64,
    target: f64,
    last: Option<(Instant, Feedback)>,
    rtts: VecDeque<(Instant, Duration)>,
    hold_until: Option<Instant>,
    /// The rate at which the path last showed congestion (increases slow down near it).
    congested_at: Option<f64>,
    /// Since when the path shows no congestion.
    calm_since: Option<Instant>,
    /// The latest new receiver report: when it was seen, its extended highest sequence number,
    /// the cumulative loss, and the packets and bytes sent by then.
    last_report: Option<(Instant, u32, i64, u64, u64)>,
    /// The last update's verdict.
    pub verdict: Verdict,
    /// The loss seen in the last update, 0–1.
    pub loss: f64,
}

impl Controller {
    /// Starts at `ceiling` kbit/s (the configured bitrate), never below `floor`.
    pub fn new(floor: u32, ceiling: u32) -> Controller {
        let ceiling = f64::from(ceiling.max(1));
        Controller {
            floor: f64::from(floor).min(ceiling),
            ceiling,
            target: ceiling,
            last: None,
            rtts: VecDeque::new(),
            hold_until: None,
            congested_at: None,
            calm_since: None,
            last_report: None,
            verdict: Verdict::Waiting,
            loss: 0.0,
        }
    }

    /// The target, kbit/s.
    pub fn target(&self) -> u32 {
        self.target.round() as u32
    }

    /// Folds in one statistics report; returns the new target in kbit/s.
    pub fn update(&mut self, now: Instant, fb: Feedback) -> u32 {
        let Some((then, before)) = self.last.replace((now, fb)) else {
            return self.target();
        };
        let dt = now.saturating_duration_since(then).as_secs_f64();
        if dt < 0.2 {
            // Too close to the previous report to say anything; keep the older baseline.
            self.last = Some((then, before));
            return self.target();
        }
        let sent = fb.packets_sent.saturating_sub(before.packets_sent);
        let sent_kbps = fb.bytes_sent.saturating_sub(before.bytes_sent) as f64 * 8.0 / 1000.0 / dt;
        if let Some(rtt) = fb.rtt {
            self.rtts.push_back((now, rtt));
        }
        while self
            .rtts
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) > RTT_WINDOW)
        {
            self.rtts.pop_front();
        }
        // Only a new receiver report says anything new (the statistics repeat the latest one
        // until the next arrives): then its own fraction lost is this interval's loss.
        let new_report = match (fb.report, before.report) {
            (Some(now), then) => Some(now) != then,
            (None, _) => {
                fb.packets_lost != before.packets_lost
                    || fb.rtt != before.rtt
                    || fb.fraction_lost != before.fraction_lost
            }
        };
        if sent == 0 || !new_report {
            self.verdict = Verdict::Waiting;
            return self.target();
        }
        let received_kbps = self.received_kbps(now, &fb);
        let loss = match fb.fraction_lost {
            Some(f) if f.is_finite() => f.clamp(0.0, 1.0),
            _ => {
                let lost = fb.packets_lost.saturating_sub(before.packets_lost).max(0) as u64;
                (lost as f64 / sent.max(1) as f64).min(1.0)
            }
        };
        self.loss = loss;
        let min_rtt = self.rtts.iter().map(|(_, r)| *r).min();
        let queueing = match (fb.rtt, min_rtt) {
            (Some(r), Some(m)) => r.saturating_sub(m),
            _ => Duration::ZERO,
        };
        let held = self.hold_until.is_some_and(|t| now < t);
        self.verdict = if loss > 0.10 {
            // Down by half the loss, and at least to what got through: what the receiver
            // counted between its reports when known. (What was sent less the loss fraction
            // underestimates it badly while a queue on the path drains, since the report's
            // fraction is about packets sent a queue's length earlier: the target then grew
            // fast past that low mark, straight into the bottleneck, freezing the far end.)
            let through = received_kbps.unwrap_or(sent_kbps * (1.0 - loss));
            let mut t = self.target * (1.0 - 0.5 * loss);
            if through > 0.0 {
                t = t.min((through * BETA).max(self.floor));
            }
            // What the path carried is where it gives way.
            self.congested_at = Some(if through > 0.0 {
                through.max(self.floor)
            } else {
                t
            });
            self.calm_since = None;
            self.target = t;
            self.hold_until = Some(now + HOLD);
            Verdict::Loss
        } else if let Some(mark) = self
            .congested_at
            .filter(|c| loss >= 0.02 && !held && self.target > c * PROBE_FAILED)
        {
            // Some loss while probing at or above where the path last gave way: the probe
            // failed. Holding there (GCC's rule for 2-10 %) kept a full queue on the path,
            // which cut the tail off every key frame, and the far end froze for seconds
            // asking for more. Back to just below the mark, or below what got through if
            // that is less, so the queue drains.
            let through = received_kbps.unwrap_or(sent_kbps * (1.0 - loss));
            let below = (mark * PROBE_FAILED).min(if through > 0.0 {
                through * BETA
            } else {
                f64::MAX
            });
            self.target = self.target.min(below.max(self.floor));
            self.hold_until = Some(now + HOLD);
            Verdict::Loss
        } else if queueing > QUEUE_DELAY {
            if !held {
                // What actually went out, when the encoder undershoots its target.
                let base = if sent_kbps > self.floor {
                    self.target.min(sent_kbps)
                } else {
                    self.target
                };
                // Where the path gives way is what it carries, the receiver's count when
                // known: a queue still draining after a loss shows while the target is far
                // below that, and taking the target for it let growth race past the mark.
                // Nor may a delay lower the mark a loss set: while a full queue drains the
                // receiver counts far less than the path carries (60 of 250 kbit/s), and
                // growth from a mark that low raced at 15 % a second into the bottleneck.
                let measured = received_kbps.filter(|r| *r > 0.0).unwrap_or(base);
                self.congested_at = Some(self.congested_at.map_or(measured, |c| c.max(measured)));
                self.calm_since = None;
                // A deeper queue means further over what the path carries: down 15 % for a
                // queue of 150 ms, down to half for one of half a second or more (a slow
                // stair of 15 % steps took 15 s to reach a 300 kbit/s bottleneck from 760).
                let factor = (1.0 - queueing.as_secs_f64()).clamp(0.5, 0.85);
                self.target = base * factor;
                self.hold_until = Some(now + HOLD);
            }
            Verdict::Delay
        } else if loss < 0.02 && queueing < QUEUE_DELAY / 2 && !held {
            // Near where the path last gave way, carefully; elsewhere, multiplicatively.
            let calm_since = *self.calm_since.get_or_insert(now);
            // Where the path gave way is forgotten after a while without congestion (the
            // path may have widened).
            if now.saturating_duration_since(calm_since) > FORGET_CONGESTION {
                self.congested_at = None;
            }
            // (A short memory let the target climb fast into the same bottleneck every few
            // seconds, each time with a burst of loss and a frozen picture at the far end.)
            let near = self
                .congested_at
                .is_some_and(|c| self.target > c * NEAR_BELOW && self.target < c * NEAR_ABOVE);
            let past = self
                .congested_at
                .is_some_and(|c| self.target >= c * NEAR_ABOVE && self.target < c * WIDENED);
            let step = if near {
                (self.target * 0.03).max(8.0) * dt.min(2.0)
            } else {
                let growth = if past { GROWTH_PAST } else { GROWTH };
                self.target * ((1.0 + growth).powf(dt.min(2.0)) - 1.0)
            };
            self.target += step.max(8.0);
            Verdict::Increase
        } else {
            Verdict::Hold
        };
        self.target = self.target.clamp(self.floor, self.ceiling);
        self.target()
    }

    /// The rate the receiver got since its previous new report (kbit/s): the packets its
    /// extended highest sequence number moved on by, less those it counts lost, at the mean
    /// size of the packets sent meanwhile. `None` without sequence numbers to go by.
    fn received_kbps(&mut self, now: Instant, fb: &Feedback) -> Option<f64> {
        let seq = fb.report.map(|(_, _, seq)| seq)?;
        let previous =
            self.last_report
                .replace((now, seq, fb.packets_lost, fb.packets_sent, fb.bytes_sent));
        let (then, seq0, lost0, packets0, bytes0) = previous?;
        let dt = now.saturating_duration_since(then).as_secs_f64();
        let expected = u64::from(seq.wrapping_sub(seq0));
        let packets = fb.packets_sent.checked_sub(packets0)?;
        let bytes = fb.bytes_sent.checked_sub(bytes0)?;
        // No movement, a sequence number gone backwards (a wrap of 2^31 or more is none) or
        // no packets to size them by: nothing to measure.
        if dt < 0.2 || expected == 0 || expected >= 1 << 31 || packets == 0 {
            return None;
        }
        let lost = fb
            .packets_lost
            .saturating_sub(lost0)
            .clamp(0, expected as i64) as u64;
        let size = bytes as f64 / packets as f64;
        Some((expected - lost) as f64 * size * 8.0 / 1000.0 / dt)
    }
}

/// A step of resolution and frame rate below the configured one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Level {
    /// Width sent.
    pub width: u32,
    /// Height sent.
    pub height: u32,
    /// Frames per second sent.
    pub framerate: u32,
}

/// Bits per pixel (per frame) a level needs to keep: below this it steps down.
const BPP_DOWN: f64 = 0.025;
/// Bits per pixel the level above needs before it is taken again.
const BPP_UP: f64 = 0.035;

/// Even, and at least 2.
fn even(v: u32) -> u32 {
    (v / 2 * 2).max(2)
}

impl Level {
    /// The ladder for a configured size and rate: full; half size; half size at half rate;
    /// quarter size at half rate. Quality layers are steps of it (the engine's `layer_step`):
    /// large the first, medium the second, small the last.
    pub fn ladder(width: u32, height: u32, framerate: u32) -> [Level; 4] {
        let half_rate = (framerate / 2).max(1);
        [
            Level {
                width,
                height,
                framerate,
            },
            Level {
                width: even(width / 2),
                height: even(height / 2),
                framerate,
            },
            Level {
                width: even(width / 2),
                height: even(height / 2),
                framerate: half_rate,
            },
            Level {
                width: even(width / 4),
                height: even(height / 4),
                framerate: half_rate,
            },
        ]
    }

    fn bpp(&self, kbps: u32) -> f64 {
        f64::from(kbps) * 1000.0
            / (f64::from(self.width) * f64::from(self.height) * f64::from(self.framerate.max(1)))
    }

    /// The step for `kbps`, from the current step `current` (with hysteresis: a step is left
    /// downwards below [`BPP_DOWN`], taken upwards only at [`BPP_UP`]), never above `top`.
    pub fn choose(ladder: &[Level; 4], current: usize, kbps: u32, top: usize) -> usize {
        let mut i = current.min(ladder.len() - 1).max(top);
        while i + 1 < ladder.len() && ladder[i].bpp(kbps) < BPP_DOWN {
            i += 1;
        }
        while i > top && ladder[i - 1].bpp(kbps) >= BPP_UP {
            i -= 1;
        }
        i
    }

    /// [`Level::choose`] for an encoder that should change size only when nothing else helps
    /// (a hardware encoder that reallocates its buffers on each change; the Pi 4's is reported
    /// to fail after a few dozen): down a step only once the bitrate is at its floor
    /// (`at_floor`), up whenever the bitrate carries it.
    pub fn choose_keeping_size(
        ladder: &[Level; 4],
        current: usize,
        kbps: u32,
        top: usize,
        at_floor: bool,
    ) -> usize {
        let chosen = Level::choose(ladder, current, kbps, top);
        if chosen > current.max(top) && !at_floor {
            current.max(top)
        } else {
            chosen
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RTT: Duration = Duration::from_millis(20);

    /// Drives a controller with one report a second: `rate` kbit/s of 1200-byte packets
    /// offered, of which the path carries `capacity` (the rest is lost), and an extra queueing
    /// delay of `queue` (the receiver's counts through [`Counted`]).
    struct Path {
        r: Counted,
        second: u64,
    }

    impl Path {
        fn new(floor: u32, ceiling: u32) -> Path {
            let mut r = Counted::new(floor, ceiling);
            r.c.update(r.t0, Feedback::default());
            Path { r, second: 0 }
        }

        fn second(&mut self, capacity: u32, queue: Duration) -> u32 {
            self.second += 1;
            let rate = self.r.c.target();
            let packets = u64::from(rate) * 1000 / 8 / 1200;
            let carried = u64::from(rate.min(capacity)) * 1000 / 8 / 1200;
            let queue_ms = queue.as_millis() as u64;
            self.r.report(
                self.second,
                u64::from(rate),
                carried,
                packets - carried,
                None,
                queue_ms,
            )
        }
    }

    #[test]
    fn loss_on_a_narrow_path_brings_the_target_below_its_capacity_and_back_up_after() {
        let mut p = Path::new(100, 1500);
        let mut seconds = 0;
        while p.second(300, Duration::ZERO) > 300 {
            seconds += 1;
            assert!(seconds < 8, "still at {} after {seconds} s", p.r.c.target());
        }
        // Around the capacity it probes and backs off, never far off, never at the floor.
        for _ in 0..30 {
            let t = p.second(300, Duration::ZERO);
            assert!((150..=400).contains(&t), "{t}");
        }
        // The path widens: back to the ceiling within 25 s.
        let mut seconds = 0;
        while p.second(100_000, Duration::ZERO) < 1500 {
            seconds += 1;
            assert!(
                seconds < 25,
                "still at {} after {seconds} s",
                p.r.c.target()
            );
        }
    }

    /// A controller fed by a receiver whose counts are given (1200-byte packets, a new report
    /// every second): `sent` kbit/s sent in that second, `arrived` and `lost` packets as the
    /// receiver counts them, its loss fraction (`None`: lost of arrived and lost; given, it may
    /// be about packets sent a queue's length earlier), and a queue adding to the round trip.
    struct Counted {
        c: Controller,
        fb: Feedback,
        t0: Instant,
    }

    impl Counted {
        fn new(floor: u32, ceiling: u32) -> Counted {
            Counted {
                c: Controller::new(floor, ceiling),
                fb: Feedback::default(),
                t0: Instant::now(),
            }
        }

        fn report(
            &mut self,
            second: u64,
            sent: u64,
            arrived: u64,
            lost: u64,
            fraction: Option<f64>,
            queue_ms: u64,
        ) -> u32 {
            let fb = &mut self.fb;
            let packets = sent * 1000 / 8 / 1200;
            fb.packets_sent += packets;
            fb.bytes_sent += packets * 1200;
            fb.packets_lost += lost as i64;
            fb.fraction_lost =
                Some(fraction.unwrap_or(lost as f64 / (arrived + lost).max(1) as f64));
            fb.rtt = Some(RTT + Duration::from_millis(queue_ms));
            let (_, _, seq) = fb.report.unwrap_or_default();
            fb.report = Some((1, 0, seq.wrapping_add((arrived + lost) as u32)));
            self.c.update(self.t0 + Duration::from_secs(second), *fb)
        }
    }

    #[test]
    fn a_loss_takes_the_rate_the_receiver_counted_and_growth_near_it_is_careful() {
        let mut r = Counted::new(100, 1500);
        for i in 0..5 {
            r.report(i, 1500, 156, 0, Some(0.0), 0);
        }
        // The path narrowed to about 250 kbit/s (26 packets a second get through); by the
        // time the report shows half lost, the encoder already sends less.
        let t = r.report(5, 200, 26, 26, Some(0.5), 0);
        assert_eq!(r.c.verdict, Verdict::Loss);
        // 26 packets of 1,200 bytes a second: 250 kbit/s arrived; the target goes to 0.85 of it
        // (the queue drains), not to 100.
        assert!(
            (205..=220).contains(&t),
            "down to 0.85 of what arrived, not to 100: {t}"
        );
        // No more loss: the target grows by little steps near where the path gave way, not
        // by 15 % a second into it; past 1.25 times that, by 8 % a second up to twice it;
        // beyond, by 15 % again.
        let mut before = t;
        let mut fast = false;
        for i in 6..60 {
            let sent = u64::from(before);
            let t = r.report(i, sent, sent * 1000 / 8 / 1200, 0, Some(0.0), 0);
            if before < 300 {
                assert!(t <= before + 10, "from {before} to {t} in a second");
            } else if before < 500 {
                assert!(t <= before * 109 / 100, "from {before} to {t} in a second");
            } else if t < 1500 {
                fast |= t >= before * 114 / 100;
            }
            before = t;
        }
        assert_eq!(before, 1500);
        assert!(
            fast,
            "growth is fast again well past where the path gave way"
        );
    }

    #[test]
    fn a_little_loss_while_probing_above_where_the_path_gave_way_backs_off() {
        let mut r = Counted::new(100, 1500);
        for i in 0..5 {
            r.report(i, 1500, 156, 0, Some(0.0), 0);
        }
        // The path gives way at about 250 kbit/s (26 packets a second).
        r.report(5, 200, 26, 26, Some(0.5), 0);
        let mark = r.c.congested_at.unwrap();
        let mut t = r.c.target();
        let mut second = 6;
        while f64::from(t) <= mark {
            let sent = u64::from(t);
            t = r.report(second, sent, sent * 1000 / 8 / 1200, 0, Some(0.0), 0);
            second += 1;
            assert!(second < 60, "never came up to the mark {mark}: {t}");
        }
        // Above the mark, 5 % lost: GCC would hold there, and the queue would stay full.
        let sent = u64::from(t);
        let after = r.report(second, sent, sent * 1000 / 8 / 1200, 2, Some(0.05), 0);
        assert_eq!(r.c.verdict, Verdict::Loss);
        assert!(
            f64::from(after) <= mark * 0.95 + 1.0,
            "from {t} to {after} (mark {mark})"
        );
        // Far below the mark, the same loss only holds (after the hold time).
        let before = r.c.target();
        let low = r.report(second + 3, u64::from(before), 20, 1, Some(0.05), 0);
        assert_eq!((r.c.verdict, low), (Verdict::Hold, before));
    }

    #[test]
    fn a_queue_draining_after_a_loss_does_not_lower_where_the_path_gives_way() {
        // The path carries 250 kbit/s (26 packets a second); a loss takes the target to 0.85
        // of the 150 that arrived, and the queue it left is still draining at the path's rate
        // when the hold is over.
        let mut r = Counted::new(100, 1500);
        for i in 0..5 {
            r.report(i, 1500, 156, 0, None, 0);
        }
        let t = r.report(5, 160, 16, 20, None, 300);
        assert!((120..=140).contains(&t), "{t}");
        r.report(6, 130, 26, 0, None, 300);
        r.report(7, 130, 26, 0, None, 300);
        let t = r.report(8, 130, 26, 0, None, 300);
        assert_eq!(r.c.verdict, Verdict::Delay);
        assert!(t < 130, "{t}");
        // Still draining, and after the hold the receiver counts little (8 packets: 77
        // kbit/s): that does not make the path look narrower than the 250 it carried.
        r.report(9, 120, 26, 0, None, 300);
        r.report(10, 120, 26, 0, None, 300);
        let t = r.report(11, 120, 8, 0, None, 300);
        assert_eq!(r.c.verdict, Verdict::Delay);
        // The queue is gone: growth is careful from 0.7 of the 250 the path carried on.
        let mut before = t;
        for i in 12..40 {
            let sent = u64::from(before);
            let t = r.report(i, sent, sent * 1000 / 8 / 1200, 0, None, 0);
            if before > 180 && before < 300 {
                assert!(t <= before + 10, "from {before} to {t} in a second");
            }
            before = t;
        }
        assert!(before > 300, "and it does grow: {before}");
    }

    #[test]
    fn a_growing_queue_lowers_the_target_before_anything_is_lost() {
        let mut p = Path::new(100, 1500);
        for _ in 0..5 {
            assert_eq!(p.second(100_000, Duration::ZERO), 1500);
        }
        let t = p.second(100_000, Duration::from_millis(400));
        assert!(t < 1500 * 9 / 10, "{t}");
        assert_eq!(p.r.c.verdict, Verdict::Delay);
    }

    #[test]
    fn the_target_stays_between_floor_and_ceiling() {
        let mut p = Path::new(200, 800);
        for _ in 0..20 {
            assert!(p.second(10, Duration::ZERO) >= 200);
        }
        assert_eq!(p.r.c.target(), 200);
        for _ in 0..60 {
            assert!(p.second(100_000, Duration::ZERO) <= 800);
        }
        assert_eq!(p.r.c.target(), 800);
    }

    #[test]
    fn no_feedback_changes_nothing() {
        let mut c = Controller::new(100, 1500);
        let t0 = Instant::now();
        for i in 0..10 {
            assert_eq!(
                c.update(t0 + Duration::from_secs(i), Feedback::default()),
                1500
            );
        }
        // Hostile numbers: counters going backwards, a fraction above 1.
        let fb = Feedback {
            packets_sent: 5,
            bytes_sent: 1,
            packets_lost: i64::MIN,
            fraction_lost: Some(7.0),
            rtt: Some(Duration::MAX),
            report: Some((0, 0, 1)),
        };
        c.update(t0 + Duration::from_secs(20), fb);
        let back = Feedback {
            packets_lost: i64::MAX,
            report: Some((0, 0, 2)),
            ..Feedback::default()
        };
        let t = c.update(t0 + Duration::from_secs(21), back);
        assert!((100..=1500).contains(&t));
    }

    #[test]
    fn an_encoder_that_keeps_its_size_steps_down_only_at_the_bitrate_floor() {
        let ladder = Level::ladder(1280, 720, 30);
        // 250 kbit/s would take a plain encoder down a step; above the floor it stays.
        assert_eq!(Level::choose_keeping_size(&ladder, 0, 250, 0, false), 0);
        assert_eq!(Level::choose_keeping_size(&ladder, 0, 250, 0, true), 1);
        // Back up as soon as the bitrate carries the step above.
        assert_eq!(Level::choose_keeping_size(&ladder, 1, 1000, 0, false), 0);
        // A higher top (a layer) is followed at once.
        assert_eq!(Level::choose_keeping_size(&ladder, 0, 1500, 2, false), 2);
    }

    #[test]
    fn the_ladder_steps_down_with_the_bitrate_and_up_with_hysteresis() {
        let ladder = Level::ladder(1280, 720, 30);
        assert_eq!(
            ladder[1],
            Level {
                width: 640,
                height: 360,
                framerate: 30
            }
        );
        assert_eq!(
            ladder[3],
            Level {
                width: 320,
                height: 180,
                framerate: 15
            }
        );
        assert_eq!(Level::choose(&ladder, 0, 1500, 0), 0);
        assert_eq!(Level::choose(&ladder, 0, 250, 0), 1);
        assert_eq!(Level::choose(&ladder, 0, 100, 0), 2);
        assert_eq!(Level::choose(&ladder, 0, 40, 0), 3);
        // 800 kbit/s keeps 720p30 but does not bring it back from 360p.
        assert_eq!(Level::choose(&ladder, 0, 800, 0), 0);
        assert_eq!(Level::choose(&ladder, 1, 800, 0), 1);
        assert_eq!(Level::choose(&ladder, 1, 1000, 0), 0);
        // A far end asking for the small stream caps it, whatever the bitrate.
        assert_eq!(Level::choose(&ladder, 0, 1500, 3), 3);
    }
}
