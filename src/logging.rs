//! Log output, filtered by `[log] level` or `RUST_LOG`: readable text on a terminal; plain
//! text without timestamps when stderr is the systemd journal (which stamps every line
//! itself); one JSON object per line otherwise (files, log shippers).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber. Calling it twice is harmless (the second call does nothing),
/// which keeps tests that start several agents in one process simple.
pub fn init(cfg: &LogConfig) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cfg.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let terminal = std::io::stderr().is_terminal();
    let journal = !terminal && stderr_is_journal();
    let json = match cfg.format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !terminal && !journal,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(terminal);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else if journal {
        builder.without_time().try_init()
    } else {
        builder.try_init()
    };
}

/// Whether stderr is the stream systemd connected to the journal: `$JOURNAL_STREAM` holds
/// that stream's `device:inode`, and is inherited by children whose stderr may be elsewhere.
fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(stream) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    stream == format!("{}:{}", meta.dev(), meta.ino())
}
