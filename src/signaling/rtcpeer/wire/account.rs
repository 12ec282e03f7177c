//! The HTTP account API's bodies (dialect §2): `getSign` and the `params` of
//! `POST <host>/account`, which travel before any control socket exists.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Company, User};

/// Stands in for a signature, password or session id in `Debug` output.
const HIDDEN: &str = "***";

/// `getSign` answer. `Debug` hides the signature.
#[derive(Clone, Serialize, Deserialize)]
pub struct SignReply {
    /// 200 on success.
    pub code: i64,
    /// The signature.
    #[serde(default)]
    pub data: Option<String>,
    /// Description.
    #[serde(default)]
    pub message: Option<String>,
}

impl fmt::Debug for SignReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignReply")
            .field("code", &self.code)
            .field("data", &self.data.as_ref().map(|_| HIDDEN))
            .field("message", &self.message)
            .finish()
    }
}

/// The `params` JSON of `POST <host>/account`. `Debug` hides the password, signature and
/// session id.
#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "method")]
pub enum AccountParams {
    /// Name + password.
    #[serde(rename = "login")]
    Login {
        /// Account name.
        name: String,
        /// Password.
        password: String,
    },
    /// Third-party platform login.
    #[serde(rename = "dockingLogin")]
    DockingLogin {
        /// Third-party account.
        account: String,
        /// Display name.
        #[serde(rename = "userName", default)]
        user_name: Option<String>,
        /// The platform's appId.
        #[serde(default)]
        appkey: Option<String>,
        /// The signature from `getSign`.
        sign: String,
        /// Avatar.
        #[serde(default)]
        avatar: Option<String>,
    },
    /// End the session.
    #[serde(rename = "logout")]
    Logout {
        /// The session.
        #[serde(rename = "SID")]
        sid: String,
        /// The user.
        #[serde(rename = "userId")]
        user_id: i64,
    },
}

impl fmt::Debug for AccountParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccountParams::Login { name, .. } => f
                .debug_struct("Login")
                .field("name", name)
                .field("password", &HIDDEN)
                .finish(),
            AccountParams::DockingLogin {
                account,
                user_name,
                appkey,
                avatar,
                ..
            } => f
                .debug_struct("DockingLogin")
                .field("account", account)
                .field("user_name", user_name)
                .field("appkey", appkey)
                .field("sign", &HIDDEN)
                .field("avatar", avatar)
                .finish(),
            AccountParams::Logout { user_id, .. } => f
                .debug_struct("Logout")
                .field("sid", &HIDDEN)
                .field("user_id", user_id)
                .finish(),
        }
    }
}

/// The answer to `login` / `dockingLogin`. `Debug` hides the session id.
#[derive(Clone, Serialize, Deserialize)]
pub struct LoginReply {
    /// 0 success; `login`: 1 bad name/password; `dockingLogin`: 1..4 (seed §6.2.2.3).
    pub result: i64,
    /// `account`.
    #[serde(default)]
    pub module: Option<String>,
    /// `login` or `dockingLogin`.
    #[serde(default)]
    pub method: Option<String>,
    /// Session id.
    #[serde(rename = "SID", default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
    /// `login`: the company.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<Company>,
    /// `dockingLogin`: the company.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation: Option<Company>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl fmt::Debug for LoginReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginReply")
            .field("result", &self.result)
            .field("module", &self.module)
            .field("method", &self.method)
            .field("sid", &self.sid.as_ref().map(|_| HIDDEN))
            .field("user", &self.user)
            .field("company", &self.company)
            .field("organisation", &self.organisation)
            .field("message", &self.message)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "Hunter2-x9Qv";

    #[test]
    fn account_bodies_never_print_a_password_signature_or_session_id() {
        let s = || SECRET.to_string();
        let shown = [
            format!(
                "{:?}",
                AccountParams::Login {
                    name: "room".into(),
                    password: s()
                }
            ),
            format!(
                "{:?}",
                AccountParams::DockingLogin {
                    account: "a".into(),
                    user_name: None,
                    appkey: Some("app".into()),
                    sign: s(),
                    avatar: None,
                }
            ),
            format!(
                "{:?}",
                AccountParams::Logout {
                    sid: s(),
                    user_id: 5
                }
            ),
            format!(
                "{:?}",
                SignReply {
                    code: 200,
                    data: Some(s()),
                    message: None
                }
            ),
            format!(
                "{:#?}",
                LoginReply {
                    result: 0,
                    module: None,
                    method: None,
                    sid: Some(s()),
                    user: None,
                    company: None,
                    organisation: None,
                    message: None,
                }
            ),
        ];
        for text in shown {
            assert!(!text.contains(SECRET), "{text}");
            assert!(text.contains("***"), "{text}");
        }
    }
}
