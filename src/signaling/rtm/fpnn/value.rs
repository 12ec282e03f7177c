//! Small helpers for reading and building the msgpack maps FPNN bodies are made of.

use rmpv::Value;

/// The value under string key `key` in map `v`; `None` if `v` is not a map or lacks the key.
/// Non-string keys are skipped, as FPNN's readers only look up string keys.
pub fn field<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    let Value::Map(pairs) = v else {
        return None;
    };
    pairs
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, val)| val)
}

/// An integer of any msgpack width that fits `i64` (uids and mids are int64 in RTM).
pub fn as_i64(v: &Value) -> Option<i64> {
    v.as_i64()
}

/// An integer of any msgpack width that fits `u64` (negative values give `None`).
pub fn as_u64(v: &Value) -> Option<u64> {
    v.as_u64()
}

/// A msgpack str that is valid UTF-8; `None` for bin and for str holding invalid UTF-8.
pub fn as_str(v: &Value) -> Option<&str> {
    v.as_str()
}

/// Raw bytes from either bin or str (FPNN peers send byte fields as either; a str is returned
/// even when it is not valid UTF-8).
pub fn as_bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::Binary(b) => Some(b),
        Value::String(s) => Some(s.as_bytes()),
        _ => None,
    }
}

/// A msgpack boolean; integers are not taken as booleans, as FPNN's readers do not.
pub fn as_bool(v: &Value) -> Option<bool> {
    v.as_bool()
}

/// Builds a map with string keys, in the order given (msgpack keeps the order on the wire).
pub fn map<'a>(pairs: impl IntoIterator<Item = (&'a str, Value)>) -> Value {
    Value::Map(
        pairs
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect(),
    )
}

/// The empty map `{}`, the body of `*ping` and of the answer every push expects.
pub fn empty_map() -> Value {
    Value::Map(Vec::new())
}
