//! TLS in front of the development room server, which speaks plain HTTP: a certificate
//! authority made here with rcgen, a server certificate for 127.0.0.1 and localhost, a client
//! certificate, and a TLS-terminating proxy on loopback that forwards to the room server
//! (login requests and the control socket alike), optionally requiring client certificates.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// A test certificate authority with a server and a client certificate. The CA and the
/// client's files are written to `dir` for the agent's configuration.
pub struct Pki {
    pub ca_file: PathBuf,
    pub client_cert_file: PathBuf,
    pub client_key_file: PathBuf,
    ca_der: CertificateDer<'static>,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: PrivatePkcs8KeyDer<'static>,
}

fn leaf(
    issuer: &Issuer<'_, KeyPair>,
    names: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut p = CertificateParams::new(names).unwrap();
    p.distinguished_name
        .push(DnType::CommonName, "roomagent test");
    p.extended_key_usages = vec![usage];
    (p.signed_by(&key, issuer).unwrap(), key)
}

impl Pki {
    /// Makes the authority `name` and its certificates, writing files under `dir`.
    pub fn make(dir: &Path, name: &str) -> Pki {
        std::fs::create_dir_all(dir).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca.distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let (server, server_key) = leaf(
            &issuer,
            &["127.0.0.1", "localhost"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client, client_key) = leaf(&issuer, &[], ExtendedKeyUsagePurpose::ClientAuth);
        let file = |f: &str, text: String| {
            let p = dir.join(format!("{name}-{f}"));
            std::fs::write(&p, text).unwrap();
            p
        };
        Pki {
            ca_file: file("ca.pem", ca_cert.pem()),
            client_cert_file: file("client.pem", client.pem()),
            client_key_file: file("client.key", client_key.serialize_pem()),
            ca_der: ca_cert.der().clone(),
            server_chain: vec![server.der().clone()],
            server_key: PrivatePkcs8KeyDer::from(server_key.serialize_der()),
        }
    }

    fn server_config(&self, require_client_cert: bool) -> rustls::ServerConfig {
        let provider = roomagent::tls::provider();
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if require_client_cert {
            let mut roots = RootCertStore::empty();
            roots.add(self.ca_der.clone()).unwrap();
            let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                .build()
                .unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let key = PrivateKeyDer::Pkcs8(self.server_key.clone_key());
        builder
            .with_single_cert(self.server_chain.clone(), key)
            .unwrap()
    }
}

/// Handshakes a TLS front has seen, by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Handshakes {
    pub ok: u32,
    pub failed: u32,
}

/// A TLS-terminating proxy on a loopback port, forwarding to a plain backend.
pub struct TlsFront {
    pub addr: SocketAddr,
    handshakes: watch::Receiver<Handshakes>,
    task: JoinHandle<()>,
}

impl TlsFront {
    /// Terminates TLS with `pki`'s server certificate and forwards to `backend`.
    pub async fn start(pki: &Pki, backend: SocketAddr, require_client_cert: bool) -> TlsFront {
        let acceptor = TlsAcceptor::from(Arc::new(pki.server_config(require_client_cert)));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, handshakes) = watch::channel(Handshakes::default());
        let tx = Arc::new(tx);
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(forward(acceptor.clone(), tcp, backend, tx.clone()));
            }
        });
        TlsFront {
            addr,
            handshakes,
            task,
        }
    }

    /// `api` (the room server's `http://127.0.0.1:…/app`) through this front: `https`, with
    /// `host` (`127.0.0.1` or `localhost`) and this front's port.
    pub fn api(&self, api: &str, host: &str) -> String {
        let mut u = url::Url::parse(api).unwrap();
        u.set_scheme("https").unwrap();
        u.set_host(Some(host)).unwrap();
        u.set_port(Some(self.addr.port())).unwrap();
        u.to_string()
    }

    /// Waits (up to 20 s) until the handshakes match `pred`; panics with the count otherwise.
    pub async fn wait(&self, what: &str, pred: impl Fn(Handshakes) -> bool) -> Handshakes {
        let mut rx = self.handshakes.clone();
        let r = tokio::time::timeout(Duration::from_secs(20), rx.wait_for(|h| pred(*h)))
            .await
            .map(|r| r.map(|h| *h));
        match r {
            Ok(Ok(h)) => h,
            _ => panic!(
                "timed out waiting for {what}; handshakes {:?}",
                *self.handshakes.borrow()
            ),
        }
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    backend: SocketAddr,
    count: Arc<watch::Sender<Handshakes>>,
) {
    let mut tls = match acceptor.accept(tcp).await {
        Ok(tls) => {
            count.send_modify(|h| h.ok += 1);
            tls
        }
        Err(_) => {
            count.send_modify(|h| h.failed += 1);
            return;
        }
    };
    let Ok(mut plain) = TcpStream::connect(backend).await else {
        return;
    };
    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
}
