//! The device's health as a fleet dashboard reads it: a level (`ok`, `warning`, `error`) and
//! the issues behind it, each with a stable code, a severity, since when, and a sentence a
//! person can act on. Computed on the device from what it observes (the agent's state, the
//! media engine, the board's temperature, disk space, the clock) and published retained on
//! `<prefix>/<id>/health` (docs/fleet.md).
//!
//! [`Tracker::assess`] does no I/O: an [`Observed`] snapshot and the time in, a [`Health`]
//! out; it remembers when each issue began so `since` holds while the issue lasts. The
//! readings of the system are in [`observe_system`].

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::HealthConfig;
use crate::core::{AgentState, Attached};

/// How bad one issue is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The room works, with less (software encoding, no HDMI input, a hot board).
    Warning,
    /// The room does not work as a room should (cannot be called, no microphone).
    Error,
}

/// The device's overall health: the worst of its issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Nothing wrong.
    Ok,
    /// At least one warning, no error.
    Warning,
    /// At least one error.
    Error,
}

/// One thing wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    /// A stable code a dashboard can count and filter by (`signaling_down`, `camera_lost`, …).
    pub code: &'static str,
    /// How bad.
    pub severity: Severity,
    /// When it began, Unix milliseconds (as observed by this agent since it started).
    pub since: u64,
    /// What is wrong, in words.
    pub detail: String,
}

/// The health document's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    /// The worst severity, or ok.
    pub level: Level,
    /// Every current issue, by code.
    pub issues: Vec<Issue>,
}

/// Free space on a filesystem.
#[derive(Debug, Clone, PartialEq)]
pub struct Disk {
    /// Where it is mounted (or a path on it).
    pub path: String,
    /// Bytes available to the agent.
    pub free: u64,
    /// Bytes in all.
    pub total: u64,
}

/// What the system says, read by [`observe_system`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct System {
    /// The hottest thermal zone, °C.
    pub temperature_c: Option<f64>,
    /// The fullest of the filesystems the agent writes to.
    pub disk: Option<Disk>,
    /// Whether the clock is synchronised (`None`: cannot tell here).
    pub clock_synced: Option<bool>,
}

/// One look at the device.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// The agent's state.
    pub state: Option<AgentState>,
    /// Media is on.
    pub media: bool,
    /// Encoder profiles passed over at start because their encoder failed its check.
    pub passed_over: Vec<(String, String)>,
    /// The encoder in use.
    pub encoder: Option<String>,
    /// The last encoder replacement during a call: from, to, why.
    pub encoder_replaced: Option<(String, String, String)>,
    /// Errors reported recently (within [`ERRORS_WINDOW`]), oldest first.
    pub recent_errors: Vec<String>,
    /// The certificate files the configuration names.
    pub certificates: Vec<crate::inventory::Certificate>,
    /// The system's readings.
    pub system: System,
}

/// A certificate this close to its expiry is a warning.
pub const CERTIFICATE_WARNING: Duration = Duration::from_secs(30 * 86_400);

/// Errors within this window make an `errors` issue.
pub const ERRORS_WINDOW: Duration = Duration::from_secs(600);

/// Remembers when each issue began.
#[derive(Debug, Default)]
pub struct Tracker {
    /// Code → (first seen, Unix ms then).
    began: BTreeMap<&'static str, (Instant, u64)>,
    /// When the next issue still waiting out its grace is due, as of the last assessment.
    due: Option<Instant>,
}

struct Candidate {
    code: &'static str,
    severity: Severity,
    detail: String,
    /// Reported only once it has lasted this long (a registration in progress is not down).
    after: Duration,
}

