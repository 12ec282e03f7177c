//! Sessions and sockets: the HTTP side (`getSign`, `account`, the page's online list) and a
//! socket's life (connect, `call/doRegister`, `account/logout`, disconnect).

use std::collections::HashSet;

use super::{Conn, ConnId, Handled, Hub, Me, Online, Out, Refusal, Session, ok};
use crate::room_server::accounts::new_token;
use crate::room_server::limits::{MAX_SESSIONS_PER_USER, SESSION_TTL};
use crate::signaling::rtcpeer::wire::{AccountParams, LoginReply, Register, SignReply, code};

/// The `deviceType`s `call/doRegister` accepts.
const DEVICE_TYPES: [&str; 5] = ["pc", "Android", "iOS", "webphone", "tv"];

/// An `account` reply that carries only its outcome; success replies add the session.
fn account_reply(result: i64, method: Option<&str>) -> LoginReply {
    LoginReply {
        result,
        module: Some("account".into()),
        method: method.map(str::to_string),
        sid: None,
        user: None,
        company: None,
        organisation: None,
        message: None,
    }
}

/// A refused `account` request: `method` is `None` when the params did not even parse.
fn account_refused(result: i64, method: Option<&str>, message: impl Into<String>) -> LoginReply {
    LoginReply {
        message: Some(message.into()),
        ..account_reply(result, method)
    }
}

impl Hub {
    /// `GET getSign?appId&secret`.
    pub fn get_sign(&mut self, app_id: Option<&str>, secret: Option<&str>) -> SignReply {
        let (code, data, message) = match (app_id, secret) {
            (Some(app), Some(secret)) => match self.accounts.sign(app, secret, self.now()) {
                Some(sign) => (200, Some(sign), "ok"),
                None => (401, None, "appId or secret is wrong"),
            },
            _ => (400, None, "appId and secret are both required"),
        };
        SignReply {
            code,
            data,
            message: Some(message.into()),
        }
    }

    /// `POST account` with the `params` JSON.
    pub fn account(&mut self, params: &str) -> LoginReply {
        match serde_json::from_str(params) {
            Err(e) => account_refused(code::BAD_REQUEST, None, format!("bad params: {e}")),
            Ok(AccountParams::Login { name, password }) => self.login(&name, &password),
            Ok(AccountParams::DockingLogin {
                account,
                user_name,
                appkey,
                sign,
                ..
            }) => self.docking_login(&account, user_name.as_deref(), appkey.as_deref(), &sign),
            Ok(AccountParams::Logout { sid, user_id }) => self.logout(&sid, user_id),
        }
    }

    fn login(&mut self, name: &str, password: &str) -> LoginReply {
        let Some(user) = self.accounts.check(name, password) else {
            return account_refused(code::FAILED, Some("login"), "wrong name or password");
        };
        LoginReply {
            sid: Some(self.open_session(user.id)),
            company: Some(self.accounts.company()),
            user: Some(user),
            ..account_reply(code::OK, Some("login"))
        }
    }

    fn docking_login(
        &mut self,
        account: &str,
        user_name: Option<&str>,
        appkey: Option<&str>,
        sign: &str,
    ) -> LoginReply {
        let now = self.now();
        match self.accounts.docking(account, user_name, appkey, sign, now) {
            Ok((user, org)) => LoginReply {
                sid: Some(self.open_session(user.id)),
                user: Some(user),
                organisation: Some(org),
                ..account_reply(code::OK, Some("dockingLogin"))
            },
            Err((code, message)) => account_refused(code, Some("dockingLogin"), message),
        }
    }

    /// HTTP `logout`: ends one session, if it is `user_id`'s.
    fn logout(&mut self, sid: &str, user_id: i64) -> LoginReply {
        if self.session_user(sid) != Some(user_id) {
            return account_refused(code::FAILED, Some("logout"), "no such session");
        }
        self.sessions.remove(sid);
        account_reply(code::OK, Some("logout"))
    }

