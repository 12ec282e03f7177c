//! What the agent may ask of root, and the helper that does it. The service keeps no
//! capabilities; a reboot (and, later, installing a package) is done by
//! `roomagent privileged`, which systemd runs as root (`roomagent-privileged.service`) when a
//! request appears in the requests directory (`roomagent-privileged.path`). The helper trusts
//! nothing in a request: it reads at most 4 KiB without following links, accepts only the
//! actions below, deletes the request and then acts.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The largest request the helper reads.
const REQUEST_MAX: u64 = 4096;

/// What the agent may ask for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Reboot the device.
    Reboot {
        /// Why (who asked), for the journal.
        reason: String,
    },
}

/// Leaves a request for the helper: written beside the directory, then renamed into it, so
/// the helper never sees half a file.
pub fn request(dir: &Path, action: &Action, unix_ms: u128) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| {
        format!(
            "cannot create the requests directory {}: {e}",
            dir.display()
        )
    })?;
    let name = match action {
        Action::Reboot { .. } => "reboot",
    };
    let file = dir.join(format!("{unix_ms}-{name}.json"));
    let staging = dir.with_extension("staging");
    let text = serde_json::to_vec(action).map_err(|e| e.to_string())?;
    std::fs::write(&staging, text)
        .and_then(|()| std::fs::rename(&staging, &file))
        .map_err(|e| format!("cannot leave a request in {}: {e}", dir.display()))?;
    Ok(file)
}

/// Reads one request without following a link; any file that is not one is an error.
pub fn read(file: &Path) -> Result<Action, String> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(file)
        .map_err(|e| format!("{}: cannot open: {e}", file.display()))?;
    if !f.metadata().map(|m| m.is_file()).unwrap_or(false) {
        return Err(format!("{}: not a regular file", file.display()));
    }
    let mut text = Vec::new();
    f.take(REQUEST_MAX + 1)
        .read_to_end(&mut text)
        .map_err(|e| format!("{}: cannot read: {e}", file.display()))?;
    if text.len() as u64 > REQUEST_MAX {
        return Err(format!(
            "{}: larger than {REQUEST_MAX} bytes",
            file.display()
        ));
    }
    let action: Action = serde_json::from_slice(&text)
        .map_err(|e| format!("{}: not a request: {e}", file.display()))?;
    let Action::Reboot { reason } = &action;
    if reason.len() > 200 || reason.chars().any(char::is_control) {
        return Err(format!(
            "{}: the reason is not one short line",
            file.display()
        ));
    }
    Ok(action)
}

/// Takes every request in `dir` (each deleted before it is acted on, so a failing action is
/// not retried forever) and returns them with the files that were refused and why.
pub fn take(dir: &Path) -> (Vec<Action>, Vec<String>) {
    let mut actions = Vec::new();
    let mut refused = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (actions, refused);
    };
    let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    for file in files {
        let read = if file.extension().is_some_and(|e| e == "json") {
            read(&file)
        } else {
            Err(format!("{}: not a request (*.json)", file.display()))
        };
        // Removes a link itself, never its target.
        let _ = std::fs::remove_file(&file).or_else(|_| std::fs::remove_dir_all(&file));
        match read {
            Ok(a) => actions.push(a),
            Err(e) => refused.push(e),
        }
    }
    (actions, refused)
}

/// `roomagent privileged --requests DIR`: takes the requests and carries them out. A reboot
/// goes through `systemctl reboot`, so logind's inhibitors are honoured.
pub fn serve(dir: &Path) -> Result<(), String> {
    let (actions, refused) = take(dir);
    for r in &refused {
        eprintln!("roomagent privileged: refused {r}");
    }
    let mut reboot = None;
    for a in actions {
        match a {
            Action::Reboot { reason } => reboot = Some(reason),
        }
    }
    if let Some(reason) = reboot {
        println!("roomagent privileged: rebooting ({reason})");
        let status = std::process::Command::new("systemctl")
            .args(["--no-block", "reboot"])
            .status()
            .map_err(|e| format!("cannot run systemctl reboot: {e}"))?;
        if !status.success() {
            return Err(format!("systemctl reboot failed ({status})"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("roomagent-priv-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_request_left_by_the_agent_is_taken_once() {
        let d = dir("ok").join("requests");
        let reboot = Action::Reboot {
            reason: "mqtt restart (id r1)".into(),
        };
        let f = request(&d, &reboot, 1_700_000_000_000).unwrap();
        assert!(f.ends_with("1700000000000-reboot.json"));
        assert!(!d.with_extension("staging").exists());
        let (actions, refused) = take(&d);
        assert_eq!(actions, [reboot]);
        assert!(refused.is_empty(), "{refused:?}");
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 0, "taken");
        assert_eq!(take(&d), (vec![], vec![]));
        std::fs::remove_dir_all(d.parent().unwrap()).unwrap();
    }

    #[test]
    fn anything_else_in_the_directory_is_refused_and_removed_without_touching_targets() {
        let d = dir("hostile");
        let secret = d.join("secret.txt");
        std::fs::write(&secret, r#"{"action":"reboot","reason":"x"}"#).unwrap();
        let r = d.join("requests");
        std::fs::create_dir_all(&r).unwrap();
        let w = |name: &str, text: &[u8]| std::fs::write(r.join(name), text).unwrap();
        w("1-a.json", br#"{"action":"format_disk"}"#);
        w("2-b.json", br#"{"action":"reboot","reason":"x","extra":1}"#);
        w("3-c.json", b"not json");
        w("4-d.json", &vec![b' '; 5000]);
        w("5-e.txt", br#"{"action":"reboot","reason":"x"}"#);
        w(
            "6-f.json",
            b"{\"action\":\"reboot\",\"reason\":\"two\\nlines\"}",
        );
        std::os::unix::fs::symlink(&secret, r.join("7-g.json")).unwrap();
        std::fs::create_dir_all(r.join("8-h.json")).unwrap();
        let (actions, refused) = take(&r);
        assert!(actions.is_empty(), "{actions:?}");
        assert_eq!(refused.len(), 8, "{refused:#?}");
        for (i, want) in [
            "unknown variant",
            "unknown field",
            "not a request",
            "larger than 4096",
            "not a request (*.json)",
            "one short line",
            "cannot open",
            "not a regular file",
        ]
        .iter()
        .enumerate()
        {
            assert!(refused[i].contains(want), "{}: {want}", refused[i]);
        }
        assert_eq!(std::fs::read_dir(&r).unwrap().count(), 0);
        assert!(secret.exists(), "a link's target is left alone");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
