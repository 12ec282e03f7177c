//! Accounts of the development room server: configured users with passwords, third-party
//! apps for `getSign` + `dockingLogin`, and the users docking creates.

use std::collections::HashMap;
use std::time::Instant;

use super::limits::{MAX_DOCKING_USERS, MAX_LIVE_SIGNS, MAX_TEXT, SIGN_TTL};
use crate::config::{AccountConfig, AppConfig, Secret};
use crate::signaling::rtcpeer::wire::{Company, User};

/// First user id handed to users created by `dockingLogin`.
const FIRST_DOCKING_ID: i64 = 100_000;

#[derive(Debug)]
struct Account {
    user: User,
    password: Option<Secret>,
}

/// The server's user directory. `Debug` shows how many signatures are live, not them.
pub struct Accounts {
    users: HashMap<i64, Account>,
    by_name: HashMap<String, i64>,
    apps: HashMap<String, AppConfig>,
    /// Issued, unused signatures → appId and when issued.
    signs: HashMap<String, (String, Instant)>,
    next_docking_id: i64,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accounts")
            .field("users", &self.users)
            .field("apps", &self.apps.values().collect::<Vec<_>>())
            .field("signs", &self.signs.len())
            .field("next_docking_id", &self.next_docking_id)
            .finish()
    }
}

impl Accounts {
    /// From the configuration (already validated for unique ids and names).
    pub fn new(accounts: &[AccountConfig], apps: &[AppConfig]) -> Accounts {
        let mut all = Accounts {
            users: HashMap::new(),
            by_name: HashMap::new(),
            apps: apps.iter().map(|a| (a.app_id.clone(), a.clone())).collect(),
            signs: HashMap::new(),
            next_docking_id: FIRST_DOCKING_ID,
        };
        for a in accounts {
            let name = a.display_name.clone().unwrap_or_else(|| a.name.clone());
            let company = Some(Self::COMPANY.into());
            all.add(a.id, &a.name, name, company, Some(a.password.clone()));
        }
        all
    }

    /// Adds a user who logs in as `login`; without a password only `dockingLogin` reaches it.
    fn add(
        &mut self,
        id: i64,
        login: &str,
        name: String,
        company: Option<String>,
        password: Option<Secret>,
    ) {
        let user = User {
            id,
            account: Some(login.to_string()),
            name: Some(name),
            company,
            ..User::default()
        };
        self.users.insert(id, Account { user, password });
        self.by_name.insert(login.to_string(), id);
    }

    const COMPANY: &'static str = "roomagent development";

    /// The organisation every configured account belongs to.
    pub fn company(&self) -> Company {
        Company {
            id: 1,
            name: Some(Self::COMPANY.into()),
            ..Company::default()
        }
    }

    /// A user by id.
    pub fn user(&self, id: i64) -> Option<&User> {
        self.users.get(&id).map(|a| &a.user)
    }

    /// Checks name + password.
    pub fn check(&self, name: &str, password: &str) -> Option<User> {
        let id = self.by_name.get(name)?;
        let acc = self.users.get(id)?;
        let expected = acc.password.as_ref()?;
        constant_time_eq(expected.expose().as_bytes(), password.as_bytes())
            .then(|| acc.user.clone())
    }

    /// `getSign`: a signature for a known app with the right secret, valid for one
    /// `dockingLogin` within [`SIGN_TTL`]. Beyond [`MAX_LIVE_SIGNS`] the oldest is forgotten.
    pub fn sign(&mut self, app_id: &str, secret: &str, now: Instant) -> Option<String> {
        let app = self.apps.get(app_id)?;
        if !constant_time_eq(app.secret.expose().as_bytes(), secret.as_bytes()) {
            return None;
        }
        self.signs
            .retain(|_, (_, at)| now.saturating_duration_since(*at) < SIGN_TTL);
        if self.signs.len() >= MAX_LIVE_SIGNS {
            let oldest = self.signs.iter().min_by_key(|(_, (_, at))| *at);
            if let Some(k) = oldest.map(|(k, _)| k.clone()) {
                self.signs.remove(&k);
            }
        }
        let sign = new_token();
        self.signs.insert(sign.clone(), (app_id.to_string(), now));
        Some(sign)
    }

    /// Takes a signature out (it is single-use): its appId, if it was issued and is fresh.
    fn take_sign(&mut self, sign: &str, now: Instant) -> Option<String> {
        let (app_id, at) = self.signs.remove(sign)?;
        (now.saturating_duration_since(at) < SIGN_TTL).then_some(app_id)
    }

