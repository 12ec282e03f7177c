//! The board profiles against stand-ins that behave like the boards' own elements
//! (tests/standins, loaded through GST_PLUGIN_PATH; docs/boards.md says what each one copies
//! and from where): a Raspberry Pi 4's v4l2h264enc that ignores force-key-unit before 1.22.4
//! and takes the level from its caps, Jetson's nvv4l2h264enc that takes NVMM only, refuses
//! constrained-baseline and answers force-IDR, Intel's vah264lpenc whose constant-QP mode
//! ignores the bitrate, and libcamera's device provider. Each test runs in a process of its
//! own (GStreamer reads GST_PLUGIN_PATH once), inside a network namespace.

mod support;

use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use roomagent::core::{Command, UserId};
use roomagent::media::relay::split_access_unit;
use roomagent::media::{MediaOptions, pipeline, profile};
use support::*;

/// The picture of a Pi camera module through libcamera, and a USB HDMI dongle through
/// libcamera's UVC handler (its id ends in the USB ids), as libcamera names them.
const PI_CAMERA: &str = "/base/soc/i2c0mux/i2c@1/imx708@1a";
const MS2109_VIA_LIBCAMERA: &str = "/base/scb/pcie@7d500000/pci@0,0/usb@0,0-1.2:1.0-534d:2109";

fn pi4_root() -> std::path::PathBuf {
    standins::board_root(
        "cm4",
        "Raspberry Pi Compute Module 4 Rev 1.0",
        &["raspberrypi,4-compute-module", "brcm,bcm2711"],
        &["/dev/video11"],
    )
}

fn orin_root(nvenc: bool) -> std::path::PathBuf {
    standins::board_root(
        if nvenc { "orin-nx" } else { "orin-nano" },
        "NVIDIA Jetson Orin NX Engineering Reference Developer Kit",
        &[
            "nvidia,p3768-0000+p3767-0000",
            "nvidia,p3767-0000",
            "nvidia,tegra234",
        ],
        if nvenc { &["/dev/v4l2-nvenc"][..] } else { &[] },
    )
}

/// Encodes a live 15 fps test pattern through `chain`, asks for a key frame as a picture-loss
/// request does (force-key-unit, upstream from the end) 2 s in, 2 s before the GOP's next IDR;
/// returns how long and how many frames it took to the next IDR, if one came within 1 s.
fn picture_loss_to_idr(chain: Vec<gst::Element>) -> Option<(Duration, u32)> {
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("videotestsrc")
        .property("is-live", true)
        .property_from_str("pattern", "ball")
        .build()
        .unwrap();
    let raw = gst::ElementFactory::make("capsfilter")
        .property(
            "caps",
            gst::Caps::builder("video/x-raw")
                .field("format", "I420")
                .field("width", 320i32)
                .field("height", 180i32)
                .field("framerate", gst::Fraction::new(15, 1))
                .build(),
        )
        .build()
        .unwrap();
    let parse = gst::ElementFactory::make("h264parse").build().unwrap();
    let sink = gst_app::AppSink::builder()
        .caps(
            &gst::Caps::builder("video/x-h264")
                .field("stream-format", "byte-stream")
                .field("alignment", "au")
                .build(),
        )
        .sync(false)
        .build();
    let mut all = vec![src, raw];
    all.extend(chain);
    all.push(parse);
    all.push(sink.clone().upcast());
    pipeline.add_many(&all).unwrap();
    gst::Element::link_many(&all).expect("the profile's chain links");
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut frames = 0u32;
    let mut asked: Option<(Instant, u32)> = None;
    let result = loop {
        let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_seconds(3)) else {
            panic!("the chain stopped after {frames} frames");
        };
        frames += 1;
        let au = sample.buffer().unwrap().map_readable().unwrap();
        let idr = split_access_unit(&au, &mut Default::default()).key;
        match asked {
            None if frames == 30 => {
                assert!(!idr, "frame 30 is inside the GOP");
                sink.send_event(
                    gstreamer_video::UpstreamForceKeyUnitEvent::builder()
                        .all_headers(true)
                        .build(),
                );
                asked = Some((Instant::now(), frames));
            }
            Some((at, n)) if idr => break Some((at.elapsed(), frames - n)),
            Some((at, _)) if at.elapsed() > Duration::from_secs(1) => break None,
            _ => {}
        }
    };
    pipeline.set_state(gst::State::Null).unwrap();
    result
}

