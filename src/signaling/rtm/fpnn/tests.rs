//! Byte-exact vectors and round trips. The `vectors` constants were produced by `vectors.py`
//! (Python `struct` + `msgpack` + `cryptography`), independently of this crate's code.

use rmpv::Value;

use super::crypto::{client_handshake_with, public_key_of};
use super::*;

#[rustfmt::skip]
mod vectors {
    pub const ONEWAY: &str = "46504e4e018000052a000000766f69636584a3726964cd03e9a373657105a974696d657374616d70cf0000018bcfe56800a464617461c403010203";
    pub const TWOWAY: &str = "46504e4e0180010426000000010000006175746884a3706964ce00a7d8c1a3756964fba5746f6b656ea3616263a776657273696f6ea472757374";
    pub const ANSWER_OK: &str = "46504e4e018002000c0000000100000082a26f6bc3a467617465a178";
    pub const ANSWER_ERR: &str = "46504e4e018002011b0000000200000082a4636f6465cd4e24a26578ae756e6b6e6f776e206d6574686f64";
    pub const EMPTY_QUEST: &str = "46504e4e0180010501000000030000002a70696e6780";
    pub const EMPTY_ANSWER: &str = "46504e4e01800200010000000300000080";
    pub const JSON_ANSWER: &str = "46504e4e0140020031000000090000007b227473223a313730303030303030303030302c2278223a5b312c2d322c332e352c6e756c6c2c747275652c2273225d7d";
    pub const CRYPTO_FRAME: &str = "46504e4e01800107210000000700000073656e646d736783a2746f2aa36d6964cf0000011f71fb04cba36d7367aa68656c6c6f2066706e6e";
    pub const SECP256K1_SERVER_SECRET: &str = "b7f3cc2727326a7c4531d26628adb83eddd4496f895607140cb34735d0f6d23e";
    pub const SECP256K1_CLIENT_SECRET: &str = "7a0117b2da09d8febaaf4006847ce2bfc32d9e961fa0c9db83f9571367b28f4e";
    pub const SECP256K1_SERVER_PUBLIC: &str = "fc300d956dd7c2563cf8bdca87648c2aa3be5777760e08ff463dbc19988453ae363159291bcb75fa2a63c81e47d387b6f427da2da6ac70e615981892cea39bf5";
    pub const SECP256K1_CLIENT_PUBLIC: &str = "d1936cd2809c15c8a914314163fe8c1c1258c6a9a3e7fdc04eff06d6e1f0c4df3b67f99c90d356a0f151057f291e7fdb6e67e720aab391c343bbcb0ebc663529";
    pub const SECP256K1_SHARED: &str = "494a2b0e1dd75cd0da17de637757de6bc80d7e1b1f383a0340adcb04f3a45327";
    pub const SECP256K1_IV: &str = "f4f070a1dcdaee719ae962b0b22fb146";
    pub const SECP256K1_SERVER_PEM: &str = "-----BEGIN PUBLIC KEY-----\nMFYwEAYHKoZIzj0CAQYFK4EEAAoDQgAE/DANlW3XwlY8+L3Kh2SMKqO+V3d2Dgj/\nRj28GZiEU642MVkpG8t1+ipjyB5H04e29CfaLaascOYVmBiSzqOb9Q==\n-----END PUBLIC KEY-----\n";
    pub const SECP256K1_128_STREAM: &str = "20c2eb8106f776bc5daacb81be1488dc96ea7c5c2aa977a4ae5540da91d47b5f157d17d4b17719335cbde2edf9403064b99632b60575b754eee0c4d7edb02cad8dc6dd14232254cbdbec63a50c275511728bcb1b58ea961990ae6262b7f967b1c4ba457532faa55ea6ca74a90084a405";
    pub const SECP256K1_128_PACKAGE: &str = "3800000020c2eb8106f776bc5daacb81be1488dc96ea7c5c2aa977a4ae5540da91d47b5f157d17d4b17719335cbde2edf9403064b99632b60575b7543800000020c2eb8106f776bc5daacb81be1488dc96ea7c5c2aa977a4ae5540da91d47b5f157d17d4b17719335cbde2edf9403064b99632b60575b754";
    pub const SECP256K1_128_PACKAGE_KEY_QUEST: &str = "46504e4e0180010460000000010000002a6b657983a97075626c69634b6579c440d1936cd2809c15c8a914314163fe8c1c1258c6a9a3e7fdc04eff06d6e1f0c4df3b67f99c90d356a0f151057f291e7fdb6e67e720aab391c343bbcb0ebc663529aa73747265616d4d6f6465c2a462697473cc80";
    pub const SECP256K1_128_STREAM_KEY_QUEST: &str = "46504e4e0180010460000000010000002a6b657983a97075626c69634b6579c440d1936cd2809c15c8a914314163fe8c1c1258c6a9a3e7fdc04eff06d6e1f0c4df3b67f99c90d356a0f151057f291e7fdb6e67e720aab391c343bbcb0ebc663529aa73747265616d4d6f6465c3a462697473cc80";
    pub const SECP256K1_256_STREAM: &str = "32f5219efb420875404d929e3c785f2b9d9bb894ca64087321d4b66050b599fa5a7d2281b247908144969f7663a3e404fa47fa7f87fffbfa674e901c53be0eaf359f2b958022a4abf48c2bb3de78566c559743c24a7d19c007595df75f5ce9c3251e8c612dcd18277fe26b99693fa9b2";
    pub const SECP256K1_256_PACKAGE: &str = "3800000032f5219efb420875404d929e3c785f2b9d9bb894ca64087321d4b66050b599fa5a7d2281b247908144969f7663a3e404fa47fa7f87fffbfa3800000032f5219efb420875404d929e3c785f2b9d9bb894ca64087321d4b66050b599fa5a7d2281b247908144969f7663a3e404fa47fa7f87fffbfa";
    pub const SECP256K1_256_PACKAGE_KEY_QUEST: &str = "46504e4e0180010461000000010000002a6b657983a97075626c69634b6579c440d1936cd2809c15c8a914314163fe8c1c1258c6a9a3e7fdc04eff06d6e1f0c4df3b67f99c90d356a0f151057f291e7fdb6e67e720aab391c343bbcb0ebc663529aa73747265616d4d6f6465c2a462697473cd0100";
    pub const SECP256K1_256_STREAM_KEY_QUEST: &str = "46504e4e0180010461000000010000002a6b657983a97075626c69634b6579c440d1936cd2809c15c8a914314163fe8c1c1258c6a9a3e7fdc04eff06d6e1f0c4df3b67f99c90d356a0f151057f291e7fdb6e67e720aab391c343bbcb0ebc663529aa73747265616d4d6f6465c3a462697473cd0100";
    pub const SECP256R1_SERVER_SECRET: &str = "e65b06e574385af34a190350ef19b88a96c76386e7a89caed1515bef435f7710";
    pub const SECP256R1_CLIENT_SECRET: &str = "788f7a799c26b1aef804d5adc4875e0f8d7ff667982aec52632f25c06ad6bb03";
    pub const SECP256R1_SERVER_PUBLIC: &str = "c31ebc9fccb54018eccf65ee457d1b6eac62577f6b944b80fbe9ff07a0917282ff9a72f2882fb88150fc070b45550347bc20f65d0f4b408b42a0a5162694d204";
    pub const SECP256R1_CLIENT_PUBLIC: &str = "95493b91ddd292064cd687dd16088954691ccab627c8190df34eb9480ee79c5a2f098cac7cdb78f4d1930848a6d259c6249383edaacfbbcdbebbfcde13f1f8fc";
    pub const SECP256R1_SHARED: &str = "afc3523d570d700b88c269e86c4afd1900a0f03568391fae6a3e6829498a853b";
    pub const SECP256R1_IV: &str = "53a4a3fd61c1a32d7703b1b9d008215b";
    pub const SECP256R1_SERVER_PEM: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEwx68n8y1QBjsz2XuRX0bbqxiV39r\nlEuA++n/B6CRcoL/mnLyiC+4gVD8BwtFVQNHvCD2XQ9LQItCoKUWJpTSBA==\n-----END PUBLIC KEY-----\n";
    pub const SECP256R1_128_STREAM: &str = "9f4b807ee149998246d6e5a0b71b34c0858992cd419834e22ea8de0fde346ce91c585ee93deabedc5b02a474d67e239cdc005f38a820dfb394e2a65708bbe863b67f9ea140eaf721e843430ea5a8384da838060f1c9e1d73de28029454b51c33a09f22283234ba311938957473963527";
    pub const SECP256R1_128_PACKAGE: &str = "380000009f4b807ee149998246d6e5a0b71b34c0858992cd419834e22ea8de0fde346ce91c585ee93deabedc5b02a474d67e239cdc005f38a820dfb3380000009f4b807ee149998246d6e5a0b71b34c0858992cd419834e22ea8de0fde346ce91c585ee93deabedc5b02a474d67e239cdc005f38a820dfb3";
    pub const SECP256R1_128_PACKAGE_KEY_QUEST: &str = "46504e4e0180010460000000010000002a6b657983a97075626c69634b6579c44095493b91ddd292064cd687dd16088954691ccab627c8190df34eb9480ee79c5a2f098cac7cdb78f4d1930848a6d259c6249383edaacfbbcdbebbfcde13f1f8fcaa73747265616d4d6f6465c2a462697473cc80";
    pub const SECP256R1_128_STREAM_KEY_QUEST: &str = "46504e4e0180010460000000010000002a6b657983a97075626c69634b6579c44095493b91ddd292064cd687dd16088954691ccab627c8190df34eb9480ee79c5a2f098cac7cdb78f4d1930848a6d259c6249383edaacfbbcdbebbfcde13f1f8fcaa73747265616d4d6f6465c3a462697473cc80";
    pub const SECP256R1_256_STREAM: &str = "02d98f232ccd0fcffdbd6ff69fa2da1a761396ac7f8272e990e7c948734d98c532d90efa7107ed8f19687ccbfdae65ebfedfc1d575e817a5214f29f4e82b8b0000ee6b43cf9a963a2d08aca94f3ee923671f646db33f34a5f6e58fda07d859288e7652877367b49432888caae7c19845";
    pub const SECP256R1_256_PACKAGE: &str = "3800000002d98f232ccd0fcffdbd6ff69fa2da1a761396ac7f8272e990e7c948734d98c532d90efa7107ed8f19687ccbfdae65ebfedfc1d575e817a53800000002d98f232ccd0fcffdbd6ff69fa2da1a761396ac7f8272e990e7c948734d98c532d90efa7107ed8f19687ccbfdae65ebfedfc1d575e817a5";
    pub const SECP256R1_256_PACKAGE_KEY_QUEST: &str = "46504e4e0180010461000000010000002a6b657983a97075626c69634b6579c44095493b91ddd292064cd687dd16088954691ccab627c8190df34eb9480ee79c5a2f098cac7cdb78f4d1930848a6d259c6249383edaacfbbcdbebbfcde13f1f8fcaa73747265616d4d6f6465c2a462697473cd0100";
    pub const SECP256R1_256_STREAM_KEY_QUEST: &str = "46504e4e0180010461000000010000002a6b657983a97075626c69634b6579c44095493b91ddd292064cd687dd16088954691ccab627c8190df34eb9480ee79c5a2f098cac7cdb78f4d1930848a6d259c6249383edaacfbbcdbebbfcde13f1f8fcaa73747265616d4d6f6465c3a462697473cd0100";
}

