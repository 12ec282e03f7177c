//! Property-based fuzzing of the decoders on stable Rust: valid encodings round-trip, and
//! random, truncated, oversized and mutated input never panics, never makes a decoder hold more
//! than one frame plus one push, and ends (if it is not valid) in an `Err`.

use proptest::collection::vec;
use proptest::prelude::*;
use rmpv::Value;

use super::frame::max_frame_len;
use super::*;

/// Small payload limit so "oversized" is cheap to reach.
const MAX: usize = 4096;

/// Cheap pseudo-random bytes: generating each byte through proptest is slow in debug builds.
fn blob(max: usize) -> impl Strategy<Value = Vec<u8>> {
    (0..max, any::<u64>()).prop_map(|(len, mut x)| {
        (0..len)
            .map(|_| {
                x = x
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (x >> 56) as u8
            })
            .collect()
    })
}

fn key() -> impl Strategy<Value = Value> {
    proptest::sample::select(
        &[
            "rid",
            "uid",
            "data",
            "msg",
            "ts",
            "k",
            "é",
            "a-much-longer-key-name",
        ][..],
    )
    .prop_map(Value::from)
}

fn text() -> impl Strategy<Value = String> {
    proptest::sample::select(
        &[
            "",
            "x",
            "hello fpnn",
            "ünïcødé ✓",
            "a string longer than thirty-one bytes",
        ][..],
    )
    .prop_map(str::to_owned)
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Nil),
        any::<bool>().prop_map(Value::Boolean),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("NaN breaks equality", |f| !f.is_nan())
            .prop_map(Value::F64),
        text().prop_map(Value::from),
        blob(300).prop_map(Value::Binary),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            vec((key(), inner), 0..4).prop_map(Value::Map),
        ]
    })
}

fn body() -> impl Strategy<Value = Value> {
    vec((key(), value()), 0..5).prop_map(Value::Map)
}

fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        (
            proptest::option::of(any::<u32>()),
            "[a-zA-Z*]{1,20}",
            body()
        )
            .prop_map(|(seq, method, body)| {
                let method = if method.is_empty() {
                    PING_METHOD.to_owned()
                } else {
                    method
                };
                Frame::Quest { seq, method, body }
            }),
        (any::<u32>(), any::<bool>(), body()).prop_map(|(seq, ok, body)| Frame::Answer {
            seq,
            ok,
            body
        }),
    ]
}

fn bytes_of(frames: &[Frame]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        encode(f, &mut out).expect("generated frames encode");
    }
    out
}

/// What a mutation does to a valid encoding.
#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    Flip { at: usize, xor: u8 },
    Insert { at: usize, bytes: Vec<u8> },
    HugePsize(u32),
    Splice { at: usize, len: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 1..=255u8).prop_map(|(at, xor)| Mutation::Flip { at, xor }),
        (any::<usize>(), blob(16)).prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        ((MAX as u32 + 1)..=u32::MAX).prop_map(Mutation::HugePsize),
        (any::<usize>(), 1..64usize).prop_map(|(at, len)| Mutation::Splice { at, len }),
    ]
}

fn apply(m: &Mutation, mut bytes: Vec<u8>) -> Vec<u8> {
    let n = bytes.len().max(1);
    match m {
        Mutation::Truncate(at) => bytes.truncate(at % n),
        Mutation::Flip { at, xor } => {
            if let Some(b) = bytes.get_mut(at % n) {
                *b ^= xor;
            }
        }
        Mutation::Insert { at, bytes: extra } => {
            let at = at % n;
            bytes.splice(at..at, extra.iter().copied());
        }
        Mutation::HugePsize(size) => {
            if let Some(p) = bytes.get_mut(8..12) {
                p.copy_from_slice(&size.to_le_bytes());
            }
        }
        Mutation::Splice { at, len } => {
            let at = at % n;
            let end = (at + len).min(bytes.len());
            bytes.drain(at.min(end)..end);
        }
    }
    bytes
}

