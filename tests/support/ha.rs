//! Home Assistant's view of discovery configs, for tests: the rules of one release (from
//! `tests/fixtures/ha/<release>.json`, read out of that release's MQTT integration) and value
//! templates rendered the way its template engine treats undefined values.

use minijinja::{Environment, UndefinedBehavior, context};
use serde_json::{Map, Value};

/// Releases whose rules are in tests/fixtures/ha: the oldest and the newest supported.
pub const RELEASES: [&str; 2] = ["2024.3.3", "2026.2.3"];

/// One release's discovery rules.
pub struct Rules {
    pub release: String,
    r: Value,
}

/// What a release makes of one config.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Reasons the release would reject the config or log a warning about it.
    pub errors: Vec<String>,
    /// Keys the release does not know and removes silently.
    pub dropped: Vec<String>,
    /// Keys the release accepts but has deprecated.
    pub deprecated: Vec<String>,
}

impl Rules {
    pub fn load(release: &str) -> Rules {
        let path = format!(
            "{}/tests/fixtures/ha/{release}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let r: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(r["release"], release, "{path}");
        Rules {
            release: release.into(),
            r,
        }
    }

    pub fn device_based_discovery(&self) -> bool {
        self.r["device_based_discovery"] == true
    }

    /// Checks a config published on `topic` (`<prefix>/<component>/<node>/<object>/config`).
    pub fn check(&self, topic: &str, payload: &Value) -> Verdict {
        let mut v = Verdict::default();
        let parts: Vec<&str> = topic.split('/').collect();
        let ok_id = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if parts.len() != 5 || parts[4] != "config" || !ok_id(parts[2]) || !ok_id(parts[3]) {
            v.errors.push(format!("{topic}: not a discovery topic"));
            return v;
        }
        let component = parts[1];
        let Some(platform) = self.r["platforms"].get(component) else {
            v.errors
                .push(format!("{component}: not a platform in the rules"));
            return v;
        };
        let Some(obj) = payload.as_object() else {
            v.errors.push("the config is not a JSON object".into());
            return v;
        };
        let cfg = expand(obj, &self.r["abbreviations"]);
        for key in keys(&platform["required"]) {
            if !cfg.contains_key(&key) {
                v.errors.push(format!("{key}: required"));
            }
        }
        for (key, value) in &cfg {
            let kind = [
                &platform["required"],
                &platform["optional"],
                &self.r["common"],
            ]
            .iter()
            .find_map(|m| m.get(key))
            .and_then(Value::as_str);
            match kind {
                None => v.dropped.push(key.clone()),
                Some(kind) => self.check_value(&mut v.errors, component, key, kind, value),
            }
            if self.r["deprecated_keys"]
                .as_array()
                .unwrap()
                .contains(&Value::from(key.as_str()))
            {
                v.deprecated.push(key.clone());
            }
        }
        self.sensor_rules(&mut v.errors, component, &cfg);
        if cfg.contains_key("availability_topic") && cfg.contains_key("availability") {
            v.errors
                .push("availability_topic and availability exclude each other".into());
        }
        v
    }

    fn sensor_rules(&self, errors: &mut Vec<String>, component: &str, cfg: &Map<String, Value>) {
        if component != "sensor" {
            return;
        }
        if let Some(cat) = cfg.get("entity_category")
            && self.r["sensor_entity_category_not"]
                .as_array()
                .unwrap()
                .contains(cat)
        {
            errors.push(format!("a sensor cannot have entity_category {cat}"));
        }
        if let (Some(Value::String(dc)), Some(unit)) =
            (cfg.get("device_class"), cfg.get("unit_of_measurement"))
            && let Some(units) = self.r["sensor_units"].get(dc)
            && !units.as_array().unwrap().contains(unit)
        {
            errors.push(format!("unit {unit} is not one of {units} for {dc}"));
        }
    }

    fn check_value(&self, e: &mut Vec<String>, component: &str, key: &str, kind: &str, v: &Value) {
        let bad = |why: &str| format!("{key}: {why}, got {v}");
        let ok = match kind {
            "string" => v.is_string(),
            "string_or_null" => v.is_string() || v.is_null(),
            "bool" => v.is_boolean(),
            "positive_int" => v.is_u64(),
            "qos" => v.as_u64().is_some_and(|q| q <= 2),
            "template" => v.as_str().is_some_and(|t| compiles(t).is_ok()),
            "subscribe_topic" => v.as_str().is_some_and(subscribe_topic),
            "publish_topic" => v
                .as_str()
                .is_some_and(|t| !t.is_empty() && !t.contains(['+', '#'])),
            "string_list" => v
                .as_array()
                .is_some_and(|a| !a.is_empty() && a.iter().all(Value::is_string)),
            "icon" => v.as_str().is_some_and(|i| i.split_once(':').is_some()),
            "url" => v.as_str().is_some_and(url),
            "device" => return self.check_device(e, v),
            "origin" => return self.check_origin(e, v),
            "availability_list" => v.is_array(),
            enumeration => {
                let name = enumeration.strip_prefix("enum:").unwrap_or(enumeration);
                let allowed = &self.r["enums"][name];
                assert!(allowed.is_array(), "rules lack {name} ({component})");
                allowed.as_array().unwrap().contains(v)
            }
        };
        if !ok {
            e.push(bad(&format!("not a valid {kind}")));
        }
    }

    fn check_device(&self, e: &mut Vec<String>, v: &Value) {
        let Some(d) = v.as_object() else {
            return e.push("device: not an object".into());
        };
        let d = expand(d, &self.r["device_abbreviations"]);
        let has_id = |k: &str| {
            d.get(k)
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty())
        };
        if !has_id("identifiers") && !has_id("connections") {
            e.push("device: needs identifiers or connections".into());
        }
        for (k, val) in &d {
            match self.r["device"][k].as_str() {
                None => e.push(format!("device.{k}: not a device key")),
                Some("string") if !val.is_string() => e.push(format!("device.{k}: not a string")),
                Some("url") if !val.as_str().is_some_and(url) => {
                    e.push(format!("device.{k}: not a configuration URL"))
                }
                Some("string_list")
                    if !val
                        .as_array()
                        .is_some_and(|a| a.iter().all(Value::is_string)) =>
                {
                    e.push(format!("device.{k}: not a list of strings"))
                }
                _ => {}
            }
        }
    }