    /// `dockingLogin`: the user for a third-party account, created on first login. The
    /// signature is used up, whatever the outcome.
    /// Errors are the seed's codes: 2 = the appkey/signature did not verify, 4 = bad
    /// account; 1 = no room for another docking user.
    pub fn docking(
        &mut self,
        account: &str,
        user_name: Option<&str>,
        appkey: Option<&str>,
        sign: &str,
        now: Instant,
    ) -> Result<(User, Company), (i64, &'static str)> {
        let Some(app_id) = self.take_sign(sign, now) else {
            return Err((2, "signature is not valid (ask getSign for a new one)"));
        };
        if appkey.is_some_and(|k| k != app_id) {
            return Err((2, "appkey does not match the signature"));
        }
        if account.is_empty() {
            return Err((4, "account must not be empty"));
        }
        if account.len() > MAX_TEXT || user_name.is_some_and(|n| n.len() > MAX_TEXT) {
            return Err((4, "account or userName is longer than 4 KiB"));
        }
        let company_name = self.apps.get(&app_id).and_then(|a| a.company.clone());
        let login = format!("{app_id}:{account}");
        let id = match self.by_name.get(&login) {
            Some(id) => *id,
            None => self.add_docking(&login, user_name.unwrap_or(account), &company_name)?,
        };
        let user = self.users[&id].user.clone();
        Ok((
            user,
            Company {
                id: 2,
                name: company_name,
                ..Company::default()
            },
        ))
    }
}

impl Accounts {
    /// Creates a docking user, unless [`MAX_DOCKING_USERS`] exist already.
    fn add_docking(
        &mut self,
        login: &str,
        name: &str,
        company: &Option<String>,
    ) -> Result<i64, (i64, &'static str)> {
        let created = (self.next_docking_id - FIRST_DOCKING_ID) as usize;
        if created >= MAX_DOCKING_USERS {
            return Err((1, "too many docking accounts on this server"));
        }
        let id = self.next_docking_id;
        self.next_docking_id += 1;
        self.add(id, login, name.to_string(), company.clone(), None);
        Ok(id)
    }
}

/// A fresh random 128-bit token in hex: session ids and `getSign` signatures.
pub(super) fn new_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts() -> Accounts {
        Accounts::new(
            &[AccountConfig {
                id: 7,
                name: "alice".into(),
                password: Secret::new("pw"),
                display_name: None,
            }],
            &[AppConfig {
                app_id: "app1".into(),
                secret: Secret::new("s3"),
                company: Some("ACME".into()),
            }],
        )
    }

    #[test]
    fn password_login_checks_name_and_password() {
        let a = accounts();
        assert_eq!(a.check("alice", "pw").unwrap().id, 7);
        assert!(a.check("alice", "nope").is_none());
        assert!(a.check("bob", "pw").is_none());
    }

    #[test]
    fn docking_needs_an_issued_signature_and_reuses_the_user() {
        let mut a = accounts();
        let now = Instant::now();
        assert!(a.sign("app1", "wrong", now).is_none());
        let sign = a.sign("app1", "s3", now).unwrap();
        let forged = a.docking("bob", None, Some("app1"), "forged", now);
        assert_eq!(forged.unwrap_err().0, 2);
        let wrong_app = a.docking("bob", None, Some("app2"), &sign, now);
        assert_eq!(wrong_app.unwrap_err().0, 2);
        let sign = a.sign("app1", "s3", now).unwrap();
        let (u1, org) = a
            .docking("bob", Some("Bob"), Some("app1"), &sign, now)
            .unwrap();
        let sign = a.sign("app1", "s3", now).unwrap();
        let (u2, _) = a.docking("bob", None, None, &sign, now).unwrap();
        assert_eq!(u1.id, u2.id);
        assert_eq!(u1.name.as_deref(), Some("Bob"));
        assert_eq!(org.name.as_deref(), Some("ACME"));
    }

    #[test]
    fn a_signature_is_refused_when_reused_or_older_than_five_minutes() {
        let mut a = accounts();
        let now = Instant::now();
        let sign = a.sign("app1", "s3", now).unwrap();
        assert!(a.docking("bob", None, None, &sign, now).is_ok());
        let reused = a.docking("bob", None, None, &sign, now);
        assert_eq!(reused.unwrap_err().0, 2);
        let old = a.sign("app1", "s3", now).unwrap();
        let late = now + SIGN_TTL + std::time::Duration::from_secs(1);
        assert_eq!(a.docking("bob", None, None, &old, late).unwrap_err().0, 2);
        let fresh = a.sign("app1", "s3", late).unwrap();
        assert!(a.docking("bob", None, None, &fresh, late).is_ok());
    }

    #[test]
    fn docking_users_stop_at_the_cap_but_known_ones_still_log_in() {
        let mut a = accounts();
        let now = Instant::now();
        for i in 0..MAX_DOCKING_USERS {
            let sign = a.sign("app1", "s3", now).unwrap();
            assert!(a.docking(&format!("u{i}"), None, None, &sign, now).is_ok());
        }
        let sign = a.sign("app1", "s3", now).unwrap();
        let refused = a.docking("one-more", None, None, &sign, now);
        assert_eq!(refused.unwrap_err().0, 1);
        let sign = a.sign("app1", "s3", now).unwrap();
        assert!(a.docking("u0", None, None, &sign, now).is_ok());
        let sign = a.sign("app1", "s3", now).unwrap();
        let long = "x".repeat(MAX_TEXT + 1);
        assert_eq!(a.docking(&long, None, None, &sign, now).unwrap_err().0, 4);
    }
}
