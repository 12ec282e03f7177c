//! The RTCPeer signaling adapter: HTTP login, the WebSocket control socket, registration,
//! keep-alive and reconnection.
//!
//! [`start`] returns the [`Link`] of the signaling seam ([`super`]). The task logs in,
//! registers, and then moves frames between the WebSocket and a [`session::Session`] until
//! the connection dies. The session holds the connection's logic (request ids, reply
//! deadlines, keep-alive pings, translation both ways through [`translate`]) without IO or
//! clock, and is unit-tested on virtual time.
//!
//! The task reconnects with exponential backoff and jitter, forever, logging in again each
//! time (a restarted server has forgotten our SID). After every successful registration it
//! emits [`SignalingEvent::Registered`]; the core answers that by restoring what the server
//! forgot (re-entering the room). Messages the core sends while disconnected are dropped:
//! the core re-sends what matters after registration.

mod connection;
pub mod login;
pub mod session;
mod tls;
pub mod translate;
pub mod wire;

use std::time::Duration;

use thiserror::Error;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};
use url::Url;

use super::{Ends, Link};
use crate::backoff::Reconnect;
use crate::config::{Config, LoginMethod};
use crate::core::SignalingEvent;

pub use login::{Credentials, LoginError, Session};

/// Everything the adapter needs, with secrets already read.
#[derive(Debug, Clone)]
pub struct Options {
    /// HTTP API base (`…/app`).
    pub host: Url,
    /// Control socket path under `host`.
    pub socket_path: String,
    /// `deviceType`.
    pub device_type: String,
    /// Display name for `meeting/enter`.
    pub name: String,
    /// Login.
    pub credentials: Credentials,
    /// TLS for an `https` host (login requests and the `wss` control socket alike).
    pub tls: Option<crate::tls::ClientTls>,
    /// WebSocket ping interval.
    pub keepalive: Duration,
    /// Reply deadline for requests (and login/connect).
    pub request_timeout: Duration,
    /// First reconnect delay.
    pub reconnect_min: Duration,
    /// Longest reconnect delay.
    pub reconnect_max: Duration,
}

