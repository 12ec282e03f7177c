//! RTM calls with media: whole agents (real GStreamer, test sources) against the test RTM
//! gate and its RTC gate side (FPNN over TCP on loopback). What the gate receives is decoded
//! here with GStreamer (OpenH264, as RTM receivers do; Opus); what the gate pushes is encoded
//! here with GStreamer and must be decoded by the agent (its media statistics count it).

mod support;

use std::time::Duration;

use rmpv::Value;
use roomagent::core::{CallPhase, ClientId, Command};
use roomagent::signaling::rtm::fpnn::map;
use support::Agent;
use support::rtc_gate::{Got, RtcGate, unix_ms};
use support::rtm_gate::Gate;

const UID: i64 = 9001;
const UID_B: i64 = 9002;
const MEMBER: i64 = 42;
const RID: i64 = 555;

fn toml(uid: i64, gate: &Gate, camera: &str, kbps: u32) -> String {
    format!(
        r#"
[device]
id = "rtm-{uid}"
name = "RTM {uid}"

[signaling]
backend = "rtm"
keepalive_s = 2
request_timeout_s = 2
reconnect_min_ms = 50
reconnect_max_ms = 400

[signaling.rtm]
pid = 11000001
uid = {uid}
gate = "{}"
token = "token-{uid}"

[answer]
mode = "always"
delay_ms = 0

[media]
profile = "test"
camera = "{camera}"
microphone = "none"
hdmi_capture = "none"
display = "fakesink"
speaker = "fakesink"
width = 320
height = 240
framerate = 15
video_bitrate_kbps = {kbps}
display_width = 320
display_height = 240
stats_interval_s = 1

[log]
level = "warn"
"#,
        gate.endpoint()
    )
}

/// The gates, and an agent in room RID with member 42 after 42's invite.
async fn in_call(camera: &str, kbps: u32) -> (Gate, RtcGate, Agent) {
    in_call_with(camera, kbps, "").await
}

/// [`in_call`] with more configuration sections.
async fn in_call_with(camera: &str, kbps: u32, sections: &str) -> (Gate, RtcGate, Agent) {
    let (gate, rtc) = gates().await;
    let config = toml(UID, &gate, camera, kbps).replace("[log]", &format!("{sections}\n[log]"));
    let agent = invited(&gate, &rtc, &config).await;
    (gate, rtc, agent)
}

/// The RTM gate, naming the RTC gate, with room RID (member 42) and the device's token.
async fn gates() -> (Gate, RtcGate) {
    let gate = Gate::start(None).await;
    let rtc = RtcGate::start().await;
    gate.set_rtc_endpoint(&rtc.endpoint());
    gate.accept_token(UID, &format!("token-{UID}"));
    gate.room(RID, &[MEMBER], &[MEMBER], MEMBER);
    (gate, rtc)
}

/// An agent started with `config` on the gates, invited into RID by 42, in the RTC room's
/// media.
async fn invited(gate: &Gate, rtc: &RtcGate, config: &str) -> Agent {
    let mut agent = Agent::start_toml(config).await;
    agent.registered().await;
    gate.wait_login(UID).await;
    gate.invite(UID, RID, MEMBER).await;
    agent.phase(CallPhase::InCall).await;
    rtc.wait_in_room(UID).await;
    agent
}

fn decode_video(quests: &[Got]) -> usize {
    let units: Vec<_> = quests.iter().map(Got::unit).collect();
    tokio::task::block_in_place(|| support::encoded::decode_h264(&units))
}

fn decode_voice(quests: &[Got]) -> usize {
    let packets: Vec<_> = quests.iter().map(|g| g.bin("data")).collect();
    tokio::task::block_in_place(|| support::encoded::decode_opus(&packets))
}

/// Quests of `method` from UID that arrived after `since`.
fn after(rtc: &RtcGate, method: &str, since: i64) -> Vec<Got> {
    rtc.sent(UID, method)
        .into_iter()
        .filter(|g| g.arrived_ms > since)
        .collect()
}

