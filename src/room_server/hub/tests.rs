//! Unit tests of the hub: routing, identity rewriting, error codes and host hand-over.

use super::*;
use crate::config::{AccountConfig, Secret};

pub(super) fn hub() -> Hub {
    let acc = |id, name: &str| AccountConfig {
        id,
        name: name.into(),
        password: Secret::new(name),
        display_name: None,
    };
    Hub::new(Accounts::new(
        &[acc(1, "tv"), acc(2, "alice"), acc(3, "bob")],
        &[],
    ))
}

/// Logs `name` in, connects `conn` and registers it with `device`.
pub(super) fn online(h: &mut Hub, conn: ConnId, name: &str, device: &str) -> i64 {
    let r = h.account(&json!({"method": "login", "name": name, "password": name}).to_string());
    let sid = r.sid.unwrap();
    let user = r.user.unwrap().id;
    assert!(h.connect(conn, &sid));
    let out = h.frame(
        conn,
        &json!({"module":"call","method":"doRegister","SID": sid,"userId": user,"deviceType": device}).to_string(),
    );
    assert_eq!(parse(&out[0].text)["result"], 0);
    user
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

pub(super) fn send(h: &mut Hub, conn: ConnId, v: Value) -> Vec<(ConnId, Value)> {
    h.frame(conn, &v.to_string())
        .into_iter()
        .map(|d| (d.to, parse(&d.text)))
        .collect()
}

#[test]
fn requests_before_registration_get_401() {
    let mut h = hub();
    let r = h.account(&json!({"method":"login","name":"alice","password":"alice"}).to_string());
    assert!(h.connect(9, &r.sid.unwrap()));
    let out = send(
        &mut h,
        9,
        json!({"module":"meeting","method":"enter","reqId":"a","userId":2,"roomId":1,"roomType":2}),
    );
    assert_eq!(out[0].1["result"], 401);
    assert_eq!(out[0].1["reqId"], "a");
}

#[test]
fn unknown_methods_get_404_and_missing_fields_400_naming_them() {
    let mut h = hub();
    online(&mut h, 1, "alice", "pc");
    let out = send(&mut h, 1, json!({"module":"meeting","method":"dance"}));
    assert_eq!(out[0].1["result"], 404);
    let out = send(
        &mut h,
        1,
        json!({"module":"meeting","method":"enter","userId":2,"roomType":2}),
    );
    assert_eq!(out[0].1["result"], 400);
    assert!(
        out[0].1["message"].as_str().unwrap().contains("roomId"),
        "{}",
        out[0].1
    );
    let out = h.frame(1, "{not json");
    assert_eq!(parse(&out[0].text)["result"], 400);
}

#[test]
fn calls_are_forwarded_with_the_senders_real_identity() {
    let mut h = hub();
    online(&mut h, 1, "tv", "tv");
    online(&mut h, 2, "alice", "webphone");
    // Alice claims to be someone else: the server rewrites it.
    let out = send(
        &mut h,
        2,
        json!({"module":"call","method":"doInvite","ownUserId":99,"ownDeviceType":"tv","targetUserId":1,"roomId":7,"type":2}),
    );
    assert_eq!(out[0].1["result"], 0);
    let (to, fwd) = &out[1];
    assert_eq!(*to, 1);
    assert_eq!(fwd["ownUserId"], 2);
    assert_eq!(fwd["ownDeviceType"], "webphone");
    assert_eq!(fwd["roomId"], 7);
    assert!(fwd.get("targetUserId").is_none());
    // Bob is not online.
    let out = send(
        &mut h,
        2,
        json!({"module":"call","method":"doInvite","targetUserId":3,"roomId":7}),
    );
    assert_eq!(out[0].1["result"], 1);
    assert_eq!(out.len(), 1);
}

#[test]
fn target_device_type_picks_one_device_of_an_account() {
    let mut h = hub();
    online(&mut h, 1, "alice", "pc");
    online(&mut h, 2, "alice", "webphone");
    online(&mut h, 3, "bob", "pc");
    let out = send(
        &mut h,
        3,
        json!({"module":"call","method":"doInvite","targetUserId":2,"targetDeviceType":"webphone","roomId":1}),
    );
    let targets: Vec<ConnId> = out[1..].iter().map(|(c, _)| *c).collect();
    assert_eq!(targets, vec![2]);
}

#[test]
fn media_messages_are_forwarded_with_the_real_from_client_id() {
    let mut h = hub();
    online(&mut h, 1, "tv", "tv");
    online(&mut h, 2, "alice", "webphone");
    send(
        &mut h,
        1,
        json!({"module":"meeting","method":"enter","userId":1,"roomId":5,"roomType":2}),
    );
    send(
        &mut h,
        2,
        json!({"module":"meeting","method":"enter","userId":2,"roomId":5,"roomType":2}),
    );
    let out = send(
        &mut h,
        2,
        json!({"module":"media","method":"offer","roomId":5,"fromClientId":77,"toClientId":1,"sdp":"v=0"}),
    );
    assert_eq!(out[0].1["result"], 0);
    assert_eq!(out[1].0, 1);
    assert_eq!(out[1].1["fromClientId"], 2);
    assert_eq!(out[1].1["sdp"], "v=0");
    let out = send(
        &mut h,
        2,
        json!({"module":"media","method":"offer","roomId":5,"toClientId":3,"sdp":"v=0"}),
    );
    assert_eq!(out[0].1["result"], 1, "bob is not in the room");
}

#[test]
fn entering_again_from_another_socket_replaces_the_older_one_with_result_9() {
    let mut h = hub();
    online(&mut h, 1, "alice", "pc");
    online(&mut h, 2, "alice", "webphone");
    send(
        &mut h,
        1,
        json!({"module":"meeting","method":"enter","userId":2,"roomId":5,"roomType":2}),
    );
    let out = send(
        &mut h,
        2,
        json!({"module":"meeting","method":"enter","userId":2,"roomId":5,"roomType":2}),
    );
    let to_old: Vec<_> = out.iter().filter(|(c, _)| *c == 1).collect();
    assert_eq!(to_old.len(), 1);
    assert_eq!(to_old[0].1["method"], "EnterRoom");
    assert_eq!(to_old[0].1["result"], 9);
}

#[test]
fn the_host_role_passes_on_when_the_host_leaves() {
    let mut h = hub();
    online(&mut h, 1, "tv", "tv");
    online(&mut h, 2, "alice", "webphone");
    let r = send(
        &mut h,
        2,
        json!({"module":"room","method":"newAppRoom","name":"x","numberLimit":4,"roomtype":2,"userId":2}),
    );
    let room = r[0].1["roomId"].as_i64().unwrap();
    send(
        &mut h,
        2,
        json!({"module":"meeting","method":"enter","userId":2,"roomId":room,"roomType":2}),
    );
    let r = send(
        &mut h,
        1,
        json!({"module":"meeting","method":"enter","userId":1,"roomId":room,"roomType":2}),
    );
    assert_eq!(r[0].1["room"]["superModeId"], 2);
    assert_eq!(r[0].1["members"][0]["isSuperModerator"], true);
    // The tv is not the host: it cannot mute everyone.
    let r = send(
        &mut h,
        1,
        json!({"module":"meeting","method":"muteAll","userId":1,"roomId":room,"isMute":true}),
    );
    assert_eq!(r[0].1["result"], 1);
    send(
        &mut h,
        2,
        json!({"module":"meeting","method":"exit","roomId":room}),
    );
    let r = send(
        &mut h,
        1,
        json!({"module":"meeting","method":"muteAll","userId":1,"roomId":room,"isMute":true}),
    );
    assert_eq!(r[0].1["result"], 0, "the remaining participant is host now");
}

#[test]
fn a_closed_socket_leaves_its_rooms() {
    let mut h = hub();
    online(&mut h, 1, "tv", "tv");
    online(&mut h, 2, "alice", "webphone");
    send(
        &mut h,
        1,
        json!({"module":"meeting","method":"enter","userId":1,"roomId":5,"roomType":2}),
    );
    send(
        &mut h,
        2,
        json!({"module":"meeting","method":"enter","userId":2,"roomId":5,"roomType":2}),
    );
    let out = h.disconnect(2);
    assert_eq!(out.len(), 1);
    let v = parse(&out[0].text);
    assert_eq!(
        (v["method"].clone(), v["client"]["id"].clone()),
        (json!("ExitRoom"), json!(2))
    );
    assert!(h.online().iter().all(|o| o.id != 2));
}

#[test]
fn debug_shows_no_session_id_signature_or_password() {
    let alice = AccountConfig {
        id: 2,
        name: "alice".into(),
        password: Secret::new("alice-pw-x9Qv"),
        display_name: None,
    };
    let app = crate::config::AppConfig {
        app_id: "app".into(),
        secret: Secret::new("app-secret-x9Qv"),
        company: None,
    };
    let mut h = Hub::new(Accounts::new(&[alice], &[app]));
    let login = json!({"method":"login","name":"alice","password":"alice-pw-x9Qv"});
    let r = h.account(&login.to_string());
    let sid = r.sid.clone().unwrap();
    assert!(h.connect(9, &sid));
    let sign = h.get_sign(Some("app"), Some("app-secret-x9Qv"));
    let shown = format!("{h:?} {h:#?} {r:?} {sign:?}");
    let sign = sign.data.unwrap();
    for secret in [sid.as_str(), sign.as_str(), "x9Qv"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains("user_id: 2"), "{shown}");
}

#[test]
fn quality_requests_are_relayed_and_a_bad_layer_is_refused() {
    let mut h = hub();
    online(&mut h, 1, "tv", "tv");
    online(&mut h, 2, "alice", "webphone");
    for (conn, user) in [(1, 1), (2, 2)] {
        send(
            &mut h,
            conn,
            json!({"module":"meeting","method":"enter","userId":user,"roomId":5,"roomType":2}),
        );
    }
    let out = send(
        &mut h,
        2,
        json!({"module":"media","method":"quality","roomId":5,"toClientId":1,"sim":0}),
    );
    assert_eq!(out[0].1["result"], 0);
    assert_eq!(out[1].0, 1);
    assert_eq!(out[1].1["method"], "quality");
    assert_eq!(out[1].1["fromClientId"], 2);
    assert_eq!(out[1].1["sim"], 0);
    let out = send(
        &mut h,
        2,
        json!({"module":"media","method":"quality","roomId":5,"toClientId":1,"sim":5}),
    );
    assert_eq!(out.len(), 1, "a bad layer is not relayed");
    assert_eq!(out[0].1["result"], 400);
    assert!(
        out[0].1["message"].as_str().unwrap().contains("sim"),
        "{}",
        out[0].1
    );
}