use vectors::*;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("test vector hex"))
        .collect()
}

fn encoded(frame: &Frame) -> Vec<u8> {
    let mut out = Vec::new();
    encode(frame, &mut out).expect("encodes");
    out
}

fn decode_all(bytes: &[u8]) -> Result<Vec<Frame>, DecodeError> {
    let mut d = Decoder::new(DEFAULT_MAX_PAYLOAD);
    d.push(bytes);
    let mut frames = Vec::new();
    while let Some(f) = d.next_frame()? {
        frames.push(f);
    }
    assert_eq!(d.buffered(), 0, "whole input consumed");
    Ok(frames)
}

fn decode_one(bytes: &[u8]) -> Result<Frame, DecodeError> {
    let mut frames = decode_all(bytes)?;
    assert_eq!(frames.len(), 1);
    Ok(frames.remove(0))
}

/// A raw packet with an arbitrary header, for malformed-input tests.
fn raw(flag: u8, mtype: u8, ss: u8, middle: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = b"FPNN".to_vec();
    out.extend_from_slice(&[1, flag, mtype, ss]);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(middle);
    out.extend_from_slice(payload);
    out
}

fn frame_vectors() -> Vec<(&'static str, Frame)> {
    vec![
        (
            ONEWAY,
            Frame::oneway(
                "voice",
                map([
                    ("rid", Value::from(1001)),
                    ("seq", Value::from(5)),
                    ("timestamp", Value::from(1_700_000_000_000_u64)),
                    ("data", Value::Binary(vec![1, 2, 3])),
                ]),
            ),
        ),
        (
            TWOWAY,
            Frame::twoway(
                1,
                "auth",
                map([
                    ("pid", Value::from(11_000_001)),
                    ("uid", Value::from(-5)),
                    ("token", Value::from("abc")),
                    ("version", Value::from("rust")),
                ]),
            ),
        ),
        (
            ANSWER_OK,
            Frame::answer(
                1,
                map([("ok", Value::Boolean(true)), ("gate", Value::from("x"))]),
            ),
        ),
        (ANSWER_ERR, Frame::error_answer(2, 20004, "unknown method")),
        (EMPTY_QUEST, Frame::twoway(3, PING_METHOD, empty_map())),
        (EMPTY_ANSWER, Frame::answer(3, empty_map())),
    ]
}

