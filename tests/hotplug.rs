//! Devices that come and go during a call, with Chromium as the far end. The camera, the
//! microphone and the HDMI capture input are stand-ins fed by separate `gst-launch-1.0`
//! processes over shared memory (`shmsink` → the agent's `shmsrc`): the test kills a feeding
//! process as a person pulls a cable, and starts it again as they plug it back. What Chromium
//! shows is read from its own decoded picture (brightness and colour of the frame).
//!
//! * camera lost → Chromium shows the black camera-off slate within a second, the call goes
//!   on, the state says `lost`; camera back → its picture again, on the same peer connection;
//! * HDMI source plugged in → after a short settle time the device shares it (state `sharing`,
//!   `hdmi_signal`, Chromium sees the HDMI picture); unplugged → the share stops;
//! * microphone lost → silence is sent (Chromium keeps receiving audio), the state and the
//!   event say so; back → `present`.
//!
//! Runs in its own network namespace.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use roomagent::core::{Attached, CallEvent, CallPhase};
use serde_json::Value;
use support::browser::Browser;
use support::mqtt::{Broker, Dashboard};
use support::*;

const VIDEO: &str =
    "video/x-raw,format=I420,width=320,height=180,framerate=15/1,pixel-aspect-ratio=1/1";
const AUDIO: &str = "audio/x-raw,format=S16LE,layout=interleaved,rate=48000,channels=1";
const STATE: &str = "roomagent/room/state";

/// A process feeding one stand-in device; killed (by its pid) when dropped.
struct Feed {
    child: Child,
}

impl Feed {
    /// Starts feeding `socket` with `source` (a gst-launch source description).
    fn start(socket: &Path, source: &str, caps: &str) -> Feed {
        // A feed killed without a chance to clean up leaves its socket behind, and a new one
        // would bind beside it: gone first, as a device node is.
        let _ = std::fs::remove_file(socket);
        let line = format!(
            "{source} ! {caps} ! shmsink socket-path={} wait-for-connection=false shm-size=8000000 sync=true",
            socket.display()
        );
        let log = std::fs::File::create(socket.with_extension("log")).expect("feed log");
        let child = Command::new("gst-launch-1.0")
            .args(line.split_whitespace())
            .stdout(log.try_clone().expect("feed log"))
            .stderr(log)
            .spawn()
            .expect("gst-launch-1.0");
        let started = Instant::now();
        while !socket.exists() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the feed did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Feed { child }
    }

