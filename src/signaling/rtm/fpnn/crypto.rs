//! FPNN's optional encryption, as the framework (1.3.1, `core/KeyExchange.cpp`, `Encryptor.cpp`,
//! `Encrypted*Receiver.cpp`) does it:
//!
//! * ECDH on secp256k1 or secp256r1 between the server's static key and a fresh client key. Keys
//!   are raw big-endian: public X‖Y (64 bytes), secret 32 bytes (micro-ecc's format).
//! * `secret` = the X coordinate of the shared point (32 bytes); AES key = `secret[..16]` for
//!   128 bits, the whole `secret` for 256; IV = `md5(secret)`.
//! * AES-CFB with full 128-bit feedback over the **whole** packet, header included. Each direction
//!   has its own state, both starting from the same key and IV.
//! * Stream mode: one continuous CFB stream per direction for the connection's life.
//! * Package mode: each packet is sent as a plain-text `u32` little-endian length followed by the
//!   packet encrypted from a fresh state (the IV is reset for every packet).
//! * The client's first packet, the two-way `*key {publicKey, streamMode, bits}` quest, is plain;
//!   the server switches both directions on receiving it, so its answer is already encrypted.

use aes::cipher::{Block, BlockCipherEncrypt, KeyInit};
use cfb_mode::{BufDecryptor, BufEncryptor};
use md5::{Digest, Md5};
use rand::CryptoRng;
use rmpv::Value;

use super::frame::{DecodeError, max_frame_len};
use super::inbuf::InBuf;
use super::{DEFAULT_MAX_PAYLOAD, value};

/// Why a key could not be loaded or a handshake could not be completed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// Only secp256k1 and secp256r1 (alias prime256v1) are supported; the framework's 224- and
    /// 192-bit curves are not.
    #[error("unsupported curve {0:?}")]
    UnknownCurve(String),
    /// A public key that is not 64 bytes X‖Y (or 65 with a 0x04 prefix) of a point on the curve.
    #[error("invalid public key for the curve")]
    BadPublicKey,
    /// A secret key that is zero or not below the curve order.
    #[error("invalid secret key for the curve")]
    BadSecretKey,
    /// A PEM or DER public key file that is not an uncompressed RFC 5480 EC key.
    #[error("unreadable public key file: {0}")]
    BadKeyFile(String),
    /// A `*key` quest body the framework would refuse (missing key, bits not 128 or 256, ...).
    #[error("bad *key quest: {0}")]
    BadKeyQuest(String),
    /// [`super::Link::start_encryption`] on a link that is already encrypted.
    #[error("the link is already encrypted")]
    AlreadyEncrypted,
}

/// The ECDH curve, named as the framework's configuration (`FPNN.server.security.ecdh.curve`)
/// and the RTM SDKs name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Curve {
    /// secp256k1, the framework's own clients' default.
    Secp256k1,
    /// secp256r1, also called prime256v1 or P-256.
    Secp256r1,
}

impl std::str::FromStr for Curve {
    type Err = CryptoError;

    /// Accepts `secp256k1`, `secp256r1` and `prime256v1`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "secp256k1" => Ok(Curve::Secp256k1),
            "secp256r1" | "prime256v1" => Ok(Curve::Secp256r1),
            _ => Err(CryptoError::UnknownCurve(s.to_owned())),
        }
    }
}

/// AES key size, sent as `bits` in the `*key` quest (the framework's `reinforce` flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyBits {
    /// AES-128 keyed with the first 16 bytes of the shared secret (framework default).
    Aes128,
    /// AES-256 keyed with the whole 32-byte shared secret.
    Aes256,
}

impl KeyBits {
    /// The value of the `bits` field: 128 or 256.
    pub fn bits(self) -> u32 {
        match self {
            KeyBits::Aes128 => 128,
            KeyBits::Aes256 => 256,
        }
    }
}

/// How packets are encrypted, sent as `streamMode` in the `*key` quest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mode {
    /// One continuous CFB stream per direction (`streamMode: true`).
    Stream,
    /// Length-prefixed packets, each encrypted from the initial IV (`streamMode: false`, the
    /// framework default).
    Package,
}

/// The server's static public key, which the device is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerKey {
    curve: Curve,
    point: [u8; 64],
}

