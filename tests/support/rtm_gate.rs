//! A test RTM gate written from the protocol notes (docs/rtm.md): FPNN over TCP on loopback,
//! `which` (so it doubles as the dispatch service), `*key`, `auth`, `*ping`, `bye`, the RTC
//! room quests and `sendmsg`. It records every quest the device sends, keeps a room table,
//! pushes what a test asks it to, kicks an older login of the same uid, and can fall silent.
//! Like a server built on the FPNN framework, it drops data that arrives together with the
//! client's close ([`closed_with`]).
//!
//! It uses the agent's FPNN codec for framing only; the codec is checked byte for byte against
//! independent vectors in its own tests.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmpv::Value;
use roomagent::signaling::rtm::fpnn::{self, Curve, Frame, as_i64, as_str, empty_map, field, map};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A quest the device sent, as the gate logged it.
#[derive(Debug, Clone)]
pub struct Logged {
    /// The uid the connection authenticated as (0 before `auth`).
    pub uid: i64,
    pub method: String,
    pub body: Value,
}

#[derive(Default)]
struct Room {
    members: Vec<i64>,
    admins: Vec<i64>,
    owner: i64,
}

struct Conn {
    id: u64,
    to_device: mpsc::UnboundedSender<Out>,
}

enum Out {
    /// A two-way push; the device's answer goes to the sender.
    Quest(String, Value, oneshot::Sender<Frame>),
    OneWay(String, Value),
    Close,
}

#[derive(Default)]
struct State {
    tokens: HashMap<i64, String>,
    conns: HashMap<i64, Conn>,
    rooms: HashMap<i64, Room>,
    log: Vec<Logged>,
    silent: bool,
    next_conn: u64,
    /// What `getRTCGateEndpoint` answers.
    rtc_endpoint: Option<String>,
}

/// The gate's private key, when it accepts encrypted connections.
#[derive(Clone, Copy)]
pub struct GateKey {
    pub curve: Curve,
    pub secret: [u8; 32],
}

pub struct Gate {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    quests: broadcast::Sender<Logged>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Gate {
    pub async fn start(key: Option<GateKey>) -> Gate {
        Self::start_on("127.0.0.1:0".parse().unwrap(), key, HashMap::new()).await
    }

    /// Starts on `addr` (to restart on the same port), retrying while the port is busy, with
    /// `tokens` accepted from the first connection on.
    async fn start_on(
        addr: SocketAddr,
        key: Option<GateKey>,
        tokens: HashMap<i64, String>,
    ) -> Gate {
        let mut listener = None;
        for _ in 0..100 {
            match TcpListener::bind(addr).await {
                Ok(l) => {
                    listener = Some(l);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        let listener = listener.expect("cannot bind the test gate");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            tokens,
            ..State::default()
        }));
        let (quests, _) = broadcast::channel(1024);
        let stop = CancellationToken::new();
        let task = tokio::spawn(accept(
            listener,
            addr,
            key,
            state.clone(),
            quests.clone(),
            stop.clone(),
        ));
        Gate {
            addr,
            state,
            quests,
            stop,
            task,
        }
    }

    /// Carries the token table (what the business back end provisioned) over to a restart.
    pub async fn restart(self, key: Option<GateKey>) -> Gate {
        let tokens = self.state.lock().unwrap().tokens.clone();
        let addr = self.stop().await;
        Gate::start_on(addr, key, tokens).await
    }

