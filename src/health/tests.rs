//! Health on virtual time: issues appear, keep their `since`, wait out their grace and clear.

use super::*;
use crate::core::Devices;

fn state(registered: bool) -> AgentState {
    let mut s = crate::core::Agent::new(crate::core::CoreConfig::default()).state();
    s.registered = registered;
    s
}

fn codes(h: &Health) -> Vec<&'static str> {
    h.issues.iter().map(|i| i.code).collect()
}

#[test]
fn a_healthy_device_is_ok() {
    let mut t = Tracker::default();
    let seen = Observed {
        state: Some(state(true)),
        media: true,
        encoder: Some("x264enc".into()),
        system: System {
            temperature_c: Some(55.0),
            disk: Some(Disk {
                path: "/".into(),
                free: 50 << 30,
                total: 100 << 30,
            }),
            clock_synced: Some(true),
        },
        ..Observed::default()
    };
    let h = t.assess(&seen, &HealthConfig::default(), Instant::now(), 1_000);
    assert_eq!(h.level, Level::Ok);
    assert!(h.issues.is_empty(), "{h:?}");
}

#[test]
fn signaling_down_is_an_error_only_after_its_grace_and_keeps_its_since() {
    let cfg = HealthConfig {
        signaling_grace_s: 30,
        ..HealthConfig::default()
    };
    let mut t = Tracker::default();
    let t0 = Instant::now();
    let mut s = state(false);
    s.signaling_error = Some("cannot reach ws://server:8080".into());
    let seen = Observed {
        state: Some(s),
        ..Observed::default()
    };
    let h = t.assess(&seen, &cfg, t0, 1_000);
    assert_eq!(h.level, Level::Ok, "registering takes a moment");
    assert_eq!(t.next_due(), Some(t0 + Duration::from_secs(30)));
    let h = t.assess(&seen, &cfg, t0 + Duration::from_secs(29), 30_000);
    assert_eq!(h.level, Level::Ok);
    let h = t.assess(&seen, &cfg, t0 + Duration::from_secs(30), 31_000);
    assert_eq!(h.level, Level::Error);
    assert_eq!(codes(&h), ["signaling_down"]);
    assert_eq!(h.issues[0].since, 1_000, "since the first look that saw it");
    assert_eq!(t.next_due(), None, "reported: nothing more to wake up for");
    assert!(h.issues[0].detail.contains("cannot reach ws://server:8080"));
    // Registered again: gone, and a new outage starts a new grace.
    let ok = Observed {
        state: Some(state(true)),
        ..Observed::default()
    };
    assert_eq!(
        t.assess(&ok, &cfg, t0 + Duration::from_secs(40), 41_000)
            .level,
        Level::Ok
    );
    assert_eq!(t.next_due(), None);
    let h = t.assess(&seen, &cfg, t0 + Duration::from_secs(50), 51_000);
    assert_eq!(h.level, Level::Ok);
}

#[test]
fn lost_devices_are_errors_for_camera_and_microphone_and_warnings_otherwise() {
    let mut s = state(true);
    s.devices = Devices {
        camera: Attached::Lost,
        hdmi: Attached::Lost,
        microphone: Attached::Present,
        speaker: Attached::NotFound,
        ..Devices::default()
    };
    let mut t = Tracker::default();
    let seen = Observed {
        state: Some(s.clone()),
        ..Observed::default()
    };
    let h = t.assess(&seen, &HealthConfig::default(), Instant::now(), 5);
    assert_eq!(codes(&h), ["camera_lost", "hdmi_lost"]);
    assert_eq!(h.level, Level::Error);
    s.devices.camera = Attached::Present;
    let seen = Observed {
        state: Some(s),
        ..Observed::default()
    };
    let h = t.assess(&seen, &HealthConfig::default(), Instant::now(), 6);
    assert_eq!(h.level, Level::Warning, "{h:?}");
    assert_eq!(h.issues[0].since, 5);
}

