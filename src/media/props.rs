//! Typed element properties from profile data: every value is checked against the element's
//! own property specification (type, range, enum names) before it is set, and a mistake names
//! the element, the property and the accepted values.

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use thiserror::Error;

/// A property that could not be set.
#[derive(Debug, Clone, Error)]
#[error("element {element}: property {property:?}: {message}")]
pub struct PropertyError {
    /// Element factory.
    pub element: String,
    /// Property name.
    pub property: String,
    /// What is wrong.
    pub message: String,
}

fn err(element: &gst::Element, property: &str, message: impl Into<String>) -> PropertyError {
    PropertyError {
        element: element
            .factory()
            .map(|f| f.name().to_string())
            .unwrap_or_else(|| element.name().to_string()),
        property: property.into(),
        message: message.into(),
    }
}

/// Sets `field` of `element`'s structure-valued property `property` (such as a V4L2
/// element's `extra-controls`) to the integer `value`, keeping its other fields.
pub fn set_field(
    element: &gst::Element,
    property: &str,
    field: &str,
    value: i64,
) -> Result<(), PropertyError> {
    let v = i32::try_from(value)
        .map_err(|_| err(element, property, format!("{field}={value} is too large")))?;
    edit_structure(element, property, |s| s.set(field, v))
}

/// Changes `element`'s structure-valued property `property` with `edit`, keeping the fields it
/// does not touch. Edits are one at a time across threads: a V4L2 encoder's `extra-controls`
/// is changed by the bitrate control and by a key-frame request, and a read-modify-write of
/// one must not undo the other's.
pub fn edit_structure(
    element: &gst::Element,
    property: &str,
    edit: impl FnOnce(&mut gst::Structure),
) -> Result<(), PropertyError> {
    static EDITS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let Some(pspec) = element.find_property(property) else {
        return Err(err(element, property, "no such property"));
    };
    if pspec.value_type() != gst::Structure::static_type() {
        return Err(err(element, property, "is not a structure"));
    }
    let _one_at_a_time = EDITS.lock().unwrap_or_else(|p| p.into_inner());
    let mut s = element
        .property::<Option<gst::Structure>>(property)
        .unwrap_or_else(|| gst::Structure::new_empty("controls"));
    edit(&mut s);
    element.set_property(property, s);
    Ok(())
}

/// Converts `value` to the type of `element`'s property `name`, checking range and names.
pub fn to_value(
    element: &gst::Element,
    name: &str,
    value: &toml::Value,
) -> Result<glib::Value, PropertyError> {
    // Long on purpose, for now: a split of this module (commit 1dab2ee) lost a call's media in
    // the fifty-sequential-calls test (2 runs of 3) and was backed out; split it again with that
    // test run several times.
    let Some(pspec) = element.find_property(name) else {
        let mut names: Vec<String> = element
            .list_properties()
            .iter()
            .filter(|p| p.flags().contains(glib::ParamFlags::WRITABLE))
            .map(|p| p.name().to_string())
            .collect();
        names.sort();
        return Err(err(
            element,
            name,
            format!("no such property (writable ones: {})", names.join(", ")),
        ));
    };
    if !pspec.flags().contains(glib::ParamFlags::WRITABLE) {
        return Err(err(element, name, "is read-only"));
    }
    let t = pspec.value_type();
    macro_rules! ranged {
        ($spec:ty, $rust:ty) => {
            if let Some(p) = pspec.downcast_ref::<$spec>() {
                let v = match value {
                    toml::Value::Integer(i) => *i as i128,
                    other => {
                        return Err(err(
                            element,
                            name,
                            format!("expects an integer, not {other}"),
                        ));
                    }
                };
                let (min, max) = (p.minimum() as i128, p.maximum() as i128);
                if v < min || v > max {
                    return Err(err(element, name, format!("{v} is outside {min}..={max}")));
                }
                return Ok((v as $rust).to_value());
            }
        };
    }
    ranged!(glib::ParamSpecInt, i32);
    ranged!(glib::ParamSpecUInt, u32);
    ranged!(glib::ParamSpecInt64, i64);
    ranged!(glib::ParamSpecUInt64, u64);
    ranged!(glib::ParamSpecLong, glib::ffi::glong);
    ranged!(glib::ParamSpecULong, glib::ffi::gulong);
    if let Some(p) = pspec.downcast_ref::<glib::ParamSpecDouble>() {
        let v = number(element, name, value)?;
        if v < p.minimum() || v > p.maximum() {
            return Err(err(
                element,
                name,
                format!("{v} is outside {}..={}", p.minimum(), p.maximum()),
            ));
        }
        return Ok(v.to_value());
    }
    if let Some(p) = pspec.downcast_ref::<glib::ParamSpecFloat>() {
        let v = number(element, name, value)? as f32;
        if v < p.minimum() || v > p.maximum() {
            return Err(err(
                element,
                name,
                format!("{v} is outside {}..={}", p.minimum(), p.maximum()),
            ));
        }
        return Ok(v.to_value());
    }
    if t == glib::Type::BOOL {
        return match value {
            toml::Value::Boolean(b) => Ok(b.to_value()),
            other => Err(err(
                element,
                name,
                format!("expects true or false, not {other}"),
            )),
        };
    }
    if t == glib::Type::STRING {
        return match value {
            toml::Value::String(s) => Ok(s.to_value()),
            other => Err(err(element, name, format!("expects a string, not {other}"))),
        };
    }
    if t.is_a(glib::Type::ENUM) {
        let class = glib::EnumClass::with_type(t)
            .ok_or_else(|| err(element, name, "enum type without a class"))?;
        let found = match value {
            toml::Value::String(s) => class.value_by_nick(s).or_else(|| class.value_by_name(s)),
            toml::Value::Integer(i) => i32::try_from(*i).ok().and_then(|i| class.value(i)),
            _ => None,
        };
        return match found {
            Some(v) => Ok(v.to_value(&class)),
            None => {
                let names: Vec<&str> = class.values().iter().map(|v| v.nick()).collect();
                Err(err(
                    element,
                    name,
                    format!("{value} is not one of {}", names.join(", ")),
                ))
            }
        };
    }
    // Flags, caps, fractions and other GStreamer types: their own string syntax.
    let text = match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        other => {
            return Err(err(
                element,
                name,
                format!("expects a {} written as a string, not {other}", t.name()),
            ));
        }
    };
    glib::Value::deserialize(&text, t).map_err(|_| {
        err(
            element,
            name,
            format!("{text:?} is not a valid {}", t.name()),
        )
    })
}

