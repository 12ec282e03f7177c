//! What a device is and runs, for a fleet's inventory (`<prefix>/<id>/info`, retained):
//! agent version, board (model, `compatible`, serial), network interfaces (MAC, addresses),
//! OS and kernel, GStreamer, disk, clock synchronisation, certificate expiry, and the cameras
//! and sound cards attached with their USB ids.
//!
//! The board's files are read under its root ([`crate::board::Board::root`]), so a test or a
//! copy of a board's files can stand in; the network interfaces and the kernel are always the
//! machine's own (libc, [`crate::sys`]).

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Value, json};

use crate::board::{Board, strings};
use crate::config::Config;
use crate::media::EngineInfo;

/// A certificate file the configuration names, and when it expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Certificate {
    /// The configuration key (`mqtt.client_cert_file`).
    pub key: String,
    /// The file.
    pub file: String,
    /// Its first certificate's notAfter, Unix seconds.
    pub not_after: Option<i64>,
    /// Why it could not be read.
    pub error: Option<String>,
}

/// The certificate files of a configuration, read now.
pub fn certificates(c: &Config) -> Vec<Certificate> {
    let files: [(&str, &Option<PathBuf>); 4] = [
        ("mqtt.ca_file", &c.mqtt.ca_file),
        ("mqtt.client_cert_file", &c.mqtt.client_cert_file),
        ("signaling.ca_file", &c.signaling.ca_file),
        ("signaling.client_cert_file", &c.signaling.client_cert_file),
    ];
    files
        .into_iter()
        .filter_map(|(key, path)| path.as_ref().map(|p| (key, p)))
        .map(|(key, path)| {
            let read = crate::tls::expiry(key, path);
            Certificate {
                key: key.to_string(),
                file: path.display().to_string(),
                not_after: read.as_ref().ok().copied(),
                error: read.err(),
            }
        })
        .collect()
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// `/etc/os-release` (or `/usr/lib/os-release`): name, id, version id and codename.
fn os(root: &Path) -> Value {
    let text = ["etc/os-release", "usr/lib/os-release"]
        .iter()
        .find_map(|p| std::fs::read_to_string(root.join(p)).ok())
        .unwrap_or_default();
    let mut v = serde_json::Map::new();
    for line in text.lines() {
        let Some((k, val)) = line.split_once('=') else {
            continue;
        };
        let key = match k.trim() {
            "PRETTY_NAME" => "name",
            "ID" => "id",
            "VERSION_ID" => "version_id",
            "VERSION_CODENAME" => "codename",
            _ => continue,
        };
        v.insert(key.into(), json!(val.trim().trim_matches('"')));
    }
    Value::Object(v)
}

/// The USB `vendor:product` of the device behind a sysfs class entry, when it is on USB.
fn usb_id(class_entry: &Path) -> Option<String> {
    let mut dir = std::fs::canonicalize(class_entry.join("device")).ok()?;
    for _ in 0..4 {
        if let (Some(v), Some(p)) = (
            read_trimmed(&dir.join("idVendor")),
            read_trimmed(&dir.join("idProduct")),
        ) {
            return Some(format!("{v}:{p}"));
        }
        dir = dir.parent()?.to_path_buf();
    }
    None
}

fn class_entries(root: &Path, class: &str, prefix: &str) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(root.join("sys/class").join(class))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
                .filter(|(name, _)| {
                    name.strip_prefix(prefix)
                        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort_by_key(|(name, _)| {
        name.trim_start_matches(|c: char| !c.is_ascii_digit())
            .parse::<u32>()
            .unwrap_or(0)
    });
    out
}

/// Video devices (cameras, HDMI capture, codecs) and sound cards, with their names and USB ids.
fn peripherals(root: &Path) -> Value {
    let video: Vec<Value> = class_entries(root, "video4linux", "video")
        .into_iter()
        .map(|(node, path)| {
            json!({
                "node": format!("/dev/{node}"),
                "name": read_trimmed(&path.join("name")),
                "usb_id": usb_id(&path),
            })
        })
        .collect();
    let sound: Vec<Value> = class_entries(root, "sound", "card")
        .into_iter()
        .map(|(card, path)| {
            json!({
                "card": card,
                "id": read_trimmed(&path.join("id")),
                "usb_id": usb_id(&path),
            })
        })
        .collect();
    json!({"video": video, "sound": sound})
}

/// Network interfaces but loopback: MAC, whether running, and addresses. These are the
/// machine's own (`getifaddrs`), never a stand-in root's.
fn network() -> Value {
    let list: Vec<Value> = crate::sys::interfaces()
        .into_iter()
        .filter(|i| i.name != "lo")
        .map(|i| {
            json!({
                "interface": i.name,
                "mac": i.mac,
                "running": i.running,
                "addresses": i.addresses.iter().map(ToString::to_string).collect::<Vec<_>>(),
            })
        })
        .collect();
    Value::Array(list)
}

/// The board's serial number: the device tree's `serial-number` (Raspberry Pi, Jetson).
fn serial(root: &Path) -> Option<String> {
    ["sys/firmware/devicetree/base", "proc/device-tree"]
        .iter()
        .find_map(|dir| std::fs::read(root.join(dir).join("serial-number")).ok())
        .and_then(|raw| strings(&raw).into_iter().next())
}

/// The inventory document (without `seq`/`at`, which the publisher adds).
pub fn collect(
    id: &str,
    media: Option<&EngineInfo>,
    certificates: &[Certificate],
    system: &crate::health::System,
) -> Value {
    let root = Board::root();
    let board = Board::read_at(&root);
    let kernel = crate::sys::uname()
        .map(|(release, machine)| json!({"release": release, "machine": machine}));
    json!({
        "device": id,
        "version": env!("CARGO_PKG_VERSION"),
        "board": {
            "model": board.model,
            "compatible": board.compatible,
            "serial": serial(&root),
        },
        "os": os(&root),
        "kernel": kernel,
        "gstreamer": media.map(|m| m.gstreamer.to_string()),
        "media_profile": media.map(|m| m.profile.clone()),
        "encoder": media.map(|m| m.encoder.clone()),
        "network": network(),
        "disk": system.disk.as_ref().map(|d| json!({"path": d.path, "free": d.free, "total": d.total})),
        "clock_synced": system.clock_synced,
        "certificates": certificates,
        "peripherals": peripherals(&root),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in board's files: os-release, serial, a USB camera and a USB sound card.
    #[test]
    fn a_boards_files_become_its_inventory() {
        let root = std::env::temp_dir().join(format!("roomagent-inventory-{}", std::process::id()));
        let w = |p: &str, text: &str| {
            let f = root.join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, text).unwrap();
        };
        w(
            "etc/os-release",
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n",
        );
        w("proc/device-tree/serial-number", "10000000abcdef01\0");
        // A USB camera: the class entry's device is an interface under the USB device.
        w("sys/devices/usb1/1-1/idVendor", "046d\n");
        w("sys/devices/usb1/1-1/idProduct", "085e\n");
        w(
            "sys/devices/usb1/1-1/1-1:1.0/video4linux/video0/name",
            "Logitech BRIO\n",
        );
        w(
            "sys/devices/platform/codec/video4linux/video11/name",
            "bcm2835-codec-encode\n",
        );
        std::fs::create_dir_all(root.join("sys/class/video4linux")).unwrap();
        std::fs::create_dir_all(root.join("sys/devices/usb1/1-1/1-1:1.0/video4linux/video0"))
            .unwrap();
        for (node, dev) in [
            ("video0", "sys/devices/usb1/1-1/1-1:1.0"),
            ("video11", "sys/devices/platform/codec"),
        ] {
            let entry = root
                .join("sys/devices")
                .join(dev.trim_start_matches("sys/devices/"))
                .join("video4linux")
                .join(node);
            std::os::unix::fs::symlink(&entry, root.join("sys/class/video4linux").join(node))
                .unwrap();
            std::os::unix::fs::symlink(root.join(dev), entry.join("device")).unwrap();
        }
        let os = os(&root);
        assert_eq!(os["name"], "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(os["id"], "debian");
        assert_eq!(os["version_id"], "12");
        assert_eq!(os["codename"], "bookworm");
        assert_eq!(serial(&root).as_deref(), Some("10000000abcdef01"));
        let p = peripherals(&root);
        assert_eq!(p["video"][0]["node"], "/dev/video0");
        assert_eq!(p["video"][0]["name"], "Logitech BRIO");
        assert_eq!(p["video"][0]["usb_id"], "046d:085e");
        assert_eq!(p["video"][1]["node"], "/dev/video11");
        assert_eq!(p["video"][1]["usb_id"], Value::Null);
        assert_eq!(p["sound"], json!([]));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn this_machines_inventory_has_its_kernel_and_interfaces() {
        let v = collect("room", None, &[], &crate::health::System::default());
        assert_eq!(v["device"], "room");
        assert!(v["kernel"]["release"].is_string(), "{v}");
        assert!(v["network"].is_array());
        assert!(
            v.to_string().len() < 128 * 1024,
            "fits AWS IoT's payload limit"
        );
    }
}
