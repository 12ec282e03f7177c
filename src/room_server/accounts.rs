//! Accounts of the development room server: configured users with passwords, third-party
//! apps for `getSign` + `dockingLogin`, and the users docking creates.

use std::collections::HashMap;

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
    /// Issued signatures → appId.
    signs: HashMap<String, String>,
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

    /// `getSign`: a signature for a known app with the right secret.
    pub fn sign(&mut self, app_id: &str, secret: &str) -> Option<String> {
        let app = self.apps.get(app_id)?;
        if !constant_time_eq(app.secret.expose().as_bytes(), secret.as_bytes()) {
            return None;
        }
        let sign = new_token();
        self.signs.insert(sign.clone(), app_id.to_string());
        Some(sign)
    }

    /// `dockingLogin`: the user for a third-party account, created on first login.
    /// Errors are the seed's codes: 2 = the appkey/signature did not verify.
    pub fn docking(
        &mut self,
        account: &str,
        user_name: Option<&str>,
        appkey: Option<&str>,
        sign: &str,
    ) -> Result<(User, Company), (i64, &'static str)> {
        let Some(app_id) = self.signs.get(sign).cloned() else {
            return Err((2, "signature is not valid (ask getSign for a new one)"));
        };
        if appkey.is_some_and(|k| k != app_id) {
            return Err((2, "appkey does not match the signature"));
        }
        if account.is_empty() {
            return Err((4, "account must not be empty"));
        }
        let company_name = self.apps.get(&app_id).and_then(|a| a.company.clone());
        let login = format!("{app_id}:{account}");
        let id = match self.by_name.get(&login) {
            Some(id) => *id,
            None => {
                let id = self.next_docking_id;
                self.next_docking_id += 1;
                let name = user_name.unwrap_or(account).to_string();
                self.add(id, &login, name, company_name.clone(), None);
                id
            }
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
        assert!(a.sign("app1", "wrong").is_none());
        let sign = a.sign("app1", "s3").unwrap();
        assert_eq!(
            a.docking("bob", None, Some("app1"), "forged")
                .unwrap_err()
                .0,
            2
        );
        assert_eq!(
            a.docking("bob", None, Some("app2"), &sign).unwrap_err().0,
            2
        );
        let (u1, org) = a.docking("bob", Some("Bob"), Some("app1"), &sign).unwrap();
        let (u2, _) = a.docking("bob", None, None, &sign).unwrap();
        assert_eq!(u1.id, u2.id);
        assert_eq!(u1.name.as_deref(), Some("Bob"));
        assert_eq!(org.name.as_deref(), Some("ACME"));
    }
}
