//! The orchestrator: wires the adapters to the core. One `select!` loop, one place where time
//! enters.
//!
//! [`start`] returns an [`AgentHandle`] (commands in; state and events out) and the future
//! that runs the agent, so integration tests start whole agents in-process. [`run`] runs one
//! until a shutdown future completes; [`crate::systemd::serve`] wraps [`start`] for
//! `roomagent run` (signals, readiness, watchdog, reload).

use std::future::Future;

use anyhow::Context;
use thiserror::Error;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::core::{Action, Agent, AgentState, CallEvent, Command, CommandError, MediaEvent};
use crate::media::{self, EngineInfo, MediaHandle, MediaOptions, MediaStats};
use crate::room_server::{self, RoomServerHandle};
use crate::signaling::Outbox;

/// Why a command sent through the handle did not run.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HandleError {
    /// The core refused it.
    #[error(transparent)]
    Refused(#[from] CommandError),
    /// The agent is shutting down.
    #[error("the agent is not running")]
    Stopped,
}

/// What a reload changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadReport {
    /// Applied immediately.
    pub applied: Vec<String>,
    /// Changed, but only a restart applies them.
    pub needs_restart: Vec<String>,
}

enum Request {
    Command(Command, oneshot::Sender<Result<(), CommandError>>),
    Reload(oneshot::Sender<Result<ReloadReport, String>>),
    Ping(oneshot::Sender<()>),
}

/// Talks to a running agent. Cheap to clone.
#[derive(Clone)]
pub struct AgentHandle {
    commands: mpsc::Sender<Request>,
    state: watch::Receiver<AgentState>,
    events: broadcast::Sender<CallEvent>,
    room_server: Option<RoomServerHandle>,
    media: Option<MediaHandle>,
    mqtt: Option<watch::Receiver<crate::mqtt::LinkStatus>>,
    gpio_board: Option<crate::gpio::SimBoard>,
    gpio_error: Option<String>,
}

impl AgentHandle {
    /// Runs a command and reports whether the core accepted it.
    pub async fn command(&self, command: Command) -> Result<(), HandleError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Request::Command(command, tx))
            .await
            .map_err(|_| HandleError::Stopped)?;
        Ok(rx.await.map_err(|_| HandleError::Stopped)??)
    }

    /// Re-reads the configuration file and applies what can change while running (the
    /// answer policy, names, timeouts); reports what needs a restart. An invalid file changes
    /// nothing and the error says why.
    pub async fn reload(&self) -> Result<ReloadReport, String> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Request::Reload(tx))
            .await
            .map_err(|_| "the agent is not running".to_string())?;
        rx.await
            .map_err(|_| "the agent is not running".to_string())?
    }

    /// Answers once the core loop has taken a request off its queue: proof that it is alive
    /// and not wedged (what the systemd watchdog ping is made of).
    pub async fn ping(&self) -> Result<(), HandleError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Request::Ping(tx))
            .await
            .map_err(|_| HandleError::Stopped)?;
        rx.await.map_err(|_| HandleError::Stopped)
    }

    /// The reported state, updated on every change.
    pub fn state(&self) -> watch::Receiver<AgentState> {
        self.state.clone()
    }

    /// Call lifecycle events from now on.
    pub fn events(&self) -> broadcast::Receiver<CallEvent> {
        self.events.subscribe()
    }

    /// The embedded room server, when `[room_server] enabled = true`.
    pub fn room_server(&self) -> Option<&RoomServerHandle> {
        self.room_server.as_ref()
    }

    /// Live media statistics (empty when media is off or no call runs).
    pub fn media_stats(&self) -> Option<watch::Receiver<MediaStats>> {
        self.media.as_ref().map(MediaHandle::stats)
    }

    /// The MQTT broker link, when `[mqtt] enabled = true`.
    pub fn mqtt_status(&self) -> Option<watch::Receiver<crate::mqtt::LinkStatus>> {
        self.mqtt.clone()
    }

    /// The simulated GPIO board, when `[gpio] backend = "sim"`.
    pub fn gpio_board(&self) -> Option<&crate::gpio::SimBoard> {
        self.gpio_board.as_ref()
    }

    /// Why GPIO is not working, when it was configured but could not be opened (the agent
    /// runs on without buttons and LEDs).
    pub fn gpio_error(&self) -> Option<&str> {
        self.gpio_error.as_deref()
    }

    /// The media profile and devices in use, when media is on.
    pub fn media_info(&self) -> Option<&EngineInfo> {
        self.media.as_ref().map(MediaHandle::info)
    }
}

