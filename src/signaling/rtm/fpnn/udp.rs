//! FPNN's reliable UDP (the framework's "ARQ" protocol, version 2), sans-IO: one side of one
//! session, client or server alike (the framework runs the same engine on both ends).
//!
//! Each datagram is a package with an 8-byte header `version(2) type flag sign seq:u32be`.
//! A `DATA` package carries one whole FPNN message in the TCP format; one too large for a
//! datagram is cut into segments, each a package of its own with a `package id:u16be` and a
//! 1-based index. Packages are *reliable* (consecutive sequence numbers, kept and resent until
//! the peer's `UNA` — the last sequence number it has in order, inclusive — or `ACKS` — ones
//! it holds beyond that — cover them) or *discardable* (flag `0x01`, any sequence number,
//! never acknowledged nor resent: a one-way quest, such as a media frame, goes this way and a
//! lost one is simply gone). A reliable message may carry an expiry: resent until then, and
//! after it only as a header-only "cancelled" package. A reliable sequence number is never
//! skipped. The first reliable
//! package carries flag `0x20` and a random `sign`; every later package's sign is a one-byte
//! hash of the first one's sequence number and sign and its own ([`sign`]); the receiver drops
//! a reliable package whose sign does not match. Received reliable packages are delivered as
//! they come (FPNN's default, unordered mode), duplicates dropped. The peer may also send
//! `COMBINED` packages (sections: acknowledgements and data), `ASSEMBLED` ones (several
//! packages in one datagram, its resends), `FORCESYNC` (acknowledge now), `HEARTBEAT` and
//! `CLOSE`.
//!
//! Written from the framework's source (1.3.1: `core/UDP.v2/`, `UDPCommon.v2.cpp` for the
//! sign, which differs from the protocol document: only the top byte of each sequence number
//! takes part) and checked against byte vectors computed independently (`udp_vectors.py`).
//! What this side sends is a subset the framework accepts: plain `DATA`, `UNA`, `ACKS`,
//! `HEARTBEAT` and `CLOSE`; no encryption (the framework's UDP encryption is optional for a
//! client, and nothing here is configured with an RTC gate key).

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

/// The protocol version this side speaks.
pub const VERSION: u8 = 2;
/// Package types.
pub const DATA: u8 = 0x01;
/// Acknowledgements of packages held beyond the in-order point.
pub const ACKS: u8 = 0x02;
/// The last sequence number held in order (inclusive).
pub const UNA: u8 = 0x03;
/// Key exchange (not spoken here).
pub const ECDH: u8 = 0x04;
/// Keep-alive.
pub const HEARTBEAT: u8 = 0x05;
/// "Acknowledge now".
pub const FORCESYNC: u8 = 0x06;
/// The session ends.
pub const CLOSE: u8 = 0x0F;
/// Several sections in one package.
pub const COMBINED: u8 = 0x80;
/// Several packages in one datagram.
pub const ASSEMBLED: u8 = 0x81;

/// Flags.
pub const DISCARDABLE: u8 = 0x01;
const MONITORED: u8 = 0x02;
const SEGMENT_MASK: u8 = 0x0C;
const LAST_SEGMENT: u8 = 0x10;
/// The sender's first reliable package.
pub const FIRST_PACKAGE: u8 = 0x20;
const CANCELLED: u8 = 0x80;

const HEADER: usize = 8;

/// Datagram sizes the framework uses: an internet path (MTU 576) and a private one (1500).
pub const DATAGRAM_INTERNET: usize = 548;
/// See [`DATAGRAM_INTERNET`].
pub const DATAGRAM_LAN: usize = 1472;