fn opts() -> MediaOptions {
    MediaOptions {
        width: 320,
        height: 180,
        framerate: 15,
        video_kbps: 300,
        ..MediaOptions::default()
    }
}

/// What the stand-ins are checked against: on their own they do what the boards do, so a
/// force-key-unit request alone gets no IDR from the Pi's (before 1.22.4), Jetson's or the
/// low-power VA encoder (before 1.25.1) — the agent's handling is what makes the difference.
#[test]
fn the_stand_ins_ignore_force_key_unit_as_the_real_encoders_do() {
    netns::run_isolated_with(
        "the_stand_ins_ignore_force_key_unit_as_the_real_encoders_do",
        &standins::env(&[("ROOMAGENT_STANDIN_VA_RATE_CONTROL", "cbr,cqp")]),
        async {
            gst::init().unwrap();
            let v = roomagent::media::version::GstVersion::running();
            let caps = |s: &str| {
                gst::ElementFactory::make("capsfilter")
                    .property("caps", s.parse::<gst::Caps>().unwrap())
                    .build()
                    .unwrap()
            };
            let make = |f: &str| gst::ElementFactory::make(f).build().unwrap();
            let pi = make("v4l2h264enc");
            pi.set_property(
                "extra-controls",
                "controls,h264_i_frame_period=60"
                    .parse::<gst::Structure>()
                    .unwrap(),
            );
            let nv = make("nvv4l2h264enc");
            nv.set_property("iframeinterval", 60u32);
            let va = make("vah264lpenc");
            va.set_property("key-int-max", 60u32);
            for (name, chain, ignored) in [
                (
                    "v4l2h264enc",
                    vec![pi, caps("video/x-h264,level=(string)3")],
                    !v.at_least(1, 22, 4),
                ),
                (
                    "nvv4l2h264enc",
                    vec![
                        make("nvvidconv"),
                        caps("video/x-raw(memory:NVMM)"),
                        nv,
                        caps("video/x-h264,profile=(string)baseline"),
                    ],
                    true,
                ),
                (
                    "vah264lpenc",
                    vec![make("videoconvert"), va],
                    !v.at_least(1, 25, 1),
                ),
            ] {
                let got = picture_loss_to_idr(chain);
                println!(
                    "MEASURE stand-in {name} alone on GStreamer {v}: force-key-unit → IDR {got:?}"
                );
                assert_eq!(got.is_none(), ignored, "{name} on {v}: {got:?}");
            }
        },
    );
}

/// A picture-loss request gets an IDR at once from each board profile's encoder as a call
/// builds it, whatever that encoder needs for it.
#[test]
fn a_picture_loss_request_gets_an_idr_from_every_boards_encoder() {
    netns::run_isolated_with(
        "a_picture_loss_request_gets_an_idr_from_every_boards_encoder",
        &standins::env(&[("ROOMAGENT_STANDIN_VA_RATE_CONTROL", "cbr,vbr,cqp")]),
        async {
            roomagent::media::init().unwrap();
            let profiles = profile::load_all(None).unwrap();
            for name in ["rpi4", "jetson", "vaapi-lp", "software"] {
                let p = profiles.iter().find(|p| p.name == name).unwrap();
                let chain = pipeline::encoding_chain(&opts(), p).unwrap();
                let encoder = p.video_encoder[0].element.as_str();
                let got = picture_loss_to_idr(chain);
                let method = roomagent::media::keyframe::method(
                    encoder,
                    roomagent::media::version::GstVersion::running(),
                );
                match got {
                    Some((took, frames)) => println!(
                        "MEASURE {name} ({encoder}, {method:?}): picture-loss request → IDR out of \
                         the encoder in {} ms, {frames} frame(s) later",
                        took.as_millis()
                    ),
                    None => {
                        panic!("{name} ({encoder}, {method:?}): no IDR within 1 s of the request")
                    }
                }
                let (took, frames) = got.unwrap();
                assert!(
                    frames <= 3 && took < Duration::from_millis(500),
                    "{name}: {took:?}, {frames} frames"
                );
            }
        },
    );
}

