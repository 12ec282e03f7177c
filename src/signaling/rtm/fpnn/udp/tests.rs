//! FPNN UDP against byte vectors computed independently (`../udp_vectors.py`, written from
//! the framework's C++, not from this code), and two sessions over a lossy in-memory path.

use std::time::{Duration, Instant};

use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

// udp_vectors.py: the client's first reliable seq 0x1A2B3C4D, its sign 0x5A.
const FSEQ: u32 = 0x1A2B3C4D;
const FSIGN: u8 = 0x5A;
/// #1: the first reliable DATA, the two-way quest `enterRTCRoom` (FPNN seq 1).
const V1: &str = "02 01 20 5a 1a 2b 3c 4d 46 50 4e 4e 01 80 01 0c 24 00 00 00 01 00 00 00 65 6e 74 65 72 52 54 43
   52 6f 6f 6d 84 a3 70 69 64 cd 03 f9 a3 72 69 64 ce 07 5b cd 15 a3 75 69 64 cd 03 e9 a5 74 6f 6b
   65 6e a5 74 30 6b 33 6e";
/// #2: a discardable DATA, the one-way quest `voice`, seq 0x65F3A1B2.
const V2: &str = "02 01 01 9e 65 f3 a1 b2 46 50 4e 4e 01 80 00 05 2d 00 00 00 76 6f 69 63 65 84 a9 74 69 6d 65 73
   74 61 6d 70 cf 00 00 01 8b cf e5 68 7b a4 64 61 74 61 c4 04 de ad be ef a3 73 65 71 07 a3 72 69
   64 ce 07 5b cd 15";
/// #7: the second reliable package as COMBINED: UNA 0x7E000004 + an answer (FPNN seq 0x309).
const V7: &str = "02 80 00 71 1a 2b 3c 4e 03 01 00 04 7e 00 00 04 01 00 00 11 46 50 4e 4e 01 80 02 00 01 00 00 00
   09 03 00 00 80";
/// #8: the same answer alone as plain reliable DATA.
const V8: &str = "02 01 00 71 1a 2b 3c 4e 46 50 4e 4e 01 80 02 00 01 00 00 00 09 03 00 00 80";
/// #9: #1 and #8 resent together as ASSEMBLED.
const V9: &str = "02 81 00 47 01 20 5a 1a 2b 3c 4d 46 50 4e 4e 01 80 01 0c 24 00 00 00 01 00 00 00 65 6e 74 65 72
   52 54 43 52 6f 6f 6d 84 a3 70 69 64 cd 03 f9 a3 72 69 64 ce 07 5b cd 15 a3 75 69 64 cd 03 e9 a5
   74 6f 6b 65 6e a5 74 30 6b 33 6e 00 18 01 00 71 1a 2b 3c 4e 46 50 4e 4e 01 80 02 00 01 00 00 00
   09 03 00 00 80";

#[test]
fn the_sign_is_the_frameworks_hash_of_the_top_bytes() {
    // udp_vectors.py's worked examples (the protocol document's variant would give
    // 0xF2, 0xE2, 0x70, 0x57).
    assert_eq!(sign(0x1A2B3C4D, 0x5A, 0x1A2B3C4E), 0x71);
    assert_eq!(sign(0x1A2B3C4D, 0x5A, 0x65F3A1B2), 0x9E);
    assert_eq!(sign(0xFFFFFFF0, 0x00, 0x00000003), 0x00);
    assert_eq!(sign(0x00C0FFEE, 0xE0, 0x00C0FFEF), 0x8F);
}

fn client(now: Instant) -> Arq {
    Arq::starting(now, DATAGRAM_LAN, FSEQ, FSIGN, 7)
}

fn drain(a: &mut Arq) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| a.poll_datagram()).collect()
}

fn messages(a: &mut Arq) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| a.poll_message()).collect()
}