fn number(element: &gst::Element, name: &str, value: &toml::Value) -> Result<f64, PropertyError> {
    match value {
        toml::Value::Integer(i) => Ok(*i as f64),
        toml::Value::Float(f) => Ok(*f),
        other => Err(err(element, name, format!("expects a number, not {other}"))),
    }
}

/// Sets every property of `props` on `element`, or none if one is wrong.
pub fn apply<'a>(
    element: &gst::Element,
    props: impl IntoIterator<Item = (&'a String, &'a toml::Value)>,
) -> Result<(), PropertyError> {
    let mut values = Vec::new();
    for (k, v) in props {
        values.push((k.as_str(), to_value(element, k, v)?));
    }
    for (k, v) in values {
        element.set_property_from_value(k, &v);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x264() -> gst::Element {
        gst::init().unwrap();
        gst::ElementFactory::make("x264enc").build().unwrap()
    }

    #[test]
    fn typed_values_are_set() {
        let e = x264();
        let props: Vec<(String, toml::Value)> = vec![
            (
                "speed-preset".into(),
                toml::Value::String("ultrafast".into()),
            ),
            ("key-int-max".into(), toml::Value::Integer(60)),
            ("bitrate".into(), toml::Value::Integer(1500)),
            ("byte-stream".into(), toml::Value::Boolean(true)),
            ("tune".into(), toml::Value::String("zerolatency".into())),
        ];
        apply(&e, props.iter().map(|(k, v)| (k, v))).unwrap();
        assert_eq!(e.property::<u32>("bitrate"), 1500);
        assert!(e.property::<bool>("byte-stream"));
    }

    #[test]
    fn mistakes_name_the_element_property_and_accepted_values() {
        let e = x264();
        let bad = |k: &str, v: toml::Value| to_value(&e, k, &v).unwrap_err().to_string();
        let m = bad("speed-preset", toml::Value::String("warp".into()));
        assert!(m.contains("x264enc") && m.contains("ultrafast"), "{m}");
        let m = bad("bitrate", toml::Value::Integer(-5));
        assert!(m.contains("outside"), "{m}");
        let m = bad("bitrat", toml::Value::Integer(5));
        assert!(
            m.contains("no such property") && m.contains("bitrate"),
            "{m}"
        );
        let m = bad("byte-stream", toml::Value::String("yes".into()));
        assert!(m.contains("true or false"), "{m}");
    }
}
