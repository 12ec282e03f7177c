//! The RTC gate connection's transport: FPNN packets out (each marked whether it may be
//! lost) and FPNN bytes in, over TCP or FPNN's reliable UDP, behind one shape. A [`Wire`] is
//! a task that owns the socket; the connection logic in [`super::rtc`] only sees channels,
//! so it is the same for both transports. Dropping the wire closes the connection (over UDP
//! with the protocol's `CLOSE`).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;

use super::fpnn::udp::{self, Arq};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// The kernel's send buffer for the media connection (it doubles what is asked).
const SEND_BUFFER: u32 = 64 * 1024;

/// Encoded packets waiting for the socket; the relay's queue holds the rest.
const WRITE_QUEUE: usize = 8;

/// Received bytes waiting for the connection logic.
const READ_QUEUE: usize = 64;

/// One FPNN packet to send.
#[derive(Debug)]
pub struct Outbound {
    /// The packet, FPNN's TCP format.
    pub bytes: Vec<u8>,
    /// How it must arrive (TCP delivers everything, in order).
    pub delivery: Delivery,
}

/// How a packet must arrive, over UDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Resent until acknowledged: quests and answers.
    Reliable,
    /// Sent once: voice (a lost packet is concealed; a late one is useless).
    Discardable,
    /// Resent for this long, then given up: video (a lost piece of a frame would spoil every
    /// frame after it until the next key frame).
    Within(Duration),
}

/// A running transport: send on `tx`, read on `rx`; `task` ends with why the connection
/// failed (then `rx` closes too).
pub struct Wire {
    /// Packets to send, bounded: a full queue is back-pressure for media.
    pub tx: mpsc::Sender<Outbound>,
    /// Bytes received, in order, to feed to an [`super::fpnn::Link`].
    pub rx: mpsc::Receiver<Vec<u8>>,
    /// Ends with the reason the connection failed.
    pub task: JoinHandle<String>,
}

/// Connects over TCP with a small kernel send buffer, so a slow path backs up into the
/// relay's queue (which drops whole frames, video first) within a fraction of a second
/// instead of into megabytes of socket buffer that would deliver stale media seconds late.
/// `limit` bounds every write: a gate that stops reading ends the connection.
pub async fn tcp(endpoint: &str, limit: Duration) -> std::io::Result<Wire> {
    let stream = open(endpoint).await?;
    let (reader, writer) = stream.into_split();
    let (tx, out_rx) = mpsc::channel(WRITE_QUEUE);
    let (in_tx, rx) = mpsc::channel(READ_QUEUE);
    let task = tokio::spawn(async move {
        tokio::select! {
            why = read_loop(reader, in_tx) => why,
            why = write_loop(writer, out_rx, limit) => why,
        }
    });
    Ok(Wire { tx, rx, task })
}

async fn open(endpoint: &str) -> std::io::Result<TcpStream> {
    let mut last = None;
    for addr in tokio::net::lookup_host(endpoint).await? {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_send_buffer_size(SEND_BUFFER)?;
        socket.set_nodelay(true)?;
        match socket.connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("the name resolves to no address")))
}

async fn read_loop(mut r: OwnedReadHalf, tx: mpsc::Sender<Vec<u8>>) -> String {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) => return "the gate closed the connection".into(),
            Ok(n) => {
                if tx.send(buf[..n].to_vec()).await.is_err() {
                    return "closed".into();
                }
            }
            Err(e) => return format!("read failed: {e}"),
        }
    }
}

/// Writes what the connection queues; ends with why when a write fails or does not complete
/// in `limit` (a gate that stopped reading).
async fn write_loop(
    mut w: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Outbound>,
    limit: Duration,
) -> String {
    while let Some(out) = rx.recv().await {
        match timeout(limit, w.write_all(&out.bytes)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return format!("send failed: {e}"),
            Err(_) => {
                return format!(
                    "the gate stopped reading (a write did not complete in {} s)",
                    limit.as_secs()
                );
            }
        }
    }
    "closed".into()
}