#[test]
fn the_first_reliable_package_and_a_discardable_one_are_the_frameworks_bytes() {
    let now = Instant::now();
    let mut a = client(now);
    let v1 = hex(V1);
    assert!(a.send(now, &v1[8..], Delivery::Reliable));
    assert_eq!(drain(&mut a), vec![v1.clone()]);
    // A discardable package: flag 0x01, any seq, the sign hashed from the first package.
    let v2 = hex(V2);
    assert!(a.send(now, &v2[8..], Delivery::Discardable));
    let d = drain(&mut a).remove(0);
    let seq = u32::from_be_bytes([d[4], d[5], d[6], d[7]]);
    assert_eq!(&d[..3], &v2[..3]);
    assert_eq!(d[3], sign(FSEQ, FSIGN, seq));
    assert_eq!(&d[8..], &v2[8..]);
    // The next reliable package: consecutive seq, hashed sign (#8's header).
    let v8 = hex(V8);
    a.send(now, &v8[8..], Delivery::Reliable);
    assert_eq!(drain(&mut a), vec![v8]);
    assert_eq!(a.in_flight(), 2);
}

#[test]
fn the_frameworks_packages_are_read_once_whatever_shape_they_come_in() {
    let now = Instant::now();
    let mut server = Arq::new(now, DATAGRAM_LAN, 3);
    let (v1, v7, v8, v9) = (hex(V1), hex(V7), hex(V8), hex(V9));
    // #8 before the first package: held until #1 arrives.
    server.handle_datagram(now, &v8).unwrap();
    assert!(messages(&mut server).is_empty());
    server.handle_datagram(now, &v1).unwrap();
    assert_eq!(
        messages(&mut server),
        vec![v1[8..].to_vec(), v8[8..].to_vec()]
    );
    // The same again, alone, combined or assembled: duplicates, nothing delivered twice.
    server.handle_datagram(now, &v8).unwrap();
    server.handle_datagram(now, &v7).unwrap();
    server.handle_datagram(now, &v9).unwrap();
    assert!(messages(&mut server).is_empty());
    // ...and acknowledged: UNA up to #8's seq, inclusive.
    server.handle_timeout(now + Duration::from_millis(30));
    let una = drain(&mut server)
        .into_iter()
        .find(|d| d[1] == UNA)
        .expect("a UNA");
    assert_eq!(una.len(), 12);
    assert_eq!(&una[8..], &(FSEQ + 1).to_be_bytes());

    // A fresh server that first sees #7 (COMBINED) after #1 reads the answer in it.
    let mut fresh = Arq::new(now, DATAGRAM_LAN, 5);
    fresh.handle_datagram(now, &v1).unwrap();
    fresh.handle_datagram(now, &v7).unwrap();
    assert_eq!(
        messages(&mut fresh),
        vec![v1[8..].to_vec(), v8[8..].to_vec()]
    );

    // A reliable package whose sign is wrong is dropped (the framework's check).
    let mut forged = hex(V8);
    forged[3] ^= 0xFF;
    forged[7] = 0x50; // a seq not yet seen
    let mut third = Arq::new(now, DATAGRAM_LAN, 9);
    third.handle_datagram(now, &v1).unwrap();
    third.handle_datagram(now, &forged).unwrap();
    assert_eq!(messages(&mut third).len(), 1);
    assert_eq!(third.bad_signs, 1);
}

#[test]
fn acknowledgements_are_una_inclusive_and_acks_beyond_a_gap() {
    let now = Instant::now();
    let mut peer = Arq::starting(now, DATAGRAM_LAN, 0x7E000001, 0x33, 11);
    let mut me = client(now);
    let m = hex(V8)[8..].to_vec();
    for _ in 0..5 {
        peer.send(now, &m, Delivery::Reliable);
    }
    let sent = drain(&mut peer);
    for i in [0, 2, 4] {
        me.handle_datagram(now, &sent[i]).unwrap();
    }
    me.handle_timeout(now + Duration::from_millis(25));
    let out = drain(&mut me);
    let una = out.iter().find(|d| d[1] == UNA).unwrap();
    let acks = out.iter().find(|d| d[1] == ACKS).unwrap();
    assert_eq!(&una[8..], &0x7E000001u32.to_be_bytes());
    assert_eq!(&acks[8..], &hex("7e 00 00 03 7e 00 00 05"));
    for d in [una, acks] {
        assert_eq!(d[2], DISCARDABLE);
        // Before our own first reliable package the sign is random; nothing to check.
    }
    // The peer forgets what they cover and resends only the rest.
    for d in &out {
        peer.handle_datagram(now, d).unwrap();
    }
    assert_eq!(peer.in_flight(), 2);
    peer.handle_timeout(now + Duration::from_millis(500));
    let resent: Vec<u32> = drain(&mut peer)
        .iter()
        .filter(|d| d[1] == DATA)
        .map(|d| u32::from_be_bytes([d[4], d[5], d[6], d[7]]))
        .collect();
    assert_eq!(resent, vec![0x7E000002, 0x7E000004]);
}