    fn check_origin(&self, e: &mut Vec<String>, v: &Value) {
        let Some(o) = v.as_object() else {
            return e.push("origin: not an object".into());
        };
        let o = expand(o, &self.r["origin_abbreviations"]);
        if !o.get("name").is_some_and(Value::is_string) {
            e.push("origin.name: required".into());
        }
        for k in o.keys() {
            if self.r["origin"].get(k).is_none() {
                e.push(format!("origin.{k}: not an origin key"));
            }
        }
    }
}

fn keys(v: &Value) -> Vec<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

/// Long key names for abbreviated ones, as discovery does before validating.
fn expand(obj: &Map<String, Value>, table: &Value) -> Map<String, Value> {
    obj.iter()
        .map(|(k, v)| {
            let long = table.get(k).and_then(Value::as_str).unwrap_or(k);
            (long.to_string(), v.clone())
        })
        .collect()
}

fn url(u: &str) -> bool {
    ["http://", "https://", "homeassistant://"]
        .iter()
        .any(|s| u.strip_prefix(s).is_some_and(|rest| !rest.is_empty()))
}

/// A topic that can be subscribed to: non-empty, `+` and `#` only as whole levels, `#` last.
fn subscribe_topic(t: &str) -> bool {
    let levels: Vec<&str> = t.split('/').collect();
    !t.is_empty()
        && levels.iter().enumerate().all(|(i, l)| {
            (*l == "#" && i == levels.len() - 1) || *l == "+" || !l.contains(['+', '#'])
        })
}

fn env() -> Environment<'static> {
    let mut env = Environment::new();
    // Home Assistant raises for attribute access on an undefined value and logs a warning for
    // an undefined value printed or tested for truth: strict mode fails on both.
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env
}

fn compiles(template: &str) -> Result<(), String> {
    env()
        .template_from_str(template)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Renders a value template as Home Assistant does for a received payload: `value_json` only
/// when the payload is JSON, `value` always, `this` the entity's state object.
pub fn render(template: &str, payload: &str, this_state: &str) -> Result<String, String> {
    let env = env();
    let tpl = env.template_from_str(template).map_err(|e| e.to_string())?;
    let this = context! { state => this_state };
    let out = match serde_json::from_str::<Value>(payload) {
        Ok(json) => tpl.render(context! { value => payload, value_json => json, this => this }),
        Err(_) => tpl.render(context! { value => payload, this => this }),
    };
    out.map(|s| s.trim().to_string())
        .map_err(|e| format!("{e:#}"))
}