/// A problem turning the configuration into [`Options`].
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum OptionsError {
    /// `signaling.host` is not a URL.
    #[error("signaling.host {0:?} is not a valid URL")]
    Host(String),
    /// A required login value is missing.
    #[error("signaling.login.{0} is missing")]
    Missing(&'static str),
    /// A certificate file of an `https` host cannot be used.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// A secret file could not be read.
    #[error("cannot read {key} from {path}: {source}")]
    SecretFile {
        /// Which key.
        key: &'static str,
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

impl Options {
    /// Builds options from a validated configuration, reading secret files.
    pub fn from_config(c: &Config) -> Result<Options, OptionsError> {
        let s = &c.signaling;
        let host = Url::parse(&s.host).map_err(|_| OptionsError::Host(s.host.clone()))?;
        let l = &s.login;
        let read = |key: &'static str, src: crate::config::SecretSource| {
            src.resolve()
                .map_err(|source| OptionsError::SecretFile {
                    key,
                    path: src
                        .file
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                    source,
                })?
                .ok_or(OptionsError::Missing(key))
        };
        let credentials = match l.method {
            LoginMethod::Password => Credentials::Password {
                name: l.name.clone().ok_or(OptionsError::Missing("name"))?,
                password: read("password", l.password_source())?,
            },
            LoginMethod::Docking => Credentials::Docking {
                app_id: l.app_id.clone().ok_or(OptionsError::Missing("app_id"))?,
                secret: read("secret", l.secret_source())?,
                account: l.account.clone().ok_or(OptionsError::Missing("account"))?,
                user_name: l.user_name.clone(),
            },
        };
        let tls = tls::client_tls(s, &host)?;
        Ok(Options {
            host,
            tls,
            socket_path: s.socket_path.clone(),
            device_type: s.device_type.as_str().to_string(),
            name: c.device.display_name().to_string(),
            credentials,
            keepalive: Duration::from_secs(s.keepalive_s),
            request_timeout: Duration::from_secs(s.request_timeout_s),
            reconnect_min: Duration::from_millis(s.reconnect_min_ms),
            reconnect_max: Duration::from_millis(s.reconnect_max_ms),
        })
    }

    /// The control socket URL for a session (carries the SID: never log it).
    pub fn socket_url(&self, sid: &str) -> Url {
        let mut u = self.host.clone();
        let scheme = if u.scheme() == "https" { "wss" } else { "ws" };
        let _ = u.set_scheme(scheme);
        let path = format!("{}{}", u.path().trim_end_matches('/'), self.socket_path);
        u.set_path(&path);
        u.query_pairs_mut().clear().append_pair("SID", sid);
        u
    }
}

/// Starts the adapter. Spawn the link's task; it ends when `shutdown` is cancelled.
pub fn start(opts: Options, shutdown: CancellationToken) -> Link {
    if let Some(warning) = tls::plain_http_warning(&opts.host) {
        warn!("{warning}");
    }
    let (ends, outbox, events) = super::channels();
    Link::new(outbox, events, run(opts, ends, shutdown))
}

async fn run(opts: Options, ends: Ends, shutdown: CancellationToken) {
    let Ends {
        outgoing: mut cmds,
        events,
    } = ends;
    let mut reconnect = Reconnect::new(opts.reconnect_min, opts.reconnect_max);
    loop {
        let attempt = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = connection::connect(&opts) => r,
        };
        let reason = match attempt {
            Ok((ws, session)) => {
                reconnect.connected();
                while let Ok(stale) = cmds.try_recv() {
                    debug!(?stale, "dropping a message queued while disconnected");
                }
                let user_id = crate::core::UserId(session.user.id);
                info!(%user_id, "registered with the signaling server");
                if events
                    .send(SignalingEvent::Registered { user_id })
                    .await
                    .is_err()
                {
                    return;
                }
                let me = translate::Identity {
                    user_id,
                    device_type: opts.device_type.clone(),
                    name: opts.name.clone(),
                };
                match connection::run(&opts, ws, me, &mut cmds, &events, &shutdown).await {
                    connection::End::Shutdown => return,
                    connection::End::Lost(reason) => {
                        warn!(%reason, "signaling connection lost; reconnecting");
                        reason
                    }
                }
            }
            Err(e) => {
                let reason = e.to_string();
                if reconnect.failed(&reason) {
                    if e.is_auth() {
                        error!(%reason, "cannot log in to the signaling server; will keep retrying");
                    } else {
                        warn!(%reason, "cannot connect to the signaling server; will keep retrying");
                    }
                } else {
                    debug!(%reason, attempt = reconnect.attempts(), "still cannot connect");
                }
                reason
            }
        };
        if events
            .send(SignalingEvent::Disconnected { reason })
            .await
            .is_err()
        {
            return;
        }
        if !reconnect.wait(&shutdown).await {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn opts(host: &str) -> Options {
        Options {
            host: Url::parse(host).unwrap(),
            socket_path: "/socket".into(),
            device_type: "tv".into(),
            name: "r".into(),
            credentials: Credentials::Password {
                name: "a".into(),
                password: Secret::new("b"),
            },
            tls: None,
            keepalive: Duration::from_secs(20),
            request_timeout: Duration::from_secs(10),
            reconnect_min: Duration::from_millis(500),
            reconnect_max: Duration::from_secs(30),
        }
    }

    #[test]
    fn socket_url_swaps_the_scheme_and_adds_the_sid() {
        assert_eq!(
            opts("https://meet.example.com/app")
                .socket_url("abc")
                .as_str(),
            "wss://meet.example.com/app/socket?SID=abc"
        );
        assert_eq!(
            opts("http://127.0.0.1:8080/app/")
                .socket_url("a b")
                .as_str(),
            "ws://127.0.0.1:8080/app/socket?SID=a+b"
        );
    }
}
