//! The orchestrator: wires the adapters to the core. One `select!` loop, one place where time
//! enters.
//!
//! [`start`] returns a [`StartUp`] (the [`AgentHandle`] port plus what started beside the
//! agent) and the future that runs the agent, so integration tests start whole agents
//! in-process. [`run`] runs one until a shutdown future completes; `systemd::serve` wraps
//! [`start`] for `roomagent run` (signals, readiness, watchdog, reload).

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use futures_util::FutureExt;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

pub use crate::handle::{AgentHandle, HandleError, ReloadReport, Restarting};

use crate::command::{Scope, When};
use crate::config::Config;
use crate::core::{Action, Agent, AgentState, CallEvent, Command, MediaEvent};
use crate::handle::Request;
use crate::media::{self, MediaHandle, MediaOptions};
use crate::room_server::{self, RoomServerHandle};
use crate::signaling::Outbox;

/// What [`start`] brings up besides the core: the control port, and what a person or a test
/// may want to look at. None of it is needed to drive the agent.
pub struct StartUp {
    /// The control port.
    pub handle: AgentHandle,
    /// The embedded room server, when `[room_server] enabled = true`.
    pub room_server: Option<RoomServerHandle>,
    /// The MQTT broker link, when `[mqtt] enabled = true`.
    pub mqtt_link: Option<watch::Receiver<crate::mqtt::LinkStatus>>,
    /// The simulated GPIO board, when `[gpio] backend = "sim"`.
    pub gpio_board: Option<crate::gpio::SimBoard>,
    /// Why GPIO is not working, when it was configured but could not be opened (the agent
    /// runs on without buttons and LEDs).
    pub gpio_error: Option<String>,
}

/// The agent stopped because it was asked to restart: `roomagent run` exits with
/// [`RESTART_EXIT`], which the unit tells systemd to count as a success and restart after.
#[derive(Debug, thiserror::Error)]
#[error("restarting as asked ({0})")]
pub struct RestartRequested(pub String);

/// `roomagent run`'s exit status for a requested restart (`EX_TEMPFAIL`).
pub const RESTART_EXIT: u8 = 75;

/// How long shutdown may take in all: inside the service's `TimeoutStopSec=10`, with room
/// for the process to exit.
pub const SHUTDOWN_BUDGET: Duration = Duration::from_millis(8_500);

/// Each part's time to stop: together within [`SHUTDOWN_BUDGET`].
const MQTT_BUDGET: Duration = Duration::from_secs(2);
const GPIO_BUDGET: Duration = Duration::from_millis(500);
const SIGNALING_BUDGET: Duration = Duration::from_secs(2);
const MEDIA_BUDGET: Duration = Duration::from_secs(3);
const ROOM_SERVER_BUDGET: Duration = Duration::from_secs(1);

/// One part to stop, in order, within its budget.
struct Part {
    name: &'static str,
    stop: Box<dyn FnOnce() + Send>,
    task: JoinHandle<()>,
    budget: Duration,
}

/// The agent's parts, stopped in the order they were added (control surfaces first so the
/// dashboard sees the final state, signaling after the core's last message, media and the
/// room server last).
#[derive(Default)]
struct Shutdown {
    parts: Vec<Part>,
    /// Where supervised parts report that they ended without being asked to.
    died: Option<mpsc::UnboundedSender<&'static str>>,
}

impl Shutdown {
    /// A part list whose supervised parts report on the returned receiver.
    fn supervised() -> (Shutdown, mpsc::UnboundedReceiver<&'static str>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let parts = Shutdown {
            parts: Vec::new(),
            died: Some(tx),
        };
        (parts, rx)
    }

    /// Runs `fut` as a part stopped by `token`; if it ends (or panics) before the token is
    /// cancelled, its name is reported so the core loop can stop the agent with an error and
    /// systemd restart it.
    fn supervise(
        &mut self,
        name: &'static str,
        budget: Duration,
        token: CancellationToken,
        fut: impl Future<Output = ()> + Send + 'static,
    ) {
        let died = self.died.clone();
        let stopped = token.clone();
        let task = tokio::spawn(async move {
            let panicked = std::panic::AssertUnwindSafe(fut)
                .catch_unwind()
                .await
                .is_err();
            if !stopped.is_cancelled() {
                tracing::error!(part = name, panicked, "stopped unexpectedly");
                if let Some(died) = died {
                    let _ = died.send(name);
                }
            }
        });
        self.with_token(name, budget, token, task);
    }

    fn add(
        &mut self,
        name: &'static str,
        budget: Duration,
        stop: impl FnOnce() + Send + 'static,
        task: JoinHandle<()>,
    ) {
        self.parts.push(Part {
            name,
            stop: Box::new(stop),
            task,
            budget,
        });
    }

    fn with_token(
        &mut self,
        name: &'static str,
        budget: Duration,
        token: CancellationToken,
        task: JoinHandle<()>,
    ) {
        self.add(name, budget, move || token.cancel(), task);
    }

    fn budget(&self) -> Duration {
        self.parts.iter().map(|p| p.budget).sum()
    }

    async fn run(self) {
        for part in self.parts {
            (part.stop)();
            if tokio::time::timeout(part.budget, part.task).await.is_err() {
                warn!(part = part.name, budget = ?part.budget, "did not stop within its shutdown budget; left behind");
            }
        }
    }
}

