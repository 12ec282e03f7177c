//! The socket side of one RTM gate connection: find the gate, connect, optionally encrypt,
//! then move bytes between the socket and the sans-IO [`Session`] until the link ends.

use std::time::Duration;

use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::fpnn::{self, Frame, as_str, field, map};
use super::session::{Fatal, Session};
use super::{GateAddress, Options};
use crate::backoff::Reconnect;
use crate::signaling::Ends;

/// RTM bodies are small; media never travels over the RTM gate. A gate sending more than
/// this in one frame is broken or hostile.
const MAX_PAYLOAD: usize = 1024 * 1024;

/// How long leaving may wait for the answers to `exitRTCRoom` and `bye` (within the
/// signaling part's shutdown budget).
const CLOSE_WAIT: Duration = Duration::from_millis(1500);

/// Why a connection attempt failed.
#[derive(Debug, Error)]
pub(super) enum ConnectError {
    #[error("cannot read the RTM token: {0}")]
    Token(String),
    #[error("the dispatch service at {addr}: {problem}")]
    Dispatch { addr: String, problem: String },
    #[error("cannot connect to the RTM gate at {addr}: {problem}")]
    Gate { addr: String, problem: String },
    #[error("cannot set up encryption: {0}")]
    Crypto(String),
}

/// How a connection ended.
pub(super) enum End {
    Shutdown,
    /// The link broke; `kicked` when another login of our uid took it over.
    Lost {
        reason: String,
        kicked: bool,
    },
}

/// A TCP connection to the gate, not yet logged in.
pub(super) struct Connection {
    stream: TcpStream,
    link: fpnn::Link,
    key_body: Option<rmpv::Value>,
    cipher: Option<fpnn::Cipher>,
    token: crate::config::Secret,
    request_timeout: Duration,
}

/// Finds the gate, connects, and prepares the key exchange when encrypting.
pub(super) async fn connect(opts: &Options) -> Result<Connection, ConnectError> {
    let token = opts
        .token
        .resolve()
        .map_err(|e| ConnectError::Token(e.to_string()))?
        .ok_or_else(|| ConnectError::Token("no token configured".into()))?;
    let addr = match &opts.gate {
        GateAddress::Fixed(a) => a.clone(),
        GateAddress::Dispatch(d) => which(d, opts).await?,
    };
    let stream = open(&addr, opts.request_timeout)
        .await
        .map_err(|problem| ConnectError::Gate {
            addr: addr.clone(),
            problem,
        })?;
    let (key_body, cipher) = match &opts.encryption {
        Some(e) => {
            let (body, cipher) =
                fpnn::client_handshake(&e.server_key, e.bits, e.mode, &mut rand::rng())
                    .map_err(|err| ConnectError::Crypto(err.to_string()))?;
            (Some(body), Some(cipher))
        }
        None => (None, None),
    };
    debug!(%addr, encrypted = cipher.is_some(), "connected to the RTM gate");
    Ok(Connection {
        stream,
        link: fpnn::Link::plain(MAX_PAYLOAD),
        key_body,
        cipher,
        token,
        request_timeout: opts.request_timeout,
    })
}

async fn open(addr: &str, limit: Duration) -> Result<TcpStream, String> {
    let stream = timeout(limit, TcpStream::connect(addr))
        .await
        .map_err(|_| format!("no connection within {} s", limit.as_secs()))?
        .map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Asks the dispatch service for a gate: `which {what: "rtmGated", iptype, proto}` →
/// `{server}`.
async fn which(dispatch: &str, opts: &Options) -> Result<String, ConnectError> {
    let fail = |problem: String| ConnectError::Dispatch {
        addr: dispatch.to_string(),
        problem,
    };
    let mut stream = open(dispatch, opts.request_timeout).await.map_err(fail)?;
    let mut link = fpnn::Link::plain(MAX_PAYLOAD);
    let quest = Frame::twoway(
        1,
        "which",
        map([
            ("what", "rtmGated".into()),
            ("iptype", "ip4".into()),
            ("proto", "tcp".into()),
            ("version", opts.version.as_str().into()),
        ]),
    );
    let answer = timeout(
        opts.request_timeout,
        exchange(&mut stream, &mut link, &quest),
    )
    .await
    .map_err(|_| fail("no answer to which".into()))?
    .map_err(fail)?;
    match answer {
        Frame::Answer { ok: true, body, .. } => field(&body, "server")
            .and_then(as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or_else(|| fail("the answer to which names no server".into())),
        Frame::Answer { body, .. } => Err(fail(format!(
            "which refused: {}",
            field(&body, "ex")
                .and_then(as_str)
                .unwrap_or("no explanation")
        ))),
        Frame::Quest { .. } => Err(fail("sent a quest instead of an answer".into())),
    }
}

/// Writes one quest and reads frames until its answer.
async fn exchange(
    stream: &mut TcpStream,
    link: &mut fpnn::Link,
    quest: &Frame,
) -> Result<Frame, String> {
    let mut out = Vec::new();
    link.write(quest, &mut out).map_err(|e| e.to_string())?;
    stream.write_all(&out).await.map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if let Some(frame) = link.next_frame().map_err(|e| e.to_string())? {
            if matches!(frame, Frame::Answer { .. }) {
                return Ok(frame);
            }
            continue;
        }
        let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed the connection".into());
        }
        link.read(&buf[..n]);
    }
}

