//! TLS client settings for the adapters that speak TLS themselves: which certificate
//! authorities are trusted (the system's trust store plus an optional extra CA file) and an
//! optional client certificate, and words for a failed handshake that say what to check.
//!
//! Certificate files are PEM. The private key file is a secret: errors name its path and the
//! key, never its content.

use std::error::Error as StdError;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{AlertDescription, CertificateError, ClientConfig, RootCertStore};
use thiserror::Error;
use tracing::{debug, info, warn};

/// The certificate files of one configuration section.
#[derive(Debug, Clone, Copy)]
pub struct Files<'a> {
    /// The section, for messages: `signaling` gives `signaling.ca_file`.
    pub section: &'static str,
    /// Extra CA certificates (PEM), trusted besides the system's.
    pub ca_file: Option<&'a Path>,
    /// Client certificate chain (PEM) and its private key (PEM), for servers that ask.
    pub client: Option<(&'a Path, &'a Path)>,
}

/// A certificate file that cannot be used. Never quotes a file's content.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The file cannot be read.
    #[error("cannot read {key} {path}: {source}")]
    Read {
        /// The key, e.g. `signaling.ca_file`.
        key: String,
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file holds nothing usable.
    #[error("{key} {path} holds no {what}")]
    Content {
        /// The key.
        key: String,
        /// The file.
        path: String,
        /// What was expected.
        what: &'static str,
    },
    /// rustls refused the material (a CA that is not a valid certificate, a key that does not
    /// fit the certificate).
    #[error("{key}: {detail}")]
    Refused {
        /// The key.
        key: String,
        /// rustls' words.
        detail: String,
    },
}

/// A TLS client configuration, shared by every connection of an adapter. Its `Debug` says
/// what it holds without key material.
#[derive(Clone)]
pub struct ClientTls {
    config: Arc<ClientConfig>,
    summary: String,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ClientTls").field(&self.summary).finish()
    }
}

impl ClientTls {
    /// Trusts the system's store plus `files.ca_file`, and presents the client certificate
    /// if one is given.
    pub fn new(files: Files<'_>) -> Result<ClientTls, TlsError> {
        let mut roots = system_roots();
        let mut summary = format!("{} system CAs", roots.len());
        if let Some(ca) = files.ca_file {
            let key = format!("{}.ca_file", files.section);
            let (added, _) = roots.add_parsable_certificates(read_certs(&key, ca)?);
            if added == 0 {
                return Err(TlsError::Refused {
                    key,
                    detail: format!("no valid CA certificate in {}", ca.display()),
                });
            }
            summary += &format!(" + {added} from {}", ca.display());
        }
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| refused(files.section, "ca_file", e))?
            .with_root_certificates(roots);
        let config = match files.client {
            Some((cert, key)) => {
                let k = |name: &str| format!("{}.{name}", files.section);
                let chain = read_certs(&k("client_cert_file"), cert)?;
                let secret = read_key(&k("client_key_file"), key)?;
                summary += &format!(", client certificate {}", cert.display());
                builder
                    .with_client_auth_cert(chain, secret)
                    .map_err(|e| refused(files.section, "client_key_file", e))?
            }
            None => builder.with_no_client_auth(),
        };
        Ok(ClientTls {
            config: Arc::new(config),
            summary,
        })
    }

    /// The rustls configuration.
    pub fn config(&self) -> &Arc<ClientConfig> {
        &self.config
    }
}

/// The cryptography every TLS client of the agent uses (ring, as reqwest's).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn refused(section: &str, key: &str, e: rustls::Error) -> TlsError {
    let detail = match e {
        rustls::Error::InconsistentKeys(_) => {
            format!("the key does not belong to the certificate in {section}.client_cert_file")
        }
        e => e.to_string(),
    };
    TlsError::Refused {
        key: format!("{section}.{key}"),
        detail,
    }
}