/// Reliable packages received ahead of a gap, at most (the framework's tolerance).
const AHEAD_WINDOW: u32 = 10_000;
/// Reliable packages cached before the peer's first one arrives.
const BEFORE_FIRST: usize = 500;
/// Segmented messages being reassembled at once.
const ASSEMBLIES: usize = 100;
/// Largest message reassembled (the framework's package limit).
const MAX_MESSAGE: usize = 8 * 1024 * 1024;
/// Reliable packages in flight, at most; beyond it discardable data is dropped.
const MAX_UNACKED: usize = 320;
/// Acknowledge at most this often (the framework: re-ack 20 ms, sync 50 ms).
const SYNC_EVERY: Duration = Duration::from_millis(20);
/// Resend interval bounds (the framework: 20 × 1.2 ms to 150 × 1.2 ms).
const RESEND_MIN: Duration = Duration::from_millis(24);
const RESEND_MAX: Duration = Duration::from_millis(180);
/// Say something after this long without sending: the framework's server resends what we
/// missed only when it hears from us, so a lost answer is recovered within this.
const IDLE_HEARTBEAT: Duration = Duration::from_millis(200);

/// The one-byte hash ("sign") of a package with sequence number `cseq`, in a session whose
/// first reliable package had `fseq` and `first_sign`. As the framework computes it
/// (`ARQChecksum`): only the most significant byte of each sequence number takes part.
pub fn sign(fseq: u32, first_sign: u8, cseq: u32) -> u8 {
    let rs = !first_sign;
    let f = u32::from((fseq >> 24) as u8).rotate_right(u32::from(first_sign % 32));
    let c = u32::from(((cseq >> 24) as u8) ^ rs).rotate_left(u32::from(rs % 32));
    (f ^ c)
        .to_be_bytes()
        .iter()
        .fold(0u8, |a, b| a.wrapping_add(*b))
}

/// `a` comes after `b` on the circle of sequence numbers.
fn after(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < b.wrapping_sub(a)
}

/// Length of the FPNN message at the start of `m` (header, seq, method and payload), if `m`
/// holds a whole one.
fn message_len(m: &[u8]) -> Option<usize> {
    if m.len() < 12 || &m[..4] != b"FPNN" {
        return None;
    }
    let (mtype, ss) = (m[6], m[7] as usize);
    let psize = u32::from_le_bytes([m[8], m[9], m[10], m[11]]) as usize;
    let body = match mtype {
        0 => ss + psize,
        1 => ss + 4 + psize,
        2 => 4 + psize,
        _ => return None,
    };
    (m.len() >= 12 + body).then_some(12 + body)
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    /// The peer sent `CLOSE`.
    ByPeer,
}

/// How a message is to be delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Resent until acknowledged (quests and answers).
    Reliable,
    /// Sent once; may be lost (the framework's default for one-way quests).
    Discardable,
    /// Resent until acknowledged or until this moment; after it, what is still resent is its
    /// cancelled form (header only: the sequence number must still arrive, the data is
    /// given up), as the framework does with expired data.
    Until(Instant),
}

#[derive(Debug)]
struct Unacked {
    seq: u32,
    datagram: Vec<u8>,
    first_sent: Instant,
    last_sent: Instant,
    expires: Option<Instant>,
}

impl Unacked {
    /// Past its expiry, the package becomes its cancelled form: flag `0x80`, the body cut to
    /// the segment header (if any).
    fn expire(&mut self, now: Instant) {
        if self.expires.is_none_or(|at| now < at) || self.datagram[2] & CANCELLED != 0 {
            return;
        }
        let flag = self.datagram[2];
        let keep = match flag & SEGMENT_MASK {
            0 => 0,
            0x04 => 3,
            0x08 => 4,
            _ => 6,
        };
        self.datagram.truncate(HEADER + keep);
        self.datagram[2] = flag | CANCELLED;
    }
}

#[derive(Debug, Default)]
struct Assembly {
    chunks: HashMap<u32, Vec<u8>>,
    total: Option<u32>,
    bytes: usize,
}

