//! A golden transcript of the hub: one scripted session that sends every route, with its
//! refusals, and records every frame the hub answers, byte for byte, in `transcript.txt`.
//! Any change to an answer, an error code or message, a push or the order of deliveries
//! shows up as a diff. After an intended change of behaviour, regenerate the file with
//! `ROOMAGENT_BLESS=1 cargo test --lib room_server::hub::transcript` and review the diff.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::*;
use crate::config::{AccountConfig, AppConfig, Secret};

const GOLDEN: &str = include_str!("transcript.txt");

/// Records requests and answers; random tokens (SIDs, signatures) are replaced by names.
struct Script {
    hub: Hub,
    log: String,
    /// `(token, placeholder)`.
    secrets: Vec<(String, String)>,
}

impl Script {
    fn new() -> Script {
        let acc = |id, name: &str| AccountConfig {
            id,
            name: name.into(),
            password: Secret::new(name),
            display_name: (name == "tv").then(|| "Room TV".into()),
        };
        let hub = Hub::new(Accounts::new(
            &[
                acc(1, "tv"),
                acc(2, "alice"),
                acc(3, "bob"),
                acc(4, "carol"),
            ],
            &[AppConfig {
                app_id: "app1".into(),
                secret: Secret::new("s3"),
                company: Some("ACME".into()),
            }],
        ));
        Script {
            hub,
            log: String::new(),
            secrets: Vec::new(),
        }
    }

    fn hide(&self, text: &str) -> String {
        let mut text = text.to_string();
        for (secret, name) in &self.secrets {
            text = text.replace(secret.as_str(), name);
        }
        if text.len() > 2000 {
            text = format!("{}… ({} bytes)", &text[..120], text.len());
        }
        text
    }

    fn note(&mut self, line: &str) {
        let line = self.hide(line);
        let _ = writeln!(self.log, "{line}");
    }

    fn deliveries(&mut self, out: Vec<Delivery>) {
        for d in out {
            let text = self.hide(&d.text);
            let _ = writeln!(self.log, "  < {} {text}", d.to);
        }
    }

    /// HTTP `account`; remembers the SID under `<sid:NAME>`.
    fn account(&mut self, params: Value) -> Option<String> {
        let reply = self.hub.account(&params.to_string());
        if let (Some(sid), Some(user)) = (&reply.sid, &reply.user) {
            let name = user.account.clone().unwrap_or_default();
            self.secrets.push((sid.clone(), format!("<sid:{name}>")));
        }
        let text = serde_json::to_string(&reply).unwrap();
        self.note(&format!("POST account {params}"));
        self.note(&format!("  = {text}"));
        reply.sid
    }

    fn connect(&mut self, conn: ConnId, sid: &str) {
        let ok = self.hub.connect(conn, sid);
        self.note(&format!("connect {conn} {sid} = {ok}"));
    }

    /// Logs `name` in (password = name) and connects `conn`; returns the SID.
    fn login(&mut self, conn: ConnId, name: &str) -> String {
        let sid = self
            .account(json!({"method": "login", "name": name, "password": name}))
            .unwrap();
        self.connect(conn, &sid);
        sid
    }

    fn raw(&mut self, conn: ConnId, text: &str) {
        self.note(&format!("> {conn} {text}"));
        let out = self.hub.frame(conn, text);
        self.deliveries(out);
    }

    fn send(&mut self, conn: ConnId, v: Value) {
        self.raw(conn, &v.to_string());
    }

    fn close(&mut self, conn: ConnId) {
        self.note(&format!("x {conn}"));
        let out = self.hub.disconnect(conn);
        self.deliveries(out);
    }

    fn online(&mut self) {
        // One user's devices come in connection-map order: sort them to compare.
        let mut online = self.hub.online();
        online.sort_by(|a, b| (a.id, &a.device_type).cmp(&(b.id, &b.device_type)));
        let online = serde_json::to_string(&online).unwrap();
        self.note(&format!("online = {online}"));
    }
}

