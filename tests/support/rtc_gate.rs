//! A test RTC gate written from docs/rtm.md ("Media"): FPNN over TCP on loopback. It admits a
//! device to a room with the token the test RTM gate hands out (`rtc-<rid>`), answers
//! `adjustTime` with its clock, records every `voice` and `video` quest with its arrival
//! time, pushes frames a test gives it, forwards each member's frames to the room's other
//! members (so two devices hear and see each other), and can stall (stop reading a socket)
//! or drop every connection. It serves FPNN's reliable UDP on the same port (the agent's
//! sans-IO session, [`Arq`], on the server side, as the framework runs one engine on both
//! ends; that engine is checked against independent byte vectors in its own tests): one-way
//! pushes go out discardable, answers reliable.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::rtm_gate::GateKey;
use rmpv::Value;
use roomagent::media::relay::VideoUnit;
use roomagent::signaling::rtm::fpnn::udp::{self, Arq};
use roomagent::signaling::rtm::fpnn::{self, Frame, as_i64, as_str, empty_map, field, map};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

/// A quest a device sent, with when it arrived (Unix ms).
#[derive(Debug, Clone)]
pub struct Got {
    pub uid: i64,
    pub rid: i64,
    pub method: String,
    pub body: Value,
    pub arrived_ms: i64,
}

impl Got {
    pub fn int(&self, key: &str) -> i64 {
        field(&self.body, key).and_then(as_i64).unwrap_or(-1)
    }

    /// A `video` quest as the access unit it carries.
    pub fn unit(&self) -> VideoUnit {
        VideoUnit {
            key: self.int("flags") == 1,
            sps: self.bin("sps"),
            pps: self.bin("pps"),
            data: self.bin("data"),
            captured_ms: self.int("timestamp"),
        }
    }

    pub fn bin(&self, key: &str) -> Vec<u8> {
        field(&self.body, key)
            .and_then(fpnn::as_bytes)
            .map(<[u8]>::to_vec)
            .unwrap_or_default()
    }
}

enum Out {
    OneWay(String, Value),
    Close,
}

struct Member {
    uid: i64,
    rid: i64,
    to_device: mpsc::UnboundedSender<Out>,
}

#[derive(Default)]
struct State {
    key: Option<GateKey>,
    members: HashMap<u64, Member>,
    log: Vec<Got>,
    forward: bool,
    stalled: bool,
    microphone: bool,
    next_id: u64,
    connections: u64,
    udp_sessions: u64,
}

pub struct RtcGate {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    quests: broadcast::Sender<Got>,
    stop: CancellationToken,
}

pub fn unix_ms() -> i64 {
    roomagent::media::relay::unix_ms()
}

impl RtcGate {
    /// A gate on loopback serving FPNN over TCP and over reliable UDP on the same port.
    pub async fn start() -> RtcGate {
        Self::start_with("127.0.0.1", true).await
    }

    /// A gate listening on `ip` (any free port), with or without UDP.
    pub async fn start_with(ip: &str, udp: bool) -> RtcGate {
        Self::start_keyed(ip, udp, None).await
    }