#[test]
fn encode_matches_python_vectors() {
    for (expected, frame) in frame_vectors() {
        assert_eq!(encoded(&frame), hex(expected), "{frame:?}");
    }
}

#[test]
fn nil_body_is_sent_as_empty_map() {
    assert_eq!(
        encoded(&Frame::twoway(3, PING_METHOD, Value::Nil)),
        hex(EMPTY_QUEST)
    );
    assert_eq!(encoded(&Frame::answer(3, Value::Nil)), hex(EMPTY_ANSWER));
}

#[test]
fn decode_matches_python_vectors() {
    for (bytes, frame) in frame_vectors() {
        assert_eq!(decode_one(&hex(bytes)).unwrap(), frame);
    }
}

#[test]
fn decode_concatenated_and_byte_by_byte() {
    let vectors = frame_vectors();
    let stream: Vec<u8> = vectors.iter().flat_map(|(h, _)| hex(h)).collect();
    let expected: Vec<Frame> = vectors.into_iter().map(|(_, f)| f).collect();
    assert_eq!(decode_all(&stream).unwrap(), expected);

    let mut d = Decoder::new(DEFAULT_MAX_PAYLOAD);
    let mut got = Vec::new();
    for b in &stream {
        d.push(std::slice::from_ref(b));
        while let Some(f) = d.next_frame().unwrap() {
            got.push(f);
        }
    }
    assert_eq!(got, expected);
}