impl ServerKey {
    /// From a `-----BEGIN PUBLIC KEY-----` PEM (RFC 5480 SubjectPublicKeyInfo, uncompressed
    /// point), the file FPNN's `eccKeyMaker` writes; the curve comes from the key itself.
    pub fn from_pem(text: &str) -> Result<ServerKey, CryptoError> {
        ServerKey::from_der(&super::pem::pem_to_der(text)?)
    }

    /// From the DER form of the same SubjectPublicKeyInfo (`<name>-public.der`).
    pub fn from_der(der: &[u8]) -> Result<ServerKey, CryptoError> {
        let (curve, point) = super::pem::parse_spki(der)?;
        ServerKey::from_raw(curve, &point)
    }

    /// From raw X‖Y (64 bytes, `<name>-public.key`) or SEC1 uncompressed (65 bytes starting with
    /// 0x04). The point is checked to be on `curve`.
    pub fn from_raw(curve: Curve, bytes: &[u8]) -> Result<ServerKey, CryptoError> {
        let raw = match bytes {
            [0x04, rest @ ..] if rest.len() == 64 => rest,
            _ => bytes,
        };
        let point: [u8; 64] = raw.try_into().map_err(|_| CryptoError::BadPublicKey)?;
        ecdh::check_point(curve, &point)?;
        Ok(ServerKey { curve, point })
    }

    /// The key's curve.
    pub fn curve(&self) -> Curve {
        self.curve
    }

    /// Raw X‖Y, big-endian.
    pub fn point(&self) -> &[u8; 64] {
        &self.point
    }
}

/// Client side: makes an ephemeral key, derives the shared secret, and returns the `*key` quest
/// body `{publicKey: bin(X‖Y), streamMode, bits}` with the cipher pair to start once the quest
/// has been written in plain text. `publicKey` is sent as msgpack bin, which the framework's
/// msgpack-c string reader accepts like str.
pub fn client_handshake<R: CryptoRng + ?Sized>(
    server: &ServerKey,
    bits: KeyBits,
    mode: Mode,
    rng: &mut R,
) -> Result<(Value, Cipher), CryptoError> {
    let secret = ecdh::random_secret(server.curve, rng)?;
    client_handshake_with(server, bits, mode, &secret)
}

/// [`client_handshake`] with a given ephemeral secret (deterministic, for test vectors).
pub(super) fn client_handshake_with(
    server: &ServerKey,
    bits: KeyBits,
    mode: Mode,
    secret: &[u8; 32],
) -> Result<(Value, Cipher), CryptoError> {
    let public = ecdh::public_of(server.curve, secret)?;
    let shared = ecdh::shared_x(server.curve, secret, &server.point)?;
    let body = value::map([
        ("publicKey", Value::Binary(public.to_vec())),
        ("streamMode", Value::Boolean(mode == Mode::Stream)),
        ("bits", Value::from(bits.bits())),
    ]);
    Ok((body, Cipher::from_shared_secret(&shared, bits, mode)))
}

/// Server side (for test gates): the cipher for a received `*key` quest body, read as the
/// framework reads it: `publicKey` str or bin of exactly 64 bytes, `streamMode` a boolean
/// (anything else means false), `bits` an integer defaulting to 128 and only 128 or 256 allowed.
pub fn server_handshake(
    curve: Curve,
    server_secret: &[u8; 32],
    key_quest_body: &Value,
) -> Result<Cipher, CryptoError> {
    let bad = |why: &str| CryptoError::BadKeyQuest(why.to_owned());
    let public = value::field(key_quest_body, "publicKey")
        .and_then(value::as_bytes)
        .ok_or_else(|| bad("no publicKey"))?;
    let public: [u8; 64] = public
        .try_into()
        .map_err(|_| bad("publicKey is not 64 bytes"))?;
    let stream = value::field(key_quest_body, "streamMode").and_then(value::as_bool);
    // Like msgpack-c's `as<intmax_t>` behind `getInt("bits", 128)`: a non-integer is the default.
    let bits = match value::field(key_quest_body, "bits").and_then(value::as_i64) {
        None | Some(128) => KeyBits::Aes128,
        Some(256) => KeyBits::Aes256,
        Some(_) => return Err(bad("bits is neither 128 nor 256")),
    };
    let mode = if stream == Some(true) {
        Mode::Stream
    } else {
        Mode::Package
    };
    let shared = ecdh::shared_x(curve, server_secret, &public)?;
    Ok(Cipher::from_shared_secret(&shared, bits, mode))
}