    /// [`RtcGate::start_with`] accepting encrypted connections with `key` (TCP's `*key`,
    /// UDP's `ECDH`).
    pub async fn start_keyed(ip: &str, udp: bool, key: Option<GateKey>) -> RtcGate {
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            microphone: true,
            key,
            ..State::default()
        }));
        let (quests, _) = broadcast::channel(4096);
        let stop = CancellationToken::new();
        if udp {
            let socket = UdpSocket::bind(addr).await.expect("UDP on the gate's port");
            tokio::spawn(serve_udp(
                Arc::new(socket),
                state.clone(),
                quests.clone(),
                stop.clone(),
            ));
        }
        let (st, q, s) = (state.clone(), quests.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = s.cancelled() => return,
                    r = listener.accept() => {
                        let Ok((stream, _)) = r else { continue };
                        st.lock().unwrap().connections += 1;
                        tokio::spawn(serve(stream, st.clone(), q.clone(), s.clone()));
                    }
                }
            }
        });
        RtcGate {
            addr,
            state,
            quests,
            stop,
        }
    }

    pub fn endpoint(&self) -> String {
        self.addr.to_string()
    }

    /// Forward each member's frames to the other members of its room.
    pub fn forward(&self, on: bool) {
        self.state.lock().unwrap().forward = on;
    }

    /// What `enterRTCRoom` answers as `microphone`.
    pub fn microphone(&self, on: bool) {
        self.state.lock().unwrap().microphone = on;
    }

    /// Stop reading every device's socket (the device's writes back up), or read again.
    pub fn stall(&self, on: bool) {
        self.state.lock().unwrap().stalled = on;
    }

    /// Closes every connection (devices come back by themselves).
    pub fn drop_all(&self) {
        let mut st = self.state.lock().unwrap();
        for (_, m) in st.members.drain() {
            let _ = m.to_device.send(Out::Close);
        }
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.state.lock().unwrap().connections
    }

    /// Of [`RtcGate::connections`], the FPNN UDP sessions.
    pub fn udp_sessions(&self) -> u64 {
        self.state.lock().unwrap().udp_sessions
    }

    /// Whether `uid` is in a room's media.
    pub fn in_room(&self, uid: i64) -> bool {
        self.state
            .lock()
            .unwrap()
            .members
            .values()
            .any(|m| m.uid == uid)
    }

    pub fn log(&self) -> Vec<Got> {
        self.state.lock().unwrap().log.clone()
    }

    /// What `uid` sent as `method` so far.
    pub fn sent(&self, uid: i64, method: &str) -> Vec<Got> {
        self.log()
            .into_iter()
            .filter(|g| g.uid == uid && g.method == method)
            .collect()
    }

    /// Waits up to `limit` until `uid` has sent `n` quests of `method`; returns them.
    pub async fn wait_sent(&self, uid: i64, method: &str, n: usize, limit: Duration) -> Vec<Got> {
        let until = tokio::time::Instant::now() + limit;
        loop {
            let got = self.sent(uid, method);
            if got.len() >= n {
                return got;
            }
            if tokio::time::Instant::now() >= until {
                panic!(
                    "uid {uid} sent {} {method} quests within {limit:?}, wanted {n}",
                    got.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `uid` has entered a room's media.
    pub async fn wait_in_room(&self, uid: i64) {
        for _ in 0..200 {
            if self.in_room(uid) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "uid {uid} never entered the RTC gate; log: {:?}",
            self.log().len()
        );
    }

    /// A one-way push to every connection of `uid`.
    pub fn push(&self, uid: i64, method: &str, body: Value) {
        let st = self.state.lock().unwrap();
        for m in st.members.values().filter(|m| m.uid == uid) {
            let _ = m.to_device.send(Out::OneWay(method.into(), body.clone()));
        }
    }

    /// Plays member `uid`'s camera and microphone (`video` at 30 fps, `voice` 20 ms packets,
    /// both repeated as needed) into room `rid` to the device `to` for `until`, paced as they
    /// were captured, stamped in the gate's time, each kind with its own `seq` from 1.
    pub async fn play(
        &self,
        to: i64,
        uid: i64,
        rid: i64,
        video: &[VideoUnit],
        voice: &[Vec<u8>],
        until: Duration,
    ) {
        let start = tokio::time::Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(5));
        let (mut v, mut a) = (0usize, 0usize);
        let frames = until.as_millis() as usize * 30 / 1000;
        let packets = until.as_millis() as usize / 20;
        while v < frames || a < packets {
            tick.tick().await;
            let ms = start.elapsed().as_millis() as usize;
            while v < frames && v * 1000 / 30 <= ms {
                let u = &video[v % video.len()];
                let push = map([
                    ("uid", Value::from(uid)),
                    ("rid", Value::from(rid)),
                    ("seq", Value::from(v as i64 + 1)),
                    ("flags", Value::from(i64::from(u.key))),
                    ("timestamp", Value::from(unix_ms())),
                    ("rotation", Value::from(0)),
                    ("version", Value::from(0)),
                    ("facing", Value::from(1)),
                    ("captureLevel", Value::from(3)),
                    ("data", Value::Binary(u.data.clone())),
                    ("sps", Value::Binary(u.sps.clone())),
                    ("pps", Value::Binary(u.pps.clone())),
                ]);
                self.push(to, "pushVideo", push);
                v += 1;
            }
            while a < packets && a * 20 <= ms {
                let push = map([
                    ("uid", Value::from(uid)),
                    ("rid", Value::from(rid)),
                    ("seq", Value::from(a as i64 + 1)),
                    ("timestamp", Value::from(unix_ms())),
                    ("data", Value::Binary(voice[a % voice.len()].clone())),
                ]);
                self.push(to, "pushVoice", push);
                a += 1;
            }
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Got> {
        self.quests.subscribe()
    }
}

impl Drop for RtcGate {
    fn drop(&mut self) {
        self.stop.cancel();
        self.drop_all();
    }
}

async fn serve(
    mut stream: TcpStream,
    state: Arc<Mutex<State>>,
    quests: broadcast::Sender<Got>,
    stop: CancellationToken,
) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut link = fpnn::Link::plain(fpnn::DEFAULT_MAX_PAYLOAD);
    let mut buf = vec![0u8; 64 * 1024];
    let mut me: Option<(u64, i64, i64)> = None; // id, uid, rid
    let mut encrypted = false;
    loop {
        let stalled = state.lock().unwrap().stalled;
        let mut out = Vec::new();
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_millis(50)), if stalled => continue,
            n = stream.read(&mut buf), if !stalled => {
                let n = match n { Ok(0) | Err(_) => break, Ok(n) => n };
                link.read(&buf[..n]);
                loop {
                    match link.next_frame() {
                        Ok(Some(Frame::Quest { seq, method, body })) => {
                            // A keyed gate takes nothing before the key exchange (the
                            // framework's forceEncrypt).
                            let key = state.lock().unwrap().key;
                            if let Some(k) = key {
                                if method == fpnn::KEY_METHOD {
                                    let cipher = fpnn::server_handshake(k.curve, &k.secret, &body);
                                    match cipher.map(|c| link.start_encryption(c)) {
                                        Ok(Ok(())) => encrypted = true,
                                        _ => { leave(&state, me); return; }
                                    }
                                } else if !encrypted {
                                    leave(&state, me);
                                    return;
                                }
                            }
                            let answer = on_quest(&state, &quests, &tx, &mut me, &method, &body);
                            if let (Some(seq), Some(answer)) = (seq, answer) {
                                let frame = match answer {
                                    Ok(b) => Frame::answer(seq, b),
                                    Err((code, ex)) => Frame::error_answer(seq, code, &ex),
                                };
                                let _ = link.write(&frame, &mut out);
                            }
                        }
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(_) => { leave(&state, me); return; }
                    }
                }
            }
            msg = rx.recv() => match msg {
                Some(Out::OneWay(method, body)) => {
                    let _ = link.write(&Frame::Quest { seq: None, method, body }, &mut out);
                }
                Some(Out::Close) | None => break,
            },
        }
        if !out.is_empty() && stream.write_all(&out).await.is_err() {
            break;
        }
    }
    let _ = stream.shutdown().await;
    leave(&state, me);
}

fn leave(state: &Arc<Mutex<State>>, me: Option<(u64, i64, i64)>) {
    if let Some((id, _, _)) = me {
        state.lock().unwrap().members.remove(&id);
    }
}

type Answer = Option<Result<Value, (i64, String)>>;

fn on_quest(
    state: &Arc<Mutex<State>>,
    quests: &broadcast::Sender<Got>,
    tx: &mpsc::UnboundedSender<Out>,
    me: &mut Option<(u64, i64, i64)>,
    method: &str,
    body: &Value,
) -> Answer {
    let int = |k: &str| field(body, k).and_then(as_i64);
    match method {
        "enterRTCRoom" => {
            let (uid, rid) = (int("uid").unwrap_or(0), int("rid").unwrap_or(0));
            let token = field(body, "token").and_then(as_str).unwrap_or("");
            if token != format!("rtc-{rid}") || int("pid").is_none() {
                return Some(Err((800001, "invalid token".into())));
            }
            let mut st = state.lock().unwrap();
            st.next_id += 1;
            let id = st.next_id;
            let uids: Vec<Value> = st
                .members
                .values()
                .filter(|m| m.rid == rid)
                .map(|m| Value::from(m.uid))
                .chain([Value::from(uid)])
                .collect();
            st.members.insert(
                id,
                Member {
                    uid,
                    rid,
                    to_device: tx.clone(),
                },
            );
            *me = Some((id, uid, rid));
            Some(Ok(map([
                ("microphone", Value::from(st.microphone)),
                ("uids", Value::Array(uids)),
                ("administrators", Value::Array(vec![])),
                ("owner", Value::from(0)),
            ])))
        }
        "adjustTime" => Some(Ok(map([("ts", Value::from(unix_ms()))]))),
        "voice" | "video" => {
            let (id, uid, rid) = (*me)?;
            let got = Got {
                uid,
                rid,
                method: method.into(),
                body: body.clone(),
                arrived_ms: unix_ms(),
            };
            let mut st = state.lock().unwrap();
            if st.forward {
                let mut push = body.clone();
                if let Value::Map(m) = &mut push {
                    m.push((Value::from("uid"), Value::from(uid)));
                }
                let name = if method == "voice" {
                    "pushVoice"
                } else {
                    "pushVideo"
                };
                for (other, m) in &st.members {
                    if *other != id && m.rid == rid {
                        let _ = m.to_device.send(Out::OneWay(name.into(), push.clone()));
                    }
                }
            }
            st.log.push(got.clone());
            let _ = quests.send(got);
            None
        }
        _ => Some(Ok(empty_map())),
    }
}

/// FPNN over UDP: one session per client address, each a task of its own.
async fn serve_udp(
    socket: Arc<UdpSocket>,
    state: Arc<Mutex<State>>,
    quests: broadcast::Sender<Got>,
    stop: CancellationToken,
) {
    let mut sessions: HashMap<SocketAddr, mpsc::UnboundedSender<Vec<u8>>> = HashMap::new();
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, from) = tokio::select! {
            _ = stop.cancelled() => return,
            r = socket.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(_) => continue,
            },
        };
        sessions.retain(|_, tx| !tx.is_closed());
        let tx = sessions.entry(from).or_insert_with(|| {
            {
                let mut st = state.lock().unwrap();
                st.connections += 1;
                st.udp_sessions += 1;
            }
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(udp_session(
                socket.clone(),
                from,
                rx,
                state.clone(),
                quests.clone(),
                stop.clone(),
            ));
            tx
        });
        let _ = tx.send(buf[..n].to_vec());
    }
}

