//! An RTM room's media in the call pipeline. RTM's RTC rooms do not use WebRTC: the device's
//! own encoded frames leave through taps on the encoders' tees (an `appsink` each) into the
//! [`Relay`], and each member's frames come in through an `appsrc` per member and kind,
//! decoded onto the same display layout and speaker mixer the WebRTC sessions use.
//!
//! Send side: one H.264 access unit per `video` quest, parameter sets apart on key frames, a
//! key frame at least every second (and whenever the relay asks: a new connection, video
//! turned back on, frames dropped); one Opus packet per `voice` quest. Both are stamped with
//! their capture time.
//!
//! Receive side: a small reorder buffer per member and kind keyed on the sender's `seq` (the
//! gate's TCP keeps order; it matters after a sender restarts its counter or a gate that
//! reorders), video decoding started at a key frame that carries its parameter sets and
//! restarted at the next one after a gap, voice more than [`VOICE_TOO_OLD_MS`] behind the
//! server's clock dropped.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::pipeline::{CallPipeline, RemoteOutputs, make};
use super::relay::{self, InFrame, InKind, OutFrame, Relay};
use super::session::{add_chain, h264_decoding, output_chain};
use super::stats::SessionStats;
use super::{Internal, MediaError};
use crate::core::ClientId;

/// Voice this far behind the server's clock is not worth playing.
pub const VOICE_TOO_OLD_MS: i64 = 3000;

/// Timestamps further off than this come from a sender whose clock is not the server's (an
/// SDK that stamps with its own steady clock): their age means nothing and is not checked.
const CLOCK_PLAUSIBLE_MS: i64 = 10 * 60 * 1000;

/// Frames held to put a member's stream back in order before skipping a missing one.
const VIDEO_REORDER: usize = 3;
const VOICE_REORDER: usize = 5;

/// A jump in a sender's counter this large is a restart, not loss.
const SEQ_RESTART: u64 = 1000;

/// The longest the encoder may go without a key frame: receivers join at key frames and
/// RTM has no way to ask for one.
const KEY_FRAME_EVERY: Duration = Duration::from_secs(1);

/// Members whose frames are taken (the display shows at most 16 pictures); frames of further
/// uids are dropped and counted.
pub const MAX_MEMBERS: usize = 16;

/// A member's branch that failed is not made again sooner than this: a sender of nothing but
/// broken key frames costs one branch a second, not one per frame.
const RESTART_AFTER: Duration = Duration::from_secs(1);

/// At most this much of a member's stream waits in its `appsrc`.
const APPSRC_BYTES: u64 = 2 * 1024 * 1024;

/// Latency given to members' streams, so their frames, stamped on arrival, reach the mixers
/// in time.
const MEMBER_LATENCY: Duration = Duration::from_millis(100);

/// Puts a stream back in order by its sequence number.
#[derive(Debug)]
pub struct Reorder<T> {
    next: Option<i64>,
    held: BTreeMap<i64, T>,
    depth: usize,
    /// A frame far behind the stream: a straggler, or the first of a sender that started
    /// counting again from a lower number (a member who joined again).
    behind: Option<(i64, T)>,
    /// Frames skipped as lost (cumulative).
    pub lost: u64,
}

impl<T> Reorder<T> {
    /// Holds at most `depth` frames waiting for a missing one.
    pub fn new(depth: usize) -> Reorder<T> {
        Reorder {
            next: None,
            held: BTreeMap::new(),
            depth,
            behind: None,
            lost: 0,
        }
    }