/// Plays member `uid`'s camera and microphone to `to` through the gate for `secs`.
async fn member_sends(rtc: &RtcGate, to: i64, uid: i64, secs: u32) {
    let video = tokio::task::block_in_place(|| support::encoded::h264(secs * 30, 640, 480, 30));
    let voice = tokio::task::block_in_place(|| support::encoded::opus(secs * 50));
    let until = Duration::from_secs(u64::from(secs));
    rtc.play(to, uid, RID, &video, &voice, until).await;
}

fn median(mut v: Vec<i64>) -> i64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rtm_call_carries_decodable_video_and_voice_both_ways() {
    let (gate, rtc, mut agent) = in_call("none", 300).await;
    // The room's other member's video is subscribed to.
    let sub = gate
        .wait_quest("subscribeVideo", |b| {
            b == &map([
                ("rid", RID.into()),
                ("uids", Value::Array(vec![MEMBER.into()])),
            ])
        })
        .await;
    assert_eq!(sub.uid, UID);
    // Three seconds of the device's camera and microphone.
    let video = rtc
        .wait_sent(UID, "video", 45, Duration::from_secs(15))
        .await;
    let voice = rtc
        .wait_sent(UID, "voice", 150, Duration::from_secs(15))
        .await;
    let first = &video[0];
    assert_eq!(first.int("flags"), 1, "the first frame is a key frame");
    assert!(first.bin("sps").len() > 4 && first.bin("pps").len() > 4);
    assert_eq!(
        first.bin("sps")[..5],
        [0, 0, 0, 1, 0x67],
        "SPS with its start code"
    );
    assert_eq!(first.int("rid"), RID);
    assert_eq!(first.int("captureLevel"), 1, "320x240 at 15 fps is level 1");
    for (i, g) in video.iter().enumerate() {
        assert_eq!(
            g.int("seq"),
            i as i64 + 1,
            "video seq counts from 1 without gaps"
        );
        let key = g.int("flags") == 1;
        assert_eq!(
            key,
            !g.bin("sps").is_empty(),
            "parameter sets on key frames only"
        );
        // Stamped in server time (the gate's clock) at capture: before arrival, not long.
        let age = g.arrived_ms - g.int("timestamp");
        assert!(
            (-50..1000).contains(&age),
            "frame {i} stamped {age} ms before arrival"
        );
    }
    let keys: Vec<i64> = video
        .iter()
        .filter(|g| g.int("flags") == 1)
        .map(|g| g.int("timestamp"))
        .collect();
    for w in keys.windows(2) {
        assert!(w[1] - w[0] <= 1100, "key frames {} ms apart", w[1] - w[0]);
    }
    for (i, g) in voice.iter().enumerate() {
        assert_eq!(
            g.int("seq"),
            i as i64 + 1,
            "voice seq counts from 1 without gaps"
        );
    }
    let decoded = decode_video(&video);
    assert!(
        decoded + 2 >= video.len(),
        "{decoded} of {} video quests decoded",
        video.len()
    );
    let heard = decode_voice(&voice);
    assert_eq!(heard, voice.len(), "every voice quest decodes as Opus");
    let latency: Vec<i64> = video
        .iter()
        .map(|g| g.arrived_ms - g.int("timestamp"))
        .collect();
    println!(
        "MEASURE capture -> gate: video median {} ms, {} quests, {} key frames, {decoded} decoded",
        median(latency),
        video.len(),
        keys.len()
    );

    // Member 42 sends two seconds of 640x480 video and voice: the agent decodes them.
    member_sends(&rtc, UID, MEMBER, 2).await;
    let st = agent
        .stats_until("member 42 decoded", |st| {
            st.sessions.iter().any(|s| {
                s.peer == ClientId(MEMBER)
                    && s.frames_received == 60
                    && s.frames_decoded >= 40
                    && s.audio_decoded >= 80
            })
        })
        .await;
    let m = st
        .sessions
        .iter()
        .find(|s| s.peer == ClientId(MEMBER))
        .unwrap();
    println!("MEASURE member 42 at the agent: {m:?}");
    assert_eq!(m.frames_received, 60);
    agent
        .wait_for("member 42 seen", |s| {
            s.members
                .iter()
                .any(|m| m.client_id == ClientId(MEMBER) && m.video_in)
        })
        .await;
    let rtm = st.rtm.expect("RTM statistics");
    assert!(
        rtm.connected && rtm.video_sent >= 45 && rtm.voice_sent >= 150,
        "{rtm:?}"
    );
    assert!(
        rtm.fps_out > 10.0 && rtm.bitrate_out_kbps > 30.0,
        "a dashboard sees what is sent: {rtm:?}"
    );
    assert!(m.fps_in > 0.0 && m.bitrate_in_kbps > 0.0, "{m:?}");
    agent.stop().await;
}

