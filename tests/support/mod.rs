//! Shared test parts: an in-process room server on port 0, whole agents started in-process,
//! and `Peer`, a dialect client written directly against the wire format (raw JSON), so the
//! tests check the agent against the protocol document rather than against its own types.
#![allow(dead_code)]

pub mod bottleneck;
pub mod browser;
pub mod encoded;
pub mod ha;
pub mod lossy;
pub mod mqtt;
pub mod netns;
pub mod rng;
pub mod rtc_gate;
pub mod rtm_gate;
pub mod service;
pub mod standins;
pub mod tls;
pub mod turn;
pub mod world;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use roomagent::config::{self, Config, Purpose};
use roomagent::core::{AgentState, CallPhase};
use roomagent::daemon::{self, AgentHandle};
use roomagent::room_server::{self, RoomServerHandle};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

pub const ROOM: i64 = 1001;
pub const ALICE: i64 = 2001;
pub const BOB: i64 = 2002;

pub const SERVER_ACCOUNTS: &str = r#"
[[room_server.accounts]]
id = 1001
name = "room"
password = "room"
display_name = "Room 101"

[[room_server.accounts]]
id = 1002
name = "room2"
password = "room2"

[[room_server.accounts]]
id = 1003
name = "room3"
password = "room3"

[[room_server.accounts]]
id = 2001
name = "alice"
password = "alice"
display_name = "Alice"

[[room_server.accounts]]
id = 2002
name = "bob"
password = "bob"

[[room_server.apps]]
app_id = "demo-app"
secret = "demo-secret"
company = "Demo"
"#;

/// Log output for failing tests: `RUST_LOG=debug cargo test`.
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// A room server running in this process.
pub struct Server {
    pub handle: RoomServerHandle,
    task: JoinHandle<()>,
}

impl Server {
    /// Starts on a free loopback port.
    pub async fn start() -> Server {
        Self::start_on("127.0.0.1:0".parse().unwrap()).await
    }

