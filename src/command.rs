//! The command language every remote control speaks (MQTT command topics, RTM messages):
//! a verb, JSON arguments, an optional `id` echoed in the reply, and for fleet commands an
//! optional `target` selector. Every mistake is an error that names it.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::core::{Command, RoomId, UserId};

/// What a command asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Verb {
    /// A core command.
    Core(Command),
    /// Re-read the configuration file.
    Reload,
    /// Republish state (and discovery).
    State,
    /// Restart the agent or the whole device.
    Restart {
        /// The agent or the system.
        scope: Scope,
        /// Now, or once no call is going on.
        when: When,
    },
}

/// What a restart restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The agent (the service manager starts it again).
    Agent,
    /// The device (a reboot, through the privileged helper).
    System,
}

/// When something disruptive happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum When {
    /// Once no call is going on (at once when idle).
    Idle,
    /// At once, ending a call in progress.
    Now,
}

/// Which devices a fleet command is for. Absent: all of them.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selector {
    /// Device ids.
    #[serde(default)]
    pub ids: Vec<String>,
    /// A group tag.
    #[serde(default)]
    pub group: Option<String>,
    /// A site tag.
    #[serde(default)]
    pub site: Option<String>,
}

impl Selector {
    /// Whether a device with this id, group and site is selected.
    pub fn selects(&self, id: &str, group: Option<&str>, site: Option<&str>) -> bool {
        self.ids.iter().any(|i| i == id)
            || self.group.as_deref().is_some_and(|g| Some(g) == group)
            || self.site.as_deref().is_some_and(|s| Some(s) == site)
    }
}

/// A parsed command.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The `id` to echo.
    pub id: Value,
    /// What to do.
    pub verb: Verb,
    /// For fleet commands: who.
    pub target: Option<Selector>,
    /// When the sender sent it (`"ts"`), in Unix seconds; MQTT refuses stale commands by it.
    pub sent_at: Option<f64>,
}

/// A refused command: the reply says why.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    /// The `id` to echo, if one could be read.
    pub id: Value,
    /// What is wrong.
    pub error: String,
}

type Args = Map<String, Value>;
type VerbParser = fn(&mut Args) -> Result<Verb, String>;

/// Every verb of the scheme with what reads its arguments: the one list of verbs.
const TABLE: &[(&str, VerbParser)] = &[
    ("mute", |a| {
        Ok(Verb::Core(match take_bool(a, "mute", "mute")? {
            Some(false) => Command::Unmute,
            _ => Command::Mute,
        }))
    }),
    ("unmute", |_| Ok(Verb::Core(Command::Unmute))),
    ("camera_on", |a| {
        Ok(Verb::Core(match take_bool(a, "on", "camera_on")? {
            Some(false) => Command::CameraOff,
            _ => Command::CameraOn,
        }))
    }),
    ("camera_off", |_| Ok(Verb::Core(Command::CameraOff))),
    ("hangup", |_| Ok(Verb::Core(Command::Hangup))),
    ("answer", |_| Ok(Verb::Core(Command::Answer))),
    ("reject", |_| Ok(Verb::Core(Command::Reject))),
    ("dial", |a| {
        let user = take_positive(a, "user", "dial", "user id")?;
        Ok(Verb::Core(Command::Dial { user: UserId(user) }))
    }),
    ("join", |a| {
        let room = take_positive(a, "room", "join", "room id")?;
        Ok(Verb::Core(Command::Join { room: RoomId(room) }))
    }),
    ("leave", |_| Ok(Verb::Core(Command::Leave))),
    ("volume", |a| {
        let level = take_int(a, "level", "volume")?;
        let level = u8::try_from(level)
            .ok()
            .filter(|l| *l <= 100)
            .ok_or_else(|| format!("volume: \"level\" must be 0-100, not {level}"))?;
        Ok(Verb::Core(Command::Volume { level }))
    }),
    ("share_start", |_| Ok(Verb::Core(Command::ShareStart))),
    ("share_stop", |_| Ok(Verb::Core(Command::ShareStop))),
    ("reload", |_| Ok(Verb::Reload)),
    ("restart", |a| {
        let scope = match take_str(a, "scope", "restart")?.as_deref() {
            None | Some("agent") => Scope::Agent,
            Some("system") => Scope::System,
            Some(other) => {
                return Err(format!(
                    "restart: \"scope\" must be \"agent\" or \"system\", not {other:?}"
                ));
            }
        };
        Ok(Verb::Restart {
            scope,
            when: take_when(a, "restart")?,
        })
    }),
    ("state", |_| Ok(Verb::State)),
];

