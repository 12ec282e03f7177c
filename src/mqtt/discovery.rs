//! Home Assistant MQTT discovery: retained configs that make a room appear as a device with a
//! microphone-mute switch, a camera switch, a hang-up button, call-state and in-call sensors,
//! a call-event entity (ringing, answered, ended), diagnostic sensors (signaling backend and
//! link, a problem sensor reading the health, agent version, and the board temperature where
//! the board has a thermal zone), all
//! available while the status topic says `online`.
//!
//! One config per entity on `<prefix>/<component>/<id>/<object>/config`: Home Assistant
//! reads device-based discovery (`<prefix>/device/<id>/config` with `cmps`) only from 2024.11,
//! and 2024.3 (the newest that runs on Debian 12's Python) would reject that topic. Entity ids
//! are suggested with `default_entity_id` (HA 2025.10 deprecated `object_id`, 2026.4 drops it);
//! older releases ignore the key and name the entity after the device and entity names.
//! docs/home-assistant.md has the supported releases and how they were checked.
//!
//! Every value template reads the JSON through a `value_json … is defined` guard, so an empty
//! payload (a cleared retained message) or a state without the key renders a harmless result
//! instead of a template error: nothing for switches, binary sensors and numbers (Home
//! Assistant ignores an empty result there) and the entity's own current state for text sensors.

use serde_json::{Value, json};

use super::topics::Topics;

/// The call events the event entity fires; the agent's other events are filtered out by its
/// template.
pub const CALL_EVENT_TYPES: [&str; 3] = ["ringing", "answered", "ended"];

/// Who the device is, for the `device` block.
#[derive(Debug, Clone, Default)]
pub struct DeviceInfo {
    /// Device id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Agent model and media profile.
    pub model: String,
    /// Agent version, from the build.
    pub sw_version: String,
    /// The board's model (device tree), when the board says.
    pub hw_version: Option<String>,
    /// A local page for this device, when there is one.
    pub configuration_url: Option<String>,
}

/// What the device has, which decides the optional entities.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Present {
    /// A readable thermal zone under /sys/class/thermal.
    pub temperature: bool,
}

/// One entity: where its config goes and what it says beyond the common keys.
struct Spec {
    component: &'static str,
    object: &'static str,
    name: &'static str,
    /// Only on devices that have it.
    optional: Option<fn(&Present) -> bool>,
    extra: Value,
}

/// `{% if value_json.<key> is defined %}<then>{% else %}<otherwise>{% endif %}`, safe on an
/// empty payload (no `value_json` at all), a non-object and an object without the key.
pub fn guarded(key: &str, then: &str, otherwise: &str) -> String {
    format!(
        "{{% if value_json is defined and value_json.{key} is defined %}}{then}\
         {{% else %}}{otherwise}{{% endif %}}"
    )
}

/// A text sensor's template: the key's value, or the entity's current state when absent.
fn text(key: &str) -> String {
    guarded(
        key,
        &format!("{{{{ value_json.{key} }}}}"),
        "{{ this.state }}",
    )
}

/// An ON/OFF template: nothing when the key is absent (Home Assistant then keeps the state).
fn on_off(key: &str, cond: &str) -> String {
    guarded(key, &format!("{{{{ 'ON' if {cond} else 'OFF' }}}}"), "")
}

/// The event entity's template: `{"event_type": …}` for a call event, nothing otherwise.
fn call_event_template() -> String {
    let types = CALL_EVENT_TYPES.map(|t| format!("'{t}'")).join(", ");
    format!(
        "{{% if value_json is defined and value_json.event is defined \
         and value_json.event in [{types}] %}}\
         {{\"event_type\": \"{{{{ value_json.event }}}}\"\
         {{% if value_json.reason is defined %}}, \"reason\": \"{{{{ value_json.reason }}}}\"{{% endif %}}\
         {{% if value_json.from is number %}}, \"from\": {{{{ value_json.from }}}}{{% endif %}}}}\
         {{% endif %}}"
    )
}

