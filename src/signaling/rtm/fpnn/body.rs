//! Payload codec: msgpack map in and out, JSON in, with depth and value-count limits checked by a
//! non-allocating pre-scan before anything is built.

use rmpv::Value;

use super::frame::DecodeError;
use super::{MAX_DEPTH, MAX_NODES};

/// Appends the msgpack encoding of `body`; `Nil` is the empty body and becomes `{}` (`0x80`).
/// Returns `false`, writing nothing, if `body` is neither a map nor `Nil`.
pub(super) fn write(body: &Value, out: &mut Vec<u8>) -> Result<bool, std::io::Error> {
    match body {
        Value::Nil => out.push(0x80),
        Value::Map(_) => rmpv::encode::write_value(out, body).map_err(std::io::Error::other)?,
        _ => return Ok(false),
    }
    Ok(true)
}

/// Decodes a payload. An empty quest payload is taken as `{}` (the framework accepts it); an
/// empty answer payload is refused, as the framework's decoder refuses it.
pub(super) fn read(payload: &[u8], json: bool, quest: bool) -> Result<Value, DecodeError> {
    if payload.is_empty() {
        return if quest {
            Ok(Value::Map(Vec::new()))
        } else {
            Err(DecodeError::EmptyAnswer)
        };
    }
    let value = if json {
        read_json(payload)?
    } else {
        read_msgpack(payload)?
    };
    if value.is_map() {
        Ok(value)
    } else {
        Err(DecodeError::BodyNotMap)
    }
}

fn read_msgpack(payload: &[u8]) -> Result<Value, DecodeError> {
    scan(payload)?;
    let mut rd = payload;
    // rmpv spends depth on str/bin bodies too; the scan already bounded container depth.
    rmpv::decode::read_value_with_max_depth(&mut rd, 2 * MAX_DEPTH + 8)
        .map_err(|e| DecodeError::Msgpack(e.to_string()))
}

/// What one msgpack marker says about the bytes after it.
enum Shape {
    /// `n` more bytes of data.
    Fixed(usize),
    /// A big-endian length of `len_bytes` bytes, then `extra` + length bytes (ext type byte).
    Sized { len_bytes: usize, extra: usize },
    /// An array or map of `n` children, its count inline in the marker.
    Children(u64),
    /// An array (`pairs = false`) or map whose count follows in `len_bytes` bytes.
    Counted { len_bytes: usize, pairs: bool },
}

fn shape(marker: u8) -> Result<Shape, DecodeError> {
    Ok(match marker {
        0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => Shape::Fixed(0),
        0x80..=0x8f => Shape::Children(2 * u64::from(marker & 0x0f)),
        0x90..=0x9f => Shape::Children(u64::from(marker & 0x0f)),
        0xa0..=0xbf => Shape::Fixed(usize::from(marker & 0x1f)),
        0xc4 | 0xd9 => Shape::Sized {
            len_bytes: 1,
            extra: 0,
        },
        0xc5 | 0xda => Shape::Sized {
            len_bytes: 2,
            extra: 0,
        },
        0xc6 | 0xdb => Shape::Sized {
            len_bytes: 4,
            extra: 0,
        },
        0xc7 => Shape::Sized {
            len_bytes: 1,
            extra: 1,
        },
        0xc8 => Shape::Sized {
            len_bytes: 2,
            extra: 1,
        },
        0xc9 => Shape::Sized {
            len_bytes: 4,
            extra: 1,
        },
        0xcc | 0xd0 => Shape::Fixed(1),
        0xcd | 0xd1 => Shape::Fixed(2),
        0xca | 0xce | 0xd2 => Shape::Fixed(4),
        0xcb | 0xcf | 0xd3 => Shape::Fixed(8),
        0xd4 => Shape::Fixed(2),
        0xd5 => Shape::Fixed(3),
        0xd6 => Shape::Fixed(5),
        0xd7 => Shape::Fixed(9),
        0xd8 => Shape::Fixed(17),
        0xdc => Shape::Counted {
            len_bytes: 2,
            pairs: false,
        },
        0xdd => Shape::Counted {
            len_bytes: 4,
            pairs: false,
        },
        0xde => Shape::Counted {
            len_bytes: 2,
            pairs: true,
        },
        0xdf => Shape::Counted {
            len_bytes: 4,
            pairs: true,
        },
        0xc1 => return Err(DecodeError::Msgpack("reserved marker 0xc1".into())),
    })
}

