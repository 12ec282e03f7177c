//! No secret from the configuration file reaches a `Debug` or `Display` of the configuration,
//! of what is made from it, or of its errors: check-config's output, the systemd status and
//! the MQTT reload reply all print those errors.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Purpose, load, parse};

/// A secret no message could contain by chance.
const SECRET: &str = "Hunter2-x9Qv";
/// The same as a number, for a secret key given the wrong type.
const SECRET_NUMBER: &str = "73104952";

/// Every key that holds a secret, set to [`SECRET`].
fn with_secrets() -> String {
    format!(
        r#"
[device]
id = "room-1"

[signaling]
relay_server = "turn.example.com:3478"
relay_username = "agent"
relay_password = "{SECRET}"

[signaling.login]
name = "room"
password = "{SECRET}"
secret = "{SECRET}"

[signaling.rtm]
token = "{SECRET}"

[media.ice]
turn_server = "turn.example.com:3478"
turn_username = "agent"
turn_password = "{SECRET}"

[mqtt]
username = "agent"
password = "{SECRET}"

[[room_server.accounts]]
id = 1
name = "alice"
password = "{SECRET}"

[[room_server.apps]]
app_id = "app"
secret = "{SECRET}"
"#
    )
}

#[test]
fn the_configuration_and_what_is_made_from_it_never_print_a_secret() {
    let c = parse(&with_secrets(), Purpose::Agent).expect("valid");
    assert_eq!(c.media.ice.turn_password.as_ref().unwrap().expose(), SECRET);
    let media = crate::media::MediaOptions::from_config(&c);
    assert!(media.ice.turn.as_deref().unwrap().contains(SECRET));
    for (what, text) in [
        ("config", format!("{c:?}")),
        ("pretty config", format!("{c:#?}")),
        ("ice settings", format!("{:?}", c.ice())),
        ("media options", format!("{media:?}")),
        (
            "login",
            format!("{:?}", c.signaling.login.password_source()),
        ),
    ] {
        assert!(!text.contains(SECRET), "{what} shows the secret: {text}");
    }
}

/// The errors as check-config prints them (`Display`), as `{:?}`, and as the systemd status
/// and an MQTT reply carry them after a refused reload.
fn renderings(text: &str) -> [String; 3] {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!("roomagent-redact-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{}.toml", N.fetch_add(1, Ordering::Relaxed)));
    std::fs::write(&file, text).unwrap();
    let errors = load(&file).expect_err("refused");
    std::fs::remove_file(&file).unwrap();
    let status = crate::systemd::reload_status(&Err(errors.to_string()));
    [errors.to_string(), status, format!("{errors:?}")]
}

#[test]
fn a_secret_of_the_wrong_type_is_named_by_key_and_line_but_not_shown() {
    for key in [
        "relay_password",
        "password",
        "secret",
        "token",
        "turn_password",
    ] {
        let text = with_secrets()
            .lines()
            .map(|l| match l.split_once(" = ") {
                Some((k, _)) if k == key => format!("{k} = {SECRET_NUMBER}"),
                _ => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        let shown = renderings(&text);
        for s in &shown {
            assert!(!s.contains(SECRET_NUMBER), "{key}: {s}");
        }
        for s in &shown[..2] {
            assert!(s.contains(&format!("{key}: invalid type")), "{key}: {s}");
            assert!(s.contains("line "), "{key}: {s}");
        }
    }
}

const LOGIN: &str = "[device]\nid = \"r\"\n[signaling.login]\nname = \"n\"\npassword = \"p\"\n";

#[test]
fn credentials_written_into_an_address_are_refused_without_being_shown() {
    let cases = [
        (
            "media.ice.turn_server",
            format!("[media.ice]\nturn_server = \"agent:{SECRET}@turn.example.com:3478\""),
        ),
        (
            "signaling.relay_server",
            format!("[signaling]\nrelay_server = \"turn://agent:{SECRET}@turn.example.com:3478\""),
        ),
        (
            "media.ice.stun_server",
            format!("[media.ice]\nstun_server = \"stun://agent:{SECRET}@stun.example.com:x\""),
        ),
        (
            "signaling.host",
            format!("[signaling]\nhost = \"https://room:{SECRET}@meet.example.com/app\""),
        ),
        (
            "signaling.host",
            format!("[signaling]\nhost = \"ftp://room:{SECRET}@meet.example.com/app\""),
        ),
        (
            "mqtt.configuration_url",
            format!(
                "[mqtt]\nenabled = true\nconfiguration_url = \"http://admin:{SECRET}@10.0.0.5/\""
            ),
        ),
        (
            "signaling.rtm.gate",
            format!(
                "[signaling]\nbackend = \"rtm\"\n[signaling.rtm]\ngate = \"u:{SECRET}@gate.example.com:1\""
            ),
        ),
    ];
    for (key, section) in cases {
        let shown = renderings(&format!("{LOGIN}{section}\n"));
        for s in &shown {
            assert!(!s.contains(SECRET), "{section}: {s}");
        }
        assert!(
            shown[0].contains(&format!("{key}: ")),
            "{section}: {}",
            shown[0]
        );
        assert!(shown[0].contains("***@"), "{section}: {}", shown[0]);
    }
}

#[test]
fn adapter_options_built_from_the_configuration_never_print_a_secret() {
    let mut c = parse(&with_secrets(), Purpose::Agent).expect("valid");
    let dir = std::env::temp_dir().join(format!("roomagent-redact-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_pem = format!("-----BEGIN PRIVATE KEY-----\n{SECRET}\n-----END PRIVATE KEY-----\n");
    for (name, text) in [
        ("ca.pem", "ca"),
        ("cert.pem", "cert"),
        ("key.pem", &key_pem),
    ] {
        std::fs::write(dir.join(name), text).unwrap();
    }
    c.mqtt.ca_file = Some(dir.join("ca.pem"));
    c.mqtt.client_cert_file = Some(dir.join("cert.pem"));
    c.mqtt.client_key_file = Some(dir.join("key.pem"));
    let mqtt = crate::mqtt::Options::from_config(&c).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let (_, client) = mqtt.tls.as_ref().unwrap();
    assert_eq!(client.as_ref().unwrap().1.expose(), key_pem.as_bytes());
    let rtcpeer = crate::signaling::rtcpeer::Options::from_config(&c).unwrap();
    for (what, text) in [
        ("mqtt", format!("{mqtt:?}")),
        ("rtcpeer", format!("{rtcpeer:?}")),
    ] {
        assert!(
            !text.contains(SECRET),
            "{what} options show the secret: {text}"
        );
        let bytes: Vec<String> = SECRET.bytes().take(4).map(|b| b.to_string()).collect();
        assert!(
            !text.contains(&bytes.join(", ")),
            "{what} shows the key's bytes: {text}"
        );
    }
}
