//! FPNN frames: the header, encoding, and a bounded incremental decoder.

use rmpv::Value;

use super::inbuf::InBuf;
use super::{DEFAULT_MAX_PAYLOAD, HEADER_LEN, MAX_DEPTH, MAX_JSON_PAYLOAD, MAX_NODES, body};

const MAGIC: [u8; 4] = *b"FPNN";
const VERSION: u8 = 1;
const FLAG_MSGPACK: u8 = 0x80;
const FLAG_JSON: u8 = 0x40;
const MT_ONEWAY: u8 = 0;
const MT_TWOWAY: u8 = 1;
const MT_ANSWER: u8 = 2;

/// Longest method name the one-byte `ss` field can carry.
pub const MAX_METHOD_LEN: usize = 255;

/// One FPNN message.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Frame {
    /// A quest. `seq: None` = one-way, `Some(n)` = two-way: the peer must answer with seq `n`.
    Quest {
        /// Sequence number of a two-way quest; `None` for one-way.
        seq: Option<u32>,
        /// Method name, 1 to 255 bytes of UTF-8.
        method: String,
        /// Payload: a map (`Nil` is sent as the empty map).
        body: Value,
    },
    /// An answer to our two-way quest (or ours to theirs). `ok = false` is an error answer
    /// (any non-zero status on the wire), whose body is normally `{code, ex}`.
    Answer {
        /// The sequence number of the quest answered.
        seq: u32,
        /// Whether the status was 0.
        ok: bool,
        /// Payload map.
        body: Value,
    },
}

impl Frame {
    /// An error answer `{code, ex}` with status 1, the shape FPNN's own error answers have.
    pub fn error_answer(seq: u32, code: i64, ex: &str) -> Frame {
        let body = super::map([("code", Value::from(code)), ("ex", Value::from(ex))]);
        Frame::Answer {
            seq,
            ok: false,
            body,
        }
    }

    /// A successful answer; pass [`super::empty_map`] for the `{}` every unknown push expects.
    pub fn answer(seq: u32, body: Value) -> Frame {
        Frame::Answer {
            seq,
            ok: true,
            body,
        }
    }

    /// A two-way quest with sequence number `seq`.
    pub fn twoway(seq: u32, method: &str, body: Value) -> Frame {
        Frame::Quest {
            seq: Some(seq),
            method: method.to_owned(),
            body,
        }
    }

    /// A one-way quest: the peer sends no answer.
    pub fn oneway(method: &str, body: Value) -> Frame {
        Frame::Quest {
            seq: None,
            method: method.to_owned(),
            body,
        }
    }
}

/// Why a frame could not be encoded; nothing was appended to the output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// FPNN rejects quests without a method name.
    #[error("quest with an empty method name")]
    EmptyMethod,
    /// The method length must fit the one-byte `ss` header field.
    #[error("method name of {0} bytes is longer than 255")]
    MethodTooLong(usize),
    /// FPNN payloads are maps; readers on the other side reject anything else.
    #[error("body is not a map")]
    BodyNotMap,
    /// The encoded payload is larger than the limit (the link's, or `u32::MAX` for [`encode`]).
    #[error("payload of {size} bytes exceeds the {max}-byte limit")]
    PayloadTooLarge {
        /// Encoded payload size.
        size: usize,
        /// The limit it broke.
        max: usize,
    },
    /// The msgpack writer failed (it cannot, writing to a `Vec`).
    #[error("msgpack encoding failed: {0}")]
    Msgpack(String),
}

