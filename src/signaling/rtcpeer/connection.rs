//! The socket side of one control-socket connection: log in, open the WebSocket and
//! register, then move frames between the socket and the sans-IO [`Session`].

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use thiserror::Error;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

use super::Options;
use super::login::{self, LoginError};
use super::session::{Session, Settings, Transmit};
use super::translate::{CallMethod, Identity, Route};
use super::wire::{self, Envelope, Register};
use crate::core::{Outgoing, SignalingEvent};

pub(super) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Why connecting failed.
#[derive(Debug, Error)]
pub(super) enum ConnectError {
    #[error(transparent)]
    Login(#[from] LoginError),
    #[error("cannot open the control socket: {0}")]
    Socket(String),
    #[error("registration refused (result {code}): {message}")]
    Register { code: i64, message: String },
    #[error("no answer to {0} within the request timeout")]
    Timeout(&'static str),
}

impl ConnectError {
    pub(super) fn is_auth(&self) -> bool {
        match self {
            ConnectError::Login(e) => e.is_auth(),
            ConnectError::Register { .. } => true,
            _ => false,
        }
    }
}

const REGISTER_ID: &str = "register";

/// The largest signaling message accepted from the server (an offer with every codec a browser
/// knows is under 16 KiB). A bigger one closes the connection, which then reconnects, instead
/// of being buffered: tungstenite's default would take 64 MiB.
pub(super) const MAX_MESSAGE: usize = 1 << 20;

fn ws_limits() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
}

/// A socket error in words; a TLS problem says what to check.
fn socket_error(e: tokio_tungstenite::tungstenite::Error) -> ConnectError {
    ConnectError::Socket(crate::tls::explain(&e, "signaling").unwrap_or_else(|| e.to_string()))
}

/// Logs in, opens the control socket and registers. Login and socket share the TLS settings.
pub(super) async fn connect(opts: &Options) -> Result<(Ws, login::Session), ConnectError> {
    let http = login::http_client(opts.request_timeout, opts.tls.as_ref())
        .map_err(|e| ConnectError::Socket(format!("cannot set up HTTP: {e}")))?;
    let session = login::login(&http, &opts.host, &opts.credentials).await?;
    let url = opts.socket_url(session.sid.expose());
    let tls = opts
        .tls
        .as_ref()
        .map(|t| Connector::Rustls(t.config().clone()));
    let (mut ws, _) = timeout(
        opts.request_timeout,
        tokio_tungstenite::connect_async_tls_with_config(
            url.as_str(),
            Some(ws_limits()),
            // Signaling messages are small and each one waits for an answer: Nagle's
            // algorithm with delayed ACKs would hold many of them for ~40 ms.
            true,
            tls,
        ),
    )
    .await
    .map_err(|_| ConnectError::Timeout("the WebSocket handshake"))?
    .map_err(socket_error)?;
    let route = Route::Call(CallMethod::DoRegister);
    let register = wire::frame(
        route.module(),
        route.method(),
        Some(&Value::from(REGISTER_ID)),
        &Register {
            sid: session.sid.expose().to_string(),
            user_id: session.user.id,
            device_type: Some(opts.device_type.clone()),
        },
    );
    ws.send(Message::text(register))
        .await
        .map_err(socket_error)?;
    let deadline = Instant::now() + opts.request_timeout;
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .map_err(|_| ConnectError::Timeout("doRegister"))?;
        let text = match msg {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(socket_error(e)),
            None => return Err(ConnectError::Socket("closed during registration".into())),
        };
        let Ok(env) = Envelope::parse(&text) else {
            continue;
        };
        if env.req_id.as_ref().and_then(Value::as_str) != Some(REGISTER_ID) {
            continue;
        }
        return match env.result() {
            Some(wire::code::OK) => Ok((ws, session)),
            code => Err(ConnectError::Register {
                code: code.unwrap_or(-1),
                message: env.message().unwrap_or("").to_string(),
            }),
        };
    }
}

/// How a registered connection ended.
pub(super) enum End {
    Shutdown,
    Lost(String),
}

type Received = Option<Result<Message, tokio_tungstenite::tungstenite::Error>>;

/// Runs a registered connection until it dies or `shutdown` is cancelled: moves frames
/// between the WebSocket and a fresh [`Session`], which decides what they mean.
pub(super) async fn run(
    opts: &Options,
    mut ws: Ws,
    me: Identity,
    cmds: &mut mpsc::Receiver<Outgoing>,
    events: &mpsc::Sender<SignalingEvent>,
    shutdown: &CancellationToken,
) -> End {
    let settings = Settings {
        me,
        keepalive: opts.keepalive,
        request_timeout: opts.request_timeout,
    };
    let mut session = Session::new(settings, now());
    loop {
        if let Err(reason) = flush(&mut ws, &mut session).await {
            return End::Lost(reason);
        }
        if !forward(&mut session, events).await {
            return End::Shutdown;
        }
        let deadline = session.poll_timeout().map(Instant::from_std);
        let step = tokio::select! {
            _ = shutdown.cancelled() => return close(ws, session, cmds).await,
            msg = ws.next() => received(&mut session, msg),
            out = cmds.recv() => match out {
                Some(out) => {
                    session.handle_outgoing(now(), out);
                    Ok(())
                }
                None => return End::Shutdown,
            },
            _ = crate::wait::sleep_until(deadline) => session.handle_timeout(now()).map_err(|f| f.to_string()),
        };
        if let Err(reason) = step {
            // A request may have failed in the same step: report it before the disconnect.
            if !forward(&mut session, events).await {
                return End::Shutdown;
            }
            return End::Lost(reason);
        }
    }
}

fn now() -> std::time::Instant {
    Instant::now().into_std()
}

/// Hands one WebSocket read to the session; `Err` says why the connection is over.
fn received(session: &mut Session, msg: Received) -> Result<(), String> {
    match msg {
        Some(Ok(Message::Text(text))) => session
            .handle_frame(now(), &text)
            .map_err(|f| f.to_string()),
        Some(Ok(Message::Close(frame))) => Err(format!("server closed the socket ({frame:?})")),
        Some(Ok(_)) => {
            session.handle_pong(now());
            Ok(())
        }
        Some(Err(e)) => Err(format!("socket error: {e}")),
        None => Err("socket closed".into()),
    }
}

/// Writes everything the session queued, in order.
async fn flush(ws: &mut Ws, session: &mut Session) -> Result<(), String> {
    while let Some(t) = session.poll_transmit() {
        match t {
            Transmit::Text(text) => ws
                .send(Message::text(text))
                .await
                .map_err(|e| format!("send failed: {e}"))?,
            Transmit::Ping => ws
                .send(Message::Ping(Vec::new().into()))
                .await
                .map_err(|e| format!("ping failed: {e}"))?,
        }
    }
    Ok(())
}

/// Passes the session's events to the core; `false` when the core is gone.
async fn forward(session: &mut Session, events: &mpsc::Sender<SignalingEvent>) -> bool {
    while let Some(event) = session.poll_event() {
        if events.send(event).await.is_err() {
            return false;
        }
    }
    true
}

/// Sends what the core queued last (typically `meeting/exit`), then closes the socket.
async fn close(mut ws: Ws, mut session: Session, cmds: &mut mpsc::Receiver<Outgoing>) -> End {
    session.close();
    while let Ok(out) = cmds.try_recv() {
        session.handle_outgoing(now(), out);
    }
    let _ = flush(&mut ws, &mut session).await;
    let _ = timeout(Duration::from_secs(1), ws.close(None)).await;
    End::Shutdown
}
