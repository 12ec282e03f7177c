//! The publisher: turns the agent's state, events and statistics into publications and runs
//! commands. It never awaits rumqttc: everything goes through the [`Outbox`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, QoS};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant as Deadline;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::link::{Incoming, Signal};
use super::outbox::Outbox;
use super::{Options, discovery, state_document, telemetry, unix_ms};
use crate::command::{self, Refused, Request, Verb};
use crate::core::CallEvent;
use crate::handle::AgentHandle;
use crate::health;

/// How often a congested link is offered what waits in the outbox.
const RETRY: Duration = Duration::from_millis(50);
/// State changes are coalesced: the latest goes out this long after the first change.
const STATE_COALESCE: Duration = Duration::from_millis(50);
/// How often health looks at the system (temperature, disk, clock) between state changes.
const HEALTH_PERIOD: Duration = Duration::from_secs(10);
/// How often the inventory is read again (addresses and disk change; the rest rarely).
const INFO_PERIOD: Duration = Duration::from_secs(3600);

struct Worker<'a> {
    opts: &'a Options,
    client: &'a AsyncClient,
    agent: AgentHandle,
    started: Instant,
    cpu: telemetry::CpuMeter,
    link: Signal,
    outbox: Outbox,
    retry_due: Option<Deadline>,
    /// Numbers the retained documents (state, health) of this run, so a consumer that gets
    /// two can tell which is newer (with `run`, the agent's start time).
    seq: u64,
    run: u128,
    health: health::Tracker,
    /// The health last published (re-sent only when it changes, and on each connection).
    health_sent: Option<health::Health>,
    encoder_replaced: Option<(String, String, String)>,
    errors: VecDeque<(Instant, String)>,
}

/// Runs until `shutdown`, the agent going away or the poller ending.
pub(crate) async fn work(
    opts: &Options,
    client: &AsyncClient,
    agent: AgentHandle,
    mut signal: watch::Receiver<Signal>,
    mut commands: mpsc::Receiver<Incoming>,
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
        link: Signal::default(),
        outbox: Outbox::default(),
        retry_due: None,
        seq: 0,
        run: unix_ms(),
        health: health::Tracker::default(),
        health_sent: None,
        encoder_replaced: None,
        errors: VecDeque::new(),
    };
    let mut telemetry = tokio::time::interval(opts.telemetry_interval);
    telemetry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut state_due: Option<Deadline> = None;
    let mut info_tick = tokio::time::interval(INFO_PERIOD);
    info_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    info_tick.reset();
    let mut health_tick = tokio::time::interval(HEALTH_PERIOD);
    health_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let retry_due = w.retry_due;
        let health_due = w.health.next_due().map(Deadline::from_std);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = signal.changed() => {
                if changed.is_err() {
                    return;
                }
                let s = *signal.borrow_and_update();
                w.on_signal(s);
            }
            cmd = commands.recv() => match cmd {
                Some(c) if c.verb == super::link::DESIRED => w.on_desired(&c.payload).await,
                Some(c) => w.on_command(&c.verb, c.fleet, &c.payload).await,
                None => return,
            },
            changed = state.changed() => {
                if changed.is_err() {
                    return;
                }
                state_due.get_or_insert_with(|| Deadline::now() + STATE_COALESCE);
            }
            _ = crate::wait::sleep_until(state_due) => {
                state_due = None;
                w.queue_state();
            }
            ev = events.recv() => match ev {
                Ok(ev) => {
                    let health_changes = w.note_for_health(&ev);
                    w.queue_event(serde_json::to_value(&ev).unwrap_or(Value::Null));
                    if health_changes {
                        w.queue_health(false);
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    warn!(missed = n, "MQTT publisher fell behind the call events");
                }
                Err(_) => return,
            },
            _ = telemetry.tick() => w.publish_telemetry(),
            _ = health_tick.tick() => w.queue_health(false),
            _ = info_tick.tick() => w.queue_info(),
            _ = crate::wait::sleep_until(health_due) => w.queue_health(false),
            _ = crate::wait::sleep_until(retry_due) => {}
        }
        w.flush();
    }
}