fn controls(t: &Topics) -> Vec<Spec> {
    let cmd = |verb: &str| format!("{}/{}/cmd/{verb}", t.prefix, t.id);
    let switch = |object, name, verb: &str, payload: &str, key: &str, icon: &str| Spec {
        component: "switch",
        object,
        name,
        optional: None,
        extra: json!({
            "command_topic": cmd(verb),
            "payload_on": format!("{{\"{payload}\":true}}"),
            "payload_off": format!("{{\"{payload}\":false}}"),
            "state_topic": t.state(),
            "value_template": on_off(key, &format!("value_json.{key}")),
            "state_on": "ON",
            "state_off": "OFF",
            "icon": icon,
        }),
    };
    vec![
        switch(
            "mic_mute",
            "Microphone mute",
            "mute",
            "mute",
            "mic_muted",
            "mdi:microphone-off",
        ),
        switch(
            "camera",
            "Camera",
            "camera_on",
            "on",
            "camera_on",
            "mdi:video",
        ),
        Spec {
            component: "button",
            object: "hangup",
            name: "Hang up",
            optional: None,
            extra: json!({
                "command_topic": cmd("hangup"),
                "payload_press": "{}",
                "icon": "mdi:phone-hangup",
            }),
        },
    ]
}

fn call(t: &Topics) -> Vec<Spec> {
    vec![
        Spec {
            component: "sensor",
            object: "call_state",
            name: "Call state",
            optional: None,
            extra: json!({
                "state_topic": t.state(),
                "value_template": text("call"),
                "icon": "mdi:phone",
            }),
        },
        Spec {
            component: "binary_sensor",
            object: "in_call",
            name: "In call",
            optional: None,
            extra: json!({
                "state_topic": t.state(),
                "value_template": on_off("call", "value_json.call == 'in_call'"),
                "payload_on": "ON",
                "payload_off": "OFF",
                "device_class": "running",
            }),
        },
        Spec {
            component: "event",
            object: "call",
            name: "Call",
            optional: None,
            extra: json!({
                "state_topic": t.event(),
                "value_template": call_event_template(),
                "event_types": CALL_EVENT_TYPES,
                "icon": "mdi:phone-ring",
            }),
        },
    ]
}

fn diagnostics(t: &Topics) -> Vec<Spec> {
    let diag = |component, object, name, extra: Value| {
        let mut extra = extra;
        extra["entity_category"] = json!("diagnostic");
        Spec {
            component,
            object,
            name,
            optional: None,
            extra,
        }
    };
    let state = t.state();
    let mut temperature = diag(
        "sensor",
        "temperature",
        "Board temperature",
        json!({
            "state_topic": t.telemetry(),
            "value_template": guarded("temperature_c", "{{ value_json.temperature_c }}", ""),
            "device_class": "temperature",
            "unit_of_measurement": "°C",
            "state_class": "measurement",
        }),
    );
    temperature.optional = Some(|p: &Present| p.temperature);
    vec![
        diag(
            "sensor",
            "signaling_backend",
            "Signaling backend",
            json!({"state_topic": state, "value_template": text("backend"), "icon": "mdi:server-network"}),
        ),
        diag(
            "binary_sensor",
            "signaling_link",
            "Signaling link",
            json!({
                "state_topic": state,
                "value_template": on_off("registered", "value_json.registered"),
                "payload_on": "ON",
                "payload_off": "OFF",
                "device_class": "connectivity",
            }),
        ),
        diag(
            "binary_sensor",
            "problem",
            "Problem",
            json!({
                "state_topic": t.health(),
                "value_template": on_off("level", "value_json.level != 'ok'"),
                "payload_on": "ON",
                "payload_off": "OFF",
                "device_class": "problem",
                // The whole document (level, issues, seq, at) as the entity's attributes.
                "json_attributes_topic": t.health(),
            }),
        ),
        diag(
            "sensor",
            "version",
            "Agent version",
            json!({"state_topic": state, "value_template": text("version"), "icon": "mdi:tag"}),
        ),
        temperature,
    ]
}

fn specs(t: &Topics) -> Vec<Spec> {
    let mut all = controls(t);
    all.extend(call(t));
    all.extend(diagnostics(t));
    all
}

fn topic(prefix: &str, s: &Spec, id: &str) -> String {
    format!("{prefix}/{}/{id}/{}/config", s.component, s.object)
}

/// Every discovery topic the device can use, whether it has the entity or not (for clearing).
pub fn all_topics(prefix: &str, t: &Topics) -> Vec<String> {
    specs(t).iter().map(|s| topic(prefix, s, &t.id)).collect()
}

/// The entity id Home Assistant should pick: `<component>.<id>_<object>`, slugified as Home
/// Assistant does for device ids with `-`.
fn default_entity_id(component: &str, id: &str, object: &str) -> String {
    let slug: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("{component}.{slug}_{object}")
}