/// The configuration with `[signaling.rtm] rtc_transport` set.
fn over(transport: &str, gate: &Gate) -> String {
    toml(UID, gate, "none", 300).replace(
        "\n[answer]",
        &format!("rtc_transport = \"{transport}\"\n\n[answer]"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_fpnn_udp_a_call_carries_decodable_video_and_voice_both_ways() {
    let (gate, rtc) = gates().await;
    let mut agent = invited(&gate, &rtc, &over("udp", &gate)).await;
    let video = rtc
        .wait_sent(UID, "video", 45, Duration::from_secs(15))
        .await;
    let voice = rtc
        .wait_sent(UID, "voice", 150, Duration::from_secs(15))
        .await;
    assert_eq!(
        (rtc.connections(), rtc.udp_sessions()),
        (1, 1),
        "one UDP session, no TCP"
    );
    assert_eq!(video[0].int("flags"), 1, "the first frame is a key frame");
    let decoded = decode_video(&video);
    assert!(decoded + 2 >= video.len(), "{decoded} of {}", video.len());
    assert_eq!(decode_voice(&voice), voice.len());
    // Member 42's 640x480 key frames come cut into segments: reassembled and decoded.
    member_sends(&rtc, UID, MEMBER, 2).await;
    let st = agent
        .stats_until("member 42 decoded", |st| {
            st.sessions.iter().any(|s| {
                s.peer == ClientId(MEMBER)
                    && s.frames_received >= 55
                    && s.frames_decoded >= 40
                    && s.audio_decoded >= 80
            })
        })
        .await;
    println!("MEASURE over UDP: {:?}", st.rtm);
    // Leaving closes the session with the protocol's CLOSE: the gate lets the device go.
    agent.handle.command(Command::Hangup).await.unwrap();
    agent.phase(CallPhase::Idle).await;
    for _ in 0..100 {
        if !rtc.in_room(UID) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!rtc.in_room(UID), "the UDP session ended with the call");
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rtc_gate_with_a_key_gets_encrypted_media_over_tcp_and_udp() {
    use roomagent::signaling::rtm::fpnn::{Curve, public_key_of};
    use support::rtm_gate::GateKey;
    let dir = std::env::temp_dir().join(format!("roomagent-rtc-key-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (transport, curve, name, bits, mode) in [
        ("tcp", Curve::Secp256k1, "secp256k1", 128, "stream"),
        ("tcp", Curve::Secp256r1, "secp256r1", 256, "package"),
        ("udp", Curve::Secp256k1, "secp256k1", 128, "package"),
        ("udp", Curve::Secp256r1, "secp256r1", 256, "package"),
    ] {
        let secret = [0x42u8; 32];
        let key_file = dir.join(format!("{transport}-{name}.key"));
        std::fs::write(&key_file, public_key_of(curve, &secret).unwrap()).unwrap();
        let gate = Gate::start(None).await;
        // The gate takes nothing unencrypted: media flows only if the device encrypts.
        let key = GateKey { curve, secret };
        let rtc = RtcGate::start_keyed("127.0.0.1", true, Some(key)).await;
        gate.set_rtc_endpoint(&rtc.endpoint());
        gate.accept_token(UID, &format!("token-{UID}"));
        gate.room(RID, &[MEMBER], &[MEMBER], MEMBER);
        let config = over(transport, &gate).replace(
            "\n[answer]",
            &format!(
                "\n[signaling.rtm.rtc_encryption]\npublic_key_file = {:?}\ncurve = \"{name}\"\nbits = {bits}\nmode = \"{mode}\"\n\n[answer]",
                key_file.display().to_string()
            ),
        );
        let agent = invited(&gate, &rtc, &config).await;
        let video = rtc
            .wait_sent(UID, "video", 15, Duration::from_secs(10))
            .await;
        assert!(
            decode_video(&video) + 2 >= video.len(),
            "{transport} {name}"
        );
        member_sends(&rtc, UID, MEMBER, 1).await;
        agent
            .stats_until("member 42 decoded", |st| {
                st.sessions
                    .iter()
                    .any(|s| s.peer == ClientId(MEMBER) && s.frames_decoded >= 15)
            })
            .await;
        assert_eq!(rtc.udp_sessions(), u64::from(transport == "udp"));
        agent.stop().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_uses_udp_where_the_gate_answers_it_and_tcp_where_it_does_not() {
    for udp in [true, false] {
        let gate = Gate::start(None).await;
        let rtc = RtcGate::start_with("127.0.0.1", udp).await;
        gate.set_rtc_endpoint(&rtc.endpoint());
        gate.accept_token(UID, &format!("token-{UID}"));
        gate.room(RID, &[MEMBER], &[MEMBER], MEMBER);
        let started = std::time::Instant::now();
        let agent = invited(&gate, &rtc, &over("auto", &gate)).await;
        let video = rtc
            .wait_sent(UID, "video", 15, Duration::from_secs(10))
            .await;
        println!(
            "MEASURE auto, gate with UDP {udp}: first video at the gate {} ms after the start",
            video[0].arrived_ms - (unix_ms() - started.elapsed().as_millis() as i64)
        );
        assert!(decode_video(&video) + 2 >= video.len());
        let want = if udp { (1, 1) } else { (1, 0) };
        assert_eq!((rtc.connections(), rtc.udp_sessions()), want, "UDP {udp}");
        agent.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mute_admin_close_mic_and_camera_off_stop_the_quests() {
    let (gate, rtc, mut agent) = in_call("none", 300).await;
    rtc.wait_sent(UID, "voice", 20, Duration::from_secs(10))
        .await;
    let quiet = |method: &'static str| {
        let rtc = &rtc;
        async move {
            // Frames already on their way may land; after that, nothing.
            tokio::time::sleep(Duration::from_millis(400)).await;
            let since = unix_ms();
            tokio::time::sleep(Duration::from_millis(1200)).await;
            after(rtc, method, since).len()
        }
    };
    agent.handle.command(Command::Mute).await.unwrap();
    assert_eq!(quiet("voice").await, 0, "muted: no voice quests");
    let since = unix_ms();
    agent.handle.command(Command::Unmute).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        after(&rtc, "voice", since).len() >= 10,
        "unmuted: voice again"
    );

    // The room's administrator closes the microphone (admin command 6).
    gate.push(
        UID,
        "pushAdminCommand",
        map([
            ("command", 6.into()),
            ("uids", Value::Array(vec![UID.into()])),
        ]),
    )
    .await;
    agent.wait_for("mic closed", |s| s.mic_muted).await;
    assert_eq!(
        quiet("voice").await,
        0,
        "mic closed by the admin: no voice quests"
    );

    agent.handle.command(Command::CameraOff).await.unwrap();
    assert_eq!(quiet("video").await, 0, "camera off: no video quests");
    let since = unix_ms();
    agent.handle.command(Command::CameraOn).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let back = after(&rtc, "video", since);
    assert!(back.len() >= 10, "camera on: video again ({})", back.len());
    assert_eq!(back[0].int("flags"), 1, "and it starts with a key frame");
    let decoded = decode_video(&back);
    assert!(
        decoded + 2 >= back.len(),
        "{decoded} of {} decoded",
        back.len()
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_that_admits_the_device_muted_gets_not_one_voice_packet() {
    let (gate, rtc) = gates().await;
    rtc.microphone(false);
    let mut agent = invited(&gate, &rtc, &toml(UID, &gate, "none", 300)).await;
    rtc.wait_sent(UID, "video", 15, Duration::from_secs(10))
        .await;
    agent.wait_for("mic closed", |s| s.mic_muted).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        rtc.sent(UID, "voice").len(),
        0,
        "the room said microphone: false; no voice before or after"
    );
    // A person may open it again.
    agent.handle.command(Command::Unmute).await.unwrap();
    let voice = rtc
        .wait_sent(UID, "voice", 10, Duration::from_secs(5))
        .await;
    assert!(decode_voice(&voice) >= 8);
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_media_connection_ends_with_a_kickout_a_closed_room_a_kick_or_a_refused_login() {
    let mut took = Vec::new();
    for how in ["kickout", "room closed", "kicked", "login refused"] {
        let (gate, rtc) = gates().await;
        // A kicked-out device waits reconnect_max before logging in again: the media
        // connection must not wait for that login.
        let config = toml(UID, &gate, "none", 300)
            .replace("reconnect_max_ms = 400", "reconnect_max_ms = 20000");
        let mut agent = invited(&gate, &rtc, &config).await;
        rtc.wait_sent(UID, "video", 5, Duration::from_secs(10))
            .await;
        let connections = rtc.connections();
        let started = std::time::Instant::now();
        match how {
            "kickout" => gate.kick_out(UID),
            "room closed" => {
                gate.push(UID, "pushRTCRoomClosed", map([("rid", RID.into())]))
                    .await;
            }
            "kicked" => {
                let body = map([("rid", RID.into()), ("fromUid", MEMBER.into())]);
                gate.push(UID, "pushKickOutRTCRoom", body).await;
            }
            _ => {
                gate.revoke_token(UID);
                gate.disconnect(UID);
            }
        }
        // Before the fix a kickout kept it until the next login and a refused login for good.
        while rtc.in_room(UID) {
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "{how}: the RTC gate connection is still open after 2 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        took.push((how, started.elapsed().as_millis()));
        agent.phase(CallPhase::Idle).await;
        let since = unix_ms();
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(rtc.connections(), connections, "{how}: not connected again");
        assert!(after(&rtc, "video", since).is_empty(), "{how}: no media");
        agent.stop().await;
    }
    println!("MEASURE event -> RTC gate connection closed (ms): {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_resumes_when_the_rtc_gate_drops_the_connection() {
    let (_gate, rtc, agent) = in_call("none", 300).await;
    rtc.wait_sent(UID, "video", 10, Duration::from_secs(10))
        .await;
    rtc.drop_all();
    let since = unix_ms();
    rtc.wait_in_room(UID).await;
    let mut back = Vec::new();
    for _ in 0..100 {
        back = after(&rtc, "video", since);
        if back.len() >= 15 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        back.len() >= 15,
        "video after the reconnect: {}",
        back.len()
    );
    assert_eq!(
        back[0].int("flags"),
        1,
        "a reconnect starts from a key frame"
    );
    assert!(decode_video(&back) + 2 >= back.len());
    assert!(rtc.connections() >= 2);
    let st = agent
        .stats_until("two connections", |st| {
            st.rtm
                .as_ref()
                .is_some_and(|r| r.connections >= 2 && r.connected)
        })
        .await;
    println!("MEASURE after reconnect: {:?}", st.rtm);
    agent.stop().await;
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_rtc_gate_does_not_grow_memory_and_media_recovers() {
    // A busy picture at a high bitrate, so a stalled socket backs up within seconds.
    let (_gate, rtc, agent) =
        in_call("pipeline:videotestsrc is-live=true pattern=snow", 3000).await;
    rtc.wait_sent(UID, "video", 10, Duration::from_secs(10))
        .await;
    let before = rss_kib();
    rtc.stall(true);
    // Either the queue fills and drops video, or the gate's silence (no `adjustTime`
    // answer) ends the connection: the device stops sending into it either way.
    let st = agent
        .stats_until("back-pressure", |st| {
            st.rtm
                .as_ref()
                .is_some_and(|r| r.video_dropped > 0 || !r.connected)
        })
        .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let during = rss_kib();
    let rtm = agent.media_now().rtm.unwrap();
    println!(
        "MEASURE stalled: rss {before} -> {during} KiB, {rtm:?} (first sign: {:?})",
        st.rtm
    );
    assert!(
        rtm.queued_bytes_peak <= rtm.queue_limit_bytes,
        "the send queue stays within its bound: {rtm:?}"
    );
    // (The process's RSS is printed, not asserted: other tests share this process. What the
    // stalled connection can hold is the queue above plus the small kernel send buffer.)
    rtc.stall(false);
    let since = unix_ms();
    let mut back = Vec::new();
    for _ in 0..150 {
        back = after(&rtc, "video", since);
        if back.iter().any(|g| g.int("flags") == 1) && back.len() >= 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let key = back.iter().position(|g| g.int("flags") == 1);
    assert!(
        key.is_some(),
        "video resumes with a key frame: {} quests",
        back.len()
    );
    assert!(decode_video(&back[key.unwrap()..]) > 0);
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agents_in_one_rtm_room_see_and_hear_each_other() {
    let gate = Gate::start(None).await;
    let rtc = RtcGate::start().await;
    rtc.forward(true);
    gate.set_rtc_endpoint(&rtc.endpoint());
    gate.room(RID, &[], &[], 1);
    let mut agents = Vec::new();
    for uid in [UID, UID_B] {
        gate.accept_token(uid, &format!("token-{uid}"));
        let mut a = Agent::start_toml(&toml(uid, &gate, "none", 300)).await;
        a.registered().await;
        gate.wait_login(uid).await;
        gate.invite(uid, RID, 1).await;
        a.phase(CallPhase::InCall).await;
        rtc.wait_in_room(uid).await;
        agents.push(a);
    }
    for (me, other) in [(0, UID_B), (1, UID)] {
        let st = agents[me]
            .stats_until("the other agent decoded", |st| {
                st.sessions.iter().any(|s| {
                    s.peer == ClientId(other) && s.frames_decoded >= 15 && s.audio_decoded >= 25
                })
            })
            .await;
        println!("MEASURE agent {me} receives: {:?}", st.sessions);
        agents[me]
            .wait_for("the other agent seen", |s| {
                s.members
                    .iter()
                    .any(|m| m.client_id == ClientId(other) && m.video_in)
            })
            .await;
    }
    for a in agents {
        a.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dashboard_reads_an_rtm_calls_media_counters_over_mqtt() {
    let broker = support::mqtt::Broker::start();
    let mut dash = support::mqtt::Dashboard::connect(broker.port, &["roomagent/#"]).await;
    let mqtt = format!(
        "[mqtt]\nenabled = true\nhost = \"127.0.0.1\"\nport = {}\ndiscovery = false\ntelemetry_interval_s = 1\n",
        broker.port
    );
    let (_gate, rtc, agent) = in_call_with("none", 300, &mqtt).await;
    member_sends(&rtc, UID, MEMBER, 1).await;
    let t = dash
        .wait_json(&format!("roomagent/rtm-{UID}/telemetry"), |v| {
            let m = &v["media"];
            m["rtm"]["video_sent"].as_u64().unwrap_or(0) > 0
                && m["rtm"]["connected"] == true
                && m["sessions"].as_array().is_some_and(|s| {
                    s.iter()
                        .any(|s| s["peer"] == MEMBER && s["frames_decoded"].as_u64() > Some(0))
                })
        })
        .await;
    let rtm = &t["media"]["rtm"];
    for key in [
        "voice_sent",
        "video_dropped",
        "voice_dropped",
        "queued_bytes",
        "queue_limit_bytes",
        "bitrate_out_kbps",
        "fps_out",
    ] {
        assert!(rtm.get(key).is_some(), "telemetry has media.rtm.{key}: {t}");
    }
    assert!(!t.to_string().contains("token-"), "no token in telemetry");
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_sending_garbage_does_not_break_the_call_or_its_later_frames() {
    let (_gate, rtc, mut agent) = in_call("none", 300).await;
    let mut rng = support::rng::Rng(0x0005_eed0_fa11);
    let good = tokio::task::block_in_place(|| support::encoded::h264(30, 640, 480, 30));
    let mut junk = |n: usize| (0..n).map(|_| rng.next() as u8).collect::<Vec<u8>>();
    // Pictures that are not H.264, parameter sets that lie, a real key frame cut short,
    // voice that is not Opus, and pushes with fields missing or of the wrong type.
    for i in 0..300i64 {
        let (sps, pps, data) = match i % 4 {
            0 => (junk(12), junk(6), junk(2000)),
            1 => (
                [&[0, 0, 0, 1, 0x67][..], &junk(20)].concat(),
                [&[0, 0, 0, 1, 0x68][..], &junk(4)].concat(),
                [&[0, 0, 0, 1, 0x65][..], &junk(3000)].concat(),
            ),
            2 => (
                good[0].sps.clone(),
                good[0].pps.clone(),
                good[0].data[..good[0].data.len() / 3].to_vec(),
            ),
            _ => (
                Vec::new(),
                Vec::new(),
                [&[0, 0, 0, 1, 0x41][..], &junk(800)].concat(),
            ),
        };
        rtc.push(
            UID,
            "pushVideo",
            map([
                ("uid", Value::from(MEMBER)),
                ("rid", Value::from(RID)),
                ("seq", Value::from(i * 7 - 50)),
                ("flags", Value::from(i64::from(i % 4 != 3))),
                ("timestamp", Value::from(unix_ms())),
                ("data", Value::Binary(data)),
                ("sps", Value::Binary(sps)),
                ("pps", Value::Binary(pps)),
            ]),
        );
        rtc.push(
            UID,
            "pushVoice",
            map([
                ("uid", Value::from(MEMBER)),
                ("rid", Value::from(RID)),
                ("seq", Value::from(i)),
                ("timestamp", Value::from(unix_ms())),
                ("data", Value::Binary(junk(1 + i as usize % 300))),
            ]),
        );
        let broken = match i % 5 {
            0 => map([("uid", Value::from("42")), ("seq", 1.into())]),
            1 => map([
                ("uid", Value::from(MEMBER)),
                ("seq", 1.into()),
                ("data", 5.into()),
            ]),
            2 => Value::from("not a map"),
            3 => map([
                ("uid", Value::from(i64::MAX)),
                ("seq", Value::from(u64::MAX)),
                ("data", Value::Binary(junk(10))),
            ]),
            _ => map([
                ("uid", Value::from(-1)),
                ("rid", Value::from(RID)),
                ("seq", Value::from(i64::MIN)),
                ("data", Value::Binary(vec![])),
            ]),
        };
        rtc.push(
            UID,
            if i % 2 == 0 { "pushVideo" } else { "pushVoice" },
            broken,
        );
        if i % 50 == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // Numbers at the ends of their range (no arithmetic on them may overflow).
    for (seq, ts) in [(i64::MAX, i64::MIN), (i64::MIN, i64::MAX), (0, i64::MIN)] {
        for method in ["pushVoice", "pushVideo"] {
            rtc.push(
                UID,
                method,
                map([
                    ("uid", Value::from(MEMBER)),
                    ("rid", Value::from(RID)),
                    ("seq", Value::from(seq)),
                    ("flags", Value::from(1)),
                    ("timestamp", Value::from(ts)),
                    ("data", Value::Binary(junk(40))),
                ]),
            );
        }
    }
    // Members the room does not have, by the dozen: bounded, not a pipeline each.
    for uid in 1000..1100i64 {
        rtc.push(
            UID,
            "pushVideo",
            map([
                ("uid", Value::from(uid)),
                ("rid", Value::from(RID)),
                ("seq", Value::from(1)),
                ("flags", Value::from(1)),
                ("timestamp", Value::from(unix_ms())),
                ("data", Value::Binary(good[0].data.clone())),
                ("sps", Value::Binary(good[0].sps.clone())),
                ("pps", Value::Binary(good[0].pps.clone())),
            ]),
        );
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = agent
        .media_now()
        .sessions
        .iter()
        .find(|s| s.peer == ClientId(MEMBER))
        .map_or(0, |s| s.frames_decoded);
    // The member's camera then works: the agent decodes it.
    member_sends(&rtc, UID, MEMBER, 2).await;
    let st = agent
        .stats_until("member 42 decoded after the garbage", |st| {
            st.sessions
                .iter()
                .any(|s| s.peer == ClientId(MEMBER) && s.frames_decoded >= before + 30)
        })
        .await;
    assert!(
        st.sessions.len() <= 17,
        "members are bounded: {} entries",
        st.sessions.len()
    );
    assert_eq!(agent.now().call, CallPhase::InCall);
    let rtm = st.rtm.unwrap();
    assert!(
        rtm.connected && rtm.connections == 1,
        "the connection stayed up: {rtm:?}"
    );
    assert!(
        rtc.sent(UID, "video").len() > 10,
        "and the device kept sending"
    );
    agent
        .wait_for("still in the call", |s| s.call == CallPhase::InCall)
        .await;
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_media_connection_outlives_an_rtm_gate_restart() {
    let (gate, rtc, mut agent) = in_call("none", 300).await;
    rtc.wait_sent(UID, "video", 10, Duration::from_secs(10))
        .await;
    let gate = gate.restart(None).await;
    gate.set_rtc_endpoint(&rtc.endpoint());
    gate.room(RID, &[MEMBER], &[MEMBER], MEMBER);
    agent.wait_for("reconnected", |s| s.registered).await;
    gate.wait_quest("getRTCRoomMembers", |_| true).await;
    let since = unix_ms();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        after(&rtc, "video", since).len() >= 15,
        "video kept flowing through the RTM gate's restart"
    );
    assert_eq!(rtc.connections(), 1, "on the same RTC gate connection");
    assert_eq!(agent.now().call, CallPhase::InCall);
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consecutive_rtm_calls_each_carry_media_and_end_cleanly() {
    let (gate, rtc, mut agent) = in_call("none", 300).await;
    let video = tokio::task::block_in_place(|| support::encoded::h264(30, 640, 480, 30));
    let voice = tokio::task::block_in_place(|| support::encoded::opus(50));
    for call in 0..3 {
        if call > 0 {
            gate.room(RID, &[MEMBER], &[MEMBER], MEMBER);
            gate.invite(UID, RID, MEMBER).await;
            agent.phase(CallPhase::InCall).await;
            rtc.wait_in_room(UID).await;
        }
        rtc.play(UID, MEMBER, RID, &video, &voice, Duration::from_secs(1))
            .await;
        let st = agent
            .stats_until(&format!("call {call}: member decoded"), |st| {
                st.sessions
                    .iter()
                    .any(|s| s.peer == ClientId(MEMBER) && s.frames_decoded >= 15)
                    && st.rtm.as_ref().is_some_and(|r| r.video_sent >= 10)
            })
            .await;
        let rtm = st.rtm.unwrap();
        assert_eq!(rtm.connections, 1, "call {call} counts from zero: {rtm:?}");
        // The room closes: the call ends, the media connection closes, the camera is released.
        gate.push(UID, "pushRTCRoomClosed", map([("rid", RID.into())]))
            .await;
        agent.phase(CallPhase::Idle).await;
        agent
            .stats_until(&format!("call {call}: media stopped"), |st| {
                st.rtm.is_none() && st.sessions.is_empty()
            })
            .await;
        for _ in 0..100 {
            if !rtc.in_room(UID) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            !rtc.in_room(UID),
            "call {call}: the RTC gate connection closed"
        );
    }
    agent.stop().await;
}
