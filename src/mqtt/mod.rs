//! The MQTT adapter: retained state, events, telemetry, commands with replies, fleet
//! commands, Home Assistant discovery, last will, TLS (topics and payloads: the README, "MQTT").
//!
//! Two tasks: one polls the MQTT event loop and never waits on the agent; the other turns
//! the agent's state, events and statistics into publications and runs commands through the
//! [`AgentHandle`], like any other local control. Commands, replies, state and events are
//! QoS 1 and never dropped; telemetry is QoS 0 and dropped when the link is congested. The
//! session is persistent (clean session off), so QoS 1 commands sent while the device was
//! offline arrive when it reconnects; subscriptions are renewed on every ConnAck.

pub mod discovery;
mod forget;
pub mod telemetry;
pub mod topics;

pub use forget::{FORGET_GAP, forget};

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use rumqttc::{
    AsyncClient, ConnectionError, Event, LastWill, MqttOptions, Packet, QoS, TlsConfiguration,
    Transport,
};
use serde_json::{Value, json};
use thiserror::Error;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::backoff::Reconnect;
use crate::command::{self, Refused, Request, Verb};
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
            topics: Topics::new(&m.prefix, &c.device.id),
            credentials,
            tls,
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
        })
    }

    pub(crate) fn mqtt_options(&self) -> MqttOptions {
        let mut o = MqttOptions::new(self.topics.id.clone(), self.host.clone(), self.port);
        o.set_keep_alive(self.keep_alive);
        o.set_clean_session(false);
        o.set_last_will(LastWill::new(
            self.topics.status(),
            "offline",
            QoS::AtLeastOnce,
            true,
        ));
        if let Some((user, pass)) = &self.credentials {
            o.set_credentials(user.clone(), pass.expose().to_string());
        }
        if let Some((ca, client)) = &self.tls {
            o.set_transport(Transport::tls_with_config(TlsConfiguration::Simple {
                ca: ca.clone(),
                alpn: None,
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

/// Messages from the event-loop task to the worker.
enum Link {
    Connected,
    Disconnected,
    Command {
        verb: String,
        fleet: bool,
        payload: Vec<u8>,
    },
    HomeAssistantOnline,
}

/// Starts the adapter; the future ends when `shutdown` is cancelled, after publishing
/// `offline`.
pub fn start(
    opts: Options,
    agent: AgentHandle,
    shutdown: CancellationToken,
) -> (
    tokio::sync::watch::Receiver<LinkStatus>,
    impl Future<Output = ()> + Send + 'static,
) {
    let (status_tx, status_rx) = tokio::sync::watch::channel(LinkStatus::default());
    let fut = async move {
        let (client, mut eventloop) = AsyncClient::new(opts.mqtt_options(), 256);
        // Small messages that should go out now: no Nagle delay.
        let mut net = eventloop.network_options();
        net.set_tcp_nodelay(true);
        eventloop.set_network_options(net);
        let (link_tx, link_rx) = mpsc::channel(256);
        let poll_stop = CancellationToken::new();
        let poller = tokio::spawn(poll(
            opts.clone(),
            eventloop,
            link_tx,
            status_tx,
            poll_stop.clone(),
        ));
        work(&opts, &client, agent, link_rx, &shutdown).await;
        // Say goodbye: retained offline, then a clean disconnect (the will is not sent).
        let _ = client
            .publish(opts.topics.status(), QoS::AtLeastOnce, true, "offline")
            .await;
        let _ = client.disconnect().await;
        let _ = tokio::time::timeout(Duration::from_secs(2), poller).await;
        poll_stop.cancel();
    };
    (status_rx, fut)
}

/// Polls the MQTT event loop forever, reconnecting with backoff; never waits on the agent
/// longer than a bounded channel send.
async fn poll(
    opts: Options,
    mut eventloop: rumqttc::EventLoop,
    link: mpsc::Sender<Link>,
    status: tokio::sync::watch::Sender<LinkStatus>,
    stop: CancellationToken,
) {
    let mut reconnect = Reconnect::new(opts.reconnect.0, opts.reconnect.1);
    let ha_status = opts
        .discovery_prefix
        .as_ref()
        .map(|p| format!("{p}/status"));
    loop {
        let event = tokio::select! {
            _ = stop.cancelled() => return,
            e = eventloop.poll() => e,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                info!(
                    session_present = ack.session_present,
                    "connected to the MQTT broker"
                );
                reconnect.connected();
                status.send_replace(LinkStatus {
                    connected: true,
                    last_error: None,
                    failed_attempts: 0,
                });
                if link.send(Link::Connected).await.is_err() {
                    return;
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if Some(p.topic.as_str()) == ha_status.as_deref() {
                    if p.payload.as_ref() == b"online" {
                        let _ = link.send(Link::HomeAssistantOnline).await;
                    }
                } else if let Some((verb, fleet)) = opts.topics.parse_command(&p.topic) {
                    let msg = Link::Command {
                        verb: verb.to_string(),
                        fleet,
                        payload: p.payload.to_vec(),
                    };
                    if link.send(msg).await.is_err() {
                        return;
                    }
                } else {
                    debug!(topic = %p.topic, "ignoring a message on an unexpected topic");
                }
            }
            Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => return,
            Ok(_) => {}
            Err(e) => {
                let text = describe(&e);
                if reconnect.failed(&text) {
                    warn!(error = %text, broker = %format!("{}:{}", opts.host, opts.port), "MQTT connection failed; will keep retrying");
                }
                status.send_modify(|s| {
                    s.connected = false;
                    s.last_error = Some(text);
                    s.failed_attempts += 1;
                });
                let _ = link.try_send(Link::Disconnected);
                if !reconnect.wait(&stop).await {
                    return;
                }
            }
        }
    }
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

struct Worker<'a> {
    opts: &'a Options,
    client: &'a AsyncClient,
    agent: AgentHandle,
    started: Instant,
    cpu: telemetry::CpuMeter,
    connected: bool,
}

async fn work(
    opts: &Options,
    client: &AsyncClient,
    agent: AgentHandle,
    mut link: mpsc::Receiver<Link>,
    shutdown: &CancellationToken,
) {
    let mut state = agent.state();
    let mut events = agent.events();
    let mut w = Worker {
        opts,
        client,
        agent,
        started: Instant::now(),
        cpu: telemetry::CpuMeter::default(),
        connected: false,
    };
    let mut telemetry = tokio::time::interval(opts.telemetry_interval);
    telemetry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // State changes are coalesced: publish the latest ~50 ms after the first change.
    let mut state_due: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            msg = link.recv() => match msg {
                Some(Link::Connected) => {
                    w.connected = true;
                    w.on_connect().await;
                }
                Some(Link::Disconnected) => w.connected = false,
                Some(Link::HomeAssistantOnline) => w.publish_discovery().await,
                Some(Link::Command { verb, fleet, payload }) => w.on_command(&verb, fleet, &payload).await,
                None => return,
            },
            changed = state.changed() => {
                if changed.is_err() {
                    return;
                }
                state_due.get_or_insert_with(|| tokio::time::Instant::now() + Duration::from_millis(50));
            }
            _ = crate::wait::sleep_until(state_due) => {
                state_due = None;
                w.publish_state().await;
            }
            ev = events.recv() => match ev {
                Ok(ev) => {
                    let mut v = serde_json::to_value(&ev).unwrap_or(Value::Null);
                    if let Some(o) = v.as_object_mut() {
                        o.insert("device".into(), json!(w.opts.topics.id));
                        o.insert("at".into(), json!(unix_ms()));
                    }
                    w.publish(w.opts.topics.event(), false, v.to_string()).await;
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    warn!(missed = n, "MQTT publisher fell behind the call events");
                }
                Err(_) => return,
            },
            _ = telemetry.tick() => w.publish_telemetry(),
        }
    }
}

fn unix_ms() -> u128 {
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
                o.insert(
                    "devices".into(),
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

impl Worker<'_> {
    async fn publish(&self, topic: String, retain: bool, payload: String) {
        if let Err(e) = self
            .client
            .publish(topic, QoS::AtLeastOnce, retain, payload)
            .await
        {
            warn!(error = %e, "cannot queue an MQTT message");
        }
    }

    async fn on_connect(&mut self) {
        let t = &self.opts.topics;
        for filter in [t.commands(), t.fleet_commands()] {
            if let Err(e) = self.client.subscribe(filter, QoS::AtLeastOnce).await {
                warn!(error = %e, "cannot subscribe");
            }
        }
        if let Some(p) = &self.opts.discovery_prefix
            && let Err(e) = self
                .client
                .subscribe(format!("{p}/status"), QoS::AtLeastOnce)
                .await
        {
            warn!(error = %e, "cannot subscribe to Home Assistant's status");
        }
        self.publish(t.status(), true, "online".into()).await;
        self.publish_discovery().await;
        self.publish_state().await;
    }

    async fn publish_state(&self) {
        let s = self.agent.state().borrow().clone();
        let doc = state_document(
            &s,
            &self.opts.topics.id,
            &self.opts.name,
            &self.agent,
            self.started.elapsed(),
        );
        self.publish(self.opts.topics.state(), true, doc.to_string())
            .await;
    }

    async fn publish_discovery(&self) {
        let Some(prefix) = &self.opts.discovery_prefix else {
            return;
        };
        let info = discovery::DeviceInfo {
            id: self.opts.topics.id.clone(),
            name: self.opts.name.clone(),
            model: self
                .agent
                .media_info()
                .map(|i| format!("roomagent ({})", i.profile))
                .unwrap_or_else(|| "roomagent".into()),
            sw_version: env!("CARGO_PKG_VERSION").into(),
            hw_version: telemetry::board_model(),
            configuration_url: self.opts.configuration_url.clone(),
        };
        let present = discovery::Present {
            temperature: telemetry::temperature_c().is_some(),
        };
        for (topic, payload) in discovery::configs(prefix, &self.opts.topics, &info, &present) {
            // An entity this device lacks: an empty retained config removes a stale one.
            let text = payload.map(|p| p.to_string()).unwrap_or_default();
            self.publish(topic, true, text).await;
        }
    }

    fn publish_telemetry(&mut self) {
        if !self.connected {
            return;
        }
        let media = self
            .agent
            .media_stats()
            .map(|m| m.borrow().clone())
            .unwrap_or_default();
        let doc = json!({
            "device": self.opts.topics.id,
            "at": unix_ms(),
            "uptime_s": self.started.elapsed().as_secs(),
            "cpu_percent": self.cpu.sample(),
            "rss_mib": telemetry::rss_mib(),
            "temperature_c": telemetry::temperature_c(),
            "media": media,
        });
        // Telemetry is the first thing to go when the link is congested.
        if let Err(e) = self.client.try_publish(
            self.opts.topics.telemetry(),
            QoS::AtMostOnce,
            false,
            doc.to_string(),
        ) {
            debug!(error = %e, "telemetry dropped");
        }
    }

    async fn reply(&self, verb: &str, id: &Value, result: Result<Value, String>) {
        let mut doc = json!({"id": id, "verb": verb, "device": self.opts.topics.id});
        match result {
            Ok(extra) => {
                doc["ok"] = json!(true);
                if let (Some(o), Some(e)) = (doc.as_object_mut(), extra.as_object()) {
                    for (k, v) in e {
                        o.insert(k.clone(), v.clone());
                    }
                }
            }
            Err(error) => {
                doc["ok"] = json!(false);
                doc["error"] = json!(error);
            }
        }
        self.publish(self.opts.topics.reply(), false, doc.to_string())
            .await;
    }

    async fn on_command(&mut self, verb: &str, fleet: bool, payload: &[u8]) {
        let request = match command::parse(verb, payload, fleet) {
            Ok(r) => r,
            Err(Refused { id, error }) => {
                info!(%verb, %error, "refused an MQTT command");
                self.reply(verb, &id, Err(error)).await;
                return;
            }
        };
        let Request {
            id,
            verb: what,
            target,
        } = request;
        if let Some(sel) = &target
            && !sel.selects(
                &self.opts.topics.id,
                self.opts.group.as_deref(),
                self.opts.site.as_deref(),
            )
        {
            debug!(%verb, "fleet command for other devices");
            return;
        }
        let result = match what {
            Verb::Core(cmd) => self
                .agent
                .command(cmd)
                .await
                .map(|()| json!({}))
                .map_err(|e| e.to_string()),
            Verb::Reload => self
                .agent
                .reload()
                .await
                .map(|r| json!({"applied": r.applied, "needs_restart": r.needs_restart})),
            Verb::State => {
                self.publish_discovery().await;
                self.publish_state().await;
                Ok(json!({}))
            }
        };
        info!(%verb, ok = result.is_ok(), "MQTT command");
        self.reply(verb, &id, result).await;
    }
}
