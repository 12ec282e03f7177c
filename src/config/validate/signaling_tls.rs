//! `[signaling]` TLS files: they exist, a client certificate comes with its key, and they
//! are only given for an `https` host (with `http` they would silently do nothing).

use std::path::PathBuf;

use url::Url;

use crate::config::Config;

/// Checks `ca_file`, `client_cert_file` and `client_key_file` under `[signaling]`.
pub(super) fn check(c: &Config, err: &mut impl FnMut(&str, String)) {
    let s = &c.signaling;
    if s.client_cert_file.is_some() != s.client_key_file.is_some() {
        err(
            "signaling.client_key_file",
            "client_cert_file and client_key_file go together".into(),
        );
    }
    let files: [(&str, &Option<PathBuf>); 3] = [
        ("ca_file", &s.ca_file),
        ("client_cert_file", &s.client_cert_file),
        ("client_key_file", &s.client_key_file),
    ];
    for (key, path) in files {
        if let Some(p) = path
            && !p.is_file()
        {
            err(
                &format!("signaling.{key}"),
                format!("{} does not exist or is not a file", p.display()),
            );
        }
    }
    let https = Url::parse(&s.host).is_ok_and(|u| u.scheme() == "https");
    if let Some((key, _)) = files.iter().find(|(_, p)| p.is_some())
        && !https
    {
        err(
            &format!("signaling.{key}"),
            "certificates are for TLS: signaling.host must be an https:// URL".into(),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, Purpose, validate::check as check_all};

    fn problems(c: &Config) -> Vec<(String, String)> {
        check_all(c, Purpose::Agent)
            .into_iter()
            .filter(|(k, _)| {
                ["ca_file", "client_cert_file", "client_key_file"]
                    .iter()
                    .any(|f| *k == format!("signaling.{f}"))
            })
            .collect()
    }

    fn https() -> Config {
        let mut c = Config::default();
        c.device.id = "r".into();
        c.signaling.host = "https://meet.example.com/app".into();
        c
    }

    #[test]
    fn an_existing_ca_file_with_https_is_accepted() {
        let mut c = https();
        c.signaling.ca_file = Some(std::env::current_exe().unwrap());
        assert_eq!(problems(&c), vec![]);
    }

    #[test]
    fn a_missing_file_is_named_with_its_key() {
        let mut c = https();
        c.signaling.ca_file = Some("/nonexistent/ca.pem".into());
        let p = problems(&c);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0, "signaling.ca_file");
        assert!(p[0].1.contains("/nonexistent/ca.pem"), "{p:?}");
    }

    #[test]
    fn a_client_certificate_needs_its_key() {
        let mut c = https();
        c.signaling.client_cert_file = Some(std::env::current_exe().unwrap());
        let p = problems(&c);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0, "signaling.client_key_file");
    }

    #[test]
    fn certificates_with_a_plain_http_host_are_refused() {
        let mut c = https();
        c.signaling.host = "http://meet.example.com/app".into();
        c.signaling.ca_file = Some(std::env::current_exe().unwrap());
        let p = problems(&c);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0, "signaling.ca_file");
        assert!(p[0].1.contains("https://"), "{p:?}");
    }
}