#[rustfmt::skip]
fn http(s: &mut Script) {
    s.note("# HTTP side");
    for (app, secret) in [
        (None, None),
        (Some("app1"), None),
        (Some("app1"), Some("no")),
    ] {
        let r = s.hub.get_sign(app, secret);
        let text = serde_json::to_string(&r).unwrap();
        s.note(&format!("getSign {app:?} {secret:?} = {text}"));
    }
    let sign = fresh_sign(s);
    s.note(&format!("getSign app1 s3 = {sign}"));
    s.note("POST account {not json");
    let text = serde_json::to_string(&s.hub.account("{not json")).unwrap();
    s.note(&format!("  = {text}"));
    s.account(json!({"method": "login", "name": "alice", "password": "nope"}));
    s.account(json!({"method": "login", "name": "nobody", "password": "nobody"}));
    s.account(json!({"method": "dockingLogin", "account": "d", "sign": "forged"}));
    s.account(json!({"method": "dockingLogin", "account": "d", "appkey": "app2", "sign": sign}));
    // Signatures are single-use: each attempt below asks getSign again.
    let sign = fresh_sign(s);
    s.account(json!({"method": "dockingLogin", "account": "", "sign": sign}));
    let sign = fresh_sign(s);
    let docked = s.account(
        json!({"method": "dockingLogin", "account": "d", "userName": "Dee", "sign": sign}),
    );
    s.account(json!({"method": "dockingLogin", "account": "d", "sign": sign}));
    s.account(json!({"method": "logout", "SID": "nope", "userId": 100000}));
    let docked = docked.unwrap();
    s.account(json!({"method": "logout", "SID": docked, "userId": 2}));
    s.account(json!({"method": "logout", "SID": docked, "userId": 100000}));
    s.account(json!({"method": "logout", "SID": docked, "userId": 100000}));
    s.note(&format!(
        "session_user(nope) = {:?}",
        s.hub.session_user("nope")
    ));
}

/// A `getSign` signature for app1, hidden as `<sign>` in the transcript.
fn fresh_sign(s: &mut Script) -> String {
    let sign = s.hub.get_sign(Some("app1"), Some("s3")).data.unwrap();
    s.secrets.push((sign.clone(), "<sign>".into()));
    sign
}