#[test]
fn json_answer_becomes_msgpack_value() {
    let frame = decode_one(&hex(JSON_ANSWER)).unwrap();
    let Frame::Answer {
        seq: 9,
        ok: true,
        body,
    } = frame
    else {
        panic!("{frame:?}")
    };
    assert_eq!(field(&body, "ts").and_then(as_i64), Some(1_700_000_000_000));
    let expected = Value::Array(vec![
        Value::from(1),
        Value::from(-2),
        Value::F64(3.5),
        Value::Nil,
        Value::Boolean(true),
        Value::from("s"),
    ]);
    assert_eq!(field(&body, "x"), Some(&expected));
}

#[test]
fn any_integer_width_is_accepted() {
    #[rustfmt::skip]
    let payload = [
        0x85,
        0xa1, b'a', 0xd3, 0, 0, 0, 0, 0, 0, 0, 5,       // int64 5
        0xa1, b'b', 0xd0, 0xff,                          // int8 -1
        0xa1, b'c', 0xcf, 0, 0, 0, 0, 0, 0, 0, 7,       // uint64 7
        0xa1, b'd', 0xcd, 0x01, 0x2c,                    // uint16 300
        0xa1, b'e', 0xd2, 0xff, 0xfe, 0xee, 0x90,        // int32 -70000
    ];
    let frame = decode_one(&raw(0x80, 2, 0, &7u32.to_le_bytes(), &payload)).unwrap();
    let Frame::Answer { body, .. } = frame else {
        panic!()
    };
    let ints: Vec<_> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|k| field(&body, k).and_then(as_i64))
        .collect();
    assert_eq!(
        ints,
        [Some(5), Some(-1), Some(7), Some(300), Some(-70000)].to_vec()
    );
}

#[test]
fn empty_quest_payload_is_an_empty_map() {
    let frame = decode_one(&raw(0x80, 0, 4, b"ping", &[])).unwrap();
    assert_eq!(frame, Frame::oneway("ping", empty_map()));
}

#[test]
fn malformed_frames_are_fatal() {
    let seq = 1u32.to_le_bytes();
    let cases: Vec<(Vec<u8>, DecodeError)> = vec![
        (
            b"GET / HTTP/1.1\r\n".to_vec(),
            DecodeError::BadMagic(*b"GET "),
        ),
        (raw(0x00, 2, 0, &seq, &[0x80]), DecodeError::BadFlag(0x00)),
        (raw(0xc0, 2, 0, &seq, &[0x80]), DecodeError::BadFlag(0xc0)),
        (
            raw(0x80, 3, 0, &seq, &[0x80]),
            DecodeError::BadMessageType(3),
        ),
        (raw(0x80, 1, 0, &seq, &[0x80]), DecodeError::EmptyMethod),
        (
            raw(0x80, 0, 2, &[0xff, 0xfe], &[0x80]),
            DecodeError::MethodNotUtf8,
        ),
        (raw(0x80, 2, 0, &seq, &[]), DecodeError::EmptyAnswer),
        (raw(0x80, 2, 0, &seq, &[0x01]), DecodeError::BodyNotMap),
        (raw(0x40, 2, 0, &seq, b"[1]"), DecodeError::BodyNotMap),
        (
            raw(0x80, 2, 0, &seq, &[0x80, 0x80]),
            DecodeError::Msgpack("1 trailing bytes".into()),
        ),
        (
            raw(0x80, 2, 0, &seq, &[0x81, 0xa1]),
            DecodeError::Msgpack("truncated".into()),
        ),
        (
            raw(0x80, 2, 0, &seq, &[0x81, 0xc1, 0xc0]),
            DecodeError::Msgpack("reserved marker 0xc1".into()),
        ),
    ];
    for (bytes, expected) in cases {
        assert_eq!(decode_all(&bytes).unwrap_err(), expected, "{bytes:02x?}");
    }
    assert!(matches!(
        decode_all(&raw(0x40, 2, 0, &seq, b"{")),
        Err(DecodeError::Json(_))
    ));
}

#[test]
fn oversized_payload_is_refused_from_the_header_alone() {
    let mut header = b"FPNN".to_vec();
    header.extend_from_slice(&[1, 0x80, 2, 0]);
    header.extend_from_slice(&(1025u32).to_le_bytes());
    let mut d = Decoder::new(1024);
    d.push(&header);
    assert_eq!(
        d.next_frame(),
        Err(DecodeError::PayloadTooLarge {
            size: 1025,
            max: 1024
        })
    );
    // Sticky, and later bytes are not buffered.
    d.push(&[0; 4096]);
    assert_eq!(d.buffered(), HEADER_LEN);
    assert!(d.next_frame().is_err());

    let mut json = header.clone();
    json[5] = 0x40;
    json[8..12].copy_from_slice(&((MAX_JSON_PAYLOAD + 1) as u32).to_le_bytes());
    let mut d = Decoder::new(DEFAULT_MAX_PAYLOAD);
    d.push(&json);
    assert!(matches!(
        d.next_frame(),
        Err(DecodeError::PayloadTooLarge { .. })
    ));
}