    /// Takes frame `seq`; returns the frames now in order, and whether one was skipped.
    pub fn push(&mut self, seq: i64, item: T) -> (Vec<T>, bool) {
        let mut gap = false;
        let next = *self.next.get_or_insert(seq);
        // A sender's numbers are anything it likes: no arithmetic on them may overflow.
        if seq.abs_diff(next) > SEQ_RESTART {
            // The sender started counting again (or jumped): start over from here.
            gap = !self.held.is_empty() || seq != next;
            self.held.clear();
            self.next = Some(seq);
        } else if seq < next {
            // Farther behind than any frame still waited for: a straggler, or a sender that
            // started counting again below where it was (a member who left and joined again,
            // or whose earlier frames came after the call ended). Two in a row are a restart,
            // followed from the first of them; one alone is dropped.
            if next.abs_diff(seq) <= self.depth as u64 {
                self.behind = None;
                return (Vec::new(), false); // late or repeated
            }
            match self.behind.take() {
                Some((first, held)) if first.checked_add(1) == Some(seq) => {
                    gap = true;
                    self.held.clear();
                    self.held.insert(first, held);
                    self.next = Some(first);
                }
                _ => {
                    self.behind = Some((seq, item));
                    return (Vec::new(), false);
                }
            }
        } else {
            self.behind = None;
        }
        self.held.insert(seq, item);
        let mut out = Vec::new();
        loop {
            let next = self.next.expect("set above");
            if let Some(item) = self.held.remove(&next) {
                out.push(item);
                self.next = Some(next.saturating_add(1));
                if next == i64::MAX {
                    break;
                }
                continue;
            }
            if self.held.len() > self.depth
                && let Some((&first, _)) = self.held.first_key_value()
            {
                gap = true;
                self.lost += first.abs_diff(next);
                self.next = Some(first);
                continue;
            }
            break;
        }
        (out, gap)
    }
}

/// Counters of one member, shared with pad probes.
#[derive(Debug, Default)]
struct Counts {
    video_received: AtomicU64,
    video_decoded: AtomicU64,
    voice_received: AtomicU64,
    voice_decoded: AtomicU64,
    bytes_in: AtomicU64,
}

/// A member's decoding branch of one kind.
struct Feed {
    src: gst_app::AppSrc,
    elements: Vec<gst::Element>,
    mix: (gst::Element, gst::Pad),
}

struct Member {
    video: Option<Feed>,
    voice: Option<Feed>,
    video_order: Reorder<InFrame>,
    voice_order: Reorder<InFrame>,
    /// Video waits for a key frame with parameter sets (at the start, after a gap).
    waiting_key: bool,
    counts: Arc<Counts>,
    /// Frames that could not be used (malformed, before a key frame, stale voice).
    discarded: u64,
    /// Times a decoding branch failed.
    failures: u64,
    /// When a branch last failed (no new one before [`RESTART_AFTER`]).
    failed_at: Option<Instant>,
}

impl Member {
    fn new() -> Member {
        Member {
            video: None,
            voice: None,
            video_order: Reorder::new(VIDEO_REORDER),
            voice_order: Reorder::new(VOICE_REORDER),
            waiting_key: true,
            counts: Arc::default(),
            discarded: 0,
            failures: 0,
            failed_at: None,
        }
    }
}

/// The RTM side of the media engine.
pub(super) struct RtcRoom {
    relay: Relay,
    members: BTreeMap<i64, Member>,
    internal: mpsc::UnboundedSender<Internal>,
    /// Frames from uids beyond [`MAX_MEMBERS`].
    strangers: u64,
}

impl RtcRoom {
    pub(super) fn new(relay: Relay, internal: mpsc::UnboundedSender<Internal>) -> RtcRoom {
        RtcRoom {
            relay,
            members: BTreeMap::new(),
            internal,
            strangers: 0,
        }
    }

    pub(super) fn relay(&self) -> &Relay {
        &self.relay
    }

