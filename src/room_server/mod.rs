//! The development room server: the server side of the RTCPeer dialect, with a browser page.
//!
//! It exists so that a person can call the agent from a browser on a fresh machine, and so
//! that tests have a real peer. Accounts come from `[room_server]` in the configuration;
//! rooms and sessions live in memory. Endpoints, under `base_path` (default `/app`):
//!
//! | endpoint | what |
//! | --- | --- |
//! | `GET  /` | the browser page |
//! | `GET  <base>/getSign?appId=&secret=` | signature for `dockingLogin` |
//! | `POST <base>/account` (form field `params`) | `login`, `dockingLogin`, `logout` |
//! | `GET  <base>/socket?SID=` | the WebSocket control socket |
//! | `GET  <base>/online?SID=` | who is registered (development extension for the page) |
//!
//! The message handling itself is in [`hub`], free of any transport.

mod accounts;
mod exposure;
pub mod hub;
pub mod limits;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Form, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::RoomServerConfig;
use hub::{ConnId, Delivery, Hub, Online};

/// Outgoing frames a connection may have queued before it counts as stuck and is closed.
const CONN_QUEUE: usize = 1024;

struct Shared {
    hub: Mutex<Hub>,
    senders: Mutex<HashMap<ConnId, mpsc::Sender<String>>>,
    next_conn: AtomicU64,
    shutdown: CancellationToken,
    base: String,
}

impl Shared {
    fn hub(&self) -> std::sync::MutexGuard<'_, Hub> {
        self.hub.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn senders(&self) -> std::sync::MutexGuard<'_, HashMap<ConnId, mpsc::Sender<String>>> {
        self.senders.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands a frame from `conn` to the hub and delivers what it answers.
    fn handle(&self, conn: ConnId, text: &str) {
        let out = self.hub().frame(conn, text);
        self.deliver(out);
    }

    fn deliver(&self, out: Vec<Delivery>) {
        let mut senders = self.senders();
        for d in out {
            let Some(tx) = senders.get(&d.to) else {
                continue;
            };
            if tx.try_send(d.text).is_err() {
                warn!(
                    conn = d.to,
                    "room server: client is not reading; closing its connection"
                );
                senders.remove(&d.to);
            }
        }
    }
}

/// Controls a running room server. Cheap to clone.
#[derive(Clone)]
pub struct RoomServerHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl RoomServerHandle {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API base URL, what an agent's `signaling.host` points at.
    pub fn api_url(&self) -> String {
        format!("http://{}{}", self.addr, self.shared.base)
    }

    /// The browser page.
    pub fn page_url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Who is registered.
    pub fn online(&self) -> Vec<Online> {
        self.shared.hub().online()
    }

    /// Sends a raw text frame to every registered connection of `user`, bypassing the
    /// dialect. For diagnostics and robustness tests; returns how many connections got it.
    pub fn inject(&self, user: i64, text: &str) -> usize {
        let conns = self.shared.hub().conns_of(user);
        let n = conns.len();
        self.shared.deliver(
            conns
                .into_iter()
                .map(|to| Delivery {
                    to,
                    text: text.to_string(),
                })
                .collect(),
        );
        n
    }

    /// Stops the server and closes every connection.
    pub fn shutdown(&self) {
        self.shared.shutdown.cancel();
    }
}

/// Binds `cfg.listen` and returns the handle and the server future.
pub async fn bind(
    cfg: &RoomServerConfig,
) -> std::io::Result<(RoomServerHandle, impl Future<Output = ()> + Send + 'static)> {
    let listener = TcpListener::bind(cfg.listen).await?;
    serve(cfg, listener)
}