/// FPNN's UDP key exchange, client side: the body of the `ECDH` package (`params` — the public
/// key's length, plus 0x80 for AES-256 — then a fresh public key X‖Y) and the cipher that
/// seals every later datagram whole, each from the IV (package mode). Key and IV come from the
/// shared secret as over TCP.
pub fn udp_client_handshake<R: CryptoRng + ?Sized>(
    server: &ServerKey,
    bits: KeyBits,
    rng: &mut R,
) -> Result<(Vec<u8>, Cipher), CryptoError> {
    let secret = ecdh::random_secret(server.curve, rng)?;
    udp_client_handshake_with(server, bits, &secret)
}

/// [`udp_client_handshake`] with a given ephemeral secret (deterministic, for test vectors).
pub(super) fn udp_client_handshake_with(
    server: &ServerKey,
    bits: KeyBits,
    secret: &[u8; 32],
) -> Result<(Vec<u8>, Cipher), CryptoError> {
    let public = ecdh::public_of(server.curve, secret)?;
    let shared = ecdh::shared_x(server.curve, secret, &server.point)?;
    let mut body = vec![public.len() as u8 | if bits == KeyBits::Aes256 { 0x80 } else { 0 }];
    body.extend_from_slice(&public);
    Ok((
        body,
        Cipher::from_shared_secret(&shared, bits, Mode::Package),
    ))
}

/// FPNN's UDP key exchange, server side (for test gates): the cipher for a received `ECDH`
/// package body, read as the framework reads it (a 64-byte key; 0x80 in `params` for AES-256).
pub fn udp_server_handshake(
    curve: Curve,
    server_secret: &[u8; 32],
    body: &[u8],
) -> Result<Cipher, CryptoError> {
    let bad = |why: &str| CryptoError::BadKeyQuest(why.to_owned());
    let (&params, rest) = body.split_first().ok_or_else(|| bad("empty ECDH"))?;
    let len = usize::from(params & 0x7F);
    if len != 64 || rest.len() < len {
        return Err(bad("the ECDH public key is not 64 bytes"));
    }
    let public: [u8; 64] = rest[..64].try_into().map_err(|_| bad("short key"))?;
    let bits = if params & 0x80 != 0 {
        KeyBits::Aes256
    } else {
        KeyBits::Aes128
    };
    let shared = ecdh::shared_x(curve, server_secret, &public)?;
    Ok(Cipher::from_shared_secret(&shared, bits, Mode::Package))
}

/// The public key (X‖Y) of a raw 32-byte secret key; what a test server publishes.
pub fn public_key_of(curve: Curve, secret: &[u8; 32]) -> Result<[u8; 64], CryptoError> {
    ecdh::public_of(curve, secret)
}

mod ecdh {
    //! ECDH with raw big-endian keys, dispatched over the two curves.

    use super::{CryptoError, CryptoRng, Curve};

    macro_rules! with_curve {
        ($curve:expr, $c:ident => $body:expr) => {
            match $curve {
                Curve::Secp256k1 => {
                    use k256 as $c;
                    $body
                }
                Curve::Secp256r1 => {
                    use p256 as $c;
                    $body
                }
            }
        };
    }

    fn sec1(point: &[u8; 64]) -> [u8; 65] {
        let mut out = [0x04; 65];
        out[1..].copy_from_slice(point);
        out
    }

    pub(super) fn check_point(curve: Curve, point: &[u8; 64]) -> Result<(), CryptoError> {
        with_curve!(curve, c => c::PublicKey::from_sec1_bytes(&sec1(point))
            .map(|_| ())
            .map_err(|_| CryptoError::BadPublicKey))
    }

    pub(super) fn public_of(curve: Curve, secret: &[u8; 32]) -> Result<[u8; 64], CryptoError> {
        use k256::elliptic_curve::sec1::ToSec1Point;
        with_curve!(curve, c => {
            let sk = c::SecretKey::from_slice(secret).map_err(|_| CryptoError::BadSecretKey)?;
            let encoded = sk.public_key().to_sec1_point(false);
            match encoded.as_bytes() {
                [0x04, xy @ ..] => xy.try_into().map_err(|_| CryptoError::BadSecretKey),
                _ => Err(CryptoError::BadSecretKey),
            }
        })
    }

