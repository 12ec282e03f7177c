//! Remote configuration: what a dashboard wants changed (`<prefix>/<id>/config/desired`, a
//! JSON object shaped like the file), kept in the state directory as an overlay on the file
//! (`desired.toml`), and read with the same loader and checks as the file.
//!
//! A dashboard may set anything but secrets (they travel in files and systemd credentials,
//! never over MQTT) and what could cut the device off from its dashboard for good: `[device]
//! id`, `[mqtt]` and `[service]` stay as the file says. `/etc/roomagent/config.toml` stays
//! the administrator's: the service cannot write it, and a hand edit there is reported as
//! drift, not overwritten.

use std::path::Path;

use serde_json::Value;

use super::{Config, ConfigError, ConfigErrors, Purpose, load_for, parse};

/// Sections a dashboard may not change.
const LOCKED: [&str; 2] = ["mqtt", "service"];

/// Whether a key holds a secret (`password`, `relay_password`, `secret`, `token`, …).
fn secret_key(key: &str) -> bool {
    key.ends_with("password") || key.ends_with("secret") || key == "token"
}

/// A desired configuration, checked for keys a dashboard may not set.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    /// As TOML, shaped like the file.
    pub table: toml::Table,
    /// sha256 of the TOML text, hex: what `config/reported` says was applied.
    pub hash: String,
}

fn to_toml(v: &Value, path: &str, errors: &mut Vec<String>) -> Option<toml::Value> {
    Some(match v {
        Value::Null => {
            errors.push(format!(
                "{path}: null is not a value (leave the key out instead)"
            ));
            return None;
        }
        Value::Bool(b) => toml::Value::Boolean(*b),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => toml::Value::Integer(i),
            (None, Some(f)) => toml::Value::Float(f),
            _ => {
                errors.push(format!("{path}: {n} is out of range"));
                return None;
            }
        },
        Value::String(s) => toml::Value::String(s.clone()),
        Value::Array(a) => toml::Value::Array(
            a.iter()
                .enumerate()
                .filter_map(|(i, x)| to_toml(x, &format!("{path}[{i}]"), errors))
                .collect(),
        ),
        Value::Object(o) => {
            let mut t = toml::Table::new();
            for (k, x) in o {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if secret_key(k) {
                    errors.push(format!(
                        "{p}: secrets are never sent over MQTT; put it in a file on the device (e.g. a systemd credential) and name the file"
                    ));
                    continue;
                }
                if path.is_empty() && LOCKED.contains(&k.as_str()) {
                    errors.push(format!(
                        "{p}: the [{k}] section is not changed remotely (a mistake there would cut the device off from its dashboard); edit the file on the device"
                    ));
                    continue;
                }
                if path == "device" && k == "id" {
                    errors.push(format!(
                        "{p}: the device id names its MQTT topics and is not changed remotely"
                    ));
                    continue;
                }
                if let Some(x) = to_toml(x, &p, errors) {
                    t.insert(k.clone(), x);
                }
            }
            toml::Value::Table(t)
        }
    })
}

/// Reads a desired configuration as a dashboard sends it: a JSON object shaped like the
/// file. Every key it may not set is an error naming it.
pub fn parse_desired(payload: &[u8]) -> Result<Desired, Vec<String>> {
    let v: Value = serde_json::from_slice(payload)
        .map_err(|e| vec![format!("the desired configuration is not JSON: {e}")])?;
    if !v.is_object() {
        return Err(vec![
            "the desired configuration must be a JSON object shaped like the file".into(),
        ]);
    }
    let mut errors = Vec::new();
    let Some(toml::Value::Table(table)) = to_toml(&v, "", &mut errors) else {
        return Err(errors);
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let text = toml::to_string(&table).map_err(|e| vec![e.to_string()])?;
    Ok(Desired {
        table,
        hash: sha256_hex(text.as_bytes()),
    })
}

/// sha256, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `overlay` laid over `base`: tables merge key by key, anything else replaces.
pub fn merge(base: &mut toml::Table, overlay: &toml::Table) {
    for (k, v) in overlay {
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

/// The file with `desired` laid over it, checked as the agent would check a file: the
/// configuration it makes, or every problem (without line numbers: they would point into a
/// merged text nobody wrote).
pub fn check(file: &Path, desired: &toml::Table) -> Result<Config, Vec<String>> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| vec![format!("cannot read {}: {e}", file.display())])?;
    let mut table: toml::Table =
        toml::from_str(&text).map_err(|e| vec![format!("{}: {}", file.display(), e.message())])?;
    merge(&mut table, desired);
    let merged = toml::to_string(&table).map_err(|e| vec![e.to_string()])?;
    let mut config = parse(&merged, Purpose::Agent).map_err(|errors| {
        errors
            .into_iter()
            .map(|ConfigError { path, message, .. }| {
                if path.is_empty() {
                    message
                } else {
                    format!("{path}: {message}")
                }
            })
            .collect::<Vec<_>>()
    })?;
    config.source = Some(file.to_path_buf());
    Ok(config)
}

/// The overlay kept on the device, when there is one.
pub fn read_overlay(path: &Path) -> Option<Result<toml::Table, String>> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), e.message())))
}

