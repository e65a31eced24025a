//! The user directory: checks a typed name and password against the configured SQL
//! queries, returns the stored user name on success, and reads the user's attributes.

pub mod attributes;
pub mod password;
pub mod sql;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use cas_core::validation::Attributes;

use crate::config::Config;
use attributes::AttributeQueries;
use password::{hash_argon2id, verify_password, PasswordEncoding};
use sql::{ColumnValue, DatabaseError, UserDatabase};

/// Maximum length of a user name sent to the database, in bytes. Longer input cannot be a user.
const MAX_USERNAME_BYTES: usize = 255;

/// The result of a credential check that reached the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication {
    /// The credentials match; `user` is the name as stored.
    Success {
        user: String,
    },
    Failure(FailureReason),
}

/// Reason for a rejected login. Only logs show it, because the user sees one message for all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    UnknownUser,
    /// The database returned a name that differs from the typed one byte for byte, as
    /// MariaDB does for `ALICE` or `alice ` with its case-insensitive, padding collations.
    NameMismatch,
    /// A query returned more than one row, so the user is ambiguous.
    AmbiguousUser,
    /// The stored password is NULL or not text.
    UnusablePassword,
    WrongPassword,
    /// The stored name contains a control character, which CAS XML, headers and logs
    /// cannot carry without changing it, so the login fails instead.
    UnusableName,
}

/// Credential checks against the user table.
#[derive(Debug, Clone)]
pub struct UserDirectory {
    database: UserDatabase,
    username_query: String,
    password_query: String,
    attribute_queries: AttributeQueries,
    encoding: PasswordEncoding,
    /// Time limit of each lookup, so that a database that is down or blocked on a lock
    /// makes a login fail instead of hang.
    lookup_timeout: Duration,
    /// Hash of a random password, verified when the user name is rejected so that an
    /// unknown name costs about as much time as a wrong password.
    timing_decoy: Option<Arc<str>>,
    /// Password checks that may run at once: one per core. Each Argon2id check takes
    /// 19 MiB and a core for tens of milliseconds, so more at once only adds memory and
    /// cache misses while the others wait in line.
    check_slots: Arc<Semaphore>,
}

impl UserDirectory {
    /// Connects to `database_url`, or opens the embedded SQLite store when it is unset.
    pub async fn connect(config: &Config) -> Result<Self, DatabaseError> {
        let database = match &config.database_url {
            Some(url) => UserDatabase::connect_mysql(url, config.database_timeout).await?,
            None => {
                UserDatabase::open_sqlite_demo(&config.sqlite_path, config.password_encoding)
                    .await?
            }
        };
        Ok(Self::new(database, config))
    }

    /// Wraps an open database with the queries and encoding from `config`.
    pub fn new(database: UserDatabase, config: &Config) -> Self {
        Self {
            database,
            username_query: config.username_query.clone(),
            password_query: config.password_query.clone(),
            attribute_queries: AttributeQueries {
                columns: config.attribute_query.clone(),
                pairs: config.attribute_pairs_query.clone(),
            },
            encoding: config.password_encoding,
            lookup_timeout: config.database_timeout,
            timing_decoy: timing_decoy(config.password_encoding),
            check_slots: Arc::new(Semaphore::new(cores())),
        }
    }