    /// Adds the taps to a call pipeline that is not playing yet, and sets its Opus encoder as
    /// the RTM SDKs set theirs: in-band forward error correction (with 5 % expected loss, below
    /// which libopus adds none) and discontinuous transmission (1-byte packets in silence).
    pub(super) fn attach(&self, call: &CallPipeline, framerate: u32) -> Result<(), MediaError> {
        let opus = &call.audio_encoder;
        for (name, value) in [
            ("inband-fec", "true"),
            ("dtx", "true"),
            ("packet-loss-percentage", "5"),
        ] {
            if opus.find_property(name).is_some() {
                opus.set_property_from_str(name, value);
            }
        }
        let video = tap(call, &call.video_tee, "rtm-video")?;
        let relay = self.relay.clone();
        let mut last_sets = (Vec::new(), Vec::new());
        let mut last_key: Option<Instant> = None;
        let mut asked: Option<Instant> = None;
        // A frame period's slack, so the forced key frame lands at or before the second.
        let every = KEY_FRAME_EVERY.saturating_sub(Duration::from_millis(
            1000 / u64::from(framerate.max(1)) + 10,
        ));
        video.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    if !relay.is_open() {
                        last_key = None;
                        return Ok(gst::FlowSuccess::Ok);
                    }
                    let Some(buffer) = sample.buffer() else {
                        return Ok(gst::FlowSuccess::Ok);
                    };
                    let Ok(map) = buffer.map_readable() else {
                        return Ok(gst::FlowSuccess::Ok);
                    };
                    let mut unit = relay::split_access_unit(map.as_slice(), &mut last_sets);
                    unit.captured_ms = captured_ms(sink.upcast_ref(), buffer.pts());
                    let now = Instant::now();
                    if unit.key {
                        last_key = Some(now);
                        asked = None;
                    }
                    let due = last_key.is_none_or(|k| now.duration_since(k) >= every);
                    let wanted = relay.take_key_request();
                    let recently = asked.is_some_and(|a| now.duration_since(a) < every / 2);
                    if (due || wanted) && !recently && !unit.key {
                        asked = Some(now);
                        let ev = gstreamer_video::UpstreamForceKeyUnitEvent::builder()
                            .all_headers(true)
                            .build();
                        sink.send_event(ev);
                    }
                    relay.push(OutFrame::Video(unit));
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        let voice = tap(call, &call.audio_tee, "rtm-voice")?;
        let relay = self.relay.clone();
        voice.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    if !relay.is_open() {
                        return Ok(gst::FlowSuccess::Ok);
                    }
                    if let Some(buffer) = sample.buffer()
                        && let Ok(map) = buffer.map_readable()
                        && !map.is_empty()
                    {
                        relay.push(OutFrame::Voice {
                            data: map.to_vec(),
                            captured_ms: captured_ms(sink.upcast_ref(), buffer.pts()),
                        });
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        Ok(())
    }

    /// A member's frame.
    pub(super) fn frame(&mut self, call: Option<&CallPipeline>, frame: InFrame) {
        let uid = frame.uid;
        if !self.members.contains_key(&uid) && self.members.len() >= MAX_MEMBERS {
            self.strangers += 1;
            if self.strangers == 1 {
                warn!(
                    uid,
                    max = MAX_MEMBERS,
                    "frames from more members than are shown; dropped"
                );
            }
            return;
        }
        // Outside a call nothing is shown, and nothing may be remembered either: a late frame
        // of the call that ended would set where the next call's stream is expected to be.
        let Some(call) = call else { return };
        let member = self.members.entry(uid).or_insert_with(Member::new);
        member
            .counts
            .bytes_in
            .fetch_add(frame.data.len() as u64, Ordering::Relaxed);
        let is_video = matches!(frame.kind, InKind::Video { .. });
        let (ready, gap) = if is_video {
            member.counts.video_received.fetch_add(1, Ordering::Relaxed);
            member.video_order.push(frame.seq, frame)
        } else {
            member.counts.voice_received.fetch_add(1, Ordering::Relaxed);
            member.voice_order.push(frame.seq, frame)
        };
        if is_video && gap {
            member.waiting_key = true;
        }
        for f in ready {
            let video = matches!(f.kind, InKind::Video { .. });
            let result = match f.kind {
                InKind::Video { key, sps, pps } => {
                    let m = self.members.get_mut(&uid).expect("a member");
                    if m.waiting_key {
                        if !(key && !sps.is_empty() && !pps.is_empty()) {
                            m.discarded += 1;
                            continue;
                        }
                        m.waiting_key = false;
                    }
                    let data = if key {
                        relay::join_access_unit(&sps, &pps, &f.data)
                    } else {
                        f.data
                    };
                    self.feed(call, uid, true)
                        .map(|feed| feed.map(|s| (s, data)))
                }
                InKind::Voice => {
                    let age = self.relay.server_now_ms().saturating_sub(f.timestamp);
                    if (VOICE_TOO_OLD_MS..CLOCK_PLAUSIBLE_MS).contains(&age) {
                        self.members.get_mut(&uid).expect("a member").discarded += 1;
                        continue;
                    }
                    self.feed(call, uid, false)
                        .map(|feed| feed.map(|s| (s, f.data)))
                }
            };
            match result {
                Ok(Some((src, data))) => {
                    // A full source means the branch is not being drained (a stalled
                    // decoder): the new frame is dropped, as `leaky-type=upstream` would
                    // (GStreamer 1.20+ only); video then waits for the next key frame.
                    if src.current_level_bytes() >= APPSRC_BYTES {
                        let m = self.members.get_mut(&uid).expect("a member");
                        m.discarded += 1;
                        m.waiting_key |= video;
                        continue;
                    }
                    if let Err(e) = src.push_buffer(gst::Buffer::from_mut_slice(data)) {
                        debug!(uid, error = ?e, "a member's frame was not taken");
                    }
                }
                Ok(None) => {} // no display or speaker: counted only
                Err(e) => {
                    self.members.get_mut(&uid).expect("a member").discarded += 1;
                    warn!(uid, error = %e, "cannot decode a member's media");
                }
            }
        }
    }

    /// The `appsrc` of `uid`'s branch of one kind, made (into the compositor or the mixer)
    /// when there is none; `None` without a display (speaker), or while a failed branch waits
    /// out [`RESTART_AFTER`].
    fn feed(
        &mut self,
        call: &CallPipeline,
        uid: i64,
        video: bool,
    ) -> Result<Option<gst_app::AppSrc>, MediaError> {
        let member = self.members.get_mut(&uid).expect("a member");
        let slot = if video { &member.video } else { &member.voice };
        if let Some(f) = slot {
            return Ok(Some(f.src.clone()));
        }
        if member
            .failed_at
            .is_some_and(|t| t.elapsed() < RESTART_AFTER)
        {
            return Ok(None);
        }
        let output = if video {
            &call.remote.compositor
        } else {
            &call.remote.mixer
        };
        let Some(mixer) = output.clone() else {
            return Ok(None);
        };
        let caps = if video {
            gst::Caps::builder("video/x-h264")
                .field("stream-format", "byte-stream")
                .field("alignment", "au")
                .build()
        } else {
            gst::Caps::builder("audio/x-opus")
                .field("channel-mapping-family", 0i32)
                .field("channels", 1i32)
                .field("rate", 48000i32)
                .build()
        };
        let src = appsrc(&caps);
        let mut chain = vec![src.clone().upcast::<gst::Element>()];
        if video {
            chain.extend(h264_decoding(&call.remote, None)?);
        } else {
            chain.push(make("opusdec")?);
        }
        name_feed(&chain, uid, video);
        let feed = self.start_feed(call, uid, chain, &mixer, video)?;
        let member = self.members.get_mut(&uid).expect("a member");
        if video {
            member.video = Some(feed);
        } else {
            member.voice = Some(feed);
        }
        info!(uid, video, "decoding a member's stream");
        Ok(Some(src))
    }

    /// Adds `chain` (appsrc … decoder) to the running pipeline, into `mixer`.
    fn start_feed(
        &mut self,
        call: &CallPipeline,
        uid: i64,
        chain: Vec<gst::Element>,
        mixer: &gst::Element,
        is_video: bool,
    ) -> Result<Feed, MediaError> {
        let pipeline = &call.pipeline;
        add_chain(pipeline, &chain, "appsrc", "decoder")?;
        let (output, mix_pad) = output_chain(pipeline, mixer, is_video)?;
        let decoded = chain.last().expect("a decoder").static_pad("src");
        let first = output[0].static_pad("sink").expect("converter sink");
        decoded
            .expect("a decoder's src pad")
            .link(&first)
            .map_err(|_| MediaError::Link {
                from: "decoder".into(),
                to: "converter".into(),
            })?;
        let counts = self.members.get(&uid).expect("a member").counts.clone();
        let internal = self.internal.clone();
        first.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            let c = if is_video {
                &counts.video_decoded
            } else {
                &counts.voice_decoded
            };
            if c.fetch_add(1, Ordering::Relaxed) == 0 && is_video {
                let _ = internal.send(Internal::MemberVideo { uid });
            }
            gst::PadProbeReturn::Ok
        });
        if is_video {
            call.remote
                .layout
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .add(ClientId(uid), mix_pad.clone());
        }
        let elements: Vec<gst::Element> = chain.into_iter().chain(output).collect();
        for e in elements.iter().rev() {
            e.sync_state_with_parent()
                .map_err(|_| MediaError::Invalid(format!("cannot start {}", e.name())))?;
        }
        let src = elements[0]
            .clone()
            .downcast::<gst_app::AppSrc>()
            .expect("an appsrc");
        Ok(Feed {
            src,
            elements,
            mix: (mixer.clone(), mix_pad),
        })
    }

    /// The member and kind (video or not) whose decoding element posted a message from
    /// `path`, if any.
    pub(super) fn owner(&self, path: &str) -> Option<(i64, bool)> {
        self.members.keys().find_map(|uid| {
            [true, false]
                .into_iter()
                .find(|video| path.contains(&feed_prefix(*uid, *video)))
                .map(|video| (*uid, video))
        })
    }

    /// A member's decoding failed (a stream that is not what it claims, from a broken or
    /// hostile sender): that branch goes, and the next key frame (or voice packet) starts a
    /// fresh one. The call and every other member carry on.
    pub(super) fn feed_failed(
        &mut self,
        call: Option<&CallPipeline>,
        uid: i64,
        video: bool,
        why: &str,
    ) {
        let Some(member) = self.members.get_mut(&uid) else {
            return;
        };
        let feed = if video {
            member.waiting_key = true;
            member.video.take()
        } else {
            member.voice.take()
        };
        // The branch's other elements report the same failure after it is gone.
        let Some(feed) = feed else { return };
        member.discarded += 1;
        member.failures += 1;
        member.failed_at = Some(Instant::now());
        if member.failures == 1 {
            warn!(
                uid,
                video,
                error = why,
                "a member's stream could not be decoded; decoding restarts at its next frame (further failures at debug level)"
            );
        } else {
            debug!(
                uid,
                video,
                error = why,
                "a member's stream could not be decoded again"
            );
        }
        if let Some(call) = call {
            remove_feed(call, &call.remote, feed);
        }
    }

    /// A member left: their branches leave the pipeline.
    pub(super) fn left(&mut self, call: Option<&CallPipeline>, uid: i64) {
        let Some(member) = self.members.remove(&uid) else {
            return;
        };
        info!(uid, "a member's media ended");
        let Some(call) = call else { return };
        for feed in [member.video, member.voice].into_iter().flatten() {
            remove_feed(call, &call.remote, feed);
        }
    }

    /// The call's media stopped: forget every member (their elements went with the pipeline).
    pub(super) fn clear(&mut self) {
        self.members.clear();
    }

    /// Every member as a statistics entry (rates are computed by the collector).
    pub(super) fn member_stats(&self) -> Vec<(SessionStats, u64)> {
        self.members
            .iter()
            .map(|(uid, m)| {
                let c = &m.counts;
                let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
                (
                    SessionStats {
                        peer: ClientId(*uid),
                        connected: true,
                        frames_received: l(&c.video_received),
                        frames_decoded: l(&c.video_decoded),
                        audio_received: l(&c.voice_received),
                        audio_decoded: l(&c.voice_decoded),
                        frames_discarded: m.discarded,
                        packets_lost_in: (m.video_order.lost + m.voice_order.lost) as i64,
                        video_codec_in: (l(&c.video_received) > 0).then(|| "H264".to_string()),
                        ..SessionStats::default()
                    },
                    l(&c.bytes_in),
                )
            })
            .collect()
    }
}

