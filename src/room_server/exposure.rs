//! What an administrator must hear about a room server reachable from the network: it speaks
//! plain HTTP (passwords and session ids travel in clear), and accounts or apps whose password
//! anyone can guess — the ones `config.example.toml` ships, or a password equal to the login
//! name — let anyone in. Checked when the server starts; names, never secrets, are logged.

use std::net::SocketAddr;

use tracing::{error, warn};

use crate::config::RoomServerConfig;

/// The example configuration, whose passwords everyone has read.
const EXAMPLE: &str = include_str!("../../config.example.toml");

/// Logs what is exposed (nothing on a loopback address).
pub fn warn_if_exposed(cfg: &RoomServerConfig, addr: SocketAddr) {
    for (loud, line) in exposure(cfg, addr) {
        if loud {
            error!("{line}");
        } else {
            warn!("{line}");
        }
    }
}

/// The warnings for a server on `addr`, each with whether it is loud (error level).
pub fn exposure(cfg: &RoomServerConfig, addr: SocketAddr) -> Vec<(bool, String)> {
    if addr.ip().is_loopback() {
        return Vec::new();
    }
    let mut out = vec![(
        false,
        format!(
            "the development room server listens on {addr}, reachable from the network, over \
             plain HTTP without TLS: passwords and sessions travel in clear"
        ),
    )];
    let weak = weak_logins(cfg);
    if !weak.is_empty() {
        out.push((
            true,
            format!(
                "SECURITY: the room server on {addr} accepts well-known passwords (from \
                 config.example.toml, or equal to the login name) for {}: anyone on the \
                 network can log in and call this device; set real passwords in [room_server]",
                weak.join(", ")
            ),
        ));
    }
    out
}

/// The accounts and apps whose password is well known, by name.
fn weak_logins(cfg: &RoomServerConfig) -> Vec<String> {
    let known = example_secrets();
    let guessable = |name: &str, secret: &str| {
        known.iter().any(|k| k == secret) || secret.eq_ignore_ascii_case(name)
    };
    let accounts = cfg
        .accounts
        .iter()
        .filter(|a| guessable(&a.name, a.password.expose()))
        .map(|a| format!("account {:?}", a.name));
    let apps = cfg
        .apps
        .iter()
        .filter(|a| guessable(&a.app_id, a.secret.expose()))
        .map(|a| format!("app {:?}", a.app_id));
    accounts.chain(apps).collect()
}

/// Every password and app secret in `config.example.toml`'s `[room_server]`.
fn example_secrets() -> Vec<String> {
    let Ok(doc) = EXAMPLE.parse::<toml::Table>() else {
        return Vec::new();
    };
    let server = doc.get("room_server").and_then(toml::Value::as_table);
    let list = |key: &str, field: &str| -> Vec<String> {
        server
            .and_then(|s| s.get(key))
            .and_then(toml::Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|e| e.get(field)?.as_str().map(str::to_string))
            .collect()
    };
    let mut all = list("accounts", "password");
    all.extend(list("apps", "secret"));
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AccountConfig, AppConfig, Secret};

    fn server(accounts: &[(&str, &str)]) -> RoomServerConfig {
        RoomServerConfig {
            accounts: accounts
                .iter()
                .enumerate()
                .map(|(i, (name, pw))| AccountConfig {
                    id: i as i64 + 1,
                    name: name.to_string(),
                    password: Secret::new(*pw),
                    display_name: None,
                })
                .collect(),
            ..RoomServerConfig::default()
        }
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_example_passwords_are_known() {
        let known = example_secrets();
        for pw in ["room", "alice", "bob", "demo-secret"] {
            assert!(known.iter().any(|k| k == pw), "{pw} not in {known:?}");
        }
    }

    #[test]
    fn loopback_is_quiet_whatever_the_passwords() {
        let cfg = server(&[("alice", "alice")]);
        assert!(exposure(&cfg, addr("127.0.0.1:8080")).is_empty());
        assert!(exposure(&cfg, addr("[::1]:8080")).is_empty());
    }

    #[test]
    fn the_network_with_example_or_name_passwords_is_loud_and_names_no_secret() {
        let mut cfg = server(&[
            ("room", "room"),
            ("carol", "Carol"),
            ("dave", "bob"),
            ("erin", "x7#Lq9-long-and-random"),
        ]);
        cfg.apps.push(AppConfig {
            app_id: "demo-app".into(),
            secret: Secret::new("demo-secret"),
            company: None,
        });
        let w = exposure(&cfg, addr("0.0.0.0:8080"));
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(!w[0].0 && w[0].1.contains("without TLS"), "{w:?}");
        let (loud, line) = &w[1];
        assert!(*loud);
        for name in [
            "account \"room\"",
            "account \"carol\"",
            "account \"dave\"",
            "app \"demo-app\"",
        ] {
            assert!(line.contains(name), "{name} missing: {line}");
        }
        assert!(!line.contains("erin"), "{line}");
        assert!(
            !line.contains("demo-secret") && !line.contains("x7#"),
            "{line}"
        );
    }

    #[test]
    fn the_network_with_real_passwords_still_warns_about_plain_http() {
        let cfg = server(&[("alice", "x7#Lq9-long-and-random")]);
        let w = exposure(&cfg, addr("192.0.2.10:8080"));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(!w[0].0);
    }
}