    /// A new session for `user`: expired sessions go first, then the user's oldest while it
    /// has [`MAX_SESSIONS_PER_USER`].
    fn open_session(&mut self, user: i64) -> String {
        let now = self.now();
        self.sessions
            .retain(|_, s| now.saturating_duration_since(s.opened) < SESSION_TTL);
        let mut mine: Vec<(String, Session)> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.user == user)
            .map(|(k, s)| (k.clone(), *s))
            .collect();
        mine.sort_by_key(|(_, s)| s.opened);
        let excess = (mine.len() + 1).saturating_sub(MAX_SESSIONS_PER_USER);
        for (sid, _) in mine.into_iter().take(excess) {
            self.sessions.remove(&sid);
        }
        let sid = new_token();
        self.sessions
            .insert(sid.clone(), Session { user, opened: now });
        sid
    }

    /// The user a live (not expired) session id belongs to.
    pub fn session_user(&self, sid: &str) -> Option<i64> {
        let s = self.sessions.get(sid)?;
        (self.now().saturating_duration_since(s.opened) < SESSION_TTL).then_some(s.user)
    }

    /// Everyone registered, by user id.
    pub fn online(&self) -> Vec<Online> {
        let mut seen = HashSet::new();
        let mut list: Vec<Online> = self
            .conns
            .values()
            .filter_map(|c| {
                let device = c.device.clone()?;
                if !seen.insert((c.user_id, device.clone())) {
                    return None;
                }
                let user = self.accounts.user(c.user_id)?;
                Some(Online {
                    id: c.user_id,
                    name: user.name.clone().unwrap_or_default(),
                    account: user.account.clone().unwrap_or_default(),
                    device_type: device,
                    room_id: self.room_of(c.user_id),
                })
            })
            .collect();
        list.sort_by_key(|o| o.id);
        list
    }

    /// The connections registered for `user`, in id order (for diagnostics and tests).
    pub fn conns_of(&self, user: i64) -> Vec<ConnId> {
        self.devices_of(user, None)
    }

    /// The connections registered for `user`, only those registered as `device` when given,
    /// in id order.
    pub(super) fn devices_of(&self, user: i64, device: Option<&str>) -> Vec<ConnId> {
        let mut v: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.user_id == user)
            .filter(|(_, c)| match (&c.device, device) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(d), Some(want)) => d == want,
            })
            .map(|(id, _)| *id)
            .collect();
        v.sort_unstable();
        v
    }

    /// A WebSocket connected with `sid`. `false`: unknown session.
    pub fn connect(&mut self, conn: ConnId, sid: &str) -> bool {
        let Some(user_id) = self.session_user(sid) else {
            return false;
        };
        self.conns.insert(
            conn,
            Conn {
                user_id,
                sid: sid.to_string(),
                device: None,
            },
        );
        true
    }

    /// A WebSocket closed: leave every room it sits in, unregister.
    pub fn disconnect(&mut self, conn: ConnId) -> Out {
        let mut out = Vec::new();
        let Some(c) = self.conns.remove(&conn) else {
            return out;
        };
        let rooms: Vec<i64> = self
            .rooms
            .iter()
            .filter(|(_, r)| r.seats.get(&c.user_id).is_some_and(|s| s.conn == conn))
            .map(|(id, _)| *id)
            .collect();
        for room_id in rooms {
            self.leave(&mut out, room_id, c.user_id);
        }
        out
    }

    /// `call/doRegister`: the socket names the session it was opened with and its device.
    pub(super) fn register(&mut self, me: &Me, r: Register) -> Handled {
        let conn = self
            .conns
            .get_mut(&me.conn)
            .filter(|c| c.sid == r.sid && c.user_id == r.user_id)
            .ok_or_else(|| {
                Refusal::new(
                    code::UNAUTHORIZED,
                    "SID and userId do not match this session",
                )
            })?;
        let device = r.device_type.unwrap_or_else(|| "pc".into());
        if !DEVICE_TYPES.contains(&device.as_str()) {
            return Err(Refusal::new(
                code::BAD_REQUEST,
                format!("field `deviceType`: unknown device type {device:?}"),
            ));
        }
        conn.device = Some(device);
        ok()
    }

    /// `account/logout` over the socket: ends every session of the user. The socket itself
    /// stays connected.
    pub(super) fn logout_everywhere(&mut self, me: &Me) -> Handled {
        self.sessions.retain(|_, s| s.user != me.id);
        ok()
    }
}
