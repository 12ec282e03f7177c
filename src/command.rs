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
}

/// A refused command: the reply says why.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    /// The `id` to echo, if one could be read.
    pub id: Value,
    /// What is wrong.
    pub error: String,
}

/// Every verb of the scheme.
pub const VERBS: &[&str] = &[
    "mute",
    "unmute",
    "camera_on",
    "camera_off",
    "hangup",
    "answer",
    "reject",
    "dial",
    "join",
    "leave",
    "volume",
    "share_start",
    "share_stop",
    "reload",
    "state",
];

fn take_int(args: &mut Map<String, Value>, key: &str, verb: &str) -> Result<i64, String> {
    match args.remove(key) {
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| format!("{verb}: \"{key}\" must be a whole number, not {n}")),
        Some(other) => Err(format!("{verb}: \"{key}\" must be a number, not {other}")),
        None => Err(format!("{verb}: missing argument \"{key}\"")),
    }
}

fn take_bool(args: &mut Map<String, Value>, key: &str, verb: &str) -> Result<Option<bool>, String> {
    match args.remove(key) {
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(other) => Err(format!(
            "{verb}: \"{key}\" must be true or false, not {other}"
        )),
        None => Ok(None),
    }
}

/// Parses one command message.
pub fn parse(verb: &str, payload: &[u8], fleet: bool) -> Result<Request, Refused> {
    let refuse = |id: &Value, error: String| Refused {
        id: id.clone(),
        error,
    };
    let text = std::str::from_utf8(payload)
        .map_err(|_| refuse(&Value::Null, "payload is not UTF-8 text".into()))?;
    let mut args: Map<String, Value> = if text.trim().is_empty() {
        Map::new()
    } else {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(m)) => m,
            Ok(other) => {
                return Err(refuse(
                    &Value::Null,
                    format!("payload must be a JSON object (or empty), not {other}"),
                ));
            }
            Err(e) => {
                return Err(refuse(
                    &Value::Null,
                    format!("payload is not valid JSON: {e}"),
                ));
            }
        }
    };
    let id = match args.remove("id") {
        None | Some(Value::Null) => Value::Null,
        Some(v @ (Value::String(_) | Value::Number(_))) => v,
        Some(other) => {
            return Err(refuse(
                &Value::Null,
                format!("\"id\" must be a string or number, not {other}"),
            ));
        }
    };
    let target = match args.remove("target") {
        None => None,
        Some(v) if fleet => Some(
            serde_json::from_value::<Selector>(v)
                .map_err(|e| refuse(&id, format!("\"target\": {e}")))?,
        ),
        Some(_) => {
            return Err(refuse(
                &id,
                "\"target\" only applies to fleet commands (<prefix>/all/cmd/…)".into(),
            ));
        }
    };
    let v = |c: Command| Verb::Core(c);
    let parsed = match verb {
        "mute" => match take_bool(&mut args, "mute", verb).map_err(|e| refuse(&id, e))? {
            Some(false) => v(Command::Unmute),
            _ => v(Command::Mute),
        },
        "unmute" => v(Command::Unmute),
        "camera_on" => match take_bool(&mut args, "on", verb).map_err(|e| refuse(&id, e))? {
            Some(false) => v(Command::CameraOff),
            _ => v(Command::CameraOn),
        },
        "camera_off" => v(Command::CameraOff),
        "hangup" => v(Command::Hangup),
        "answer" => v(Command::Answer),
        "reject" => v(Command::Reject),
        "leave" => v(Command::Leave),
        "share_start" => v(Command::ShareStart),
        "share_stop" => v(Command::ShareStop),
        "dial" => {
            let user = take_int(&mut args, "user", verb).map_err(|e| refuse(&id, e))?;
            if user <= 0 {
                return Err(refuse(
                    &id,
                    format!("dial: \"user\" must be a positive user id, not {user}"),
                ));
            }
            v(Command::Dial { user: UserId(user) })
        }
        "join" => {
            let room = take_int(&mut args, "room", verb).map_err(|e| refuse(&id, e))?;
            if room <= 0 {
                return Err(refuse(
                    &id,
                    format!("join: \"room\" must be a positive room id, not {room}"),
                ));
            }
            v(Command::Join { room: RoomId(room) })
        }
        "volume" => {
            let level = take_int(&mut args, "level", verb).map_err(|e| refuse(&id, e))?;
            let level = u8::try_from(level)
                .ok()
                .filter(|l| *l <= 100)
                .ok_or_else(|| {
                    refuse(&id, format!("volume: \"level\" must be 0-100, not {level}"))
                })?;
            v(Command::Volume { level })
        }
        "reload" => Verb::Reload,
        "state" => Verb::State,
        other => {
            return Err(refuse(
                &id,
                format!("unknown verb {other:?} (known: {})", VERBS.join(", ")),
            ));
        }
    };
    if let Some(extra) = args.keys().next() {
        return Err(refuse(&id, format!("{verb}: unknown argument {extra:?}")));
    }
    Ok(Request {
        id,
        verb: parsed,
        target,
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
