//! The RTC gate: the second FPNN connection of an RTM call, which carries its media.
//!
//! While the device is in an RTC room (a [`Target`]: room, room token, gate endpoint), this
//! task keeps one FPNN-over-TCP connection to the gate: `enterRTCRoom {pid, uid, rid, token}`
//! (its answer's `microphone: false` closes the microphone on first entry, before the first
//! frame leaves), `adjustTime`
//! every [`ADJUST_EVERY`] for the server clock's offset, the gate's `ping` answered, the
//! device's frames from the [`Relay`] written as one-way `video` and `voice` quests, and the
//! members' `pushVideo`/`pushVoice` handed to the media engine. A lost connection (closed,
//! unreadable, `adjustTime` unanswered, a write that does not complete) is made again, with
//! backoff, for as long as the call lasts; leaving is the RTM gate's `exitRTCRoom`, so the
//! connection simply closes when the target goes.
//!
//! The transport is TCP (every RTM SDK maintained since 2023); FPNN's reliable UDP would be
//! another [`Transport`] behind the same quests.

use std::time::Duration;

use rmpv::Value;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, timeout};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::fpnn::{self, Frame, as_bool, as_bytes, as_i64, field, map};
use super::wire::{self, Delivery, Outbound};
use crate::backoff::Reconnect;
use crate::config::{RtcTransport, UdpVideo};
use crate::core::{ModeratorOrder, RoomId, SignalingEvent};
use crate::media::relay::{InFrame, InKind, Inbound, OutFrame, Relay, unix_ms};

/// How often the server clock is asked for (the SDKs' period).
pub const ADJUST_EVERY: Duration = Duration::from_secs(2);

/// A media frame can be large (a key frame at a high bitrate); the framework's own limit is
/// 8 MiB per packet.
const MAX_PAYLOAD: usize = 4 * 1024 * 1024;

/// Where to connect and with what, while the device is in an RTC room. `Debug` hides the
/// token.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    /// The room.
    pub rid: RoomId,
    /// Its token, from entering, creating or a pull.
    pub token: String,
    /// The RTC gate, `host:port`.
    pub endpoint: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("rid", &self.rid)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// What the connection needs beyond the target.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Project id.
    pub pid: i64,
    /// Our uid.
    pub uid: i64,
    /// Deadline for connecting, answers and each write.
    pub request_timeout: Duration,
    /// Reconnect delays.
    pub reconnect_min: Duration,
    /// Longest reconnect delay.
    pub reconnect_max: Duration,
    /// `captureLevel` sent with video.
    pub capture_level: i64,
    /// TCP, UDP, or UDP falling back to TCP.
    pub transport: RtcTransport,
    /// Over UDP: video pieces resent for a while, or sent once like voice.
    pub udp_video: UdpVideo,
    /// The RTC gate's key: over TCP the framework's `*key` exchange (stream or package
    /// mode), over UDP its `ECDH` package (every datagram sealed).
    pub encryption: Option<super::Encryption>,
}

/// Over UDP, how long the pieces of a video frame are resent before they are given up.
pub const VIDEO_RESEND_FOR: Duration = Duration::from_millis(400);

/// With `auto`, how long UDP may go without an answer to `enterRTCRoom` before the room's
/// media goes over TCP instead.
pub const AUTO_UDP_TRY: Duration = Duration::from_secs(2);

/// The SDKs' capture level for a size and rate: 1 = 320×240@15, 2 = 320×240@30,
/// 3 = 640×480@30. Larger pictures (a room camera's 720p) are sent as they are, marked 3.
pub fn capture_level(width: u32, height: u32, framerate: u32) -> i64 {
    if width <= 320 && height <= 240 {
        if framerate <= 15 { 1 } else { 2 }
    } else {
        3
    }
}

/// How a connection ended.
enum End {
    /// The target changed or went: connect again at once (or not at all).
    Retarget,
    /// The connection failed.
    Lost(String),
    /// The connection failed before the gate let us into the room.
    NoEntry(String),
}