#[rustfmt::skip]
fn registration(s: &mut Script) {
    s.note("# before registration");
    s.send(99, json!({"module":"meeting","method":"enter","reqId":"u","userId":1,"roomId":1,"roomType":2}));
    s.connect(98, "no-such-sid");
    let bob = s.login(6, "bob");
    s.send(6, json!({"module":"meeting","method":"enter","reqId":"a","userId":3,"roomId":1,"roomType":2}));
    s.send(6, json!({"module":"meeting","method":"dance","reqId":1}));
    s.send(6, json!({"module":"media","method":"offer","roomId":1,"toClientId":2,"sdp":"v=0"}));
    s.raw(6, "{not json");
    s.raw(6, "[1,2]");
    s.raw(6, r#"{"module":"call","reqId":"m"}"#);
    s.raw(6, r#"{"module":5,"method":"x","reqId":7}"#);
    s.raw(6, r#"{"module":"call","method":"doRegister","reqId":null}"#);
    s.raw(6, &format!(r#"{{"module":"call","method":"doInvite","reqId":"big","pad":"{}"}}"#, "y".repeat(70_000)));
    s.send(6, json!({"module":"call","method":"doRegister","reqId":"r","SID":"wrong","userId":3}));
    s.send(6, json!({"module":"call","method":"doRegister","SID":bob,"userId":2}));
    s.send(6, json!({"module":"call","method":"doRegister","SID":bob,"userId":3,"deviceType":"toaster"}));
    s.send(6, json!({"module":"call","method":"doRegister","userId":3}));
    s.send(6, json!({"module":"call","method":"doRegister","reqId":"ok","SID":bob,"userId":3}));
    s.send(6, json!({"module":"meeting","method":"dance","reqId":1}));
    s.send(6, json!({"module":"Meeting","method":"enter"}));
    let tv = s.login(1, "tv");
    s.send(1, json!({"module":"call","method":"doRegister","SID":tv,"userId":1,"deviceType":"tv"}));
    let alice = s.login(2, "alice");
    s.send(2, json!({"module":"call","method":"doRegister","SID":alice,"userId":2,"deviceType":"webphone"}));
    s.connect(5, &alice);
    s.send(5, json!({"module":"call","method":"doRegister","SID":alice,"userId":2,"deviceType":"pc"}));
    // Carol logs out over the socket before registering: allowed, and it ends her sessions.
    let carol = s.login(4, "carol");
    s.send(4, json!({"module":"account","method":"logout","reqId":"lo"}));
    s.note(&format!("session_user(carol) = {:?}", s.hub.session_user(&carol)));
    s.send(4, json!({"module":"call","method":"doRegister","SID":carol,"userId":4,"deviceType":"Android"}));
    s.connect(7, &carol);
    s.online();
}

#[rustfmt::skip]
fn calls(s: &mut Script) {
    s.note("# call module");
    s.send(2, json!({"module":"call","method":"doInvite","reqId":"i","ownUserId":99,"ownDeviceType":"tv","targetUserId":1,"roomId":7,"type":2}));
    s.send(2, json!({"module":"call","method":"doInvite","targetUserId":1}));
    s.send(2, json!({"module":"call","method":"doInvite","roomId":7}));
    s.send(2, json!({"module":"call","method":"doInvite","targetUserId":1,"type":"video"}));
    s.send(2, json!({"module":"call","method":"doInvite","targetUserId":42,"roomId":7}));
    s.send(2, json!({"module":"call","method":"doInvite","targetUserId":1,"targetDeviceType":"pc","roomId":7}));
    s.send(6, json!({"module":"call","method":"doInvite","targetUserId":2,"targetDeviceType":"pc","roomId":8}));
    s.send(1, json!({"module":"call","method":"doEvent","targetUserId":2,"targetDeviceType":"webphone","roomId":7}));
    s.send(1, json!({"module":"call","method":"doEvent","targetUserId":2,"targetDeviceType":"webphone","roomId":7,"event":"onRinging"}));
    s.send(1, json!({"module":"call","method":"doAgree","targetUserId":2,"targetDeviceType":"webphone","roomId":7}));
    s.send(1, json!({"module":"call","method":"reject","targetUserId":2,"targetDeviceType":"webphone"}));
    s.send(1, json!({"module":"call","method":"cancel","targetUserId":2,"targetDeviceType":"webphone","roomType":2}));
    s.send(1, json!({"module":"call","method":"hangUp","targetUserId":2}));
    s.send(1, json!({"module":"account","method":"login"}));
}

#[rustfmt::skip]
fn rooms(s: &mut Script) {
    s.note("# rooms");
    s.send(2, json!({"module":"room","method":"newAppRoom","name":"x","numberLimit":2,"roomtype":2,"userId":1}));
    s.send(2, json!({"module":"room","method":"newAppRoom","name":"x","numberLimit":0,"roomtype":2,"userId":2}));
    s.send(2, json!({"module":"room","method":"newAppRoom","name":"x","numberLimit":201,"roomtype":2,"userId":2}));
    s.send(2, json!({"module":"room","method":"newAppRoom","numberLimit":2,"roomtype":2,"userId":2}));
    s.send(2, json!({"module":"room","method":"newAppRoom","reqId":"n","name":"Board","numberLimit":2,"roomtype":2,"userId":2}));
    s.send(2, json!({"module":"meeting","method":"enter","userId":1,"roomId":1000,"roomType":2}));
    s.send(2, json!({"module":"meeting","method":"enter","userId":2,"roomId":1000,"roomType":4}));
    s.send(2, json!({"module":"meeting","method":"enter","userId":2,"roomType":2}));
    s.send(2, json!({"module":"meeting","method":"enter","reqId":"e","userId":2,"roomId":1000,"roomType":2}));
    s.send(1, json!({"module":"meeting","method":"enter","userId":1,"roomId":1000,"roomType":2}));
    s.send(6, json!({"module":"meeting","method":"enter","userId":3,"roomId":1000,"roomType":2}));
    s.send(2, json!({"module":"meeting","method":"enter","userId":2,"roomId":1000,"roomType":2,"username":"Al"}));
    s.send(5, json!({"module":"meeting","method":"enter","userId":2,"roomId":1000,"roomType":2}));
    s.send(6, json!({"module":"meeting","method":"enter","userId":3,"roomId":77,"roomType":1,"username":"Bobby"}));
}

#[rustfmt::skip]
fn meeting(s: &mut Script) {
    s.note("# meeting messages in room 1000 (alice on 5 hosts, tv on 1)");
    s.send(6, json!({"module":"meeting","method":"muteMsg","userId":3,"roomId":1000,"isMute":true}));
    s.send(1, json!({"module":"meeting","method":"muteMsg","userId":1,"roomId":1000,"isMute":true}));
    s.send(1, json!({"module":"meeting","method":"raiseHand","roomId":1000}));
    s.send(1, json!({"module":"meeting","method":"muteMsg","userId":2,"roomId":1000,"isMute":true,"super":"fromSuper"}));
    s.send(1, json!({"module":"meeting","method":"muteMsg","userId":2,"roomId":1000,"isMute":true}));
    s.send(5, json!({"module":"meeting","method":"raiseHand","roomId":1000}));
    s.send(5, json!({"module":"meeting","method":"muteMsg","userId":99,"roomId":1000,"isMute":true}));
    s.send(5, json!({"module":"meeting","method":"muteMsg","userId":1,"roomId":1000,"isMute":false,"super":"fromSuper"}));
    s.send(1, json!({"module":"meeting","method":"muteAll","userId":1,"roomId":1000,"isMute":true}));
    s.send(5, json!({"module":"meeting","method":"muteAll","userId":1,"roomId":555,"isMute":true}));
    s.send(6, json!({"module":"meeting","method":"muteAll","userId":3,"roomId":1000,"isMute":true}));
    s.send(5, json!({"module":"meeting","method":"muteAll","userId":7,"roomId":1000,"isMute":true}));
    s.send(5, json!({"module":"meeting","method":"raiseHand","roomId":1000}));
    s.send(1, json!({"module":"meeting","method":"raiseHand","roomId":1000}));
    s.send(1, json!({"module":"meeting","method":"raiseHand","roomId":77}));
    s.send(1, json!({"module":"meeting","method":"chat","userId":99,"roomId":1000,"content":"hi"}));
    s.send(6, json!({"module":"meeting","method":"chat","userId":3,"roomId":1000,"content":"hi"}));
    s.send(1, json!({"module":"meeting","method":"privateChat","userId":99,"otherUserId":2,"roomId":1000,"content":"psst"}));
    s.send(1, json!({"module":"meeting","method":"privateChat","userId":1,"otherUserId":3,"roomId":1000,"content":"psst"}));
    s.send(1, json!({"module":"meeting","method":"updateVideo","roomId":1000,"video":true}));
    s.send(1, json!({"module":"meeting","method":"updateVideo","roomId":1000,"video":false}));
    s.send(1, json!({"module":"meeting","method":"updateVideo","roomId":1000,"video":"yes"}));
    s.send(1, json!({"module":"meeting","method":"audioOnlyMeeting","roomId":1000}));
    s.send(1, json!({"module":"meeting","method":"shareScreen","roomId":1000,"shareScreenId":1}));
    s.send(1, json!({"module":"meeting","method":"shareScreen","roomId":1000,"shareScreenId":null}));
    s.send(6, json!({"module":"meeting","method":"shareScreen","roomId":1000,"shareScreenId":3}));
    s.send(1, json!({"module":"meeting","method":"updateMeetingName","userId":1,"roomId":1000,"appointmentName":"A"}));
    s.send(5, json!({"module":"meeting","method":"updateMeetingName","userId":2,"roomId":1000,"appointmentName":"A","appointmentId":12}));
    s.send(5, json!({"module":"meeting","method":"updateMeetingName","userId":2,"roomId":1000,"appointmentName":"B"}));
    s.send(1, json!({"module":"meeting","method":"updateClientName","userId":1,"roomId":1000,"name":"TV 2"}));
    s.send(1, json!({"module":"meeting","method":"updateClientName","userId":2,"roomId":1000,"name":"Eve"}));
    s.send(5, json!({"module":"meeting","method":"updateClientName","userId":1,"roomId":1000,"name":"TV 3"}));
    s.send(5, json!({"module":"meeting","method":"updateClientName","userId":99,"roomId":1000,"name":"X"}));
    s.send(6, json!({"module":"meeting","method":"updateClientName","userId":3,"roomId":1000,"name":"X"}));
    s.send(1, json!({"module":"meeting","method":"setCompere","userId":1,"roomId":1000}));
    s.send(5, json!({"module":"meeting","method":"setCompere","userId":99,"roomId":1000}));
    s.send(5, json!({"module":"meeting","method":"setCompere","reqId":"c","userId":1,"roomId":1000}));
    s.send(5, json!({"module":"meeting","method":"enter","userId":2,"roomId":1000,"roomType":2}));
}

#[rustfmt::skip]
fn media(s: &mut Script) {
    s.note("# media in room 1000");
    s.send(5, json!({"module":"media","method":"offer","reqId":"o","roomId":1000,"fromClientId":77,"toClientId":1,"sdp":"v=0"}));
    s.send(1, json!({"module":"media","method":"answer","roomId":1000,"toClientId":2,"sdp":"v=1"}));
    s.send(1, json!({"module":"media","method":"candidate","roomId":1000,"toClientId":2,"candidate":"candidate:1","sdpMLineIndex":0,"sdpMid":"0"}));
    s.send(1, json!({"module":"media","method":"candidate","roomId":1000,"toClientId":2,"candidate":""}));
    s.send(5, json!({"module":"media","method":"bye","roomId":1000,"toClientId":1}));
    s.send(5, json!({"module":"media","method":"offer","roomId":1000,"toClientId":2,"sdp":"v=0"}));
    s.send(5, json!({"module":"media","method":"offer","roomId":1000,"toClientId":3,"sdp":"v=0"}));
    s.send(6, json!({"module":"media","method":"bye","roomId":1000,"toClientId":1}));
    s.send(5, json!({"module":"media","method":"offer","roomId":1000,"toClientId":1}));
    s.send(5, json!({"module":"media","method":"renegotiate","roomId":1000,"toClientId":1}));
}

#[rustfmt::skip]
fn leaving(s: &mut Script) {
    s.note("# kick, exit, finish, disconnect");
    s.send(1, json!({"module":"meeting","method":"enter","userId":1,"roomId":77,"roomType":1}));
    s.send(4, json!({"module":"meeting","method":"enter","userId":4,"roomId":77,"roomType":1}));
    s.send(1, json!({"module":"meeting","method":"kickOut","userId":4,"roomId":77}));
    s.send(6, json!({"module":"meeting","method":"kickOut","userId":99,"roomId":77}));
    s.send(6, json!({"module":"meeting","method":"kickOut","reqId":"k","userId":4,"roomId":77}));
    s.send(4, json!({"module":"meeting","method":"exit","roomId":77}));
    s.send(1, json!({"module":"meeting","method":"exit","roomId":77}));
    s.send(5, json!({"module":"meeting","method":"finish","roomId":1000}));
    s.send(1, json!({"module":"meeting","method":"finish","roomId":555}));
    s.send(1, json!({"module":"meeting","method":"finish","reqId":"f","roomId":1000}));
    s.send(5, json!({"module":"meeting","method":"enter","userId":2,"roomId":1000,"roomType":3}));
    s.send(4, json!({"module":"meeting","method":"enter","userId":4,"roomId":1000,"roomType":3}));
    s.send(1, json!({"module":"meeting","method":"enter","userId":1,"roomId":1000,"roomType":3}));
    s.send(2, json!({"module":"room","method":"newAppRoom","name":"y","numberLimit":200,"roomtype":1,"userId":2}));
    s.online();
    s.close(2);
    s.close(5);
    s.send(4, json!({"module":"meeting","method":"raiseHand","roomId":1000}));
    s.send(1, json!({"module":"meeting","method":"raiseHand","roomId":1000}));
    s.close(5);
    s.close(6);
    s.send(4, json!({"module":"meeting","method":"enter","userId":4,"roomId":77,"roomType":2}));
    s.close(4);
    s.close(1);
    s.online();
    s.send(1, json!({"module":"meeting","method":"raiseHand","roomId":1000}));
}

#[test]
fn every_route_answers_exactly_as_recorded() {
    let mut s = Script::new();
    http(&mut s);
    registration(&mut s);
    calls(&mut s);
    rooms(&mut s);
    meeting(&mut s);
    media(&mut s);
    leaving(&mut s);
    if std::env::var_os("ROOMAGENT_BLESS").is_some() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/room_server/hub/transcript.txt"
        );
        std::fs::write(path, &s.log).unwrap();
        return;
    }
    for (i, (got, want)) in s.log.lines().zip(GOLDEN.lines()).enumerate() {
        assert_eq!(got, want, "transcript line {}", i + 1);
    }
    assert_eq!(s.log.lines().count(), GOLDEN.lines().count());
}
