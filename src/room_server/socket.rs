//! The WebSocket control socket: admission (session, per-user and server-wide caps), then
//! one task per connection that moves frames between the socket and the hub, pings, and
//! closes connections that stopped reading or went silent.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::hub::ConnId;
use super::limits::MAX_WS_MESSAGE;
use super::{Outgoing, Shared, SidQuery};

/// `GET <base>/socket?SID=`: 401 without a live session, 429 when the user has
/// `max_sockets_per_user` sockets, 503 when the server has `max_connections`.
pub(super) async fn socket(
    State(s): State<Arc<Shared>>,
    Query(q): Query<SidQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    let user = q.sid.as_deref().and_then(|sid| s.hub().session_user(sid));
    let (Some(sid), Some(user)) = (q.sid, user) else {
        let msg = "unknown or missing SID: log in first";
        return (StatusCode::UNAUTHORIZED, msg).into_response();
    };
    let Some(slot) = UserSlot::take(&s, user) else {
        let msg = "too many sockets for this user: close one first";
        return (StatusCode::TOO_MANY_REQUESTS, msg).into_response();
    };
    let Ok(permit) = s.sockets.clone().try_acquire_owned() else {
        let msg = "the room server has all the connections it takes; try again later";
        return (StatusCode::SERVICE_UNAVAILABLE, msg).into_response();
    };
    // Frames above 64 KiB get a 400 reply rather than a dropped connection, so accept more.
    ws.max_message_size(MAX_WS_MESSAGE)
        .max_frame_size(MAX_WS_MESSAGE)
        .on_upgrade(move |socket| connection(s, sid, socket, (permit, slot)))
}

/// One of a user's `max_sockets_per_user` places, held from the upgrade until the socket
/// closes.
struct UserSlot {
    s: Arc<Shared>,
    user: i64,
}

impl UserSlot {
    fn take(s: &Arc<Shared>, user: i64) -> Option<UserSlot> {
        let mut per_user = s.per_user.lock().unwrap_or_else(|p| p.into_inner());
        let n = per_user.entry(user).or_default();
        if *n >= s.limits.max_sockets_per_user {
            return None;
        }
        *n += 1;
        Some(UserSlot { s: s.clone(), user })
    }
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        let mut per_user = self.s.per_user.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = per_user.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                per_user.remove(&self.user);
            }
        }
    }
}

/// What a connection holds while open: its server-wide permit and its user's place.
type Places = (OwnedSemaphorePermit, UserSlot);

async fn connection(s: Arc<Shared>, sid: String, mut socket: WebSocket, _places: Places) {
    let conn = s.next_conn.fetch_add(1, Ordering::Relaxed);
    if !s.hub().connect(conn, &sid) {
        return;
    }
    let close = CancellationToken::new();
    let (tx, mut rx) = mpsc::channel::<String>(s.limits.queue);
    let outgoing = Outgoing {
        tx,
        close: close.clone(),
    };
    s.senders().insert(conn, outgoing);
    debug!(conn, "room server: socket connected");
    pump(&s, conn, &sid, &mut socket, &mut rx, &close).await;
    s.senders().remove(&conn);
    let out = s.hub().disconnect(conn);
    s.deliver(out);
    debug!(conn, "room server: socket closed");
}

/// Moves frames until the socket closes, errs, stops reading (queue full or a send slower
/// than `send_timeout`), stays silent for `idle_timeout`, its login session ends (expired, or
/// pushed out by the user's newer ones; checked at each ping), or the server shuts down.
async fn pump(
    s: &Shared,
    conn: ConnId,
    sid: &str,
    socket: &mut WebSocket,
    rx: &mut mpsc::Receiver<String>,
    close: &CancellationToken,
) {
    let limits = &s.limits;
    let mut ping = tokio::time::interval_at(Instant::now() + limits.ping_every, limits.ping_every);
    let mut heard = Instant::now();
    loop {
        let idle = sleep_until(heard + limits.idle_timeout);
        let send = tokio::select! {
            biased;
            _ = s.shutdown.cancelled() => return,
            _ = close.cancelled() => return,
            _ = idle => {
                debug!(conn, "room server: nothing heard from the client; closing");
                return;
            }
            out = rx.recv() => match out {
                Some(text) => Message::text(text),
                None => return,
            },
            _ = ping.tick() => {
                if s.hub().session_user(sid).is_none() {
                    debug!(conn, "room server: the socket's login session ended; closing");
                    let _ = timeout(limits.send_timeout, socket.send(Message::Close(None))).await;
                    return;
                }
                Message::Ping(Default::default())
            }
            msg = socket.recv() => {
                heard = Instant::now();
                match msg {
                    Some(Ok(Message::Text(text))) => s.handle(conn, text.as_str()),
                    // Not JSON, so the hub answers it with a 400 like any malformed frame.
                    Some(Ok(Message::Binary(_))) => {
                        s.handle(conn, "binary frames are not part of the dialect")
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => {}
                }
                continue;
            }
        };
        if !matches!(
            timeout(limits.send_timeout, socket.send(send)).await,
            Ok(Ok(()))
        ) {
            debug!(conn, "room server: send failed or timed out; closing");
            return;
        }
    }
}
