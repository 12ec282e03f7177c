//! Thousands of random and malformed frames against the agent's socket reader and against the
//! room server: nothing panics, the connections stay up, and real calls still work afterwards.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use roomagent::core::{CallPhase, RoomId};
use serde_json::{Value, json};
use support::*;

const FRAMES: usize = 3000;

/// Frames an RTCPeer peer might never send, and some it might send wrongly.
fn garbage(rng: &mut StdRng) -> String {
    const ROUTES: &[(&str, &str)] = &[
        ("call", "doInvite"),
        ("call", "doEvent"),
        ("call", "doAgree"),
        ("call", "reject"),
        ("call", "cancel"),
        ("call", "doRegister"),
        ("room", "newAppRoom"),
        ("meeting", "enter"),
        ("meeting", "exit"),
        ("meeting", "EnterRoom"),
        ("meeting", "ExitRoom"),
        ("meeting", "onFinish"),
        ("meeting", "tiren"),
        ("meeting", "onMute"),
        ("meeting", "onMuteAll"),
        ("meeting", "muteMsg"),
        ("meeting", "kickOut"),
        ("meeting", "onCompere"),
        ("media", "offer"),
        ("media", "answer"),
        ("media", "candidate"),
        ("media", "bye"),
        ("nope", "nothing"),
    ];
    const FIELDS: &[&str] = &[
        "ownUserId",
        "targetUserId",
        "roomId",
        "roomType",
        "type",
        "event",
        "userId",
        "isMute",
        "super",
        "client",
        "members",
        "room",
        "fromClientId",
        "toClientId",
        "sdp",
        "candidate",
        "sdpMLineIndex",
        "result",
        "reqId",
        "SID",
        "name",
        "numberLimit",
        "roomtype",
    ];
    fn value(rng: &mut StdRng, depth: u32) -> Value {
        match rng.random_range(0..9) {
            0 => Value::Null,
            1 => json!(rng.random::<bool>()),
            2 => json!(rng.random::<i64>()),
            3 => json!(rng.random_range(-3i64..3000)),
            4 => json!(rng.random::<f64>() * 1e6),
            5 => {
                let n = rng.random_range(0..12);
                json!(
                    (0..n)
                        .map(|_| rng.random_range(' '..'~'))
                        .collect::<String>()
                )
            }
            6 if depth < 3 => {
                let n = rng.random_range(0..4);
                Value::Array((0..n).map(|_| value(rng, depth + 1)).collect())
            }
            7 if depth < 3 => {
                let mut m = serde_json::Map::new();
                for _ in 0..rng.random_range(0..4) {
                    let k = FIELDS[rng.random_range(0..FIELDS.len())];
                    m.insert(k.into(), value(rng, depth + 1));
                }
                Value::Object(m)
            }
            _ => json!(1001),
        }
    }
    match rng.random_range(0..8) {
        // Random bytes, made text.
        0 => {
            let n = rng.random_range(0..200);
            let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            String::from_utf8_lossy(&bytes).into_owned()
        }
        // Any JSON at all.
        1 => value(rng, 0).to_string(),
        // A known route with random fields of random types.
        2..=4 => {
            let (module, method) = ROUTES[rng.random_range(0..ROUTES.len())];
            let mut m = serde_json::Map::new();
            m.insert("module".into(), json!(module));
            m.insert("method".into(), json!(method));
            for _ in 0..rng.random_range(0..8) {
                let k = FIELDS[rng.random_range(0..FIELDS.len())];
                m.insert(k.into(), value(rng, 1));
            }
            Value::Object(m).to_string()
        }
        // A valid-looking frame cut short.
        5 => {
            let full =
                json!({"module":"call","method":"doInvite","ownUserId":2001,"roomId":5,"type":2})
                    .to_string();
            let cut = rng.random_range(0..full.len());
            full[..cut].to_string()
        }
        // Over the 64 KiB limit.
        6 => {
            let n = rng.random_range(64 * 1024..100 * 1024);
            json!({"module":"media","method":"offer","roomId":1,"toClientId":1,"sdp":"x".repeat(n)})
                .to_string()
        }
        // Wrong types for routing fields.
        _ => json!({"module": value(rng, 2), "method": value(rng, 2), "reqId": value(rng, 2)})
            .to_string(),
    }
}

