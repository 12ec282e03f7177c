//! The systemd adapter: `Type=notify` readiness, `STATUS=` lines, the watchdog, SIGHUP
//! reloads and a bounded SIGTERM stop.
//!
//! The notification protocol is a datagram of `KEY=value` lines sent to `$NOTIFY_SOCKET`
//! (a path, or `@name` in the abstract namespace); see sd_notify(3). Without that variable
//! (run by hand, or in a container) nothing is sent and the rest works the same.
//!
//! [`serve`] is what `roomagent run` calls:
//! * `READY=1` once the agent is registered with the signaling server, or after
//!   `[service] ready_timeout_s` with a `STATUS=` saying why it is not (it keeps retrying);
//!   at once, with `STATUS=not configured: edit <file>`, when the file names no signaling
//!   server yet (a fresh install; the reload that completes the file starts a fresh agent);
//! * `STATUS=` whenever what a person would want to know changes ("registered as …",
//!   "in call with …");
//! * `WATCHDOG=1` at half of `WatchdogSec`, and only after the core loop answered a ping, so a
//!   wedged agent is restarted;
//! * SIGHUP: `RELOADING=1`, re-read the file, apply what can change live, `STATUS=` what was
//!   applied and what needs a restart, `READY=1`;
//! * SIGTERM / SIGINT: `STOPPING=1`, leave the room, publish offline, stop within
//!   [`STOP_BUDGET`].

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::core::{AgentState, CallPhase};
use crate::daemon;
use crate::handle::ReloadReport;

/// How long a stop may take from SIGTERM to exit: the agent's own ordered shutdown plus a
/// little slack. systemd's `TimeoutStopSec` in the shipped unit is larger, so a slow teardown
/// is logged by us rather than SIGKILLed by it.
pub const STOP_BUDGET: Duration =
    daemon::SHUTDOWN_BUDGET.saturating_add(Duration::from_millis(300));

/// A connection to the service manager's notification socket.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
}

impl Notifier {
    /// The notifier named by `$NOTIFY_SOCKET`; `Ok(None)` when the variable is unset (not
    /// started by systemd with `Type=notify`).
    pub fn from_env() -> io::Result<Option<Notifier>> {
        match std::env::var_os("NOTIFY_SOCKET") {
            None => Ok(None),
            Some(v) => Notifier::connect(&v.to_string_lossy()).map(Some),
        }
    }

    /// A notifier for a socket path, or `@name` for the abstract namespace.
    pub fn connect(target: &str) -> io::Result<Notifier> {
        let addr = if let Some(name) = target.strip_prefix('@') {
            SocketAddr::from_abstract_name(name.as_bytes())?
        } else if target.starts_with('/') {
            SocketAddr::from_pathname(target)?
        } else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("NOTIFY_SOCKET={target:?} is neither an absolute path nor @abstract"),
            ));
        };
        let socket = UnixDatagram::unbound()?;
        socket.set_nonblocking(true)?;
        Ok(Notifier { socket, addr })
    }

    /// Sends one notification (`KEY=value` lines). Never blocks.
    pub fn send(&self, message: &str) -> io::Result<()> {
        self.socket.send_to_addr(message.as_bytes(), &self.addr)?;
        Ok(())
    }
}

/// How often to send `WATCHDOG=1`: half of `$WATCHDOG_USEC`, when the watchdog is on for this
/// process (`$WATCHDOG_PID` unset or ours).
pub fn watchdog_interval() -> Option<Duration> {
    watchdog_interval_from(
        std::env::var("WATCHDOG_USEC").ok().as_deref(),
        std::env::var("WATCHDOG_PID").ok().as_deref(),
        std::process::id(),
    )
}

/// The shortest `WatchdogSec` the agent accepts: its core loop cannot promise to answer more
/// often, and half of 1 µs would be a zero period, which tokio's interval refuses by panicking.
const MIN_WATCHDOG: Duration = Duration::from_millis(100);

/// Pings come at least this often, however long `WatchdogSec` is.
const MAX_PING: Duration = Duration::from_secs(3600);

fn watchdog_interval_from(usec: Option<&str>, pid: Option<&str>, me: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|&u| u > 0)?;
    if let Some(pid) = pid
        && pid.trim().parse::<u32>().ok() != Some(me)
    {
        return None;
    }
    Some((Duration::from_micros(usec) / 2).clamp(MIN_WATCHDOG / 2, MAX_PING))
}