/// One end of an FPNN UDP session. Feed every datagram from the peer to
/// [`Arq::handle_datagram`], send messages with [`Arq::send`], call [`Arq::handle_timeout`] at
/// [`Arq::poll_timeout`]; after each call, send every [`Arq::poll_datagram`] and take every
/// [`Arq::poll_message`] (whole FPNN messages, TCP format).
#[derive(Debug)]
pub struct Arq {
    datagram: usize,
    // ---- sending
    next_seq: u32,
    /// The sign our first reliable package will carry.
    first_sign: u8,
    /// Our first reliable package: its sequence number and sign.
    first: Option<(u32, u8)>,
    unacked: VecDeque<Unacked>,
    resend_after: Duration,
    next_package_id: u16,
    last_sent: Instant,
    /// When the session began (the heartbeat's timestamp counts from it).
    started: Instant,
    out: VecDeque<Vec<u8>>,
    random: u64,
    // ---- receiving
    /// The peer's first reliable package: sequence number and sign.
    peer_first: Option<(u32, u8)>,
    /// The last of the peer's reliable sequence numbers held in order.
    in_order: u32,
    ahead: HashSet<u32>,
    before_first: Vec<Vec<u8>>,
    assemblies: HashMap<u16, Assembly>,
    inbox: VecDeque<Vec<u8>>,
    sync_due: bool,
    last_sync: Option<Instant>,
    last_received: Instant,
    // ---- encryption (the framework's package mode: every datagram sealed whole)
    cipher: Option<super::Cipher>,
    /// Client: the `ECDH` package's sequence number until the peer acknowledges it (nothing
    /// else is sent before, and it goes in the clear).
    ecdh_pending: Option<u32>,
    /// Server: its key, to answer a client's `ECDH`; and that package, whose resends arrive
    /// in the clear.
    server_key: Option<(super::Curve, [u8; 32])>,
    ecdh_copy: Option<Vec<u8>>,
    /// Counters: reliable packages resent, packages dropped for a bad sign.
    pub resent: u64,
    /// See [`Arq::resent`].
    pub bad_signs: u64,
}

impl Arq {
    /// A session at `now` sending datagrams of at most `datagram` bytes; `seed` picks the
    /// first sequence number and sign (the framework uses the clock).
    pub fn new(now: Instant, datagram: usize, seed: u64) -> Arq {
        let mut random = seed | 1;
        let first_seq = xorshift(&mut random) as u32;
        let first_sign = xorshift(&mut random) as u8;
        Arq::starting(now, datagram, first_seq, first_sign, random)
    }

    /// [`Arq::new`] with the first reliable package's sequence number and sign given.
    pub fn starting(
        now: Instant,
        datagram: usize,
        first_seq: u32,
        first_sign: u8,
        seed: u64,
    ) -> Arq {
        let mut random = seed | 1;
        Arq {
            datagram: datagram.clamp(64, 65_507),
            next_seq: first_seq,
            first_sign,
            first: None,
            unacked: VecDeque::new(),
            resend_after: RESEND_MIN,
            next_package_id: xorshift(&mut random) as u16,
            last_sent: now,
            started: now,
            out: VecDeque::new(),
            random,
            peer_first: None,
            in_order: 0,
            ahead: HashSet::new(),
            before_first: Vec::new(),
            assemblies: HashMap::new(),
            inbox: VecDeque::new(),
            sync_due: false,
            last_sync: None,
            last_received: now,
            cipher: None,
            ecdh_pending: None,
            server_key: None,
            ecdh_copy: None,
            resent: 0,
            bad_signs: 0,
        }
    }

    /// A client session that encrypts: its first reliable package is `ECDH` with
    /// `ecdh_body` (from [`super::udp_client_handshake`]), sent in the clear; everything else
    /// waits for its acknowledgement and is then sealed with `cipher`, as is everything the
    /// server sends.
    pub fn encrypted(
        now: Instant,
        datagram: usize,
        seed: u64,
        ecdh_body: &[u8],
        cipher: super::Cipher,
    ) -> Arq {
        let mut a = Arq::new(now, datagram, seed);
        a.ecdh_pending = Some(a.next_seq);
        a.package(now, ECDH, Delivery::Reliable, 0, ecdh_body);
        a.cipher = Some(cipher);
        a
    }

