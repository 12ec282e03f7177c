//! A room member that sends hostile media signaling: thousands of offers, answers and
//! candidates mutated from real ones, into a real media engine that is in a call with an honest
//! participant at the same time. The engine must refuse what it cannot use (a `SessionFailed`
//! event naming why), never crash, and the honest participant's frames must keep arriving.
//! Runs in its own network namespace.

mod support;

use std::time::{Duration, Instant};

use roomagent::core::{CallType, ClientId, MediaCommand, MediaEvent, MediaSignal, SessionRole};
use roomagent::media::{
    self, DeviceChoice, EchoCancellation, MediaHandle, MediaOptions, SinkChoice,
};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

use support::netns;
use support::rng::Rng;

const HONEST: ClientId = ClientId(1);
const AGENT: ClientId = ClientId(2);

fn options() -> MediaOptions {
    MediaOptions {
        profile: Some("test".into()),
        camera: DeviceChoice::None,
        microphone: DeviceChoice::None,
        hdmi: DeviceChoice::None,
        speaker: SinkChoice::Element("fakesink".into()),
        display: SinkChoice::Element("fakesink".into()),
        width: 320,
        height: 240,
        framerate: 15,
        video_kbps: 300,
        display_width: 320,
        display_height: 240,
        echo_cancellation: EchoCancellation::Off,
        stats_interval: Duration::from_millis(500),
        ..MediaOptions::default()
    }
}

const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "1",
    "127",
    "128",
    "255",
    "256",
    "65535",
    "65536",
    "2147483647",
    "2147483648",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "99999999999999999999999999",
    "-2147483649",
    "1e9",
    "0x10",
    "",
];

const ODD_LINES: &[&str] = &[
    "a=rtpmap:96 H264/0",
    "a=rtpmap:97 X-GST/90000",
    "a=rtpmap:98 H265/90000",
    "a=rtpmap:99 VP9/90000",
    "a=rtpmap:100 MP4V-ES/90000",
    "a=rtpmap:101 L16/0/0",
    "a=rtpmap:111 opus/4294967295/255",
    "a=rtpmap:300 opus/48000/2",
    "a=fmtp:96 profile-level-id=ffffff;packetization-mode=9;sprop-parameter-sets=AAAA,,,;max-fs=4294967295",
    "a=fmtp:111 maxplaybackrate=0;stereo=7;ptime=0",
    "a=ssrc:4294967295 cname:x",
    "a=ssrc:0 msid:a b",
    "a=ssrc-group:FID 1",
    "a=ssrc-group:FID 1 2 3 4 5 6 7 8 9",
    "a=extmap:0 urn:ietf:params:rtp-hdrext:sdes:mid",
    "a=extmap:4096 urn:ietf:params:rtp-hdrext:sdes:mid",
    "a=extmap:15/sendrecv http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
    "a=rtcp-fb:* nack",
    "a=rtcp-fb:96 goog-remb",
    "a=mid:",
    "a=mid:0",
    "a=group:BUNDLE",
    "a=group:BUNDLE nothere",
    "a=group:BUNDLE 0 0 0",
    "a=setup:holdconn",
    "a=setup:passive",
    "a=fingerprint:sha-256 00",
    "a=fingerprint:md5 00:11",
    "a=ice-ufrag:",
    "a=ice-pwd:x",
    "a=ice-options:trickle renomination",
    "a=inactive",
    "a=sendonly",
    "a=recvonly",
    "a=rtcp-mux-only",
    "a=sctp-port:0",
    "a=sctp-port:4294967295",
    "a=max-message-size:-1",
    "a=rid:1 send max-width=100000",
    "a=simulcast:send 1;2;3",
    "a=candidate:1 1 udp 2122260223 10.250.0.1 0 typ host",
    "a=end-of-candidates",
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
    "m=video 9 UDP/TLS/RTP/SAVPF",
    "m=video 65536 UDP/TLS/RTP/SAVPF 96 97 98 99 100 101",
    "m=audio 9 RTP/AVP 0",
    "m=text 9 UDP/TLS/RTP/SAVPF 98",
    "m=video 0 UDP/TLS/RTP/SAVPF 96",
    "c=IN IP6 ::1",
    "c=IN IP4 999.1.1.1",
    "b=AS:4294967295",
    "b=TIAS:0",
    "t=0 0",
    "o=- 18446744073709551616 0 IN IP4 0.0.0.0",
    "s=",
    "v=1",
];

