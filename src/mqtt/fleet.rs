//! `roomagent fleet`, for a team without a dashboard yet: the fleet as its devices' retained
//! documents describe it (`fleet ls`), and one command sent to many devices with their
//! replies collected (`fleet cmd`). It is an MQTT client like any dashboard, with the broker,
//! credentials and TLS of the `[mqtt]` section of the file it is given, so it needs a broker
//! user that may read `<prefix>/#` and write the command topics.
//!
//! [`Directory`] and [`Outcome`] do no I/O: messages in, a table and a summary out. The
//! functions at the end drive them over a broker connection.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, Packet, QoS};
use serde_json::{Value, json};

use super::topics::RESERVED_IDS;
use super::{Options, describe, unix_ms};

/// One device, as its retained documents describe it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    /// Device id.
    pub id: String,
    /// `online` / `offline` (retained status); `None` when the broker holds none.
    pub status: Option<String>,
    /// Call phase (state).
    pub call: Option<String>,
    /// Registered with signaling (state).
    pub registered: Option<bool>,
    /// Health level.
    pub health: Option<String>,
    /// Health issue codes.
    pub issues: Vec<String>,
    /// Agent version (info, else state).
    pub version: Option<String>,
    /// Fleet group (info).
    pub group: Option<String>,
    /// Site (info).
    pub site: Option<String>,
    /// Board model (info).
    pub board: Option<String>,
}

impl Row {
    /// Whether the device says it is online.
    pub fn online(&self) -> bool {
        self.status.as_deref() == Some("online")
    }
}

/// Which devices a fleet command is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Every device (`<prefix>/all/cmd/<verb>`).
    All,
    /// One group (`<prefix>/group/<g>/cmd/<verb>`).
    Group(String),
    /// One site (`<prefix>/site/<s>/cmd/<verb>`).
    Site(String),
    /// Named devices (`<prefix>/all/cmd/<verb>` with `{"target": {"ids": [...]}}`).
    Ids(Vec<String>),
}

impl Target {
    /// The topic to publish on and the `target` selector to add to the payload, if any.
    pub fn topic(&self, prefix: &str, verb: &str) -> (String, Option<Value>) {
        match self {
            Target::All => (format!("{prefix}/all/cmd/{verb}"), None),
            Target::Group(g) => (format!("{prefix}/group/{g}/cmd/{verb}"), None),
            Target::Site(s) => (format!("{prefix}/site/{s}/cmd/{verb}"), None),
            Target::Ids(ids) => (
                format!("{prefix}/all/cmd/{verb}"),
                Some(json!({ "ids": ids })),
            ),
        }
    }

    fn selects(&self, row: &Row) -> bool {
        match self {
            Target::All => true,
            Target::Group(g) => row.group.as_deref() == Some(g),
            Target::Site(s) => row.site.as_deref() == Some(s),
            Target::Ids(ids) => ids.contains(&row.id),
        }
    }
}

/// The fleet as the broker's retained documents describe it.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    prefix: String,
    rows: BTreeMap<String, Row>,
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

impl Directory {
    /// An empty directory for devices under `prefix`.
    pub fn new(prefix: &str) -> Directory {
        Directory {
            prefix: prefix.to_string(),
            rows: BTreeMap::new(),
        }
    }

    /// The devices, by id.
    pub fn rows(&self) -> impl Iterator<Item = &Row> {
        self.rows.values()
    }

