//! Reading a configuration file and reporting every problem with its key path and position.
//!
//! serde stops at the first error. To report them all, the loader deserializes, notes the
//! error with its key path (via `serde_path_to_error`), removes that key from a working copy
//! of the document and tries again. Positions come from a span-preserving parse of the
//! original text, so they stay right however many keys were removed.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde_path_to_error::Segment;
use toml_edit::{Document, Item, Table, Value};

use super::Config;
use super::validate;

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted key path, e.g. `signaling.login.name` or `room_server.accounts[1].id`; empty for
    /// syntax errors.
    pub path: String,
    /// 1-based line, when the position is known.
    pub line: Option<usize>,
    /// 1-based column, when the position is known.
    pub column: Option<usize>,
    /// What is wrong and, where it helps, what to do.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let (Some(line), Some(col)) = (self.line, self.column) {
            write!(f, "line {line}, column {col}: ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in one file.
#[derive(Debug, Clone)]
pub struct ConfigErrors {
    /// The file, if it was read from disk.
    pub file: Option<PathBuf>,
    /// The problems, in document order where known.
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self
            .file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "configuration".into());
        let n = self.errors.len();
        write!(f, "{name}: {n} problem{}", if n == 1 { "" } else { "s" })?;
        for e in &self.errors {
            write!(f, "\n  {name}: {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Reads and checks a configuration file, including the checks that only matter for running
/// an agent (device id, login).
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    load_for(path, validate::Purpose::Agent)
}

/// Reads a configuration file and checks it for `purpose`.
pub fn load_for(path: &Path, purpose: validate::Purpose) -> Result<Config, ConfigErrors> {
    let bytes = std::fs::read(path).map_err(|e| ConfigErrors {
        file: Some(path.to_path_buf()),
        errors: vec![ConfigError {
            path: String::new(),
            line: None,
            column: None,
            message: format!("cannot read the file: {e}"),
        }],
    })?;
    let mut config = parse_bytes(&bytes, purpose).map_err(|errors| ConfigErrors {
        file: Some(path.to_path_buf()),
        errors,
    })?;
    config.source = Some(path.to_path_buf());
    Ok(config)
}

/// Parses a configuration file's bytes: [`parse`] once they are UTF-8, else one error at the
/// line and column of the first byte that is not.
pub fn parse_bytes(bytes: &[u8], purpose: validate::Purpose) -> Result<Config, Vec<ConfigError>> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse(text, purpose),
        Err(e) => {
            let good = std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default();
            let (line, column) = line_col(good, good.len());
            Err(vec![ConfigError {
                path: String::new(),
                line: Some(line),
                column: Some(column),
                message: "not UTF-8 text: a TOML file must be UTF-8".into(),
            }])
        }
    }
}

/// Parses configuration text and checks it for `purpose`. Every problem is reported, each
/// with its key path and, where it has one, its line and column:
///
/// ```
/// use roomagent::config::{parse, Purpose};
///
/// let text = "[answer]\nmode = \"sometimes\"\ndelay_ms = \"soon\"\n";
/// let errors = parse(text, Purpose::Agent).unwrap_err();
/// let mode = errors.iter().find(|e| e.path == "answer.mode").unwrap();
/// assert_eq!((mode.line, mode.column), (Some(2), Some(1)));
/// assert!(errors.iter().any(|e| e.path == "answer.delay_ms" && e.line == Some(3)));
/// ```
pub fn parse(text: &str, purpose: validate::Purpose) -> Result<Config, Vec<ConfigError>> {
    let (doc, work) = syntax(text)?;
    let not_configured = !super::setup::names_a_server(&work);
    let at = |segs: &[Seg]| {
        span_of(doc.as_table(), segs)
            .map(|s| line_col(text, s.start))
            .map_or((None, None), |(l, c)| (Some(l), Some(c)))
    };
    let (config, mut errors) = deserialize(work, &at);
    let Some(mut config) = config else {
        errors.sort_by_key(|e| (e.line.unwrap_or(usize::MAX), e.column));
        return Err(errors);
    };
    config.not_configured = not_configured;
    // Validate what did deserialize too (broken keys replaced by defaults), skipping keys
    // already reported so a removed key does not show up again as "missing".
    for (path, message) in validate::check(&config, purpose) {
        let covered = errors.iter().any(|e| {
            path == e.path
                || path.starts_with(&format!("{}.", e.path))
                || e.path.starts_with(&format!("{path}."))
        });
        if !covered {
            let (line, column) = at(&parse_path(&path));
            errors.push(ConfigError {
                path,
                line,
                column,
                message,
            });
        }
    }
    if errors.is_empty() {
        return Ok(config);
    }
    errors.sort_by_key(|e| (e.line.unwrap_or(usize::MAX), e.column));
    Err(errors)
}

