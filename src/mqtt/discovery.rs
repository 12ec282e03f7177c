//! Home Assistant MQTT discovery: retained configs that make a room appear as a device with a
//! microphone-mute switch, a camera switch, a hang-up button, a call-state sensor, an in-call
//! binary sensor and a temperature sensor, all available while the status topic says `online`.

use serde_json::{Value, json};

use super::topics::Topics;

/// Who the device is, for the `device` block.
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    /// Device id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Board model or profile.
    pub model: String,
    /// Agent version.
    pub sw_version: String,
}

/// `(topic, payload)` for every entity.
pub fn configs(discovery_prefix: &str, t: &Topics, d: &DeviceInfo) -> Vec<(String, Value)> {
    let device = json!({
        "identifiers": [format!("roomagent_{}", d.id)],
        "name": d.name,
        "manufacturer": "roomagent",
        "model": d.model,
        "sw_version": d.sw_version,
    });
    let base = |component: &str, object: &str, name: &str| -> (String, Value) {
        (
            format!("{discovery_prefix}/{component}/{}/{object}/config", d.id),
            json!({
                "name": name,
                "unique_id": format!("{}_{object}", d.id),
                "object_id": format!("{}_{object}", d.id),
                "device": device,
                "availability_topic": t.status(),
                "payload_available": "online",
                "payload_not_available": "offline",
                "qos": 1,
            }),
        )
    };
    let with = |(topic, mut v): (String, Value), extra: Value| {
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            for (k, val) in e {
                o.insert(k.clone(), val.clone());
            }
        }
        (topic, v)
    };
    let cmd = |verb: &str| format!("{}/{}/cmd/{verb}", t.prefix, t.id);
    vec![
        with(
            base("switch", "mic_mute", "Microphone mute"),
            json!({
                "command_topic": cmd("mute"),
                "payload_on": "{\"mute\":true}",
                "payload_off": "{\"mute\":false}",
                "state_topic": t.state(),
                "value_template": "{{ 'ON' if value_json.mic_muted else 'OFF' }}",
                "state_on": "ON",
                "state_off": "OFF",
                "icon": "mdi:microphone-off",
            }),
        ),
        with(
            base("switch", "camera", "Camera"),
            json!({
                "command_topic": cmd("camera_on"),
                "payload_on": "{\"on\":true}",
                "payload_off": "{\"on\":false}",
                "state_topic": t.state(),
                "value_template": "{{ 'ON' if value_json.camera_on else 'OFF' }}",
                "state_on": "ON",
                "state_off": "OFF",
                "icon": "mdi:video",
            }),
        ),
        with(
            base("button", "hangup", "Hang up"),
            json!({
                "command_topic": cmd("hangup"),
                "payload_press": "{}",
                "icon": "mdi:phone-hangup",
            }),
        ),
        with(
            base("sensor", "call_state", "Call state"),
            json!({
                "state_topic": t.state(),
                "value_template": "{{ value_json.call }}",
                "icon": "mdi:phone",
            }),
        ),
        with(
            base("binary_sensor", "in_call", "In call"),
            json!({
                "state_topic": t.state(),
                "value_template": "{{ 'ON' if value_json.call == 'in_call' else 'OFF' }}",
                "payload_on": "ON",
                "payload_off": "OFF",
                "device_class": "running",
            }),
        ),
        with(
            base("sensor", "temperature", "CPU temperature"),
            json!({
                "state_topic": t.telemetry(),
                "value_template": "{{ value_json.temperature_c }}",
                "device_class": "temperature",
                "unit_of_measurement": "°C",
                "state_class": "measurement",
            }),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entity_carries_what_home_assistant_needs() {
        let t = Topics::new("roomagent", "room-101");
        let d = DeviceInfo {
            id: "room-101".into(),
            name: "Room 101".into(),
            model: "test".into(),
            sw_version: "0.1.0".into(),
        };
        let all = configs("homeassistant", &t, &d);
        assert_eq!(all.len(), 6);
        for (topic, v) in &all {
            assert!(
                topic.starts_with("homeassistant/") && topic.ends_with("/config"),
                "{topic}"
            );
            assert!(v["unique_id"].as_str().unwrap().starts_with("room-101_"));
            assert_eq!(v["availability_topic"], "roomagent/room-101/status");
            assert_eq!(v["device"]["identifiers"][0], "roomagent_room-101");
            assert!(v.get("state_topic").is_some() || v.get("command_topic").is_some());
        }
        let mute = &all[0].1;
        assert_eq!(mute["command_topic"], "roomagent/room-101/cmd/mute");
    }
}
