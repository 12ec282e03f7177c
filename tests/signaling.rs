//! Agent ↔ development room server, in-process on port 0: login, registration, the call
//! lifecycle, host orders, and reconnection after a server restart.

mod support;

use std::time::{Duration, Instant};

use roomagent::core::{CallEvent, CallPhase, Command, EndReason, RoomId, UserId};
use serde_json::json;
use support::*;

fn answer(extra: &str) -> String {
    format!("mode = \"always\"\ndelay_ms = 300\n{extra}")
}

#[tokio::test]
async fn password_login_registers_the_device_as_a_tv() {
    let server = Server::start().await;
    let mut agent = Agent::start_toml(&agent_toml(&server.api(), &answer(""))).await;
    let s = agent.registered().await;
    assert_eq!(s.user_id, Some(UserId(ROOM)));
    let online = server.handle.online();
    assert!(
        online.iter().any(|o| o.id == ROOM && o.device_type == "tv"),
        "{online:?}"
    );
    agent.stop().await;
}

#[tokio::test]
async fn docking_login_registers_with_a_fresh_signature() {
    let server = Server::start().await;
    let toml = agent_toml(&server.api(), &answer("")).replace(
        "name = \"room\"\npassword = \"room\"",
        "method = \"docking\"\napp_id = \"demo-app\"\nsecret = \"demo-secret\"\naccount = \"room-9\"\nuser_name = \"Room 9\"",
    );
    let mut agent = Agent::start_toml(&toml).await;
    let s = agent.registered().await;
    let id = s.user_id.unwrap();
    let online = server.handle.online();
    let me = online
        .iter()
        .find(|o| UserId(o.id) == id)
        .expect("docking user online");
    assert_eq!(me.name, "Room 9");
    assert_eq!(me.account, "demo-app:room-9");
    agent.stop().await;
}

#[tokio::test]
async fn wrong_password_is_reported_clearly_and_retried() {
    let server = Server::start().await;
    let toml = agent_toml(&server.api(), &answer(""))
        .replace("password = \"room\"", "password = \"nope\"");
    let mut agent = Agent::start_toml(&toml).await;
    let s = agent
        .wait_for("a login error", |s| s.signaling_error.is_some())
        .await;
    let err = s.signaling_error.unwrap();
    assert!(
        err.contains("\"room\"") && err.contains("wrong name or password"),
        "{err}"
    );
    assert!(!err.contains("nope"), "the password must not appear: {err}");
    assert!(!s.registered);
    agent.stop().await;
}

#[tokio::test]
async fn wrong_docking_secret_names_the_app() {
    let server = Server::start().await;
    let toml = agent_toml(&server.api(), &answer("")).replace(
        "name = \"room\"\npassword = \"room\"",
        "method = \"docking\"\napp_id = \"demo-app\"\nsecret = \"wrong-secret\"\naccount = \"room-9\"",
    );
    let mut agent = Agent::start_toml(&toml).await;
    let s = agent
        .wait_for("a login error", |s| s.signaling_error.is_some())
        .await;
    let err = s.signaling_error.unwrap();
    assert!(err.contains("getSign refused appId \"demo-app\""), "{err}");
    assert!(!err.contains("wrong-secret"), "{err}");
    agent.stop().await;
}