/// Refuses a `WatchdogSec` below [`MIN_WATCHDOG`], naming the setting, before anything starts.
pub fn check_watchdog_period() -> Result<(), String> {
    check_watchdog_from(std::env::var("WATCHDOG_USEC").ok().as_deref())
}

fn check_watchdog_from(usec: Option<&str>) -> Result<(), String> {
    match usec.and_then(|u| u.trim().parse::<u64>().ok()) {
        Some(u) if u > 0 && Duration::from_micros(u) < MIN_WATCHDOG => Err(format!(
            "WatchdogSec={u}us in the unit is shorter than the {} ms the agent needs; use 1s or more (the packaged unit has 20)",
            MIN_WATCHDOG.as_millis()
        )),
        _ => Ok(()),
    }
}

/// The one-line status systemd shows (`systemctl status roomagent`): what a person standing
/// in front of the device would want to know.
pub fn status_line(s: &AgentState) -> String {
    let user = |id: Option<crate::core::UserId>| {
        id.map_or_else(|| "someone".to_string(), |id| format!("user {id}"))
    };
    let mut line = match s.call {
        CallPhase::Idle => match (s.registered, &s.signaling_error) {
            (true, _) => match (s.backend, s.user_id) {
                ("rtm", Some(id)) => format!("authenticated to the RTM gate as uid {id}, idle"),
                (_, Some(id)) => format!("registered as user {id}, idle"),
                (_, None) => "registered, idle".into(),
            },
            (false, Some(e)) => format!("not registered: {e}"),
            (false, None) => "connecting to the signaling server".into(),
        },
        CallPhase::Ringing => format!("ringing: call from {}", user(s.peer)),
        CallPhase::Answering => format!("answering {}", user(s.peer)),
        CallPhase::Dialing => format!("calling {}", user(s.peer)),
        CallPhase::Connecting => match s.room_id {
            Some(room) => format!("entering room {room}"),
            None => "entering the room".into(),
        },
        CallPhase::InCall => {
            let names: Vec<String> = s
                .members
                .iter()
                .map(|m| m.name.clone().unwrap_or_else(|| m.client_id.to_string()))
                .collect();
            let with = if names.is_empty() {
                match s.peer {
                    Some(id) => format!("user {id}"),
                    None => "nobody yet".into(),
                }
            } else {
                names.join(", ")
            };
            match s.room_id {
                Some(room) => format!("in call with {with} (room {room})"),
                None => format!("in call with {with}"),
            }
        }
    };
    if s.busy() {
        if s.mic_muted {
            line.push_str("; mic muted");
        }
        if !s.camera_on {
            line.push_str("; camera off");
        }
        if !s.registered {
            line.push_str("; signaling reconnecting");
        }
    }
    // One line: a name from the far end must not start a new notification key.
    line.replace(['\n', '\r'], " ")
}

/// The `STATUS=` after a reload.
pub fn reload_status(result: &Result<ReloadReport, String>) -> String {
    let list = |v: &[String]| {
        if v.is_empty() {
            "nothing".to_string()
        } else {
            v.join(", ")
        }
    };
    let text = match result {
        Ok(r) if r.needs_restart.is_empty() => {
            format!("configuration reloaded: applied {}", list(&r.applied))
        }
        Ok(r) => format!(
            "configuration reloaded: applied {}; needs a restart: {}",
            list(&r.applied),
            list(&r.needs_restart)
        ),
        Err(e) => format!("configuration reload refused, still running the old one: {e}"),
    };
    text.replace(['\n', '\r'], " ")
}

/// Sends through an optional notifier, logging (once per kind of message) what fails.
#[derive(Clone)]
struct Notify(Option<std::sync::Arc<Notifier>>);

impl Notify {
    fn send(&self, message: &str) {
        if let Some(n) = &self.0
            && let Err(e) = n.send(message)
        {
            warn!(error = %e, "cannot notify the service manager");
        }
    }
}

/// The signals a service stops and reloads on.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

/// How one agent ended.
enum Ended {
    /// Stop the service with this result.
    Stop(anyhow::Result<()>),
    /// A not-configured agent's file was completed: run a fresh agent from it.
    Restart(Box<Config>),
}