/// The stand-in Pi encoder refuses to start when the level in its caps cannot carry the size,
/// as bcm2835-codec does; the profile's caps carry the level the call's size needs, up to
/// 1080p30 (level 4) and beyond.
#[test]
fn the_pi_encoder_gets_the_level_its_size_needs() {
    netns::run_isolated_with(
        "the_pi_encoder_gets_the_level_its_size_needs",
        &standins::env(&[]),
        async {
            roomagent::media::init().unwrap();
            let profiles = profile::load_all(None).unwrap();
            let rpi4 = profiles.iter().find(|p| p.name == "rpi4").unwrap();
            for (w, h, fps) in [
                (1920, 1080, 30),
                (1280, 720, 30),
                (640, 360, 30),
                (1920, 1200, 30),
            ] {
                let o = MediaOptions {
                    width: w,
                    height: h,
                    framerate: fps,
                    ..opts()
                };
                pipeline::check_encoder(&o, rpi4).unwrap_or_else(|e| panic!("{w}x{h}@{fps}: {e}"));
            }
            // The level the profile used to fix (4) cannot carry 1920x1200: the driver refuses.
            let mut fixed = rpi4.clone();
            fixed.video_encoder_caps = Some(profile::EncoderCaps {
                caps: "video/x-h264,level=(string)4,profile=(string)constrained-baseline".into(),
                level_for_size: false,
            });
            let o = MediaOptions {
                width: 1920,
                height: 1200,
                framerate: 30,
                ..opts()
            };
            let err = pipeline::check_encoder(&o, &fixed).unwrap_err();
            assert!(err.contains("level 4 cannot carry 1920x1200"), "{err}");
        },
    );
}