/// Whether a peer is on a private network (the framework then uses 1500-byte MTU datagrams).
fn private(addr: &SocketAddr) -> bool {
    match addr.ip() {
        IpAddr::V4(v4) => v4.is_private() || v4.is_loopback() || v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

/// Opens an FPNN reliable-UDP session with `endpoint` (no handshake: the first datagram makes
/// the session at the server), encrypted with the gate's key when there is one.
pub async fn udp(endpoint: &str, encryption: Option<&super::Encryption>) -> std::io::Result<Wire> {
    let addr = tokio::net::lookup_host(endpoint)
        .await?
        .next()
        .ok_or_else(|| std::io::Error::other("the name resolves to no address"))?;
    let local: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0".parse().expect("an address")
    } else {
        "[::]:0".parse().expect("an address")
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(addr).await?;
    let datagram = if private(&addr) {
        udp::DATAGRAM_LAN
    } else {
        udp::DATAGRAM_INTERNET
    };
    let now = tokio::time::Instant::now().into_std();
    let arq = match encryption {
        Some(e) => {
            let (body, cipher) =
                super::fpnn::udp_client_handshake(&e.server_key, e.bits, &mut rand::rng())
                    .map_err(|err| std::io::Error::other(format!("encryption: {err}")))?;
            Arq::encrypted(now, datagram, rand::random(), &body, cipher)
        }
        None => Arq::new(now, datagram, rand::random()),
    };
    let (tx, out_rx) = mpsc::channel(WRITE_QUEUE);
    let (in_tx, rx) = mpsc::channel(READ_QUEUE);
    let task = tokio::spawn(udp_session(socket, arq, out_rx, in_tx));
    Ok(Wire { tx, rx, task })
}

async fn udp_session(
    socket: UdpSocket,
    mut arq: Arq,
    mut out_rx: mpsc::Receiver<Outbound>,
    in_tx: mpsc::Sender<Vec<u8>>,
) -> String {
    let mut buf = vec![0u8; 65_536];
    loop {
        let deadline = arq.poll_timeout().map(tokio::time::Instant::from_std);
        let now = || tokio::time::Instant::now().into_std();
        tokio::select! {
            r = socket.recv(&mut buf) => match r {
                Ok(n) => {
                    if arq.handle_datagram(now(), &buf[..n]).is_err() {
                        return "the gate closed the session".into();
                    }
                    while let Some(m) = arq.poll_message() {
                        if in_tx.send(m).await.is_err() {
                            return close(&socket, &mut arq).await;
                        }
                    }
                }
                Err(e) => return udp_failed(e),
            },
            out = out_rx.recv() => match out {
                Some(out) => {
                    let t = now();
                    let delivery = match out.delivery {
                        Delivery::Reliable => udp::Delivery::Reliable,
                        Delivery::Discardable => udp::Delivery::Discardable,
                        Delivery::Within(d) => udp::Delivery::Until(t + d),
                    };
                    arq.send(t, &out.bytes, delivery);
                }
                None => return close(&socket, &mut arq).await,
            },
            _ = crate::wait::sleep_until(deadline) => arq.handle_timeout(now()),
        }
        while let Some(d) = arq.poll_datagram() {
            if let Err(e) = socket.send(&d).await {
                return udp_failed(e);
            }
        }
    }
}

/// Leaving: says so once, as the framework does.
async fn close(socket: &UdpSocket, arq: &mut Arq) -> String {
    arq.close(tokio::time::Instant::now().into_std());
    while let Some(d) = arq.poll_datagram() {
        let _ = socket.send(&d).await;
    }
    "closed".into()
}

fn udp_failed(e: std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::ConnectionRefused {
        "nothing answers on UDP there (port unreachable)".into()
    } else {
        format!("UDP: {e}")
    }
}
