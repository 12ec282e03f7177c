//! The MQTT adapter: retained state, events, telemetry, commands with replies, fleet
//! commands, Home Assistant discovery, last will, TLS (topics and payloads: the README, "MQTT").
//!
//! Two tasks: one polls the MQTT event loop and never waits on anything but the network
//! (`link`); the other turns the agent's state, events and statistics into publications and
//! runs commands through the [`AgentHandle`], like any other local control. The publisher
//! never awaits rumqttc's bounded request channel: it hands messages over with `try_*`, and
//! what does not fit waits in the `outbox` (retained state and status: latest wins; events
//! and replies: the newest [`QUEUE_MAX`]). Commands, replies, state and events are QoS 1;
//! telemetry is QoS 0 and dropped when the link is congested or down. The session is
//! persistent (clean session off), so QoS 1 commands sent while the device was offline arrive
//! when it reconnects, and are refused if their `"ts"` is too old ([`freshness`]); retained
//! commands are ignored. Subscriptions are renewed on every ConnAck.

pub mod discovery;
pub mod fleet;
mod forget;
pub mod freshness;
mod link;
mod outbox;
pub mod telemetry;
pub mod topics;
mod worker;

pub use forget::{FORGET_GAP, forget};
pub use freshness::Freshness;
pub use link::COMMANDS_MAX;
pub use outbox::QUEUE_MAX;

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectionError, LastWill, MqttOptions, QoS, TlsConfiguration, Transport,
};
use serde_json::{Value, json};
use thiserror::Error;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, MqttConfig, Secret, SecretBytes};
use crate::core::AgentState;
use crate::handle::AgentHandle;
use topics::Topics;

/// A CA certificate (PEM) and an optional client certificate and key (PEM).
pub type TlsPem = (Vec<u8>, Option<(Vec<u8>, Vec<u8>)>);

/// The same as [`Options`] holds it: the client key hidden from `Debug`.
pub type TlsSecretPem = (Vec<u8>, Option<(Vec<u8>, SecretBytes)>);

/// A problem with the `[mqtt]` configuration found at start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum MqttError {
    /// A file could not be read.
    #[error("cannot read mqtt.{key} {path}: {source}")]
    File {
        /// Which key.
        key: &'static str,
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, MqttError> {
    std::fs::read(path).map_err(|source| MqttError::File {
        key,
        path: path.display().to_string(),
        source,
    })
}

/// Everything the adapter needs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// Topics.
    pub topics: Topics,
    /// User and password.
    pub credentials: Option<(String, Secret)>,
    /// TLS: CA PEM and optional client certificate + key PEM (the key hidden from `Debug`).
    pub tls: Option<TlsSecretPem>,
    /// TLS ALPN protocols to offer.
    pub alpn: Vec<String>,
    /// Keep-alive.
    pub keep_alive: Duration,
    /// Telemetry period.
    pub telemetry_interval: Duration,
    /// Home Assistant discovery prefix, when discovery is on.
    pub discovery_prefix: Option<String>,
    /// Fleet group.
    pub group: Option<String>,
    /// Fleet site.
    pub site: Option<String>,
    /// Reconnect delays.
    pub reconnect: (Duration, Duration),
    /// Display name.
    pub name: String,
    /// A local page for the device, shown by Home Assistant as its configuration URL.
    pub configuration_url: Option<String>,
    /// Which commands are fresh enough to run.
    pub freshness: Freshness,
    /// When the device reports itself unhealthy.
    pub health: crate::config::HealthConfig,
    /// The certificate files the configuration names (inventory and health).
    pub certificates: Vec<crate::inventory::Certificate>,
    /// The configuration file the agent runs from, and its sha256 then (remote configuration
    /// reports a hand edit since as drift).
    pub config_file: Option<(std::path::PathBuf, String)>,
    /// Where a dashboard's configuration is kept; `None`: remote configuration is off.
    pub desired_file: Option<std::path::PathBuf>,
}