#[test]
fn undrained_pushes_overflow() {
    let mut d = Decoder::new(64);
    let frame = encoded(&Frame::answer(1, empty_map()));
    for _ in 0..100 {
        d.push(&frame);
    }
    assert!(matches!(d.next_frame(), Err(DecodeError::Overflow { .. })));
}

#[test]
fn nesting_and_value_count_are_bounded() {
    let seq = 1u32.to_le_bytes();
    // {"a": [[[[...]]]]} nested past MAX_DEPTH.
    let mut deep = vec![0x81, 0xa1, b'a'];
    deep.extend(std::iter::repeat_n(0x91, MAX_DEPTH + 1));
    deep.push(0xc0);
    assert_eq!(
        decode_all(&raw(0x80, 2, 0, &seq, &deep)),
        Err(DecodeError::TooComplex)
    );
    // {"a": [nil × (MAX_NODES)]}: one value too many.
    let mut wide = vec![0x81, 0xa1, b'a', 0xdd];
    wide.extend_from_slice(&(MAX_NODES as u32).to_be_bytes());
    wide.extend(std::iter::repeat_n(0xc0, MAX_NODES));
    assert_eq!(
        decode_all(&raw(0x80, 2, 0, &seq, &wide)),
        Err(DecodeError::TooComplex)
    );
    // A claimed 4-billion-element array with no elements is just truncated.
    let claim = [0x81, 0xa1, b'a', 0xdd, 0xff, 0xff, 0xff, 0xff];
    assert!(matches!(
        decode_all(&raw(0x80, 2, 0, &seq, &claim)),
        Err(DecodeError::Msgpack(_))
    ));
    // Depth exactly at the limit is fine.
    let mut ok = vec![0x81, 0xa1, b'a'];
    ok.extend(std::iter::repeat_n(0x91, MAX_DEPTH - 1));
    ok.push(0xc0);
    assert!(decode_all(&raw(0x80, 2, 0, &seq, &ok)).is_ok());
}

#[test]
fn encode_errors_leave_output_untouched() {
    let mut out = vec![9, 9];
    let long = "m".repeat(256);
    let cases = [
        (Frame::oneway("", empty_map()), EncodeError::EmptyMethod),
        (
            Frame::oneway(&long, empty_map()),
            EncodeError::MethodTooLong(256),
        ),
        (Frame::answer(1, Value::from(1)), EncodeError::BodyNotMap),
    ];
    for (frame, expected) in cases {
        assert_eq!(encode(&frame, &mut out), Err(expected));
        assert_eq!(out, [9, 9]);
    }
    assert!(encode(&Frame::oneway(&"m".repeat(255), empty_map()), &mut out).is_ok());
}

#[test]
fn value_helpers() {
    let mut raw_str = vec![
        0x82, 0xa1, b's', 0xa2, 0xff, 0xfe, 0xa1, b'b', 0xc4, 0x01, 0x07,
    ];
    let v = rmpv::decode::read_value(&mut &raw_str[..]).unwrap();
    assert_eq!(
        field(&v, "s").and_then(as_str),
        None,
        "invalid UTF-8 is not a str"
    );
    assert_eq!(field(&v, "s").and_then(as_bytes), Some(&[0xff, 0xfe][..]));
    assert_eq!(field(&v, "b").and_then(as_bytes), Some(&[7][..]));
    assert_eq!(field(&v, "missing"), None);
    raw_str.clear();
    let m = map([
        ("n", Value::from(u64::MAX)),
        ("t", Value::Boolean(true)),
        ("x", Value::from("y")),
    ]);
    assert_eq!(field(&m, "n").and_then(as_i64), None);
    assert_eq!(field(&m, "n").and_then(as_u64), Some(u64::MAX));
    assert_eq!(field(&m, "t").and_then(as_bool), Some(true));
    assert_eq!(field(&m, "x").and_then(as_str), Some("y"));
    assert_eq!(field(&Value::from(1), "x"), None);
}

// ---------------------------------------------------------------- crypto

struct CryptoCase {
    curve: Curve,
    server_secret: &'static str,
    client_secret: &'static str,
    server_public: &'static str,
    client_public: &'static str,
    server_pem: &'static str,
    shared: &'static str,
    iv: &'static str,
    /// (bits, stream ciphertext, package ciphertext, package *key quest, stream *key quest)
    runs: [(
        KeyBits,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
    ); 2],
}

