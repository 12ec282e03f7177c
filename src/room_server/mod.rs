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
//! The message handling itself is in [`hub`], free of any transport. Every limit on what
//! remote input can grow (sessions, rooms, sockets, bodies, frames) is in [`limits`].

mod accounts;
mod exposure;
pub mod hub;
pub mod limits;
mod socket;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use axum::extract::{DefaultBodyLimit, Form, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::RoomServerConfig;
use hub::{ConnId, Delivery, Hub, Online};
use limits::{MAX_HTTP_BODY, SocketLimits};

/// Where frames for one connection go, and how to close it.
struct Outgoing {
    tx: mpsc::Sender<String>,
    /// Cancelled to close the connection (it stopped reading).
    close: CancellationToken,
}

struct Shared {
    hub: Mutex<Hub>,
    senders: Mutex<HashMap<ConnId, Outgoing>>,
    next_conn: AtomicU64,
    shutdown: CancellationToken,
    base: String,
    limits: SocketLimits,
    /// One permit per open WebSocket, [`SocketLimits::max_connections`] in all.
    sockets: Arc<Semaphore>,
    /// Open (or upgrading) WebSockets per user.
    per_user: Mutex<HashMap<i64, usize>>,
}

impl Shared {
    fn hub(&self) -> std::sync::MutexGuard<'_, Hub> {
        self.hub.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn senders(&self) -> std::sync::MutexGuard<'_, HashMap<ConnId, Outgoing>> {
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
            let Some(o) = senders.get(&d.to) else {
                continue;
            };
            if o.tx.try_send(d.text).is_err() {
                warn!(
                    conn = d.to,
                    "room server: client is not reading; closing its connection"
                );
                o.close.cancel();
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
    serve_with(cfg, listener, SocketLimits::default())
}

/// [`serve`] with other socket limits (tests shrink them).
pub fn serve_with(
    cfg: &RoomServerConfig,
    listener: TcpListener,
    limits: SocketLimits,
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
        sockets: Arc::new(Semaphore::new(limits.max_connections)),
        per_user: Mutex::new(HashMap::new()),
        limits,
    });
    let app = Router::new()
        .route("/", get(page))
        .route("/app.js", get(script))
        .route(&format!("{base}/getSign"), get(get_sign))
        .route(&format!("{base}/account"), post(account))
        .route(&format!("{base}/online"), get(online))
        .route(&format!("{base}/socket"), get(socket::socket))
        .layer(DefaultBodyLimit::max(MAX_HTTP_BODY))
        .with_state(shared.clone());
    let token = shared.shutdown.clone();
    let fut = async move {
        info!(%addr, "room server listening; open http://{addr}/ to call a device");
        // No Nagle delay for the small signaling messages (~40 ms each with delayed ACKs).
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
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
    if let Err(e) = &form
        && e.status() == StatusCode::PAYLOAD_TOO_LARGE
    {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body is larger than 64 KiB",
        )
            .into_response();
    }
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
pub(crate) struct SidQuery {
    #[serde(rename = "SID")]
    pub(crate) sid: Option<String>,
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
