//! The narrow port every local control (buttons, MQTT, the service manager, tests) drives the
//! agent through: commands in; state, events and media statistics out.
//!
//! It lives apart from [`crate::daemon`] so the control adapters depend on this port, not on
//! the orchestrator that starts them.

use thiserror::Error;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::command::{Scope, When};
use crate::core::{AgentState, CallEvent, Command, CommandError};
use crate::media::{EngineInfo, MediaHandle, MediaStats};

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

/// What became of a restart request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restarting {
    /// Under way.
    Now,
    /// Waiting for the call to end.
    Queued,
}

/// What the core loop is asked through the handle.
pub(crate) enum Request {
    Command(Command, oneshot::Sender<Result<(), CommandError>>),
    Reload(oneshot::Sender<Result<ReloadReport, String>>),
    Ping(oneshot::Sender<()>),
    Restart {
        scope: Scope,
        when: When,
        reason: String,
        reply: oneshot::Sender<Result<Restarting, String>>,
    },
}

/// Talks to a running agent. Cheap to clone.
#[derive(Clone)]
pub struct AgentHandle {
    commands: mpsc::Sender<Request>,
    state: watch::Receiver<AgentState>,
    events: broadcast::Sender<CallEvent>,
    media: Option<MediaHandle>,
}

impl AgentHandle {
    /// A handle over the core loop's channels (the orchestrator makes it).
    pub(crate) fn new(
        commands: mpsc::Sender<Request>,
        state: watch::Receiver<AgentState>,
        events: broadcast::Sender<CallEvent>,
        media: Option<MediaHandle>,
    ) -> AgentHandle {
        AgentHandle {
            commands,
            state,
            events,
            media,
        }
    }

    async fn ask<T>(&self, request: impl FnOnce(oneshot::Sender<T>) -> Request) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(request(tx)).await.ok()?;
        rx.await.ok()
    }

    /// Runs a command and reports whether the core accepted it.
    pub async fn command(&self, command: Command) -> Result<(), HandleError> {
        self.ask(|tx| Request::Command(command, tx))
            .await
            .ok_or(HandleError::Stopped)?
            .map_err(HandleError::Refused)
    }

    /// Re-reads the configuration file and applies what can change while running (the
    /// answer policy, names, timeouts); reports what needs a restart. An invalid file changes
    /// nothing and the error says why.
    pub async fn reload(&self) -> Result<ReloadReport, String> {
        self.ask(Request::Reload)
            .await
            .unwrap_or_else(|| Err("the agent is not running".to_string()))
    }

    /// Restarts the agent (the service manager starts it again) or reboots the device
    /// (through the privileged helper), at once or once no call is going on. `reason` goes
    /// to the log and the helper.
    pub async fn restart(
        &self,
        scope: Scope,
        when: When,
        reason: String,
    ) -> Result<Restarting, String> {
        self.ask(|reply| Request::Restart {
            scope,
            when,
            reason,
            reply,
        })
        .await
        .unwrap_or_else(|| Err("the agent is not running".to_string()))
    }

    /// Answers once the core loop has taken a request off its queue and the media engine (when
    /// media is on) has answered too: proof that both are alive and not wedged (what the
    /// systemd watchdog ping is made of).
    pub async fn ping(&self) -> Result<(), HandleError> {
        self.ask(Request::Ping).await.ok_or(HandleError::Stopped)?;
        match &self.media {
            Some(m) if !m.ping().await => Err(HandleError::Stopped),
            _ => Ok(()),
        }
    }

    /// Makes the media engine suffer a fault (supervision tests).
    #[doc(hidden)]
    pub fn inject_media_fault(&self, fault: crate::media::Fault) {
        if let Some(m) = &self.media {
            m.inject(fault);
        }
    }

    /// The reported state, updated on every change.
    pub fn state(&self) -> watch::Receiver<AgentState> {
        self.state.clone()
    }

    /// Call lifecycle events from now on.
    pub fn events(&self) -> broadcast::Receiver<CallEvent> {
        self.events.subscribe()
    }

    /// Live media statistics (empty when media is off or no call runs).
    pub fn media_stats(&self) -> Option<watch::Receiver<MediaStats>> {
        self.media.as_ref().map(MediaHandle::stats)
    }

    /// The media profile and devices in use, when media is on.
    pub fn media_info(&self) -> Option<&EngineInfo> {
        self.media.as_ref().map(MediaHandle::info)
    }
}