#[test]
fn control_packages_have_the_frameworks_shapes() {
    let now = Instant::now();
    let mut a = client(now);
    a.send(now, &hex(V8)[8..], Delivery::Reliable);
    drain(&mut a);
    a.close(now);
    let close = drain(&mut a).remove(0);
    assert_eq!(close.len(), 8);
    assert_eq!(&close[..3], &[VERSION, CLOSE, DISCARDABLE]);
    let seq = u32::from_be_bytes([close[4], close[5], close[6], close[7]]);
    assert_eq!(close[3], sign(FSEQ, FSIGN, seq));
    // Idle (nothing to resend either): a HEARTBEAT with the send time.
    let mut idle = client(now);
    idle.handle_timeout(now + Duration::from_secs(1));
    let out = drain(&mut idle);
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].len(), out[0][1], out[0][2]),
        (16, HEARTBEAT, DISCARDABLE)
    );
    // CLOSE from the peer ends the session.
    let mut b = Arq::new(now, DATAGRAM_LAN, 1);
    assert_eq!(b.handle_datagram(now, &close), Err(Closed::ByPeer));
}

/// Two sessions over a path that loses `loss` of the datagrams each way, on virtual time.
struct Path {
    a: Arq,
    b: Arq,
    now: Instant,
    rng: u64,
    loss: u64,
    to_b: Vec<Vec<u8>>,
    to_a: Vec<Vec<u8>>,
}

impl Path {
    fn new(datagram: usize, loss_percent: u64) -> Path {
        let now = Instant::now();
        Path {
            a: Arq::new(now, datagram, 21),
            b: Arq::new(now, datagram, 22),
            now,
            rng: 0x9E37_79B9_7F4A_7C15,
            loss: loss_percent,
            to_b: Vec::new(),
            to_a: Vec::new(),
        }
    }

    fn lost(&mut self) -> bool {
        xorshift(&mut self.rng) % 100 < self.loss
    }

    /// Runs `ms` milliseconds in 5 ms steps; returns what each side received.
    fn run(&mut self, ms: u64) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let (mut at_a, mut at_b) = (Vec::new(), Vec::new());
        for _ in 0..ms / 5 {
            self.now += Duration::from_millis(5);
            self.a.handle_timeout(self.now);
            self.b.handle_timeout(self.now);
            while let Some(d) = self.a.poll_datagram() {
                if !self.lost() {
                    self.to_b.push(d);
                }
            }
            while let Some(d) = self.b.poll_datagram() {
                if !self.lost() {
                    self.to_a.push(d);
                }
            }
            for d in std::mem::take(&mut self.to_b) {
                self.b.handle_datagram(self.now, &d).unwrap();
            }
            for d in std::mem::take(&mut self.to_a) {
                self.a.handle_datagram(self.now, &d).unwrap();
            }
            at_a.extend(std::iter::from_fn(|| self.a.poll_message()));
            at_b.extend(std::iter::from_fn(|| self.b.poll_message()));
        }
        (at_a, at_b)
    }
}

/// An FPNN one-way quest whose payload is `n` bytes of `fill`.
fn message(n: usize, fill: u8) -> Vec<u8> {
    let mut m = b"FPNN\x01\x80\x00\x05".to_vec();
    m.extend_from_slice(&(n as u32).to_le_bytes());
    m.extend_from_slice(b"video");
    m.extend(std::iter::repeat_n(fill, n));
    m
}