    /// Takes one message; `false` when it is not one of the documents read here. An empty
    /// payload (a cleared retained message) clears that part of the row.
    pub fn take(&mut self, topic: &str, payload: &[u8]) -> bool {
        let Some(rest) = topic
            .strip_prefix(&self.prefix)
            .and_then(|r| r.strip_prefix('/'))
        else {
            return false;
        };
        let Some((id, leaf)) = rest.split_once('/') else {
            return false;
        };
        if RESERVED_IDS.contains(&id) || !matches!(leaf, "status" | "state" | "health" | "info") {
            return false;
        }
        let row = self.rows.entry(id.to_string()).or_insert_with(|| Row {
            id: id.to_string(),
            ..Row::default()
        });
        if leaf == "status" {
            row.status = std::str::from_utf8(payload)
                .ok()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string);
            return true;
        }
        let v: Value = serde_json::from_slice(payload).unwrap_or(Value::Null);
        match leaf {
            "state" => {
                row.call = text(&v, "call");
                row.registered = v.get("registered").and_then(Value::as_bool);
                if row.version.is_none() {
                    row.version = text(&v, "version");
                }
            }
            "health" => {
                row.health = text(&v, "level");
                row.issues = v
                    .get("issues")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(|i| text(i, "code")).collect())
                    .unwrap_or_default();
            }
            _ => {
                row.version = text(&v, "version").or(row.version.take());
                row.group = text(&v, "group");
                row.site = text(&v, "site");
                row.board = v.get("board").and_then(|b| text(b, "model"));
            }
        }
        true
    }

    /// A table a person reads: one line per device.
    pub fn table(&self) -> String {
        let dash = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
        let mut lines = vec![[
            "DEVICE".to_string(),
            "STATUS".into(),
            "HEALTH".into(),
            "CALL".into(),
            "VERSION".into(),
            "GROUP".into(),
            "SITE".into(),
            "BOARD".into(),
        ]];
        for r in self.rows.values() {
            let health = match (&r.health, r.issues.is_empty()) {
                (Some(level), false) => format!("{level} ({})", r.issues.join(",")),
                (level, _) => dash(level),
            };
            let call = match (r.registered, &r.call) {
                (Some(false), _) => "unregistered".to_string(),
                (_, c) => dash(c),
            };
            lines.push([
                r.id.clone(),
                dash(&r.status),
                health,
                call,
                dash(&r.version),
                dash(&r.group),
                dash(&r.site),
                dash(&r.board),
            ]);
        }
        let widths: Vec<usize> = (0..8)
            .map(|i| {
                lines
                    .iter()
                    .map(|l| l[i].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for l in &lines {
            let cells: Vec<String> = l
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            let _ = writeln!(out, "{}", cells.join("  ").trim_end());
        }
        let online = self.rows.values().filter(|r| r.online()).count();
        let unhealthy = self
            .rows
            .values()
            .filter(|r| r.health.as_deref().is_some_and(|h| h != "ok"))
            .count();
        let _ = writeln!(
            out,
            "{} devices: {online} online, {} offline or unknown, {unhealthy} with issues",
            self.rows.len(),
            self.rows.len() - online
        );
        out
    }
}

/// How a command sent to many devices went.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// Devices that ran it.
    pub ok: Vec<String>,
    /// Devices that refused it, with why.
    pub refused: Vec<(String, String)>,
    /// Selected devices that are offline (the broker keeps the command for them, and they
    /// refuse it when they come back if it is older than their `command_max_age_s`).
    pub offline: Vec<String>,
    /// Selected online devices that did not answer in time.
    pub silent: Vec<String>,
}

impl Outcome {
    /// What is still awaited: the selected online devices.
    pub fn expect(dir: &Directory, target: &Target) -> (BTreeSet<String>, Vec<String>) {
        let mut waiting = BTreeSet::new();
        let mut offline = Vec::new();
        for r in dir.rows().filter(|r| target.selects(r)) {
            if r.online() {
                waiting.insert(r.id.clone());
            } else {
                offline.push(r.id.clone());
            }
        }
        if let Target::Ids(ids) = target {
            // Named devices the broker knows nothing of are offline as far as anyone can tell.
            for id in ids {
                if !dir.rows.contains_key(id) {
                    offline.push(id.clone());
                }
            }
        }
        (waiting, offline)
    }

    /// Takes one reply; `false` when it is not for this command.
    pub fn take(&mut self, id: &Value, reply: &Value) -> bool {
        if reply.get("id") != Some(id) {
            return false;
        }
        let Some(device) = text(reply, "device") else {
            return false;
        };
        if reply.get("ok") == Some(&Value::Bool(true)) {
            self.ok.push(device);
        } else {
            let why = text(reply, "error").unwrap_or_else(|| "refused".into());
            self.refused.push((device, why));
        }
        true
    }

    /// "47 ok, 2 refused, 1 offline, 0 no answer", then who, one per line.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "{} ok, {} refused, {} offline, {} no answer\n",
            self.ok.len(),
            self.refused.len(),
            self.offline.len(),
            self.silent.len()
        );
        for (d, why) in &self.refused {
            let _ = writeln!(out, "refused   {d}: {why}");
        }
        for d in &self.offline {
            let _ = writeln!(out, "offline   {d}");
        }
        for d in &self.silent {
            let _ = writeln!(out, "no answer {d}");
        }
        out
    }
}