#[test]
fn heat_disk_clock_encoder_and_errors_each_have_an_issue() {
    let cfg = HealthConfig::default();
    let mut t = Tracker::default();
    let mut seen = Observed {
        state: Some(state(true)),
        media: true,
        encoder: Some("x264enc".into()),
        passed_over: vec![("rpi4".into(), "v4l2h264enc: no output".into())],
        recent_errors: vec!["a".into(), "the display failed".into()],
        system: System {
            temperature_c: Some(82.4),
            disk: Some(Disk {
                path: "/var/lib/roomagent".into(),
                free: 8,
                total: 100,
            }),
            clock_synced: Some(false),
        },
        ..Observed::default()
    };
    let h = t.assess(&seen, &cfg, Instant::now(), 1);
    assert_eq!(
        codes(&h),
        [
            "clock_unsynchronised",
            "disk_full",
            "encoder_replaced",
            "errors",
            "temperature"
        ]
    );
    assert_eq!(h.level, Level::Warning);
    let detail = |h: &Health, code| {
        h.issues
            .iter()
            .find(|i| i.code == code)
            .map(|i| i.detail.clone())
            .unwrap()
    };
    assert!(detail(&h, "temperature").contains("82 °C"), "{h:?}");
    assert!(detail(&h, "encoder_replaced").contains("rpi4"));
    assert!(detail(&h, "encoder_replaced").contains("x264enc"));
    assert!(detail(&h, "errors").starts_with("2 error(s)"));
    assert!(detail(&h, "errors").contains("the display failed"));
    assert!(detail(&h, "disk_full").contains("/var/lib/roomagent"));
    // Hotter, fuller: errors.
    seen.system.temperature_c = Some(85.0);
    seen.system.disk.as_mut().unwrap().free = 4;
    let h = t.assess(&seen, &cfg, Instant::now(), 2);
    let sev = |code| h.issues.iter().find(|i| i.code == code).unwrap().severity;
    assert_eq!(sev("temperature"), Severity::Error);
    assert_eq!(sev("disk_full"), Severity::Error);
    assert_eq!(h.level, Level::Error);
    // A replacement during a call says so instead of the start-up check.
    seen.encoder_replaced = Some(("vaapi".into(), "software".into(), "GPU hang".into()));
    let h = t.assess(&seen, &cfg, Instant::now(), 3);
    assert!(detail(&h, "encoder_replaced").contains("during a call"));
    // An unknown clock state is no issue.
    seen.system.clock_synced = None;
    let h = t.assess(&seen, &cfg, Instant::now(), 4);
    assert!(!codes(&h).contains(&"clock_unsynchronised"));
}

#[test]
fn the_disk_and_clock_of_this_machine_can_be_read() {
    let d = disk(Path::new("/")).expect("statvfs /");
    assert!(d.total > 0 && d.free <= d.total, "{d:?}");
    assert!(disk(Path::new("/nonexistent/x")).is_none());
}

#[test]
fn a_certificate_near_its_end_is_a_warning_and_one_past_it_an_error() {
    let day = 86_400i64;
    let now_s = 1_800_000_000i64;
    let cert =
        |key: &str, not_after: Option<i64>, error: Option<&str>| crate::inventory::Certificate {
            key: key.into(),
            file: format!("/etc/roomagent/{key}.pem"),
            not_after,
            error: error.map(String::from),
        };
    let check = |certs: Vec<crate::inventory::Certificate>| {
        let seen = Observed {
            certificates: certs,
            ..Observed::default()
        };
        Tracker::default().assess(
            &seen,
            &HealthConfig::default(),
            Instant::now(),
            now_s as u64 * 1000,
        )
    };
    assert_eq!(
        check(vec![cert("ca", Some(now_s + 400 * day), None)]).level,
        Level::Ok
    );
    let h = check(vec![
        cert("ca", Some(now_s + 400 * day), None),
        cert("client", Some(now_s + 10 * day), None),
    ]);
    assert_eq!(h.level, Level::Warning);
    assert!(
        h.issues[0].detail.contains("client") && h.issues[0].detail.contains("10 day"),
        "{h:?}"
    );
    let h = check(vec![
        cert("client", Some(now_s + 10 * day), None),
        cert("ca", Some(now_s - 2 * day), None),
    ]);
    assert_eq!(h.level, Level::Error);
    assert!(h.issues[0].detail.contains("expired 2 day"), "{h:?}");
    let h = check(vec![cert("ca", None, Some("cannot read mqtt.ca_file"))]);
    assert_eq!(h.level, Level::Warning);
}
