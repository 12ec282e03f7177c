//! Secrets (passwords, app secrets) that must never reach a log line or an MQTT payload.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

/// A secret string. `Debug` and `Display` print `***`; the value is only reachable through
/// [`Secret::expose`], so a `?config` in a log line cannot leak it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Reads a secret from a file (e.g. a systemd credential under `$CREDENTIALS_DIRECTORY`),
    /// dropping one trailing newline.
    pub fn from_file(path: &Path) -> std::io::Result<Secret> {
        let text = std::fs::read_to_string(path)?;
        let text = text.strip_suffix('\n').unwrap_or(&text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        Ok(Secret(text.to_string()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// A secret given inline or as a file to read at start-up.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SecretSource {
    /// The inline value, if any.
    pub inline: Option<Secret>,
    /// The file, if any. Relative paths resolve against `$CREDENTIALS_DIRECTORY` when set.
    pub file: Option<PathBuf>,
}

impl SecretSource {
    /// Resolves the secret: the file wins over the inline value.
    pub fn resolve(&self) -> std::io::Result<Option<Secret>> {
        if let Some(file) = &self.file {
            let path = match std::env::var_os("CREDENTIALS_DIRECTORY") {
                Some(dir) if file.is_relative() => Path::new(&dir).join(file),
                _ => file.clone(),
            };
            return Secret::from_file(&path).map(Some);
        }
        Ok(self.inline.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print_their_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "*** ***");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn secret_files_lose_one_trailing_newline() {
        let dir = std::env::temp_dir().join(format!("roomagent-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("pw");
        std::fs::write(&f, "s3cret\n").unwrap();
        assert_eq!(Secret::from_file(&f).unwrap().expose(), "s3cret");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
