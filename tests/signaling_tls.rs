//! RTCPeer signaling over TLS: the development room server behind a TLS front whose
//! certificate comes from a certificate authority made in the test. The agent logs in over
//! https and opens its control socket over wss; it trusts the system's store plus
//! `signaling.ca_file`, and presents `client_cert_file` to a server that asks for one.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use roomagent::core::UserId;
use support::tls::{Pki, TlsFront};
use support::*;

fn dir(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("roomagent-{name}-{}", std::process::id()))
}

/// `agent_toml` against `api` with `tls` lines added under `[signaling]`.
fn tls_toml(api: &str, tls: &str) -> String {
    agent_toml(api, "mode = \"never\"").replace(
        "request_timeout_s = 5\n",
        &format!("request_timeout_s = 5\n{tls}\n"),
    )
}

fn ca_line(pki: &Pki) -> String {
    format!("ca_file = \"{}\"", pki.ca_file.display())
}

fn client_lines(pki: &Pki) -> String {
    format!(
        "client_cert_file = \"{}\"\nclient_key_file = \"{}\"",
        pki.client_cert_file.display(),
        pki.client_key_file.display()
    )
}

fn is_online(server: &Server) -> bool {
    server.handle.online().iter().any(|o| o.id == ROOM)
}

#[tokio::test]
async fn with_the_test_ca_as_ca_file_the_agent_registers_over_https_and_wss() {
    let d = dir("sig-tls-ok");
    let pki = Pki::make(&d, "good");
    let server = Server::start().await;
    let front = TlsFront::start(&pki, server.handle.addr(), false).await;
    for host in ["127.0.0.1", "localhost"] {
        let api = front.api(&server.api(), host);
        assert!(api.starts_with("https://"), "{api}");
        let mut agent = Agent::start_toml(&tls_toml(&api, &ca_line(&pki))).await;
        let s = agent.registered().await;
        assert_eq!(s.user_id, Some(UserId(ROOM)));
        assert!(is_online(&server));
        agent.stop().await;
    }
    // Each registration took a TLS login and a TLS control socket; none failed.
    let h = front.wait("four handshakes", |h| h.ok >= 4).await;
    assert_eq!(h.failed, 0, "{h:?}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[tokio::test]
async fn without_ca_file_an_unknown_ca_is_refused_said_and_retried() {
    let d = dir("sig-tls-unknown");
    let pki = Pki::make(&d, "good");
    let other = Pki::make(&d, "other");
    let server = Server::start().await;
    let front = TlsFront::start(&pki, server.handle.addr(), false).await;
    let api = front.api(&server.api(), "127.0.0.1");
    for tls in [String::new(), ca_line(&other)] {
        let mut agent = Agent::start_toml(&tls_toml(&api, &tls)).await;
        let s = agent
            .wait_for("a TLS error", |s| s.signaling_error.is_some())
            .await;
        let err = s.signaling_error.unwrap();
        assert!(err.contains("UnknownIssuer"), "{err}");
        assert!(err.contains("signaling.ca_file"), "{err}");
        // It keeps trying, and every attempt is refused.
        let before = front.wait("a refused handshake", |h| h.failed >= 1).await;
        front
            .wait("three more refused handshakes", |h| {
                h.failed >= before.failed + 3
            })
            .await;
        let s = agent.now();
        assert!(!s.registered);
        assert!(s.signaling_error.unwrap().contains("UnknownIssuer"));
        agent.stop().await;
    }
    assert!(!is_online(&server));
    assert_eq!(front.wait("no success", |_| true).await.ok, 0);
    std::fs::remove_dir_all(&d).unwrap();
}

#[tokio::test]
async fn a_server_requiring_client_certificates_admits_the_agent_that_has_one() {
    let d = dir("sig-tls-client");
    let pki = Pki::make(&d, "good");
    let server = Server::start().await;
    let front = TlsFront::start(&pki, server.handle.addr(), true).await;
    let api = front.api(&server.api(), "127.0.0.1");

    let mut agent = Agent::start_toml(&tls_toml(&api, &ca_line(&pki))).await;
    let s = agent
        .wait_for("a TLS error", |s| s.signaling_error.is_some())
        .await;
    let err = s.signaling_error.unwrap();
    assert!(err.contains("CertificateRequired"), "{err}");
    assert!(err.contains("signaling.client_cert_file"), "{err}");
    let before = front.wait("a refused handshake", |h| h.failed >= 1).await;
    front
        .wait("more refused handshakes", |h| h.failed >= before.failed + 3)
        .await;
    assert!(!agent.now().registered);
    assert!(!is_online(&server));
    agent.stop().await;

    let tls = format!("{}\n{}", ca_line(&pki), client_lines(&pki));
    let mut agent = Agent::start_toml(&tls_toml(&api, &tls)).await;
    let s = agent.registered().await;
    assert_eq!(s.user_id, Some(UserId(ROOM)));
    assert!(is_online(&server));
    agent.stop().await;
    std::fs::remove_dir_all(&d).unwrap();
}

/// A client key that cannot be used stops the start with the key's name and path; its
/// content (a secret) appears nowhere.
#[tokio::test]
async fn an_unusable_client_key_is_named_but_never_quoted() {
    let d = dir("sig-tls-badkey");
    let pki = Pki::make(&d, "good");
    let other = Pki::make(&d, "other");
    let garbage = d.join("garbage.key");
    std::fs::write(
        &garbage,
        "-----BEGIN PRIVATE KEY-----\nTOPSECRETKEYMATERIAL\n",
    )
    .unwrap();
    let secret_of_other = std::fs::read_to_string(&other.client_key_file).unwrap();
    for key in [&garbage, &other.client_key_file] {
        let tls = format!(
            "{}\nclient_cert_file = \"{}\"\nclient_key_file = \"{}\"",
            ca_line(&pki),
            pki.client_cert_file.display(),
            key.display()
        );
        let toml = tls_toml("https://127.0.0.1:9/app", &tls);
        let cfg = roomagent::config::parse(&toml, roomagent::config::Purpose::Agent).unwrap();
        let stop = tokio_util::sync::CancellationToken::new();
        let Err(e) = roomagent::daemon::start(cfg, stop).await else {
            panic!("started with {}", key.display());
        };
        let e = format!("{e:#}");
        assert!(e.contains("signaling.client_key_file"), "{e}");
        if key == &other.client_key_file {
            assert!(e.contains("does not belong to the certificate"), "{e}");
        }
        assert!(!e.contains("TOPSECRET"), "{e}");
        let body: String = secret_of_other.lines().nth(1).unwrap().into();
        assert!(!e.contains(&body), "{e}");
    }
    std::fs::remove_dir_all(&d).unwrap();
}

/// The system trust store counts: a CA the system trusts (here through `SSL_CERT_FILE`,
/// which the store honours like OpenSSL does) needs no `ca_file`.
#[tokio::test]
async fn a_ca_in_the_system_trust_store_needs_no_ca_file() {
    let d = dir("sig-tls-system");
    let pki = Pki::make(&d, "system");
    let server = Server::start().await;
    let front = TlsFront::start(&pki, server.handle.addr(), false).await;
    let conf = d.join("config.toml");
    let api = front.api(&server.api(), "localhost");
    std::fs::write(&conf, tls_toml(&api, "")).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_roomagent"))
        .args(["run", "--config"])
        .arg(&conf)
        .env("SSL_CERT_FILE", &pki.ca_file)
        .env_remove("SSL_CERT_DIR")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut online = false;
    for _ in 0..200 {
        if is_online(&server) {
            online = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(online, "the agent did not register within 20 s");
    assert_eq!(front.wait("no refusal", |_| true).await.failed, 0);
    std::fs::remove_dir_all(&d).unwrap();
}