/// A queue and an `appsink` on a new branch of `tee`, added to the (not yet playing) call.
fn tap(
    call: &CallPipeline,
    tee: &gst::Element,
    name: &str,
) -> Result<gst_app::AppSink, MediaError> {
    let queue = make("queue")?;
    queue.set_property("max-size-buffers", 8u32);
    queue.set_property("max-size-time", 0u64);
    queue.set_property("max-size-bytes", 0u32);
    queue.set_property_from_str("leaky", "downstream");
    let sink = gst_app::AppSink::builder()
        .name(name)
        .sync(false)
        .max_buffers(4)
        .drop(true)
        .build();
    sink.set_property("async", false);
    sink.set_property("enable-last-sample", false);
    let elements = [queue.clone(), sink.clone().upcast()];
    add_chain(&call.pipeline, &elements, "tee", name)?;
    let pad = tee
        .request_pad_simple("src_%u")
        .ok_or_else(|| MediaError::Invalid("tee gave no pad".into()))?;
    pad.link(&queue.static_pad("sink").expect("queue sink"))
        .map_err(|_| MediaError::Link {
            from: tee.name().to_string(),
            to: name.into(),
        })?;
    Ok(sink)
}

/// When a buffer with running time `pts` was captured, Unix ms: now, minus how long ago its
/// running time was.
fn captured_ms(element: &gst::Element, pts: Option<gst::ClockTime>) -> i64 {
    let now = relay::unix_ms();
    let (Some(clock), Some(base), Some(pts)) = (element.clock(), element.base_time(), pts) else {
        return now;
    };
    let running = clock.time().saturating_sub(base);
    now - running.saturating_sub(pts).mseconds() as i64
}