async fn udp_session(
    socket: Arc<UdpSocket>,
    peer: SocketAddr,
    mut datagrams: mpsc::UnboundedReceiver<Vec<u8>>,
    state: Arc<Mutex<State>>,
    quests: broadcast::Sender<Got>,
    stop: CancellationToken,
) {
    let now = || tokio::time::Instant::now().into_std();
    let mut arq = Arq::new(now(), udp::DATAGRAM_LAN, rand_seed(&peer));
    if let Some(k) = state.lock().unwrap().key {
        arq = arq.with_server_key(k.curve, k.secret);
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut me: Option<(u64, i64, i64)> = None;
    loop {
        let deadline = arq.poll_timeout().map(tokio::time::Instant::from_std);
        let idle = tokio::time::Instant::from_std(arq.last_received()) + Duration::from_secs(10);
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep_until(idle) => break,
            d = datagrams.recv() => {
                let Some(d) = d else { break };
                if state.lock().unwrap().stalled {
                    continue;
                }
                if arq.handle_datagram(now(), &d).is_err() {
                    break; // CLOSE
                }
                while let Some(m) = arq.poll_message() {
                    let mut link = fpnn::Link::plain(fpnn::DEFAULT_MAX_PAYLOAD);
                    link.read(&m);
                    let Ok(Some(Frame::Quest { seq, method, body })) = link.next_frame() else {
                        continue;
                    };
                    if state.lock().unwrap().key.is_some() && !arq.encrypting() {
                        continue; // forceEncrypt: dropped, unanswered, as the framework does
                    }
                    let answer = on_quest(&state, &quests, &tx, &mut me, &method, &body);
                    if let (Some(seq), Some(answer)) = (seq, answer) {
                        let frame = match answer {
                            Ok(b) => Frame::answer(seq, b),
                            Err((code, ex)) => Frame::error_answer(seq, code, &ex),
                        };
                        let mut out = Vec::new();
                        let _ = link.write(&frame, &mut out);
                        arq.send(now(), &out, udp::Delivery::Reliable);
                    }
                }
            }
            msg = rx.recv() => match msg {
                Some(Out::OneWay(method, body)) => {
                    let mut out = Vec::new();
                    let _ = fpnn::Link::plain(fpnn::DEFAULT_MAX_PAYLOAD)
                        .write(&Frame::Quest { seq: None, method, body }, &mut out);
                    arq.send(now(), &out, udp::Delivery::Discardable);
                }
                Some(Out::Close) | None => {
                    arq.close(now());
                    while let Some(d) = arq.poll_datagram() {
                        let _ = socket.send_to(&d, peer).await;
                    }
                    break;
                }
            },
            _ = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => arq.handle_timeout(now()),
        }
        while let Some(d) = arq.poll_datagram() {
            let _ = socket.send_to(&d, peer).await;
        }
    }
    leave(&state, me);
}

fn rand_seed(peer: &SocketAddr) -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    t ^ u64::from(peer.port()) << 48
}