    /// A server session that accepts a client's `ECDH` with this key (the raw secret).
    pub fn with_server_key(mut self, curve: super::Curve, secret: [u8; 32]) -> Arq {
        self.server_key = Some((curve, secret));
        self
    }

    /// Whether datagrams are sealed now.
    pub fn encrypting(&self) -> bool {
        self.cipher.is_some() && self.ecdh_pending.is_none()
    }

    /// When something was last received from the peer.
    pub fn last_received(&self) -> Instant {
        self.last_received
    }

    /// Reliable packages not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.unacked.len()
    }

    /// The next datagram to send.
    pub fn poll_datagram(&mut self) -> Option<Vec<u8>> {
        if self.ecdh_pending.is_some() {
            // Only the key exchange (and its resends), in the clear.
            let i = self.out.iter().position(|d| d[1] == ECDH)?;
            return self.out.remove(i);
        }
        let mut d = self.out.pop_front()?;
        if let Some(c) = &mut self.cipher {
            c.seal_in_place(&mut d);
        }
        Some(d)
    }

    /// The next whole FPNN message received.
    pub fn poll_message(&mut self) -> Option<Vec<u8>> {
        self.inbox.pop_front()
    }

    // ------------------------------------------------------------------ sending

    fn random_u8(&mut self) -> u8 {
        xorshift(&mut self.random) as u8
    }

    /// The header of a package with `seq`: the sign is random until our first reliable
    /// package, the hash after it.
    fn header(&mut self, kind: u8, flag: u8, seq: u32) -> Vec<u8> {
        let sign = match self.first {
            Some((fseq, s)) => sign(fseq, s, seq),
            None => self.random_u8(),
        };
        let mut h = Vec::with_capacity(self.datagram);
        h.extend_from_slice(&[VERSION, kind, flag, sign]);
        h.extend_from_slice(&seq.to_be_bytes());
        h
    }

    /// A sequence number for a discardable package (the framework uses the clock's low bits;
    /// nobody tracks them).
    fn loose_seq(&mut self) -> u32 {
        xorshift(&mut self.random) as u32
    }

    /// Queues one FPNN message (TCP format) to be delivered as `delivery` says. Returns
    /// `false` when it was dropped: anything but a [`Delivery::Reliable`] message while too
    /// much reliable data waits for acknowledgement.
    pub fn send(&mut self, now: Instant, message: &[u8], delivery: Delivery) -> bool {
        if delivery != Delivery::Reliable && self.unacked.len() >= MAX_UNACKED {
            return false;
        }
        let room = self.datagram - HEADER;
        if message.len() <= room {
            self.package(now, DATA, delivery, 0, message);
            return true;
        }
        // Segments: package id, index (1-based; the width follows the index), chunk.
        let id = self.next_package_id;
        self.next_package_id = self.next_package_id.wrapping_add(1);
        let mut index: u32 = 0;
        let mut rest = message;
        while !rest.is_empty() {
            index += 1;
            let (width, seg_flag) = if index < 0xFF {
                (1, 0x04)
            } else if index < 0xFFFF {
                (2, 0x08)
            } else {
                (4, 0x0C)
            };
            let take = rest.len().min(room - 2 - width);
            let last = take == rest.len();
            let mut body = Vec::with_capacity(2 + width + take);
            body.extend_from_slice(&id.to_be_bytes());
            match width {
                1 => body.push(index as u8),
                2 => body.extend_from_slice(&(index as u16).to_be_bytes()),
                _ => body.extend_from_slice(&index.to_be_bytes()),
            }
            body.extend_from_slice(&rest[..take]);
            let flag = seg_flag | if last { LAST_SEGMENT } else { 0 };
            self.package(now, DATA, delivery, flag, &body);
            rest = &rest[take..];
        }
        true
    }

    fn package(&mut self, now: Instant, kind: u8, delivery: Delivery, flag: u8, body: &[u8]) {
        let datagram = if delivery == Delivery::Discardable {
            let seq = self.loose_seq();
            let mut d = self.header(kind, flag | DISCARDABLE, seq);
            d.extend_from_slice(body);
            d
        } else {
            let seq = self.next_seq;
            self.next_seq = seq.wrapping_add(1);
            let mut d = if self.first.is_none() {
                let mut d = vec![VERSION, kind, flag | FIRST_PACKAGE, self.first_sign];
                d.extend_from_slice(&seq.to_be_bytes());
                self.first = Some((seq, self.first_sign));
                d
            } else {
                self.header(kind, flag, seq)
            };
            d.extend_from_slice(body);
            self.unacked.push_back(Unacked {
                seq,
                datagram: d.clone(),
                first_sent: now,
                last_sent: now,
                expires: match delivery {
                    Delivery::Until(at) => Some(at),
                    _ => None,
                },
            });
            d
        };
        self.last_sent = now;
        self.out.push_back(datagram);
    }

    /// `CLOSE`, sent once (the framework does not repeat it).
    pub fn close(&mut self, now: Instant) {
        let seq = self.loose_seq();
        let d = self.header(CLOSE, DISCARDABLE, seq);
        self.last_sent = now;
        self.out.push_back(d);
    }

    fn heartbeat(&mut self, now: Instant) {
        let seq = self.loose_seq();
        let mut d = self.header(HEARTBEAT, DISCARDABLE, seq);
        // The framework writes its send time here and its receivers never read it; the
        // milliseconds since the session started keep this module off the wall clock.
        let ms = now.saturating_duration_since(self.started).as_millis() as u64;
        d.extend_from_slice(&ms.to_be_bytes());
        self.last_sent = now;
        self.out.push_back(d);
    }

    /// `UNA` (once the peer's first package is known) and `ACKS` for what is held beyond it.
    fn sync(&mut self, now: Instant) {
        self.sync_due = false;
        self.last_sync = Some(now);
        if self.peer_first.is_some() {
            let seq = self.loose_seq();
            let mut d = self.header(UNA, DISCARDABLE, seq);
            d.extend_from_slice(&self.in_order.to_be_bytes());
            self.out.push_back(d);
        }
        if self.ahead.is_empty() {
            self.last_sent = now;
            return;
        }
        let mut ahead: Vec<u32> = self.ahead.iter().copied().collect();
        ahead.sort_unstable_by_key(|s| s.wrapping_sub(self.in_order));
        let per = (self.datagram - HEADER) / 4;
        for chunk in ahead.chunks(per) {
            let seq = self.loose_seq();
            let mut d = self.header(ACKS, DISCARDABLE, seq);
            for s in chunk {
                d.extend_from_slice(&s.to_be_bytes());
            }
            self.out.push_back(d);
        }
        self.last_sent = now;
    }

    // ------------------------------------------------------------------ timing

    /// When [`Arq::handle_timeout`] is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let resend = self
            .unacked
            .iter()
            .map(|u| u.last_sent + self.resend_after)
            .min();
        let sync = self.sync_due.then(|| {
            self.last_sync
                .map_or(self.last_received, |t| t + SYNC_EVERY)
        });
        let idle = Some(self.last_sent + IDLE_HEARTBEAT);
        [resend, sync, idle].into_iter().flatten().min()
    }

    /// Resends what is due, acknowledges what arrived, says something when idle.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.sync_due && self.last_sync.is_none_or(|t| now >= t + SYNC_EVERY) {
            self.sync(now);
        }
        let mut resent = Vec::new();
        for u in &mut self.unacked {
            if now >= u.last_sent + self.resend_after {
                u.expire(now);
                u.last_sent = now;
                resent.push(u.datagram.clone());
            }
        }
        if !resent.is_empty() {
            self.resent += resent.len() as u64;
            self.last_sent = now;
            self.out.extend(resent);
        }
        if now >= self.last_sent + IDLE_HEARTBEAT {
            self.heartbeat(now);
        }
    }

    // ------------------------------------------------------------------ receiving

    /// A datagram from the peer. `Err` when the peer closed the session.
    pub fn handle_datagram(&mut self, now: Instant, d: &[u8]) -> Result<(), Closed> {
        let opened;
        let d = match &mut self.cipher {
            // A server sees the client's ECDH again in the clear when its answer was lost.
            Some(_) if self.ecdh_copy.as_deref() == Some(d) => {
                self.sync_due = true;
                return Ok(());
            }
            Some(c) => {
                opened = c.decrypt(d);
                &opened[..]
            }
            None => d,
        };
        if d.len() < 2 || d[0] > VERSION {
            return Ok(());
        }
        if d[1] == ASSEMBLED {
            // version, type, then (len:u16be, a package without its version byte)…
            let mut rest = &d[2..];
            while rest.len() >= 2 {
                let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
                if len < HEADER - 1 || rest.len() < 2 + len {
                    break;
                }
                let mut inner = Vec::with_capacity(len + 1);
                inner.push(d[0]);
                inner.extend_from_slice(&rest[2..2 + len]);
                self.package_in(now, &inner)?;
                rest = &rest[2 + len..];
            }
            return Ok(());
        }
        self.package_in(now, d)
    }

    fn package_in(&mut self, now: Instant, p: &[u8]) -> Result<(), Closed> {
        if p.len() < HEADER {
            return Ok(());
        }
        let (kind, flag, sign_byte) = (p[1], p[2], p[3]);
        if kind == ECDH && self.server_key.is_some() && self.ecdh_copy.is_none() {
            self.ecdh_copy = Some(p.to_vec());
        }
        let seq = u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
        let reliable = flag & DISCARDABLE == 0 || flag & MONITORED != 0;
        if reliable {
            match self.peer_first {
                None if flag & FIRST_PACKAGE != 0 => {
                    self.peer_first = Some((seq, sign_byte));
                    self.in_order = seq;
                    self.sync_due = true;
                    self.last_received = now;
                    self.contents(now, kind, flag, &p[HEADER..])?;
                    let cached = std::mem::take(&mut self.before_first);
                    for c in cached {
                        self.package_in(now, &c)?;
                    }
                    return Ok(());
                }
                None => {
                    if self.before_first.len() < BEFORE_FIRST {
                        self.before_first.push(p.to_vec());
                    }
                    return Ok(());
                }
                Some((fseq, s)) => {
                    if seq == self.in_order
                        || after(self.in_order, seq)
                        || self.ahead.contains(&seq)
                    {
                        // Already had it: our acknowledgement was lost; say it again.
                        self.sync_due = true;
                        return Ok(());
                    }
                    if sign(fseq, s, seq) != sign_byte {
                        self.bad_signs += 1;
                        return Ok(());
                    }
                    if seq.wrapping_sub(self.in_order) > AHEAD_WINDOW {
                        return Ok(());
                    }
                    if seq == self.in_order.wrapping_add(1) {
                        self.in_order = seq;
                        while self.ahead.remove(&self.in_order.wrapping_add(1)) {
                            self.in_order = self.in_order.wrapping_add(1);
                        }
                    } else {
                        self.ahead.insert(seq);
                    }
                    self.sync_due = true;
                }
            }
        }
        self.last_received = now;
        self.contents(now, kind, flag, &p[HEADER..])
    }

    /// A package's body: `flag` is the package's (or, in a `COMBINED`, the section's).
    fn contents(&mut self, now: Instant, kind: u8, flag: u8, body: &[u8]) -> Result<(), Closed> {
        match kind {
            DATA => self.data(flag, body)?,
            ACKS if body.len().is_multiple_of(4) => {
                let acked: HashSet<u32> = body
                    .chunks_exact(4)
                    .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                self.acknowledged(now, |s| acked.contains(&s));
            }
            UNA if body.len() >= 4 => {
                let una = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
                self.acknowledged(now, |s| s == una || after(una, s));
            }
            FORCESYNC => {
                self.sync_due = true;
                self.last_sync = None;
            }
            CLOSE => return Err(Closed::ByPeer),
            COMBINED => {
                let mut rest = body;
                while rest.len() >= 4 {
                    let (t, f) = (rest[0], rest[1]);
                    let n = u16::from_be_bytes([rest[2], rest[3]]) as usize;
                    if rest.len() < 4 + n || !matches!(t, DATA | ACKS | UNA | FORCESYNC | CLOSE) {
                        break;
                    }
                    self.contents(now, t, f, &rest[4..4 + n])?;
                    rest = &rest[4 + n..];
                }
            }
            ECDH => {
                if let Some((curve, secret)) = self.server_key
                    && self.cipher.is_none()
                {
                    match super::udp_server_handshake(curve, &secret, body) {
                        Ok(c) => self.cipher = Some(c),
                        Err(_) => self.bad_signs += 1,
                    }
                }
            }
            // HEARTBEAT only shows the peer is there.
            _ => {}
        }
        Ok(())
    }

    fn acknowledged(&mut self, now: Instant, covered: impl Fn(u32) -> bool) {
        if self.ecdh_pending.is_some_and(&covered) {
            self.ecdh_pending = None;
        }
        let mut delays = Vec::new();
        self.unacked.retain(|u| {
            let gone = covered(u.seq);
            if gone {
                delays.push(now - u.first_sent);
            }
            !gone
        });
        if !delays.is_empty() {
            let avg = delays.iter().sum::<Duration>() / delays.len() as u32;
            self.resend_after = (avg * 6 / 5).clamp(RESEND_MIN, RESEND_MAX);
        }
    }

    fn data(&mut self, flag: u8, body: &[u8]) -> Result<(), Closed> {
        let width = match flag & SEGMENT_MASK {
            0 => {
                if flag & CANCELLED == 0 {
                    self.deliver(body);
                }
                return Ok(());
            }
            0x04 => 1,
            0x08 => 2,
            _ => 4,
        };
        if body.len() < 2 + width {
            return Ok(());
        }
        let id = u16::from_be_bytes([body[0], body[1]]);
        let index = match width {
            1 => u32::from(body[2]),
            2 => u32::from(u16::from_be_bytes([body[2], body[3]])),
            _ => u32::from_be_bytes([body[2], body[3], body[4], body[5]]),
        };
        if flag & CANCELLED != 0 || index == 0 {
            self.assemblies.remove(&id);
            return Ok(());
        }
        if !self.assemblies.contains_key(&id) && self.assemblies.len() >= ASSEMBLIES {
            // Too many unfinished: the oldest are the likeliest lost for good.
            self.assemblies.clear();
        }
        let a = self.assemblies.entry(id).or_default();
        let chunk = &body[2 + width..];
        if a.chunks.contains_key(&index)
            || (flag & LAST_SEGMENT != 0 && a.total.is_some())
            || a.bytes + chunk.len() > MAX_MESSAGE
        {
            return Ok(());
        }
        if flag & LAST_SEGMENT != 0 {
            a.total = Some(index);
        }
        a.bytes += chunk.len();
        a.chunks.insert(index, chunk.to_vec());
        if a.total.is_some_and(|t| t as usize == a.chunks.len()) {
            let a = self.assemblies.remove(&id).unwrap_or_default();
            let mut message = Vec::with_capacity(a.bytes);
            for i in 1..=a.chunks.len() as u32 {
                match a.chunks.get(&i) {
                    Some(c) => message.extend_from_slice(c),
                    None => return Ok(()),
                }
            }
            self.deliver(&message);
        }
        Ok(())
    }

    fn deliver(&mut self, m: &[u8]) {
        if let Some(len) = message_len(m) {
            self.inbox.push_back(m[..len].to_vec());
        }
    }
}

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

#[cfg(test)]
mod tests;