/// The file as a span-keeping document (for positions) and as a table to deserialize; a
/// syntax error is the only error then.
fn syntax(text: &str) -> Result<(Document<String>, toml::Table), Vec<ConfigError>> {
    let doc: Document<String> = Document::parse(text.to_string()).map_err(|e| {
        let (line, column) = e
            .span()
            .map(|s| line_col(text, s.start))
            .map_or((None, None), |(l, c)| (Some(l), Some(c)));
        vec![ConfigError {
            path: String::new(),
            line,
            column,
            message: format!("TOML syntax error: {}", e.message().trim()),
        }]
    })?;
    let work: toml::Table = toml::from_str(text).map_err(|e| {
        vec![ConfigError {
            path: String::new(),
            line: None,
            column: None,
            message: format!("TOML syntax error: {}", e.message()),
        }]
    })?;
    Ok((doc, work))
}

/// Deserializes, and on each type error records it and removes the offending key to find
/// the next one: every problem at once, not one per run. `at` positions a key path.
/// Line and column of a key path, when the file has it.
type Position = (Option<usize>, Option<usize>);

fn deserialize(
    mut work: toml::Table,
    at: &dyn Fn(&[Seg]) -> Position,
) -> (Option<Config>, Vec<ConfigError>) {
    let mut errors: Vec<ConfigError> = Vec::new();
    for _ in 0..256 {
        let value = toml::Value::Table(work.clone());
        let err = match serde_path_to_error::deserialize::<_, Config>(value) {
            Ok(c) => return (Some(c), errors),
            Err(err) => err,
        };
        let message = err.inner().message().to_string();
        let mut key_path = segments(err.path());
        // For an unknown key, serde reports the table; the key is in the message.
        if let Some(unknown) = unknown_key(&message)
            && key_path.last() != Some(&Seg::Key(unknown.clone()))
        {
            key_path.push(Seg::Key(unknown));
        }
        let (line, column) = at(&key_path);
        // Removing a wrongly typed required key makes serde report it missing next: that is
        // the same problem, already reported.
        if let Some(missing) = missing_key(&message) {
            key_path.push(Seg::Key(missing));
        }
        let path = render(&key_path);
        if errors.iter().any(|e| e.path == path) {
            break;
        }
        errors.push(ConfigError {
            path,
            line,
            column,
            message: friendly(&message),
        });
        if !remove(&mut work, &key_path) {
            break;
        }
    }
    (None, errors)
}

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
}

fn segments(path: &serde_path_to_error::Path) -> Vec<Seg> {
    path.iter()
        .filter_map(|s| match s {
            Segment::Map { key } => Some(Seg::Key(key.clone())),
            Segment::Seq { index } => Some(Seg::Index(*index)),
            Segment::Enum { variant } => Some(Seg::Key(variant.clone())),
            Segment::Unknown => None,
        })
        .collect()
}

fn parse_path(path: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, rest) = part.split_once('[').unwrap_or((part, ""));
        if !key.is_empty() {
            out.push(Seg::Key(key.to_string()));
        }
        for idx in rest.split('[') {
            if let Some(n) = idx
                .trim_end_matches(']')
                .parse()
                .ok()
                .filter(|_| !idx.is_empty())
            {
                out.push(Seg::Index(n));
            }
        }
    }
    out
}

fn render(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

fn unknown_key(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest.split('`').next()?.to_string())
}

fn missing_key(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_string())
}

fn friendly(message: &str) -> String {
    if message.starts_with("missing field `") {
        return "missing: this key is required".to_string();
    }
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (key, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let expected = expected.trim_start_matches(", ");
        return format!(
            "unknown key `{key}` ({expected}); check the spelling against config.example.toml"
        );
    }
    message.to_string()
}

/// Removes the value at `path` from the working table; `false` if there is nothing to remove
/// (a missing key), which ends the search for further errors.
fn remove(table: &mut toml::Table, path: &[Seg]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut cur: &mut toml::Value = match parents.first() {
        None => {
            return match last {
                Seg::Key(k) => table.remove(k).is_some(),
                Seg::Index(_) => false,
            };
        }
        Some(Seg::Key(k)) => match table.get_mut(k) {
            Some(v) => v,
            None => return false,
        },
        Some(Seg::Index(_)) => return false,
    };
    for seg in &parents[1..] {
        cur = match (seg, cur) {
            (Seg::Key(k), toml::Value::Table(t)) => match t.get_mut(k) {
                Some(v) => v,
                None => return false,
            },
            (Seg::Index(i), toml::Value::Array(a)) => match a.get_mut(*i) {
                Some(v) => v,
                None => return false,
            },
            _ => return false,
        };
    }
    match (last, cur) {
        (Seg::Key(k), toml::Value::Table(t)) => t.remove(k).is_some(),
        (Seg::Index(i), toml::Value::Array(a)) if *i < a.len() => {
            a.remove(*i);
            true
        }
        _ => false,
    }
}