fn device_block(d: &DeviceInfo) -> Value {
    let mut device = json!({
        "identifiers": [format!("roomagent_{}", d.id)],
        "name": d.name,
        "manufacturer": "roomagent",
        "model": d.model,
        "sw_version": d.sw_version,
    });
    if let Some(hw) = &d.hw_version {
        device["hw_version"] = json!(hw);
    }
    if let Some(url) = &d.configuration_url {
        device["configuration_url"] = json!(url);
    }
    device
}

/// `(topic, Some(config))` for every entity the device has and `(topic, None)` for those it
/// lacks, so that a stale retained config (a board that lost its sensor) is cleared.
pub fn configs(
    prefix: &str,
    t: &Topics,
    d: &DeviceInfo,
    present: &Present,
) -> Vec<(String, Option<Value>)> {
    let device = device_block(d);
    let origin = json!({"name": "roomagent", "sw": d.sw_version});
    specs(t)
        .into_iter()
        .map(|s| {
            let topic = topic(prefix, &s, &d.id);
            if s.optional.is_some_and(|has| !has(present)) {
                return (topic, None);
            }
            let mut v = json!({
                "name": s.name,
                "unique_id": format!("{}_{}", d.id, s.object),
                "default_entity_id": default_entity_id(s.component, &d.id, s.object),
                "device": device,
                "o": origin,
                "availability_topic": t.status(),
                "payload_available": "online",
                "payload_not_available": "offline",
                "qos": 1,
            });
            if let (Some(o), Value::Object(extra)) = (v.as_object_mut(), s.extra) {
                o.extend(extra);
            }
            (topic, Some(v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> DeviceInfo {
        DeviceInfo {
            id: "room-101".into(),
            name: "Room 101".into(),
            model: "roomagent".into(),
            sw_version: "0.1.0".into(),
            hw_version: Some("Raspberry Pi 5 Model B Rev 1.0".into()),
            configuration_url: None,
        }
    }

    #[test]
    fn every_entity_carries_what_home_assistant_needs() {
        let t = Topics::new("roomagent", "room-101");
        let all = configs(
            "homeassistant",
            &t,
            &device(),
            &Present { temperature: true },
        );
        assert_eq!(all.len(), 11);
        for (topic, v) in &all {
            let v = v.as_ref().expect("every entity is present");
            assert!(topic.starts_with("homeassistant/") && topic.ends_with("/config"));
            assert!(v["unique_id"].as_str().unwrap().starts_with("room-101_"));
            let entity_id = v["default_entity_id"].as_str().unwrap();
            let component = topic.split('/').nth(1).unwrap();
            assert!(
                entity_id.starts_with(&format!("{component}.room_101_")),
                "{entity_id}"
            );
            assert!(
                v.get("object_id").is_none(),
                "{topic}: object_id is deprecated"
            );
            assert_eq!(v["availability_topic"], "roomagent/room-101/status");
            assert_eq!(v["device"]["identifiers"][0], "roomagent_room-101");
            assert_eq!(v["device"]["hw_version"], "Raspberry Pi 5 Model B Rev 1.0");
            assert_eq!(v["o"]["name"], "roomagent");
        }
        let mute = all[0].1.as_ref().unwrap();
        assert_eq!(mute["command_topic"], "roomagent/room-101/cmd/mute");
    }

    #[test]
    fn a_board_without_a_thermal_zone_gets_no_temperature_sensor() {
        let t = Topics::new("roomagent", "room-101");
        let all = configs("homeassistant", &t, &device(), &Present::default());
        let cleared: Vec<_> = all.iter().filter(|(_, v)| v.is_none()).collect();
        assert_eq!(cleared.len(), 1);
        assert_eq!(
            cleared[0].0,
            "homeassistant/sensor/room-101/temperature/config"
        );
        assert_eq!(all_topics("homeassistant", &t).len(), all.len());
    }

    #[test]
    fn diagnostic_entities_are_marked_so() {
        let t = Topics::new("roomagent", "r");
        let d = DeviceInfo {
            id: "r".into(),
            ..device()
        };
        let all = configs("ha", &t, &d, &Present { temperature: true });
        let diag: Vec<&str> = all
            .iter()
            .filter(|(_, v)| v.as_ref().unwrap()["entity_category"] == "diagnostic")
            .map(|(t, _)| t.as_str())
            .collect();
        assert_eq!(
            diag,
            [
                "ha/sensor/r/signaling_backend/config",
                "ha/binary_sensor/r/signaling_link/config",
                "ha/binary_sensor/r/problem/config",
                "ha/sensor/r/version/config",
                "ha/sensor/r/temperature/config",
            ]
        );
    }
}