impl Worker<'_> {
    /// Offers the link what waits, when connected; retries soon if it did not all fit.
    fn flush(&mut self) {
        self.retry_due = None;
        if !self.link.connected {
            return;
        }
        self.outbox.flush(self.client);
        if !self.outbox.is_empty() {
            self.retry_due = Some(Deadline::now() + RETRY);
        }
    }

    fn on_signal(&mut self, s: Signal) {
        let seen = std::mem::replace(&mut self.link, s);
        if s.connects != seen.connects {
            self.queue_connect();
        } else if s.ha_online != seen.ha_online {
            self.queue_discovery();
        }
    }

    /// A new connection: subscriptions, `online`, discovery and the current state; and
    /// a word about events that did not survive the outage.
    fn queue_connect(&mut self) {
        let t = &self.opts.topics;
        for filter in t.command_filters() {
            self.outbox.subscribe(filter);
        }
        self.outbox.subscribe(t.config_desired());
        if let Some(p) = &self.opts.discovery_prefix {
            self.outbox.subscribe(format!("{p}/status"));
        }
        self.outbox.retained(t.status(), "online".into());
        self.queue_discovery();
        self.queue_state();
        self.queue_health(true);
        self.queue_info();
        let dropped = self.outbox.take_dropped();
        if dropped > 0 {
            warn!(
                dropped,
                "MQTT events and replies dropped while the broker was away"
            );
            self.queue_event(json!({
                "event": "error",
                "message": format!("{dropped} events and replies were dropped while the MQTT broker was unreachable"),
            }));
        }
    }

    fn queue_event(&mut self, mut v: Value) {
        if let Some(o) = v.as_object_mut() {
            o.insert("device".into(), json!(self.opts.topics.id));
            o.insert("at".into(), json!(unix_ms()));
        }
        self.outbox.message(self.opts.topics.event(), v.to_string());
    }

    /// `seq` and `run` (this run's start, Unix ms) and `at` (now), so a consumer can tell
    /// the newer of two retained documents even across the agent's restarts.
    fn stamp(&mut self, doc: &mut Value) {
        self.seq += 1;
        if let Some(o) = doc.as_object_mut() {
            o.insert("seq".into(), json!(self.seq));
            o.insert("run".into(), json!(self.run));
            o.insert("at".into(), json!(unix_ms()));
        }
    }

    fn queue_state(&mut self) {
        let s = self.agent.state().borrow().clone();
        let mut doc = state_document(
            &s,
            &self.opts.topics.id,
            &self.opts.name,
            &self.agent,
            self.started.elapsed(),
        );
        self.stamp(&mut doc);
        self.outbox
            .retained(self.opts.topics.state(), doc.to_string());
        // A state change can make or clear an issue (signaling, a lost device).
        self.queue_health(false);
    }

    /// The inventory, read now.
    fn queue_info(&mut self) {
        let mut doc = crate::inventory::collect(
            &self.opts.topics.id,
            self.agent.media_info(),
            &self.opts.certificates,
            &health::observe_system(),
        );
        if let Some(o) = doc.as_object_mut() {
            o.insert("group".into(), json!(self.opts.group));
            o.insert("site".into(), json!(self.opts.site));
        }
        self.stamp(&mut doc);
        self.outbox
            .retained(self.opts.topics.info(), doc.to_string());
    }

    /// What an event tells health; whether it may change it.
    fn note_for_health(&mut self, ev: &CallEvent) -> bool {
        match ev {
            CallEvent::EncoderReplaced { from, to, reason } => {
                self.encoder_replaced = Some((from.clone(), to.clone(), reason.clone()));
                true
            }
            CallEvent::Error { message } => {
                self.errors.push_back((Instant::now(), message.clone()));
                if self.errors.len() > 100 {
                    self.errors.pop_front();
                }
                true
            }
            _ => false,
        }
    }

    /// Looks at the device and publishes its health when it changed (or `always`, on a new
    /// connection).
    fn queue_health(&mut self, always: bool) {
        let now = Instant::now();
        while self
            .errors
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > health::ERRORS_WINDOW)
        {
            self.errors.pop_front();
        }
        let info = self.agent.media_info();
        let seen = health::Observed {
            state: Some(self.agent.state().borrow().clone()),
            media: info.is_some(),
            passed_over: info.map(|i| i.passed_over.clone()).unwrap_or_default(),
            encoder: info.map(|i| i.encoder.clone()),
            encoder_replaced: self.encoder_replaced.clone(),
            certificates: self.opts.certificates.clone(),
            recent_errors: self.errors.iter().map(|(_, m)| m.clone()).collect(),
            system: health::observe_system(),
        };
        let h = self
            .health
            .assess(&seen, &self.opts.health, now, unix_ms() as u64);
        if !always && self.health_sent.as_ref() == Some(&h) {
            return;
        }
        let mut doc = json!({"device": self.opts.topics.id, "level": h.level, "issues": h.issues});
        self.stamp(&mut doc);
        self.outbox
            .retained(self.opts.topics.health(), doc.to_string());
        self.health_sent = Some(h);
    }

    fn queue_discovery(&mut self) {
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
            self.outbox.retained(topic, text);
        }
    }

    fn publish_telemetry(&mut self) {
        if !self.link.connected {
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

    fn reply(&mut self, verb: &str, id: &Value, result: Result<Value, String>) {
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
        self.outbox
            .message(self.opts.topics.reply(), doc.to_string());
    }

    /// The desired configuration: checked with the file's loader, kept as the overlay,
    /// applied as a reload (a restart, once idle, for what needs one), and answered on
    /// `config/reported`. Anything wrong changes nothing and says why.
    async fn on_desired(&mut self, payload: &[u8]) {
        let report = self.apply_desired(payload).await;
        let mut doc = report;
        if let Some((path, at_start)) = &self.opts.config_file {
            let now = std::fs::read(path)
                .map(|b| crate::config::desired::sha256_hex(&b))
                .unwrap_or_default();
            doc["file"] = json!({
                "path": path.display().to_string(),
                "sha256": now,
                // Drift: edited by hand since the agent started (and not restarted since).
                "changed": &now != at_start,
            });
        }
        self.stamp(&mut doc);
        self.outbox
            .retained(self.opts.topics.config_reported(), doc.to_string());
    }

    async fn apply_desired(&mut self, payload: &[u8]) -> Value {
        use crate::config::desired;
        let refused = |hash: Value, errors: Vec<String>| {
            info!(?errors, "refused a desired configuration");
            json!({"hash": hash, "applied": [], "needs_restart": [], "restart": "none", "errors": errors})
        };
        let (Some(overlay), Some((file, _))) = (&self.opts.desired_file, &self.opts.config_file)
        else {
            return refused(
                Value::Null,
                vec!["remote configuration needs the agent to run from a file as the service (its state directory keeps the desired configuration) or [service] desired_file".into()],
            );
        };
        let kept = std::fs::read(overlay).ok().map(|b| desired::sha256_hex(&b));
        let wanted = if payload.is_empty() {
            None
        } else {
            match desired::parse_desired(payload) {
                Ok(d) => Some(d),
                Err(errors) => return refused(Value::Null, errors),
            }
        };
        let hash = wanted
            .as_ref()
            .map(|d| json!(d.hash))
            .unwrap_or(Value::Null);
        if wanted.as_ref().map(|d| &d.hash) == kept.as_ref() {
            // Already in effect (the retained message again after a reconnect or restart).
            return json!({"hash": hash, "applied": [], "needs_restart": [], "restart": "none", "errors": [], "in_effect": true});
        }
        if let Some(d) = &wanted
            && let Err(errors) = desired::check(file, &d.table)
        {
            return refused(hash, errors);
        }
        if let Err(e) = desired::store(overlay, wanted.as_ref().map(|d| &d.table)) {
            return refused(hash, vec![e]);
        }
        let report = match self.agent.reload().await {
            Ok(r) => r,
            Err(e) => return refused(hash, vec![e]),
        };
        let restart = if report.needs_restart.is_empty() {
            "none"
        } else {
            match self
                .agent
                .restart(
                    crate::command::Scope::Agent,
                    crate::command::When::Idle,
                    format!(
                        "the desired configuration changes {}",
                        report.needs_restart.join(", ")
                    ),
                )
                .await
            {
                Ok(crate::handle::Restarting::Queued) => "queued",
                Ok(crate::handle::Restarting::Now) => "now",
                Err(e) => return refused(hash, vec![e]),
            }
        };
        info!(applied = ?report.applied, needs_restart = ?report.needs_restart, restart, "desired configuration applied");
        json!({
            "hash": hash,
            "applied": report.applied,
            "needs_restart": report.needs_restart,
            "restart": restart,
            "errors": [],
            "in_effect": restart == "none",
        })
    }

    /// Parses, selects, checks freshness, runs and answers one command.
    async fn on_command(&mut self, verb: &str, fleet: bool, payload: &[u8]) {
        let request = match command::parse(verb, payload, fleet) {
            Ok(r) => r,
            Err(Refused { id, error }) => {
                info!(%verb, %error, "refused an MQTT command");
                self.reply(verb, &id, Err(error));
                return;
            }
        };
        let Request {
            id,
            verb: what,
            target,
            sent_at,
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
        if let Err(error) = self.opts.freshness.check(sent_at) {
            info!(%verb, %error, "refused an MQTT command");
            self.reply(verb, &id, Err(error));
            return;
        }
        let result = self.run(what).await;
        info!(%verb, ok = result.is_ok(), "MQTT command");
        self.reply(verb, &id, result);
    }

    async fn run(&mut self, what: Verb) -> Result<Value, String> {
        match what {
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
            Verb::Restart { scope, when } => {
                let reason = format!("restart command over MQTT ({scope:?}, {when:?})");
                self.agent
                    .restart(scope, when, reason)
                    .await
                    .map(|r| {
                        json!({"scope": scope, "when": when, "queued": r == crate::handle::Restarting::Queued})
                    })
            }
            Verb::State => {
                self.queue_discovery();
                self.queue_state();
                self.queue_health(true);
                self.queue_info();
                Ok(json!({}))
            }
        }
    }
}