/// The system's trust store (`/etc/ssl/certs`, or `SSL_CERT_FILE` / `SSL_CERT_DIR`); the
/// built-in Mozilla list when the system has none (a board without `ca-certificates`).
fn system_roots() -> RootCertStore {
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        debug!(error = %e, "skipping part of the system trust store");
    }
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    if ignored > 0 {
        debug!(ignored, "system CA certificates rustls cannot use");
    }
    if added == 0 {
        warn!(
            "no CA certificates in the system trust store (is ca-certificates installed?); trusting the built-in Mozilla list"
        );
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    } else {
        info!(count = added, "system trust store loaded");
    }
    roots
}

fn read_certs(key: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| pem_error(key, path, e, "PEM certificate"))?;
    if certs.is_empty() {
        return Err(pem_error(
            key,
            path,
            pem::Error::NoItemsFound,
            "PEM certificate",
        ));
    }
    Ok(certs)
}

fn read_key(key: &str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| pem_error(key, path, e, "PEM private key (PKCS#8, PKCS#1 or SEC1)"))
}

/// A file error in words, without the parser's detail (which can quote the file).
fn pem_error(key: &str, path: &Path, e: pem::Error, what: &'static str) -> TlsError {
    let (key, path) = (key.to_string(), path.display().to_string());
    match e {
        pem::Error::Io(source) => TlsError::Read { key, path, source },
        _ => TlsError::Content { key, path, what },
    }
}

/// If a TLS problem is behind `e` (anywhere in its chain, also inside an `io::Error`), what
/// went wrong and which of `section`'s keys to check.
pub fn explain(e: &(dyn StdError + 'static), section: &str) -> Option<String> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(r) = rustls_error(err) {
            return Some(format!("TLS: {r}; {}", hint(r, section)));
        }
        cur = err.source();
    }
    None
}

/// `e` as a rustls error, looking through `io::Error`s wrapped in one another (whose
/// `source` skips the wrapped error itself).
fn rustls_error<'a>(mut e: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    loop {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => e = inner,
            None => return None,
        }
    }
}

fn hint(e: &rustls::Error, section: &str) -> String {
    use CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => format!(
            "the server's certificate is not signed by a trusted CA: set {section}.ca_file to the CA that signed it"
        ),
        rustls::Error::InvalidCertificate(
            C::NotValidForName | C::NotValidForNameContext { .. },
        ) => format!("the server's certificate is for another name: check {section}.host"),
        rustls::Error::InvalidCertificate(
            C::Expired | C::ExpiredContext { .. } | C::NotValidYet | C::NotValidYetContext { .. },
        ) => "check the server's certificate dates and this device's clock".into(),
        rustls::Error::InvalidCertificate(_) => {
            format!("the server's certificate is not usable: check it and {section}.ca_file")
        }
        rustls::Error::AlertReceived(
            AlertDescription::CertificateRequired
            | AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateUnknown
            | AlertDescription::AccessDenied,
        ) => format!(
            "the server wants a client certificate it trusts: check {section}.client_cert_file and client_key_file"
        ),
        _ => format!("check the server's TLS setup and {section}.ca_file"),
    }
}

/// When the first certificate in a PEM file expires, Unix seconds (inventory: a client
/// certificate that runs out takes the device off the broker).
pub fn expiry(key: &str, path: &Path) -> Result<i64, String> {
    let certs = read_certs(key, path).map_err(|e| e.to_string())?;
    not_after(&certs[0])
        .ok_or_else(|| format!("{key} {}: no validity in the certificate", path.display()))
}