/// How long the retained documents may keep arriving: they come right after the SUBACK; a
/// pause this long means the broker has sent them all.
const SETTLE: Duration = Duration::from_millis(500);
/// The longest the directory is read for.
const READ_MAX: Duration = Duration::from_secs(20);

struct Link {
    client: AsyncClient,
    events: EventLoop,
}

impl Link {
    async fn open(opts: &Options, filters: &[String]) -> Result<Link, String> {
        // Within MQTT 3.1's 23 bytes, as some brokers require.
        let id: String = opts.topics.id.chars().take(14).collect();
        let mut o =
            opts.client_options(&format!("{id}-f{:06x}", rand::random::<u32>() & 0xff_ffff));
        o.set_clean_session(true);
        o.set_max_packet_size(256 * 1024, 256 * 1024);
        let (client, events) = AsyncClient::new(o, 1024);
        for f in filters {
            client
                .subscribe(f.clone(), QoS::AtLeastOnce)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(Link { client, events })
    }

    /// The next message, or `None` at `until`.
    async fn next(
        &mut self,
        until: tokio::time::Instant,
    ) -> Result<Option<(String, Vec<u8>)>, String> {
        loop {
            match tokio::time::timeout_at(until, self.events.poll()).await {
                Err(_) => return Ok(None),
                Ok(Err(e)) => return Err(format!("MQTT: {}", describe(&e))),
                Ok(Ok(Event::Incoming(Packet::Publish(p)))) => {
                    return Ok(Some((p.topic, p.payload.to_vec())));
                }
                Ok(Ok(_)) => {}
            }
        }
    }

    /// Reads retained documents into `dir` until they stop coming.
    async fn read(&mut self, dir: &mut Directory) -> Result<(), String> {
        let end = tokio::time::Instant::now() + READ_MAX;
        let mut quiet = tokio::time::Instant::now() + SETTLE * 4;
        loop {
            let until = quiet.min(end);
            match self.next(until).await? {
                Some((topic, payload)) => {
                    dir.take(&topic, &payload);
                    quiet = tokio::time::Instant::now() + SETTLE;
                }
                None => return Ok(()),
            }
        }
    }

    async fn close(mut self) {
        super::forget::hang_up(&self.client, &mut self.events).await;
    }
}

fn document_filters(prefix: &str) -> Vec<String> {
    ["status", "state", "health", "info"]
        .iter()
        .map(|leaf| format!("{prefix}/+/{leaf}"))
        .collect()
}

/// `fleet ls`: the directory from the broker's retained documents.
pub async fn directory(opts: &Options) -> Result<Directory, String> {
    let prefix = &opts.topics.prefix;
    let mut link = Link::open(opts, &document_filters(prefix)).await?;
    let mut dir = Directory::new(prefix);
    link.read(&mut dir).await?;
    link.close().await;
    Ok(dir)
}

/// `fleet cmd`: sends `verb` with `args` to `target` once, with an `id` and `ts`, and
/// collects the replies until every selected online device answered or `wait` passed.
pub async fn command(
    opts: &Options,
    verb: &str,
    args: Value,
    target: &Target,
    wait: Duration,
) -> Result<Outcome, String> {
    let Value::Object(mut payload) = args else {
        return Err("the arguments must be a JSON object".into());
    };
    let prefix = &opts.topics.prefix;
    let mut filters = document_filters(prefix);
    filters.push(format!("{prefix}/+/reply"));
    let mut link = Link::open(opts, &filters).await?;
    let mut dir = Directory::new(prefix);
    link.read(&mut dir).await?;
    // Only the replies from here on: a verb like `state` makes every device republish its
    // documents, and a broker queues only so many messages for one client (mosquitto: 1,000)
    // before it drops the rest, replies among them.
    for f in document_filters(prefix) {
        link.client
            .unsubscribe(f)
            .await
            .map_err(|e| e.to_string())?;
    }
    let (mut waiting, offline) = Outcome::expect(&dir, target);
    let mut outcome = Outcome {
        offline,
        ..Outcome::default()
    };
    let id = json!(format!("fleet-{:08x}", rand::random::<u32>()));
    let (topic, selector) = target.topic(prefix, verb);
    payload.insert("id".into(), id.clone());
    payload.insert("ts".into(), json!(unix_ms() as u64));
    if let Some(s) = selector {
        payload.insert("target".into(), s);
    }
    link.client
        .publish(
            topic,
            QoS::AtLeastOnce,
            false,
            Value::Object(payload).to_string(),
        )
        .await
        .map_err(|e| e.to_string())?;
    let end = tokio::time::Instant::now() + wait;
    while !waiting.is_empty() {
        let Some((topic, body)) = link.next(end).await? else {
            break;
        };
        if !topic.ends_with("/reply") {
            continue;
        }
        let Ok(reply) = serde_json::from_slice::<Value>(&body) else {
            continue;
        };
        if outcome.take(&id, &reply)
            && let Some(device) = text(&reply, "device")
        {
            waiting.remove(&device);
            outcome.offline.retain(|d| *d != device);
        }
    }
    outcome.silent = waiting.into_iter().collect();
    link.close().await;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet() -> Directory {
        let mut d = Directory::new("roomagent");
        let info = |g: &str, s: &str| {
            json!({"version": "0.2.0", "group": g, "site": s, "board": {"model": "Raspberry Pi 5"}})
                .to_string()
        };
        for (id, status, g) in [
            ("r1", "online", "lobby"),
            ("r2", "online", "lobby"),
            ("r3", "offline", "board"),
        ] {
            assert!(d.take(&format!("roomagent/{id}/status"), status.as_bytes()));
            assert!(d.take(
                &format!("roomagent/{id}/info"),
                info(g, "berlin").as_bytes()
            ));
            assert!(d.take(
                &format!("roomagent/{id}/state"),
                br#"{"call":"idle","registered":true,"version":"0.1.0"}"#
            ));
        }
        assert!(d.take(
            "roomagent/r2/health",
            br#"{"level":"warning","issues":[{"code":"temperature"}]}"#
        ));
        assert!(!d.take("roomagent/all/cmd/mute", b""));
        assert!(!d.take("roomagent/r1/telemetry", b"{}"));
        assert!(!d.take("other/r1/status", b"online"));
        d
    }

    #[test]
    fn the_directory_is_read_from_retained_documents() {
        let d = fleet();
        let rows: Vec<&Row> = d.rows().collect();
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[0].version.as_deref(),
            Some("0.2.0"),
            "info's version wins"
        );
        assert_eq!(rows[1].issues, ["temperature"]);
        let t = d.table();
        assert!(t.starts_with("DEVICE"), "{t}");
        assert!(t.contains("warning (temperature)"), "{t}");
        assert!(
            t.contains("3 devices: 2 online, 1 offline or unknown, 1 with issues"),
            "{t}"
        );
        // A cleared status (mqtt-forget) leaves the device unknown.
        let mut d = d;
        d.take("roomagent/r1/status", b"");
        assert!(!d.rows().next().unwrap().online());
    }