    /// Checks `username` and `password`. Database failures are errors; everything the
    /// user or the table content can cause is a [`FailureReason`].
    pub async fn authenticate(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Authentication, DatabaseError> {
        if username.is_empty() || username.len() > MAX_USERNAME_BYTES {
            return Ok(Authentication::Failure(FailureReason::UnknownUser));
        }

        let names = self
            .bounded(self.database.first_column(&self.username_query, username))
            .await?;
        let user = match check_stored_name(&names, username) {
            Ok(user) => user,
            Err(reason) => {
                self.spend_decoy_time(password).await;
                return Ok(Authentication::Failure(reason));
            }
        };

        let passwords = self
            .bounded(self.database.first_column(&self.password_query, username))
            .await?;
        Ok(self
            .check_password_off_runtime(passwords, password, user)
            .await)
    }

    /// Runs the password check on the blocking pool, because Argon2 takes tens of
    /// milliseconds of CPU and would stall other requests on the async workers.
    async fn check_password_off_runtime(
        &self,
        stored: Vec<ColumnValue>,
        typed: &str,
        user: String,
    ) -> Authentication {
        let encoding = self.encoding;
        let typed = typed.to_owned();
        let Ok(_slot) = self.check_slots.acquire().await else {
            return Authentication::Failure(FailureReason::WrongPassword);
        };
        let checked =
            tokio::task::spawn_blocking(move || check_password(encoding, &stored, &typed, user))
                .await;

        checked.unwrap_or_else(|error| {
            tracing::error!(%error, "password check task failed");
            Authentication::Failure(FailureReason::WrongPassword)
        })
    }

    async fn spend_decoy_time(&self, typed: &str) {
        let Some(decoy) = self.timing_decoy.clone() else {
            return;
        };
        let typed = typed.to_owned();
        let Ok(_slot) = self.check_slots.acquire().await else {
            return;
        };
        let _ = tokio::task::spawn_blocking(move || {
            verify_password(PasswordEncoding::Argon2id, &typed, &decoy)
        })
        .await;
    }

    /// Reads the attributes of `user`, the name as stored, with the configured attribute
    /// queries. Without queries the result is empty.
    pub async fn attributes(&self, user: &str) -> Result<Attributes, DatabaseError> {
        self.bounded(self.attribute_queries.fetch(&self.database, user))
            .await
    }

    /// Runs `lookup` for at most `lookup_timeout`.
    ///
    /// NOTE: a lookup cut off by the timeout keeps running on the database server. Its
    /// connection then waits in the background for the result before the pool tests
    /// and reuses it, so a query blocked on a lock holds one pooled connection until the
    /// lock is released.
    async fn bounded<T>(
        &self,
        lookup: impl Future<Output = Result<T, DatabaseError>>,
    ) -> Result<T, DatabaseError> {
        match tokio::time::timeout(self.lookup_timeout, lookup).await {
            Ok(result) => result,
            Err(_) => Err(DatabaseError::TimedOut(self.lookup_timeout)),
        }
    }

    /// Checks that the user database answers a trivial query.
    pub async fn ping(&self) -> Result<(), DatabaseError> {
        self.database.ping().await
    }

    /// Closes the database connections.
    pub async fn close(&self) {
        self.database.close().await;
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

fn timing_decoy(encoding: PasswordEncoding) -> Option<Arc<str>> {
    if encoding != PasswordEncoding::Argon2id {
        return None;
    }

    let mut random = [0u8; 16];
    getrandom::fill(&mut random).ok()?;
    match hash_argon2id(&hex::encode(random)) {
        Ok(hash) => Some(hash.into()),
        Err(error) => {
            tracing::warn!(%error, "no timing decoy hash; unknown user names will fail faster than wrong passwords");
            None
        }
    }
}

/// Returns the stored name when exactly one row came back and it equals the typed name.
fn check_stored_name(names: &[ColumnValue], typed: &str) -> Result<String, FailureReason> {
    match names {
        [] => Err(FailureReason::UnknownUser),
        [ColumnValue::Text(stored)] if stored.as_bytes() == typed.as_bytes() => {
            if stored.chars().any(char::is_control) {
                return Err(FailureReason::UnusableName);
            }
            Ok(stored.clone())
        }
        [_] => Err(FailureReason::NameMismatch),
        _ => Err(FailureReason::AmbiguousUser),
    }
}

fn check_password(
    encoding: PasswordEncoding,
    stored: &[ColumnValue],
    typed: &str,
    user: String,
) -> Authentication {
    let stored = match stored {
        [] => return Authentication::Failure(FailureReason::UnknownUser),
        [ColumnValue::Text(stored)] => stored,
        [_] => return Authentication::Failure(FailureReason::UnusablePassword),
        _ => return Authentication::Failure(FailureReason::AmbiguousUser),
    };

    if verify_password(encoding, typed, stored) {
        Authentication::Success { user }
    } else {
        Authentication::Failure(FailureReason::WrongPassword)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(value: &str) -> ColumnValue {
        ColumnValue::Text(value.into())
    }

    #[test]
    fn stored_name_must_match_bytes() {
        assert_eq!(
            check_stored_name(&[text("alice")], "alice"),
            Ok("alice".into())
        );
        assert_eq!(
            check_stored_name(&[text("alice")], "ALICE"),
            Err(FailureReason::NameMismatch)
        );
        assert_eq!(
            check_stored_name(&[text("alice")], "alice "),
            Err(FailureReason::NameMismatch)
        );
        assert_eq!(
            check_stored_name(&[ColumnValue::Null], "alice"),
            Err(FailureReason::NameMismatch)
        );
    }

    #[test]
    fn control_characters_in_names_fail() {
        for name in [
            "de\u{1}mo",
            "demo\n",
            "admin\r\nINFO forged",
            "a\u{1b}[31m",
            "a\u{85}b",
        ] {
            assert_eq!(
                check_stored_name(&[text(name)], name),
                Err(FailureReason::UnusableName),
                "{name:?}"
            );
        }
        assert_eq!(
            check_stored_name(&[text("张三")], "张三"),
            Ok("张三".to_owned())
        );
        assert_eq!(
            check_stored_name(&[text(" demo")], " demo"),
            Ok(" demo".to_owned())
        );
    }

    #[test]
    fn stored_name_needs_one_row() {
        assert_eq!(
            check_stored_name(&[], "alice"),
            Err(FailureReason::UnknownUser)
        );
        assert_eq!(
            check_stored_name(&[text("alice"), text("alice")], "alice"),
            Err(FailureReason::AmbiguousUser)
        );
    }

    #[test]
    fn password_rows_fail_closed() {
        let plain = PasswordEncoding::Plain;
        let user = || "alice".to_owned();

        assert_eq!(
            check_password(plain, &[text("pw")], "pw", user()),
            Authentication::Success { user: user() }
        );
        assert_eq!(
            check_password(plain, &[text("pw")], "px", user()),
            Authentication::Failure(FailureReason::WrongPassword)
        );
        assert_eq!(
            check_password(plain, &[ColumnValue::Null], "", user()),
            Authentication::Failure(FailureReason::UnusablePassword)
        );
        assert_eq!(
            check_password(plain, &[ColumnValue::Undecodable], "", user()),
            Authentication::Failure(FailureReason::UnusablePassword)
        );
        assert_eq!(
            check_password(plain, &[], "pw", user()),
            Authentication::Failure(FailureReason::UnknownUser)
        );
        assert_eq!(
            check_password(plain, &[text("pw"), text("pw")], "pw", user()),
            Authentication::Failure(FailureReason::AmbiguousUser)
        );
    }
}
