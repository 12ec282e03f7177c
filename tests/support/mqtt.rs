//! A real broker (mosquitto, started per test on a free loopback port with a generated
//! configuration) and a dashboard client that records what it sees.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, TlsConfiguration, Transport};
use serde_json::Value;
use tokio::sync::mpsc;

/// A running mosquitto.
pub struct Broker {
    child: Option<Child>,
    /// Its port.
    pub port: u16,
    /// Working directory (configuration, persistence, certificates).
    pub dir: PathBuf,
    conf: PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// TLS material for a broker listener.
pub struct TlsFiles {
    /// CA certificate.
    pub ca: PathBuf,
    /// Server certificate.
    pub cert: PathBuf,
    /// Server key.
    pub key: PathBuf,
    /// Require client certificates.
    pub require_client_cert: bool,
}

impl Broker {
    /// A plain broker with persistence (sessions survive a restart).
    pub fn start() -> Broker {
        Self::start_with(None)
    }

    /// A broker, optionally TLS-only.
    pub fn start_with(tls: Option<&TlsFiles>) -> Broker {
        Self::start_configured(tls, None)
    }

    /// A broker that requires these users and passwords and applies `acl` (a mosquitto
    /// `acl_file`).
    pub fn start_with_acl(users: &[(&str, &str)], acl: &str) -> Broker {
        Self::start_configured(None, Some((users, acl)))
    }

    fn start_configured(tls: Option<&TlsFiles>, auth: Option<(&[(&str, &str)], &str)>) -> Broker {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("roomagent-mosquitto-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // Run as whoever runs the tests (mosquitto started as root otherwise drops to its
        // own user, which cannot read our files).
        let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_string();
        let mut conf_text = format!(
            "user {user}\nper_listener_settings false\nallow_anonymous true\npersistence true\npersistence_location {}/\nlistener {port} 127.0.0.1\n",
            dir.display()
        );
        if let Some(t) = tls {
            conf_text.push_str(&format!(
                "cafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate {}\n",
                t.ca.display(),
                t.cert.display(),
                t.key.display(),
                t.require_client_cert
            ));
        }
        if let Some((users, acl)) = auth {
            conf_text = conf_text.replace("allow_anonymous true", "allow_anonymous false");
            conf_text.push_str(&access_files(&dir, users, acl));
        }
        let conf = dir.join("mosquitto.conf");
        std::fs::write(&conf, conf_text).unwrap();
        let mut b = Broker {
            child: None,
            port,
            dir,
            conf,
        };
        b.launch();
        b
    }

    fn launch(&mut self) {
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&self.conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto not found: install it (scripts/setup-debian.sh)");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(30));
        }
        panic!("mosquitto did not start on port {}", self.port);
    }

    /// Stops it the way systemd would (SIGTERM: it saves its sessions).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Writes a password file (with `mosquitto_passwd`) and the ACL file; returns the lines that
/// point the broker at them.
fn access_files(dir: &Path, users: &[(&str, &str)], acl: &str) -> String {
    let passwords = dir.join("passwords");
    std::fs::write(&passwords, "").unwrap();
    for (user, password) in users {
        let ok = Command::new("mosquitto_passwd")
            .arg("-b")
            .arg(&passwords)
            .args([user, password])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("mosquitto_passwd (package mosquitto)")
            .success();
        assert!(ok, "mosquitto_passwd {user}");
    }
    let acl_file = dir.join("acl");
    std::fs::write(&acl_file, acl).unwrap();
    format!(
        "password_file {}\nacl_file {}\n",
        passwords.display(),
        acl_file.display()
    )
}

/// Generates a CA, a server certificate for 127.0.0.1 and a client certificate with openssl.
pub fn make_certs(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf, PathBuf, PathBuf) {
    let p = |f: &str| dir.join(format!("{name}-{f}"));
    let run = |args: &[&str]| {
        let ok = Command::new("openssl")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl")
            .success();
        assert!(ok, "openssl {args:?}");
    };
    let s = |p: &PathBuf| p.to_string_lossy().into_owned();
    let (ca_key, ca, key, csr, cert, ckey, ccsr, ccert, ext) = (
        p("ca.key"),
        p("ca.pem"),
        p("server.key"),
        p("server.csr"),
        p("server.pem"),
        p("client.key"),
        p("client.csr"),
        p("client.pem"),
        p("ext.cnf"),
    );
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let cext = p("client-ext.cnf");
    std::fs::write(&cext, "extendedKeyUsage=clientAuth\n").unwrap();
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "2",
        "-subj",
        &format!("/CN={name} test CA"),
        "-keyout",
        &s(&ca_key),
        "-out",
        &s(&ca),
    ]);
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        &s(&key),
        "-out",
        &s(&csr),
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        &s(&csr),
        "-CA",
        &s(&ca),
        "-CAkey",
        &s(&ca_key),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &s(&ext),
        "-out",
        &s(&cert),
    ]);
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        "/CN=room-101",
        "-keyout",
        &s(&ckey),
        "-out",
        &s(&ccsr),
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        &s(&ccsr),
        "-CA",
        &s(&ca),
        "-CAkey",
        &s(&ca_key),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &s(&cext),
        "-out",
        &s(&ccert),
    ]);
    (ca, cert, key, ccert, ckey)
}

