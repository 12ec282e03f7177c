//! The media engine adapter: GStreamer pipelines built from board profiles, one `webrtcbin`
//! per remote participant, translating the core's [`MediaCommand`]s into pipeline changes and
//! GStreamer's callbacks into [`MediaEvent`]s.
//!
//! [`start`] probes devices, picks a profile, makes the DTLS certificate and returns a
//! [`MediaHandle`], the event receiver and the engine task. The call pipeline exists only while
//! a call runs, so capture devices are free when idle. GStreamer callbacks never touch engine
//! state: they post `Internal` messages to the task (except the linking of incoming streams,
//! which must happen before their first buffer and only touches elements of its own session).
//!
//! Where things are: `options` (what the configuration asks for), `startup` (the survey and
//! profile choice [`start`] and [`devices_report`] share), `engine` (the task and its commands;
//! `engine::negotiation` for offer/answer and ICE), [`pipeline`] (the call pipeline, one file
//! per part), `session` (one webrtcbin: its sending and receiving branches), and the helpers
//! [`profile`], [`devices`], [`props`], [`sdp`], [`cert`] and `stats`.

pub mod cert;
pub mod devices;
mod engine;
mod options;
pub mod pipeline;
pub mod profile;
pub mod props;
pub mod sdp;
mod session;
mod startup;
mod stats;

use std::future::Future;

use gstreamer as gst;
use thiserror::Error;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::core::{MediaCommand, MediaEvent};
pub use options::{DeviceChoice, EchoCancellation, IceOptions, MediaOptions, SinkChoice};
pub use startup::{EngineInfo, devices_report};
pub use stats::{MediaStats, SessionStats};

/// Media engine errors. Messages name the element, property or device concerned.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum MediaError {
    /// GStreamer could not start.
    #[error("GStreamer cannot start: {0}")]
    Init(String),
    /// An element factory is missing.
    #[error("GStreamer element {factory} is missing (install {package})")]
    MissingElement {
        /// Factory name.
        factory: String,
        /// Debian package that provides it.
        package: &'static str,
    },
    /// A profile property is wrong.
    #[error(transparent)]
    Property(#[from] props::PropertyError),
    /// Two elements would not link.
    #[error("cannot link {from} to {to}")]
    Link {
        /// Upstream.
        from: String,
        /// Downstream.
        to: String,
    },
    /// Profiles could not be loaded or chosen.
    #[error("{0}")]
    Profile(String),
    /// The certificate could not be made.
    #[error(transparent)]
    Cert(#[from] cert::CertError),
    /// Sharing without an HDMI capture input.
    #[error("no HDMI capture input is attached (set media.hdmi_capture to its device)")]
    NoHdmi,
    /// Anything else.
    #[error("{0}")]
    Invalid(String),
}

/// Sends commands to the engine. Cheap to clone.
#[derive(Clone)]
pub struct MediaHandle {
    tx: mpsc::UnboundedSender<MediaCommand>,
    stats: watch::Receiver<MediaStats>,
    info: EngineInfo,
}

impl MediaHandle {
    /// Queues a command.
    pub fn send(&self, cmd: MediaCommand) {
        if self.tx.send(cmd).is_err() {
            warn!("media engine is not running");
        }
    }

    /// Live statistics.
    pub fn stats(&self) -> watch::Receiver<MediaStats> {
        self.stats.clone()
    }

    /// What the engine chose.
    pub fn info(&self) -> &EngineInfo {
        &self.info
    }
}

/// Initialises GStreamer once.
pub fn init() -> Result<(), MediaError> {
    gst::init().map_err(|e| MediaError::Init(e.to_string()))
}

/// Probes, chooses a profile, makes the certificate, and returns the engine.
pub fn start(
    opts: MediaOptions,
    shutdown: CancellationToken,
) -> Result<
    (
        MediaHandle,
        mpsc::UnboundedReceiver<MediaEvent>,
        impl Future<Output = ()> + Send + 'static,
    ),
    MediaError,
> {
    init()?;
    let ready = startup::prepare(&opts)?;
    Ok(engine::task(opts, ready, shutdown))
}