    /// Starts on a given address (to restart on the same port).
    pub async fn start_on(addr: SocketAddr) -> Server {
        init_logs();
        let cfg = config::parse(SERVER_ACCOUNTS, Purpose::RoomServer).unwrap();
        let mut listener = None;
        for _ in 0..50 {
            match TcpListener::bind(addr).await {
                Ok(l) => {
                    listener = Some(l);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        let listener = listener.expect("cannot bind the room server");
        let (handle, fut) = room_server::serve(&cfg.room_server, listener).unwrap();
        Server {
            handle,
            task: tokio::spawn(fut),
        }
    }

    pub fn api(&self) -> String {
        self.handle.api_url()
    }

    /// Stops the server and waits until its port is free.
    pub async fn stop(self) -> SocketAddr {
        let addr = self.handle.addr();
        self.handle.shutdown();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
        addr
    }
}

/// Agent configuration text against `api`, with `extra` TOML appended verbatim (put sections
/// such as `[answer]` there).
pub fn agent_toml(api: &str, answer: &str) -> String {
    format!(
        r#"
[device]
id = "room-101"
name = "Room 101"

[signaling]
host = "{api}"
reconnect_min_ms = 50
reconnect_max_ms = 400
request_timeout_s = 5

[signaling.login]
name = "room"
password = "room"

[answer]
{answer}

[media]
enabled = false

[log]
level = "warn"
"#
    )
}

/// An agent with MQTT management (no media): `login` is also its device id.
pub fn mqtt_toml(api: &str, login: &str, port: u16, answer: &str, mqtt_extra: &str) -> String {
    format!(
        r#"
[device]
id = "{login}"
name = "Room {login}"

[signaling]
host = "{api}"
reconnect_min_ms = 50
reconnect_max_ms = 400
request_timeout_s = 5

[signaling.login]
name = "{login}"
password = "{login}"

[answer]
{answer}

[media]
enabled = false

[mqtt]
enabled = true
host = "127.0.0.1"
port = {port}
reconnect_min_ms = 200
reconnect_max_ms = 1000
telemetry_interval_s = 1
{mqtt_extra}

[log]
level = "warn"
"#
    )
}

/// A media-enabled agent configuration: test sources, small video, fake display and speaker.
pub fn media_toml(api: &str, login: &str, answer: &str, extra: &str) -> String {
    format!(
        r#"
[device]
id = "{login}"
name = "{login}"

[signaling]
host = "{api}"
reconnect_min_ms = 50
reconnect_max_ms = 400
request_timeout_s = 5
{extra}

[signaling.login]
name = "{login}"
password = "{login}"

[answer]
{answer}

[media]
profile = "test"
camera = "none"
microphone = "none"
hdmi_capture = "none"
display = "fakesink"
speaker = "fakesink"
width = 320
height = 180
framerate = 15
video_bitrate_kbps = 300
display_width = 320
display_height = 180
stats_interval_s = 1

[log]
level = "warn"
"#
    )
}

/// A whole agent running in this process.
pub struct Agent {
    pub handle: AgentHandle,
    /// The simulated board, when `[gpio] backend = "sim"`.
    pub gpio_board: Option<roomagent::gpio::SimBoard>,
    /// Why GPIO could not be opened.
    pub gpio_error: Option<String>,
    /// The MQTT broker link.
    pub mqtt_link: Option<watch::Receiver<roomagent::mqtt::LinkStatus>>,
    pub state: watch::Receiver<AgentState>,
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Agent {
    pub async fn start_toml(toml: &str) -> Agent {
        let cfg: Config = config::parse(toml, Purpose::Agent).expect("test config is valid");
        Self::start(cfg).await
    }

    /// The room device with media on, answering every call after 300 ms, registered.
    pub async fn answering_room(api: &str) -> Agent {
        let toml = media_toml(api, "room", "mode = \"always\"\ndelay_ms = 300", "");
        let mut agent = Self::start_toml(&toml).await;
        agent.registered().await;
        agent
    }

    pub async fn start(cfg: Config) -> Agent {
        init_logs();
        let stop = CancellationToken::new();
        let (started, fut) = daemon::start(cfg, stop.clone()).await.unwrap();
        let handle = started.handle;
        let state = handle.state();
        Agent {
            handle,
            gpio_board: started.gpio_board,
            gpio_error: started.gpio_error,
            mqtt_link: started.mqtt_link,
            state,
            stop,
            task: tokio::spawn(fut),
        }
    }

    /// Waits (up to 10 s) for a state matching `pred`; panics with the last state otherwise.
    pub async fn wait_for(&mut self, what: &str, pred: impl Fn(&AgentState) -> bool) -> AgentState {
        self.wait_within(what, Duration::from_secs(10), pred).await
    }

    /// Waits up to `limit` for a state matching `pred`; panics with the last state otherwise.
    pub async fn wait_within(
        &mut self,
        what: &str,
        limit: Duration,
        pred: impl Fn(&AgentState) -> bool,
    ) -> AgentState {
        let r = tokio::time::timeout(limit, self.state.wait_for(|s| pred(s)))
            .await
            .map(|r| r.map(|s| s.clone()));
        match r {
            Ok(Ok(s)) => s,
            _ => panic!(
                "timed out waiting for {what}; state is {:#?}",
                *self.state.borrow()
            ),
        }
    }

    pub async fn registered(&mut self) -> AgentState {
        self.wait_for("registration", |s| s.registered).await
    }

    pub async fn phase(&mut self, phase: CallPhase) -> AgentState {
        self.wait_for(&format!("{phase:?}"), move |s| s.call == phase)
            .await
    }

    pub fn now(&self) -> AgentState {
        self.state.borrow().clone()
    }

    /// The media statistics as they are now.
    pub fn media_now(&self) -> roomagent::media::MediaStats {
        self.handle
            .media_stats()
            .expect("media on")
            .borrow()
            .clone()
    }

    /// Remote video frames the agent decoded so far, over all its sessions.
    pub fn frames_decoded(&self) -> u64 {
        self.media_now()
            .sessions
            .iter()
            .map(|s| s.frames_decoded)
            .sum()
    }

    /// Waits (up to 15 s) for media statistics matching `pred`; panics with the last ones
    /// otherwise, saying `what` was awaited.
    pub async fn stats_until(
        &self,
        what: &str,
        pred: impl Fn(&roomagent::media::MediaStats) -> bool,
    ) -> roomagent::media::MediaStats {
        let mut stats = self.handle.media_stats().expect("media on");
        let got = tokio::time::timeout(Duration::from_secs(15), stats.wait_for(|st| pred(st)))
            .await
            .is_ok();
        let st = stats.borrow().clone();
        assert!(got, "{what}: the media statistics never got there: {st:#?}");
        st
    }

    pub async fn stop(self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }

    /// Waits (up to 10 s) for the agent to end by itself and returns how it ended.
    pub async fn ended(self) -> anyhow::Result<()> {
        match tokio::time::timeout(Duration::from_secs(10), self.task).await {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => Err(anyhow::anyhow!("the agent task panicked: {e}")),
            Err(_) => panic!("the agent did not end within 10 s"),
        }
    }
}

/// A raw dialect client (a person's browser, in effect).
pub struct Peer {
    pub user_id: i64,
    pub sid: String,
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    inbox: VecDeque<Value>,
    next: u64,
}

pub async fn http_login(api: &str, name: &str, password: &str) -> Value {
    let params = json!({"method": "login", "name": name, "password": password}).to_string();
    reqwest::Client::new()
        .post(format!("{api}/account"))
        .form(&[("params", params)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

impl Peer {
    /// Logs in, connects and registers as a `webphone`.
    pub async fn connect(api: &str, name: &str, password: &str) -> Peer {
        let login = http_login(api, name, password).await;
        assert_eq!(login["result"], 0, "login of {name} failed: {login}");
        let sid = login["SID"].as_str().unwrap().to_string();
        let user_id = login["user"]["id"].as_i64().unwrap();
        let url = format!("{}/socket?SID={sid}", api.replacen("http", "ws", 1));
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut p = Peer {
            user_id,
            sid: sid.clone(),
            ws,
            inbox: VecDeque::new(),
            next: 0,
        };
        let r = p
            .request(
                "call",
                "doRegister",
                json!({"SID": sid, "userId": user_id, "deviceType": "webphone"}),
            )
            .await;
        assert_eq!(r["result"], 0, "{r}");
        p
    }

    pub async fn send_raw(&mut self, text: String) {
        self.ws.send(Message::text(text)).await.unwrap();
    }

    /// Sends a request and waits for its reply (pushes that arrive meanwhile are kept).
    pub async fn request(&mut self, module: &str, method: &str, body: Value) -> Value {
        self.next += 1;
        let id = format!("t{}", self.next);
        let mut frame = body;
        frame["module"] = json!(module);
        frame["method"] = json!(method);
        frame["reqId"] = json!(id);
        self.send_raw(frame.to_string()).await;
        self.wait(&format!("reply to {module}/{method}"), |v| {
            v["reqId"] == json!(id)
        })
        .await
    }

    /// The next text frame within `limit`; pings and other control frames do not extend it.
    async fn recv(&mut self, limit: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => {
                    return Some(serde_json::from_str(&t).expect("server frames are JSON"));
                }
                Ok(Some(Ok(_))) => continue,
                _ => return None,
            }
        }
    }

    /// Waits up to 10 s for a frame matching `pred`.
    pub async fn wait(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.wait_within(what, Duration::from_secs(10), pred)
            .await
            .unwrap_or_else(|| panic!("no {what} within 10 s; inbox: {:?}", self.inbox))
    }

    pub async fn wait_within(
        &mut self,
        _what: &str,
        limit: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        if let Some(i) = self.inbox.iter().position(&pred) {
            return self.inbox.remove(i);
        }
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let v = self.recv(left).await?;
            if pred(&v) {
                return Some(v);
            }
            self.inbox.push_back(v);
        }
    }

    /// Waits for a push `module/method`.
    pub async fn push(&mut self, module: &str, method: &str) -> Value {
        let (m, me) = (module.to_string(), method.to_string());
        self.wait(&format!("push {module}/{method}"), move |v| {
            v["module"] == json!(m) && v["method"] == json!(me) && v.get("reqId").is_none()
        })
        .await
    }

    /// Waits for a `call/doEvent` push with `event`.
    pub async fn call_event(&mut self, event: &str) -> Value {
        let e = event.to_string();
        self.wait(&format!("doEvent {event}"), move |v| {
            v["module"] == "call" && v["method"] == "doEvent" && v["event"] == json!(e)
        })
        .await
    }

    /// Whether a push `module/method` arrives within `limit`.
    pub async fn no_push_within(&mut self, module: &str, method: &str, limit: Duration) -> bool {
        let (m, me) = (module.to_string(), method.to_string());
        self.wait_within("", limit, move |v| {
            v["module"] == json!(m) && v["method"] == json!(me) && v.get("reqId").is_none()
        })
        .await
        .is_none()
    }

    /// Creates a temporary room (`newAppRoom`).
    pub async fn new_room(&mut self) -> i64 {
        let r = self
            .request("room", "newAppRoom", json!({"name": "test call", "numberLimit": 8, "roomtype": 2, "userId": self.user_id}))
            .await;
        assert_eq!(r["result"], 0, "{r}");
        r["roomId"].as_i64().unwrap()
    }

    /// Invites `target` to `room`.
    pub async fn invite(&mut self, target: i64, room: i64) -> Value {
        self.request(
            "call",
            "doInvite",
            json!({"ownUserId": self.user_id, "targetUserId": target, "ownDeviceType": "webphone", "type": 2, "roomId": room}),
        )
        .await
    }

    /// Enters `room`.
    pub async fn enter(&mut self, room: i64) -> Value {
        let r = self
            .request(
                "meeting",
                "enter",
                json!({"userId": self.user_id, "roomId": room, "roomType": 2}),
            )
            .await;
        assert_eq!(r["result"], 0, "{r}");
        r
    }

    /// The caller's half of a call the agent auto-answers: room, invite, ringing, agree,
    /// enter, onConnected. Returns the room id once the agent is in it.
    pub async fn call_agent(&mut self, agent: i64) -> i64 {
        let room = self.new_room().await;
        let r = self.invite(agent, room).await;
        assert_eq!(r["result"], 0, "invite: {r}");
        self.call_event("onRinging").await;
        self.push("call", "doAgree").await;
        self.enter(room).await;
        self.request(
            "call",
            "doEvent",
            json!({"ownUserId": self.user_id, "targetUserId": agent, "event": "onConnected", "roomId": room, "roomType": 2}),
        )
        .await;
        let entered = self.push("meeting", "EnterRoom").await;
        assert_eq!(entered["client"]["id"], agent);
        room
    }
}