fn crypto_cases() -> [CryptoCase; 2] {
    [
        CryptoCase {
            curve: Curve::Secp256k1,
            server_secret: SECP256K1_SERVER_SECRET,
            client_secret: SECP256K1_CLIENT_SECRET,
            server_public: SECP256K1_SERVER_PUBLIC,
            client_public: SECP256K1_CLIENT_PUBLIC,
            server_pem: SECP256K1_SERVER_PEM,
            shared: SECP256K1_SHARED,
            iv: SECP256K1_IV,
            runs: [
                (
                    KeyBits::Aes128,
                    SECP256K1_128_STREAM,
                    SECP256K1_128_PACKAGE,
                    SECP256K1_128_PACKAGE_KEY_QUEST,
                    SECP256K1_128_STREAM_KEY_QUEST,
                ),
                (
                    KeyBits::Aes256,
                    SECP256K1_256_STREAM,
                    SECP256K1_256_PACKAGE,
                    SECP256K1_256_PACKAGE_KEY_QUEST,
                    SECP256K1_256_STREAM_KEY_QUEST,
                ),
            ],
        },
        CryptoCase {
            curve: Curve::Secp256r1,
            server_secret: SECP256R1_SERVER_SECRET,
            client_secret: SECP256R1_CLIENT_SECRET,
            server_public: SECP256R1_SERVER_PUBLIC,
            client_public: SECP256R1_CLIENT_PUBLIC,
            server_pem: SECP256R1_SERVER_PEM,
            shared: SECP256R1_SHARED,
            iv: SECP256R1_IV,
            runs: [
                (
                    KeyBits::Aes128,
                    SECP256R1_128_STREAM,
                    SECP256R1_128_PACKAGE,
                    SECP256R1_128_PACKAGE_KEY_QUEST,
                    SECP256R1_128_STREAM_KEY_QUEST,
                ),
                (
                    KeyBits::Aes256,
                    SECP256R1_256_STREAM,
                    SECP256R1_256_PACKAGE,
                    SECP256R1_256_PACKAGE_KEY_QUEST,
                    SECP256R1_256_STREAM_KEY_QUEST,
                ),
            ],
        },
    ]
}

fn secret32(h: &str) -> [u8; 32] {
    hex(h).try_into().expect("32-byte secret")
}

#[test]
fn server_keys_load_from_raw_pem_and_secret() {
    for case in crypto_cases() {
        let raw = ServerKey::from_raw(case.curve, &hex(case.server_public)).unwrap();
        assert_eq!(ServerKey::from_pem(case.server_pem).unwrap(), raw);
        let mut prefixed = vec![0x04];
        prefixed.extend(hex(case.server_public));
        assert_eq!(ServerKey::from_raw(case.curve, &prefixed).unwrap(), raw);
        assert_eq!(
            public_key_of(case.curve, &secret32(case.server_secret))
                .unwrap()
                .to_vec(),
            hex(case.server_public)
        );
        assert_eq!(
            public_key_of(case.curve, &secret32(case.client_secret))
                .unwrap()
                .to_vec(),
            hex(case.client_public)
        );
    }
}

#[test]
fn bad_keys_are_refused() {
    assert_eq!(
        ServerKey::from_raw(Curve::Secp256k1, &[0; 64]),
        Err(CryptoError::BadPublicKey)
    );
    assert_eq!(
        ServerKey::from_raw(Curve::Secp256k1, &[1; 63]),
        Err(CryptoError::BadPublicKey)
    );
    // A valid secp256k1 point is not on secp256r1.
    assert_eq!(
        ServerKey::from_raw(Curve::Secp256r1, &hex(SECP256K1_SERVER_PUBLIC)),
        Err(CryptoError::BadPublicKey)
    );
    assert!(matches!(
        ServerKey::from_pem("nope"),
        Err(CryptoError::BadKeyFile(_))
    ));
    let broken = SECP256R1_SERVER_PEM.replace("MFkw", "MFkx");
    assert!(matches!(
        ServerKey::from_pem(&broken),
        Err(CryptoError::BadKeyFile(_))
    ));
    assert_eq!(
        public_key_of(Curve::Secp256r1, &[0; 32]),
        Err(CryptoError::BadSecretKey)
    );
    assert_eq!(
        public_key_of(Curve::Secp256r1, &[0xff; 32]),
        Err(CryptoError::BadSecretKey)
    );
    assert_eq!("prime256v1".parse::<Curve>(), Ok(Curve::Secp256r1));
    assert_eq!("secp256k1".parse::<Curve>(), Ok(Curve::Secp256k1));
    assert!(matches!(
        "secp224r1".parse::<Curve>(),
        Err(CryptoError::UnknownCurve(_))
    ));
}

#[test]
fn handshake_and_ciphertext_match_python_vectors() {
    let frame = hex(CRYPTO_FRAME);
    for case in crypto_cases() {
        let server = ServerKey::from_raw(case.curve, &hex(case.server_public)).unwrap();
        for (bits, stream_ct, package_ct, package_quest, stream_quest) in case.runs {
            for (mode, expected_ct, expected_quest) in [
                (Mode::Stream, stream_ct, stream_quest),
                (Mode::Package, package_ct, package_quest),
            ] {
                let what = format!("{:?} {bits:?} {mode:?}", case.curve);
                let (body, mut client) =
                    client_handshake_with(&server, bits, mode, &secret32(case.client_secret))
                        .unwrap();
                assert_eq!(
                    encoded(&Frame::twoway(1, KEY_METHOD, body.clone())),
                    hex(expected_quest),
                    "{what}"
                );
                let key_len = bits.bits() as usize / 8;
                assert_eq!(client.key_iv.0, hex(case.shared)[..key_len], "{what}");
                assert_eq!(client.key_iv.1.to_vec(), hex(case.iv), "{what}");

                let mut ct = Vec::new();
                client.encrypt(&frame, &mut ct);
                client.encrypt(&frame, &mut ct);
                assert_eq!(ct, hex(expected_ct), "{what}");

                let mut server_cipher =
                    server_handshake(case.curve, &secret32(case.server_secret), &body).unwrap();
                assert_eq!(server_cipher.key_iv, client.key_iv, "{what}");
                let mut rx = Link::encrypted(server_cipher.clone(), DEFAULT_MAX_PAYLOAD);
                rx.read(&ct);
                for _ in 0..2 {
                    assert_eq!(encoded(&rx.next_frame().unwrap().unwrap()), frame, "{what}");
                }
                assert_eq!(rx.next_frame(), Ok(None));
                // The server's outgoing direction uses the same key and IV.
                let mut back = Vec::new();
                server_cipher.encrypt(&frame, &mut back);
                assert_eq!(back, hex(expected_ct)[..back.len()], "{what}");
            }
        }
    }
}

