//! HTTP login (dialect §2): `account/login`, or `getSign` + `account/dockingLogin`.

use std::time::Duration;

use thiserror::Error;
use url::Url;

use super::wire::{AccountParams, LoginReply, SignReply, User};
use crate::config::Secret;

/// How to log in, with secrets already read.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// Account name and password.
    Password {
        /// Account name.
        name: String,
        /// Password.
        password: Secret,
    },
    /// Third-party platform: signature from `getSign`, then `dockingLogin`.
    Docking {
        /// `appId`.
        app_id: String,
        /// App secret.
        secret: Secret,
        /// Third-party account.
        account: String,
        /// Display name.
        user_name: Option<String>,
    },
}

impl Credentials {
    /// Who logs in, for messages (never the secret).
    pub fn who(&self) -> &str {
        match self {
            Credentials::Password { name, .. } => name,
            Credentials::Docking { account, .. } => account,
        }
    }
}

/// A logged-in session.
#[derive(Debug, Clone)]
pub struct Session {
    /// Session id for the control socket and requests.
    pub sid: Secret,
    /// Our user.
    pub user: User,
}

/// Why login failed. Messages name the account and what to check, never a secret.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LoginError {
    /// Network or HTTP failure.
    #[error("cannot reach the signaling server at {url}: {detail}")]
    Unreachable {
        /// The endpoint, without query.
        url: String,
        /// What happened.
        detail: String,
    },
    /// `login` answered `result: 1`.
    #[error(
        "login refused for account {name:?}: wrong name or password (result {code}); check signaling.login"
    )]
    BadCredentials {
        /// The account.
        name: String,
        /// `result`.
        code: i64,
    },
    /// `getSign` did not answer 200.
    #[error(
        "getSign refused appId {app_id:?}: {message} (code {code}); check signaling.login.app_id and secret"
    )]
    SignRefused {
        /// The appId.
        app_id: String,
        /// `code`.
        code: i64,
        /// `message`.
        message: String,
    },
    /// `dockingLogin` answered non-zero.
    #[error("dockingLogin refused for account {account:?}: {why} (result {code})")]
    DockingRefused {
        /// The account.
        account: String,
        /// `result`.
        code: i64,
        /// The seed's meaning of the code.
        why: &'static str,
    },
    /// An answer we could not read.
    #[error("the server's answer to {what} is not understood: {detail}")]
    BadReply {
        /// Which call.
        what: &'static str,
        /// What was wrong.
        detail: String,
    },
}

impl LoginError {
    /// Whether retrying with the same credentials can help by itself (network trouble) or
    /// whether someone has to fix the configuration or the server's accounts.
    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            LoginError::BadCredentials { .. }
                | LoginError::SignRefused { .. }
                | LoginError::DockingRefused { .. }
        )
    }
}

fn endpoint(host: &Url, name: &str) -> Url {
    let mut u = host.clone();
    let path = format!("{}/{}", u.path().trim_end_matches('/'), name);
    u.set_path(&path);
    u.set_query(None);
    u
}

fn unreachable(url: &Url, e: reqwest::Error) -> LoginError {
    // reqwest errors print the URL, which for getSign carries the secret: strip it. Its
    // sources do not; a TLS problem among them is said in words with what to check.
    let detail = crate::tls::explain(&e, "signaling");
    LoginError::Unreachable {
        url: url.to_string(),
        detail: detail.unwrap_or_else(|| e.without_url().to_string()),
    }
}

fn docking_reason(code: i64) -> &'static str {
    match code {
        1 => "company name is not correct",
        2 => "the company appkey did not verify (is the signature stale?)",
        3 => "the platform's callback failed",
        4 => "registration failed",
        _ => "refused",
    }
}

/// A client for the login endpoints; with `tls`, for an `https` host, it trusts what `tls`
/// trusts and presents its client certificate.
pub fn http_client(
    timeout: Duration,
    tls: Option<&crate::tls::ClientTls>,
) -> Result<reqwest::Client, reqwest::Error> {
    let builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        // Logins are rare; a pooled connection to a server that restarted only costs a
        // failed attempt (and a longer backoff).
        .pool_max_idle_per_host(0);
    match tls {
        Some(tls) => builder.use_preconfigured_tls(rustls::ClientConfig::clone(tls.config())),
        None => builder,
    }
    .build()
}

