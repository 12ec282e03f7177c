//! The DTLS certificate: one ECDSA P-256 certificate made at start-up and given to every
//! session, so no call pays for key generation and peers that only accept ECDSA (aiortc) work.
//!
//! GStreamer 1.22 computes the SDP `a=fingerprint` over the whole PEM it was given —
//! certificate *and* private key — which gives a fingerprint no peer can match. The correct
//! value (SHA-256 over the certificate's DER) is computed here, and [`fix_fingerprints`] puts
//! it into every SDP before it leaves the agent.

use std::fmt::Write as _;

use ring::digest;
use thiserror::Error;

/// A certificate with its key, as the DTLS elements want it, and its SDP fingerprint.
#[derive(Clone)]
pub struct DtlsCertificate {
    /// Certificate then PKCS#8 private key, PEM (what `dtlsdec`'s `pem` property takes).
    pub pem: String,
    /// `sha-256 AB:CD:…` over the certificate's DER.
    pub fingerprint: String,
}

impl std::fmt::Debug for DtlsCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsCertificate")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// Certificate generation failed.
#[derive(Debug, Error)]
#[error("cannot create the DTLS certificate: {0}")]
pub struct CertError(String);

/// Makes a fresh self-signed ECDSA P-256 certificate.
pub fn generate() -> Result<DtlsCertificate, CertError> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| CertError(e.to_string()))?;
    let mut params = rcgen::CertificateParams::new(vec!["roomagent".to_string()])
        .map_err(|e| CertError(e.to_string()))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "roomagent");
    let cert = params
        .self_signed(&key)
        .map_err(|e| CertError(e.to_string()))?;
    let pem = format!("{}{}", cert.pem(), key.serialize_pem());
    Ok(DtlsCertificate {
        fingerprint: fingerprint_of(cert.der()),
        pem,
    })
}

/// `sha-256 XX:XX:…` of a DER certificate.
pub fn fingerprint_of(der: &[u8]) -> String {
    let d = digest::digest(&digest::SHA256, der);
    let mut s = String::from("sha-256 ");
    for (i, b) in d.as_ref().iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        let _ = write!(s, "{b:02X}");
    }
    s
}

/// Replaces every `a=fingerprint:` line of `sdp` with `fingerprint`.
pub fn fix_fingerprints(sdp: &str, fingerprint: &str) -> String {
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        if line.starts_with("a=fingerprint:") {
            let eol = if line.ends_with("\r\n") {
                "\r\n"
            } else if line.ends_with('\n') {
                "\n"
            } else {
                ""
            };
            out.push_str("a=fingerprint:");
            out.push_str(fingerprint);
            out.push_str(eol);
        } else {
            out.push_str(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_certificate_is_ecdsa_with_a_der_fingerprint() {
        let c = generate().unwrap();
        assert!(c.pem.contains("BEGIN CERTIFICATE") && c.pem.contains("BEGIN PRIVATE KEY"));
        assert!(c.fingerprint.starts_with("sha-256 "));
        assert_eq!(c.fingerprint.len(), "sha-256 ".len() + 32 * 3 - 1);
        assert!(
            !format!("{c:?}").contains("PRIVATE"),
            "the key must not reach logs"
        );
    }

    #[test]
    fn fingerprint_lines_are_replaced_and_nothing_else() {
        let sdp = "v=0\r\na=group:BUNDLE video0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=fingerprint:sha-256 00:11\r\na=setup:actpass\r\n";
        let fixed = fix_fingerprints(sdp, "sha-256 AA:BB");
        assert_eq!(
            fixed,
            "v=0\r\na=group:BUNDLE video0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=fingerprint:sha-256 AA:BB\r\na=setup:actpass\r\n"
        );
    }
}