/// Client and server links talking through a byte pipe fed in awkward chunk sizes.
fn pump(from: &mut Vec<u8>, to: &mut Link, chunk: usize) -> Vec<Frame> {
    let mut frames = Vec::new();
    for part in from.chunks(chunk.max(1)) {
        to.read(part);
        while let Some(f) = to.next_frame().expect("decodes") {
            frames.push(f);
        }
    }
    from.clear();
    frames
}

fn sample_frames() -> Vec<Frame> {
    vec![
        Frame::twoway(
            2,
            "auth",
            map([("pid", Value::from(1)), ("token", Value::from("t"))]),
        ),
        Frame::oneway("voice", map([("data", Value::Binary(vec![0x55; 1200]))])),
        Frame::answer(7, empty_map()),
        Frame::error_answer(8, 20004, "unknown method"),
    ]
}

#[test]
fn client_server_link_round_trip() {
    let mut chunk = 1;
    for curve in [Curve::Secp256k1, Curve::Secp256r1] {
        for bits in [KeyBits::Aes128, KeyBits::Aes256] {
            for mode in [Mode::Stream, Mode::Package] {
                round_trip(curve, bits, mode, chunk);
                chunk += 5;
            }
        }
    }
}

/// A full session: plain `*key` (with a quest pipelined right behind it, which the server must
/// take as ciphertext), the encrypted `*key` answer, then traffic both ways in `chunk`-byte reads.
fn round_trip(curve: Curve, bits: KeyBits, mode: Mode, chunk: usize) {
    let what = format!("{curve:?} {bits:?} {mode:?}");
    let server_secret = secret32(match curve {
        Curve::Secp256k1 => SECP256K1_SERVER_SECRET,
        _ => SECP256R1_SERVER_SECRET,
    });
    let server_key =
        ServerKey::from_raw(curve, &public_key_of(curve, &server_secret).unwrap()).unwrap();
    let (body, cipher) = client_handshake(&server_key, bits, mode, &mut rand::rng()).unwrap();

    let (mut client, mut server) = (Link::default(), Link::default());
    let (mut up, mut down) = (Vec::new(), Vec::new());
    client
        .write(&Frame::twoway(1, KEY_METHOD, body), &mut up)
        .unwrap();
    client.start_encryption(cipher).unwrap();
    client.write(&sample_frames()[0], &mut up).unwrap();

    server.read(&up);
    up.clear();
    let Some(Frame::Quest {
        seq: Some(1),
        method,
        body,
    }) = server.next_frame().unwrap()
    else {
        panic!("{what}: no *key quest")
    };
    assert_eq!(method, KEY_METHOD);
    let server_cipher = server_handshake(curve, &server_secret, &body).unwrap();
    server.start_encryption(server_cipher).unwrap();
    assert_eq!(
        server.next_frame().unwrap().as_ref(),
        sample_frames().first(),
        "{what}"
    );
    assert_eq!(server.next_frame().unwrap(), None);

    server
        .write(&Frame::answer(1, empty_map()), &mut down)
        .unwrap();
    assert_eq!(
        pump(&mut down, &mut client, chunk),
        [Frame::answer(1, empty_map())],
        "{what}"
    );
    for f in sample_frames() {
        client.write(&f, &mut up).unwrap();
        server.write(&f, &mut down).unwrap();
    }
    assert_eq!(pump(&mut up, &mut server, chunk), sample_frames(), "{what}");
    assert_eq!(
        pump(&mut down, &mut client, 1000),
        sample_frames(),
        "{what}"
    );
    let another = Cipher::from_shared_secret(&[1; 32], bits, mode);
    assert_eq!(
        client.start_encryption(another),
        Err(CryptoError::AlreadyEncrypted)
    );
}