    /// Stops accepting and closes every connection; returns the address to restart on.
    pub async fn stop(self) -> SocketAddr {
        self.stop.cancel();
        let conns: Vec<_> = self.state.lock().unwrap().conns.drain().collect();
        for (_, c) in conns {
            let _ = c.to_device.send(Out::Close);
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
        self.addr
    }

    pub fn endpoint(&self) -> String {
        self.addr.to_string()
    }

    pub fn accept_token(&self, uid: i64, token: &str) {
        self.state
            .lock()
            .unwrap()
            .tokens
            .insert(uid, token.to_string());
    }

    /// The back end revokes `uid`'s token: its next login is refused.
    pub fn revoke_token(&self, uid: i64) {
        self.state.lock().unwrap().tokens.remove(&uid);
    }

    /// Closes `uid`'s connection, as a gate going away would (the device logs in again).
    pub fn disconnect(&self, uid: i64) {
        self.send(uid, Out::Close);
    }

    /// `kickout` and close, as when the same uid logs in elsewhere.
    pub fn kick_out(&self, uid: i64) {
        self.send(uid, Out::OneWay("kickout".into(), empty_map()));
        self.send(uid, Out::Close);
    }

    /// The RTC gate `getRTCGateEndpoint` names.
    pub fn set_rtc_endpoint(&self, endpoint: &str) {
        self.state.lock().unwrap().rtc_endpoint = Some(endpoint.to_string());
    }

    /// A room that exists before the device enters it.
    pub fn room(&self, rid: i64, members: &[i64], admins: &[i64], owner: i64) {
        self.state.lock().unwrap().rooms.insert(
            rid,
            Room {
                members: members.to_vec(),
                admins: admins.to_vec(),
                owner,
            },
        );
    }

    pub fn members(&self, rid: i64) -> Vec<i64> {
        self.state
            .lock()
            .unwrap()
            .rooms
            .get(&rid)
            .map(|r| r.members.clone())
            .unwrap_or_default()
    }

    /// Stop answering and stop reading: the gate is alive on TCP but says nothing.
    pub fn fall_silent(&self, silent: bool) {
        self.state.lock().unwrap().silent = silent;
    }

    /// Every quest the device sent so far.
    pub fn log(&self) -> Vec<Logged> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn sent(&self, method: &str) -> Vec<Logged> {
        self.log()
            .into_iter()
            .filter(|l| l.method == method)
            .collect()
    }

    pub fn connected(&self, uid: i64) -> bool {
        self.state.lock().unwrap().conns.contains_key(&uid)
    }

    /// Waits (10 s) for the device to send `method` with a body matching `pred`, counting
    /// quests already logged.
    pub async fn wait_quest(&self, method: &str, pred: impl Fn(&Value) -> bool) -> Logged {
        let mut rx = self.quests.subscribe();
        if let Some(l) = self
            .log()
            .into_iter()
            .find(|l| l.method == method && pred(&l.body))
        {
            return l;
        }
        let wait = async {
            loop {
                match rx.recv().await {
                    Ok(l) if l.method == method && pred(&l.body) => return l,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => panic!("gate stopped"),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .unwrap_or_else(|_| panic!("the device never sent {method}; log: {:?}", self.log()))
    }

    /// Waits until `uid` is connected and authenticated.
    pub async fn wait_login(&self, uid: i64) {
        for _ in 0..200 {
            if self.connected(uid) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("uid {uid} never logged in; log: {:?}", self.log());
    }

    /// Sends a two-way push to `uid` and returns its answer.
    pub async fn push(&self, uid: i64, method: &str, body: Value) -> Frame {
        let (tx, rx) = oneshot::channel();
        self.send(uid, Out::Quest(method.into(), body, tx));
        tokio::time::timeout(Duration::from_secs(5), rx)
            .await
            .unwrap_or_else(|_| panic!("no answer to {method} within 5 s"))
            .expect("connection closed before answering")
    }

    /// Invites `uid` into room `rid` from `from` (`pushInviteIntoRTCRoom`); returns the answer.
    pub async fn invite(&self, uid: i64, rid: i64, from: i64) -> Frame {
        let body = map([("rid", Value::from(rid)), ("fromUid", Value::from(from))]);
        self.push(uid, "pushInviteIntoRTCRoom", body).await
    }

    pub fn push_oneway(&self, uid: i64, method: &str, body: Value) {
        self.send(uid, Out::OneWay(method.into(), body));
    }

    fn send(&self, uid: i64, out: Out) {
        let st = self.state.lock().unwrap();
        let conn = st.conns.get(&uid).expect("uid not connected");
        let _ = conn.to_device.send(out);
    }
}

async fn accept(
    listener: TcpListener,
    addr: SocketAddr,
    key: Option<GateKey>,
    state: Arc<Mutex<State>>,
    quests: broadcast::Sender<Logged>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => {
                let Ok((stream, _)) = r else { continue };
                let conn = Connection {
                    addr,
                    key,
                    state: state.clone(),
                    quests: quests.clone(),
                    uid: 0,
                    id: 0,
                    link: fpnn::Link::plain(fpnn::DEFAULT_MAX_PAYLOAD),
                    next_seq: 1_000_000,
                    waiting: HashMap::new(),
                };
                tokio::spawn(conn.serve(stream, stop.clone()));
            }
        }
    }
}

struct Connection {
    addr: SocketAddr,
    key: Option<GateKey>,
    state: Arc<Mutex<State>>,
    quests: broadcast::Sender<Logged>,
    uid: i64,
    id: u64,
    link: fpnn::Link,
    next_seq: u32,
    waiting: HashMap<u32, oneshot::Sender<Frame>>,
}

/// Reads what else arrived in the same wake-up (a busy server's loop comes round a few ms
/// later) and says whether the peer's close came with it. FPNN's epoll server checks for the
/// close first and then drops the connection with whatever data is still unread
/// (`TCPEpollServer`, `EPOLLRDHUP` before `EPOLLIN`), so a client that writes and closes at
/// once loses what it wrote; this gate does the same.
async fn closed_with(stream: &mut TcpStream, data: &mut Vec<u8>) -> bool {
    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut more = vec![0u8; 64 * 1024];
    loop {
        match stream.try_read(&mut more) {
            Ok(0) => return true,
            Ok(n) => data.extend_from_slice(&more[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

impl Connection {
    async fn serve(mut self, mut stream: TcpStream, stop: CancellationToken) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let mut out = Vec::new();
            tokio::select! {
                _ = stop.cancelled() => return,
                n = stream.read(&mut buf) => {
                    let n = match n { Ok(0) | Err(_) => break, Ok(n) => n };
                    let mut data = buf[..n].to_vec();
                    if closed_with(&mut stream, &mut data).await {
                        break;
                    }
                    if self.state.lock().unwrap().silent {
                        continue;
                    }
                    self.link.read(&data);
                    loop {
                        match self.link.next_frame() {
                            Ok(Some(f)) => match self.on_frame(f, &tx, &mut out) {
                                Ok(()) => {}
                                Err(()) => {
                                    let _ = stream.write_all(&out).await;
                                    self.unregister();
                                    return;
                                }
                            },
                            Ok(None) => break,
                            Err(_) => { self.unregister(); return; }
                        }
                    }
                }
                msg = rx.recv() => match msg {
                    Some(Out::Quest(method, body, reply)) => {
                        let seq = self.next_seq;
                        self.next_seq += 7; // a server's counter is shared: never contiguous
                        self.waiting.insert(seq, reply);
                        let _ = self.link.write(&Frame::Quest { seq: Some(seq), method, body }, &mut out);
                    }
                    Some(Out::OneWay(method, body)) => {
                        let _ = self.link.write(&Frame::Quest { seq: None, method, body }, &mut out);
                    }
                    Some(Out::Close) | None => {
                        let _ = stream.shutdown().await;
                        self.unregister();
                        return;
                    }
                },
            }
            if !out.is_empty() && stream.write_all(&out).await.is_err() {
                break;
            }
        }
        self.unregister();
    }

    fn unregister(&self) {
        let mut st = self.state.lock().unwrap();
        if st.conns.get(&self.uid).is_some_and(|c| c.id == self.id) {
            st.conns.remove(&self.uid);
        }
    }

    /// Handles one frame from the device; `Err` closes the connection.
    fn on_frame(
        &mut self,
        f: Frame,
        tx: &mpsc::UnboundedSender<Out>,
        out: &mut Vec<u8>,
    ) -> Result<(), ()> {
        let (seq, method, body) = match f {
            Frame::Answer { seq, .. } => {
                if let Some(reply) = self.waiting.remove(&seq) {
                    let _ = reply.send(f);
                }
                return Ok(());
            }
            Frame::Quest { seq, method, body } => (seq, method, body),
            _ => return Ok(()),
        };
        let logged = Logged {
            uid: self.uid,
            method: method.clone(),
            body: body.clone(),
        };
        self.state.lock().unwrap().log.push(logged.clone());
        let _ = self.quests.send(logged);
        if method == fpnn::KEY_METHOD {
            let key = self.key.ok_or(())?;
            let cipher = fpnn::server_handshake(key.curve, &key.secret, &body).map_err(|_| ())?;
            self.link.start_encryption(cipher).map_err(|_| ())?;
        }
        let answer = self.answer(&method, &body, tx);
        let Some(seq) = seq else { return Ok(()) };
        let frame = match answer {
            Ok(body) => Frame::answer(seq, body),
            Err((code, ex)) => Frame::error_answer(seq, code, &ex),
        };
        let _ = self.link.write(&frame, out);
        if method == "bye" { Err(()) } else { Ok(()) }
    }

    fn answer(
        &mut self,
        method: &str,
        body: &Value,
        tx: &mpsc::UnboundedSender<Out>,
    ) -> Result<Value, (i64, String)> {
        let int = |k: &str| field(body, k).and_then(as_i64);
        let rid = int("rid").unwrap_or(0);
        match method {
            "which" => Ok(map([("server", Value::from(self.addr.to_string()))])),
            "*key" | "bye" | "exitRTCRoom" => {
                if method == "exitRTCRoom" {
                    self.leave(rid);
                }
                Ok(empty_map())
            }
            "*ping" => Ok(map([("ts", Value::from(1_700_000_000_000i64))])),
            "auth" => Ok(map([("ok", Value::from(self.auth(body, tx)))])),
            _ if self.uid == 0 => Err((200010, "not authenticated".into())),
            "enterRTCRoom" => self.enter(rid),
            "getRTCGateEndpoint" => match self.state.lock().unwrap().rtc_endpoint.clone() {
                Some(e) => Ok(map([("endpoint", Value::from(e))])),
                None => Err((200301, "no RTC gate".into())),
            },
            "subscribeVideo" | "unsubscribeVideo" => Ok(empty_map()),
            "createRTCRoom" => {
                let mut st = self.state.lock().unwrap();
                st.rooms.insert(
                    rid,
                    Room {
                        members: vec![self.uid],
                        admins: vec![self.uid],
                        owner: self.uid,
                    },
                );
                Ok(map([("token", Value::from(format!("rtc-{rid}")))]))
            }
            "getRTCRoomMembers" => {
                let st = self.state.lock().unwrap();
                let room = st
                    .rooms
                    .get(&rid)
                    .ok_or((200300, "no such room".to_string()))?;
                let list = |v: &[i64]| Value::Array(v.iter().map(|u| Value::from(*u)).collect());
                Ok(map([
                    ("uids", list(&room.members)),
                    ("administrators", list(&room.admins)),
                    ("owner", Value::from(room.owner)),
                ]))
            }
            "inviteUserIntoRTCRoom" => {
                let invitees: Vec<i64> = match field(body, "uids") {
                    Some(Value::Array(a)) => a.iter().filter_map(as_i64).collect(),
                    _ => Vec::new(),
                };
                let st = self.state.lock().unwrap();
                for uid in invitees {
                    if let Some(c) = st.conns.get(&uid) {
                        let push = map([
                            ("rid", Value::from(rid)),
                            ("fromUid", Value::from(self.uid)),
                        ]);
                        let (reply, _) = oneshot::channel();
                        let _ = c.to_device.send(Out::Quest(
                            "pushInviteIntoRTCRoom".into(),
                            push,
                            reply,
                        ));
                    }
                }
                Ok(empty_map())
            }
            "sendmsg" => {
                let to = int("to").unwrap_or(0);
                let st = self.state.lock().unwrap();
                if let Some(c) = st.conns.get(&to) {
                    let push = map([
                        ("from", Value::from(self.uid)),
                        ("mid", Value::from(int("mid").unwrap_or(0))),
                        ("mtype", Value::from(int("mtype").unwrap_or(0))),
                        ("ftype", Value::from(0)),
                        (
                            "msg",
                            Value::from(field(body, "msg").and_then(as_str).unwrap_or("")),
                        ),
                        ("attrs", Value::from("")),
                    ]);
                    let (reply, _) = oneshot::channel();
                    let _ = c.to_device.send(Out::Quest("pushmsg".into(), push, reply));
                }
                Ok(empty_map())
            }
            _ => Err((20004, format!("unknown method {method}"))),
        }
    }

    /// Checks the token; a second login of a uid kicks the first one out.
    fn auth(&mut self, body: &Value, tx: &mpsc::UnboundedSender<Out>) -> bool {
        let uid = field(body, "uid").and_then(as_i64).unwrap_or(0);
        let token = field(body, "token").and_then(as_str).unwrap_or("");
        let mut st = self.state.lock().unwrap();
        if st.tokens.get(&uid).map(String::as_str) != Some(token) {
            return false;
        }
        st.next_conn += 1;
        self.id = st.next_conn;
        self.uid = uid;
        let old = st.conns.insert(
            uid,
            Conn {
                id: self.id,
                to_device: tx.clone(),
            },
        );
        if let Some(old) = old {
            let _ = old
                .to_device
                .send(Out::OneWay("kickout".into(), empty_map()));
            let _ = old.to_device.send(Out::Close);
        }
        true
    }

    fn enter(&mut self, rid: i64) -> Result<Value, (i64, String)> {
        let mut st = self.state.lock().unwrap();
        let room = st
            .rooms
            .get_mut(&rid)
            .ok_or((200300, "no such room".to_string()))?;
        let mut others = Vec::new();
        if !room.members.contains(&self.uid) {
            others = room.members.clone();
            room.members.push(self.uid);
        }
        // The members already in the room (connected here) learn of the newcomer.
        for uid in others {
            if let Some(c) = st.conns.get(&uid) {
                let push = map([
                    ("rid", Value::from(rid)),
                    ("uid", Value::from(self.uid)),
                    ("mtime", Value::from(1_700_000_000_000i64)),
                ]);
                let (reply, _) = oneshot::channel();
                let _ = c
                    .to_device
                    .send(Out::Quest("pushEnterRTCRoom".into(), push, reply));
            }
        }
        Ok(map([
            ("token", Value::from(format!("rtc-{rid}"))),
            ("type", Value::from(2)),
        ]))
    }

    fn leave(&mut self, rid: i64) {
        let mut st = self.state.lock().unwrap();
        if let Some(room) = st.rooms.get_mut(&rid) {
            room.members.retain(|u| *u != self.uid);
        }
    }
}
