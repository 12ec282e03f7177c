//! The configuration the Debian package installs (packaging/config.production.toml), run by
//! the binary the way systemd runs it: ready at once, saying "not configured: edit <file>",
//! listening on nothing; after the administrator sets a signaling server and reloads, it
//! registers without a restart. With MQTT set up, the dashboard reads the same status.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use support::mqtt::{Broker, Dashboard};
use support::service::{Service, field};
use support::*;

const SHIPPED: &str = include_str!("../packaging/config.production.toml");

fn ready(m: &str) -> bool {
    field(m, "READY") == Some("1")
}

/// The socket inodes the process holds open.
fn socket_inodes(pid: u32) -> HashSet<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect()
}

/// Listening TCP sockets and bound UDP sockets of the process, as `proto local-address`.
fn listening(pid: u32) -> Vec<String> {
    let mine = socket_inodes(pid);
    let mut found = Vec::new();
    for proto in ["tcp", "tcp6", "udp", "udp6"] {
        let table = std::fs::read_to_string(format!("/proc/{pid}/net/{proto}")).unwrap();
        for row in table.lines().skip(1) {
            let f: Vec<&str> = row.split_whitespace().collect();
            // st 0A: TCP LISTEN; any UDP socket is bound and receiving.
            let open = proto.starts_with("udp") || f[3] == "0A";
            if open && mine.contains(f[9]) {
                found.push(format!("{proto} {}", f[1]));
            }
        }
    }
    found
}

/// The shipped file with a signaling server and login filled in, as an administrator would.
fn configured(api: &str) -> String {
    SHIPPED
        .replace("# id = \"room-101\"", "id = \"room-101\"")
        .replace(
            "# host = \"https://meet.example.com/app\"",
            &format!("host = \"{api}\""),
        )
        .replace(
            "# name = \"room-101\"",
            "name = \"room\"\npassword = \"room\"",
        )
}

#[tokio::test]
async fn the_shipped_configuration_waits_for_an_edit_then_registers_on_reload() {
    init_logs();
    // The check itself sees a listener (this test's own).
    let own = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = format!(":{:04X}", own.local_addr().unwrap().port());
    let seen = listening(std::process::id());
    assert!(seen.iter().any(|l| l.ends_with(&port)), "{seen:?}");
    drop(own);

    let mut svc = Service::start("fresh", SHIPPED, &[]);
    let r = svc
        .notify
        .wait("READY=1", Duration::from_secs(20), ready)
        .await;
    let want = format!("not configured: edit {}", svc.config.display());
    assert_eq!(field(&r, "STATUS"), Some(want.as_str()), "{r}");
    assert_eq!(listening(svc.pid()), Vec::<String>::new());

    // The administrator sets the server and reloads: the same process registers.
    let server = Server::start().await;
    let pid = svc.pid();
    std::fs::write(&svc.config, configured(&server.api())).unwrap();
    svc.signal("HUP");
    svc.notify
        .wait("RELOADING=1", Duration::from_secs(5), |m| {
            field(m, "RELOADING") == Some("1")
        })
        .await;
    svc.notify
        .wait("READY=1 after the reload", Duration::from_secs(15), ready)
        .await;
    svc.notify
        .wait("registered status", Duration::from_secs(20), |m| {
            field(m, "STATUS") == Some("registered as user 1001, idle")
        })
        .await;
    assert_eq!(svc.pid(), pid, "registered without a restart");
    let online: Vec<i64> = server.handle.online().iter().map(|o| o.id).collect();
    assert!(online.contains(&1001), "{online:?}");

    svc.signal("TERM");
    let status = svc.exited_within(Duration::from_secs(10)).await;
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    server.stop().await;
}

#[tokio::test]
async fn with_mqtt_set_up_the_dashboard_reads_not_configured() {
    init_logs();
    let broker = Broker::start();
    let mut dash = Dashboard::connect(broker.port, &["roomagent/room-101/#"]).await;
    let text = SHIPPED
        .replace("# id = \"room-101\"", "id = \"room-101\"")
        .replace(
            "enabled = false\n# host = \"mqtt.example.com\"",
            &format!(
                "enabled = true\nhost = \"127.0.0.1\"\nport = {}",
                broker.port
            ),
        );
    assert_ne!(text, SHIPPED);
    let svc = Service::start("fresh-mqtt", &text, &[]);
    let want = format!("not configured: edit {}", svc.config.display());
    let state = dash
        .wait_json("roomagent/room-101/state", |v| {
            v["signaling_error"].as_str().is_some_and(|e| e == want)
        })
        .await;
    assert_eq!(state["registered"], false);
}