#[test]
fn server_handshake_reads_fields_like_the_framework() {
    let secret = secret32(SECP256K1_SERVER_SECRET);
    let client_pub = hex(SECP256K1_CLIENT_PUBLIC);
    // publicKey as a msgpack str holding raw (non-UTF-8) bytes, no streamMode, no bits.
    let mut bytes = vec![0x81, 0xa9];
    bytes.extend_from_slice(b"publicKey");
    bytes.extend_from_slice(&[0xd9, 64]);
    bytes.extend_from_slice(&client_pub);
    let body = rmpv::decode::read_value(&mut &bytes[..]).unwrap();
    let cipher = server_handshake(Curve::Secp256k1, &secret, &body).unwrap();
    assert_eq!(cipher.mode(), Mode::Package);
    assert_eq!(cipher.key_iv.0, hex(SECP256K1_SHARED)[..16]);

    let with = |extra: Vec<(&'static str, Value)>| {
        let mut pairs = vec![("publicKey", Value::Binary(client_pub.clone()))];
        pairs.extend(extra);
        server_handshake(Curve::Secp256k1, &secret, &map(pairs))
    };
    assert_eq!(
        with(vec![("streamMode", Value::from(1))]).unwrap().mode(),
        Mode::Package
    );
    assert_eq!(
        with(vec![("streamMode", Value::Boolean(true))])
            .unwrap()
            .mode(),
        Mode::Stream
    );
    assert!(matches!(
        with(vec![("bits", Value::from(192))]),
        Err(CryptoError::BadKeyQuest(_))
    ));
    assert_eq!(
        with(vec![("bits", Value::from(256))]).unwrap().key_iv.0,
        hex(SECP256K1_SHARED)
    );
    let short = map([("publicKey", Value::Binary(vec![4; 63]))]);
    assert!(matches!(
        server_handshake(Curve::Secp256k1, &secret, &short),
        Err(CryptoError::BadKeyQuest(_))
    ));
    assert!(matches!(
        server_handshake(Curve::Secp256k1, &secret, &empty_map()),
        Err(CryptoError::BadKeyQuest(_))
    ));
    let off_curve = map([("publicKey", Value::Binary(vec![0; 64]))]);
    assert_eq!(
        server_handshake(Curve::Secp256k1, &secret, &off_curve).unwrap_err(),
        CryptoError::BadPublicKey
    );
}

fn package_link() -> (Link, Cipher) {
    let cipher = Cipher::from_shared_secret(&[7; 32], KeyBits::Aes128, Mode::Package);
    (Link::encrypted(cipher.clone(), 1024), cipher)
}

#[test]
fn package_must_hold_exactly_one_frame() {
    let (mut link, mut cipher) = package_link();
    let one = encoded(&Frame::answer(1, empty_map()));
    let mut ct = Vec::new();
    cipher.encrypt(&[one.clone(), one.clone()].concat(), &mut ct);
    link.read(&ct);
    assert_eq!(
        link.next_frame(),
        Err(DecodeError::PackageMismatch {
            package: 34,
            frame: 17
        })
    );
    assert!(link.next_frame().is_err(), "sticky");
}

#[test]
fn oversized_package_is_refused_from_its_prefix() {
    let (mut link, _) = package_link();
    link.read(&(10_000u32).to_le_bytes());
    assert!(matches!(
        link.next_frame(),
        Err(DecodeError::PackageTooLarge { size: 10_000, .. })
    ));
}

#[test]
fn link_refuses_to_send_over_its_limit() {
    let mut link = Link::plain(16);
    let mut out = Vec::new();
    let big = Frame::oneway("x", map([("d", Value::Binary(vec![0; 32]))]));
    assert!(matches!(
        link.write(&big, &mut out),
        Err(EncodeError::PayloadTooLarge { max: 16, .. })
    ));
    assert!(out.is_empty());
    let (mut enc, _) = package_link();
    let huge = Frame::oneway("x", map([("d", Value::Binary(vec![0; 2000]))]));
    assert!(enc.write(&huge, &mut out).is_err());
    assert!(out.is_empty());
}

#[test]
fn cipher_api_handles_arbitrary_splits() {
    let shared = secret32(SECP256R1_SHARED);
    let frame = hex(CRYPTO_FRAME);
    // Stream mode: any split of the incoming stream decrypts the same.
    let ct = hex(SECP256R1_128_STREAM);
    let mut rx = Cipher::from_shared_secret(&shared, KeyBits::Aes128, Mode::Stream);
    let (a, b) = ct.split_at(21);
    assert_eq!(
        [rx.decrypt(a), rx.decrypt(b)].concat(),
        [frame.clone(), frame.clone()].concat()
    );
    // Package mode: the decryptor reassembles packages pushed a byte at a time.
    let ct = hex(SECP256R1_256_PACKAGE);
    let mut cipher = Cipher::from_shared_secret(&shared, KeyBits::Aes256, Mode::Package);
    let mut packages = PackageDecryptor::new(1024);
    let mut got = Vec::new();
    for b in &ct {
        packages.push(std::slice::from_ref(b));
        while let Some(p) = packages.next_packet(&mut cipher).unwrap() {
            got.push(p);
        }
    }
    assert_eq!(got, [frame.clone(), frame.clone()]);
    assert_eq!(packages.buffered(), 0);
    // Package mode `decrypt` takes one package body without its prefix.
    assert_eq!(cipher.decrypt(&ct[4..4 + frame.len()]), frame);
}