/// One line of `sdp` changed, removed, repeated, moved or added; sometimes several.
fn mutate_sdp(rng: &mut Rng, sdp: &str) -> String {
    let mut lines: Vec<String> = sdp.lines().map(str::to_string).collect();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        if lines.is_empty() {
            lines.push(rng.pick(ODD_LINES).to_string());
            continue;
        }
        let i = rng.below(lines.len());
        match rng.below(8) {
            0 => {
                lines.remove(i);
            }
            1 => {
                let l = lines[i].clone();
                for _ in 0..1 + rng.below(3) {
                    lines.insert(i, l.clone());
                }
            }
            2 => {
                let j = rng.below(lines.len());
                lines.swap(i, j);
            }
            3 | 4 => lines.insert(i, rng.pick(ODD_LINES).to_string()),
            5 => lines[i] = replace_number(rng, &lines[i]),
            6 => {
                let cut = rng.below(lines[i].len() + 1);
                let mut l = lines[i].clone();
                while !l.is_char_boundary(cut.min(l.len())) {
                    l.pop();
                }
                l.truncate(cut.min(l.len()));
                lines[i] = l;
            }
            _ => {
                let repeat = 1 + rng.below(4000);
                lines[i].push_str(&"9".repeat(repeat));
            }
        }
    }
    let mut out = lines.join("\r\n");
    out.push_str("\r\n");
    out
}

/// Replaces one run of digits in `line` with an extreme value.
fn replace_number(rng: &mut Rng, line: &str) -> String {
    let runs: Vec<(usize, usize)> = {
        let b = line.as_bytes();
        let mut v = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i].is_ascii_digit() {
                let s = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                v.push((s, i));
            } else {
                i += 1;
            }
        }
        v
    };
    if runs.is_empty() {
        return format!("{line}{}", rng.pick(NUMBERS));
    }
    let (s, e) = *rng.pick(&runs);
    format!("{}{}{}", &line[..s], rng.pick(NUMBERS), &line[e..])
}

fn mutate_candidate(rng: &mut Rng, base: &str) -> (String, u32) {
    let mut fields: Vec<String> = base.split(' ').map(str::to_string).collect();
    for _ in 0..1 + rng.below(3) {
        let i = rng.below(fields.len());
        match rng.below(6) {
            0 => fields[i] = rng.pick(NUMBERS).to_string(),
            1 => {
                fields.remove(i);
                if fields.is_empty() {
                    fields.push(String::new());
                }
            }
            2 => fields[i] = "x".repeat(rng.below(5000)),
            3 => {
                fields[i] = rng
                    .pick(&[
                        "foo.local",
                        "::1",
                        "256.0.0.1",
                        "tcp",
                        "typ",
                        "relay",
                        "raddr",
                        "\0",
                    ])
                    .to_string()
            }
            4 => fields.insert(
                i,
                rng.pick(&["typ", "srflx", "generation", "ufrag", "tcptype", "so"])
                    .to_string(),
            ),
            _ => fields[i] = replace_number(rng, &fields[i]),
        }
    }
    let mline = *rng.pick(&[0u32, 1, 2, 7, 4_294_967_295]);
    (fields.join(" "), mline)
}

struct Engine {
    handle: MediaHandle,
    events: UnboundedReceiver<MediaEvent>,
}

fn start_engine(shutdown: &CancellationToken) -> Engine {
    let (handle, events, task) =
        media::start(options(), None, shutdown.clone()).expect("media engine");
    tokio::spawn(task);
    Engine { handle, events }
}