/// Runs until `shutdown`: connected to the RTC gate while there is a target.
pub async fn run(
    s: Settings,
    relay: Relay,
    mut target: watch::Receiver<Option<Target>>,
    events: mpsc::Sender<SignalingEvent>,
    shutdown: CancellationToken,
) {
    let mut reconnect = Reconnect::new(s.reconnect_min, s.reconnect_max);
    let mut entered: Option<RoomId> = None;
    // With `auto`: the endpoint where UDP got no answer (TCP is used there from then on).
    let mut udp_failed_at: Option<String> = None;
    loop {
        let t = loop {
            if let Some(t) = target.borrow_and_update().clone() {
                break t;
            }
            entered = None;
            tokio::select! {
                _ = shutdown.cancelled() => return,
                r = target.changed() => if r.is_err() { return },
            }
        };
        let first_entry = entered != Some(t.rid);
        let udp = match s.transport {
            RtcTransport::Tcp => false,
            RtcTransport::Udp => true,
            RtcTransport::Auto => udp_failed_at.as_deref() != Some(t.endpoint.as_str()),
        };
        let end = tokio::select! {
            _ = shutdown.cancelled() => {
                relay.close();
                return;
            }
            end = connection(&s, &relay, &t, &mut target, &events, first_entry, &mut entered, udp) => end,
        };
        if let End::NoEntry(reason) = &end
            && udp
            && s.transport == RtcTransport::Auto
        {
            warn!(%reason, endpoint = %t.endpoint, "RTC gate: no answer over UDP; using TCP");
            udp_failed_at = Some(t.endpoint.clone());
        }
        relay.close();
        match end {
            End::Retarget => reconnect.connected(),
            End::Lost(reason) | End::NoEntry(reason) => {
                if reconnect.failed(&reason) {
                    warn!(%reason, rid = %t.rid, "RTC gate: media connection lost; reconnecting");
                } else {
                    debug!(%reason, "RTC gate: still not connected");
                }
                tokio::select! {
                    _ = target.changed() => {}
                    ok = reconnect.wait(&shutdown) => if !ok { return },
                }
            }
        }
    }
}

/// One connection: connect, enter, then serve until it ends.
#[allow(clippy::too_many_arguments)]
async fn connection(
    s: &Settings,
    relay: &Relay,
    t: &Target,
    target: &mut watch::Receiver<Option<Target>>,
    events: &mpsc::Sender<SignalingEvent>,
    first_entry: bool,
    entered: &mut Option<RoomId>,
    udp: bool,
) -> End {
    let (proto, opened) = if udp {
        let udp = wire::udp(&t.endpoint, s.encryption.as_ref());
        ("UDP", timeout(s.request_timeout, udp).await)
    } else {
        let tcp = wire::tcp(&t.endpoint, s.request_timeout);
        ("TCP", timeout(s.request_timeout, tcp).await)
    };
    let mut wire = match opened {
        Ok(Ok(w)) => w,
        Ok(Err(e)) => {
            return End::NoEntry(format!("cannot connect to {} ({proto}): {e}", t.endpoint));
        }
        Err(_) => {
            return End::NoEntry(format!("no connection to {} ({proto}) in time", t.endpoint));
        }
    };
    let enter_limit = if udp && s.transport == RtcTransport::Auto {
        s.request_timeout.min(AUTO_UDP_TRY)
    } else {
        s.request_timeout
    };
    let mut conn = Conn {
        link: fpnn::Link::plain(MAX_PAYLOAD),
        next_seq: 1,
        rid: t.rid,
        uid: s.uid,
        adjust: None,
        enter: None,
        seq_voice: 0,
        seq_video: 0,
        capture_level: s.capture_level,
    };
    let enter = map([
        ("pid", Value::from(s.pid)),
        ("uid", Value::from(s.uid)),
        ("rid", Value::from(t.rid.0)),
        ("token", Value::from(t.token.as_str())),
    ]);
    if !udp && let Some(e) = &s.encryption {
        // `*key` in the clear, then everything both ways encrypted (its answer too).
        let mut rng = rand::rng();
        let (body, cipher) = match fpnn::client_handshake(&e.server_key, e.bits, e.mode, &mut rng) {
            Ok(k) => k,
            Err(err) => return End::NoEntry(format!("encryption: {err}")),
        };
        let (_, bytes) = conn.quest(fpnn::KEY_METHOD, body);
        if wire.tx.try_send(reliable(bytes)).is_err() {
            return End::NoEntry("cannot write".into());
        }
        if let Err(err) = conn.link.start_encryption(cipher) {
            return End::NoEntry(format!("encryption: {err}"));
        }
    }
    let now = Instant::now();
    let bytes = conn.quest("enterRTCRoom", enter);
    conn.enter = Some((bytes.0, now + enter_limit));
    if wire.tx.try_send(reliable(bytes.1)).is_err() {
        return End::NoEntry("cannot write".into());
    }
    let mut in_room = false;
    let mut adjust = tokio::time::interval(ADJUST_EVERY);
    adjust.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let deadline = [conn.adjust.map(|a| a.1), conn.enter.map(|e| e.1)]
            .into_iter()
            .flatten()
            .min();
        tokio::select! {
            r = target.changed() => {
                let same = r.is_ok() && target.borrow().as_ref().is_some_and(|n| n.rid == t.rid);
                if !same {
                    return End::Retarget;
                }
            }
            bytes = wire.rx.recv() => {
                let Some(bytes) = bytes else {
                    let why = (&mut wire.task).await.unwrap_or_else(|e| e.to_string());
                    return if in_room { End::Lost(why) } else { End::NoEntry(why) };
                };
                conn.link.read(&bytes);
                let mut replies = Vec::new();
                loop {
                    match conn.link.next_frame() {
                        Ok(Some(frame)) => match conn.on_frame(frame, relay, &mut replies) {
                            Ok(Some(entry)) => {
                                in_room = true;
                                *entered = Some(t.rid);
                                info!(rid = %t.rid, members = ?entry.members, "in the RTC room's media");
                                if first_entry {
                                    entry.apply(relay, events).await;
                                }
                                relay.open();
                            }
                            Ok(None) => {}
                            Err(reason) => return End::Lost(reason),
                        },
                        Ok(None) => break,
                        Err(e) => return End::Lost(format!("unreadable data from the gate: {e}")),
                    }
                }
                for r in replies {
                    if wire.tx.try_send(reliable(r)).is_err() {
                        debug!("an answer to the gate was dropped: the connection is not writable");
                    }
                }
            }
            _ = adjust.tick(), if in_room && conn.adjust.is_none() => {
                let (seq, bytes) = conn.quest("adjustTime", fpnn::empty_map());
                conn.adjust = Some((seq, Instant::now() + s.request_timeout, unix_ms()));
                let _ = wire.tx.try_send(reliable(bytes));
            }
            permit = wire.tx.reserve(), if in_room && relay.has_pending() => {
                let Ok(permit) = permit else { return End::Lost("the writer stopped".into()) };
                if let Some(frame) = relay.pop() {
                    match conn.media(&frame, relay.server_offset_ms()) {
                        Some(bytes) => {
                            relay.sent(&frame, bytes.len());
                            let delivery = match (&frame, s.udp_video) {
                                (OutFrame::Video(_), UdpVideo::Resend) => Delivery::Within(VIDEO_RESEND_FOR),
                                _ => Delivery::Discardable,
                            };
                            permit.send(Outbound { bytes, delivery });
                        }
                        None => debug!("a media frame could not be encoded; dropped"),
                    }
                }
            }
            _ = relay.ready(), if in_room && !relay.has_pending() => {}
            _ = crate::wait::sleep_until(deadline) => {
                if conn.enter.is_some() {
                    return End::NoEntry(format!("no answer to enterRTCRoom ({proto}) within {} ms", enter_limit.as_millis()));
                }
                return End::Lost(format!("no answer to adjustTime ({proto}) within {} s", s.request_timeout.as_secs()));
            }
        }
    }
}

