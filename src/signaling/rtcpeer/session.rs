//! One registered control-socket connection's logic, sans-IO: request ids, the replies we
//! wait for with their deadlines, the keep-alive schedule, and the translation of frames
//! both ways ([`super::translate`]).
//!
//! # Contract
//!
//! The connection task (or a test) owns the WebSocket and the clock; the session only ever
//! sees the [`Instant`]s it is given, which must not go backwards.
//! 1. Once `doRegister` has succeeded it makes a [`Session::new`] at that instant; the first
//!    keep-alive ping is due one `keepalive` later. Each connection gets a fresh session.
//! 2. It feeds every text frame read to [`Session::handle_frame`], every other frame (pong,
//!    ping, binary: each proves the server alive) to [`Session::handle_pong`], every core
//!    message to [`Session::handle_outgoing`], and calls [`Session::handle_timeout`] once
//!    [`Session::poll_timeout`] has passed (earlier is harmless: nothing is due).
//! 3. After each call it writes every [`Session::poll_transmit`] in order and forwards every
//!    [`Session::poll_event`].
//! 4. An `Err(Fatal)` ends the connection; forward the events already queued first (a
//!    request may have failed in the same step).
//!
//! On shutdown it calls [`Session::close`], feeds the core's last messages (typically
//! `meeting/exit`) to [`Session::handle_outgoing`] and writes them: they go without `reqId`,
//! since no reply will be read.
//!
//! Every `handle_*` call first fails the requests whose deadline is `now` or earlier, so a
//! reply counts as late by the clock, not by the order in which the task noticed a frame
//! and a timer that fell due together.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use serde_json::Value;
use thiserror::Error;
use tracing::{debug, warn};

use super::translate::{self, Identity, Pending};
use super::wire::{Envelope, WireError};
use crate::core::{Outgoing, SignalingEvent};

/// Pings in a row without any frame from the server before the connection is given up.
pub const UNANSWERED_PINGS: u32 = 3;

/// What the session needs from the options.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Who we are in the frames we send.
    pub me: Identity,
    /// A WebSocket ping is due this long after the previous one (or after registering).
    pub keepalive: Duration,
    /// Deadline for every reply.
    pub request_timeout: Duration,
}

/// Something to write on the WebSocket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// A text frame: one JSON object of the dialect.
    Text(String),
    /// A WebSocket ping with an empty payload.
    Ping,
}

/// Why a connection must end.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Fatal {
    /// Keep-alive pings went unanswered: the server or the path to it is gone.
    #[error("no answer to {0} keep-alive pings")]
    Unanswered(u32),
}

/// A request of ours that awaits its reply.
#[derive(Debug)]
struct Waiting {
    pending: Pending,
    deadline: Instant,
}

/// The control-socket session. See the module doc for the calling contract.
#[derive(Debug)]
pub struct Session {
    s: Settings,
    /// The `reqId` of the next request (sent as a decimal string).
    next_id: u64,
    waiting: BTreeMap<u64, Waiting>,
    /// `None` once closing.
    next_ping: Option<Instant>,
    /// Pings sent since the server was last heard from.
    unanswered: u32,
    closing: bool,
    transmit: VecDeque<Transmit>,
    events: VecDeque<SignalingEvent>,
    /// Kinds of bad frame already logged at warn level.
    warned: HashSet<&'static str>,
}

impl Session {
    /// A session for a connection registered at `now`.
    pub fn new(s: Settings, now: Instant) -> Session {
        Session {
            next_ping: Some(now + s.keepalive),
            s,
            next_id: 1,
            waiting: BTreeMap::new(),
            unanswered: 0,
            closing: false,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            warned: HashSet::new(),
        }
    }