#[tokio::test]
async fn agent_survives_thousands_of_bad_frames_and_still_answers() {
    let server = Server::start().await;
    let toml = agent_toml(&server.api(), "mode = \"always\"\ndelay_ms = 0");
    let mut agent = Agent::start_toml(&toml).await;
    agent.registered().await;

    // Record any moment the agent loses its registration while the garbage flows.
    let dropped = Arc::new(AtomicBool::new(false));
    let mut watch = agent.handle.state();
    let flag = dropped.clone();
    let watcher = tokio::spawn(async move {
        while watch.changed().await.is_ok() {
            if !watch.borrow().registered {
                flag.store(true, Ordering::SeqCst);
            }
        }
    });

    let mut rng = StdRng::seed_from_u64(0x5eed_0001);
    for i in 0..FRAMES {
        assert_eq!(
            server.handle.inject(ROOM, &garbage(&mut rng)),
            1,
            "frame {i}: agent not connected"
        );
        if i % 100 == 0 {
            // Let the server's per-connection queue drain: it closes clients that fall
            // more than 1024 frames behind, and this test is about bad frames, not floods.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    // Random frames can be well-formed invites from random users, which the agent rightly
    // answers: end whatever that started before the real call.
    let _ = agent.handle.command(roomagent::core::Command::Hangup).await;
    agent.phase(CallPhase::Idle).await;
    // A real call still works on the same connection.
    let mut alice = Peer::connect(&server.api(), "alice", "alice").await;
    let room = alice.call_agent(ROOM).await;
    let s = agent.phase(CallPhase::InCall).await;
    assert_eq!(s.room_id, Some(RoomId(room)));

    // And in a call, garbage does not disturb it either.
    for i in 0..FRAMES / 3 {
        server.handle.inject(ROOM, &garbage(&mut rng));
        if i % 100 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    alice
        .request(
            "meeting",
            "muteMsg",
            json!({"userId": ROOM, "roomId": room, "isMute": true, "super": "fromSuper"}),
        )
        .await;
    agent
        .wait_for("host mute after the garbage", |s| s.mic_muted)
        .await;
    assert!(
        !dropped.load(Ordering::SeqCst),
        "bad frames cost the agent its connection"
    );
    watcher.abort();
    agent.stop().await;
}

#[tokio::test]
async fn room_server_answers_every_bad_frame_and_keeps_the_connection() {
    let server = Server::start().await;
    let mut mallory = Peer::connect(&server.api(), "bob", "bob").await;
    let mut rng = StdRng::seed_from_u64(0x5eed_0002);
    let mut codes = std::collections::BTreeMap::new();
    for _ in 0..FRAMES {
        mallory.send_raw(garbage(&mut rng)).await;
    }
    // Every frame gets exactly one reply; count them (pushes the garbage may have caused,
    // such as a room this user entered, are not replies: they have no result at top level
    // for our own requests... so count frames that carry `result` and echo our routing).
    let mut replies = 0;
    while replies < FRAMES {
        let v = mallory
            .wait_within("reply", Duration::from_secs(10), |v| {
                v.get("result").is_some()
            })
            .await
            .unwrap_or_else(|| panic!("only {replies} replies to {FRAMES} frames"));
        *codes.entry(v["result"].as_i64().unwrap_or(-1)).or_insert(0) += 1;
        replies += 1;
    }
    println!("reply codes to {FRAMES} bad frames: {codes:?}");
    assert!(
        codes.contains_key(&400) && codes.contains_key(&404),
        "{codes:?}"
    );
    // The same connection still works for real requests.
    let room = mallory.new_room().await;
    let r = mallory.enter(room).await;
    assert_eq!(r["client"]["id"], BOB);
    // And the server still serves others.
    let alice = Peer::connect(&server.api(), "alice", "alice").await;
    assert_eq!(alice.user_id, ALICE);
}