/// Why the byte stream can no longer be decoded. Every variant is fatal: close the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The first four bytes of a header were not `FPNN`.
    #[error("bad magic {0:02x?}: not an FPNN TCP packet")]
    BadMagic([u8; 4]),
    /// The flag must name exactly one of msgpack (0x80) and JSON (0x40).
    #[error("flag 0x{0:02x} names neither or both of msgpack and JSON")]
    BadFlag(u8),
    /// mtype other than 0 (one-way), 1 (two-way) or 2 (answer).
    #[error("unknown message type {0}")]
    BadMessageType(u8),
    /// The header announced a payload over the limit; nothing of it was buffered.
    #[error("payload of {size} bytes exceeds the {max}-byte limit")]
    PayloadTooLarge {
        /// Announced payload size.
        size: usize,
        /// The decoder's limit.
        max: usize,
    },
    /// A quest with `ss = 0`, which the framework rejects.
    #[error("quest with an empty method name")]
    EmptyMethod,
    /// The method name is not UTF-8.
    #[error("method name is not UTF-8")]
    MethodNotUtf8,
    /// An answer with `psize = 0`, which the framework's decoder rejects.
    #[error("answer with an empty payload")]
    EmptyAnswer,
    /// Malformed, truncated or trailing-garbage msgpack.
    #[error("invalid msgpack payload: {0}")]
    Msgpack(String),
    /// Malformed JSON in a JSON-flagged frame.
    #[error("invalid JSON payload: {0}")]
    Json(String),
    /// The payload is well-formed but not a map.
    #[error("payload is not a map")]
    BodyNotMap,
    /// The payload nests deeper than [`MAX_DEPTH`] or holds more than [`MAX_NODES`] values.
    #[error("payload nests deeper than {MAX_DEPTH} or holds more than {MAX_NODES} values")]
    TooComplex,
    /// More than a whole frame was pushed without `next_frame` draining it.
    #[error("{buffered} bytes were buffered without being drained")]
    Overflow {
        /// Bytes held when the push was refused.
        buffered: usize,
    },
    /// An encrypted package's plain-text length prefix is over the limit.
    #[error("encrypted package of {size} bytes exceeds the {max}-byte limit")]
    PackageTooLarge {
        /// Announced package size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// An encrypted package must hold exactly one frame, as the framework requires.
    #[error("encrypted package of {package} bytes holds a frame of {frame} bytes")]
    PackageMismatch {
        /// Decrypted package length.
        package: usize,
        /// Length of the frame its header describes.
        frame: usize,
    },
}

/// Appends one frame: version 1, msgpack, header copied from nothing but the frame itself. On
/// error `out` is left as it was.
pub fn encode(frame: &Frame, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let start = out.len();
    let result = encode_into(frame, out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn encode_into(frame: &Frame, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let start = out.len();
    let body = match frame {
        Frame::Quest { seq, method, body } => {
            let ss = match method.len() {
                0 => return Err(EncodeError::EmptyMethod),
                n => u8::try_from(n).map_err(|_| EncodeError::MethodTooLong(n))?,
            };
            push_header(out, if seq.is_some() { MT_TWOWAY } else { MT_ONEWAY }, ss);
            if let Some(seq) = seq {
                out.extend_from_slice(&seq.to_le_bytes());
            }
            out.extend_from_slice(method.as_bytes());
            body
        }
        Frame::Answer { seq, ok, body } => {
            push_header(out, MT_ANSWER, if *ok { 0 } else { 1 });
            out.extend_from_slice(&seq.to_le_bytes());
            body
        }
    };
    let payload_start = out.len();
    if !body::write(body, out).map_err(|e| EncodeError::Msgpack(e.to_string()))? {
        return Err(EncodeError::BodyNotMap);
    }
    let size = out.len() - payload_start;
    let psize = u32::try_from(size).map_err(|_| EncodeError::PayloadTooLarge {
        size,
        max: u32::MAX as usize,
    })?;
    if let Some(slot) = out.get_mut(start + 8..start + HEADER_LEN) {
        slot.copy_from_slice(&psize.to_le_bytes());
    }
    Ok(())
}

fn push_header(out: &mut Vec<u8>, mtype: u8, ss: u8) {
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&[VERSION, FLAG_MSGPACK, mtype, ss, 0, 0, 0, 0]);
}

/// The parts of a validated header that decoding needs.
#[derive(Debug, Clone, Copy)]
pub(super) struct Header {
    json: bool,
    mtype: u8,
    ss: u8,
    psize: usize,
}

impl Header {
    /// Parses and validates the first [`HEADER_LEN`] bytes of `bytes`; `Ok(None)` if fewer.
    pub(super) fn parse(bytes: &[u8], max_payload: usize) -> Result<Option<Header>, DecodeError> {
        let Some(h) = bytes.first_chunk::<HEADER_LEN>() else {
            return Ok(None);
        };
        let magic = [h[0], h[1], h[2], h[3]];
        if magic != MAGIC {
            return Err(DecodeError::BadMagic(magic));
        }
        let (flag, mtype, ss) = (h[5], h[6], h[7]);
        let json = match (flag & FLAG_MSGPACK != 0, flag & FLAG_JSON != 0) {
            (true, false) => false,
            (false, true) => true,
            _ => return Err(DecodeError::BadFlag(flag)),
        };
        if mtype > MT_ANSWER {
            return Err(DecodeError::BadMessageType(mtype));
        }
        if mtype != MT_ANSWER && ss == 0 {
            return Err(DecodeError::EmptyMethod);
        }
        let size = u32::from_le_bytes([h[8], h[9], h[10], h[11]]) as usize;
        let max = if json {
            max_payload.min(MAX_JSON_PAYLOAD)
        } else {
            max_payload
        };
        if size > max {
            return Err(DecodeError::PayloadTooLarge { size, max });
        }
        Ok(Some(Header {
            json,
            mtype,
            ss,
            psize: size,
        }))
    }

    /// Length of the whole packet this header starts.
    pub(super) fn frame_len(&self) -> usize {
        let middle = match self.mtype {
            MT_ONEWAY => usize::from(self.ss),
            MT_TWOWAY => 4 + usize::from(self.ss),
            _ => 4,
        };
        HEADER_LEN + middle + self.psize
    }

    /// Decodes the complete packet `packet` (exactly [`Header::frame_len`] bytes) it heads.
    pub(super) fn decode(&self, packet: &[u8]) -> Result<Frame, DecodeError> {
        let rest = packet.get(HEADER_LEN..).unwrap_or_default();
        let (seq, rest) = if self.mtype == MT_ONEWAY {
            (None, rest)
        } else {
            let (seq, rest) = rest
                .split_first_chunk::<4>()
                .ok_or(DecodeError::EmptyAnswer)?;
            (Some(u32::from_le_bytes(*seq)), rest)
        };
        if self.mtype == MT_ANSWER {
            let body = body::read(rest, self.json, false)?;
            return Ok(Frame::Answer {
                seq: seq.unwrap_or(0),
                ok: self.ss == 0,
                body,
            });
        }
        let (method, payload) = rest
            .split_at_checked(usize::from(self.ss))
            .ok_or(DecodeError::EmptyMethod)?;
        let method = std::str::from_utf8(method).map_err(|_| DecodeError::MethodNotUtf8)?;
        let body = body::read(payload, self.json, true)?;
        Ok(Frame::Quest {
            seq,
            method: method.to_owned(),
            body,
        })
    }
}

/// Largest packet a decoder with this payload limit can accept.
pub(super) fn max_frame_len(max_payload: usize) -> usize {
    HEADER_LEN + 4 + MAX_METHOD_LEN + max_payload
}

/// Decodes a buffer that must hold exactly one packet (an encrypted package's content).
pub(super) fn decode_exact(packet: &[u8], max_payload: usize) -> Result<Frame, DecodeError> {
    let mismatch = |frame| DecodeError::PackageMismatch {
        package: packet.len(),
        frame,
    };
    let header = Header::parse(packet, max_payload)?.ok_or(mismatch(HEADER_LEN))?;
    let len = header.frame_len();
    if len != packet.len() {
        return Err(mismatch(len));
    }
    header.decode(packet)
}

/// Incremental decoder for a plain FPNN byte stream: push bytes as they arrive, then call
/// [`Decoder::next_frame`] until it returns `Ok(None)`. It holds at most one frame's worth of
/// bytes plus the latest push; a header over the limit is refused before its payload is buffered.
/// Errors are sticky: once one is returned, every later call returns it again.
#[derive(Debug)]
pub struct Decoder {
    buf: InBuf,
    max_payload: usize,
    failed: Option<DecodeError>,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(DEFAULT_MAX_PAYLOAD)
    }
}

