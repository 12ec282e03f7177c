//! TLS for the RTCPeer server: an `https` host gets a [`ClientTls`] that both the login
//! requests and the `wss` control socket use; a plain `http` host off this machine earns a
//! warning, since the password and session id then cross the network readable.

use std::net::IpAddr;

use url::{Host, Url};

use crate::config::SignalingConfig;
use crate::tls::{ClientTls, Files, TlsError};

/// The TLS settings for `host`: `None` for plain `http`.
pub(super) fn client_tls(s: &SignalingConfig, host: &Url) -> Result<Option<ClientTls>, TlsError> {
    if host.scheme() != "https" {
        return Ok(None);
    }
    let client = s
        .client_cert_file
        .as_deref()
        .zip(s.client_key_file.as_deref());
    ClientTls::new(Files {
        section: "signaling",
        ca_file: s.ca_file.as_deref(),
        client,
    })
    .map(Some)
}

/// What to warn about when `host` is plain `http` to another machine; `None` for `https` and
/// for loopback (the embedded development server).
pub(super) fn plain_http_warning(host: &Url) -> Option<String> {
    if host.scheme() != "http" || is_loopback(host) {
        return None;
    }
    let name = host.host_str().unwrap_or_default();
    Some(format!(
        "signaling.host is plain http:// to {name}: the login password and the session id cross the network unencrypted; use https://"
    ))
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(a)) => IpAddr::V4(a).is_loopback(),
        Some(Host::Ipv6(a)) => IpAddr::V6(a).is_loopback(),
        Some(Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warns(host: &str) -> bool {
        plain_http_warning(&Url::parse(host).unwrap()).is_some()
    }

    #[test]
    fn plain_http_warns_only_off_this_machine() {
        assert!(warns("http://meet.example.com/app"));
        assert!(warns("http://192.168.1.20:8080/app"));
        assert!(warns("http://[fd00::1]:8080/app"));
        assert!(!warns("http://127.0.0.1:8080/app"));
        assert!(!warns("http://127.0.1.1:8080/app"));
        assert!(!warns("http://[::1]:8080/app"));
        assert!(!warns("http://localhost:8080/app"));
        assert!(!warns("https://meet.example.com/app"));
    }

    #[test]
    fn the_warning_names_the_host_but_not_credentials_in_the_url() {
        let url = Url::parse("http://user:hunter2@meet.example.com/app").unwrap();
        let w = plain_http_warning(&url).unwrap();
        assert!(
            w.contains("meet.example.com") && w.contains("https://"),
            "{w}"
        );
        assert!(!w.contains("hunter2"), "{w}");
    }

    #[test]
    fn an_http_host_has_no_tls_and_https_trusts_the_system_store() {
        let s = SignalingConfig::default();
        let http = Url::parse("http://127.0.0.1:8080/app").unwrap();
        assert!(client_tls(&s, &http).unwrap().is_none());
        let https = Url::parse("https://meet.example.com/app").unwrap();
        assert!(client_tls(&s, &https).unwrap().is_some());
    }
}