#[tokio::test]
async fn incoming_call_is_auto_answered_after_delay() {
    let server = Server::start().await;
    let mut agent = Agent::start_toml(&agent_toml(&server.api(), &answer(""))).await;
    agent.registered().await;
    let mut alice = Peer::connect(&server.api(), "alice", "alice").await;
    let room = alice.new_room().await;
    let r = alice.invite(ROOM, room).await;
    assert_eq!(r["result"], 0);
    let ringing = alice.call_event("onRinging").await;
    let rang_at = Instant::now();
    assert_eq!(ringing["ownUserId"], ROOM);
    assert_eq!(ringing["ownDeviceType"], "tv");
    let agree = alice.push("call", "doAgree").await;
    let waited = rang_at.elapsed();
    assert!(
        waited >= Duration::from_millis(250),
        "answered after only {waited:?}"
    );
    assert_eq!(agree["ownUserId"], ROOM);
    assert_eq!(agree["roomId"], room);

    alice.enter(room).await;
    alice
        .request("call", "doEvent", json!({"ownUserId": ALICE, "targetUserId": ROOM, "event": "onConnected", "roomId": room, "roomType": 2}))
        .await;
    let entered = alice.push("meeting", "EnterRoom").await;
    assert_eq!(entered["client"]["id"], ROOM);
    assert_eq!(entered["client"]["mode"], "tv");
    let s = agent.phase(CallPhase::InCall).await;
    assert_eq!(s.room_id, Some(RoomId(room)));
    assert_eq!(s.peer, Some(UserId(ALICE)));
    assert_eq!(s.members.len(), 1);
    agent.stop().await;
}

#[tokio::test]
async fn second_invite_during_a_call_gets_busy() {
    let server = Server::start().await;
    let mut agent = Agent::start_toml(&agent_toml(&server.api(), &answer(""))).await;
    agent.registered().await;
    let mut alice = Peer::connect(&server.api(), "alice", "alice").await;
    alice.call_agent(ROOM).await;
    agent.phase(CallPhase::InCall).await;

    let mut bob = Peer::connect(&server.api(), "bob", "bob").await;
    let room = bob.new_room().await;
    bob.invite(ROOM, room).await;
    let busy = bob.call_event("onBusy").await;
    assert_eq!(busy["ownUserId"], ROOM);
    assert_eq!(agent.now().call, CallPhase::InCall);
    assert_eq!(agent.now().peer, Some(UserId(ALICE)));
    agent.stop().await;
}

#[tokio::test]
async fn caller_cancel_while_ringing_returns_to_idle() {
    let server = Server::start().await;
    let mut agent = Agent::start_toml(&agent_toml(&server.api(), "mode = \"never\"")).await;
    agent.registered().await;
    let mut events = agent.handle.events();
    let mut alice = Peer::connect(&server.api(), "alice", "alice").await;
    let room = alice.new_room().await;
    alice.invite(ROOM, room).await;
    alice.call_event("onRinging").await;
    agent.phase(CallPhase::Ringing).await;
    alice
        .request(
            "call",
            "cancel",
            json!({"ownUserId": ALICE, "targetUserId": ROOM}),
        )
        .await;
    agent.phase(CallPhase::Idle).await;
    loop {
        match events.recv().await.unwrap() {
            CallEvent::Ended { reason, .. } => {
                assert_eq!(reason, EndReason::Cancelled);
                break;
            }
            _ => continue,
        }
    }
    agent.stop().await;
}

#[tokio::test]
async fn unanswered_call_is_rejected_at_the_ring_timeout() {
    let server = Server::start().await;
    let mut agent = Agent::start_toml(&agent_toml(
        &server.api(),
        "mode = \"never\"\nring_timeout_s = 1",
    ))
    .await;
    agent.registered().await;
    let mut alice = Peer::connect(&server.api(), "alice", "alice").await;
    let room = alice.new_room().await;
    alice.invite(ROOM, room).await;
    alice.call_event("onRinging").await;
    let t = Instant::now();
    let reject = alice.push("call", "reject").await;
    assert_eq!(reject["ownUserId"], ROOM);
    assert!(
        t.elapsed() >= Duration::from_millis(800),
        "rejected too early"
    );
    agent.phase(CallPhase::Idle).await;
    agent.stop().await;
}

#[tokio::test]
async fn allow_list_rings_for_others_until_answered_locally() {
    let server = Server::start().await;
    let mut agent = Agent::start_toml(&agent_toml(
        &server.api(),
        "mode = \"allow_list\"\nallow = [2002]\ndelay_ms = 0",
    ))
    .await;
    agent.registered().await;
    let mut alice = Peer::connect(&server.api(), "alice", "alice").await;
    let room = alice.new_room().await;
    alice.invite(ROOM, room).await;
    alice.call_event("onRinging").await;
    assert!(
        alice
            .no_push_within("call", "doAgree", Duration::from_millis(500))
            .await
    );
    agent.handle.command(Command::Answer).await.unwrap();
    alice.push("call", "doAgree").await;
    agent.stop().await;
}