/// Starts the agent: the embedded room server (if enabled), the signaling backend, media,
/// MQTT, GPIO and the core loop. The returned future runs until `shutdown` is cancelled, then
/// leaves any call cleanly and stops every part within [`SHUTDOWN_BUDGET`].
pub async fn start(
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<(StartUp, impl Future<Output = anyhow::Result<()>>)> {
    // Stopped last, so it is added to the shutdown list at the end.
    let (room_server, room_task) = match start_room_server(&config).await? {
        Some((handle, task)) => (Some(handle), Some(task)),
        None => (None, None),
    };

    let (mut parts, died) = Shutdown::supervised();
    let signaling_stop = CancellationToken::new();
    let relay = (config.media.enabled && crate::signaling::carries_media(&config)).then(|| {
        crate::media::relay::Relay::for_bitrate(
            config.media.video_bitrate_kbps,
            config.media.audio_bitrate_kbps,
        )
    });
    let link = crate::signaling::start(&config, relay.clone(), signaling_stop.clone())
        .context("signaling configuration")?;
    let (signaling, sig_events) = (link.outbox, link.events);
    let sig_task = tokio::spawn(link.task);
    let (media, media_events, media_part) = start_media(&config, relay)?;

    let mut agent = Agent::new(config.core());
    let (state_tx, state_rx) = watch::channel(agent.state());
    let (events_tx, _) = broadcast::channel(256);
    let (cmd_tx, cmd_rx) = mpsc::channel(64);
    let handle = AgentHandle::new(cmd_tx, state_rx, events_tx.clone(), media.clone());

    let mqtt_link = start_mqtt(&config, &handle, &mut parts)?;
    let (gpio_board, gpio_error) = start_gpio(&config, &handle, &mut parts);
    parts.with_token("signaling", SIGNALING_BUDGET, signaling_stop, sig_task);
    if let Some((token, task)) = media_part {
        parts.with_token("media", MEDIA_BUDGET, token, task);
    }
    if let (Some(rs), Some(task)) = (room_server.clone(), room_task) {
        parts.add(
            "room server",
            ROOM_SERVER_BUDGET,
            move || rs.shutdown(),
            task,
        );
    }
    debug_assert!(parts.budget() <= SHUTDOWN_BUDGET);

    let outputs = Outputs {
        signaling,
        media,
        state: state_tx,
        events: events_tx,
    };
    outputs.drain(&mut agent);
    let fut = run_until_shutdown(
        agent,
        config,
        outputs,
        Inputs {
            sig_events,
            media_events,
            commands: cmd_rx,
            died,
        },
        shutdown,
        parts,
    );
    let started = StartUp {
        handle,
        room_server,
        mqtt_link,
        gpio_board,
        gpio_error,
    };
    Ok((started, fut))
}

async fn start_room_server(
    config: &Config,
) -> anyhow::Result<Option<(RoomServerHandle, JoinHandle<()>)>> {
    if !config.room_server.enabled {
        return Ok(None);
    }
    let (handle, fut) = room_server::bind(&config.room_server)
        .await
        .with_context(|| {
            format!(
                "cannot start the room server on {} (room_server.listen)",
                config.room_server.listen
            )
        })?;
    Ok(Some((handle, tokio::spawn(fut))))
}

type MediaStart = (
    Option<MediaHandle>,
    Option<mpsc::UnboundedReceiver<MediaEvent>>,
    Option<(CancellationToken, JoinHandle<()>)>,
);

fn start_media(
    config: &Config,
    relay: Option<crate::media::relay::Relay>,
) -> anyhow::Result<MediaStart> {
    if !config.media.enabled {
        info!("media is off ([media] enabled = false): calls carry no audio or video");
        return Ok((None, None, None));
    }
    let stop = CancellationToken::new();
    let (handle, events, task) = media::start(
        MediaOptions::from_config(config),
        relay,
        stop.clone(),
    )
    .context(
        "media engine (see [media] in the configuration; `roomagent devices` shows what was found)",
    )?;
    Ok((Some(handle), Some(events), Some((stop, tokio::spawn(task)))))
}

fn start_mqtt(
    config: &Config,
    handle: &AgentHandle,
    parts: &mut Shutdown,
) -> anyhow::Result<Option<watch::Receiver<crate::mqtt::LinkStatus>>> {
    if !config.mqtt.enabled {
        return Ok(None);
    }
    let opts = crate::mqtt::Options::from_config(config).context("MQTT configuration")?;
    info!(broker = %format!("{}:{}", opts.host, opts.port), "MQTT management on");
    if opts.topics.id.len() > crate::mqtt::CLIENT_ID_PORTABLE {
        warn!(
            id = %opts.topics.id,
            "the device id is the MQTT client id and is longer than 23 bytes: brokers that keep              to MQTT 3.1's limit (EMQX Cloud Serverless) refuse it; a shorter [device] id works everywhere"
        );
    }
    let stop = CancellationToken::new();
    let (status, fut) = crate::mqtt::start(opts, handle.clone(), stop.clone());
    parts.supervise("mqtt", MQTT_BUDGET, stop, fut);
    Ok(Some(status))
}

fn start_gpio(
    config: &Config,
    handle: &AgentHandle,
    parts: &mut Shutdown,
) -> (Option<crate::gpio::SimBoard>, Option<String>) {
    if !config.gpio.enabled {
        return (None, None);
    }
    let stop = CancellationToken::new();
    let opts = crate::gpio::Options::from_config(config);
    match crate::gpio::start(opts, handle.clone(), stop.clone()) {
        Ok((board, fut)) => {
            parts.supervise("gpio", GPIO_BUDGET, stop, fut);
            (board, None)
        }
        Err(e) => {
            tracing::error!(error = %e, "GPIO unavailable; running without buttons and LEDs");
            (None, Some(e.to_string()))
        }
    }
}

#[allow(clippy::too_many_arguments)] // the loop's inputs and outputs, passed once
async fn run_until_shutdown(
    mut agent: Agent,
    mut config: Config,
    outputs: Outputs,
    inputs: Inputs,
    shutdown: CancellationToken,
    parts: Shutdown,
) -> anyhow::Result<()> {
    let ended = run_loop(&mut agent, &mut config, &outputs, inputs, &shutdown).await;
    // Leave the room (or decline a ringing call) before the signaling link goes away.
    if agent.state().busy() {
        info!("shutting down: ending the current call");
        let _ = agent.command(Instant::now().into_std(), Command::Hangup);
        outputs.drain(&mut agent);
    }
    // Let the dashboard see the final state before MQTT says offline.
    tokio::time::sleep(Duration::from_millis(100)).await;
    parts.run().await;
    info!("agent stopped");
    ended
}

/// Runs the agent until `shutdown` completes, then leaves any call, unregisters and returns.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let token = CancellationToken::new();
    let (started, fut) = start(config, token.clone()).await?;
    if let Some(rs) = &started.room_server {
        info!(page = %rs.page_url(), "development room server: open the page to call this device");
    }
    let agent = tokio::spawn(fut);
    shutdown.await;
    token.cancel();
    agent.await.context("agent task panicked")?
}