    pub(super) fn shared_x(
        curve: Curve,
        secret: &[u8; 32],
        peer: &[u8; 64],
    ) -> Result<[u8; 32], CryptoError> {
        with_curve!(curve, c => {
            let sk = c::SecretKey::from_slice(secret).map_err(|_| CryptoError::BadSecretKey)?;
            let pk = c::PublicKey::from_sec1_bytes(&sec1(peer))
                .map_err(|_| CryptoError::BadPublicKey)?;
            let shared = sk.diffie_hellman(&pk);
            let x: [u8; 32] = shared.raw_secret_bytes().as_slice().try_into()
                .map_err(|_| CryptoError::BadPublicKey)?;
            Ok(x)
        })
    }

    /// A uniformly random valid secret key (rejection sampling; a retry is ~2^-128 likely).
    pub(super) fn random_secret<R: CryptoRng + ?Sized>(
        curve: Curve,
        rng: &mut R,
    ) -> Result<[u8; 32], CryptoError> {
        for _ in 0..64 {
            let mut secret = [0u8; 32];
            rng.fill_bytes(&mut secret);
            if with_curve!(curve, c => c::SecretKey::from_slice(&secret).is_ok()) {
                return Ok(secret);
            }
        }
        Err(CryptoError::BadSecretKey)
    }
}

/// AES-CFB128 state for one key size: the key schedule, the keystream block every packet or
/// stream starts from (`E(IV)`), and the two running directions.
struct Cfb<C: BlockCipherEncrypt + Clone> {
    cipher: C,
    first: Block<C>,
    tx: BufEncryptor<C>,
    rx: BufDecryptor<C>,
}

impl<C: BlockCipherEncrypt + Clone> Cfb<C> {
    /// Starts both directions from `E(IV)`, as the framework's lazy CFB does on its first byte.
    fn new(cipher: C, iv: Block<C>) -> Self {
        let mut first = iv;
        cipher.encrypt_block(&mut first);
        Cfb {
            tx: BufEncryptor::from_state(cipher.clone(), &first, 0),
            rx: BufDecryptor::from_state(cipher.clone(), &first, 0),
            cipher,
            first,
        }
    }

    fn seal(&mut self, mode: Mode, data: &mut [u8]) {
        match mode {
            Mode::Stream => self.tx.encrypt(data),
            Mode::Package => {
                BufEncryptor::from_state(self.cipher.clone(), &self.first, 0).encrypt(data)
            }
        }
    }

    fn open(&mut self, mode: Mode, data: &mut [u8]) {
        match mode {
            Mode::Stream => self.rx.decrypt(data),
            Mode::Package => {
                BufDecryptor::from_state(self.cipher.clone(), &self.first, 0).decrypt(data)
            }
        }
    }
}

impl<C: BlockCipherEncrypt + Clone> Clone for Cfb<C> {
    fn clone(&self) -> Self {
        let (tx_block, tx_pos) = self.tx.get_state();
        let (rx_block, rx_pos) = self.rx.get_state();
        Cfb {
            cipher: self.cipher.clone(),
            first: self.first.clone(),
            tx: BufEncryptor::from_state(self.cipher.clone(), tx_block, tx_pos),
            rx: BufDecryptor::from_state(self.cipher.clone(), rx_block, rx_pos),
        }
    }
}

#[derive(Clone)]
enum Suite {
    Aes128(Box<Cfb<aes::Aes128>>),
    Aes256(Box<Cfb<aes::Aes256>>),
}

/// Both directions of an encrypted connection: `encrypt` for what we send, `decrypt` for what we
/// receive. Cloning copies the running stream positions.
#[derive(Clone)]
pub struct Cipher {
    mode: Mode,
    suite: Suite,
    #[cfg(test)]
    pub(super) key_iv: (Vec<u8>, [u8; 16]),
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bits = match self.suite {
            Suite::Aes128(_) => 128,
            Suite::Aes256(_) => 256,
        };
        f.debug_struct("Cipher")
            .field("mode", &self.mode)
            .field("bits", &bits)
            .finish_non_exhaustive()
    }
}

