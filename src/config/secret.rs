//! Secrets (passwords, app secrets, tokens, private keys) that must never reach a log line,
//! an error message or an MQTT payload: `Debug` and `Display` hide them, and a secret key given
//! a value of the wrong type is refused without quoting that value.

use std::fmt;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use serde::de::{self, Unexpected, Visitor};
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
        d.deserialize_string(SecretVisitor)
    }
}

/// Accepts a string; anything else is refused by its kind alone (`a number`), never with
/// the value, which serde's own errors would quote into the configuration error.
struct SecretVisitor;

impl SecretVisitor {
    fn refuse<E: de::Error>(&self, kind: &'static str) -> Result<Secret, E> {
        Err(E::invalid_type(Unexpected::Other(kind), self))
    }
}

impl<'de> Visitor<'de> for SecretVisitor {
    type Value = Secret;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string (the value is not shown: it is a secret)")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Secret, E> {
        Ok(Secret(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Secret, E> {
        Ok(Secret(v))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Secret, E> {
        self.refuse("a boolean")
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Secret, E> {
        self.refuse("a number")
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Secret, E> {
        self.refuse("a number")
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Secret, E> {
        self.refuse("a number")
    }

    fn visit_char<E: de::Error>(self, v: char) -> Result<Secret, E> {
        Ok(Secret(v.to_string()))
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Secret, E> {
        self.refuse("bytes")
    }
}

/// Bytes that must not be printed, such as a private key read from a file. `Debug` shows
/// only the length.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Wraps bytes.
    pub fn new(bytes: Vec<u8>) -> SecretBytes {
        SecretBytes(bytes)
    }

    /// The bytes, for the one place that uses them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} secret bytes>", self.0.len())
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
        self.resolve_in(
            std::env::var_os("CREDENTIALS_DIRECTORY")
                .as_deref()
                .map(Path::new),
        )
    }

    /// [`Self::resolve`] with the credentials directory given.
    fn resolve_in(&self, credentials: Option<&Path>) -> std::io::Result<Option<Secret>> {
        let Some(file) = &self.file else {
            return Ok(self.inline.clone());
        };
        let path = match credentials {
            Some(dir) if file.is_relative() => dir.join(file),
            _ => file.clone(),
        };
        Secret::from_file(&path).map(Some).map_err(|e| {
            if credentials.is_none() && file.is_relative() && e.kind() == ErrorKind::NotFound {
                // A credential name, but no credentials were passed: say where they come from.
                std::io::Error::new(
                    ErrorKind::NotFound,
                    format!(
                        "{} is a credential name, but the agent was started without systemd \
                         credentials ($CREDENTIALS_DIRECTORY is not set): run it as the \
                         roomagent service with /etc/credstore/{0} present (systemd before 250, \
                         as in Debian 11 and Ubuntu 22.04, needs a drop-in with \
                         LoadCredential={0}:/etc/credstore/{0}), or give an absolute path",
                        file.display()
                    ),
                )
            } else {
                e
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_name_without_credentials_says_where_they_come_from() {
        let src = SecretSource {
            inline: None,
            file: Some(PathBuf::from("roomagent.signaling-password")),
        };
        let e = src.resolve_in(None).unwrap_err().to_string();
        assert!(e.contains("$CREDENTIALS_DIRECTORY is not set"), "{e}");
        assert!(
            e.contains("LoadCredential=roomagent.signaling-password:/etc/credstore/roomagent.signaling-password"),
            "{e}"
        );
        let dir = std::env::temp_dir().join(format!("roomagent-cred-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("roomagent.signaling-password"), "s3cret\n").unwrap();
        let got = src.resolve_in(Some(&dir)).unwrap().unwrap();
        assert_eq!(got.expose(), "s3cret");
        let missing = SecretSource {
            inline: None,
            file: Some(dir.join("absent")),
        };
        let e = missing.resolve_in(None).unwrap_err().to_string();
        assert!(
            !e.contains("CREDENTIALS_DIRECTORY"),
            "an absolute path is just missing: {e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn secrets_never_print_their_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "*** ***");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn secret_bytes_show_only_their_length() {
        let key = SecretBytes::new(b"-----BEGIN PRIVATE KEY-----".to_vec());
        assert_eq!(format!("{key:?}"), "<27 secret bytes>");
        assert_eq!(key.expose(), b"-----BEGIN PRIVATE KEY-----");
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Holder {
        password: Secret,
    }

    #[test]
    fn a_secret_of_the_wrong_type_is_refused_without_its_value() {
        for (text, kind) in [
            ("password = 987654321", "a number"),
            ("password = 98765.4321", "a number"),
            ("password = true", "a boolean"),
        ] {
            let err = toml::from_str::<Holder>(text)
                .unwrap_err()
                .message()
                .to_string();
            assert!(err.contains(kind), "{err}");
            assert!(!err.contains("98765") && !err.contains("true"), "{err}");
        }
        let ok: Holder = toml::from_str("password = \"s3cret\"").unwrap();
        assert_eq!(ok.password.expose(), "s3cret");
        assert!(!format!("{ok:?}").contains("s3cret"));
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