/// Carries B's signals to A and A's signals for B to B; returns A's first event about anyone
/// else (the hostile member), or `None` after `limit`.
async fn pump_until(
    a: &mut Engine,
    b: &mut Engine,
    limit: Duration,
    mut want: impl FnMut(&MediaEvent) -> bool,
) -> Option<MediaEvent> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return None,
            ev = a.events.recv() => {
                let ev = ev.expect("agent engine events");
                match ev {
                    MediaEvent::LocalSignal { peer, signal } if peer == HONEST => {
                        b.handle.send(MediaCommand::RemoteSignal { peer: AGENT, signal });
                    }
                    ev if want(&ev) => return Some(ev),
                    _ => {}
                }
            }
            ev = b.events.recv() => {
                if let Some(MediaEvent::LocalSignal { signal, .. }) = ev {
                    a.handle.send(MediaCommand::RemoteSignal { peer: HONEST, signal });
                }
            }
        }
    }
}

fn honest_frames(a: &Engine) -> u64 {
    a.handle
        .stats()
        .borrow()
        .sessions
        .iter()
        .find(|s| s.peer == HONEST)
        .map(|s| s.frames_decoded)
        .unwrap_or(0)
}

#[test]
fn hostile_media_signaling_is_refused_and_the_honest_call_goes_on() {
    netns::run_isolated(
        "hostile_media_signaling_is_refused_and_the_honest_call_goes_on",
        async {
            let seed: u64 = std::env::var("HOSTILE_SEED")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0x5eed_0001);
            let wanted: u64 = std::env::var("HOSTILE_MESSAGES")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(10_000);
            let shutdown = CancellationToken::new();
            let mut a = start_engine(&shutdown);
            let mut b = start_engine(&shutdown);
            // The honest call: the agent offers, B answers.
            b.handle.send(MediaCommand::StartSession {
                peer: AGENT,
                role: SessionRole::Answerer,
                call_type: CallType::Video,
            });
            a.handle.send(MediaCommand::StartSession {
                peer: HONEST,
                role: SessionRole::Offerer,
                call_type: CallType::Video,
            });
            let started = Instant::now();
            while honest_frames(&a) < 5 {
                pump_until(&mut a, &mut b, Duration::from_millis(200), |_| false).await;
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "the honest call never decoded frames"
                );
            }
            // Templates: an offer and an answer as a real peer makes them.
            let hostile = ClientId(100);
            a.handle.send(MediaCommand::StartSession {
                peer: hostile,
                role: SessionRole::Offerer,
                call_type: CallType::Video,
            });
            let offer = match pump_until(&mut a, &mut b, Duration::from_secs(10), |e| {
                matches!(e, MediaEvent::LocalSignal { peer, signal: MediaSignal::Offer { .. } } if *peer == hostile)
            })
            .await
            {
                Some(MediaEvent::LocalSignal { signal: MediaSignal::Offer { sdp }, .. }) => sdp,
                other => panic!("no template offer: {other:?}"),
            };
            println!("template offer:\n{offer}");
            let mut rng = Rng(seed);
            let (mut refused, mut answered, mut silent) = (0u64, 0u64, 0u64);
            let mut frames_before = honest_frames(&a);
            let mut last_check = Instant::now();
            let mut messages = 0u64;
            let mut case = 0usize;
            while messages < wanted {
                case += 1;
                let peer = ClientId(1000 + case as i64);
                let kind = rng.below(10);
                eprintln!("case {case} seed {seed} kind {kind}");
                messages += match kind {
                    0..=5 => 1,
                    _ => 8,
                };
                let outcome = if kind < 4 {
                    // A hostile offer to an answering session.
                    a.handle.send(MediaCommand::StartSession {
                        peer,
                        role: SessionRole::Answerer,
                        call_type: CallType::Video,
                    });
                    let sdp = mutate_sdp(&mut rng, &offer);
                    a.handle.send(MediaCommand::RemoteSignal {
                        peer,
                        signal: MediaSignal::Offer { sdp },
                    });
                    pump_until(&mut a, &mut b, Duration::from_secs(3), |e| match e {
                        MediaEvent::LocalSignal {
                            peer: p,
                            signal: MediaSignal::Answer { .. },
                        } => *p == peer,
                        MediaEvent::SessionFailed { peer: p, .. } => *p == peer,
                        _ => false,
                    })
                    .await
                } else if kind < 6 {
                    // A hostile answer to our offer.
                    a.handle.send(MediaCommand::StartSession {
                        peer,
                        role: SessionRole::Offerer,
                        call_type: CallType::Video,
                    });
                    let ours = pump_until(&mut a, &mut b, Duration::from_secs(10), |e| {
                        matches!(e, MediaEvent::LocalSignal { peer: p, signal: MediaSignal::Offer { .. } } if *p == peer)
                    })
                    .await;
                    let Some(MediaEvent::LocalSignal {
                        signal: MediaSignal::Offer { sdp },
                        ..
                    }) = ours
                    else {
                        panic!("case {case}: no offer");
                    };
                    let answer = sdp.replace("a=setup:actpass", "a=setup:active");
                    a.handle.send(MediaCommand::RemoteSignal {
                        peer,
                        signal: MediaSignal::Answer {
                            sdp: mutate_sdp(&mut rng, &answer),
                        },
                    });
                    pump_until(
                        &mut a,
                        &mut b,
                        Duration::from_millis(300),
                        |e| matches!(e, MediaEvent::SessionFailed { peer: p, .. } if *p == peer),
                    )
                    .await
                } else {
                    // Hostile candidates for an answering session with a sane offer.
                    a.handle.send(MediaCommand::StartSession {
                        peer,
                        role: SessionRole::Answerer,
                        call_type: CallType::Video,
                    });
                    a.handle.send(MediaCommand::RemoteSignal {
                        peer,
                        signal: MediaSignal::Offer { sdp: offer.clone() },
                    });
                    let base = "candidate:1 1 UDP 2122260223 10.250.0.1 40000 typ host generation 0 ufrag abcd";
                    for _ in 0..8 {
                        let (candidate, mline) = mutate_candidate(&mut rng, base);
                        a.handle.send(MediaCommand::RemoteSignal {
                            peer,
                            signal: MediaSignal::Candidate {
                                candidate,
                                sdp_mline_index: mline,
                                sdp_mid: None,
                            },
                        });
                    }
                    pump_until(
                        &mut a,
                        &mut b,
                        Duration::from_millis(300),
                        |e| matches!(e, MediaEvent::SessionFailed { peer: p, .. } if *p == peer),
                    )
                    .await
                };
                match outcome {
                    Some(MediaEvent::SessionFailed { .. }) => refused += 1,
                    Some(_) => answered += 1,
                    None => silent += 1,
                }
                a.handle.send(MediaCommand::StopSession { peer });
                if last_check.elapsed() > Duration::from_secs(5) {
                    // Stats arrive every 500 ms; a loaded machine may delay a few.
                    let mut waited = 0;
                    while honest_frames(&a) <= frames_before && waited < 20 {
                        pump_until(&mut a, &mut b, Duration::from_millis(500), |_| false).await;
                        waited += 1;
                    }
                    let now = honest_frames(&a);
                    assert!(
                        now > frames_before,
                        "case {case}: the honest participant's frames stopped at {now}"
                    );
                    frames_before = now;
                    last_check = Instant::now();
                }
            }
            println!(
                "MEASURE hostile media: {messages} messages in {case} sessions (seed {seed}): \
                 {refused} sessions refused, {answered} answered, {silent} without a reaction; \
                 the honest participant's frames went on to {}",
                honest_frames(&a)
            );
            assert!(
                refused > 0 && answered > 0,
                "the campaign must exercise both outcomes"
            );
            shutdown.cancel();
        },
    );
}