/// Runs `roomagent devices` with the stand-ins, on the board under `root`.
fn devices_report(root: &std::path::Path, extra: &[(&'static str, &str)]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_roomagent"))
        .arg("devices")
        .envs(standins::env(extra))
        .env("ROOMAGENT_BOARD_ROOT", root)
        .output()
        .expect("roomagent devices runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("--- roomagent devices ({}):\n{text}", root.display());
    text
}

/// What `roomagent devices` tells a person on each board: which camera, HDMI input and
/// encoder it uses, and why the others are not.
#[test]
fn roomagent_devices_says_what_it_uses_on_each_board_and_why() {
    // Compute Module 4 with a camera module and a USB HDMI dongle, both through libcamera.
    let pi = devices_report(
        &pi4_root(),
        &[(
            "ROOMAGENT_STANDIN_LIBCAMERA",
            &format!("{PI_CAMERA};{MS2109_VIA_LIBCAMERA}"),
        )],
    );
    let section = |text: &str, title: &str| -> String {
        text.split(&format!("{title}:\n"))
            .nth(1)
            .map(|rest| {
                rest.lines()
                    .take_while(|l| l.starts_with(' '))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default()
    };
    let cameras = section(&pi, "Cameras");
    assert!(
        cameras.contains(PI_CAMERA) && cameras.contains("libcamera"),
        "{cameras}"
    );
    assert!(
        !cameras.contains("534d:2109"),
        "the dongle is no camera: {cameras}"
    );
    let hdmi = section(&pi, "HDMI capture inputs");
    assert!(
        hdmi.contains("USB HDMI capture: MacroSilicon MS2109 (534d:2109)"),
        "{hdmi}"
    );
    assert!(
        pi.contains("compatible: raspberrypi,4-compute-module, brcm,bcm2711"),
        "{pi}"
    );
    assert!(pi.contains("Chosen profile: rpi4"), "{pi}");

    // An Intel box whose VA driver offers constant QP only (no HuC): the low-power profile
    // fits but its test encode fails, saying why; software encoding runs.
    let intel = devices_report(
        &standins::board_root("intel", "", &[], &[]),
        &[
            (
                "ROOMAGENT_STANDIN_LIBCAMERA",
                "\\_SB_.PCI0.XHC_.RHUB.HS03-3:1.0-046d:0825",
            ),
            ("ROOMAGENT_STANDIN_VA_RATE_CONTROL", "cqp"),
        ],
    );
    assert!(intel.contains("Passed over vaapi-lp"), "{intel}");
    assert!(intel.contains("\"cbr\" is not one of cqp"), "{intel}");
    assert!(intel.contains("Chosen profile: software"), "{intel}");
    assert!(
        intel.contains("the board is none of brcm,bcm2711"),
        "{intel}"
    );
    // The same box with HuC loaded: constant bitrate is offered.
    let huc = devices_report(
        &standins::board_root("intel-huc", "", &[], &[]),
        &[
            (
                "ROOMAGENT_STANDIN_LIBCAMERA",
                "\\_SB_.PCI0.XHC_.RHUB.HS03-3:1.0-046d:0825",
            ),
            ("ROOMAGENT_STANDIN_VA_RATE_CONTROL", "cbr,vbr,cqp"),
        ],
    );
    assert!(huc.contains("Chosen profile: vaapi-lp"), "{huc}");

    // Jetson Orin: NX has NVENC, Nano has none.
    let camera = [(
        "ROOMAGENT_STANDIN_LIBCAMERA",
        "/base/bus@0/cam_i2cmux/i2c@0/imx219@10",
    )];
    let nx = devices_report(&orin_root(true), &camera);
    assert!(nx.contains("Chosen profile: jetson"), "{nx}");
    let nano = devices_report(&orin_root(false), &camera);
    assert!(nano.contains("no /dev/v4l2-nvenc"), "{nano}");
    assert!(nano.contains("Chosen profile: software"), "{nano}");
}

const ROOM2: i64 = 1002;

/// An agent's configuration for a call test: `room` (dials, never answers) or `room2`
/// (answers at once), running the profile `profile` (its name and TOML) from a profiles
/// directory of its own, or the test profile.
fn agent_toml(server: &Server, login: &str, profile: Option<(&str, String)>) -> String {
    let answer = if login == "room" {
        "mode = \"never\""
    } else {
        "mode = \"always\"\ndelay_ms = 0"
    };
    let toml = media_toml(&server.api(), login, answer, "");
    let Some((name, text)) = profile else {
        return toml;
    };
    let dir = std::env::temp_dir().join(format!("roomagent-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.toml")), text).unwrap();
    toml.replace(
        "profile = \"test\"",
        &format!("profile = \"{name}\"\nprofiles_dir = \"{}\"", dir.display()),
    )
}

/// The test profile, renamed, with `extra` TOML after it (a decoder, say).
fn test_profile_with(name: &str, extra: &str) -> String {
    include_str!("../pipelines/test.toml")
        .replace("name = \"test\"", &format!("name = \"{name}\""))
        .replace("priority = 0", "priority = 1")
        + extra
}

/// Starts `a` and `b`, waits for both to register, and has `a` dial `b`; returns when.
async fn dial(a_toml: &str, b_toml: &str) -> (Agent, Agent, Instant) {
    let mut a = Agent::start_toml(a_toml).await;
    let mut b = Agent::start_toml(b_toml).await;
    a.registered().await;
    b.registered().await;
    let dialled = Instant::now();
    a.handle
        .command(Command::Dial {
            user: UserId(ROOM2),
        })
        .await
        .unwrap();
    (a, b, dialled)
}

/// A viewer who joins sees a Pi's camera at once: the agent makes the Pi's encoder send an IDR
/// for it, rather than leave it to wait for the next one. (The GOP is made 40 s long here so
/// that waiting would show.) Measured: dial → first frame decoded at the far end.
#[test]
fn a_viewer_sees_a_pi_camera_at_once() {
    let root = pi4_root();
    netns::run_isolated_with(
        "a_viewer_sees_a_pi_camera_at_once",
        &standins::env(&[
            ("ROOMAGENT_STANDIN_LIBCAMERA", PI_CAMERA),
            ("ROOMAGENT_BOARD_ROOT", &root.display().to_string()),
        ]),
        async {
            let server = Server::start().await;
            let rpi4 = include_str!("../pipelines/rpi4.toml")
                .replace("h264_i_frame_period=60", "h264_i_frame_period=600");
            let a_toml = agent_toml(&server, "room", Some(("rpi4", rpi4)))
                .replace("camera = \"none\"", "camera = \"auto\"");
            let (a, mut b, dialled) = dial(&a_toml, &agent_toml(&server, "room2", None)).await;
            let info = a.handle.media_info().expect("media on").clone();
            assert_eq!(info.profile, "rpi4");
            assert_eq!(info.encoder, "v4l2h264enc");
            assert_eq!(info.cameras, [PI_CAMERA]);
            b.wait_within("b sees a's camera", Duration::from_secs(15), |s| {
                s.members.iter().any(|m| m.video_in)
            })
            .await;
            println!(
                "MEASURE rpi4 stand-in: dial → first frame decoded at the far end in {} ms (GOP 40 s)",
                dialled.elapsed().as_millis()
            );
            a.stop().await;
            b.stop().await;
        },
    );
}

/// A participant's video that the board's decoder fails on (the Pi's v4l2h264dec stopping
/// after some cycles, raspberrypi/firmware#1845; here a stand-in that fails after 45 frames) is
/// decoded in software from then on: an event says so, and the far end's video comes back and
/// stays, well past the point where the board's decoder failed.
#[test]
fn a_participant_the_pi_decoder_fails_on_is_decoded_in_software() {
    netns::run_isolated_with(
        "a_participant_the_pi_decoder_fails_on_is_decoded_in_software",
        &standins::env(&[("ROOMAGENT_STANDIN_V4L2DEC_FAIL_AFTER", "45")]),
        async {
            let server = Server::start().await;
            let profile = test_profile_with(
                "pi-decoding",
                "\n[video_decoder]\nelement = \"v4l2h264dec\"\n",
            );
            let b_toml = agent_toml(&server, "room2", Some(("pi-decoding", profile)));
            let (a, mut b, _) = dial(&agent_toml(&server, "room", None), &b_toml).await;
            let mut events = b.handle.events();
            b.wait_within("b decodes a's video", Duration::from_secs(15), |s| {
                s.members.iter().any(|m| m.video_in)
            })
            .await;
            let started = Instant::now();
            let (from, to, reason) = loop {
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "no decoder replacement within 20 s"
                );
                if let Ok(Ok(roomagent::core::CallEvent::DecoderReplaced {
                    from,
                    to,
                    reason,
                    ..
                })) = tokio::time::timeout(Duration::from_millis(200), events.recv()).await
                {
                    break (from, to, reason);
                }
            };
            println!(
                "MEASURE decoder replaced after {:.1} s: {from} → {to} ({reason})",
                started.elapsed().as_secs_f64()
            );
            assert_eq!(from, "v4l2h264dec");
            assert!(["openh264dec", "avdec_h264"].contains(&to.as_str()), "{to}");
            // The board's decoder gave at most 45 frames a session; the software one goes on.
            let back = Instant::now();
            b.stats_until("a session of b decodes 120 frames of a's video", |st| {
                st.sessions.iter().any(|s| s.frames_decoded >= 120)
            })
            .await;
            println!(
                "MEASURE far end decoding again in software: 120 frames {:.1} s after the replacement",
                back.elapsed().as_secs_f64()
            );
            a.stop().await;
            b.stop().await;
        },
    );
}

/// Jetson's decoder gives NVMM memory, which the display cannot take: the profile's
/// `video_decoder_output` (nvvidconv) brings it out, and a participant's video is decoded and
/// shown through NVDEC (stand-ins that take and give NVMM only).
#[test]
fn a_jetson_decodes_a_participant_through_nvmm() {
    netns::run_isolated_with(
        "a_jetson_decodes_a_participant_through_nvmm",
        &standins::env(&[]),
        async {
            let server = Server::start().await;
            let profile = test_profile_with(
                "nv-decoding",
                "\n[video_decoder]\nelement = \"nvv4l2decoder\"\n\n[video_decoder_output]\nelement = \"nvvidconv\"\n",
            );
            let b_toml = agent_toml(&server, "room2", Some(("nv-decoding", profile)));
            let (a, b, _) = dial(&agent_toml(&server, "room", None), &b_toml).await;
            b.stats_until("b decodes 30 frames of a's video through NVDEC", |st| {
                st.sessions.iter().any(|s| s.frames_decoded >= 30)
            })
            .await;
            a.stop().await;
            b.stop().await;
        },
    );
}