async fn post_account(
    http: &reqwest::Client,
    host: &Url,
    params: &AccountParams,
    what: &'static str,
) -> Result<LoginReply, LoginError> {
    let url = endpoint(host, "account");
    let params = serde_json::to_string(params).map_err(|e| LoginError::BadReply {
        what,
        detail: e.to_string(),
    })?;
    let resp = http
        .post(url.clone())
        .form(&[("params", params)])
        .send()
        .await
        .map_err(|e| unreachable(&url, e))?;
    let status = resp.status();
    let text = resp.text().await.map_err(|e| unreachable(&url, e))?;
    serde_json::from_str(&text).map_err(|e| LoginError::BadReply {
        what,
        detail: format!("HTTP {status}: {e}"),
    })
}

/// Logs in and returns the session.
pub async fn login(
    http: &reqwest::Client,
    host: &Url,
    creds: &Credentials,
) -> Result<Session, LoginError> {
    let (reply, what) = match creds {
        Credentials::Password { name, password } => {
            let params = AccountParams::Login {
                name: name.clone(),
                password: password.expose().to_string(),
            };
            (post_account(http, host, &params, "login").await?, "login")
        }
        Credentials::Docking {
            app_id,
            secret,
            account,
            user_name,
        } => {
            let sign = get_sign(http, host, app_id, secret).await?;
            let params = AccountParams::DockingLogin {
                account: account.clone(),
                user_name: user_name.clone(),
                appkey: Some(app_id.clone()),
                sign,
                avatar: None,
            };
            let reply = post_account(http, host, &params, "dockingLogin").await?;
            if reply.result != 0 {
                return Err(LoginError::DockingRefused {
                    account: account.clone(),
                    code: reply.result,
                    why: docking_reason(reply.result),
                });
            }
            (reply, "dockingLogin")
        }
    };
    if reply.result != 0 {
        return Err(LoginError::BadCredentials {
            name: creds.who().to_string(),
            code: reply.result,
        });
    }
    match (reply.sid, reply.user) {
        (Some(sid), Some(user)) if !sid.is_empty() => Ok(Session {
            sid: Secret::new(sid),
            user,
        }),
        _ => Err(LoginError::BadReply {
            what,
            detail: "result 0 without SID and user".into(),
        }),
    }
}

/// The signature `dockingLogin` needs, from `getSign` (the secret travels in the query:
/// errors must not print the URL).
async fn get_sign(
    http: &reqwest::Client,
    host: &Url,
    app_id: &str,
    secret: &Secret,
) -> Result<String, LoginError> {
    let url = endpoint(host, "getSign");
    let resp = http
        .get(url.clone())
        .query(&[("appId", app_id), ("secret", secret.expose())])
        .send()
        .await
        .map_err(|e| unreachable(&url, e))?;
    let text = resp.text().await.map_err(|e| unreachable(&url, e))?;
    let sign: SignReply = serde_json::from_str(&text).map_err(|e| LoginError::BadReply {
        what: "getSign",
        detail: e.to_string(),
    })?;
    sign.data
        .filter(|_| sign.code == 200)
        .ok_or_else(|| LoginError::SignRefused {
            app_id: app_id.to_string(),
            code: sign.code,
            message: sign.message.unwrap_or_default(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_sit_under_the_host_path() {
        let host = Url::parse("https://meet.example.com/app").unwrap();
        assert_eq!(
            endpoint(&host, "account").as_str(),
            "https://meet.example.com/app/account"
        );
        let host = Url::parse("http://127.0.0.1:8080/app/").unwrap();
        assert_eq!(
            endpoint(&host, "getSign").as_str(),
            "http://127.0.0.1:8080/app/getSign"
        );
    }

    #[test]
    fn login_errors_name_the_account_and_not_the_secret() {
        let e = LoginError::BadCredentials {
            name: "room".into(),
            code: 1,
        };
        let text = e.to_string();
        assert!(text.contains("\"room\"") && text.contains("wrong name or password"));
        assert!(e.is_auth());
    }
}