/// One DER element at the start of `der`: (tag, content, the rest).
fn der_element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |a, b| (a << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// A certificate's notAfter, Unix seconds: Certificate → tbsCertificate → ([0] version),
/// serial, signature, issuer, validity → notAfter (RFC 5280 4.1).
pub fn not_after(cert: &[u8]) -> Option<i64> {
    const SEQUENCE: u8 = 0x30;
    let (SEQUENCE, cert, _) = der_element(cert)? else {
        return None;
    };
    let (SEQUENCE, mut tbs, _) = der_element(cert)? else {
        return None;
    };
    let (tag, _, rest) = der_element(tbs)?;
    if tag == 0xa0 {
        tbs = rest;
    }
    // serial, signature, issuer
    for _ in 0..3 {
        tbs = der_element(tbs)?.2;
    }
    let (SEQUENCE, validity, _) = der_element(tbs)? else {
        return None;
    };
    let (_, _, rest) = der_element(validity)?;
    let (tag, time, _) = der_element(rest)?;
    let text = std::str::from_utf8(time).ok()?.strip_suffix('Z')?;
    let digits = |s: &str| s.parse::<i64>().ok();
    let (year, rest) = match tag {
        // UTCTime: YYMMDDHHMMSS, years 1950-2049.
        0x17 if text.len() == 12 => {
            let yy = digits(&text[..2])?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &text[2..])
        }
        // GeneralizedTime: YYYYMMDDHHMMSS.
        0x18 if text.len() == 14 => (digits(&text[..4])?, &text[4..]),
        _ => return None,
    };
    let field = |i: usize| digits(&rest[i..i + 2]);
    let (month, day) = (field(0)?, field(2)?);
    let seconds = field(4)? * 3600 + field(6)? * 60 + field(8)?;
    Some(days_from_civil(year, month, day) * 86_400 + seconds)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tls_error_inside_an_io_error_is_found_and_explained() {
        let inner = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        // As hyper passes it on: an io::Error around tokio-rustls' io::Error.
        let io = std::io::Error::other(std::io::Error::new(std::io::ErrorKind::InvalidData, inner));
        let text = explain(&io, "signaling").expect("found");
        assert!(text.contains("UnknownIssuer"), "{text}");
        assert!(text.contains("signaling.ca_file"), "{text}");
        let plain = std::io::Error::other("connection refused");
        assert_eq!(explain(&plain, "signaling"), None);
    }

    #[test]
    fn a_key_file_that_is_not_pem_is_refused_without_quoting_it() {
        let dir = std::env::temp_dir().join(format!("roomagent-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("client.key");
        std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nsupersecretbits\n").unwrap();
        let e = read_key("signaling.client_key_file", &key)
            .unwrap_err()
            .to_string();
        assert!(e.contains("signaling.client_key_file"), "{e}");
        assert!(!e.contains("supersecretbits"), "{e}");
        let missing = read_certs("signaling.ca_file", &dir.join("none.pem")).unwrap_err();
        assert!(matches!(missing, TlsError::Read { .. }), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_certificates_expiry_is_read_from_its_der() {
        for (y, m, d, unix) in [
            (2031, 5, 6, 1_935_792_000),
            (2051, 1, 2, 2_556_230_400),
            (1999, 12, 31, 946_598_400),
        ] {
            let key = rcgen::KeyPair::generate().unwrap();
            let mut params = rcgen::CertificateParams::new(vec!["room".to_string()]).unwrap();
            params.not_after = rcgen::date_time_ymd(y, m, d);
            let cert = params.self_signed(&key).unwrap();
            assert_eq!(not_after(cert.der()), Some(unix), "{y}-{m}-{d}");
            let dir =
                std::env::temp_dir().join(format!("roomagent-expiry-{}-{y}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let file = dir.join("c.pem");
            std::fs::write(&file, cert.pem()).unwrap();
            assert_eq!(expiry("mqtt.client_cert_file", &file), Ok(unix));
            std::fs::remove_dir_all(&dir).unwrap();
        }
        assert_eq!(not_after(b""), None);
        assert_eq!(not_after(&[0x30, 0x82, 0xff]), None);
        assert_eq!(days_from_civil(1970, 1, 1), 0);
    }
}