/// Every verb of the scheme.
pub fn verbs() -> impl Iterator<Item = &'static str> {
    TABLE.iter().map(|(name, _)| *name)
}

fn take_int(args: &mut Args, key: &str, verb: &str) -> Result<i64, String> {
    match args.remove(key) {
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| format!("{verb}: \"{key}\" must be a whole number, not {n}")),
        Some(other) => Err(format!("{verb}: \"{key}\" must be a number, not {other}")),
        None => Err(format!("{verb}: missing argument \"{key}\"")),
    }
}

fn take_positive(args: &mut Args, key: &str, verb: &str, what: &str) -> Result<i64, String> {
    let v = take_int(args, key, verb)?;
    if v <= 0 {
        return Err(format!(
            "{verb}: \"{key}\" must be a positive {what}, not {v}"
        ));
    }
    Ok(v)
}

fn take_str(args: &mut Args, key: &str, verb: &str) -> Result<Option<String>, String> {
    match args.remove(key) {
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!("{verb}: \"{key}\" must be a string, not {other}")),
        None => Ok(None),
    }
}

/// `"when"`: `"idle"` (the default) or `"now"`.
fn take_when(args: &mut Args, verb: &str) -> Result<When, String> {
    match take_str(args, "when", verb)?.as_deref() {
        None | Some("idle") => Ok(When::Idle),
        Some("now") => Ok(When::Now),
        Some(other) => Err(format!(
            "{verb}: \"when\" must be \"idle\" or \"now\", not {other:?}"
        )),
    }
}

fn take_bool(args: &mut Args, key: &str, verb: &str) -> Result<Option<bool>, String> {
    match args.remove(key) {
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(other) => Err(format!(
            "{verb}: \"{key}\" must be true or false, not {other}"
        )),
        None => Ok(None),
    }
}

/// The payload as an argument map: a JSON object, or nothing at all.
fn arguments(payload: &[u8]) -> Result<Args, String> {
    let text = std::str::from_utf8(payload).map_err(|_| "payload is not UTF-8 text".to_string())?;
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(format!(
            "payload must be a JSON object (or empty), not {other}"
        )),
        Err(e) => Err(format!("payload is not valid JSON: {e}")),
    }
}

fn take_id(args: &mut Args) -> Result<Value, String> {
    match args.remove("id") {
        None | Some(Value::Null) => Ok(Value::Null),
        Some(v @ (Value::String(_) | Value::Number(_))) => Ok(v),
        Some(other) => Err(format!("\"id\" must be a string or number, not {other}")),
    }
}

/// Above this a `"ts"` is read as milliseconds (10^11 seconds is the year 5138).
const TS_MS_ABOVE: f64 = 1e11;

/// `"ts"`: Unix time in seconds (fractions allowed) or milliseconds, returned in seconds.
fn take_ts(args: &mut Args) -> Result<Option<f64>, String> {
    match args.remove("ts") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(t) if t.is_finite() && t > 0.0 => {
                Ok(Some(if t > TS_MS_ABOVE { t / 1000.0 } else { t }))
            }
            _ => Err(format!("\"ts\" must be a positive Unix time, not {n}")),
        },
        Some(other) => Err(format!(
            "\"ts\" must be Unix time in seconds or milliseconds, not {other}"
        )),
    }
}

fn take_target(args: &mut Args, fleet: bool) -> Result<Option<Selector>, String> {
    match args.remove("target") {
        None => Ok(None),
        Some(v) if fleet => serde_json::from_value::<Selector>(v)
            .map(Some)
            .map_err(|e| format!("\"target\": {e}")),
        Some(_) => Err(
            "\"target\" only applies to fleet commands (<prefix>/all, group/<g> or site/<s>/cmd/…)"
                .into(),
        ),
    }
}

