//! An in-memory world on virtual time: several agent cores, each with its RTCPeer session
//! (sans-IO), the room server's transport-free hub between them, raw dialect clients (a
//! person's browser, in effect), and a stand-in media engine that answers session starts with
//! local SDP and candidates. No sockets, no clock, no GStreamer: scenarios run
//! deterministically in milliseconds. `progress()` moves every message until nothing is left
//! to move; `advance(d)` moves virtual time, firing every timer on the way.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use roomagent::config::{self, Purpose};
use roomagent::core::{
    Action, Agent, AgentState, AnswerPolicy, CallEvent, CallPhase, ClientId, CoreConfig,
    MediaCommand, MediaEvent, MediaSignal, SessionRole, SignalingEvent, UserId,
};
use roomagent::room_server::hub::{ConnId, Delivery, Hub};
use roomagent::signaling::rtcpeer::session::{Session, Settings, Transmit};
use roomagent::signaling::rtcpeer::translate::Identity;
use serde_json::{Value, json};

use super::SERVER_ACCOUNTS;

/// How many message moves one `progress()` may make before the world is declared livelocked.
const MAX_STEPS: usize = 100_000;

/// The stand-in media engine of one device: tracks each session's offer/answer exchange and
/// reports it connected (and the peer's video decoded) once both descriptions are set.
#[derive(Default)]
pub struct FakeMedia {
    sessions: BTreeMap<ClientId, FakeSession>,
    out: VecDeque<MediaEvent>,
    /// Sessions that fail (once each) instead of connecting.
    pub fail: Vec<ClientId>,
    /// Sessions that never connect (once each): no event at all, as a lost path looks.
    pub stall: Vec<ClientId>,
    /// Every command the core gave.
    pub commands: Vec<MediaCommand>,
}

#[derive(Default)]
struct FakeSession {
    local: bool,
    remote: bool,
    connected: bool,
}

impl FakeMedia {
    fn handle(&mut self, cmd: MediaCommand) {
        self.commands.push(cmd.clone());
        match cmd {
            MediaCommand::StartSession { peer, role, .. } => {
                self.sessions.insert(peer, FakeSession::default());
                if role == SessionRole::Offerer {
                    self.local(
                        peer,
                        MediaSignal::Offer {
                            sdp: format!("v=0 offer to {peer}"),
                        },
                    );
                }
            }
            MediaCommand::RemoteSignal { peer, signal } => self.remote(peer, signal),
            MediaCommand::StopSession { peer } => {
                self.sessions.remove(&peer);
            }
            MediaCommand::StopAll => self.sessions.clear(),
            _ => {}
        }
    }

    fn local(&mut self, peer: ClientId, signal: MediaSignal) {
        let candidate = MediaSignal::Candidate {
            candidate: format!("candidate:1 1 UDP 1 10.0.0.1 {} typ host", 4000 + peer.0),
            sdp_mline_index: 0,
            sdp_mid: Some("0".into()),
        };
        self.out.push_back(MediaEvent::LocalSignal { peer, signal });
        self.out.push_back(MediaEvent::LocalSignal {
            peer,
            signal: candidate,
        });
        if let Some(s) = self.sessions.get_mut(&peer) {
            s.local = true;
        }
        self.check(peer);
    }

    fn remote(&mut self, peer: ClientId, signal: MediaSignal) {
        let offer = matches!(signal, MediaSignal::Offer { .. });
        let description = offer || matches!(signal, MediaSignal::Answer { .. });
        let Some(s) = self.sessions.get_mut(&peer) else {
            return;
        };
        if description {
            s.remote = true;
        }
        if offer {
            self.local(
                peer,
                MediaSignal::Answer {
                    sdp: format!("v=0 answer to {peer}"),
                },
            );
        }
        self.check(peer);
    }

    fn check(&mut self, peer: ClientId) {
        let Some(s) = self.sessions.get_mut(&peer) else {
            return;
        };
        if s.local && s.remote && !s.connected {
            if let Some(i) = self.stall.iter().position(|p| *p == peer) {
                self.stall.remove(i);
                s.local = false;
                return;
            }
            if let Some(i) = self.fail.iter().position(|p| *p == peer) {
                self.fail.remove(i);
                self.sessions.remove(&peer);
                self.out.push_back(MediaEvent::SessionFailed {
                    peer,
                    reason: "DTLS handshake failed (stand-in)".into(),
                });
                return;
            }
            s.connected = true;
            self.out.push_back(MediaEvent::SessionConnected { peer });
            self.out.push_back(MediaEvent::RemoteVideo { peer });
        }
    }

    /// A connected session breaks (its ICE/DTLS connection failed).
    pub fn break_session(&mut self, peer: ClientId) {
        if self.sessions.remove(&peer).is_some() {
            self.out.push_back(MediaEvent::SessionFailed {
                peer,
                reason: "ICE connection failed (stand-in)".into(),
            });
        }
    }

    /// Sessions connected right now.
    pub fn connected(&self) -> Vec<ClientId> {
        self.sessions
            .iter()
            .filter(|(_, s)| s.connected)
            .map(|(p, _)| *p)
            .collect()
    }
}

