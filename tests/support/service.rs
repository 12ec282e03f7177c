//! The `roomagent` binary run the way systemd runs it: `run --config FILE` with a
//! `NOTIFY_SOCKET` (and optionally `WATCHDOG_USEC`) owned by the test, signals by pid.

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::net::UnixDatagram;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// A notification socket as systemd would hold it: every datagram the agent sends, in order.
pub struct NotifySocket {
    /// Its path (the `NOTIFY_SOCKET` value).
    pub path: PathBuf,
    rx: mpsc::UnboundedReceiver<String>,
    /// Every message received so far, in order.
    pub seen: Vec<String>,
}

impl NotifySocket {
    /// Binds a socket under `dir`. Needs a tokio runtime.
    pub fn bind(dir: &std::path::Path) -> NotifySocket {
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = socket.recv(&mut buf).await {
                if tx
                    .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                    .is_err()
                {
                    break;
                }
            }
        });
        NotifySocket {
            path,
            rx,
            seen: Vec::new(),
        }
    }

    /// Waits for a message matching `pred` (messages before it are kept in `seen`); panics
    /// with everything seen when none comes within `limit`.
    pub async fn wait(
        &mut self,
        what: &str,
        limit: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(m)) => {
                    self.seen.push(m.clone());
                    if pred(&m) {
                        return m;
                    }
                }
                _ => panic!(
                    "no notification {what} within {limit:?}; seen: {:#?}",
                    self.seen
                ),
            }
        }
    }

    /// Collects what arrives during `period`.
    pub async fn collect(&mut self, period: Duration) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + period;
        let mut got = Vec::new();
        while let Ok(Some(m)) = tokio::time::timeout_at(deadline, self.rx.recv()).await {
            self.seen.push(m.clone());
            got.push(m);
        }
        got
    }
}

/// The value of `KEY=` in a notification, if present.
pub fn field<'a>(message: &'a str, key: &str) -> Option<&'a str> {
    message
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

/// A running `roomagent run` process.
pub struct Service {
    child: Child,
    /// The notifications it sent.
    pub notify: NotifySocket,
    /// Its configuration file (rewrite it, then send SIGHUP).
    pub config: PathBuf,
    dir: PathBuf,
    log: PathBuf,
}

impl Service {
    /// Writes `config` to a fresh directory and starts the binary with `NOTIFY_SOCKET` and the
    /// extra environment.
    pub fn start(name: &str, config: &str, env: &[(&str, &str)]) -> Service {
        let dir = std::env::temp_dir().join(format!(
            "roomagent-service-{name}-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = dir.join("config.toml");
        std::fs::write(&cfg, config).unwrap();
        let notify = NotifySocket::bind(&dir);
        let log = dir.join("agent.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_roomagent"));
        cmd.arg("run")
            .arg("--config")
            .arg(&cfg)
            .env("NOTIFY_SOCKET", &notify.path)
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("agent.out")).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start the roomagent binary");
        Service {
            child,
            notify,
            config: cfg,
            dir,
            log,
        }
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("still running")
    }

    /// Sends a signal (`HUP`, `TERM`, …) to it, by pid.
    pub fn signal(&self, sig: &str) {
        let ok = std::process::Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// Waits up to `limit` for it to exit.
    pub async fn exited_within(&mut self, limit: Duration) -> Option<ExitStatus> {
        tokio::time::timeout(limit, self.child.wait())
            .await
            .ok()
            .map(|r| r.expect("wait for roomagent"))
    }

    /// What it logged (stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("roomagent log ({}):\n{}", self.log.display(), self.log());
        }
    }
}