/// What the core loop listens to.
struct Inputs {
    sig_events: mpsc::Receiver<crate::core::SignalingEvent>,
    media_events: Option<mpsc::UnboundedReceiver<MediaEvent>>,
    commands: mpsc::Receiver<Request>,
    /// Supervised parts that ended without being asked to.
    died: mpsc::UnboundedReceiver<&'static str>,
}

/// Where actions go.
struct Outputs {
    signaling: Outbox,
    media: Option<MediaHandle>,
    state: watch::Sender<AgentState>,
    events: broadcast::Sender<CallEvent>,
}

impl Outputs {
    fn drain(&self, agent: &mut Agent) {
        while let Some(action) = agent.poll_action() {
            match action {
                Action::Signal(out) => {
                    self.signaling.send(out);
                }
                Action::Media(cmd) => match &self.media {
                    Some(m) => m.send(cmd),
                    None => debug!(?cmd, "media is off"),
                },
                Action::State(state) => {
                    self.state.send_replace(state);
                }
                Action::Event(event) => {
                    let _ = self.events.send(event);
                }
            }
        }
    }
}

/// Re-reads the configuration and applies what can change live.
fn reload(agent: &mut Agent, config: &mut Config) -> Result<ReloadReport, String> {
    let Some(path) = config.source.clone() else {
        return Err("this agent was not started from a configuration file".into());
    };
    let new = crate::config::load_running(&path).map_err(|e| e.to_string())?;
    let mut report = ReloadReport {
        applied: Vec::new(),
        needs_restart: Vec::new(),
    };
    if new.answer != config.answer || new.device.name != config.device.name {
        agent.reconfigure(new.core());
        report.applied.push("answer".into());
        if new.device.name != config.device.name {
            report.applied.push("device.name".into());
        }
    }
    let mut restart = |name: &str, changed: bool| {
        if changed {
            report.needs_restart.push(name.into());
        }
    };
    restart("device.id", new.device.id != config.device.id);
    restart("signaling", new.signaling != config.signaling);
    restart("media", new.media != config.media);
    restart("mqtt", new.mqtt != config.mqtt);
    restart("room_server", new.room_server != config.room_server);
    restart("log", new.log != config.log);
    restart("health", new.health != config.health);
    // What needs a restart keeps its running value until then.
    config.answer = new.answer;
    config.device.name = new.device.name;
    info!(applied = ?report.applied, needs_restart = ?report.needs_restart, "configuration reloaded");
    Ok(report)
}