/// One agent: its core, its session with the hub while connected, its stand-in media.
pub struct Device {
    pub agent: Agent,
    pub user_id: UserId,
    pub media: FakeMedia,
    pub events: Vec<CallEvent>,
    name: String,
    password: String,
    link: Option<(ConnId, Session)>,
}

impl Device {
    pub fn state(&self) -> AgentState {
        self.agent.state()
    }

    pub fn phase(&self) -> CallPhase {
        self.agent.state().call
    }

    /// The reason of every `Ended` event so far.
    pub fn endings(&self) -> Vec<roomagent::core::EndReason> {
        self.events
            .iter()
            .filter_map(|e| match e {
                CallEvent::Ended { reason, .. } => Some(reason.clone()),
                _ => None,
            })
            .collect()
    }
}

/// A raw dialect client on the hub.
pub struct Raw {
    pub user_id: i64,
    conn: ConnId,
    pub inbox: Vec<Value>,
    next: u64,
}

/// The whole world.
pub struct World {
    pub now: Instant,
    pub hub: Hub,
    pub devices: Vec<Device>,
    raws: Vec<Raw>,
    next_conn: ConnId,
    server_up: bool,
}

fn hub() -> Hub {
    let cfg = config::parse(SERVER_ACCOUNTS, Purpose::RoomServer).unwrap();
    Hub::from_config(&cfg.room_server)
}

impl World {
    pub fn new() -> World {
        World {
            now: Instant::now(),
            hub: hub(),
            devices: Vec::new(),
            raws: Vec::new(),
            next_conn: 1,
            server_up: true,
        }
    }

    /// An agent logged in as `name` (password = name) with the given answer policy,
    /// registered and idle. Returns its index.
    pub fn device(&mut self, name: &str, policy: AnswerPolicy) -> usize {
        let cfg = CoreConfig {
            policy,
            device_name: name.into(),
            ..CoreConfig::default()
        };
        self.devices.push(Device {
            agent: Agent::new(cfg),
            user_id: UserId(0),
            media: FakeMedia::default(),
            events: Vec::new(),
            name: name.into(),
            password: name.into(),
            link: None,
        });
        let i = self.devices.len() - 1;
        self.connect(i);
        self.progress();
        i
    }

    fn login(&mut self, name: &str, password: &str) -> (i64, String, ConnId) {
        let params = json!({"method": "login", "name": name, "password": password}).to_string();
        let reply = serde_json::to_value(self.hub.account(&params)).unwrap();
        assert_eq!(reply["result"], 0, "login {name}: {reply}");
        let sid = reply["SID"].as_str().unwrap().to_string();
        let user = reply["user"]["id"].as_i64().unwrap();
        let conn = self.next_conn;
        self.next_conn += 1;
        assert!(self.hub.connect(conn, &sid));
        (user, sid, conn)
    }

    /// Logs a device in and registers it, as the RTCPeer backend does after every connect.
    pub fn connect(&mut self, i: usize) {
        let (name, password) = (
            self.devices[i].name.clone(),
            self.devices[i].password.clone(),
        );
        let (user, sid, conn) = self.login(&name, &password);
        let register = json!({"module": "call", "method": "doRegister", "reqId": "register",
            "SID": sid, "userId": user, "deviceType": "tv"});
        let replies = self.hub.frame(conn, &register.to_string());
        let ok = replies.iter().any(|d| {
            d.to == conn && serde_json::from_str::<Value>(&d.text).unwrap()["result"] == 0
        });
        assert!(ok, "registration of {name} refused: {replies:?}");
        let me = Identity {
            user_id: UserId(user),
            device_type: "tv".into(),
            name: name.clone(),
        };
        let settings = Settings {
            me,
            keepalive: Duration::from_secs(20),
            request_timeout: Duration::from_secs(10),
        };
        let d = &mut self.devices[i];
        d.user_id = UserId(user);
        d.link = Some((conn, Session::new(settings, self.now)));
        d.agent.handle_signaling(
            self.now,
            SignalingEvent::Registered {
                user_id: UserId(user),
            },
        );
    }

    /// The server goes away: every connection drops; the devices keep their calls.
    pub fn server_down(&mut self) {
        self.server_up = false;
        for d in &mut self.devices {
            if d.link.take().is_some() {
                d.agent.handle_signaling(
                    self.now,
                    SignalingEvent::Disconnected {
                        reason: "the room server went away".into(),
                    },
                );
            }
        }
        self.raws.clear();
        self.progress();
    }

    /// The server comes back with `fresh` state (a restart) or its old state (a network
    /// outage), and every device logs in again.
    pub fn server_up(&mut self, fresh: bool) {
        if fresh {
            self.hub = hub();
        } else {
            let conns: Vec<ConnId> = (1..self.next_conn).collect();
            for c in conns {
                let out = self.hub.disconnect(c);
                drop(out);
            }
        }
        self.server_up = true;
        for i in 0..self.devices.len() {
            self.connect(i);
        }
        self.progress();
    }