impl Decoder {
    /// A decoder refusing payloads (`psize`) over `max_payload` bytes.
    pub fn new(max_payload: usize) -> Self {
        Decoder {
            buf: InBuf::new(max_frame_len(max_payload)),
            max_payload,
            failed: None,
        }
    }

    /// Adds received bytes. Pushing more than a frame without draining is reported by the next
    /// [`Decoder::next_frame`] as [`DecodeError::Overflow`]; bytes after an error are dropped.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_none()
            && let Err(buffered) = self.buf.push(bytes)
        {
            self.failed = Some(DecodeError::Overflow { buffered });
        }
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed. `Err` is fatal: the
    /// connection must be closed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, DecodeError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let result = self.decode_one();
        if let Err(e) = &result {
            self.failed = Some(e.clone());
        }
        result
    }

    fn decode_one(&mut self) -> Result<Option<Frame>, DecodeError> {
        let bytes = self.buf.bytes();
        let Some(header) = Header::parse(bytes, self.max_payload)? else {
            return Ok(None);
        };
        let len = header.frame_len();
        let Some(packet) = bytes.get(..len) else {
            return Ok(None);
        };
        let frame = header.decode(packet)?;
        self.buf.consume(len);
        Ok(Some(frame))
    }

    /// Removes and returns the bytes received but not yet decoded (used when a connection
    /// switches to encryption: what follows the `*key` quest is ciphertext).
    pub fn take_buffered(&mut self) -> Vec<u8> {
        self.buf.take()
    }

    /// Number of bytes received but not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}
