//! Whether a file is set up yet: a fresh install ships a configuration that names no
//! signaling server, and the agent runs without signaling until someone edits it.
//!
//! The rule: a file is *not configured* when its `[signaling]` has no `host` key and no
//! `[signaling.rtm]` table with anything in it — it does not say where to register. Such a
//! file is valid (`check-config` says so, with a note): the agent starts, reports
//! "not configured: edit <file>" as its status (systemd `STATUS=`, the MQTT state's
//! `signaling_error`), starts no signaling, and picks up the edit on the next reload.

/// The start of the status of an agent whose file is not configured.
pub const NOT_CONFIGURED: &str = "not configured";

/// The status line of an agent running from the not-configured `file`.
pub fn not_configured_status(file: Option<&std::path::Path>) -> String {
    match file {
        Some(f) => format!("{NOT_CONFIGURED}: edit {}", f.display()),
        None => format!("{NOT_CONFIGURED}: set [signaling] host or [signaling.rtm]"),
    }
}

/// Whether the parsed file names a signaling server (see the module's rule).
pub(super) fn names_a_server(file: &toml::Table) -> bool {
    let Some(signaling) = file.get("signaling").and_then(toml::Value::as_table) else {
        return false;
    };
    let rtm = signaling
        .get("rtm")
        .and_then(toml::Value::as_table)
        .is_some_and(|t| !t.is_empty());
    signaling.contains_key("host") || rtm
}

#[cfg(test)]
mod tests {
    use crate::config::{Purpose, parse};

    fn configured(text: &str) -> bool {
        !parse(text, Purpose::Agent).unwrap().not_configured
    }

    #[test]
    fn a_file_that_names_no_server_is_valid_and_not_configured() {
        assert!(!configured(""));
        assert!(!configured("[signaling]\nbackend = \"rtcpeer\"\n"));
        assert!(!configured("[signaling.rtm]\n[mqtt]\nenabled = false\n"));
    }

    #[test]
    fn a_host_or_an_rtm_section_makes_it_configured_and_fully_checked() {
        let text = "[device]\nid = \"r\"\n[signaling]\nhost = \"http://h/app\"\n\
                    [signaling.login]\nname = \"r\"\npassword = \"p\"\n";
        assert!(configured(text));
        let missing = parse("[signaling]\nhost = \"http://h/app\"\n", Purpose::Agent).unwrap_err();
        let keys: Vec<&str> = missing.iter().map(|e| e.path.as_str()).collect();
        assert!(keys.contains(&"signaling.login.name"), "{keys:?}");
        assert!(keys.contains(&"device.id"), "{keys:?}");
        let rtm = parse(
            "[signaling]\nbackend = \"rtm\"\n[signaling.rtm]\nuid = 9\n",
            Purpose::Agent,
        )
        .unwrap_err();
        assert!(rtm.iter().any(|e| e.path == "signaling.rtm.pid"), "{rtm:?}");
    }

    #[test]
    fn the_packaged_file_is_valid_safe_and_not_configured() {
        let text = include_str!("../../packaging/config.production.toml");
        let c = parse(text, Purpose::Agent).unwrap();
        assert!(c.not_configured);
        assert!(!c.room_server.enabled && c.room_server.accounts.is_empty());
        assert!(!c.mqtt.enabled && !c.gpio.enabled);
        assert!(c.media.enabled);
        assert_eq!(
            (c.media.camera.as_str(), c.media.microphone.as_str()),
            ("auto", "auto")
        );
        assert!(c.signaling.login.password.is_none() && c.signaling.login.name.is_none());
    }

    #[test]
    fn mqtt_still_needs_a_device_id_before_signaling_is_set_up() {
        let e = parse("[mqtt]\nenabled = true\n", Purpose::Agent).unwrap_err();
        assert!(e.iter().any(|e| e.path == "device.id"), "{e:?}");
    }
}
