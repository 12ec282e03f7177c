//! A real TURN relay (coturn's `turnserver`) for the test's own network namespace.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `turnserver`; stopped on drop.
pub struct Turn {
    child: Child,
    /// `host:port` it listens on (UDP and TCP).
    pub addr: String,
    /// Long-term credential user.
    pub user: String,
    /// Its password.
    pub password: String,
    log: std::path::PathBuf,
}

impl Turn {
    /// Starts coturn on `ip` (an address of the test's namespace) and a free port.
    pub fn start(ip: &str) -> Turn {
        let port = std::net::TcpListener::bind((ip, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log =
            std::env::temp_dir().join(format!("roomagent-turn-{}-{port}.log", std::process::id()));
        let child = Command::new("turnserver")
            .args([
                "-n",
                "--listening-ip",
                ip,
                "--relay-ip",
                ip,
                "--listening-port",
                &port.to_string(),
                "--min-port",
                "40000",
                "--max-port",
                "40200",
                "--lt-cred-mech",
                "--user",
                "room:relay-secret",
                "--realm",
                "roomagent.test",
                "--no-tls",
                "--no-dtls",
                "--no-cli",
                "--no-multicast-peers",
                "--simple-log",
                "--verbose",
            ])
            .arg("--log-file")
            .arg(&log)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("turnserver not found: install coturn (scripts/setup-debian.sh)");
        let addr = format!("{ip}:{port}");
        // Ready when it logs its listeners (a probe connection would show up in its log).
        for _ in 0..100 {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("IPv4. TCP listener opened on") || text.contains("TCP listener opened")
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Turn {
            child,
            addr,
            user: "room".into(),
            password: "relay-secret".into(),
            log,
        }
    }

    /// What coturn logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}