#[tokio::test]
async fn kick_out_by_the_host_ends_the_call() {
    let server = Server::start().await;
    let mut agent = Agent::start_toml(&agent_toml(&server.api(), &answer(""))).await;
    agent.registered().await;
    let mut alice = Peer::connect(&server.api(), "alice", "alice").await;
    let room = alice.call_agent(ROOM).await;
    agent.phase(CallPhase::InCall).await;
    let r = alice
        .request(
            "meeting",
            "kickOut",
            json!({"userId": ROOM, "roomId": room}),
        )
        .await;
    assert_eq!(r["result"], 0, "{r}");
    agent.phase(CallPhase::Idle).await;
    let exit = alice.push("meeting", "ExitRoom").await;
    assert_eq!(exit["client"]["id"], ROOM);
    agent.stop().await;
}

#[tokio::test]
async fn finish_ends_the_call() {
    let server = Server::start().await;
    let mut agent = Agent::start_toml(&agent_toml(&server.api(), &answer(""))).await;
    agent.registered().await;
    let mut alice = Peer::connect(&server.api(), "alice", "alice").await;
    let room = alice.call_agent(ROOM).await;
    agent.phase(CallPhase::InCall).await;
    let r = alice
        .request("meeting", "finish", json!({"roomId": room}))
        .await;
    assert_eq!(r["result"], 0, "{r}");
    agent.phase(CallPhase::Idle).await;
    agent.stop().await;
}