impl Options {
    /// From a validated configuration, reading the secret and certificate files.
    pub fn from_config(c: &Config) -> Result<Options, MqttError> {
        let m: &MqttConfig = &c.mqtt;
        let password = m
            .password_source()
            .resolve()
            .map_err(|source| MqttError::File {
                key: "password_file",
                path: m
                    .password_file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                source,
            })?;
        let credentials = m
            .username
            .clone()
            .map(|u| (u, password.unwrap_or_default()));
        let tls = match &m.ca_file {
            Some(ca) => {
                let client = match (&m.client_cert_file, &m.client_key_file) {
                    (Some(cert), Some(key)) => Some((
                        read("client_cert_file", cert)?,
                        SecretBytes::new(read("client_key_file", key)?),
                    )),
                    _ => None,
                };
                Some((read("ca_file", ca)?, client))
            }
            None => None,
        };
        Ok(Options {
            host: m.host.clone(),
            port: m.port,
            topics: Topics::new(&m.prefix, &c.device.id)
                .with_tags(m.group.as_deref(), m.site.as_deref()),
            credentials,
            tls,
            alpn: m.alpn.clone(),
            keep_alive: Duration::from_secs(m.keep_alive_s),
            telemetry_interval: Duration::from_secs(m.telemetry_interval_s),
            discovery_prefix: m.discovery.then(|| m.discovery_prefix.clone()),
            group: m.group.clone(),
            site: m.site.clone(),
            reconnect: (
                Duration::from_millis(m.reconnect_min_ms),
                Duration::from_millis(m.reconnect_max_ms),
            ),
            name: c.device.display_name().to_string(),
            configuration_url: m.configuration_url.clone(),
            freshness: Freshness {
                max_age: Duration::from_secs(m.command_max_age_s),
                require_timestamp: m.require_timestamp,
            },
            health: c.health.clone(),
            certificates: crate::inventory::certificates(c),
            config_file: c.source.as_ref().map(|p| {
                let hash = std::fs::read(p)
                    .map(|b| crate::config::desired::sha256_hex(&b))
                    .unwrap_or_default();
                (p.clone(), hash)
            }),
            desired_file: c.service.desired_file(),
        })
    }

    /// The device's connection: its id as client id, a persistent session, and its status
    /// topic's `offline` as the last will.
    pub(crate) fn mqtt_options(&self) -> MqttOptions {
        let mut o = self.client_options(&self.topics.id);
        o.set_clean_session(false);
        o.set_last_will(LastWill::new(
            self.topics.status(),
            "offline",
            QoS::AtLeastOnce,
            true,
        ));
        o
    }

    /// A connection to the same broker with the same credentials and TLS, as `client_id`,
    /// with no will (the tools: `mqtt-forget`, `fleet`).
    pub(crate) fn client_options(&self, client_id: &str) -> MqttOptions {
        let mut o = MqttOptions::new(client_id, self.host.clone(), self.port);
        o.set_keep_alive(self.keep_alive);
        if let Some((user, pass)) = &self.credentials {
            o.set_credentials(user.clone(), pass.expose().to_string());
        }
        if let Some((ca, client)) = &self.tls {
            let alpn = (!self.alpn.is_empty())
                .then(|| self.alpn.iter().map(|p| p.as_bytes().to_vec()).collect());
            o.set_transport(Transport::tls_with_config(TlsConfiguration::Simple {
                ca: ca.clone(),
                alpn,
                client_auth: client
                    .as_ref()
                    .map(|(c, k)| (c.clone(), k.expose().to_vec())),
            }));
        }
        o.set_max_packet_size(256 * 1024, 256 * 1024);
        o
    }
}

/// How the broker link is doing, for local status displays and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LinkStatus {
    /// Connected to the broker.
    pub connected: bool,
    /// The last connection error, in words a person can act on (never a secret).
    pub last_error: Option<String>,
    /// Failed connection attempts since the last success.
    pub failed_attempts: u64,
}

/// Requests rumqttc's event loop has not taken yet (its bounded channel).
const REQUESTS_MAX: usize = 256;

/// Starts the adapter; the future ends when `shutdown` is cancelled, after publishing
/// `offline`.
pub fn start(
    opts: Options,
    agent: AgentHandle,
    shutdown: CancellationToken,
) -> (
    watch::Receiver<LinkStatus>,
    impl Future<Output = ()> + Send + 'static,
) {
    let (status_tx, status_rx) = watch::channel(LinkStatus::default());
    let fut = async move {
        let (client, mut eventloop) = AsyncClient::new(opts.mqtt_options(), REQUESTS_MAX);
        // Small messages that should go out now: no Nagle delay.
        let mut net = eventloop.network_options();
        net.set_tcp_nodelay(true);
        eventloop.set_network_options(net);
        let (signal_tx, signal_rx) = watch::channel(link::Signal::default());
        let (commands_tx, commands_rx) = mpsc::channel(COMMANDS_MAX);
        let channels = link::Channels {
            signal: signal_tx,
            commands: commands_tx,
            status: status_tx,
        };
        let poll_stop = CancellationToken::new();
        let poller = tokio::spawn(link::poll(
            opts.clone(),
            eventloop,
            channels,
            poll_stop.clone(),
        ));
        worker::work(&opts, &client, agent, signal_rx, commands_rx, &shutdown).await;
        // Say goodbye: retained offline, then a clean disconnect (the will is not sent). The
        // poller keeps emptying the request channel meanwhile; a broker that is away gets
        // the will instead.
        let goodbye = async {
            let _ = client
                .publish(opts.topics.status(), QoS::AtLeastOnce, true, "offline")
                .await;
            let _ = client.disconnect().await;
            let _ = poller.await;
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), goodbye).await;
        poll_stop.cancel();
    };
    (status_rx, fut)
}