fn candidates(seen: &Observed, t: &HealthConfig, unix_ms: u64) -> Vec<Candidate> {
    let mut out = Vec::new();
    let mut add = |code, severity, detail: String| {
        // A registration in progress is not down: that one waits out its grace.
        let after = if code == "signaling_down" {
            Duration::from_secs(t.signaling_grace_s)
        } else {
            Duration::ZERO
        };
        out.push(Candidate {
            code,
            severity,
            detail,
            after,
        })
    };
    if let Some(s) = &seen.state {
        // A fresh install says so here too: it cannot be called until it is configured.
        if !s.registered {
            let why = s
                .signaling_error
                .clone()
                .unwrap_or_else(|| "still connecting".into());
            add(
                "signaling_down",
                Severity::Error,
                format!(
                    "not registered with the signaling server ({why}): the room cannot be called"
                ),
            );
        }
        let d = &s.devices;
        for (code, attached, severity, what) in [
            ("camera_lost", d.camera, Severity::Error, "the camera"),
            (
                "microphone_lost",
                d.microphone,
                Severity::Error,
                "the microphone",
            ),
            (
                "hdmi_lost",
                d.hdmi,
                Severity::Warning,
                "the HDMI capture input",
            ),
            ("speaker_lost", d.speaker, Severity::Warning, "the speaker"),
            ("display_lost", d.display, Severity::Warning, "the display"),
        ] {
            if attached == Attached::Lost {
                add(
                    code,
                    severity,
                    format!("{what} was attached and is gone (unplugged or failing)"),
                );
            }
        }
    }
    if seen.media {
        let encoder = seen.encoder.as_deref().unwrap_or("another encoder");
        if let Some((from, to, why)) = &seen.encoder_replaced {
            add(
                "encoder_replaced",
                Severity::Warning,
                format!("the {from} encoder failed during a call ({why}); {to} encodes now"),
            );
        } else if let Some((profile, why)) = seen.passed_over.first() {
            add(
                "encoder_replaced",
                Severity::Warning,
                format!(
                    "the {profile} encoder failed its check at start ({why}); {encoder} encodes instead"
                ),
            );
        }
    }
    let sys = &seen.system;
    if let Some(c) = sys.temperature_c {
        let (warn, error) = (
            f64::from(t.temperature_warning_c),
            f64::from(t.temperature_error_c),
        );
        if c >= warn {
            let severity = if c >= error {
                Severity::Error
            } else {
                Severity::Warning
            };
            add(
                "temperature",
                severity,
                format!(
                    "the board is at {c:.0} °C (warning from {warn:.0}, error from {error:.0}): boards slow down when hot"
                ),
            );
        }
    }
    if let Some(d) = &sys.disk
        && d.total > 0
    {
        let percent = d.free as f64 * 100.0 / d.total as f64;
        let warn = f64::from(t.disk_free_warning_percent);
        if percent < warn {
            let severity = if percent < warn / 2.0 {
                Severity::Error
            } else {
                Severity::Warning
            };
            add(
                "disk_full",
                severity,
                format!(
                    "{percent:.0} % free on {} ({} MiB of {} MiB)",
                    d.path,
                    d.free >> 20,
                    d.total >> 20
                ),
            );
        }
    }
    if sys.clock_synced == Some(false) {
        add(
            "clock_unsynchronised",
            Severity::Warning,
            "the system clock is not synchronised (NTP): command times and certificates are judged by it".into(),
        );
    }
    let now_s = (unix_ms / 1000) as i64;
    let mut worst: Option<(Severity, String)> = None;
    for c in &seen.certificates {
        let found = match (c.not_after, &c.error) {
            (Some(end), _) if end <= now_s => Some((
                Severity::Error,
                format!(
                    "{} ({}) expired {} day(s) ago",
                    c.key,
                    c.file,
                    (now_s - end) / 86_400
                ),
            )),
            (Some(end), _) if end - now_s < CERTIFICATE_WARNING.as_secs() as i64 => Some((
                Severity::Warning,
                format!(
                    "{} ({}) expires in {} day(s)",
                    c.key,
                    c.file,
                    (end - now_s) / 86_400
                ),
            )),
            (None, Some(e)) => Some((Severity::Warning, e.clone())),
            _ => None,
        };
        if let Some(f) = found
            && worst.as_ref().is_none_or(|w| f.0 > w.0)
        {
            worst = Some(f);
        }
    }
    if let Some((severity, detail)) = worst {
        add("certificate_expiry", severity, detail);
    }
    if let Some(last) = seen.recent_errors.last() {
        add(
            "errors",
            Severity::Warning,
            format!(
                "{} error(s) in the last {} min; the latest: {last}",
                seen.recent_errors.len(),
                ERRORS_WINDOW.as_secs() / 60
            ),
        );
    }
    out
}

impl Tracker {
    /// The health now, from what was observed; `now` and `unix_ms` are the same moment.
    pub fn assess(
        &mut self,
        seen: &Observed,
        config: &HealthConfig,
        now: Instant,
        unix_ms: u64,
    ) -> Health {
        let found = candidates(seen, config, unix_ms);
        self.began
            .retain(|code, _| found.iter().any(|c| c.code == *code));
        let mut issues = Vec::new();
        self.due = None;
        for c in found {
            let (first, since) = *self.began.entry(c.code).or_insert((now, unix_ms));
            if now.duration_since(first) < c.after {
                let due = first + c.after;
                self.due = Some(self.due.map_or(due, |d| d.min(due)));
                continue;
            }
            issues.push(Issue {
                code: c.code,
                severity: c.severity,
                since,
                detail: c.detail,
            });
        }
        issues.sort_by_key(|i| i.code);
        let level = match issues.iter().map(|i| i.severity).max() {
            None => Level::Ok,
            Some(Severity::Warning) => Level::Warning,
            Some(Severity::Error) => Level::Error,
        };
        Health { level, issues }
    }

    /// When an issue still waiting out its grace becomes due (as of the last assessment),
    /// if any: never a moment already past, so a caller sleeping until it does not spin.
    pub fn next_due(&self) -> Option<Instant> {
        self.due
    }
}

/// The system's readings: temperature, disk space where the agent writes (its working
/// directory: the state directory under systemd) and of `/`, and the clock.
pub fn observe_system() -> System {
    let disks = ["/", "."]
        .iter()
        .filter_map(|p| disk(Path::new(p)))
        .min_by(|a, b| {
            let share = |d: &Disk| d.free as f64 / d.total.max(1) as f64;
            share(a).total_cmp(&share(b))
        });
    System {
        temperature_c: crate::mqtt::telemetry::temperature_c(),
        disk: disks,
        clock_synced: clock_synced(),
    }
}

/// Free space of the filesystem holding `path`.
pub fn disk(path: &Path) -> Option<Disk> {
    let (free, total) = crate::sys::statvfs(path)?;
    let shown = if path == Path::new(".") {
        std::env::current_dir()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| ".".into())
    } else {
        path.display().to_string()
    };
    Some(Disk {
        path: shown,
        free,
        total,
    })
}

/// Whether the system clock is synchronised. systemd-timesyncd (the default on Debian,
/// Raspberry Pi OS and Ubuntu) touches `/run/systemd/timesync/synchronized` once it is;
/// otherwise the kernel's NTP state says, which the service's `ProtectClock=` may keep from
/// the agent: then `None`.
pub fn clock_synced() -> Option<bool> {
    let root = crate::board::Board::root();
    let timesync = root.join("run/systemd/timesync");
    if timesync.join("synchronized").exists() {
        return Some(true);
    }
    if root != Path::new("/") {
        // A stand-in root says only what its files say.
        return timesync.is_dir().then_some(false);
    }
    crate::sys::kernel_clock_synced()
}

#[cfg(test)]
mod tests;