fn truncated() -> DecodeError {
    DecodeError::Msgpack("truncated".into())
}

/// Reads a big-endian unsigned integer of `n` (≤ 8) bytes at `pos`.
fn be(buf: &[u8], pos: usize, n: usize) -> Result<u64, DecodeError> {
    let bytes = buf.get(pos..pos.saturating_add(n)).ok_or_else(truncated)?;
    Ok(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

/// Skips the value at `pos`: returns where the next value starts and how many children follow.
fn step(buf: &[u8], pos: usize) -> Result<(usize, u64), DecodeError> {
    let marker = *buf.get(pos).ok_or_else(truncated)?;
    let pos = pos + 1;
    let (next, children) = match shape(marker)? {
        Shape::Fixed(n) => (pos.checked_add(n), 0),
        Shape::Sized { len_bytes, extra } => {
            let len = usize::try_from(be(buf, pos, len_bytes)?).map_err(|_| truncated())?;
            (
                pos.checked_add(len_bytes + extra)
                    .and_then(|p| p.checked_add(len)),
                0,
            )
        }
        Shape::Children(n) => (Some(pos), n),
        Shape::Counted { len_bytes, pairs } => {
            let n = be(buf, pos, len_bytes)?;
            (Some(pos + len_bytes), if pairs { 2 * n } else { n })
        }
    };
    match next {
        Some(next) if next <= buf.len() => Ok((next, children)),
        _ => Err(truncated()),
    }
}

/// Walks the payload without allocating values: exactly one value, no trailing bytes, nesting
/// within [`MAX_DEPTH`] and at most [`MAX_NODES`] values.
pub(super) fn scan(buf: &[u8]) -> Result<(), DecodeError> {
    // Children still expected at each open level; the bottom entry is the single top value.
    let mut pending: Vec<u64> = vec![1];
    let (mut pos, mut nodes) = (0usize, 0usize);
    while let Some(top) = pending.last_mut() {
        if *top == 0 {
            pending.pop();
            continue;
        }
        *top -= 1;
        nodes += 1;
        if nodes > MAX_NODES {
            return Err(DecodeError::TooComplex);
        }
        let (next, children) = step(buf, pos)?;
        pos = next;
        if children > 0 {
            if pending.len() > MAX_DEPTH {
                return Err(DecodeError::TooComplex);
            }
            pending.push(children);
        }
    }
    if pos == buf.len() {
        Ok(())
    } else {
        Err(DecodeError::Msgpack(format!(
            "{} trailing bytes",
            buf.len() - pos
        )))
    }
}

fn read_json(payload: &[u8]) -> Result<Value, DecodeError> {
    if payload.len() > super::MAX_JSON_PAYLOAD {
        return Err(DecodeError::PayloadTooLarge {
            size: payload.len(),
            max: super::MAX_JSON_PAYLOAD,
        });
    }
    let json: serde_json::Value =
        serde_json::from_slice(payload).map_err(|e| DecodeError::Json(e.to_string()))?;
    let mut budget = MAX_NODES;
    from_json(json, 0, &mut budget)
}

fn from_json(
    json: serde_json::Value,
    depth: usize,
    budget: &mut usize,
) -> Result<Value, DecodeError> {
    *budget = budget.checked_sub(1).ok_or(DecodeError::TooComplex)?;
    if depth > MAX_DEPTH {
        return Err(DecodeError::TooComplex);
    }
    Ok(match json {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Boolean(b),
        serde_json::Value::Number(n) => json_number(&n),
        serde_json::Value::String(s) => Value::String(s.into()),
        serde_json::Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| from_json(v, depth + 1, budget))
                .collect::<Result<_, _>>()?,
        ),
        serde_json::Value::Object(obj) => Value::Map(
            obj.into_iter()
                .map(|(k, v)| Ok((Value::String(k.into()), from_json(v, depth + 1, budget)?)))
                .collect::<Result<_, DecodeError>>()?,
        ),
    })
}

fn json_number(n: &serde_json::Number) -> Value {
    if let Some(u) = n.as_u64() {
        Value::from(u)
    } else if let Some(i) = n.as_i64() {
        Value::from(i)
    } else {
        Value::F64(n.as_f64().unwrap_or(f64::NAN))
    }
}
