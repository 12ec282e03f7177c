//! The board this runs on, as its device tree says (model and `compatible` strings), and the
//! device nodes it has: what board profiles are matched against and what telemetry reports.

/// The board, as its device tree says: the model string and the `compatible` list (board
/// first, then the SoC: `raspberrypi,4-compute-module`, `brcm,bcm2711`). Read under
/// `/sys/firmware/devicetree/base` (under systemd's `ProcSubset=pid` `/proc/device-tree` is
/// hidden), else `/proc/device-tree`. `ROOMAGENT_BOARD_ROOT` names a directory that stands in
/// for `/` here and for the device nodes profiles require (tests; diagnosing a board from a
/// copy of its files).
#[derive(Debug, Clone, Default)]
pub struct Board {
    /// The model string (`Raspberry Pi Compute Module 4 Rev 1.0`).
    pub model: Option<String>,
    /// The compatible strings, most specific first.
    pub compatible: Vec<String>,
    root: std::path::PathBuf,
}

impl Board {
    /// The board this runs on.
    pub fn read() -> Board {
        Board::read_at(&Board::root())
    }

    /// Where the board's files are: `/`, or `ROOMAGENT_BOARD_ROOT`.
    pub fn root() -> std::path::PathBuf {
        std::env::var_os("ROOMAGENT_BOARD_ROOT")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| "/".into())
    }

    /// The board whose files are under `root`.
    pub fn read_at(root: &std::path::Path) -> Board {
        let read = |name: &str| {
            ["sys/firmware/devicetree/base", "proc/device-tree"]
                .iter()
                .find_map(|dir| std::fs::read(root.join(dir).join(name)).ok())
        };
        Board {
            model: read("model").and_then(|m| strings(&m).into_iter().next()),
            compatible: read("compatible").map(|c| strings(&c)).unwrap_or_default(),
            root: root.to_path_buf(),
        }
    }

    /// Whether the device node `path` (absolute) exists on this board.
    pub fn has_node(&self, path: &str) -> bool {
        self.root.join(path.trim_start_matches('/')).exists()
    }
}

/// A device-tree property's strings: NUL-separated and -terminated, sometimes with blanks.
pub fn strings(raw: &[u8]) -> Vec<String> {
    raw.split(|b| *b == 0)
        .map(|s| String::from_utf8_lossy(s).trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model_text(raw: &[u8]) -> Option<String> {
        strings(raw).into_iter().next()
    }

    #[test]
    fn the_device_tree_model_is_read_without_its_terminator() {
        assert_eq!(
            model_text(b"Raspberry Pi 5 Model B Rev 1.0\0").as_deref(),
            Some("Raspberry Pi 5 Model B Rev 1.0")
        );
        assert_eq!(model_text(b"\0"), None);
        assert_eq!(model_text(b""), None);
    }

    /// The board is read from its device tree: model and compatible strings, NUL-separated.
    #[test]
    fn the_board_is_read_from_its_device_tree() {
        let root = std::env::temp_dir().join(format!("roomagent-board-{}", std::process::id()));
        let dt = root.join("proc/device-tree");
        std::fs::create_dir_all(&dt).unwrap();
        std::fs::create_dir_all(root.join("dev")).unwrap();
        std::fs::write(dt.join("model"), b"Raspberry Pi Compute Module 4 Rev 1.0\0").unwrap();
        std::fs::write(
            dt.join("compatible"),
            b"raspberrypi,4-compute-module\0brcm,bcm2711\0",
        )
        .unwrap();
        std::fs::write(root.join("dev/video11"), b"").unwrap();
        let b = Board::read_at(&root);
        assert_eq!(
            b.model.as_deref(),
            Some("Raspberry Pi Compute Module 4 Rev 1.0")
        );
        assert_eq!(
            b.compatible,
            ["raspberrypi,4-compute-module", "brcm,bcm2711"]
        );
        assert!(b.has_node("/dev/video11"));
        assert!(!b.has_node("/dev/v4l2-nvenc"));
        let _ = std::fs::remove_dir_all(&root);
        let none = Board::read_at(std::path::Path::new("/nonexistent"));
        assert_eq!(none.model, None);
        assert!(none.compatible.is_empty());
    }
}