    /// Pulls the cable.
    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The agent's side: caps between elements (a launch line cannot end in caps).
fn reader(socket: &Path, caps: &str) -> String {
    format!(
        "pipeline: shmsrc socket-path={} is-live=true do-timestamp=true ! {caps} ! identity",
        socket.display()
    )
}

fn picture(v: &Value) -> Option<(f64, f64, f64)> {
    let p = v.as_object()?.values().next()?;
    Some((
        p["brightness"].as_f64()?,
        p["red"].as_f64()?,
        p["green"].as_f64()?,
    ))
}

/// Polls Chromium's picture of the room until `pred` holds; returns how long it took.
async fn shows(
    browser: &Browser,
    what: &str,
    limit: Duration,
    pred: impl Fn((f64, f64, f64)) -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        let v = browser.eval("window.roomagent.pictures()").await;
        if picture(&v).is_some_and(&pred) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "Chromium never showed {what} within {limit:?}: last {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn white((b, _, _): (f64, f64, f64)) -> bool {
    b > 200.0
}
fn black((b, _, _): (f64, f64, f64)) -> bool {
    b < 40.0
}
fn red((_, r, g): (f64, f64, f64)) -> bool {
    r > 150.0 && g < 80.0
}

async fn audio_packets(browser: &Browser) -> u64 {
    let v = browser.eval("window.roomagent.stats()").await;
    v.as_object()
        .and_then(|o| o.values().next())
        .and_then(|p| p["audio"]["packetsReceived"].as_u64())
        .unwrap_or(0)
}

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("roomagent-hotplug-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn devices_that_come_and_go_during_a_call() {
    netns::run_isolated("devices_that_come_and_go_during_a_call", async {
        let d = dir();
        let (cam, mic, hdmi) = (d.join("camera"), d.join("mic"), d.join("hdmi"));
        let camera = Feed::start(&cam, "videotestsrc is-live=true pattern=white", VIDEO);
        let microphone = Feed::start(&mic, "audiotestsrc is-live=true wave=sine", AUDIO);
        let server = Server::start().await;
        let broker = Broker::start();
        let mut dash = Dashboard::connect(broker.port, &["roomagent/#"]).await;
        let mqtt = format!(
            "[mqtt]\nenabled = true\nhost = \"127.0.0.1\"\nport = {}\ntelemetry_interval_s = 1\n\n[log]",
            broker.port
        );
        let toml = media_toml(&server.api(), "room", "mode = \"always\"\ndelay_ms = 0", "")
            .replace("[log]", &mqtt)
            .replace(
                "camera = \"none\"",
                &format!("camera = \"{}\"", reader(&cam, VIDEO)),
            )
            .replace(
                "microphone = \"none\"",
                &format!("microphone = \"{}\"", reader(&mic, AUDIO)),
            )
            .replace(
                "hdmi_capture = \"none\"",
                &format!("hdmi_capture = \"{}\"", reader(&hdmi, VIDEO)),
            );
        let mut agent = Agent::start_toml(&toml).await;
        let mut events = agent.handle.events();
        agent.registered().await;
        let browser = Browser::calling_the_room(&server.handle.page_url()).await;
        shows(&browser, "the camera", Duration::from_secs(30), white).await;
        let s = agent
            .wait_for("the devices in the state", |s| {
                s.devices.camera == Attached::Present
                    && s.devices.microphone == Attached::Present
                    && s.devices.hdmi == Attached::Lost
            })
            .await;
        assert!(!s.sharing && !s.devices.hdmi_signal, "{:?}", s.devices);
        // The dashboard reads the same over MQTT (the engine's device lists once wrote over
        // this key), and the lists beside it.
        let state = dash
            .wait_json(STATE, |v| {
                v["devices"]["camera"] == "present"
                    && v["devices"]["microphone"] == "present"
                    && v["devices"]["hdmi"] == "lost"
            })
            .await;
        assert_eq!(state["devices"]["hdmi_signal"], false, "{state}");
        assert!(
            state["capture_devices"]["cameras"].is_array(),
            "the engine's device lists: {state}"
        );
        let created = browser.eval("window.roomagent.stats()").await;
        let created = created.as_object().unwrap().values().next().unwrap()["created"].clone();

        // ---- the camera is unplugged: the slate within a second, the call goes on
        camera.stop();
        let took = shows(
            &browser,
            "the camera-off slate",
            Duration::from_secs(5),
            black,
        )
        .await;
        println!("MEASURE camera unplugged → slate at the far end in {took:?}");
        assert!(
            took <= Duration::from_millis(1500),
            "the slate took {took:?}"
        );
        agent
            .wait_for("the camera lost", |s| s.devices.camera == Attached::Lost)
            .await;
        assert_eq!(agent.now().call, CallPhase::InCall);
        dash.wait_json(STATE, |v| v["devices"]["camera"] == "lost")
            .await;

        // ---- plugged back: live video again, same peer connection (no renegotiation)
        let camera = Feed::start(&cam, "videotestsrc is-live=true pattern=white", VIDEO);
        let took = shows(&browser, "the camera again", Duration::from_secs(10), white).await;
        println!("MEASURE camera plugged back → its picture at the far end in {took:?}");
        agent
            .wait_for("the camera back", |s| s.devices.camera == Attached::Present)
            .await;
        let now = browser.eval("window.roomagent.stats()").await;
        let now = now.as_object().unwrap().values().next().unwrap().clone();
        assert_eq!(now["created"], created, "a new peer connection was made");
        assert_eq!(now["connection"], "connected");

        // ---- an HDMI source is plugged in: shared after the settle time
        let plugged = Instant::now();
        let hdmi_feed = Feed::start(&hdmi, "videotestsrc is-live=true pattern=red", VIDEO);
        agent
            .wait_within("sharing the HDMI input", Duration::from_secs(10), |s| {
                s.sharing && s.devices.hdmi_signal && s.devices.hdmi == Attached::Present
            })
            .await;
        shows(&browser, "the HDMI picture", Duration::from_secs(5), red).await;
        println!(
            "MEASURE HDMI source plugged in → shared at the far end in {:?}",
            plugged.elapsed()
        );

        // ---- unplugged: the share stops, the camera is back
        let unplugged = Instant::now();
        hdmi_feed.stop();
        agent
            .wait_within("the share stopped", Duration::from_secs(5), |s| {
                !s.sharing && !s.devices.hdmi_signal
            })
            .await;
        shows(
            &browser,
            "the camera after the share",
            Duration::from_secs(5),
            white,
        )
        .await;
        println!(
            "MEASURE HDMI source unplugged → camera at the far end in {:?}",
            unplugged.elapsed()
        );

        // ---- the microphone is unplugged: silence goes on, the state says lost
        microphone.stop();
        agent
            .wait_for("the microphone lost", |s| {
                s.devices.microphone == Attached::Lost
            })
            .await;
        let before = audio_packets(&browser).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after = audio_packets(&browser).await;
        assert!(
            after >= before + 50,
            "audio stopped without the microphone: {before} → {after}"
        );
        let _microphone = Feed::start(&mic, "audiotestsrc is-live=true wave=sine", AUDIO);
        agent
            .wait_for("the microphone back", |s| {
                s.devices.microphone == Attached::Present
            })
            .await;

        // The events a dashboard gets, in order, for each device.
        let mut seen = Vec::new();
        while let Ok(ev) = events.try_recv() {
            match ev {
                CallEvent::Device { kind, present } => seen.push(format!("{kind:?} {present}")),
                CallEvent::HdmiSignal { present } => seen.push(format!("signal {present}")),
                _ => {}
            }
        }
        for want in [
            "Camera false",
            "Camera true",
            "Hdmi true",
            "signal true",
            "signal false",
            "Hdmi false",
            "Microphone false",
            "Microphone true",
        ] {
            assert!(seen.iter().any(|s| s == want), "no {want} in {seen:?}");
        }
        // The camera: lost once, back once (after the event of its start-up, which may come
        // before this test listened: the state said present above).
        let mut cam_events: Vec<&String> =
            seen.iter().filter(|s| s.starts_with("Camera")).collect();
        if cam_events.len() == 3 && cam_events[0] == "Camera true" {
            cam_events.remove(0);
        }
        assert_eq!(cam_events, ["Camera false", "Camera true"], "{seen:?}");
        assert_eq!(agent.now().call, CallPhase::InCall);
        drop(camera);
        drop(browser);
        agent.stop().await;
        let _ = std::fs::remove_dir_all(&d);
    });
    // (feed logs stay in the temporary directory when the test fails)
}

/// A playback device stand-in: the agent's sink (`tcpclientsink`) writes to this listener on
/// loopback. Unplugging drops the listener and the connection (the sink's next writes fail, as
/// a USB speaker's do); plugging back listens on the same port again.
struct Output {
    port: u16,
    bytes: std::sync::Arc<std::sync::atomic::AtomicU64>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Output {
    /// Not plugged in yet.
    fn unplugged() -> Output {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Output {
            port,
            bytes: Default::default(),
            task: None,
        }
    }

    async fn new() -> Output {
        let mut o = Output::unplugged();
        o.plug().await;
        o
    }

    async fn plug(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("listen again on the output's port");
        let bytes = self.bytes.clone();
        self.task = Some(tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                let bytes = bytes.clone();
                // One connection at a time: the sink reconnects only after a failure.
                let mut buf = vec![0u8; 65536];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    bytes.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }));
    }