    /// A raw client (a person's browser) logged in and registered.
    pub fn raw(&mut self, name: &str) -> usize {
        let (user, sid, conn) = self.login(name, name);
        let register = json!({"module": "call", "method": "doRegister", "reqId": "r0",
            "SID": sid, "userId": user, "deviceType": "webphone"});
        let out = self.hub.frame(conn, &register.to_string());
        self.raws.push(Raw {
            user_id: user,
            conn,
            inbox: Vec::new(),
            next: 0,
        });
        self.deliver(out);
        self.raws.len() - 1
    }

    /// Sends a request from a raw client and returns its reply (after everything it caused
    /// has been moved).
    pub fn request(&mut self, r: usize, module: &str, method: &str, mut body: Value) -> Value {
        let raw = &mut self.raws[r];
        raw.next += 1;
        let id = format!("raw{}", raw.next);
        body["module"] = json!(module);
        body["method"] = json!(method);
        body["reqId"] = json!(id);
        let out = self.hub.frame(raw.conn, &body.to_string());
        self.deliver(out);
        self.progress();
        let raw = &mut self.raws[r];
        let i = raw
            .inbox
            .iter()
            .position(|v| v["reqId"] == json!(id))
            .unwrap_or_else(|| panic!("no reply to {module}/{method}"));
        raw.inbox.remove(i)
    }

    /// Pushes `module/method` a raw client received so far.
    pub fn pushes(&self, r: usize, module: &str, method: &str) -> Vec<Value> {
        self.raws[r]
            .inbox
            .iter()
            .filter(|v| v["module"] == module && v["method"] == method && v.get("reqId").is_none())
            .cloned()
            .collect()
    }

    fn deliver(&mut self, out: Vec<Delivery>) {
        for d in out {
            if let Some(raw) = self.raws.iter_mut().find(|r| r.conn == d.to) {
                raw.inbox.push(serde_json::from_str(&d.text).unwrap());
                continue;
            }
            let now = self.now;
            if let Some(dev) = self
                .devices
                .iter_mut()
                .find(|dev| dev.link.as_ref().is_some_and(|(c, _)| *c == d.to))
            {
                let (_, session) = dev.link.as_mut().unwrap();
                session
                    .handle_frame(now, &d.text)
                    .expect("frames are never fatal");
            }
        }
    }

    /// Moves every message (core actions, media events, frames through the hub, events back
    /// to the cores) until nothing moves.
    pub fn progress(&mut self) {
        for _ in 0..MAX_STEPS {
            if !self.step() {
                return;
            }
        }
        panic!("the world does not settle: livelock");
    }

    fn step(&mut self) -> bool {
        let now = self.now;
        let mut moved = false;
        let mut frames = Vec::new();
        for d in &mut self.devices {
            while let Some(action) = d.agent.poll_action() {
                moved = true;
                match action {
                    Action::Signal(out) => {
                        if let Some((_, s)) = &mut d.link {
                            s.handle_outgoing(now, out);
                        }
                    }
                    Action::Media(cmd) => d.media.handle(cmd),
                    Action::Event(e) => d.events.push(e),
                    Action::State(_) => {}
                    _ => {}
                }
            }
            while let Some(e) = d.media.out.pop_front() {
                moved = true;
                d.agent.handle_media(now, e);
            }
            if let Some((conn, s)) = &mut d.link {
                while let Some(t) = s.poll_transmit() {
                    moved = true;
                    match t {
                        Transmit::Text(text) => frames.push((*conn, text)),
                        Transmit::Ping => s.handle_pong(now),
                    }
                }
                while let Some(e) = s.poll_event() {
                    moved = true;
                    d.agent.handle_signaling(now, e);
                }
            }
        }
        for (conn, text) in frames {
            let out = self.hub.frame(conn, &text);
            self.deliver(out);
        }
        moved
    }

    /// Moves virtual time forward by `by`, firing every timer that falls due on the way.
    pub fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        loop {
            self.progress();
            let next = self
                .devices
                .iter()
                .flat_map(|d| {
                    let s = d.link.as_ref().and_then(|(_, s)| s.poll_timeout());
                    [d.agent.next_timeout(), s]
                })
                .flatten()
                .min();
            match next {
                Some(at) if at <= target => {
                    self.now = self.now.max(at);
                    let now = self.now;
                    for d in &mut self.devices {
                        d.agent.handle_timeout(now);
                        if let Some((_, s)) = &mut d.link {
                            s.handle_timeout(now)
                                .expect("keep-alive answered in memory");
                        }
                    }
                }
                _ => break,
            }
        }
        self.now = target;
        self.progress();
    }
}

/// The client id a user has in a room of this dialect.
pub fn client(u: UserId) -> ClientId {
    ClientId(u.0)
}

/// Room ids, for comparisons.
pub fn rooms(world: &World, i: usize) -> Option<i64> {
    world.devices[i].state().room_id.map(|r| r.0)
}

/// Every participant a device sees, with its media state.
pub fn members(world: &World, i: usize) -> HashMap<i64, (roomagent::core::MediaState, bool)> {
    world.devices[i]
        .state()
        .members
        .iter()
        .map(|m| (m.client_id.0, (m.media, m.video_in)))
        .collect()
}