async fn run_loop(
    agent: &mut Agent,
    config: &mut Config,
    out: &Outputs,
    inputs: Inputs,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let Inputs {
        mut sig_events,
        mut media_events,
        mut commands,
        mut died,
    } = inputs;
    let mut commands_open = true;
    let mut pending_restart: Option<(Scope, String)> = None;
    loop {
        let deadline = agent.next_timeout().map(Instant::from_std);
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            ev = sig_events.recv() => match ev {
                Some(ev) => agent.handle_signaling(Instant::now().into_std(), ev),
                None => {
                    tracing::error!("the signaling link stopped unexpectedly; the agent restarts");
                    return Err(anyhow::anyhow!("the signaling link stopped unexpectedly"));
                }
            },
            Some(name) = died.recv() => {
                let message = format!("the {name} part stopped unexpectedly; the agent restarts");
                let _ = out.events.send(CallEvent::Error { message });
                return Err(anyhow::anyhow!("the {name} part stopped unexpectedly"));
            },
            ev = crate::wait::recv_or_pending(&mut media_events) => match ev {
                Some(ev) => agent.handle_media(Instant::now().into_std(), ev),
                None => {
                    // The engine task ended while the agent runs: it panicked. Say so to the
                    // dashboard, then stop with an error so systemd restarts the agent with a
                    // fresh engine (a room without media is not a working room).
                    let message = "the media engine stopped unexpectedly; the agent restarts".to_string();
                    tracing::error!("{message}");
                    agent.handle_media(Instant::now().into_std(), MediaEvent::EngineError { message });
                    out.drain(agent);
                    return Err(anyhow::anyhow!("the media engine stopped unexpectedly"));
                }
            },
            req = commands.recv(), if commands_open => match req {
                Some(Request::Command(cmd, reply)) => {
                    let result = agent.command(Instant::now().into_std(), cmd);
                    let _ = reply.send(result);
                }
                Some(Request::Reload(reply)) => {
                    let result = reload(agent, config);
                    if let Err(e) = &result {
                        warn!(error = %e, "configuration reload refused; keeping the running configuration");
                    }
                    let _ = reply.send(result);
                }
                Some(Request::Ping(reply)) => {
                    let _ = reply.send(());
                }
                Some(Request::Restart { scope, when, reason, reply }) => {
                    if agent.state().busy() && when == When::Idle {
                        info!(?scope, %reason, "restart queued until the call ends");
                        pending_restart = Some((scope, reason));
                        let _ = reply.send(Ok(Restarting::Queued));
                    } else {
                        match restart(scope, reason, config) {
                            Ok(exit) => {
                                let _ = reply.send(Ok(Restarting::Now));
                                if let Some(exit) = exit {
                                    return Err(exit.into());
                                }
                            }
                            Err(e) => {
                                let _ = reply.send(Err(e));
                            }
                        }
                    }
                }
                None => commands_open = false,
            },
            _ = crate::wait::sleep_until(deadline) => agent.handle_timeout(Instant::now().into_std()),
        }
        out.drain(agent);
        if pending_restart.is_some() && !agent.state().busy() {
            let (scope, reason) = pending_restart.take().expect("checked");
            info!(?scope, "the call ended: restarting as asked");
            match restart(scope, reason, config) {
                Ok(Some(exit)) => return Err(exit.into()),
                Ok(None) => {}
                Err(message) => {
                    warn!(%message, "the queued restart failed");
                    let _ = out.events.send(CallEvent::Error { message });
                }
            }
        }
    }
}