impl Connection {
    /// Logs in and serves the connection until it ends.
    pub(super) async fn run(
        mut self,
        session: &mut Session,
        ends: &mut Ends,
        shutdown: &CancellationToken,
        reconnect: &mut Reconnect,
        media: Option<&super::Media>,
    ) -> End {
        session.connected(
            Instant::now().into_std(),
            self.token.expose(),
            self.key_body.take(),
        );
        let mut buf = vec![0u8; 16 * 1024];
        let mut was_authenticated = false;
        loop {
            if let Err(reason) = self.flush(session).await {
                return End::Lost {
                    reason,
                    kicked: false,
                };
            }
            if !was_authenticated && session.authenticated() {
                was_authenticated = true;
                reconnect.connected();
            }
            if let Some(m) = media {
                m.follow(session);
            }
            while let Some(event) = session.poll_event() {
                if let (Some(m), crate::core::SignalingEvent::MemberLeft { client_id, .. }) =
                    (media, &event)
                {
                    m.relay
                        .deliver(crate::media::relay::Inbound::Left(client_id.0));
                }
                if ends.events.send(event).await.is_err() {
                    return End::Shutdown;
                }
            }
            let deadline = session.poll_timeout().map(Instant::from_std);
            let step = tokio::select! {
                _ = shutdown.cancelled() => return self.close(session, ends).await,
                n = self.stream.read(&mut buf) => self.received(session, n, &buf),
                out = ends.outgoing.recv() => match out {
                    Some(out) => {
                        session.handle_outgoing(Instant::now().into_std(), out);
                        Ok(())
                    }
                    None => return self.close(session, ends).await,
                },
                _ = crate::wait::sleep_until(deadline) => session.handle_timeout(Instant::now().into_std()),
            };
            if let Err(fatal) = step {
                // Send what the session queued last (an answer, a reply) before giving up.
                let _ = self.flush(session).await;
                while let Some(event) = session.poll_event() {
                    let _ = ends.events.send(event).await;
                }
                return End::Lost {
                    reason: fatal.to_string(),
                    kicked: fatal == Fatal::Kicked,
                };
            }
        }
    }

    fn received(
        &mut self,
        session: &mut Session,
        n: std::io::Result<usize>,
        buf: &[u8],
    ) -> Result<(), Fatal> {
        let n = n.map_err(|e| Fatal::Dead(format!("read failed: {e}")))?;
        if n == 0 {
            return Err(Fatal::Dead("the gate closed the connection".into()));
        }
        self.link.read(&buf[..n]);
        let now = Instant::now().into_std();
        loop {
            match self.link.next_frame() {
                Ok(Some(frame)) => session.handle_frame(now, frame)?,
                Ok(None) => return Ok(()),
                Err(e) => {
                    return Err(Fatal::Dead(format!("unreadable data from the gate: {e}")));
                }
            }
        }
    }

    /// Writes every queued frame; switches to encryption right after the `*key` quest.
    async fn flush(&mut self, session: &mut Session) -> Result<(), String> {
        let mut out = Vec::new();
        while let Some(frame) = session.poll_transmit() {
            let is_key =
                matches!(&frame, Frame::Quest { method, .. } if method == fpnn::KEY_METHOD);
            if let Err(e) = self.link.write(&frame, &mut out) {
                debug!(error = %e, "a frame could not be encoded; dropped");
                continue;
            }
            if is_key && let Some(cipher) = self.cipher.take() {
                self.link
                    .start_encryption(cipher)
                    .map_err(|e| format!("encryption: {e}"))?;
            }
        }
        if out.is_empty() {
            return Ok(());
        }
        timeout(self.request_timeout, self.stream.write_all(&out))
            .await
            .map_err(|_| "the gate stopped reading (send timed out)".to_string())?
            .map_err(|e| format!("send failed: {e}"))
    }

    /// Sends what the core queued last (typically `exitRTCRoom`), says `bye`, and closes once
    /// the gate has answered both or [`CLOSE_WAIT`] has passed. Closing right after writing
    /// would lose them: an FPNN server that sees the close in the same wake-up as data drops
    /// the data unread. The RTM SDKs wait for `bye`'s answer the same way.
    async fn close(mut self, session: &mut Session, ends: &mut Ends) -> End {
        let now = Instant::now().into_std();
        while let Ok(out) = ends.outgoing.try_recv() {
            session.handle_outgoing(now, out);
        }
        session.bye(now);
        let goodbye = async {
            self.flush(session).await?;
            let mut buf = vec![0u8; 16 * 1024];
            while session.awaiting_goodbye() {
                let n = self.stream.read(&mut buf).await;
                if matches!(n, Ok(0)) {
                    // The gate closed first: it read everything before it.
                    return Ok(());
                }
                self.received(session, n, &buf).map_err(|f| f.to_string())?;
                // Answers to pushes that crossed our goodbye.
                self.flush(session).await?;
            }
            Ok::<(), String>(())
        };
        match timeout(CLOSE_WAIT, goodbye).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => debug!(error = %e, "the RTM gate connection failed while leaving"),
            Err(_) => debug!(
                wait = ?CLOSE_WAIT,
                "the RTM gate did not answer bye in time; closing anyway"
            ),
        }
        let _ = timeout(Duration::from_millis(300), self.stream.shutdown()).await;
        info!("left the RTM gate");
        End::Shutdown
    }
}