/// A packet that must arrive: quests and answers.
fn reliable(bytes: Vec<u8>) -> Outbound {
    Outbound {
        bytes,
        delivery: Delivery::Reliable,
    }
}

/// What the answer to `enterRTCRoom` said.
struct Entry {
    microphone: Option<bool>,
    /// Not in any answer seen so far; honoured like `microphone` if a gate sends it.
    camera: Option<bool>,
    members: Vec<i64>,
}

impl Entry {
    /// A room that admits the device with its microphone (or camera) closed: closed in the
    /// relay before it opens, so not one frame of it leaves, then closed in the core, which
    /// shows it and lets a person open it again.
    async fn apply(&self, relay: &Relay, events: &mpsc::Sender<SignalingEvent>) {
        let mut orders = Vec::new();
        if self.microphone == Some(false) {
            relay.set_voice(false);
            orders.push(ModeratorOrder::CloseMic);
        }
        if self.camera == Some(false) {
            relay.set_video(false);
            orders.push(ModeratorOrder::CloseCamera);
        }
        for order in orders {
            let _ = events.send(SignalingEvent::Moderated { order }).await;
        }
    }
}

struct Conn {
    link: fpnn::Link,
    next_seq: u32,
    rid: RoomId,
    /// Our uid (a gate echoing our own frames is not a member).
    uid: i64,
    /// The `adjustTime` waiting for its answer: seq, deadline, local send time (ms).
    adjust: Option<(u32, Instant, i64)>,
    /// The `enterRTCRoom` waiting for its answer: seq, deadline.
    enter: Option<(u32, Instant)>,
    seq_voice: i64,
    seq_video: i64,
    capture_level: i64,
}