/// A connection error, in words a person can act on.
pub(crate) fn describe(e: &ConnectionError) -> String {
    match e {
        ConnectionError::Tls(t) => {
            format!("TLS handshake failed ({t}); check mqtt.ca_file and the client certificate")
        }
        ConnectionError::ConnectionRefused(code) => {
            format!("the broker refused the connection ({code:?}); check mqtt.username / password")
        }
        ConnectionError::Io(io) => format!("cannot reach the broker: {io}"),
        other => other.to_string(),
    }
}

pub(crate) fn unix_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// The retained state document.
pub fn state_document(
    s: &AgentState,
    id: &str,
    name: &str,
    agent: &AgentHandle,
    uptime: Duration,
) -> Value {
    let mut v = serde_json::to_value(s).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.insert("device".into(), json!(id));
        o.insert("name".into(), json!(name));
        o.insert("version".into(), json!(env!("CARGO_PKG_VERSION")));
        o.insert("uptime_s".into(), json!(uptime.as_secs()));
        match agent.media_info() {
            Some(info) => {
                o.insert("gstreamer".into(), json!(info.gstreamer.to_string()));
                o.insert("profile".into(), json!(info.profile));
                o.insert("encoder".into(), json!(info.encoder));
                // Profiles that fitted but whose encoder failed its test encode (a broken
                // hardware encoder): the dashboard sees why this box encodes in software.
                let passed: Vec<Value> = info
                    .passed_over
                    .iter()
                    .map(|(profile, error)| json!({"profile": profile, "error": error}))
                    .collect();
                o.insert("profiles_passed_over".into(), Value::Array(passed));
                // What the engine found, beside (not over) the state's `devices`, which says
                // whether the chosen camera, microphone and HDMI input are present or lost.
                o.insert(
                    "capture_devices".into(),
                    json!({"cameras": info.cameras, "microphones": info.microphones, "hdmi": info.hdmi}),
                );
            }
            None => {
                o.insert("profile".into(), Value::Null);
            }
        }
    }
    v
}

/// MQTT 3.1 limited client ids to 23 bytes; 3.1.1 lets brokers allow more, and some do not
/// (EMQX Cloud Serverless, for one). The device id is the client id.
pub const CLIENT_ID_PORTABLE: usize = 23;

#[cfg(test)]
mod tests {
    use super::*;

    fn options(extra: &str) -> Options {
        let dir = std::env::temp_dir().join(format!("roomagent-alpn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, "not read until connecting").unwrap();
        let text = format!(
            "[device]\nid = \"room\"\n[mqtt]\nenabled = true\nca_file = \"{}\"\n{extra}",
            ca.display()
        );
        let c = crate::config::parse(&text, crate::config::Purpose::Agent).unwrap();
        Options::from_config(&c).unwrap()
    }

    fn alpn_of(o: &MqttOptions) -> Option<Vec<Vec<u8>>> {
        match o.transport() {
            Transport::Tls(TlsConfiguration::Simple { alpn, .. }) => alpn,
            _ => panic!("TLS expected"),
        }
    }

    #[test]
    fn alpn_is_offered_when_configured_and_the_tools_connect_without_a_will() {
        assert_eq!(alpn_of(&options("").mqtt_options()), None);
        let o = options("alpn = [\"mqtt\"]");
        assert_eq!(alpn_of(&o.mqtt_options()), Some(vec![b"mqtt".to_vec()]));
        assert_eq!(
            alpn_of(&o.client_options("ops-f1")),
            Some(vec![b"mqtt".to_vec()])
        );
        assert!(o.mqtt_options().last_will().is_some());
        assert!(o.client_options("ops-f1").last_will().is_none());
        assert_eq!(o.client_options("ops-f1").client_id(), "ops-f1");
    }
}
