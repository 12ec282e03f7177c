//! The RTCPeer dialect v1 on the wire: frame envelope, bean types and message bodies.
//!
//! Shared by the client adapter and the development room server, so both agree byte for
//! byte. Field names are exactly those of the seed (camelCase, `SID`, `pictureurl`, …).
//! Every frame is one JSON object with `module` and `method`; replies echo them plus
//! `result` and the request's `reqId`.
//!
//! This file holds the envelope (parsing, errors, serializing); the bodies live in
//! `beans` (the seed's objects), `account` (HTTP login) and `messages` (control-socket
//! messages by module), all re-exported here so users name them `wire::X`.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use thiserror::Error;

mod account;
mod beans;
mod messages;

/// Frames above this size are refused (dialect §1).
pub const MAX_FRAME: usize = 64 * 1024;

/// `result` codes of the dialect.
pub mod code {
    /// Success.
    pub const OK: i64 = 0;
    /// Generic failure (seed: `1` = failed / wrong password / target offline).
    pub const FAILED: i64 = 1;
    /// `EnterRoom` to the older socket of an account that entered again.
    pub const REPLACED: i64 = 9;
    /// Malformed frame, or a missing/mistyped field.
    pub const BAD_REQUEST: i64 = 400;
    /// Not registered, or bad SID.
    pub const UNAUTHORIZED: i64 = 401;
    /// Unknown module/method.
    pub const UNKNOWN: i64 = 404;
}

/// Why a frame could not be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum WireError {
    /// Over [`MAX_FRAME`].
    #[error("frame of {0} bytes is over the 64 KiB limit")]
    TooLarge(usize),
    /// Not JSON.
    #[error("frame is not valid JSON: {0}")]
    Json(String),
    /// JSON, but not an object.
    #[error("frame is not a JSON object")]
    NotObject,
    /// A required field is missing or has the wrong type.
    #[error("field `{field}`: {problem}")]
    Field {
        /// The field's path, e.g. `client.id`.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A module/method this side does not handle.
    #[error("unknown module/method {module}/{method}")]
    Unknown {
        /// `module`.
        module: String,
        /// `method`.
        method: String,
    },
}

impl WireError {
    /// The `result` code a server answers with.
    pub fn code(&self) -> i64 {
        match self {
            WireError::Unknown { .. } => code::UNKNOWN,
            _ => code::BAD_REQUEST,
        }
    }

    /// A short name for rate-limited logging ("once per kind").
    pub fn kind(&self) -> &'static str {
        match self {
            WireError::TooLarge(_) => "too-large",
            WireError::Json(_) => "json",
            WireError::NotObject => "not-object",
            WireError::Field { .. } => "field",
            WireError::Unknown { .. } => "unknown",
        }
    }

    fn field(field: &str, problem: impl Into<String>) -> WireError {
        WireError::Field {
            field: field.to_string(),
            problem: problem.into(),
        }
    }
}

/// A parsed frame: routing fields plus the rest of the object.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// `module`.
    pub module: String,
    /// `method`.
    pub method: String,
    /// `reqId`, kept as sent so a reply echoes it exactly.
    pub req_id: Option<Value>,
    /// Every field, including the routing ones.
    pub body: Map<String, Value>,
}

impl Envelope {
    /// Parses one text frame.
    pub fn parse(text: &str) -> Result<Envelope, WireError> {
        if text.len() > MAX_FRAME {
            return Err(WireError::TooLarge(text.len()));
        }
        let value: Value =
            serde_json::from_str(text).map_err(|e| WireError::Json(e.to_string()))?;
        let Value::Object(body) = value else {
            return Err(WireError::NotObject);
        };
        let get = |k: &str| match body.get(k) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(WireError::field(k, "must be a string")),
            None => Err(WireError::field(k, "missing")),
        };
        let module = get("module")?;
        let method = get("method")?;
        let req_id = body.get("reqId").filter(|v| !v.is_null()).cloned();
        Ok(Envelope {
            module,
            method,
            req_id,
            body,
        })
    }

    /// `(module, method)` for matching.
    pub fn route(&self) -> (&str, &str) {
        (&self.module, &self.method)
    }

    /// The `result` field, if present and an integer.
    pub fn result(&self) -> Option<i64> {
        self.body.get("result").and_then(Value::as_i64)
    }

    /// The `message` field, if present.
    pub fn message(&self) -> Option<&str> {
        self.body.get("message").and_then(Value::as_str)
    }

    /// Reads the body as `T`; errors name the offending field.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, WireError> {
        let value = Value::Object(self.body.clone());
        serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            // serde reports a missing field at its parent; name the field itself.
            if let Some(rest) = inner.strip_prefix("missing field `") {
                let name = rest.split('`').next().unwrap_or(rest);
                let field = if path == "." || path.is_empty() {
                    name.to_string()
                } else {
                    format!("{path}.{name}")
                };
                return WireError::field(&field, "missing");
            }
            WireError::field(if path.is_empty() { "." } else { &path }, inner)
        })
    }
}

