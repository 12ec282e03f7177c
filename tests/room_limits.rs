//! The development room server at its limits, over real sockets: clients that do not read
//! or go silent are dropped, connections beyond the caps are refused with an HTTP status,
//! and oversized bodies and frames are refused while the server keeps serving others.

mod support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use roomagent::config::{self, Purpose};
use roomagent::room_server::{self, RoomServerHandle, limits::SocketLimits};
use serde_json::json;
use support::*;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::{self, Message};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn start(limits: SocketLimits) -> RoomServerHandle {
    init_logs();
    let cfg = config::parse(SERVER_ACCOUNTS, Purpose::RoomServer).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (handle, fut) = room_server::serve_with(&cfg.room_server, listener, limits).unwrap();
    tokio::spawn(fut);
    handle
}

/// Opens a control socket for `name` without registering it.
async fn open(api: &str, name: &str) -> Result<Ws, tungstenite::Error> {
    let login = http_login(api, name, name).await;
    let sid = login["SID"].as_str().unwrap();
    let url = format!("{}/socket?SID={sid}", api.replacen("http", "ws", 1));
    tokio_tungstenite::connect_async(url)
        .await
        .map(|(ws, _)| ws)
}

fn refused_with(r: Result<Ws, tungstenite::Error>) -> u16 {
    match r {
        Err(tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
        Ok(_) => panic!("expected a refusal, the socket opened"),
    }
}

/// Waits up to 10 s until `user` is no longer registered.
async fn gone(server: &RoomServerHandle, user: i64) -> bool {
    for _ in 0..200 {
        if !server.online().iter().any(|o| o.id == user) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn a_client_that_does_not_read_is_dropped_and_the_others_go_on() {
    let limits = SocketLimits {
        queue: 8,
        send_timeout: Duration::from_secs(1),
        ..SocketLimits::default()
    };
    let server = start(limits).await;
    let mut alice = Peer::connect(&server.api_url(), "alice", "alice").await;
    let mut bob = Peer::connect(&server.api_url(), "bob", "bob").await;
    assert_eq!(alice.enter(77).await["result"], 0);
    assert_eq!(bob.enter(77).await["result"], 0);
    // Bob stops reading; Alice chats until the server gives up on him.
    let text = "x".repeat(4000);
    let mut dropped = false;
    for _ in 0..20_000 {
        let body = json!({"userId": ALICE, "roomId": 77, "content": text});
        assert_eq!(alice.request("meeting", "chat", body).await["result"], 0);
        if !server.online().iter().any(|o| o.id == BOB) {
            dropped = true;
            break;
        }
    }
    assert!(dropped, "bob was never dropped");
    let exit = alice.push("meeting", "ExitRoom").await;
    assert_eq!(exit["client"]["id"], BOB, "{exit}");
    let body = json!({"userId": ALICE, "roomId": 77, "content": "still here"});
    assert_eq!(alice.request("meeting", "chat", body).await["result"], 0);
}

#[tokio::test]
async fn sockets_beyond_the_server_cap_get_503_until_one_closes() {
    let limits = SocketLimits {
        max_connections: 2,
        ..SocketLimits::default()
    };
    let server = start(limits).await;
    let api = server.api_url();
    let first = open(&api, "alice").await.expect("first socket");
    let _second = open(&api, "bob").await.expect("second socket");
    assert_eq!(refused_with(open(&api, "room").await), 503);
    drop(first);
    let mut reopened = None;
    for _ in 0..200 {
        if let Ok(ws) = open(&api, "room").await {
            reopened = Some(ws);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reopened.is_some(), "a closed socket must free its place");
}

#[tokio::test]
async fn one_user_beyond_its_socket_cap_gets_429_others_do_not() {
    let limits = SocketLimits {
        max_sockets_per_user: 2,
        ..SocketLimits::default()
    };
    let server = start(limits).await;
    let api = server.api_url();
    let _a1 = open(&api, "alice").await.expect("socket 1");
    let _a2 = open(&api, "alice").await.expect("socket 2");
    assert_eq!(refused_with(open(&api, "alice").await), 429);
    assert!(open(&api, "bob").await.is_ok(), "bob has his own cap");
}

#[tokio::test]
async fn a_silent_client_is_closed_while_one_that_answers_pings_stays() {
    let limits = SocketLimits {
        ping_every: Duration::from_millis(100),
        idle_timeout: Duration::from_millis(500),
        ..SocketLimits::default()
    };
    let server = start(limits).await;
    let mut alice = Peer::connect(&server.api_url(), "alice", "alice").await;
    let _bob = Peer::connect(&server.api_url(), "bob", "bob").await;
    // Bob never reads, so never answers a ping; Alice reads (and so answers) for 2 s.
    assert!(
        alice
            .no_push_within("meeting", "none", Duration::from_secs(2))
            .await
    );
    assert!(
        gone(&server, BOB).await,
        "bob's silent socket was not closed"
    );
    let r = alice.request(
        "meeting",
        "enter",
        json!({"userId": ALICE, "roomId": 5, "roomType": 2}),
    );
    assert_eq!(r.await["result"], 0, "alice's socket must still work");
}

#[tokio::test]
async fn a_request_body_over_64_kib_gets_413() {
    let server = start(SocketLimits::default()).await;
    let params = json!({"method": "login", "name": "alice", "password": "x".repeat(100 * 1024)});
    let resp = reqwest::Client::new()
        .post(format!("{}/account", server.api_url()))
        .form(&[("params", params.to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    let ok = http_login(&server.api_url(), "alice", "alice").await;
    assert_eq!(ok["result"], 0, "{ok}");
}

#[tokio::test]
async fn a_2_mib_frame_closes_that_socket_and_the_server_stays_up() {
    let server = start(SocketLimits::default()).await;
    let mut ws = open(&server.api_url(), "alice").await.unwrap();
    let _ = ws.send(Message::text("x".repeat(2 << 20))).await;
    let mut closed = false;
    for _ in 0..100 {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => {
                closed = true;
                break;
            }
            Ok(Some(Ok(_))) => continue,
            Err(_) => break,
        }
    }
    assert!(closed, "the server kept a socket that sent a 2 MiB frame");
    let mut bob = Peer::connect(&server.api_url(), "bob", "bob").await;
    assert_eq!(bob.enter(3).await["result"], 0);
}

#[tokio::test]
async fn a_socket_whose_login_session_ended_is_closed() {
    let limits = SocketLimits {
        ping_every: Duration::from_millis(100),
        ..SocketLimits::default()
    };
    let server = start(limits).await;
    let api = server.api_url();
    let mut alice = Peer::connect(&api, "alice", "alice").await;
    let mut bob = Peer::connect(&api, "bob", "bob").await;
    // Alice logs in again elsewhere as often as one user may hold sessions: the socket's
    // session is the oldest and is pushed out.
    for _ in 0..roomagent::room_server::limits::MAX_SESSIONS_PER_USER {
        http_login(&api, "alice", "alice").await;
    }
    // Both keep reading (so answer pings): only the ended session's socket goes.
    tokio::join!(
        alice.no_push_within("meeting", "none", Duration::from_secs(1)),
        bob.no_push_within("meeting", "none", Duration::from_secs(1)),
    );
    assert!(
        gone(&server, ALICE).await,
        "the socket of alice's ended session is still registered"
    );
    assert!(
        server.online().iter().any(|o| o.id == BOB),
        "bob's socket must stay"
    );
}
