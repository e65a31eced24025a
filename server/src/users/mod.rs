//! The user directory: checks a typed name and password against the configured SQL
//! queries, returns the stored user name on success, and reads the user's attributes.

pub mod admin;
pub mod attributes;
mod check_pool;
pub mod password;
pub mod sql;
mod upgrade;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cas_core::validation::Attributes;

use crate::config::Config;
use attributes::AttributeQueries;
use check_pool::CheckPool;
use password::decoy::Decoy;
use password::{is_argon2id, is_disabled, verify_password, PasswordScheme, SaltSource};
use sql::{ColumnValue, DatabaseError, UserDatabase};
use upgrade::PendingUpgrade;

/// Maximum length of a user name sent to the database, in bytes. Longer input cannot be a user.
pub(crate) const MAX_USERNAME_BYTES: usize = 255;

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
    /// The stored password starts with `!`, the mark of a disabled account.
    Disabled,
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
    scheme: PasswordScheme,
    /// The compare-and-set statement that rewrites a weaker stored password as Argon2id
    /// after a correct login, when `password_upgrade` is on.
    upgrade_query: Option<String>,
    /// Time limit of each lookup, so that a database that is down or blocked on a lock
    /// makes a login fail instead of hang.
    lookup_timeout: Duration,
    /// Check of the configured encoding that no password passes, run when a login fails
    /// before its password check, so that it costs as much hash work as a wrong password.
    decoy: Decoy,
    /// Lookups (user name, password and attribute queries) sent to the database.
    lookups: Arc<AtomicU64>,
    /// Threads that run password checks, one per core. Each Argon2id check takes 19 MiB
    /// and a core for tens of milliseconds, so more at once only adds memory and cache
    /// misses while the others wait in line.
    checks: CheckPool,
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
            scheme: PasswordScheme {
                encoding: config.password_encoding,
                salt: config.password_salt.clone(),
                salt_position: config.password_salt_position,
            },
            upgrade_query: config
                .password_upgrade
                .then(|| config.password_update_query.clone()),
            lookup_timeout: config.database_timeout,
            decoy: Decoy::new(&PasswordScheme {
                encoding: config.password_encoding,
                salt: config.password_salt.clone(),
                salt_position: config.password_salt_position,
            }),
            lookups: Arc::default(),
            checks: CheckPool::start(cores()),
        }
    }

    /// Checks `username` and `password`. Database failures are errors; everything the
    /// user or the table content can cause is a [`FailureReason`].
    ///
    /// Every name that reaches the database costs the same work: the user name query,
    /// the password query and one password verification, against the decoy when the
    /// name or its row is rejected. So an unknown user, a disabled user and a wrong
    /// password send the same queries and do the same hash work, within the cost gap
    /// that the decoy module's NOTE describes.
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
        let rows = self.password_rows(username).await?;

        let user = check_stored_name(&names, username);
        let checked = self.check_password_off_runtime(rows, password, user).await;
        if let (Some(pending), Some(query)) = (&checked.upgrade, &self.upgrade_query) {
            pending.apply(&self.database, query).await;
        }
        Ok(checked.outcome)
    }

    /// Reads the stored password of every matching row, with the salt from the second
    /// column when `password_salt = "column"`.
    async fn password_rows(&self, username: &str) -> Result<Vec<PasswordRow>, DatabaseError> {
        if self.scheme.salt != SaltSource::Column {
            let passwords = self
                .bounded(self.database.first_column(&self.password_query, username))
                .await?;
            return Ok(passwords
                .into_iter()
                .map(|password| PasswordRow {
                    password,
                    salt: None,
                })
                .collect());
        }

        let rows = self
            .bounded(self.database.all_fields(&self.password_query, username))
            .await?;
        Ok(rows.into_iter().map(PasswordRow::from_fields).collect())
    }

    /// Runs the password check on the check threads, because Argon2 takes tens of
    /// milliseconds of CPU and would stall other requests on the async workers.
    async fn check_password_off_runtime(
        &self,
        rows: Vec<PasswordRow>,
        typed: &str,
        user: Result<String, FailureReason>,
    ) -> CheckedPassword {
        let scheme = self.scheme.clone();
        let decoy = self.decoy.clone();
        let upgrade = self.upgrade_query.is_some();
        let typed = typed.to_owned();
        let checked = self
            .checks
            .run(move || {
                let user = match user {
                    Ok(user) => user,
                    Err(reason) => {
                        decoy.verify(&typed);
                        return CheckedPassword::failure(reason);
                    }
                };
                let checked = check_password(&scheme, &rows, &typed, user, upgrade);
                if let (
                    true,
                    [PasswordRow {
                        password: ColumnValue::Text(stored),
                        ..
                    }],
                ) = (checked.verified, rows.as_slice())
                {
                    decoy.match_cost(stored);
                }
                checked.or_decoy(&decoy, &typed)
            })
            .await;

        checked.unwrap_or_else(|_| {
            tracing::error!("password check failed without a result");
            CheckedPassword::failure(FailureReason::WrongPassword)
        })
    }

    /// Returns how many lookups this directory sent to the database and how many decoy
    /// checks it ran, so tests can observe the work of a login without timing it.
    pub fn work_counts(&self) -> WorkCounts {
        WorkCounts {
            lookups: self.lookups.load(Ordering::Relaxed),
            decoy_checks: self.decoy.checks(),
        }
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
        self.lookups.fetch_add(1, Ordering::Relaxed);
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

/// Work a [`UserDirectory`] has done since it was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkCounts {
    /// Queries sent to the user database.
    pub lookups: u64,
    /// Password verifications against the decoy.
    pub decoy_checks: u64,
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

/// One row of the password query: the stored password and, with `password_salt =
/// "column"`, the salt from the second column.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PasswordRow {
    password: ColumnValue,
    salt: Option<ColumnValue>,
}