/// Serializes one frame: `body`'s fields plus `module`, `method` and `reqId`.
pub fn frame<T: Serialize>(module: &str, method: &str, req_id: Option<&Value>, body: &T) -> String {
    let mut map = match serde_json::to_value(body) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    map.insert("module".into(), Value::String(module.into()));
    map.insert("method".into(), Value::String(method.into()));
    if let Some(id) = req_id {
        map.insert("reqId".into(), id.clone());
    }
    Value::Object(map).to_string()
}

/// A reply frame: `result`, optional `message`, plus `extra`'s fields.
pub fn reply<T: Serialize>(
    module: &str,
    method: &str,
    req_id: Option<&Value>,
    result: i64,
    message: Option<&str>,
    extra: &T,
) -> String {
    let mut map = match serde_json::to_value(extra) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    map.insert("result".into(), Value::from(result));
    if let Some(m) = message {
        map.insert("message".into(), Value::String(m.into()));
    }
    frame(module, method, req_id, &map)
}

/// Nothing beyond the envelope.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Empty {}

pub use account::{AccountParams, LoginReply, SignReply};
pub use beans::{Client, Company, Room, User};
pub use messages::{
    CallMsg, Chat, ClientPush, Enter, EnterReply, FROM_SUPER, FinishPush, InviteReply, MediaBye,
    MediaCandidate, MediaQuality, MediaSdp, MemberTalking, MuteAll, MuteMsg, NewAppRoom,
    NewAppRoomReply, PrivateChat, Register, RoomRef, ShareScreen, UpdateClientName,
    UpdateMeetingName, UpdateVideo, UserRoom, event,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_module_method_and_req_id() {
        let f = frame(
            "call",
            "doRegister",
            Some(&Value::from("r1")),
            &Register {
                sid: "S".into(),
                user_id: 5,
                device_type: Some("tv".into()),
            },
        );
        let v: Value = serde_json::from_str(&f).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"module":"call","method":"doRegister","reqId":"r1","SID":"S","userId":5,"deviceType":"tv"})
        );
    }

    #[test]
    fn missing_and_mistyped_fields_are_named() {
        let env =
            Envelope::parse(r#"{"module":"meeting","method":"enter","roomId":"x","roomType":2}"#)
                .unwrap();
        let err = env.decode::<Enter>().unwrap_err();
        assert_eq!(err.to_string().split(':').next().unwrap(), "field `roomId`");
        let env =
            Envelope::parse(r#"{"module":"meeting","method":"enter","roomId":1,"roomType":2}"#)
                .unwrap();
        assert_eq!(
            env.decode::<Enter>().unwrap_err(),
            WireError::Field {
                field: "userId".into(),
                problem: "missing".into()
            }
        );
        let env = Envelope::parse(
            r#"{"module":"meeting","method":"EnterRoom","roomId":1,"client":{"name":"x"}}"#,
        )
        .unwrap();
        match env.decode::<ClientPush>().unwrap_err() {
            WireError::Field { field, .. } => assert_eq!(field, "client.id"),
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn envelopes_refuse_what_is_not_a_frame() {
        assert!(matches!(Envelope::parse("nope"), Err(WireError::Json(_))));
        assert_eq!(Envelope::parse("[1]"), Err(WireError::NotObject));
        assert!(matches!(
            Envelope::parse(r#"{"method":"x"}"#),
            Err(WireError::Field { .. })
        ));
        assert!(matches!(
            Envelope::parse(r#"{"module":1,"method":"x"}"#),
            Err(WireError::Field { .. })
        ));
        let big = format!(
            r#"{{"module":"a","method":"b","x":"{}"}}"#,
            "y".repeat(MAX_FRAME)
        );
        assert!(matches!(Envelope::parse(&big), Err(WireError::TooLarge(_))));
    }

    #[test]
    fn beans_use_the_seeds_field_names() {
        let c = Client {
            id: 1,
            pictureurl: Some("p".into()),
            is_super_moderator: Some(true),
            broad_cast_id: Some(1),
            ..Client::default()
        };
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"id":1,"pictureurl":"p","isSuperModerator":true,"broadCastId":1})
        );
        let r = Room {
            id: 2,
            super_mode_id: Some(1),
            is_has_pwd: Some(false),
            number_limit: Some(4),
            ..Room::default()
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({"id":2,"superModeId":1,"isHasPwd":false,"numberLimit":4})
        );
        let n = NewAppRoom {
            name: "r".into(),
            number_limit: 2,
            roomtype: 2,
            user_id: 1,
        };
        assert_eq!(
            serde_json::to_value(&n).unwrap(),
            serde_json::json!({"name":"r","numberLimit":2,"roomtype":2,"userId":1})
        );
    }
}