/// A dashboard: subscribes to everything and records messages.
pub struct Dashboard {
    pub client: AsyncClient,
    rx: mpsc::UnboundedReceiver<(String, Vec<u8>, bool)>,
    /// Everything received, in order.
    seen: Vec<(String, Vec<u8>, bool)>,
    /// Received but not yet matched by a wait.
    inbox: std::collections::VecDeque<(String, Vec<u8>, bool)>,
}

impl Dashboard {
    /// Connects to `port` and subscribes to `filters`.
    pub async fn connect(port: u16, filters: &[&str]) -> Dashboard {
        Self::connect_tls(port, filters, None).await
    }

    /// The same over TLS with a CA and client certificate.
    pub async fn connect_tls(
        port: u16,
        filters: &[&str],
        tls: Option<roomagent::mqtt::TlsPem>,
    ) -> Dashboard {
        Self::connect_with(port, filters, tls, None).await
    }

    /// The same as a user with a password.
    pub async fn connect_as(port: u16, filters: &[&str], user: &str, password: &str) -> Dashboard {
        Self::connect_with(port, filters, None, Some((user, password))).await
    }

    async fn connect_with(
        port: u16,
        filters: &[&str],
        tls: Option<roomagent::mqtt::TlsPem>,
        login: Option<(&str, &str)>,
    ) -> Dashboard {
        let mut o = MqttOptions::new(
            format!("dashboard-{}", rand::random::<u32>()),
            "127.0.0.1",
            port,
        );
        o.set_keep_alive(Duration::from_secs(10));
        o.set_max_packet_size(1 << 20, 1 << 20);
        if let Some((user, password)) = login {
            o.set_credentials(user, password);
        }
        if let Some((ca, client_auth)) = tls {
            o.set_transport(Transport::tls_with_config(TlsConfiguration::Simple {
                ca,
                alpn: None,
                client_auth,
            }));
        }
        let (client, mut eventloop) = AsyncClient::new(o, 1024);
        let mut net = eventloop.network_options();
        net.set_tcp_nodelay(true);
        eventloop.set_network_options(net);
        let (tx, rx) = mpsc::unbounded_channel();
        let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let _ = tx.send((p.topic.clone(), p.payload.to_vec(), p.retain));
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = ready_tx.send(());
                    }
                    Ok(_) => {}
                    Err(e) => {
                        eprintln!("dashboard: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await
                    }
                }
            }
        });
        for f in filters {
            client.subscribe(*f, QoS::AtLeastOnce).await.unwrap();
            tokio::time::timeout(Duration::from_secs(10), ready_rx.recv())
                .await
                .expect("dashboard subscription");
        }
        Dashboard {
            client,
            rx,
            seen: Vec::new(),
            inbox: std::collections::VecDeque::new(),
        }
    }

    /// Publishes QoS 1.
    pub async fn publish_bytes(&self, topic: &str, payload: Vec<u8>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .unwrap();
    }

    pub async fn publish(&self, topic: &str, payload: &str) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.as_bytes().to_vec())
            .await
            .unwrap();
    }

    /// Waits (10 s) for a message on `topic` matching `pred`, returns its payload as text.
    pub async fn wait(&mut self, topic: &str, pred: impl Fn(&str) -> bool) -> String {
        self.wait_within(topic, Duration::from_secs(10), pred)
            .await
            .unwrap_or_else(|| {
                let seen: Vec<String> = self
                    .seen
                    .iter()
                    .filter(|(t, _, _)| t == topic)
                    .map(|(_, p, _)| String::from_utf8_lossy(p).into_owned())
                    .collect();
                panic!("nothing matching on {topic} within 10 s; seen there: {seen:#?}")
            })
    }

    /// Like [`Dashboard::wait`] with a limit; `None` if nothing matched. Messages are
    /// matched in arrival order; each is matched at most once, and ones other waits skipped
    /// stay available.
    pub async fn wait_within(
        &mut self,
        topic: &str,
        limit: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let matches =
            |m: &(String, Vec<u8>, bool)| m.0 == topic && pred(&String::from_utf8_lossy(&m.1));
        if let Some(i) = self.inbox.iter().position(matches) {
            let m = self.inbox.remove(i).unwrap();
            return Some(String::from_utf8_lossy(&m.1).into_owned());
        }
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let msg = tokio::time::timeout(left, self.rx.recv()).await.ok()??;
            self.seen.push(msg.clone());
            if matches(&msg) {
                return Some(String::from_utf8_lossy(&msg.1).into_owned());
            }
            self.inbox.push_back(msg);
        }
    }

    /// Waits for a JSON message on `topic` matching `pred`.
    pub async fn wait_json(&mut self, topic: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let text = self
            .wait(topic, |t| {
                serde_json::from_str::<Value>(t).is_ok_and(|v| pred(&v))
            })
            .await;
        serde_json::from_str(&text).unwrap()
    }

    /// Everything received so far on `topic` (consumed or not), in order.
    pub async fn drain(&mut self, settle: Duration) -> Vec<(String, String, bool)> {
        let deadline = tokio::time::Instant::now() + settle;
        while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, self.rx.recv()).await {
            self.seen.push(msg.clone());
            self.inbox.push_back(msg);
        }
        self.seen
            .iter()
            .map(|(t, p, r)| (t.clone(), String::from_utf8_lossy(p).into_owned(), *r))
            .collect()
    }
}