/// The span of the key (or, for array elements, the value) at `path` in the original document.
fn span_of(root: &Table, path: &[Seg]) -> Option<Range<usize>> {
    enum Node<'a> {
        Item(&'a Item),
        Value(&'a Value),
        Table(&'a Table),
    }
    // The deepest part of the path that exists: a missing key points at its table's header,
    // and at nothing when even the table is missing.
    let mut node = Node::Table(root);
    let mut best = None;
    for seg in path {
        let next = match (seg, &node) {
            (Seg::Key(k), Node::Table(t)) => {
                if let Some(span) = t.key(k).and_then(|k| k.span()) {
                    best = Some(span);
                }
                t.get(k).map(Node::Item)
            }
            (Seg::Key(k), Node::Item(item)) => {
                let tl = item.as_table_like()?;
                if let Some(span) = tl.key(k).and_then(|k| k.span()) {
                    best = Some(span);
                }
                tl.get(k).map(Node::Item)
            }
            (Seg::Key(k), Node::Value(Value::InlineTable(t))) => {
                if let Some(span) = t.key(k).and_then(|k| k.span()) {
                    best = Some(span);
                }
                t.get(k).map(Node::Value)
            }
            (Seg::Index(i), Node::Item(Item::ArrayOfTables(a))) => a.get(*i).map(|t| {
                if let Some(span) = t.span() {
                    best = Some(span);
                }
                Node::Table(t)
            }),
            (Seg::Index(i), Node::Item(Item::Value(Value::Array(a))))
            | (Seg::Index(i), Node::Value(Value::Array(a))) => a.get(*i).map(|v| {
                if let Some(span) = v.span() {
                    best = Some(span);
                }
                Node::Value(v)
            }),
            _ => None,
        };
        match next {
            Some(n) => node = n,
            None => break,
        }
    }
    best
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::super::validate::Purpose;
    use super::*;

    const GOOD: &str = r#"
[device]
id = "room-101"

[signaling.login]
name = "room"
password = "pw"
"#;

    #[test]
    fn a_minimal_config_loads_with_defaults() {
        let c = parse(GOOD, Purpose::Agent).unwrap();
        assert_eq!(c.device.id, "room-101");
        assert_eq!(c.answer.delay_ms, 1000);
        assert_eq!(c.signaling.socket_path, "/socket");
    }

    #[test]
    fn unknown_keys_are_named_with_their_position() {
        let text = format!("{GOOD}\n[answer]\ndelay_msec = 5\n");
        let errs = parse(&text, Purpose::Agent).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].path, "answer.delay_msec");
        assert_eq!((errs[0].line, errs[0].column), (Some(10), Some(1)));
        assert!(
            errs[0].message.contains("unknown key `delay_msec`"),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn every_schema_error_is_reported_not_just_the_first() {
        let text = r#"
[device]
id = 5
colour = "red"

[answer]
mode = "sometimes"
delay_ms = "soon"

[signaling.login]
name = "room"
password = "pw"
"#;
        let errs = parse(text, Purpose::Agent).unwrap_err();
        let paths: Vec<_> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "device.id",
                "device.colour",
                "answer.mode",
                "answer.delay_ms"
            ],
            "{errs:#?}"
        );
        assert_eq!(errs[0].line, Some(3));
        assert!(errs[0].message.contains("invalid type"), "{}", errs[0]);
        assert!(errs[2].message.contains("sometimes"), "{}", errs[2]);
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let errs = parse("[device]\nid = \n", Purpose::Agent).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].line, Some(2));
        assert!(
            errs[0].message.starts_with("TOML syntax error"),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn errors_inside_arrays_of_tables_point_at_the_element() {
        let text = format!(
            "{GOOD}\n[[room_server.accounts]]\nid = 1\nname = \"a\"\npassword = \"x\"\n\n[[room_server.accounts]]\nid = \"two\"\nname = \"b\"\npassword = \"y\"\n"
        );
        let errs = parse(&text, Purpose::Agent).unwrap_err();
        assert_eq!(errs[0].path, "room_server.accounts[1].id");
        assert_eq!(errs[0].line, Some(15));
    }

    #[test]
    fn validation_errors_name_the_key() {
        let text = r#"
[device]
id = "bad id!"
[answer]
mode = "allow_list"
[signaling]
host = "http://127.0.0.1:8080/app"
"#;
        let errs = parse(text, Purpose::Agent).unwrap_err();
        let paths: Vec<_> = errs.iter().map(|e| e.path.as_str()).collect();
        assert!(paths.contains(&"device.id"), "{errs:#?}");
        assert!(paths.contains(&"answer.allow"), "{errs:#?}");
        assert!(paths.contains(&"signaling.login.name"), "{errs:#?}");
        let id = errs.iter().find(|e| e.path == "device.id").unwrap();
        assert_eq!(id.line, Some(3));
    }
}