/// Serves on an already bound listener (tests bind port 0).
pub fn serve(
    cfg: &RoomServerConfig,
    listener: TcpListener,
) -> std::io::Result<(RoomServerHandle, impl Future<Output = ()> + Send + 'static)> {
    let addr = listener.local_addr()?;
    exposure::warn_if_exposed(cfg, addr);
    let base = if cfg.base_path == "/" {
        String::new()
    } else {
        cfg.base_path.clone()
    };
    let shared = Arc::new(Shared {
        hub: Mutex::new(Hub::from_config(cfg)),
        senders: Mutex::new(HashMap::new()),
        next_conn: AtomicU64::new(1),
        shutdown: CancellationToken::new(),
        base: base.clone(),
    });
    let app = Router::new()
        .route("/", get(page))
        .route("/app.js", get(script))
        .route(&format!("{base}/getSign"), get(get_sign))
        .route(&format!("{base}/account"), post(account))
        .route(&format!("{base}/online"), get(online))
        .route(&format!("{base}/socket"), get(socket))
        .with_state(shared.clone());
    let token = shared.shutdown.clone();
    let fut = async move {
        info!(%addr, "room server listening; open http://{addr}/ to call a device");
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(token.cancelled_owned())
            .await;
        if let Err(e) = served {
            warn!(error = %e, "room server stopped with an error");
        }
    };
    Ok((RoomServerHandle { addr, shared }, fut))
}

const INDEX_HTML: &str = include_str!("page/index.html");
const APP_JS: &str = include_str!("page/app.js");

async fn page(State(s): State<Arc<Shared>>) -> Html<String> {
    Html(INDEX_HTML.replace("{{BASE}}", &s.base))
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        APP_JS,
    )
        .into_response()
}

#[derive(Deserialize)]
struct SignQuery {
    #[serde(rename = "appId")]
    app_id: Option<String>,
    secret: Option<String>,
}

async fn get_sign(State(s): State<Arc<Shared>>, Query(q): Query<SignQuery>) -> Response {
    Json(s.hub().get_sign(q.app_id.as_deref(), q.secret.as_deref())).into_response()
}

#[derive(Deserialize)]
struct AccountForm {
    params: Option<String>,
}

async fn account(
    State(s): State<Arc<Shared>>,
    form: Result<Form<AccountForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(AccountForm {
        params: Some(params),
    })) = form
    else {
        return Json(serde_json::json!({
            "result": 400,
            "message": "expected a form with a `params` field holding JSON",
        }))
        .into_response();
    };
    Json(s.hub().account(&params)).into_response()
}

#[derive(Deserialize)]
struct SidQuery {
    #[serde(rename = "SID")]
    sid: Option<String>,
}

async fn online(State(s): State<Arc<Shared>>, Query(q): Query<SidQuery>) -> Response {
    let hub = s.hub();
    if q.sid
        .as_deref()
        .and_then(|sid| hub.session_user(sid))
        .is_none()
    {
        return (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({"result": 401, "message": "log in first"})),
        )
            .into_response();
    }
    Json(serde_json::json!({"result": 0, "users": hub.online()})).into_response()
}

async fn socket(
    State(s): State<Arc<Shared>>,
    Query(q): Query<SidQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    let Some(sid) = q.sid.filter(|sid| s.hub().session_user(sid).is_some()) else {
        return (
            StatusCode::UNAUTHORIZED,
            "unknown or missing SID: log in first",
        )
            .into_response();
    };
    // Frames above 64 KiB get a 400 reply rather than a dropped connection, so accept more.
    ws.max_message_size(1 << 20)
        .on_upgrade(move |socket| connection(s, sid, socket))
}

async fn connection(s: Arc<Shared>, sid: String, mut socket: WebSocket) {
    let conn = s.next_conn.fetch_add(1, Ordering::Relaxed);
    if !s.hub().connect(conn, &sid) {
        return;
    }
    let (tx, mut rx) = mpsc::channel::<String>(CONN_QUEUE);
    s.senders().insert(conn, tx);
    debug!(conn, "room server: socket connected");
    loop {
        tokio::select! {
            _ = s.shutdown.cancelled() => break,
            out = rx.recv() => match out {
                Some(text) => {
                    if socket.send(Message::text(text)).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
            msg = socket.recv() => match msg {
                Some(Ok(Message::Text(text))) => s.handle(conn, text.as_str()),
                // Not JSON, so the hub answers it with a 400 like any malformed frame.
                Some(Ok(Message::Binary(_))) => {
                    s.handle(conn, "binary frames are not part of the dialect")
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    s.senders().remove(&conn);
    let out = s.hub().disconnect(conn);
    s.deliver(out);
    debug!(conn, "room server: socket closed");
}
