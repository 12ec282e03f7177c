//! System figures for telemetry: process CPU share, memory, uptime and SoC temperature; the
//! board model for Home Assistant's `hw_version`.

use std::time::Instant;

/// Samples the process's CPU use between calls.
#[derive(Debug, Default)]
pub struct CpuMeter {
    last: Option<(Instant, u64)>,
}

fn process_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

impl CpuMeter {
    /// Percent of one core used since the previous call (`None` the first time).
    pub fn sample(&mut self) -> Option<f64> {
        let now = Instant::now();
        let ticks = process_ticks()?;
        let out = self.last.map(|(at, before)| {
            let secs = now.duration_since(at).as_secs_f64().max(1e-3);
            (ticks.saturating_sub(before)) as f64 / 100.0 / secs * 100.0
        });
        self.last = Some((now, ticks));
        out
    }
}

/// Resident memory of this process, MiB.
pub fn rss_mib() -> Option<f64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
}

/// The hottest thermal zone in °C, when the board has any (`/sys/class/thermal`, under the
/// board's root: [`crate::board::Board::root`]).
pub fn temperature_c() -> Option<f64> {
    let dir = std::fs::read_dir(crate::board::Board::root().join("sys/class/thermal")).ok()?;
    dir.filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("thermal_zone"))
        .filter_map(|e| std::fs::read_to_string(e.path().join("temp")).ok())
        .filter_map(|t| t.trim().parse::<f64>().ok())
        .map(|milli| milli / 1000.0)
        .fold(None, |acc: Option<f64>, t| {
            Some(acc.map_or(t, |a| a.max(t)))
        })
}

/// The board's model from the device tree (`Raspberry Pi 5 Model B Rev 1.0`), when it has one.
pub fn board_model() -> Option<String> {
    crate::board::Board::read().model
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_measured_between_samples() {
        let mut m = CpuMeter::default();
        assert_eq!(m.sample(), None);
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        assert!(x > 0);
        let pct = m.sample().unwrap();
        assert!((0.0..=400.0).contains(&pct), "{pct}");
        assert!(rss_mib().unwrap() > 1.0);
    }
}