#[test]
fn over_a_lossy_path_reliable_messages_arrive_once_and_discardable_ones_are_never_resent() {
    let mut p = Path::new(DATAGRAM_INTERNET, 20);
    let now = p.now;
    let reliable: Vec<Vec<u8>> = (0..100u8)
        .map(|i| message(if i % 10 == 0 { 5000 } else { 100 }, i))
        .collect();
    for (i, m) in reliable.iter().enumerate() {
        p.a.send(now, m, Delivery::Reliable);
        // Media between them, one of them large enough to be cut into segments.
        p.a.send(
            now,
            &message(if i % 7 == 0 { 3000 } else { 300 }, 0xEE),
            Delivery::Discardable,
        );
    }
    let (_, at_b) = p.run(10_000);
    let got_reliable: Vec<&Vec<u8>> = at_b.iter().filter(|m| m[12 + 5] != 0xEE).collect();
    assert_eq!(
        got_reliable.len(),
        reliable.len(),
        "each reliable message once"
    );
    for m in &reliable {
        assert!(at_b.contains(m), "reliable message {} lost", m[17]);
    }
    let media = at_b.len() - got_reliable.len();
    assert!(
        (40..100).contains(&media),
        "about 80 % of the small media and fewer of the segmented: {media} of 100"
    );
    assert!(at_b.iter().all(|m| m.len() == message_len(m).unwrap()));
    assert_eq!(p.a.in_flight(), 0, "everything acknowledged");
    assert!(p.a.resent > 0);
}

#[test]
fn garbage_never_panics_and_never_delivers() {
    let now = Instant::now();
    let mut a = Arq::new(now, DATAGRAM_LAN, 4);
    let mut rng = 0x1234_5678_9ABC_DEF1u64;
    let v1 = hex(V1);
    for i in 0..20_000 {
        let mut d = if i % 2 == 0 {
            v1.clone()
        } else {
            let n = (xorshift(&mut rng) % 1600) as usize;
            (0..n).map(|_| xorshift(&mut rng) as u8).collect()
        };
        if !d.is_empty() {
            let k = (xorshift(&mut rng) as usize) % d.len();
            d[k] ^= xorshift(&mut rng) as u8;
        }
        let _ = a.handle_datagram(now, &d);
        a.handle_timeout(now);
        while a.poll_datagram().is_some() {}
        while let Some(m) = a.poll_message() {
            assert_eq!(message_len(&m), Some(m.len()));
        }
    }
}

#[test]
fn expiring_data_is_retransmitted_until_its_deadline_then_only_its_sequence_number() {
    let mut p = Path::new(DATAGRAM_INTERNET, 30);
    let now = p.now;
    // 50 frames of 2000 bytes (4 segments each) due within 300 ms, over 30 % loss.
    for i in 0..50u8 {
        p.a.send(
            now,
            &message(2000, i),
            Delivery::Until(now + Duration::from_millis(300)),
        );
    }
    let (_, at_b) = p.run(3000);
    assert!(at_b.len() > 25, "most arrive by resending: {}", at_b.len());
    assert!(at_b.len() < 50 || p.a.resent > 0);
    assert!(at_b.iter().all(|m| m.len() == message_len(m).unwrap()));
    // Whatever missed its deadline went as a cancelled header: every sequence number
    // arrived, nothing is left in flight, and the receiver's in-order point passed them.
    assert_eq!(p.a.in_flight(), 0);
    let mut c = Unacked {
        seq: 1,
        datagram: {
            let mut d = vec![VERSION, DATA, 0x04 | LAST_SEGMENT, 0x11, 0, 0, 0, 1];
            d.extend_from_slice(&[0x12, 0x34, 2, 9, 9, 9]);
            d
        },
        first_sent: now,
        last_sent: now,
        expires: Some(now),
    };
    c.expire(now);
    assert_eq!(
        c.datagram,
        vec![
            VERSION,
            DATA,
            0x04 | LAST_SEGMENT | CANCELLED,
            0x11,
            0,
            0,
            0,
            1,
            0x12,
            0x34,
            2
        ]
    );
}

