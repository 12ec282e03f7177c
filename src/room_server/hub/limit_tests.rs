//! The hub's limits on what remote input can grow: sessions, rooms, seats and texts, with
//! time moved on by a test clock.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::tests::{hub, online, send};
use super::*;
use crate::room_server::limits::{
    MAX_EMPTY_ROOMS_PER_OWNER, MAX_ROOMS_PER_USER, MAX_SESSIONS_PER_USER, MAX_TEXT, SESSION_TTL,
    UNENTERED_ROOM_TTL,
};

type TestClock = Arc<Mutex<Instant>>;

fn clocked() -> (Hub, TestClock) {
    let t = Arc::new(Mutex::new(Instant::now()));
    let c = t.clone();
    let mut h = hub();
    h.set_clock(Box::new(move || *c.lock().unwrap()));
    (h, t)
}

fn advance(t: &TestClock, d: Duration) {
    *t.lock().unwrap() += d;
}

fn login(h: &mut Hub, name: &str) -> String {
    let r = h.account(&json!({"method": "login", "name": name, "password": name}).to_string());
    r.sid.expect("login")
}

fn new_room(h: &mut Hub, conn: ConnId, user: i64) -> Value {
    let body = json!({"module":"room","method":"newAppRoom","name":"x","numberLimit":4,"roomtype":2,"userId":user});
    send(h, conn, body).remove(0).1
}

fn enter(h: &mut Hub, conn: ConnId, user: i64, room: i64) -> Value {
    let body =
        json!({"module":"meeting","method":"enter","userId":user,"roomId":room,"roomType":2});
    send(h, conn, body).remove(0).1
}

#[test]
fn a_session_expires_after_its_ttl() {
    let (mut h, t) = clocked();
    let sid = login(&mut h, "alice");
    advance(&t, SESSION_TTL - Duration::from_secs(1));
    assert_eq!(h.session_user(&sid), Some(2));
    advance(&t, Duration::from_secs(1));
    assert_eq!(h.session_user(&sid), None);
    assert!(!h.connect(5, &sid), "an expired SID must not open a socket");
    let out = h.account(&json!({"method":"logout","SID": sid,"userId": 2}).to_string());
    assert_eq!(out.result, 1);
}

#[test]
fn a_user_keeps_the_newest_sessions_only() {
    let (mut h, t) = clocked();
    let mut sids = Vec::new();
    for _ in 0..=MAX_SESSIONS_PER_USER {
        sids.push(login(&mut h, "alice"));
        advance(&t, Duration::from_secs(1));
    }
    assert_eq!(h.session_user(&sids[0]), None, "the oldest is evicted");
    for sid in &sids[1..] {
        assert_eq!(h.session_user(sid), Some(2));
    }
    let bob = login(&mut h, "bob");
    assert_eq!(
        h.session_user(&bob),
        Some(3),
        "other users are not affected"
    );
}

#[test]
fn unentered_rooms_are_capped_per_owner_and_expire() {
    let (mut h, t) = clocked();
    let alice = online(&mut h, 1, "alice", "pc");
    let bob = online(&mut h, 2, "bob", "pc");
    for _ in 0..MAX_EMPTY_ROOMS_PER_OWNER {
        assert_eq!(new_room(&mut h, 1, alice)["result"], 0);
    }
    let refused = new_room(&mut h, 1, alice);
    assert_eq!(refused["result"], 1, "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("nobody entered")
    );
    assert_eq!(new_room(&mut h, 2, bob)["result"], 0, "bob has his own cap");
    let entered = new_room(&mut h, 2, bob)["roomId"].as_i64().unwrap();
    assert_eq!(enter(&mut h, 2, bob, entered)["result"], 0);
    advance(&t, UNENTERED_ROOM_TTL);
    assert_eq!(
        new_room(&mut h, 1, alice)["result"],
        0,
        "old empty rooms went"
    );
    let again = enter(&mut h, 1, alice, entered);
    assert_eq!(
        again["members"][0]["id"], bob,
        "an entered room stays: {again}"
    );
}

#[test]
fn a_user_sits_in_a_limited_number_of_rooms() {
    let mut h = hub();
    let alice = online(&mut h, 1, "alice", "pc");
    let rooms: Vec<i64> = (1..=MAX_ROOMS_PER_USER as i64).collect();
    for &room in &rooms {
        assert_eq!(enter(&mut h, 1, alice, room)["result"], 0);
    }
    let refused = enter(&mut h, 1, alice, 99);
    assert_eq!(refused["result"], 1, "{refused}");
    assert_eq!(
        enter(&mut h, 1, alice, rooms[0])["result"],
        0,
        "re-entering is fine"
    );
    let exit = json!({"module":"meeting","method":"exit","userId":alice,"roomId":rooms[0]});
    assert_eq!(send(&mut h, 1, exit)[0].1["result"], 0);
    assert_eq!(enter(&mut h, 1, alice, 99)["result"], 0);
}

#[test]
fn chat_texts_and_names_longer_than_the_limit_get_400_naming_the_field() {
    let mut h = hub();
    let alice = online(&mut h, 1, "alice", "pc");
    let bob = online(&mut h, 2, "bob", "pc");
    let long = "é".repeat(MAX_TEXT / 2 + 1);
    let body = json!({"module":"meeting","method":"enter","userId":alice,"roomId":7,"roomType":2,"username": long});
    let out = send(&mut h, 1, body);
    assert_eq!(out[0].1["result"], 400);
    assert!(out[0].1["message"].as_str().unwrap().contains("username"));
    assert_eq!(enter(&mut h, 1, alice, 7)["result"], 0);
    assert_eq!(enter(&mut h, 2, bob, 7)["result"], 0);
    let chat = |content: &str| json!({"module":"meeting","method":"chat","userId":alice,"roomId":7,"content":content});
    let out = send(&mut h, 1, chat(&long));
    assert_eq!(out[0].1["result"], 400);
    assert!(out[0].1["message"].as_str().unwrap().contains("content"));
    assert_eq!(out.len(), 1, "nothing is pushed: {out:?}");
    let fits = "x".repeat(MAX_TEXT);
    let out = send(&mut h, 1, chat(&fits));
    assert_eq!(out[0].1["result"], 0);
    assert_eq!(out[1].1["content"], fits.as_str());
    let rename = json!({"module":"meeting","method":"updateClientName","userId":alice,"roomId":7,"name": long});
    assert_eq!(send(&mut h, 1, rename)[0].1["result"], 400);
    let room = json!({"module":"room","method":"newAppRoom","name": long,"numberLimit":4,"roomtype":2,"userId":alice});
    assert_eq!(send(&mut h, 1, room)[0].1["result"], 400);
}