    /// The next thing to write, in order.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmit.pop_front()
    }

    /// The next event for the core, in order.
    pub fn poll_event(&mut self) -> Option<SignalingEvent> {
        self.events.pop_front()
    }

    /// When [`Session::handle_timeout`] is due: the next ping or the earliest reply
    /// deadline. `None` once closing.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let deadline = self.waiting.values().map(|w| w.deadline).min();
        [self.next_ping, deadline].into_iter().flatten().min()
    }

    /// Fails the requests whose reply is overdue and sends the ping that is due. Errs when
    /// [`UNANSWERED_PINGS`] pings in a row went unanswered.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Fatal> {
        self.expire(now);
        let Some(at) = self.next_ping else {
            return Ok(());
        };
        if now < at {
            return Ok(());
        }
        if self.unanswered >= UNANSWERED_PINGS {
            return Err(Fatal::Unanswered(self.unanswered));
        }
        self.unanswered += 1;
        self.transmit.push_back(Transmit::Ping);
        self.next_ping = Some(now + self.s.keepalive);
        Ok(())
    }

    /// A frame other than text arrived (normally the pong to our ping).
    pub fn handle_pong(&mut self, now: Instant) {
        self.expire(now);
        self.unanswered = 0;
    }

    /// A text frame from the server: a reply to one of our requests, a reply we no longer
    /// wait for (dropped), or a push. Frames that cannot be used are logged and skipped, at
    /// warn level the first time for each kind of problem; none ends the connection today.
    pub fn handle_frame(&mut self, now: Instant, text: &str) -> Result<(), Fatal> {
        self.expire(now);
        self.unanswered = 0;
        match self.incoming(text) {
            Ok(Some(event)) => self.events.push_back(event),
            Ok(None) => {}
            Err(e) => self.bad_frame(&e),
        }
        Ok(())
    }

    /// A message from the core. Nothing is sent for what the dialect has no word for.
    pub fn handle_outgoing(&mut self, now: Instant, out: Outgoing) {
        self.expire(now);
        let Some(req) = translate::request(&self.s.me, &out) else {
            debug!(?out, "nothing to send for this in the RTCPeer dialect");
            return;
        };
        if self.closing {
            self.transmit.push_back(Transmit::Text(req.frame(None)));
            return;
        }
        let id = self.next_id;
        self.next_id += 1;
        let text = req.frame(Some(&Value::from(id.to_string())));
        let deadline = now + self.s.request_timeout;
        let pending = req.pending();
        self.waiting.insert(id, Waiting { pending, deadline });
        debug!(
            module = req.route.module(),
            method = req.route.method(),
            "send"
        );
        self.transmit.push_back(Transmit::Text(text));
    }

    /// The connection is about to close: stop pinging, forget the replies we waited for,
    /// and send further messages without `reqId`.
    pub fn close(&mut self) {
        self.closing = true;
        self.next_ping = None;
        self.waiting.clear();
    }

    /// Turns every request whose deadline is `now` or earlier into a `RequestFailed`, in
    /// the order they were sent.
    fn expire(&mut self, now: Instant) {
        while let Some(entry) = self.waiting.first_entry() {
            if entry.get().deadline > now {
                break;
            }
            let expired = entry.remove();
            self.events.push_back(SignalingEvent::RequestFailed {
                request: expired.pending.kind,
                code: 0,
                message: format!(
                    "no reply to {} within {:?}",
                    expired.pending.route, self.s.request_timeout
                ),
            });
        }
    }

    /// One frame: the reply to a waiting request, or a push.
    fn incoming(&mut self, text: &str) -> Result<Option<SignalingEvent>, WireError> {
        let env = Envelope::parse(text)?;
        let reply_to = env
            .req_id
            .as_ref()
            .and_then(our_req_id)
            .and_then(|id| self.waiting.remove(&id));
        match reply_to {
            Some(w) => translate::reply(&env, &w.pending),
            None if env.req_id.is_some() => {
                // A reply to a request that already timed out, or to the registration.
                debug!(module = %env.module, method = %env.method, "late or unknown reply");
                Ok(None)
            }
            None => translate::push(&env),
        }
    }

    fn bad_frame(&mut self, e: &WireError) {
        if self.warned.insert(e.kind()) {
            warn!(error = %e, "skipping a bad signaling frame (further ones of this kind at debug level)");
        } else {
            debug!(error = %e, "skipping a bad signaling frame");
        }
    }
}

/// The id a `reqId` echoes, if it is one of ours: the decimal string we sent, or the same
/// digits as a JSON number. Anything else (`"register"`, `"01"`) is not ours.
fn our_req_id(req_id: &Value) -> Option<u64> {
    let text = match req_id.as_str() {
        Some(s) => s.to_string(),
        None => req_id.to_string(),
    };
    text.parse::<u64>().ok().filter(|id| id.to_string() == text)
}

#[cfg(test)]
mod tests;