/// Feeds `bytes` in `chunk`-sized pushes, draining after each, and checks the memory bound.
/// Returns the frames decoded and the first error, if any.
fn run_decoder(bytes: &[u8], chunk: usize) -> (Vec<Frame>, Option<DecodeError>) {
    let mut d = Decoder::new(MAX);
    let mut frames = Vec::new();
    for part in bytes.chunks(chunk.max(1)) {
        d.push(part);
        assert!(
            d.buffered() <= max_frame_len(MAX) + part.len(),
            "decoder grew past its bound"
        );
        loop {
            match d.next_frame() {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(e) => {
                    assert_eq!(d.next_frame(), Err(e.clone()), "errors are sticky");
                    return (frames, Some(e));
                }
            }
        }
    }
    (frames, None)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    /// Valid encodings decode to the same frames, whatever the chunking.
    #[test]
    fn valid_frames_round_trip(frames in vec(frame(), 1..4), chunk in 1..200usize) {
        let bytes = bytes_of(&frames);
        let (got, err) = run_decoder(&bytes, chunk);
        prop_assert_eq!(err, None);
        prop_assert_eq!(got, frames);
    }

    /// Mutated encodings never panic or grow the decoder past its bound; an announced oversized
    /// payload is an `Err` straight from the header; a truncated stream is a clean prefix.
    #[test]
    fn mutated_frames_never_panic(frames in vec(frame(), 1..3), m in mutation(), chunk in 1..300usize) {
        let bytes = apply(&m, bytes_of(&frames));
        let (got, err) = run_decoder(&bytes, chunk);
        prop_assert!(got.len() <= frames.len() + 1);
        match m {
            Mutation::HugePsize(size) => {
                prop_assert!(got.is_empty());
                prop_assert_eq!(err, Some(DecodeError::PayloadTooLarge { size: size as usize, max: MAX }));
            }
            // A cut stream is a prefix of the frames, waiting for the rest: never an error.
            Mutation::Truncate(_) => {
                prop_assert_eq!(err, None);
                prop_assert_eq!(&got[..], &frames[..got.len()]);
            }
            _ => {}
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Arbitrary bytes, with and without a valid-looking header in front.
    #[test]
    fn random_bytes_never_panic(
        noise in blob(600),
        header in proptest::option::of((any::<u8>(), 0..4u8, any::<u8>(), 0..700u32)),
        chunk in 1..64usize,
    ) {
        let mut bytes = Vec::new();
        if let Some((flag, mtype, ss, psize)) = header {
            bytes.extend_from_slice(b"FPNN");
            bytes.extend_from_slice(&[1, flag, mtype, ss]);
            bytes.extend_from_slice(&psize.to_le_bytes());
        }
        bytes.extend_from_slice(&noise);
        run_decoder(&bytes, chunk);
    }

    /// Encrypted links fed damaged ciphertext never panic and stay bounded.
    #[test]
    fn encrypted_link_survives_damage(
        frames in vec(frame(), 1..3),
        m in mutation(),
        stream in any::<bool>(),
        aes256 in any::<bool>(),
        chunk in 1..300usize,
    ) {
        let mode = if stream { Mode::Stream } else { Mode::Package };
        let bits = if aes256 { KeyBits::Aes256 } else { KeyBits::Aes128 };
        let cipher = Cipher::from_shared_secret(&[0x5a; 32], bits, mode);
        let mut tx = Link::encrypted(cipher.clone(), MAX);
        let mut wire = Vec::new();
        for f in &frames {
            tx.write(f, &mut wire).expect("generated frames fit");
        }
        let mut rx = Link::encrypted(cipher, MAX);
        let damaged = apply(&m, wire.clone());
        let mut got = Vec::new();
        for part in damaged.chunks(chunk) {
            rx.read(part);
            while let Ok(Some(f)) = rx.next_frame() {
                got.push(f);
            }
        }
        prop_assert!(got.len() <= frames.len() + 1);
        // Undamaged ciphertext must decode exactly.
        let mut clean = Link::encrypted(Cipher::from_shared_secret(&[0x5a; 32], bits, mode), MAX);
        clean.read(&wire);
        let mut back = Vec::new();
        while let Some(f) = clean.next_frame().expect("clean ciphertext decodes") {
            back.push(f);
        }
        prop_assert_eq!(back, frames);
    }
}