#[test]
fn the_key_exchange_and_a_sealed_datagram_are_the_frameworks_bytes() {
    use crate::signaling::rtm::fpnn::crypto::udp_client_handshake_with;
    use crate::signaling::rtm::fpnn::{Curve, KeyBits, ServerKey, public_key_of};
    // udp_vectors.py #10: secp256k1, server secret 0x11 * 32, client secret 0x22 * 32.
    let server_public = public_key_of(Curve::Secp256k1, &[0x11; 32]).unwrap();
    let server = ServerKey::from_raw(Curve::Secp256k1, &server_public).unwrap();
    let public = "46 6d 7f ca e5 63 e5 cb 09 a0 d1 87 0b b5 80 34 48 04 61 78 79 a1 49 49 cf 22 28
        5f 1b ae 3f 27 67 28 17 6c 3c 64 31 f8 ee da 45 38 dc 37 c8 65 e2 78 4f 3a 9e 77 d0 44 f3
        3e 40 77 97 e1 27 8a";
    for (bits, params, sealed) in [
        (
            KeyBits::Aes128,
            "40",
            "f6 dd 6a be 10 a4 1d 29 67 92 f0 93 8b 71 ff 8b 04 b1 20 e9 02 bb 9e e3 72",
        ),
        (
            KeyBits::Aes256,
            "c0",
            "af 89 f7 e4 59 37 67 fa bd b1 9f 65 4f da 27 f7 0c ab 9f be 08 b7 d2 b2 42",
        ),
    ] {
        let (body, mut cipher) = udp_client_handshake_with(&server, bits, &[0x22; 32]).unwrap();
        assert_eq!(body, hex(&format!("{params} {public}")));
        let mut d = hex(V8);
        cipher.seal_in_place(&mut d);
        assert_eq!(d, hex(sealed), "{bits:?}");
        // Every datagram restarts from the IV.
        let mut again = hex(V8);
        cipher.seal_in_place(&mut again);
        assert_eq!(again, d);
    }
}

#[test]
fn an_encrypted_session_sends_only_the_key_exchange_until_it_is_acknowledged() {
    use crate::signaling::rtm::fpnn::crypto::udp_client_handshake_with;
    use crate::signaling::rtm::fpnn::{Curve, KeyBits, ServerKey, public_key_of};
    let secret = [0x5c; 32];
    let public = public_key_of(Curve::Secp256r1, &secret).unwrap();
    let key = ServerKey::from_raw(Curve::Secp256r1, &public).unwrap();
    // A fixed client key, so the sealed bytes checked below do not change from run to run.
    let (body, cipher) = udp_client_handshake_with(&key, KeyBits::Aes256, &[0x33; 32]).unwrap();
    let mut p = Path::new(DATAGRAM_INTERNET, 15);
    let now = p.now;
    p.a = Arq::encrypted(now, DATAGRAM_INTERNET, 31, &body, cipher);
    p.b = Arq::new(now, DATAGRAM_INTERNET, 32).with_server_key(Curve::Secp256r1, secret);
    let quest = message(100, 7);
    p.a.send(now, &quest, Delivery::Reliable);
    // Before the server acknowledges it: the ECDH package alone, in the clear, first.
    let first = p.a.poll_datagram().unwrap();
    assert_eq!(
        (first[0], first[1], first[2]),
        (VERSION, ECDH, FIRST_PACKAGE)
    );
    assert_eq!(&first[HEADER..], &body[..]);
    assert!(
        p.a.poll_datagram().is_none(),
        "nothing else before the acknowledgement"
    );
    p.to_b.push(first);
    for i in 0..40u8 {
        p.a.send(now, &message(900, i), Delivery::Discardable);
        p.a.send(now, &message(50, i), Delivery::Reliable);
    }
    let (_, at_b) = p.run(5000);
    assert!(p.a.encrypting() && p.b.encrypting());
    assert!(at_b.contains(&quest));
    assert_eq!(at_b.iter().filter(|m| m.len() == 12 + 5 + 50).count(), 40);
    assert!(at_b.iter().filter(|m| m.len() > 900).count() > 10);
    // What goes out now is sealed: no plain header.
    p.a.send(p.now, &quest, Delivery::Reliable);
    let sealed = p.a.poll_datagram().unwrap();
    assert_ne!(&sealed[..2], &[VERSION, DATA]);
}
