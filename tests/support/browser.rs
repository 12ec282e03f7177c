//! Headless Chromium driven over W3C WebDriver (Debian's `chromium` + `chromium-driver`),
//! with the flags docs/testing.md lists: fake camera and microphone, no mDNS hiding of local
//! addresses, a fresh profile, no background networking.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

/// A browser session. Dropping it ends the browser and the driver.
pub struct Browser {
    http: reqwest::Client,
    base: String,
    session: String,
    driver: Child,
    profile: std::path::PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium.
    pub async fn start() -> Browser {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver not found: install chromium-driver (scripts/setup-debian.sh)");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let mut ready = false;
        for _ in 0..100 {
            if let Ok(r) = http.get(format!("{base}/status")).send().await
                && r.status().is_success()
            {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(ready, "chromedriver did not start");
        let profile =
            std::env::temp_dir().join(format!("roomagent-chromium-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).unwrap();
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
            "--disable-features=WebRtcHideLocalIpsWithMdns",
            "--autoplay-policy=no-user-gesture-required",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([format!("--user-data-dir={}", profile.display())])
        .collect::<Vec<_>>();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args},
        }}});
        let r: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromium did not start: {r}"))
            .to_string();
        Browser {
            http,
            base,
            session,
            driver,
            profile,
        }
    }

    async fn call(&self, path: &str, body: Value) -> Value {
        let r: Value = self
            .http
            .post(format!("{}/session/{}/{path}", self.base, self.session))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if r["value"].get("error").is_some() {
            panic!("webdriver {path}: {}", r["value"]);
        }
        r["value"].clone()
    }

    /// Starts Chromium on the room page at `url`, logs in as alice and dials the room device.
    pub async fn calling_the_room(url: &str) -> Browser {
        let browser = Browser::start().await;
        browser.goto(url).await;
        browser
            .eval("window.roomagent.login('alice', 'alice')")
            .await;
        browser
            .eval(&format!("window.roomagent.dial({})", super::ROOM))
            .await;
        browser
    }

    /// Opens a page.
    pub async fn goto(&self, url: &str) {
        self.call("url", json!({ "url": url })).await;
    }

    /// Runs an async script: its body receives `arguments` and must call the last argument
    /// (the callback) with the result.
    pub async fn run(&self, script: &str, args: Value) -> Value {
        self.call("execute/async", json!({ "script": script, "args": args }))
            .await
    }

    /// Awaits a JS promise expression and returns its value.
    pub async fn eval(&self, expr: &str) -> Value {
        let script = format!(
            "const done = arguments[arguments.length - 1];
             Promise.resolve().then(async () => ({expr})).then(v => done({{ok: v}}), e => done({{err: String(e)}}));"
        );
        let v = self.run(&script, json!([])).await;
        if let Some(e) = v.get("err") {
            panic!("page script {expr} failed: {e}");
        }
        v["ok"].clone()
    }

    /// Polls `expr` until `pred` accepts it (or panics after `limit`).
    pub async fn wait_for(
        &self,
        what: &str,
        expr: &str,
        limit: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let v = self.eval(expr).await;
            if pred(&v) {
                return v;
            }
            if tokio::time::Instant::now() > deadline {
                let log = self
                    .eval("document.getElementById('log').textContent")
                    .await;
                panic!(
                    "timed out waiting for {what}; last value {v}\npage log:\n{}",
                    log.as_str().unwrap_or("")
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Best effort: end the session so Chromium exits, then the driver we started.
        use std::io::{Read, Write};
        let addr = self.base.trim_start_matches("http://").to_string();
        if let Ok(mut s) = std::net::TcpStream::connect(&addr) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = write!(
                s,
                "DELETE /session/{} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n",
                self.session
            );
            let mut buf = Vec::new();
            let _ = s.read_to_end(&mut buf);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