/// Carries out a restart: the agent's ends the core loop with [`RestartRequested`]; the
/// system's leaves a reboot request for the privileged helper and runs on until the reboot
/// stops it.
fn restart(
    scope: Scope,
    reason: String,
    config: &Config,
) -> Result<Option<RestartRequested>, String> {
    match scope {
        Scope::Agent => {
            info!(%reason, "restarting the agent as asked");
            Ok(Some(RestartRequested(reason)))
        }
        Scope::System => {
            let dir = config.service.requests_dir().ok_or_else(|| {
                "a system restart needs the privileged helper: run the agent as the roomagent \
                 service (the package's roomagent-privileged.path) or set [service] requests_dir"
                    .to_string()
            })?;
            let file = crate::privileged::request(
                &dir,
                &crate::privileged::Action::Reboot {
                    reason: reason.clone(),
                },
                crate::mqtt::unix_ms(),
            )?;
            info!(%reason, request = %file.display(), "reboot requested from the privileged helper");
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_budget_together_fits_inside_the_services_stop_timeout() {
        let all = MQTT_BUDGET + GPIO_BUDGET + SIGNALING_BUDGET + MEDIA_BUDGET + ROOM_SERVER_BUDGET;
        assert!(all <= SHUTDOWN_BUDGET, "{all:?}");
        let unit = include_str!("../systemd/roomagent.service");
        let stop: u64 = unit
            .lines()
            .find_map(|l| l.strip_prefix("TimeoutStopSec="))
            .and_then(|v| v.trim().parse().ok())
            .expect("the unit sets TimeoutStopSec");
        assert!(SHUTDOWN_BUDGET + Duration::from_millis(500) < Duration::from_secs(stop));
    }

    #[tokio::test]
    async fn a_part_that_dies_is_reported_and_one_that_was_stopped_is_not() {
        let (mut parts, mut died) = Shutdown::supervised();
        parts.supervise(
            "boom",
            Duration::from_secs(1),
            CancellationToken::new(),
            async { panic!("injected") },
        );
        parts.supervise(
            "quits",
            Duration::from_secs(1),
            CancellationToken::new(),
            async {},
        );
        let mut names = vec![died.recv().await.unwrap(), died.recv().await.unwrap()];
        names.sort();
        assert_eq!(names, vec!["boom", "quits"]);
        let token = CancellationToken::new();
        let stopped = token.clone();
        parts.supervise("polite", Duration::from_secs(1), token, async move {
            stopped.cancelled().await
        });
        parts.run().await;
        assert!(
            died.try_recv().is_err(),
            "a part stopped on purpose is not reported"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_part_that_hangs_is_left_behind_after_its_budget_and_the_rest_still_stop() {
        let mut parts = Shutdown::default();
        let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let hung = tokio::spawn(std::future::pending::<()>());
        let o = order.clone();
        parts.add(
            "hangs",
            Duration::from_secs(1),
            move || o.lock().unwrap().push("hangs"),
            hung,
        );
        let token = CancellationToken::new();
        let t = token.clone();
        let o = order.clone();
        let polite = tokio::spawn(async move {
            t.cancelled().await;
            o.lock().unwrap().push("polite stopped");
        });
        parts.with_token("polite", Duration::from_secs(1), token, polite);
        let started = Instant::now();
        parts.run().await;
        assert_eq!(*order.lock().unwrap(), vec!["hangs", "polite stopped"]);
        assert!(
            started.elapsed() < Duration::from_millis(1100),
            "{:?}",
            started.elapsed()
        );
    }
}
