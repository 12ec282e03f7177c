//! One FPNN connection's codec state: framing plus, once negotiated, encryption.

use super::crypto::{Cipher, CryptoError, Mode, PackageDecryptor};
use super::frame::{self, DecodeError, Decoder, EncodeError, Frame};
use super::{DEFAULT_MAX_PAYLOAD, HEADER_LEN};

/// Sans-IO codec for one connection. Feed received bytes to [`Link::read`], take frames from
/// [`Link::next_frame`], and append outgoing frames with [`Link::write`]; whether the connection is
/// encrypted, and how, is hidden here.
///
/// Client key exchange: `write` the two-way `*key` quest from
/// [`super::client_handshake`] while the link is plain, then call [`Link::start_encryption`]
/// before writing or reading anything else; the `*key` answer arrives encrypted.
#[derive(Debug)]
pub struct Link {
    decoder: Decoder,
    cipher: Option<Cipher>,
    packages: Option<PackageDecryptor>,
    max_payload: usize,
    failed: Option<DecodeError>,
}

impl Default for Link {
    fn default() -> Self {
        Link::plain(DEFAULT_MAX_PAYLOAD)
    }
}

impl Link {
    /// A plain-text link refusing payloads over `max_payload` bytes, in both directions.
    pub fn plain(max_payload: usize) -> Link {
        Link {
            decoder: Decoder::new(max_payload),
            cipher: None,
            packages: None,
            max_payload,
            failed: None,
        }
    }

    /// A link encrypted from its first byte in both directions (a server after `*key`).
    pub fn encrypted(cipher: Cipher, max_payload: usize) -> Link {
        let mut link = Link::plain(max_payload);
        link.switch(cipher);
        link
    }

    /// Switches both directions to `cipher`. Bytes already received but not yet decoded are
    /// taken as ciphertext (a server reading `*key` may have the client's next packet queued).
    pub fn start_encryption(&mut self, cipher: Cipher) -> Result<(), CryptoError> {
        if self.cipher.is_some() {
            return Err(CryptoError::AlreadyEncrypted);
        }
        self.switch(cipher);
        Ok(())
    }

    fn switch(&mut self, mut cipher: Cipher) {
        let pending = self.decoder.take_buffered();
        if cipher.mode() == Mode::Package {
            let mut packages = PackageDecryptor::new(frame::max_frame_len(self.max_payload));
            packages.push(&pending);
            self.packages = Some(packages);
        } else {
            let mut plain = pending;
            cipher.open_in_place(&mut plain);
            self.decoder.push(&plain);
        }
        self.cipher = Some(cipher);
    }

    /// Whether [`Link::start_encryption`] (or [`Link::encrypted`]) has happened.
    pub fn is_encrypted(&self) -> bool {
        self.cipher.is_some()
    }

    /// Appends `frame`, encoded and, if the link is encrypted, encrypted. Refuses a payload over
    /// the link's limit, since a peer with the same limit would close the connection. On error
    /// `out` is left as it was and the cipher state is untouched.
    pub fn write(&mut self, frame: &Frame, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        let package = self
            .cipher
            .as_ref()
            .is_some_and(|c| c.mode() == Mode::Package);
        if package {
            out.extend_from_slice(&[0; 4]);
        }
        let body_start = out.len();
        let checked = frame::encode(frame, out).and_then(|()| self.check_size(out, body_start));
        if let Err(e) = checked {
            out.truncate(start);
            return Err(e);
        }
        if let Some(cipher) = &mut self.cipher {
            let len = u32::try_from(out.len() - body_start).unwrap_or(u32::MAX);
            if let Some(prefix) = out.get_mut(start..body_start) {
                prefix.copy_from_slice(&len.to_le_bytes()[..prefix.len()]);
            }
            if let Some(packet) = out.get_mut(body_start..) {
                cipher.seal_in_place(packet);
            }
        }
        Ok(())
    }

    fn check_size(&self, out: &[u8], body_start: usize) -> Result<(), EncodeError> {
        let packet_len = out.len() - body_start;
        let header = out
            .get(body_start..body_start + HEADER_LEN)
            .unwrap_or_default();
        let size = header.get(8..12).map_or(packet_len, |p| {
            u32::from_le_bytes([p[0], p[1], p[2], p[3]]) as usize
        });
        if size > self.max_payload {
            return Err(EncodeError::PayloadTooLarge {
                size,
                max: self.max_payload,
            });
        }
        Ok(())
    }

    /// Adds bytes received from the socket (decrypting them in stream mode). Ignored once
    /// [`Link::next_frame`] has returned an error.
    pub fn read(&mut self, bytes: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        match (&mut self.cipher, &mut self.packages) {
            (Some(_), Some(packages)) => packages.push(bytes),
            (Some(cipher), None) => {
                let mut plain = bytes.to_vec();
                cipher.open_in_place(&mut plain);
                self.decoder.push(&plain);
            }
            (None, _) => self.decoder.push(bytes),
        }
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed. `Err` is fatal and sticky:
    /// close the connection.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, DecodeError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let result = match (&mut self.cipher, &mut self.packages) {
            (Some(cipher), Some(packages)) => match packages.next_packet(cipher) {
                Ok(Some(packet)) => frame::decode_exact(&packet, self.max_payload).map(Some),
                other => other.map(|_| None),
            },
            _ => self.decoder.next_frame(),
        };
        if let Err(e) = &result {
            self.failed = Some(e.clone());
        }
        result
    }
}
