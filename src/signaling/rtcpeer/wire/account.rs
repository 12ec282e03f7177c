//! The HTTP account API's bodies (dialect §2): `getSign` and the `params` of
//! `POST <host>/account`, which travel before any control socket exists.

use serde::{Deserialize, Serialize};

use super::{Company, User};

/// `getSign` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
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

/// The `params` JSON of `POST <host>/account`.
#[derive(Debug, Clone, Serialize, Deserialize)]
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

/// The answer to `login` / `dockingLogin`.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
