//! The stand-ins for board elements (tests/standins: v4l2h264enc, nvv4l2h264enc, nvvidconv,
//! vah264lpenc, libcamera's provider and source), built as a GStreamer plugin next to the
//! test binaries, and what a test sets for GStreamer to load it.

use std::path::PathBuf;

/// A directory holding only the stand-in plugin (GStreamer scans GST_PLUGIN_PATH
/// recursively, and the build directory holds every dependency's shared objects), copied from
/// where cargo builds it, next to the test binaries. Panics, saying how to build it, when it
/// is not there.
pub fn plugin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    // target/<profile>/deps/<test>-<hash> → target/<profile>
    let built = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("a test binary lives in target/<profile>/deps")
        .to_path_buf();
    let so = built.join("libgstroomagentstandins.so");
    assert!(
        so.exists(),
        "the stand-in plugin is not built in {}: run `cargo build -p roomagent-standins` \
         (scripts/test.sh and cross/floor-tests.sh do)",
        built.display()
    );
    let dir = built.join("gst-standins");
    std::fs::create_dir_all(&dir).unwrap();
    // Copied aside and renamed into place: tests in other processes may be loading it.
    static COPIES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COPIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let partial = dir.join(format!("partial-{}-{n}", std::process::id()));
    std::fs::copy(&so, &partial).expect("copy the stand-in plugin");
    std::fs::rename(&partial, dir.join("libgstroomagentstandins.so")).expect("place the plugin");
    dir
}

/// GST_PLUGIN_PATH for the stand-ins (searched as well as the system's plugins), and the
/// other variables `extra` adds.
pub fn env(extra: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    std::iter::once(("GST_PLUGIN_PATH", plugin_dir().display().to_string()))
        .chain(extra.iter().map(|(k, v)| (*k, v.to_string())))
        .collect()
}

/// A directory standing in for a board's `/` (ROOMAGENT_BOARD_ROOT): its device tree's model
/// and compatible strings, and the device nodes named.
pub fn board_root(name: &str, model: &str, compatible: &[&str], nodes: &[&str]) -> PathBuf {
    let root = std::env::temp_dir().join(format!("roomagent-board-{name}-{}", std::process::id()));
    let dt = root.join("sys/firmware/devicetree/base");
    std::fs::create_dir_all(&dt).unwrap();
    std::fs::write(dt.join("model"), format!("{model}\0")).unwrap();
    let mut c = Vec::new();
    for s in compatible {
        c.extend_from_slice(s.as_bytes());
        c.push(0);
    }
    std::fs::write(dt.join("compatible"), c).unwrap();
    for n in nodes {
        let p = root.join(n.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"").unwrap();
    }
    root
}