/// Runs the agent as a service until SIGTERM or SIGINT: readiness, status, watchdog, reload on
/// SIGHUP, and a stop within [`STOP_BUDGET`].
///
/// An agent started from a file that names no signaling server (a fresh install) is ready at
/// once with the status "not configured: edit <file>". When a reload finds the file completed,
/// that agent is stopped and a fresh one started from the new file in the same process (the
/// PID systemd watches stays), which then registers like after a start.
pub async fn serve(mut config: Config) -> anyhow::Result<()> {
    let mut signals = Signals {
        term: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
        int: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
        hup: signal(SignalKind::hangup()).context("cannot handle SIGHUP")?,
    };
    let notify = Notify(match Notifier::from_env() {
        Ok(n) => n.map(std::sync::Arc::new),
        Err(e) => {
            warn!(error = %e, "NOTIFY_SOCKET is unusable; not reporting to the service manager");
            None
        }
    });
    if let Err(e) = check_watchdog_period() {
        notify.send(&format!("STATUS=not started: {e}"));
        anyhow::bail!(e);
    }
    let mut restarted = false;
    loop {
        match serve_agent(config, &mut signals, notify.clone(), restarted).await {
            Ended::Stop(result) => return result,
            Ended::Restart(new) => {
                config = *new;
                restarted = true;
            }
        }
    }
}

