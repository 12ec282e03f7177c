//! One connected session: connect + register, then translate frames both ways.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use thiserror::Error;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior, interval, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::Options;
use super::login::{self, LoginError, Session};
use super::translate::{self, Identity, Pending};
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

/// Logs in, opens the control socket and registers.
pub(super) async fn connect(
    opts: &Options,
    http: &reqwest::Client,
) -> Result<(Ws, Session), ConnectError> {
    let session = login::login(http, &opts.host, &opts.credentials).await?;
    let url = opts.socket_url(session.sid.expose());
    let (mut ws, _) = timeout(
        opts.request_timeout,
        tokio_tungstenite::connect_async(url.as_str()),
    )
    .await
    .map_err(|_| ConnectError::Timeout("the WebSocket handshake"))?
    .map_err(|e| ConnectError::Socket(e.to_string()))?;
    let register = wire::frame(
        "call",
        "doRegister",
        Some(&Value::from(REGISTER_ID)),
        &Register {
            sid: session.sid.expose().to_string(),
            user_id: session.user.id,
            device_type: Some(opts.device_type.clone()),
        },
    );
    ws.send(Message::text(register))
        .await
        .map_err(|e| ConnectError::Socket(e.to_string()))?;
    let deadline = Instant::now() + opts.request_timeout;
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .map_err(|_| ConnectError::Timeout("doRegister"))?;
        let text = match msg {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(ConnectError::Socket(e.to_string())),
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

pub(super) enum End {
    Shutdown,
    Lost(String),
}

struct Waiting {
    pending: Pending,
    deadline: Instant,
}

/// Runs a registered connection until it dies or `shutdown` is cancelled.
pub(super) async fn run(
    opts: &Options,
    mut ws: Ws,
    me: Identity,
    cmds: &mut mpsc::Receiver<Outgoing>,
    events: &mpsc::Sender<SignalingEvent>,
    shutdown: &CancellationToken,
) -> End {
    let mut next_id: u64 = 1;
    let mut waiting: HashMap<String, Waiting> = HashMap::new();
    let mut warned: HashSet<&'static str> = HashSet::new();
    let mut unanswered_pings = 0u32;
    let mut ping = interval(opts.keepalive);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ping.reset();
    let mut expiry = interval(Duration::from_millis(500));
    expiry.set_missed_tick_behavior(MissedTickBehavior::Delay);

    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                // Send what the core queued last (typically `meeting/exit`), then close.
                while let Ok(out) = cmds.try_recv() {
                    let Some(req) = translate::request(&me, &out) else { continue };
                    let text = req.frame(None);
                    if ws.send(Message::text(text)).await.is_err() {
                        break;
                    }
                }
                let _ = timeout(Duration::from_secs(1), ws.close(None)).await;
                return End::Shutdown;
            }
            msg = ws.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(frame))) => {
                        return End::Lost(format!("server closed the socket ({frame:?})"));
                    }
                    Some(Ok(_)) => {
                        unanswered_pings = 0;
                        continue;
                    }
                    Some(Err(e)) => return End::Lost(format!("socket error: {e}")),
                    None => return End::Lost("socket closed".into()),
                };
                unanswered_pings = 0;
                match incoming(&text, &mut waiting) {
                    Ok(Some(event)) => {
                        if events.send(event).await.is_err() {
                            return End::Shutdown;
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        if warned.insert(e.kind()) {
                            warn!(error = %e, "skipping a bad signaling frame (further ones of this kind at debug level)");
                        } else {
                            debug!(error = %e, "skipping a bad signaling frame");
                        }
                    }
                }
            }
            out = cmds.recv() => {
                let Some(out) = out else { return End::Shutdown };
                let Some(req) = translate::request(&me, &out) else {
                    debug!(?out, "nothing to send for this in the RTCPeer dialect");
                    continue;
                };
                let id = next_id.to_string();
                next_id += 1;
                let text = req.frame(Some(&Value::from(id.clone())));
                waiting.insert(id, Waiting {
                    pending: req.pending(),
                    deadline: Instant::now() + opts.request_timeout,
                });
                debug!(module = req.route.module(), method = req.route.method(), "send");
                if let Err(e) = ws.send(Message::text(text)).await {
                    return End::Lost(format!("send failed: {e}"));
                }
            }
            _ = ping.tick() => {
                if unanswered_pings >= 3 {
                    return End::Lost("no answer to 3 keep-alive pings".into());
                }
                unanswered_pings += 1;
                if let Err(e) = ws.send(Message::Ping(Vec::new().into())).await {
                    return End::Lost(format!("ping failed: {e}"));
                }
            }
            _ = expiry.tick() => {
                let now = Instant::now();
                let expired: Vec<String> = waiting
                    .iter()
                    .filter(|(_, w)| w.deadline <= now)
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in expired {
                    let Some(w) = waiting.remove(&id) else { continue };
                    let event = SignalingEvent::RequestFailed {
                        request: w.pending.kind,
                        code: 0,
                        message: format!("no reply to {} within {:?}", w.pending.route, opts.request_timeout),
                    };
                    if events.send(event).await.is_err() {
                        return End::Shutdown;
                    }
                }
            }
        }
    }
}

/// One frame from the server: a reply to a waiting request, or a push.
fn incoming(
    text: &str,
    waiting: &mut HashMap<String, Waiting>,
) -> Result<Option<SignalingEvent>, wire::WireError> {
    let env = Envelope::parse(text)?;
    let reply_to = env
        .req_id
        .as_ref()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string())
        })
        .and_then(|id| waiting.remove(&id));
    match reply_to {
        Some(w) => translate::reply(&env, &w.pending),
        None if env.req_id.is_some() => {
            // A reply to a request that already timed out, or to the registration.
            debug!(module = %env.module, method = %env.method, "late or unknown reply");
            Ok(None)
        }
        None => translate::push(&env),
    }
}
