//! Validation rules, one behaviour each.

use super::*;

#[test]
fn relay_server_must_be_host_and_port() {
    assert!(valid_host_port("turn.example.com:3478"));
    assert!(valid_host_port("[::1]:3478"));
    assert!(!valid_host_port("turn://x:1"));
    assert!(!valid_host_port("turn.example.com"));
    assert!(!valid_host_port("x:0"));
}

#[test]
fn media_ice_wins_over_the_rtcpeer_relay_keys_and_is_checked_under_its_own_name() {
    let mut c = Config::default();
    c.signaling.relay_server = Some("old.example.com:3478".into());
    assert_eq!(c.ice().turn_server.as_deref(), Some("old.example.com:3478"));
    c.media.ice.turn_server = Some("new.example.com:3478".into());
    c.media.ice.policy = Some(RelayPolicy::Relay);
    let ice = c.ice();
    assert_eq!(ice.turn_server.as_deref(), Some("new.example.com:3478"));
    assert_eq!((ice.policy, ice.source), (RelayPolicy::Relay, "media.ice"));
    c.media.ice.turn_server = None;
    let p = check(&c, Purpose::Agent);
    assert!(p.iter().any(|(k, _)| k == "media.ice.policy"), "{p:?}");
}

#[test]
fn rtm_ignores_rtcpeer_keys_and_checks_its_own() {
    let mut c = Config::default();
    c.device.id = "r".into();
    c.signaling.backend = Backend::Rtm;
    c.signaling.login.name = None;
    c.signaling.relay_server = Some("old.example.com:3478".into());
    let keys: Vec<String> = check(&c, Purpose::Agent)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert!(
        !keys.iter().any(|k| k.starts_with("signaling.login")),
        "{keys:?}"
    );
    for k in [
        "signaling.rtm.pid",
        "signaling.rtm.uid",
        "signaling.rtm.token",
        "signaling.rtm.gate",
    ] {
        assert!(keys.iter().any(|x| x == k), "{k} missing from {keys:?}");
    }
    assert_eq!(
        c.ice().turn_server,
        None,
        "RTCPeer's relay keys are RTCPeer's"
    );
}

#[test]
fn relay_only_without_a_relay_server_is_refused() {
    let mut c = Config::default();
    c.signaling.relay = RelayPolicy::Relay;
    let p = check(&c, Purpose::Agent);
    assert!(p.iter().any(|(k, _)| k == "signaling.relay"), "{p:?}");
}

#[test]
fn room_server_purpose_skips_agent_checks() {
    let c = Config::default();
    assert!(check(&c, Purpose::RoomServer).is_empty());
    assert!(!check(&c, Purpose::Agent).is_empty());
}

#[test]
fn docking_login_needs_app_id_secret_and_account() {
    let mut c = Config::default();
    c.signaling.login.method = LoginMethod::Docking;
    let keys: Vec<_> = check(&c, Purpose::Agent)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    for k in [
        "signaling.login.app_id",
        "signaling.login.secret",
        "signaling.login.account",
    ] {
        assert!(keys.iter().any(|x| x == k), "{k} missing from {keys:?}");
    }
}

/// A configuration with MQTT on (and the device id that needs).
fn with_mqtt() -> Config {
    let mut c = Config::default();
    c.device.id = "r".into();
    c.mqtt.enabled = true;
    c
}

/// Whether `check` names `key`.
fn flags(c: &Config, key: &str) -> bool {
    check(c, Purpose::Agent).iter().any(|(k, _)| k == key)
}

#[test]
fn the_home_assistant_configuration_url_must_be_a_web_page() {
    let mut c = with_mqtt();
    let flagged = |c: &Config| flags(c, "mqtt.configuration_url");
    assert!(!flagged(&c), "optional");
    c.mqtt.configuration_url = Some("http://room-101.local/".into());
    assert!(!flagged(&c));
    for bad in ["room-101.local", "ftp://room-101.local/", "http://"] {
        c.mqtt.configuration_url = Some(bad.into());
        assert!(flagged(&c), "{bad}");
    }
}

#[test]
fn the_command_age_limit_has_a_range() {
    let mut c = with_mqtt();
    let flagged = |c: &Config| flags(c, "mqtt.command_max_age_s");
    assert!(!flagged(&c), "the default (30 s) is fine");
    for (age, bad) in [
        (0, true),
        (1, false),
        (86_400, false),
        (86_401, true),
        (u64::MAX, true),
    ] {
        c.mqtt.command_max_age_s = age;
        assert_eq!(flagged(&c), bad, "{age}");
    }
}

#[test]
fn fleet_topic_names_are_single_topic_levels_and_ids_do_not_collide_with_them() {
    let mut c = with_mqtt();
    for reserved in ["all", "group", "site"] {
        c.device.id = reserved.into();
        assert!(flags(&c, "device.id"), "{reserved}");
    }
    c.device.id = "room-101".into();
    assert!(!flags(&c, "device.id"));
    for (tag, bad) in [
        ("lobby", false),
        ("floor_3-east", false),
        ("", true),
        ("a/b", true),
        ("+", true),
        ("#", true),
        ("two words", true),
    ] {
        c.mqtt.group = Some(tag.into());
        c.mqtt.site = Some(tag.into());
        assert_eq!(flags(&c, "mqtt.group"), bad, "{tag:?}");
        assert_eq!(flags(&c, "mqtt.site"), bad, "{tag:?}");
    }
}

#[test]
fn alpn_needs_tls_and_names_of_one_to_255_bytes() {
    let mut c = with_mqtt();
    let flagged = |c: &Config| flags(c, "mqtt.alpn");
    assert!(!flagged(&c));
    c.mqtt.alpn = vec!["mqtt".into()];
    assert!(flagged(&c), "without ca_file");
    c.mqtt.ca_file = Some("/etc/hostname".into());
    assert!(!flagged(&c));
    c.mqtt.alpn = vec![String::new()];
    assert!(flagged(&c));
}
