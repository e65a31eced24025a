//! Upgrade on login: after a correct password stored in a weaker encoding, the stored
//! value is rewritten as Argon2id with a compare-and-set statement.

use super::password::hash_argon2id;
use super::sql::UserDatabase;

/// An Argon2id hash waiting to replace the stored password it was checked against.
#[derive(Debug)]
pub struct PendingUpgrade {
    user: String,
    old_stored: String,
    new_stored: String,
}

impl PendingUpgrade {
    /// Hashes the verified password. A hashing failure is logged and skips the upgrade,
    /// because the login itself has succeeded.
    pub fn prepare(user: &str, old_stored: &str, typed: &str) -> Option<Self> {
        match hash_argon2id(typed) {
            Ok(new_stored) => Some(Self {
                user: user.to_owned(),
                old_stored: old_stored.to_owned(),
                new_stored,
            }),
            Err(error) => {
                tracing::warn!(user = ?user, %error, "cannot hash the password for its upgrade");
                None
            }
        }
    }

    /// Runs `query` with the new hash, the user name and the old stored value bound to
    /// its three `?` in this order. The old value makes it a compare-and-set: a row that
    /// changed since the login read it is left alone. Errors are logged, not returned.
    pub async fn apply(&self, database: &UserDatabase, query: &str) {
        let values = [
            self.new_stored.as_str(),
            self.user.as_str(),
            self.old_stored.as_str(),
        ];
        match database.execute(query, &values).await {
            Ok(0) => tracing::info!(
                user = ?self.user,
                "stored password changed since the login read it; not upgraded"
            ),
            Ok(rows) => {
                tracing::info!(user = ?self.user, rows, "upgraded the stored password to argon2id")
            }
            Err(error) => {
                tracing::warn!(user = ?self.user, %error, "cannot upgrade the stored password")
            }
        }
    }
}
