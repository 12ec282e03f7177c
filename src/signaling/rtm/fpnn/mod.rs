//! Sans-IO codec for FPNN over TCP, the transport under the RTM gate and the RTC gate, with the
//! framework's optional ECDH + AES-CFB encryption; and ([`udp`]) the framework's reliable UDP,
//! which the RTC gate may be reached over instead.
//!
//! Nothing here touches a socket or a clock: bytes go in with [`Link::read`] (or
//! [`Decoder::push`]) and whole [`Frame`]s come out of [`Link::next_frame`]; frames go out as bytes
//! appended to a caller's buffer by [`Link::write`] (or [`encode`]).
//!
//! Wire format (checked against the FPNN framework 1.3.1 source, `proto/FPMessage.cpp`): a 12-byte
//! header `"FPNN" version flag mtype ss psize:u32le`, then `method` (one-way),
//! `seq:u32le method` (two-way) or `seq:u32le` (answer), then `psize` bytes of payload. `ss` is the
//! method length for quests and the status (0 ok, anything else an error) for answers. We always
//! send version 1, msgpack (flag `0x80`) and a map payload; we also accept JSON (`0x40`) payloads.
//!
//! Encryption ([`crypto`]) is negotiated by a plain-text two-way `*key` quest; after writing it
//! the client calls [`Link::start_encryption`], and everything afterwards in both directions,
//! including the `*key` answer, is encrypted.

mod body;
pub mod crypto;
mod frame;
mod inbuf;
mod link;
mod pem;
pub mod udp;
mod value;

#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod tests;

pub use crypto::{
    Cipher, CryptoError, Curve, KeyBits, Mode, PackageDecryptor, ServerKey, client_handshake,
    public_key_of, server_handshake, udp_client_handshake, udp_server_handshake,
};
pub use frame::{DecodeError, Decoder, EncodeError, Frame, MAX_METHOD_LEN, encode};
pub use link::Link;
pub use value::{as_bool, as_bytes, as_i64, as_str, as_u64, empty_map, field, map};

/// Length of the fixed FPNN header: magic, version, flag, mtype, ss and psize.
pub const HEADER_LEN: usize = 12;

/// The framework's default packet limit (`FPNN.global.max.package.len`, 8 MiB). We apply it to the
/// payload (`psize`) and refuse a larger frame from its header, before buffering any of it; a real
/// server applies it to the whole packet, header, seq and method included.
pub const DEFAULT_MAX_PAYLOAD: usize = 8 * 1024 * 1024;

/// JSON payloads are parsed into a temporary tree several times their size, and no RTM peer sends
/// them, so they get a smaller limit than msgpack ones.
pub const MAX_JSON_PAYLOAD: usize = 1024 * 1024;

/// Deepest nesting of maps and arrays accepted in a payload; RTM bodies nest three or four deep.
pub const MAX_DEPTH: usize = 64;

/// Most values (every map key, map value and array element counts) accepted in one payload. A
/// decoded value takes tens of bytes per msgpack byte in the worst case, so this, not the payload
/// limit, is what bounds the memory one hostile frame can make us allocate.
pub const MAX_NODES: usize = 1 << 18;

/// Method of the built-in key-exchange quest that switches a connection to encryption.
pub const KEY_METHOD: &str = "*key";

/// Method of the built-in keep-alive quest; the server answers `{ts}` (its time in ms).
pub const PING_METHOD: &str = "*ping";