    #[test]
    fn replies_are_counted_against_who_was_selected() {
        let d = fleet();
        let (waiting, offline) = Outcome::expect(&d, &Target::Group("lobby".into()));
        assert_eq!(waiting.into_iter().collect::<Vec<_>>(), ["r1", "r2"]);
        assert!(offline.is_empty());
        let (waiting, offline) = Outcome::expect(&d, &Target::Site("berlin".into()));
        assert_eq!(waiting.len(), 2);
        assert_eq!(offline, ["r3"]);
        let (_, offline) = Outcome::expect(&d, &Target::Ids(vec!["r1".into(), "r9".into()]));
        assert_eq!(offline, ["r9"], "unknown to the broker");

        let id = json!("fleet-1");
        let mut o = Outcome {
            offline: vec!["r3".into()],
            ..Outcome::default()
        };
        assert!(o.take(&id, &json!({"id": "fleet-1", "device": "r1", "ok": true})));
        assert!(o.take(
            &id,
            &json!({"id": "fleet-1", "device": "r2", "ok": false, "error": "volume: 0-100"})
        ));
        assert!(!o.take(&id, &json!({"id": "other", "device": "r2", "ok": true})));
        assert_eq!(
            o.summary(),
            "1 ok, 1 refused, 1 offline, 0 no answer\nrefused   r2: volume: 0-100\noffline   r3\n"
        );
        assert_eq!(
            Target::Ids(vec!["r1".into()]).topic("roomagent", "mute"),
            (
                "roomagent/all/cmd/mute".to_string(),
                Some(json!({"ids": ["r1"]}))
            )
        );
        assert_eq!(
            Target::Site("berlin".into()).topic("roomagent", "mute").0,
            "roomagent/site/berlin/cmd/mute"
        );
    }
}