/// Parses one command message.
pub fn parse(verb: &str, payload: &[u8], fleet: bool) -> Result<Request, Refused> {
    let refuse = |id: &Value, error: String| Refused {
        id: id.clone(),
        error,
    };
    let mut args = arguments(payload).map_err(|e| refuse(&Value::Null, e))?;
    let id = take_id(&mut args).map_err(|e| refuse(&Value::Null, e))?;
    let target = take_target(&mut args, fleet).map_err(|e| refuse(&id, e))?;
    let sent_at = take_ts(&mut args).map_err(|e| refuse(&id, e))?;
    let Some((_, read)) = TABLE.iter().find(|(name, _)| *name == verb) else {
        let known: Vec<&str> = verbs().collect();
        return Err(refuse(
            &id,
            format!("unknown verb {verb:?} (known: {})", known.join(", ")),
        ));
    };
    let parsed = read(&mut args).map_err(|e| refuse(&id, e))?;
    if let Some(extra) = args.keys().next() {
        return Err(refuse(&id, format!("{verb}: unknown argument {extra:?}")));
    }
    Ok(Request {
        id,
        verb: parsed,
        target,
        sent_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(verb: &str, payload: &str) -> Request {
        parse(verb, payload.as_bytes(), false).unwrap()
    }

    fn bad(verb: &str, payload: &[u8], fleet: bool) -> String {
        parse(verb, payload, fleet).unwrap_err().error
    }

    #[test]
    fn every_verb_maps_to_its_command() {
        assert_eq!(ok("mute", "").verb, Verb::Core(Command::Mute));
        assert_eq!(
            ok("mute", r#"{"mute":false}"#).verb,
            Verb::Core(Command::Unmute)
        );
        assert_eq!(ok("unmute", "{}").verb, Verb::Core(Command::Unmute));
        assert_eq!(ok("camera_on", "").verb, Verb::Core(Command::CameraOn));
        assert_eq!(
            ok("camera_on", r#"{"on":false}"#).verb,
            Verb::Core(Command::CameraOff)
        );
        assert_eq!(ok("camera_off", "").verb, Verb::Core(Command::CameraOff));
        assert_eq!(ok("hangup", "").verb, Verb::Core(Command::Hangup));
        assert_eq!(ok("answer", "").verb, Verb::Core(Command::Answer));
        assert_eq!(ok("reject", "").verb, Verb::Core(Command::Reject));
        assert_eq!(ok("leave", "").verb, Verb::Core(Command::Leave));
        assert_eq!(ok("share_start", "").verb, Verb::Core(Command::ShareStart));
        assert_eq!(ok("share_stop", "").verb, Verb::Core(Command::ShareStop));
        assert_eq!(
            ok("dial", r#"{"user":7}"#).verb,
            Verb::Core(Command::Dial { user: UserId(7) })
        );
        assert_eq!(
            ok("join", r#"{"room":1000}"#).verb,
            Verb::Core(Command::Join { room: RoomId(1000) })
        );
        assert_eq!(
            ok("volume", r#"{"level":40}"#).verb,
            Verb::Core(Command::Volume { level: 40 })
        );
        assert_eq!(ok("reload", "").verb, Verb::Reload);
        assert_eq!(ok("state", "").verb, Verb::State);
        assert_eq!(
            ok("restart", "").verb,
            Verb::Restart {
                scope: Scope::Agent,
                when: When::Idle
            }
        );
        assert_eq!(
            ok("restart", r#"{"scope":"system","when":"now"}"#).verb,
            Verb::Restart {
                scope: Scope::System,
                when: When::Now
            }
        );
    }

    #[test]
    fn ids_are_echoed() {
        assert_eq!(ok("mute", r#"{"id":"abc"}"#).id, json!("abc"));
        assert_eq!(ok("mute", r#"{"id":12}"#).id, json!(12));
        let r = parse("volume", br#"{"id":"x","level":500}"#, false).unwrap_err();
        assert_eq!(r.id, json!("x"), "errors echo the id too");
    }

    /// Malformed commands of many kinds; each error names the problem.
    #[test]
    fn malformed_commands_are_refused_with_a_reason() {
        let cases: &[(&str, &[u8], bool, &str)] = &[
            ("mute", b"\xff\xfe", false, "UTF-8"),
            ("mute", b"{", false, "not valid JSON"),
            ("mute", b"[1,2]", false, "JSON object"),
            ("mute", b"42", false, "JSON object"),
            ("mute", b"\"mute\"", false, "JSON object"),
            ("mute", b"null", false, "JSON object"),
            ("explode", b"", false, "unknown verb"),
            ("MUTE", b"", false, "unknown verb"),
            ("mute", br#"{"id":{"a":1}}"#, false, "\"id\""),
            ("mute", br#"{"mute":"yes"}"#, false, "true or false"),
            ("mute", br#"{"volume":3}"#, false, "unknown argument"),
            ("dial", b"", false, "missing argument \"user\""),
            ("dial", br#"{"user":"alice"}"#, false, "must be a number"),
            ("dial", br#"{"user":1.5}"#, false, "whole number"),
            ("dial", br#"{"user":-3}"#, false, "positive"),
            ("dial", br#"{"user":7,"room":3}"#, false, "unknown argument"),
            ("join", b"{}", false, "missing argument \"room\""),
            ("join", br#"{"room":0}"#, false, "positive"),
            ("volume", b"{}", false, "missing argument \"level\""),
            ("volume", br#"{"level":101}"#, false, "0-100"),
            ("volume", br#"{"level":-1}"#, false, "0-100"),
            ("volume", br#"{"level":true}"#, false, "must be a number"),
            ("camera_on", br#"{"on":1}"#, false, "true or false"),
            (
                "restart",
                br#"{"scope":"galaxy"}"#,
                false,
                "\"agent\" or \"system\"",
            ),
            (
                "restart",
                br#"{"when":"later"}"#,
                false,
                "\"idle\" or \"now\"",
            ),
            ("restart", br#"{"when":1}"#, false, "must be a string"),
            ("hangup", br#"{"target":{"ids":["x"]}}"#, false, "fleet"),
            ("hangup", br#"{"target":{"ids":"x"}}"#, true, "\"target\""),
            (
                "hangup",
                br#"{"target":{"colour":"red"}}"#,
                true,
                "\"target\"",
            ),
        ];
        assert!(cases.len() >= 20);
        for (verb, payload, fleet, expect) in cases {
            let e = bad(verb, payload, *fleet);
            assert!(
                e.contains(expect),
                "{verb} {:?}: error {e:?} should mention {expect:?}",
                String::from_utf8_lossy(payload)
            );
        }
    }

    #[test]
    fn a_send_time_is_read_in_seconds_or_milliseconds() {
        assert_eq!(ok("mute", "").sent_at, None);
        assert_eq!(ok("mute", r#"{"ts":1700000000}"#).sent_at, Some(1.7e9));
        assert_eq!(
            ok("mute", r#"{"ts":1700000000.5}"#).sent_at,
            Some(1_700_000_000.5)
        );
        assert_eq!(
            ok("mute", r#"{"ts":1700000000250}"#).sent_at,
            Some(1_700_000_000.25)
        );
        for bad_ts in [
            r#"{"ts":"now"}"#,
            r#"{"ts":-5}"#,
            r#"{"ts":0}"#,
            r#"{"ts":[1]}"#,
        ] {
            let e = bad("mute", bad_ts.as_bytes(), false);
            assert!(e.contains("\"ts\""), "{bad_ts}: {e}");
        }
    }

    #[test]
    fn selectors_match_by_id_group_or_site() {
        let s = Selector {
            ids: vec!["a".into()],
            group: Some("lobby".into()),
            site: None,
        };
        assert!(s.selects("a", None, None));
        assert!(s.selects("b", Some("lobby"), None));
        assert!(!s.selects("c", Some("boardroom"), Some("berlin")));
    }
}