/// Names a member's decoding elements `rtm-<uid>-<video|voice>-<branch>-<n>`, so an error on
/// the bus says whose stream it was ([`RtcRoom::owner`]); `<branch>` keeps a new branch's names
/// apart from those of one still being stopped.
fn name_feed(chain: &[gst::Element], uid: i64, video: bool) {
    static BRANCH: AtomicU64 = AtomicU64::new(0);
    let branch = BRANCH.fetch_add(1, Ordering::Relaxed);
    for (i, e) in chain.iter().enumerate() {
        e.set_property("name", format!("{}{branch}-{i}", feed_prefix(uid, video)));
    }
}

fn feed_prefix(uid: i64, video: bool) -> String {
    let kind = if video { "video" } else { "voice" };
    format!("rtm-{uid}-{kind}-")
}

fn appsrc(caps: &gst::Caps) -> gst_app::AppSrc {
    let latency = MEMBER_LATENCY.as_nanos() as i64;
    gst_app::AppSrc::builder()
        .caps(caps)
        .is_live(true)
        .format(gst::Format::Time)
        .do_timestamp(true)
        .min_latency(latency)
        // No upper bound: with one, the decoders' own latency on top of the minimum makes the
        // mixers' latency impossible, and they stop being live (waiting for every member).
        .max_latency(-1)
        .max_bytes(APPSRC_BYTES)
        .build()
}