/// Starts the agent: the embedded room server (if enabled), the signaling adapter and the core
/// loop. The returned future runs until `shutdown` is cancelled, then leaves any call cleanly.
pub async fn start(
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<(AgentHandle, impl Future<Output = anyhow::Result<()>>)> {
    let mut room_server = None;
    let mut room_task = None;
    if config.room_server.enabled {
        let (handle, fut) = room_server::bind(&config.room_server)
            .await
            .with_context(|| {
                format!(
                    "cannot start the room server on {} (room_server.listen)",
                    config.room_server.listen
                )
            })?;
        room_task = Some(tokio::spawn(fut));
        room_server = Some(handle);
    }

    let signaling_stop = CancellationToken::new();
    let link = crate::signaling::start(&config, signaling_stop.clone())
        .context("signaling configuration")?;
    let (signaling, sig_events) = (link.outbox, link.events);
    let sig_task = tokio::spawn(link.task);

    let media_stop = CancellationToken::new();
    let (media, media_events, media_task) = if config.media.enabled {
        let (handle, events, task) = media::start(MediaOptions::from_config(&config), media_stop.clone())
            .context("media engine (see [media] in the configuration; `roomagent devices` shows what was found)")?;
        (Some(handle), Some(events), Some(tokio::spawn(task)))
    } else {
        info!("media is off ([media] enabled = false): calls carry no audio or video");
        (None, None, None)
    };

    let mut agent = Agent::new(config.core());
    let (state_tx, state_rx) = watch::channel(agent.state());
    let (events_tx, _) = broadcast::channel(256);
    let (cmd_tx, cmd_rx) = mpsc::channel(64);

    let handle = AgentHandle {
        commands: cmd_tx,
        state: state_rx,
        events: events_tx.clone(),
        room_server: room_server.clone(),
        media: media.clone(),
        mqtt: None,
        gpio_board: None,
        gpio_error: None,
    };

    let mqtt_stop = CancellationToken::new();
    let mut handle = handle;
    let mqtt_task = if config.mqtt.enabled {
        let opts = crate::mqtt::Options::from_config(&config).context("MQTT configuration")?;
        info!(broker = %format!("{}:{}", opts.host, opts.port), "MQTT management on");
        let (status, fut) = crate::mqtt::start(opts, handle.clone(), mqtt_stop.clone());
        handle.mqtt = Some(status);
        Some(tokio::spawn(fut))
    } else {
        None
    };

    let gpio_stop = CancellationToken::new();
    let gpio_task = if config.gpio.enabled {
        match crate::gpio::start(
            crate::gpio::Options::from_config(&config),
            handle.clone(),
            gpio_stop.clone(),
        ) {
            Ok((board, fut)) => {
                handle.gpio_board = board;
                Some(tokio::spawn(fut))
            }
            Err(e) => {
                tracing::error!(error = %e, "GPIO unavailable; running without buttons and LEDs");
                handle.gpio_error = Some(e.to_string());
                None
            }
        }
    } else {
        None
    };

    let outputs = Outputs {
        signaling,
        media,
        state: state_tx,
        events: events_tx,
    };
    outputs.drain(&mut agent);

    let mut config = config;
    let fut = async move {
        run_loop(
            &mut agent,
            &mut config,
            &outputs,
            sig_events,
            media_events,
            cmd_rx,
            &shutdown,
        )
        .await;
        // Leave the room (or decline a ringing call) before the signaling link goes away.
        if agent.state().busy() {
            info!("shutting down: ending the current call");
            let _ = agent.command(Instant::now().into_std(), Command::Hangup);
            outputs.drain(&mut agent);
        }
        // Let the dashboard see the final state, then say offline.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        mqtt_stop.cancel();
        if let Some(task) = mqtt_task {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(3), task).await;
        }
        gpio_stop.cancel();
        if let Some(task) = gpio_task {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), task).await;
        }
        signaling_stop.cancel();
        media_stop.cancel();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(3), sig_task).await;
        if let Some(task) = media_task {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), task).await;
        }
        if let Some(rs) = &room_server {
            rs.shutdown();
        }
        if let Some(task) = room_task {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(3), task).await;
        }
        info!("agent stopped");
        Ok(())
    };
    Ok((handle, fut))
}

/// Runs the agent until `shutdown` completes, then leaves any call, unregisters and returns.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let token = CancellationToken::new();
    let (handle, fut) = start(config, token.clone()).await?;
    if let Some(rs) = handle.room_server() {
        info!(page = %rs.page_url(), "development room server: open the page to call this device");
    }
    let agent = tokio::spawn(fut);
    shutdown.await;
    token.cancel();
    agent.await.context("agent task panicked")?
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
    let new = crate::config::load(&path).map_err(|e| e.to_string())?;
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
    mut sig_events: mpsc::Receiver<crate::core::SignalingEvent>,
    mut media_events: Option<mpsc::UnboundedReceiver<MediaEvent>>,
    mut commands: mpsc::Receiver<Request>,
    shutdown: &CancellationToken,
) {
    let mut commands_open = true;
    loop {
        let deadline = agent.next_timeout().map(Instant::from_std);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            ev = sig_events.recv() => match ev {
                Some(ev) => agent.handle_signaling(Instant::now().into_std(), ev),
                None => {
                    warn!("signaling adapter stopped");
                    return;
                }
            },
            ev = next_media(&mut media_events) => match ev {
                Some(ev) => agent.handle_media(Instant::now().into_std(), ev),
                None => {
                    warn!("media engine stopped");
                    media_events = None;
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
                None => commands_open = false,
            },
            _ = sleep_until(deadline) => agent.handle_timeout(Instant::now().into_std()),
        }
        out.drain(agent);
    }
}

async fn next_media(rx: &mut Option<mpsc::UnboundedReceiver<MediaEvent>>) -> Option<MediaEvent> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