/// Keeps `desired` as the overlay (written beside and renamed, so a crash leaves the old or
/// the new one), or removes the overlay for `None`.
pub fn store(path: &Path, desired: Option<&toml::Table>) -> Result<(), String> {
    match desired {
        None => match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("cannot remove {}: {e}", path.display())),
        },
        Some(t) => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
            let text = toml::to_string(t).map_err(|e| e.to_string())?;
            let staging = path.with_extension("staging");
            std::fs::write(&staging, text)
                .and_then(|()| std::fs::rename(&staging, path))
                .map_err(|e| format!("cannot write {}: {e}", path.display()))
        }
    }
}

/// What the agent runs with: the file, and over it the overlay a dashboard set, if any. The
/// file's own problems are errors as for `check-config`; an overlay that no longer fits (the
/// file changed under it) is set aside with a warning, and the file alone runs.
pub fn load_running(file: &Path) -> Result<Config, ConfigErrors> {
    let config = load_for(file, Purpose::Agent)?;
    let Some(overlay_path) = config.service.desired_file() else {
        return Ok(config);
    };
    match read_overlay(&overlay_path) {
        None => Ok(config),
        Some(Err(e)) => {
            tracing::warn!(error = %e, "the remote configuration cannot be read; running the file alone");
            Ok(config)
        }
        Some(Ok(desired)) => match check(file, &desired) {
            Ok(merged) => Ok(merged),
            Err(errors) => {
                tracing::warn!(
                    ?errors,
                    "the remote configuration no longer fits the file; running the file alone"
                );
                Ok(config)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_locked_keys_are_refused_each_by_name() {
        let e = parse_desired(
            br#"{"signaling": {"login": {"password": "x"}, "rtm": {"token": "t"}},
                 "mqtt": {"host": "evil"}, "service": {}, "device": {"id": "other", "name": "ok"},
                 "answer": {"mode": null}}"#,
        )
        .unwrap_err();
        let has = |needle: &str| e.iter().any(|m| m.contains(needle));
        assert!(
            has("signaling.login.password: secrets are never sent"),
            "{e:#?}"
        );
        assert!(has("signaling.rtm.token: secrets"), "{e:#?}");
        assert!(
            has("mqtt: the [mqtt] section is not changed remotely"),
            "{e:#?}"
        );
        assert!(has("service: the [service] section"), "{e:#?}");
        assert!(has("device.id: the device id"), "{e:#?}");
        assert!(has("answer.mode: null"), "{e:#?}");
        assert!(
            !e.iter().any(|m| m.contains("\"x\"") || m.contains("evil")),
            "no values quoted"
        );
        for bad in [&b"[1]"[..], b"not json", b"\"text\""] {
            assert_eq!(parse_desired(bad).unwrap_err().len(), 1);
        }
    }

    #[test]
    fn a_desired_configuration_lays_over_the_file_and_is_checked_like_it() {
        let dir = std::env::temp_dir().join(format!("roomagent-desired-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("config.toml");
        std::fs::write(
            &file,
            "[device]\nid = \"room\"\nname = \"Room\"\n[answer]\nmode = \"never\"\ndelay_ms = 100\n",
        )
        .unwrap();
        let d = parse_desired(br#"{"answer": {"mode": "always"}, "device": {"name": "Lobby"}}"#)
            .unwrap();
        assert_eq!(d.hash.len(), 64);
        let c = check(&file, &d.table).unwrap();
        assert_eq!(c.device.name, "Lobby");
        assert_eq!(c.device.id, "room", "the file's");
        assert_eq!(
            c.answer.delay_ms, 100,
            "the file's, beside the desired mode"
        );
        let bad = parse_desired(br#"{"answer": {"mode": "sometimes", "delay_ms": -5}}"#).unwrap();
        let e = check(&file, &bad.table).unwrap_err();
        assert!(e.iter().any(|m| m.starts_with("answer.mode")), "{e:#?}");
        // Kept and read back; removed.
        let overlay = dir.join("state/desired.toml");
        store(&overlay, Some(&d.table)).unwrap();
        assert_eq!(read_overlay(&overlay).unwrap().unwrap(), d.table);
        store(&overlay, None).unwrap();
        assert!(read_overlay(&overlay).is_none());
        store(&overlay, None).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