    fn unplug(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }

    fn bytes(&self) -> u64 {
        self.bytes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Waits until more than `n` bytes arrived after now.
    async fn plays(&self, what: &str, n: u64) {
        let start = self.bytes();
        let started = Instant::now();
        while self.bytes() < start + n {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{what} is not played: {} bytes in 10 s",
                self.bytes() - start
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[test]
fn a_speaker_and_a_display_that_come_and_go_during_a_call() {
    netns::run_isolated(
        "a_speaker_and_a_display_that_come_and_go_during_a_call",
        async {
            // The speaker is unplugged as the call starts: the call does not wait for it.
            let mut speaker = Output::unplugged();
            let mut display = Output::new().await;
            let server = Server::start().await;
            let toml = media_toml(&server.api(), "room", "mode = \"always\"\ndelay_ms = 0", "")
                .replace(
                    "speaker = \"fakesink\"",
                    &format!(
                        "speaker = \"pipeline: audioconvert ! tcpclientsink host=127.0.0.1 port={} sync=true\"",
                        speaker.port
                    ),
                )
                .replace(
                    "display = \"fakesink\"",
                    &format!(
                        "display = \"pipeline: videoconvert ! tcpclientsink host=127.0.0.1 port={} sync=true\"",
                        display.port
                    ),
                );
            let mut agent = Agent::start_toml(&toml).await;
            let mut events = agent.handle.events();
            agent.registered().await;
            let browser = Browser::calling_the_room(&server.handle.page_url()).await;
            browser
                .wait_for(
                    "the agent's audio at Chromium",
                    "window.roomagent.stats()",
                    Duration::from_secs(30),
                    |v| {
                        v.as_object()
                            .and_then(|o| o.values().next())
                            .is_some_and(|p| {
                                p["audio"]["packetsReceived"].as_u64().unwrap_or(0) > 10
                            })
                    },
                )
                .await;
            let started = Instant::now();
            while agent.frames_decoded() < 10 {
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "the agent does not decode Chromium's video"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            agent
                .wait_for("the speaker lost as the call started", |s| {
                    s.devices.speaker == Attached::Lost
                })
                .await;
            display.plays("the display", 100_000).await;
            let plugged = Instant::now();
            speaker.plug().await;
            speaker.plays("the speaker", 20_000).await;
            println!(
                "MEASURE speaker plugged in mid-call → playing in {:?}",
                plugged.elapsed()
            );
            let s = agent
                .wait_for("speaker and display in the state", |s| {
                    s.devices.speaker == Attached::Present && s.devices.display == Attached::Present
                })
                .await;
            assert_eq!(s.call, CallPhase::InCall);

            for (name, which) in [("speaker", 0), ("display", 1)] {
                let out = if which == 0 {
                    &mut speaker
                } else {
                    &mut display
                };
                // ---- unplugged: a stand-in plays, the call and its media go on
                let unplugged = Instant::now();
                out.unplug();
                agent
                    .wait_within(&format!("the {name} lost"), Duration::from_secs(10), |s| {
                        if which == 0 {
                            s.devices.speaker == Attached::Lost
                        } else {
                            s.devices.display == Attached::Lost
                        }
                    })
                    .await;
                println!(
                    "MEASURE {name} unplugged → state lost in {:?}",
                    unplugged.elapsed()
                );
                let (a0, f0) = (audio_packets(&browser).await, agent.frames_decoded());
                tokio::time::sleep(Duration::from_secs(2)).await;
                let (a1, f1) = (audio_packets(&browser).await, agent.frames_decoded());
                assert!(
                    a1 >= a0 + 50,
                    "the agent's audio stopped without its {name}: {a0} → {a1}"
                );
                assert!(
                    f1 >= f0 + 10,
                    "the agent stopped decoding without its {name}: {f0} → {f1}"
                );
                assert_eq!(agent.now().call, CallPhase::InCall);

                // ---- plugged back: it plays again
                let plugged = Instant::now();
                out.plug().await;
                agent
                    .wait_within(&format!("the {name} back"), Duration::from_secs(10), |s| {
                        if which == 0 {
                            s.devices.speaker == Attached::Present
                        } else {
                            s.devices.display == Attached::Present
                        }
                    })
                    .await;
                out.plays(name, 10_000).await;
                println!(
                    "MEASURE {name} plugged back → playing again in {:?}",
                    plugged.elapsed()
                );
            }

            let mut seen = Vec::new();
            while let Ok(ev) = events.try_recv() {
                if let CallEvent::Device { kind, present } = ev {
                    seen.push(format!("{kind:?} {present}"));
                }
            }
            for (kind, want) in [
                ("Speaker", &["false", "true", "false", "true"][..]),
                // The call started without both (one could not start), then each joined.
                ("Display", &["false", "true", "false", "true"][..]),
            ] {
                let mut mine: Vec<String> = seen
                    .iter()
                    .filter(|s| s.starts_with(kind))
                    .cloned()
                    .collect();
                // The start-up event may come before this test listened.
                if mine.len() == want.len() + 1 && mine[0] == format!("{kind} true") {
                    mine.remove(0);
                }
                let want: Vec<String> = want.iter().map(|w| format!("{kind} {w}")).collect();
                assert_eq!(mine, want, "{seen:?}");
            }
            assert_eq!(agent.now().call, CallPhase::InCall);
            drop(browser);
            agent.stop().await;
        },
    );
}