impl PasswordRow {
    fn from_fields(fields: Vec<sql::Field>) -> Self {
        let mut values = fields.into_iter().map(|field| field.value);
        Self {
            password: values.next().unwrap_or(ColumnValue::Null),
            salt: Some(values.next().unwrap_or(ColumnValue::Null)),
        }
    }
}

/// The result of a password check, with the Argon2id hash to store when the stored
/// password is to be upgraded.
#[derive(Debug)]
struct CheckedPassword {
    outcome: Authentication,
    upgrade: Option<PendingUpgrade>,
    /// Whether a stored password was verified. Without it, the decoy does that work.
    verified: bool,
}

impl CheckedPassword {
    /// A failure before any stored password was verified.
    fn failure(reason: FailureReason) -> Self {
        Self {
            outcome: Authentication::Failure(reason),
            upgrade: None,
            verified: false,
        }
    }

    /// Runs the decoy check when no stored password was verified.
    fn or_decoy(self, decoy: &Decoy, typed: &str) -> Self {
        if !self.verified {
            decoy.verify(typed);
        }
        self
    }
}

fn check_password(
    scheme: &PasswordScheme,
    rows: &[PasswordRow],
    typed: &str,
    user: String,
    upgrade: bool,
) -> CheckedPassword {
    let (stored, salt) = match rows {
        [] => return CheckedPassword::failure(FailureReason::UnknownUser),
        [PasswordRow {
            password: ColumnValue::Text(stored),
            salt,
        }] => (stored, salt),
        [_] => return CheckedPassword::failure(FailureReason::UnusablePassword),
        _ => return CheckedPassword::failure(FailureReason::AmbiguousUser),
    };
    if is_disabled(stored) {
        return CheckedPassword::failure(FailureReason::Disabled);
    }

    // A NULL or binary salt is passed as missing, so the check fails with a warning.
    let column_salt = match salt {
        Some(ColumnValue::Text(salt)) => Some(salt.as_str()),
        _ => None,
    };
    if !verify_password(scheme, typed, stored, column_salt) {
        return CheckedPassword {
            verified: true,
            ..CheckedPassword::failure(FailureReason::WrongPassword)
        };
    }

    let upgrade = (upgrade && !is_argon2id(stored))
        .then(|| PendingUpgrade::prepare(&user, stored, typed))
        .flatten();
    CheckedPassword {
        outcome: Authentication::Success { user },
        upgrade,
        verified: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use password::{hash_argon2id, PasswordEncoding};

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

    fn row(password: ColumnValue) -> PasswordRow {
        PasswordRow {
            password,
            salt: None,
        }
    }

    fn outcome(stored: &[PasswordRow], typed: &str) -> Authentication {
        let plain = PasswordScheme::unsalted(PasswordEncoding::Plain);
        check_password(&plain, stored, typed, "alice".to_owned(), false).outcome
    }

    #[test]
    fn password_rows_fail_closed() {
        let success = Authentication::Success {
            user: "alice".to_owned(),
        };
        let failure = Authentication::Failure;

        assert_eq!(outcome(&[row(text("pw"))], "pw"), success);
        assert_eq!(
            outcome(&[row(text("pw"))], "px"),
            failure(FailureReason::WrongPassword)
        );
        assert_eq!(
            outcome(&[row(ColumnValue::Null)], ""),
            failure(FailureReason::UnusablePassword)
        );
        assert_eq!(
            outcome(&[row(ColumnValue::Undecodable)], ""),
            failure(FailureReason::UnusablePassword)
        );
        assert_eq!(outcome(&[], "pw"), failure(FailureReason::UnknownUser));
        assert_eq!(
            outcome(&[row(text("pw")), row(text("pw"))], "pw"),
            failure(FailureReason::AmbiguousUser)
        );
        assert_eq!(
            outcome(&[row(text("!"))], "!"),
            failure(FailureReason::Disabled)
        );
    }

    #[test]
    fn upgrade_only_after_correct_weaker_password() {
        let md5 = PasswordScheme::unsalted(PasswordEncoding::Md5);
        // Python 3: hashlib.md5(b"correct horse").hexdigest()
        let stored = [row(text("3cb4e732631f47e6eb961f34554b7cde"))];
        let check = |typed: &str, upgrade: bool| {
            check_password(&md5, &stored, typed, "alice".to_owned(), upgrade)
        };

        assert!(check("correct horse", true).upgrade.is_some());
        assert!(check("correct horse", false).upgrade.is_none());
        assert!(check("wrong horse", true).upgrade.is_none());

        let hash = hash_argon2id("correct horse").expect("hash");
        let upgraded = [row(text(&hash))];
        let checked = check_password(&md5, &upgraded, "correct horse", "alice".to_owned(), true);
        assert_eq!(
            checked.outcome,
            Authentication::Success {
                user: "alice".to_owned()
            }
        );
        assert!(checked.upgrade.is_none(), "argon2id is not upgraded again");
    }

    #[test]
    fn salt_column_row_reads_second_field() {
        let field = |value: &str| sql::Field {
            column: "c".into(),
            type_name: "VARCHAR".into(),
            value: text(value),
        };

        let both = PasswordRow::from_fields(vec![field("hash"), field("salt")]);
        let alone = PasswordRow::from_fields(vec![field("hash")]);

        assert_eq!(both.salt, Some(text("salt")));
        assert_eq!(alone.salt, Some(ColumnValue::Null));
    }
}