/// Runs one agent until it is stopped or replaced; `restarted`: it replaces a
/// not-configured one during a reload (which its READY=1 ends).
async fn serve_agent(
    config: Config,
    signals: &mut Signals,
    notify: Notify,
    restarted: bool,
) -> Ended {
    let watchdog = watchdog_interval();
    let ready_timeout = config.service.ready_timeout();
    let not_configured = config
        .not_configured
        .then(|| crate::config::not_configured_status(config.source.as_deref()));
    let source = config.source.clone();

    let token = CancellationToken::new();
    let (started, fut) = match daemon::start(config, token.clone()).await {
        Ok(started) => started,
        Err(e) => {
            notify.send(&format!("STATUS=failed to start: {e:#}").replace('\n', " "));
            return Ended::Stop(Err(e));
        }
    };
    if let Some(rs) = &started.room_server {
        info!(page = %rs.page_url(), "development room server: open the page to call this device");
    }
    let mut agent = tokio::spawn(fut);
    let mut service = Service {
        notify,
        handle: started.handle,
        ready: false,
        last_status: String::new(),
        ready_timeout,
        watchdog,
        not_configured,
        source,
    };
    if let Some(line) = service.not_configured.clone() {
        service.ready = true;
        service.status("READY=1\n", line);
    } else if restarted {
        service.ready = true;
        service.status(
            "READY=1\n",
            "configuration complete: starting signaling".into(),
        );
    }
    let mut state = service.handle.state();
    let ready_at = tokio::time::sleep(ready_timeout);
    tokio::pin!(ready_at);
    let mut ping = watchdog.map(|every| {
        info!(every_ms = every.as_millis() as u64, "systemd watchdog on");
        let mut t = tokio::time::interval(every);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    // The first state may already be the registered one.
    state.mark_changed();

    let mut replacement = None;
    loop {
        tokio::select! {
            _ = signals.term.recv() => { info!("SIGTERM: stopping"); break; }
            _ = signals.int.recv() => { info!("SIGINT: stopping"); break; }
            _ = signals.hup.recv() => if let Some(new) = service.reload().await {
                replacement = Some(new);
                break;
            },
            changed = state.changed() => {
                if changed.is_err() {
                    break;
                }
                let s = state.borrow_and_update().clone();
                service.state_changed(&s);
            }
            _ = &mut ready_at, if !service.ready => service.ready_anyway(&state.borrow()),
            _ = crate::wait::tick_or_pending(&mut ping) => service.watchdog().await,
            result = &mut agent => {
                // The agent ended without being asked to: report it and let systemd restart us.
                let result = result.context("the agent task panicked").and_then(|r| r);
                if let Err(e) = &result
                    && let Some(asked) = e.downcast_ref::<daemon::RestartRequested>()
                {
                    // Asked to restart: a clean stop whose exit status makes systemd start
                    // the agent again.
                    service.notify.send(&format!("STOPPING=1\nSTATUS={asked}"));
                    return Ended::Stop(result);
                }
                let why = match &result {
                    Ok(()) => "the agent stopped by itself".to_string(),
                    Err(e) => format!("{e:#}"),
                };
                service.notify.send(&format!("STATUS=stopped: {why}").replace('\n', " "));
                return Ended::Stop(Err(anyhow::anyhow!("{why}")));
            }
        }
    }
    let notify = service.notify;
    if replacement.is_none() {
        notify.send("STOPPING=1\nSTATUS=stopping: leaving the call and going offline");
    }
    token.cancel();
    let stopped = match tokio::time::timeout(STOP_BUDGET, &mut agent).await {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => Err(anyhow::anyhow!("the agent task panicked: {e}")),
        Err(_) => {
            error!(
                budget_ms = STOP_BUDGET.as_millis() as u64,
                "the agent did not stop in time; exiting anyway (the call was already left)"
            );
            agent.abort();
            Ok(())
        }
    };
    match (replacement, stopped) {
        (Some(new), Ok(())) => Ended::Restart(new),
        (_, stopped) => Ended::Stop(stopped),
    }
}

/// The service's side of the conversation with the service manager.
struct Service {
    notify: Notify,
    handle: crate::handle::AgentHandle,
    ready: bool,
    last_status: String,
    ready_timeout: Duration,
    watchdog: Option<Duration>,
    /// The status of an agent whose file names no signaling server yet.
    not_configured: Option<String>,
    /// The file the agent runs from.
    source: Option<std::path::PathBuf>,
}

impl Service {
    fn status(&mut self, prefix: &str, line: String) {
        self.notify.send(&format!("{prefix}STATUS={line}"));
        self.last_status = line;
    }

    /// SIGHUP: reload, say what changed. Returns the completed file of a not-configured
    /// agent, which a fresh agent then runs.
    async fn reload(&mut self) -> Option<Box<Config>> {
        self.notify
            .send("RELOADING=1\nSTATUS=reloading the configuration");
        if self.not_configured.is_some()
            && let Some(path) = &self.source
            && let Ok(new) = crate::config::load_running(path)
            && !new.not_configured
        {
            info!(
                "the configuration names a signaling server now: starting the agent afresh with it"
            );
            return Some(Box::new(new));
        }
        let result = self.handle.reload().await;
        match &result {
            Ok(r) if !r.needs_restart.is_empty() => warn!(
                needs_restart = ?r.needs_restart,
                "these changes take effect only after `systemctl restart roomagent`"
            ),
            Ok(_) => {}
            Err(e) => warn!(error = %e, "configuration reload refused"),
        }
        let line = match &self.not_configured {
            Some(nc) => format!("{nc} ({})", reload_status(&result)),
            None => reload_status(&result),
        };
        self.status("READY=1\n", line);
        None
    }

    /// READY once registered; STATUS whenever the line a person reads changes.
    fn state_changed(&mut self, s: &AgentState) {
        let line = match &self.not_configured {
            Some(line) if !s.busy() => line.clone(),
            _ => status_line(s),
        };
        if !self.ready && s.registered {
            self.ready = true;
            self.status("READY=1\n", line);
        } else if self.ready && line != self.last_status {
            self.status("", line);
        }
    }

    /// Not registered in time: ready anyway (the service runs), saying why.
    fn ready_anyway(&mut self, s: &AgentState) {
        self.ready = true;
        let why = s
            .signaling_error
            .clone()
            .unwrap_or_else(|| "no answer from the signaling server yet".into());
        let line = format!(
            "not registered after {} s: {why}; retrying in the background",
            self.ready_timeout.as_secs()
        )
        .replace(['\n', '\r'], " ");
        warn!(status = %line, "reporting ready without registration");
        self.status("READY=1\n", line);
    }

    /// The watchdog ping, only while the core loop and the media engine answer.
    async fn watchdog(&self) {
        let limit = self.watchdog.unwrap_or(Duration::from_secs(1));
        match tokio::time::timeout(limit, self.handle.ping()).await {
            Ok(Ok(())) => self.notify.send("WATCHDOG=1"),
            _ => error!(
                "the core loop or the media engine did not answer within {limit:?}; withholding the watchdog ping"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{ClientId, RoomId, UserId};
    use crate::core::{MediaState, MemberState};

    fn idle() -> AgentState {
        AgentState {
            backend: "rtcpeer",
            audio_forbidden: false,
            video_forbidden: false,
            registered: true,
            signaling_error: None,
            user_id: Some(UserId(1001)),
            call: CallPhase::Idle,
            peer: None,
            room_id: None,
            members: Vec::new(),
            mic_muted: false,
            muted_by_host: false,
            camera_on: true,
            sharing: false,
            volume: 80,
            devices: Default::default(),
        }
    }

    #[test]
    fn watchdog_runs_at_half_the_period_and_only_for_our_pid() {
        assert_eq!(
            watchdog_interval_from(Some("20000000"), None, 7),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            watchdog_interval_from(Some("20000000"), Some("7"), 7),
            Some(Duration::from_secs(10))
        );
        assert_eq!(watchdog_interval_from(Some("20000000"), Some("8"), 7), None);
        assert_eq!(watchdog_interval_from(Some("0"), None, 7), None);
        assert_eq!(watchdog_interval_from(Some("soon"), None, 7), None);
        assert_eq!(watchdog_interval_from(None, None, 7), None);
    }

    #[test]
    fn a_watchdog_period_too_short_to_keep_is_refused_and_a_huge_one_is_capped() {
        for tiny in ["1", "2", "99999"] {
            let e = check_watchdog_from(Some(tiny)).unwrap_err();
            assert!(e.contains(&format!("WatchdogSec={tiny}us")), "{e}");
            // Even unchecked, the ping period is never zero (tokio would panic).
            assert_eq!(
                watchdog_interval_from(Some(tiny), None, 7),
                Some(Duration::from_millis(50))
            );
        }
        for fine in [
            None,
            Some("0"),
            Some("100000"),
            Some("400000"),
            Some("soon"),
        ] {
            assert_eq!(check_watchdog_from(fine), Ok(()), "{fine:?}");
        }
        assert_eq!(
            watchdog_interval_from(Some("100000"), None, 7),
            Some(Duration::from_millis(50))
        );
        assert_eq!(
            watchdog_interval_from(Some(&u64::MAX.to_string()), None, 7),
            Some(Duration::from_secs(3600))
        );
    }

    #[test]
    fn status_says_what_a_person_wants_to_know() {
        let mut s = idle();
        assert_eq!(status_line(&s), "registered as user 1001, idle");
        let rtm = AgentState {
            backend: "rtm",
            ..s.clone()
        };
        assert_eq!(
            status_line(&rtm),
            "authenticated to the RTM gate as uid 1001, idle"
        );

        s.registered = false;
        s.signaling_error = Some("login refused: wrong password".into());
        assert_eq!(
            status_line(&s),
            "not registered: login refused: wrong password"
        );
        s.signaling_error = None;
        assert_eq!(status_line(&s), "connecting to the signaling server");

        s.registered = true;
        s.call = CallPhase::Ringing;
        s.peer = Some(UserId(2001));
        assert_eq!(status_line(&s), "ringing: call from user 2001");

        s.call = CallPhase::InCall;
        s.room_id = Some(RoomId(77));
        s.members = vec![MemberState {
            client_id: ClientId(2001),
            name: Some("Alice\nSTATUS=evil".into()),
            muted: false,
            host: true,
            media: MediaState::Connected,
            video_in: true,
        }];
        s.mic_muted = true;
        assert_eq!(
            status_line(&s),
            "in call with Alice STATUS=evil (room 77); mic muted"
        );
    }

    #[test]
    fn reload_status_names_what_was_applied_and_what_waits() {
        let ok = Ok(ReloadReport {
            applied: vec!["answer".into()],
            needs_restart: vec!["media".into(), "mqtt".into()],
        });
        assert_eq!(
            reload_status(&ok),
            "configuration reloaded: applied answer; needs a restart: media, mqtt"
        );
        let bad = Err("config.toml:3:8: answer.mode: unknown variant `sometimes`".to_string());
        assert!(reload_status(&bad).starts_with("configuration reload refused"));
    }

    #[test]
    fn notifications_reach_the_socket_as_one_datagram() {
        let dir = std::env::temp_dir().join(format!("roomagent-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::connect(path.to_str().unwrap()).unwrap();
        n.send("READY=1\nSTATUS=registered").unwrap();
        let mut buf = [0u8; 256];
        let len = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1\nSTATUS=registered");

        let abs = format!("roomagent-test-{}", std::process::id());
        let listener =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(abs.as_bytes()).unwrap())
                .unwrap();
        Notifier::connect(&format!("@{abs}"))
            .unwrap()
            .send("WATCHDOG=1")
            .unwrap();
        let len = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"WATCHDOG=1");

        assert!(Notifier::connect("relative/path").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