#[tokio::test]
async fn the_caller_hanging_up_ends_the_call() {
    let server = Server::start().await;
    let mut agent = Agent::start_toml(&agent_toml(&server.api(), &answer(""))).await;
    agent.registered().await;
    let mut alice = Peer::connect(&server.api(), "alice", "alice").await;
    let room = alice.call_agent(ROOM).await;
    agent.phase(CallPhase::InCall).await;
    alice
        .request("meeting", "exit", json!({"roomId": room}))
        .await;
    agent.phase(CallPhase::Idle).await;
    // The agent sent meeting/exit too: the server no longer has it in a room.
    let mut left = false;
    for _ in 0..100 {
        let online = server.handle.online();
        if online
            .iter()
            .find(|o| o.id == ROOM)
            .unwrap()
            .room_id
            .is_none()
        {
            left = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(left, "the agent is still in the room on the server");
    agent.stop().await;
}

#[tokio::test]
async fn host_mute_is_obeyed_and_a_local_unmute_is_announced() {
    let server = Server::start().await;
    let mut agent = Agent::start_toml(&agent_toml(&server.api(), &answer(""))).await;
    agent.registered().await;
    let mut alice = Peer::connect(&server.api(), "alice", "alice").await;
    let room = alice.call_agent(ROOM).await;
    agent.phase(CallPhase::InCall).await;

    let r = alice
        .request(
            "meeting",
            "muteMsg",
            json!({"userId": ROOM, "roomId": room, "isMute": true, "super": "fromSuper"}),
        )
        .await;
    assert_eq!(r["result"], 0, "{r}");
    let s = agent.wait_for("host mute", |s| s.mic_muted).await;
    assert!(s.muted_by_host);

    agent.handle.command(Command::Unmute).await.unwrap();
    let announce = alice.push("meeting", "onMute").await;
    assert_eq!(announce["userId"], ROOM);
    assert_eq!(announce["isMute"], false);
    assert!(announce.get("super").is_none());
    agent.stop().await;
}

#[tokio::test]
async fn a_non_host_cannot_send_host_mutes() {
    let server = Server::start().await;
    let mut agent = Agent::start_toml(&agent_toml(&server.api(), &answer(""))).await;
    agent.registered().await;
    let mut alice = Peer::connect(&server.api(), "alice", "alice").await;
    let room = alice.call_agent(ROOM).await;
    let mut bob = Peer::connect(&server.api(), "bob", "bob").await;
    bob.enter(room).await;
    let r = bob
        .request(
            "meeting",
            "muteMsg",
            json!({"userId": ROOM, "roomId": room, "isMute": true, "super": "fromSuper"}),
        )
        .await;
    assert_eq!(r["result"], 1);
    assert!(r["message"].as_str().unwrap().contains("host"), "{r}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!agent.now().mic_muted);
    agent.stop().await;
}

#[tokio::test]
async fn answer_muted_enters_muted_and_says_so() {
    let server = Server::start().await;
    let mut agent =
        Agent::start_toml(&agent_toml(&server.api(), &answer("answer_muted = true"))).await;
    agent.registered().await;
    let mut alice = Peer::connect(&server.api(), "alice", "alice").await;
    alice.call_agent(ROOM).await;
    let mute = alice.push("meeting", "onMute").await;
    assert_eq!(mute["userId"], ROOM);
    assert_eq!(mute["isMute"], true);
    assert!(agent.now().mic_muted);
    agent.stop().await;
}

#[tokio::test]
async fn local_mute_and_camera_off_are_announced() {
    let server = Server::start().await;
    let mut agent = Agent::start_toml(&agent_toml(&server.api(), &answer(""))).await;
    agent.registered().await;
    let mut alice = Peer::connect(&server.api(), "alice", "alice").await;
    alice.call_agent(ROOM).await;
    agent.phase(CallPhase::InCall).await;
    agent.handle.command(Command::Mute).await.unwrap();
    let m = alice.push("meeting", "onMute").await;
    assert_eq!(
        (m["userId"].clone(), m["isMute"].clone()),
        (json!(ROOM), json!(true))
    );
    agent.handle.command(Command::CameraOff).await.unwrap();
    let p = alice.push("meeting", "onPublished").await;
    assert_eq!(p["event"], "close");
    assert_eq!(p["client"]["id"], ROOM);
    agent.stop().await;
}

#[tokio::test]
async fn dialing_a_user_creates_a_room_and_connects_when_they_agree() {
    let server = Server::start().await;
    let mut agent = Agent::start_toml(&agent_toml(&server.api(), &answer(""))).await;
    agent.registered().await;
    let mut alice = Peer::connect(&server.api(), "alice", "alice").await;
    agent
        .handle
        .command(Command::Dial {
            user: roomagent::core::UserId(ALICE),
        })
        .await
        .unwrap();
    let invite = alice.push("call", "doInvite").await;
    assert_eq!(invite["ownUserId"], ROOM);
    assert_eq!(invite["ownDeviceType"], "tv");
    let room = invite["roomId"].as_i64().expect("invite names a room");
    alice
        .request(
            "call",
            "doEvent",
            json!({"ownUserId": ALICE, "targetUserId": ROOM, "event": "onRinging"}),
        )
        .await;
    agent.phase(CallPhase::Dialing).await;
    alice
        .request(
            "call",
            "doAgree",
            json!({"ownUserId": ALICE, "targetUserId": ROOM, "roomId": room, "type": 2}),
        )
        .await;
    let connected = alice.call_event("onConnected").await;
    assert_eq!(connected["roomId"], room);
    let r = alice.enter(room).await;
    let members: Vec<i64> = r["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect();
    assert_eq!(members, vec![ROOM]);
    let s = agent
        .wait_for("alice in the room", |s| s.members.len() == 1)
        .await;
    assert_eq!(s.call, CallPhase::InCall);
    agent.stop().await;
}

#[tokio::test]
async fn dialing_an_offline_user_ends_with_offline() {
    let server = Server::start().await;
    let mut agent = Agent::start_toml(&agent_toml(&server.api(), &answer(""))).await;
    agent.registered().await;
    let mut events = agent.handle.events();
    agent
        .handle
        .command(Command::Dial {
            user: roomagent::core::UserId(BOB),
        })
        .await
        .unwrap();
    loop {
        if let CallEvent::Ended { reason, .. } = events.recv().await.unwrap() {
            assert_eq!(reason, EndReason::Offline);
            break;
        }
    }
    agent.phase(CallPhase::Idle).await;
    agent.stop().await;
}

#[tokio::test]
async fn joining_a_room_by_id_offers_nothing_without_members_and_shows_in_call() {
    let server = Server::start().await;
    let mut agent = Agent::start_toml(&agent_toml(&server.api(), &answer(""))).await;
    agent.registered().await;
    let mut alice = Peer::connect(&server.api(), "alice", "alice").await;
    alice.enter(4242).await;
    agent
        .handle
        .command(Command::Join {
            room: roomagent::core::RoomId(4242),
        })
        .await
        .unwrap();
    let entered = alice.push("meeting", "EnterRoom").await;
    assert_eq!(entered["client"]["id"], ROOM);
    let s = agent.phase(CallPhase::InCall).await;
    assert_eq!(s.room_id, Some(RoomId(4242)));
    agent.stop().await;
}

/// The room server goes away mid-call and comes back on the same port with no memory. The
/// agent must log in again, re-register and re-enter its room. Prints how long that took.
#[tokio::test]
async fn room_server_restart_mid_call_re_registers_and_re_enters() {
    let server = Server::start().await;
    let api = server.api();
    let mut agent = Agent::start_toml(&agent_toml(&api, &answer(""))).await;
    agent.registered().await;
    let mut alice = Peer::connect(&api, "alice", "alice").await;
    let room = alice.call_agent(ROOM).await;
    agent.phase(CallPhase::InCall).await;

    let addr = server.stop().await;
    agent.wait_for("the disconnect", |s| !s.registered).await;
    assert_eq!(
        agent.now().call,
        CallPhase::InCall,
        "the call outlives the signaling link"
    );

    let server = Server::start_on(addr).await;
    let back = Instant::now();
    agent.registered().await;
    let reregistered = back.elapsed();
    let s = agent
        .wait_for("re-entry", |s| s.registered && s.call == CallPhase::InCall)
        .await;
    assert_eq!(s.room_id, Some(RoomId(room)));
    let online = server.handle.online();
    let me = online
        .iter()
        .find(|o| o.id == ROOM)
        .expect("agent online again");
    assert_eq!(me.room_id, Some(room), "the agent re-entered its room");
    println!("room server back -> agent re-registered in {reregistered:?}");

    // Alice comes back too and finds the agent in the room.
    let mut alice = Peer::connect(&api, "alice", "alice").await;
    let r = alice.enter(room).await;
    assert_eq!(r["members"][0]["id"], ROOM);
    agent
        .wait_for("alice back in the room", |s| s.members.len() == 1)
        .await;
    agent.stop().await;
}

#[tokio::test]
async fn shutdown_leaves_the_room_cleanly() {
    let server = Server::start().await;
    let mut agent = Agent::start_toml(&agent_toml(&server.api(), &answer(""))).await;
    agent.registered().await;
    let mut alice = Peer::connect(&server.api(), "alice", "alice").await;
    alice.call_agent(ROOM).await;
    agent.phase(CallPhase::InCall).await;
    agent.stop().await;
    let exit = alice.push("meeting", "ExitRoom").await;
    assert_eq!(exit["client"]["id"], ROOM);
}

#[tokio::test]
async fn run_serves_until_shutdown_then_the_device_goes_offline() {
    let server = Server::start().await;
    let cfg = roomagent::config::parse(
        &agent_toml(&server.api(), &answer("")),
        roomagent::config::Purpose::Agent,
    )
    .unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(roomagent::daemon::run(cfg, async {
        let _ = stop_rx.await;
    }));

    let online = |server: &Server| server.handle.online().iter().any(|o| o.id == ROOM);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !online(&server) {
        assert!(Instant::now() < deadline, "the agent never came online");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    stop_tx.send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .expect("run returns within 5 s of shutdown")
        .expect("run does not panic");
    assert!(result.is_ok(), "{result:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while online(&server) {
        assert!(
            Instant::now() < deadline,
            "the device is still online after run returned"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
