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

/// The largest login or signature reply read: a real one is a few hundred bytes, and a server
/// that sends more (broken, or hostile) must not make the agent buffer it.
pub const MAX_REPLY: usize = 64 * 1024;

/// Reads a reply body of at most [`MAX_REPLY`] bytes.
async fn body(
    url: &Url,
    mut resp: reqwest::Response,
    what: &'static str,
) -> Result<String, LoginError> {
    let too_big = || LoginError::BadReply {
        what,
        detail: format!("the reply is longer than {} KiB", MAX_REPLY / 1024),
    };
    if resp.content_length().is_some_and(|n| n > MAX_REPLY as u64) {
        return Err(too_big());
    }
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| unreachable(url, e))? {
        if buf.len() + chunk.len() > MAX_REPLY {
            return Err(too_big());
        }
        buf.extend_from_slice(&chunk);
    }
    String::from_utf8(buf).map_err(|_| LoginError::BadReply {
        what,
        detail: "the reply is not UTF-8".into(),
    })
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
    let text = body(&url, resp, what).await?;
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
    let text = body(&url, resp, "getSign").await?;
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

    /// A server on loopback that answers every request with `head` and then `body_len` bytes
    /// of JSON-ish filler (as fast as the client reads).
    async fn flooding_server(head: String, body_len: usize) -> Url {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let head = head.clone();
                tokio::spawn(async move {
                    let mut req = [0u8; 4096];
                    let _ = sock.read(&mut req).await;
                    let _ = sock.write_all(head.as_bytes()).await;
                    let chunk = vec![b' '; 16 * 1024];
                    let mut sent = 0;
                    while sent < body_len {
                        if sock.write_all(&chunk).await.is_err() {
                            return;
                        }
                        sent += chunk.len();
                    }
                });
            }
        });
        Url::parse(&format!("http://{addr}/app")).unwrap()
    }

    async fn try_login(host: &Url) -> LoginError {
        let http = http_client(Duration::from_secs(10), None).unwrap();
        let creds = Credentials::Password {
            name: "room".into(),
            password: Secret::new("pw"),
        };
        login(&http, host, &creds).await.unwrap_err()
    }

    #[tokio::test]
    async fn a_reply_longer_than_the_limit_is_refused_without_reading_it() {
        // Announced as 1 GiB: refused from the header.
        let host = flooding_server(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1073741824\r\n\r\n".into(),
            1 << 30,
        )
        .await;
        let e = try_login(&host).await.to_string();
        assert!(e.contains("longer than 64 KiB"), "{e}");
        // Unannounced (read until the connection closes): cut at the limit.
        let host = flooding_server(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n".into(),
            1 << 30,
        )
        .await;
        let e = try_login(&host).await.to_string();
        assert!(e.contains("longer than 64 KiB"), "{e}");
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
