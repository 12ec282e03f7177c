//! Reading an EC public key from PEM / DER SubjectPublicKeyInfo (RFC 5480), the format FPNN's
//! `eccKeyMaker` writes to `<name>-public.pem` / `-public.der` and its clients load.

use super::crypto::{CryptoError, Curve};

const PEM_BEGIN: &str = "-----BEGIN PUBLIC KEY-----";
const PEM_END: &str = "-----END PUBLIC KEY-----";

const TAG_SEQUENCE: u8 = 0x30;
const TAG_OID: u8 = 0x06;
const TAG_BIT_STRING: u8 = 0x03;

/// DER contents of OID 1.2.840.10045.2.1 (id-ecPublicKey).
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// DER contents of OID 1.3.132.0.10 (secp256k1).
const OID_SECP256K1: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x0a];
/// DER contents of OID 1.2.840.10045.3.1.7 (secp256r1 / prime256v1).
const OID_SECP256R1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

fn bad(why: &str) -> CryptoError {
    CryptoError::BadKeyFile(why.to_owned())
}

/// The base64 body between the `PUBLIC KEY` armour lines, decoded.
pub(super) fn pem_to_der(text: &str) -> Result<Vec<u8>, CryptoError> {
    let (_, after) = text
        .split_once(PEM_BEGIN)
        .ok_or_else(|| bad("no BEGIN PUBLIC KEY line"))?;
    let (inner, _) = after
        .split_once(PEM_END)
        .ok_or_else(|| bad("no END PUBLIC KEY line"))?;
    base64_decode(inner)
}

fn base64_digit(c: u8) -> Option<u32> {
    Some(u32::from(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    }))
}

/// Standard base64 with padding; whitespace anywhere is ignored.
fn base64_decode(text: &str) -> Result<Vec<u8>, CryptoError> {
    let chars: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let data = chars
        .strip_suffix(b"==")
        .or_else(|| chars.strip_suffix(b"="))
        .unwrap_or(&chars);
    if !chars.len().is_multiple_of(4) || data.contains(&b'=') {
        return Err(bad("malformed base64"));
    }
    let mut out = Vec::with_capacity(data.len() * 3 / 4);
    for chunk in data.chunks(4) {
        let mut acc = 0u32;
        for &c in chunk {
            acc = (acc << 6) | base64_digit(c).ok_or_else(|| bad("malformed base64"))?;
        }
        acc <<= 6 * (4 - chunk.len() as u32);
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Ok(out)
}

/// Splits one DER TLV with tag `tag` off the front of `der`: (contents, rest).
fn tlv(der: &[u8], tag: u8) -> Result<(&[u8], &[u8]), CryptoError> {
    let [t, first, rest @ ..] = der else {
        return Err(bad("truncated DER"));
    };
    if *t != tag {
        return Err(bad("unexpected DER tag"));
    }
    let (len, rest) = match *first {
        n if n < 0x80 => (usize::from(n), rest),
        0x81 => rest
            .split_first()
            .map(|(n, r)| (usize::from(*n), r))
            .ok_or_else(|| bad("truncated DER"))?,
        0x82 => match rest {
            [a, b, r @ ..] => (usize::from(*a) << 8 | usize::from(*b), r),
            _ => return Err(bad("truncated DER")),
        },
        _ => return Err(bad("DER length too long for a public key")),
    };
    rest.split_at_checked(len)
        .ok_or_else(|| bad("truncated DER"))
}

/// Curve and raw X‖Y from a DER SubjectPublicKeyInfo holding an uncompressed EC point.
pub(super) fn parse_spki(der: &[u8]) -> Result<(Curve, [u8; 64]), CryptoError> {
    let (spki, trailing) = tlv(der, TAG_SEQUENCE)?;
    if !trailing.is_empty() {
        return Err(bad("trailing bytes after the key"));
    }
    let (algorithm, rest) = tlv(spki, TAG_SEQUENCE)?;
    let (oid, params) = tlv(algorithm, TAG_OID)?;
    if oid != OID_EC_PUBLIC_KEY {
        return Err(bad("not an EC public key"));
    }
    let (curve_oid, extra) = tlv(params, TAG_OID)?;
    let curve = match curve_oid {
        OID_SECP256K1 => Curve::Secp256k1,
        OID_SECP256R1 => Curve::Secp256r1,
        _ => return Err(bad("curve is neither secp256k1 nor secp256r1")),
    };
    let (bits, extra2) = tlv(rest, TAG_BIT_STRING)?;
    if !extra.is_empty() || !extra2.is_empty() {
        return Err(bad("unexpected fields in the key"));
    }
    match bits {
        [0, 0x04, point @ ..] => {
            let point: [u8; 64] = point.try_into().map_err(|_| bad("point is not 64 bytes"))?;
            Ok((curve, point))
        }
        _ => Err(bad("not an uncompressed point")),
    }
}