impl Conn {
    fn encode(&mut self, frame: &Frame) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        self.link.write(frame, &mut out).ok()?;
        Some(out)
    }

    fn quest(&mut self, method: &str, body: Value) -> (u32, Vec<u8>) {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1).max(1);
        let frame = Frame::Quest {
            seq: Some(seq),
            method: method.into(),
            body,
        };
        (seq, self.encode(&frame).unwrap_or_default())
    }

    /// One of our frames as a one-way `voice` or `video` quest, stamped in server time.
    fn media(&mut self, frame: &OutFrame, offset_ms: i64) -> Option<Vec<u8>> {
        let server_ms = |captured: i64| captured.saturating_add(offset_ms);
        let rid = Value::from(self.rid.0);
        let (method, body) = match frame {
            OutFrame::Voice { data, captured_ms } => {
                self.seq_voice += 1;
                (
                    "voice",
                    map([
                        ("rid", rid),
                        ("seq", Value::from(self.seq_voice)),
                        ("timestamp", Value::from(server_ms(*captured_ms))),
                        ("data", Value::Binary(data.clone())),
                    ]),
                )
            }
            OutFrame::Video(v) => {
                self.seq_video += 1;
                (
                    "video",
                    map([
                        ("rid", rid),
                        ("seq", Value::from(self.seq_video)),
                        ("timestamp", Value::from(server_ms(v.captured_ms))),
                        ("flags", Value::from(i64::from(v.key))),
                        ("data", Value::Binary(v.data.clone())),
                        ("sps", Value::Binary(v.sps.clone())),
                        ("pps", Value::Binary(v.pps.clone())),
                        ("facing", Value::from(0)),
                        ("version", Value::from(0)),
                        ("captureLevel", Value::from(self.capture_level)),
                        ("rotation", Value::from(0)),
                    ]),
                )
            }
        };
        self.encode(&Frame::Quest {
            seq: None,
            method: method.into(),
            body,
        })
    }

    /// A frame from the gate; `Ok(Some)` when it is the answer that puts us in the room.
    fn on_frame(
        &mut self,
        frame: Frame,
        relay: &Relay,
        replies: &mut Vec<Vec<u8>>,
    ) -> Result<Option<Entry>, String> {
        match frame {
            Frame::Answer { seq, ok, body } => {
                if self.enter.is_some_and(|(s, _)| s == seq) {
                    self.enter = None;
                    if !ok {
                        let ex = field(&body, "ex").and_then(fpnn::as_str).unwrap_or("");
                        let code = field(&body, "code").and_then(as_i64).unwrap_or(0);
                        return Err(format!("enterRTCRoom refused (code {code}): {ex}"));
                    }
                    let members = match field(&body, "uids") {
                        Some(Value::Array(a)) => a.iter().filter_map(as_i64).collect(),
                        _ => Vec::new(),
                    };
                    return Ok(Some(Entry {
                        microphone: field(&body, "microphone").and_then(as_bool),
                        camera: field(&body, "camera").and_then(as_bool),
                        members,
                    }));
                }
                if let Some((s, _, sent)) = self.adjust
                    && s == seq
                {
                    self.adjust = None;
                    if let Some(ts) = field(&body, "ts").and_then(as_i64).filter(|_| ok) {
                        let now = unix_ms();
                        // The server stamped `ts` about half a round trip before we got it.
                        let offset = ts.saturating_sub(now - (now - sent) / 2);
                        relay.set_server_offset(offset);
                    }
                }
                Ok(None)
            }
            Frame::Quest { seq, method, body } => {
                match method.as_str() {
                    "pushVideo" | "pushVoice" => self.on_media(&method, &body, relay),
                    "ping" => {}
                    other => debug!(
                        method = other,
                        "a quest from the RTC gate this device does not handle"
                    ),
                }
                if let Some(seq) = seq
                    && let Some(bytes) = self.encode(&Frame::answer(seq, fpnn::empty_map()))
                {
                    replies.push(bytes);
                }
                Ok(None)
            }
        }
    }

    /// A member's frame: checked, then handed to the media engine.
    fn on_media(&mut self, method: &str, body: &Value, relay: &Relay) {
        let int = |k: &str| field(body, k).and_then(as_i64);
        let bin = |k: &str| field(body, k).and_then(as_bytes).map(<[u8]>::to_vec);
        let (Some(uid), Some(seq), Some(data)) = (int("uid"), int("seq"), bin("data")) else {
            debug!(method, "a media push without uid, seq or data; dropped");
            return;
        };
        if uid == self.uid {
            debug!(method, "our own frames pushed back; dropped");
            return;
        }
        if int("rid").is_some_and(|r| r != self.rid.0) {
            debug!(method, uid, "media for another room; dropped");
            return;
        }
        let kind = if method == "pushVideo" {
            InKind::Video {
                key: int("flags").is_some_and(|f| f & 1 == 1),
                sps: bin("sps").unwrap_or_default(),
                pps: bin("pps").unwrap_or_default(),
            }
        } else {
            InKind::Voice
        };
        relay.deliver(Inbound::Frame(InFrame {
            uid,
            seq,
            timestamp: int("timestamp").unwrap_or(0),
            kind,
            data,
        }));
    }
}