/// Takes a member's branch out of the running pipeline. Its mixer pad goes first: a streaming
/// thread waiting inside the mixer is released (flushing), so stopping the branch cannot wait
/// on it. The elements are stopped on a thread of their own, never on the engine's.
fn remove_feed(call: &CallPipeline, remote: &RemoteOutputs, feed: Feed) {
    remote
        .layout
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&feed.mix.1);
    feed.mix.0.release_request_pad(&feed.mix.1);
    let pipeline = call.pipeline.clone();
    let stop = move || {
        for e in &feed.elements {
            e.set_locked_state(true);
            let _ = e.set_state(gst::State::Null);
        }
        for e in &feed.elements {
            let _ = pipeline.remove(e);
        }
    };
    if std::thread::Builder::new()
        .name("rtm-feed-stop".into())
        .spawn(stop)
        .is_err()
    {
        warn!(
            "cannot start a thread to stop a member's stream; its elements stay until the call ends"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_in_order_pass_at_once() {
        let mut r = Reorder::new(3);
        for s in 10..15 {
            assert_eq!(r.push(s, s), (vec![s], false));
        }
    }

    #[test]
    fn a_frame_out_of_order_waits_for_the_missing_one() {
        let mut r = Reorder::new(3);
        assert_eq!(r.push(1, 1), (vec![1], false));
        assert_eq!(r.push(3, 3), (vec![], false));
        assert_eq!(r.push(2, 2), (vec![2, 3], false));
        assert_eq!(r.push(2, 2), (vec![], false), "a repeat is dropped");
    }

    #[test]
    fn a_lost_frame_is_skipped_once_enough_wait_behind_it() {
        let mut r = Reorder::new(2);
        r.push(1, 1);
        assert_eq!(r.push(3, 3), (vec![], false));
        assert_eq!(r.push(4, 4), (vec![], false));
        assert_eq!(r.push(5, 5), (vec![3, 4, 5], true));
        assert_eq!(r.push(6, 6), (vec![6], false));
        assert_eq!(r.lost, 1);
    }

    #[test]
    fn any_numbers_a_sender_picks_are_taken_without_overflow() {
        let mut r = Reorder::new(2);
        assert_eq!(r.push(i64::MIN, 1), (vec![1], false));
        assert_eq!(r.push(i64::MAX, 2), (vec![2], true));
        r.push(i64::MAX, 3); // the counter cannot go past its end: taken again, harmlessly
        assert_eq!(r.push(i64::MIN + 1, 4), (vec![4], true));
        for s in [0, i64::MAX - 1, -5, 7] {
            r.push(s, 0);
        }
    }

    /// A member whose stream starts again at 1 where the last frames seen were about 30 (they
    /// joined again; or frames of their earlier call came in after it ended) is followed from
    /// its first frame, the key frame a decoder needs.
    #[test]
    fn a_sender_that_starts_again_below_where_it_was_is_followed_from_its_first_frame() {
        let mut r = Reorder::new(3);
        assert_eq!(r.push(30, 30), (vec![30], false));
        assert_eq!(r.push(1, 1), (vec![], false));
        assert_eq!(r.push(2, 2), (vec![1, 2], true));
        assert_eq!(r.push(3, 3), (vec![3], false));
    }

    #[test]
    fn a_single_straggler_far_behind_is_dropped() {
        let mut r = Reorder::new(3);
        for s in 10..20 {
            r.push(s, s);
        }
        assert_eq!(r.push(2, 2), (vec![], false));
        assert_eq!(r.push(20, 20), (vec![20], false));
        assert_eq!(
            r.push(4, 4),
            (vec![], false),
            "not the one after the straggler"
        );
        assert_eq!(r.push(21, 21), (vec![21], false));
    }

    #[test]
    fn a_sender_that_starts_counting_again_is_followed() {
        let mut r = Reorder::new(3);
        r.push(50_000, 1);
        r.push(50_001, 2);
        assert_eq!(r.push(1, 3), (vec![3], true));
        assert_eq!(r.push(2, 4), (vec![4], false));
    }
}