impl Cipher {
    /// From the 32-byte ECDH secret (X of the shared point): key `secret[..16]` or `secret`,
    /// IV `md5(secret)`.
    pub fn from_shared_secret(secret: &[u8; 32], bits: KeyBits, mode: Mode) -> Cipher {
        let iv: [u8; 16] = Md5::digest(secret).into();
        let suite = match bits {
            KeyBits::Aes128 => {
                let mut key = [0u8; 16];
                key.copy_from_slice(&secret[..16]);
                let aes = aes::Aes128::new(&key.into());
                Suite::Aes128(Box::new(Cfb::new(aes, iv.into())))
            }
            KeyBits::Aes256 => {
                let aes = aes::Aes256::new(&(*secret).into());
                Suite::Aes256(Box::new(Cfb::new(aes, iv.into())))
            }
        };
        Cipher {
            mode,
            suite,
            #[cfg(test)]
            key_iv: (secret[..(bits.bits() / 8) as usize].to_vec(), iv),
        }
    }

    /// Stream or package mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Appends `plain` encrypted for sending. Package mode writes the plain-text `u32` LE length
    /// first (saturating: a packet over 4 GiB cannot be framed) and restarts from the IV; stream
    /// mode continues the outgoing stream.
    pub fn encrypt(&mut self, plain: &[u8], out: &mut Vec<u8>) {
        if self.mode == Mode::Package {
            let len = u32::try_from(plain.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_le_bytes());
        }
        let start = out.len();
        out.extend_from_slice(plain);
        if let Some(tail) = out.get_mut(start..) {
            self.seal_in_place(tail);
        }
    }

    /// Encrypts `data` in place: the next part of the outgoing stream, or one whole package body
    /// (without its length prefix) in package mode.
    pub fn seal_in_place(&mut self, data: &mut [u8]) {
        match &mut self.suite {
            Suite::Aes128(c) => c.seal(self.mode, data),
            Suite::Aes256(c) => c.seal(self.mode, data),
        }
    }

    /// Decrypts received bytes: in stream mode any chunk of the incoming stream; in package mode
    /// exactly one package body without its length prefix (use [`PackageDecryptor`] to split a
    /// byte stream into packages).
    pub fn decrypt(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = bytes.to_vec();
        self.open_in_place(&mut out);
        out
    }

    /// [`Cipher::decrypt`] in place.
    pub fn open_in_place(&mut self, data: &mut [u8]) {
        match &mut self.suite {
            Suite::Aes128(c) => c.open(self.mode, data),
            Suite::Aes256(c) => c.open(self.mode, data),
        }
    }
}

/// Splits a package-mode byte stream into whole packages and decrypts them. The length prefix
/// is checked against the limit before any of the package is buffered.
#[derive(Debug)]
pub struct PackageDecryptor {
    buf: InBuf,
    max_package: usize,
    failed: Option<DecodeError>,
}

impl Default for PackageDecryptor {
    fn default() -> Self {
        PackageDecryptor::new(max_frame_len(DEFAULT_MAX_PAYLOAD))
    }
}

impl PackageDecryptor {
    /// Refuses packages longer than `max_package` bytes (a whole FPNN packet, header included).
    pub fn new(max_package: usize) -> Self {
        PackageDecryptor {
            buf: InBuf::new(max_package.saturating_add(4)),
            max_package,
            failed: None,
        }
    }

    /// Adds received ciphertext.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_none()
            && let Err(buffered) = self.buf.push(bytes)
        {
            self.failed = Some(DecodeError::Overflow { buffered });
        }
    }

    /// The next whole package, decrypted; `Ok(None)` until one is complete. Errors are fatal and
    /// sticky.
    pub fn next_packet(&mut self, cipher: &mut Cipher) -> Result<Option<Vec<u8>>, DecodeError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let Some((len, rest)) = self.buf.bytes().split_first_chunk::<4>() else {
            return Ok(None);
        };
        let size = u32::from_le_bytes(*len) as usize;
        if size > self.max_package {
            let e = DecodeError::PackageTooLarge {
                size,
                max: self.max_package,
            };
            self.failed = Some(e.clone());
            return Err(e);
        }
        let Some(body) = rest.get(..size) else {
            return Ok(None);
        };
        let mut packet = body.to_vec();
        self.buf.consume(4 + size);
        cipher.open_in_place(&mut packet);
        Ok(Some(packet))
    }

    /// Bytes received but not yet returned as packages.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}
