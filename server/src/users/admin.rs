//! User management behind `cas-server users`: adds a user, sets a password or disables a
//! user with the configured statements. New passwords are stored as Argon2id.

use crate::config::UserQueries;

use super::password::{hash_argon2id, PasswordHashError};
use super::sql::{DatabaseError, UserDatabase};
use super::MAX_USERNAME_BYTES;

/// Errors of a user management action.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("invalid user name {0:?}: use 1 to 255 bytes without control characters")]
    InvalidName(String),
    #[error("the password is empty")]
    EmptyPassword,
    #[error("user {0:?} already exists; use `cas-server users passwd {0}` to set its password")]
    AlreadyExists(String),
    #[error("no user {0:?} was changed: check the name, or the statement in {1}")]
    NotFound(String, &'static str),
    #[error("the password column is too short for the Argon2id hash of {length} characters: widen it, for example with `alter table app_user modify password varchar(255)`, or check the statement in {statement}")]
    PasswordColumnTooShort {
        length: usize,
        statement: &'static str,
    },
    #[error(transparent)]
    Hash(#[from] PasswordHashError),
    #[error(transparent)]
    Database(#[from] DatabaseError),
}

/// Inserts `name` with the Argon2id hash of `password`.
pub async fn add_user(
    database: &UserDatabase,
    queries: &UserQueries,
    name: &str,
    password: &str,
) -> Result<(), AdminError> {
    check_name(name)?;
    let hash = hash_new_password(password)?;

    let rows = match database.execute(&queries.add, &[name, &hash]).await {
        Ok(rows) => rows,
        Err(error) if error.is_unique_violation() => {
            return Err(AdminError::AlreadyExists(name.to_owned()))
        }
        Err(error) => return Err(stored_hash_error(error, &hash, "user_add_query")),
    };
    expect_changed(rows, name, "user_add_query")
}

/// Replaces the stored password of `name` with the Argon2id hash of `password`.
pub async fn set_password(
    database: &UserDatabase,
    queries: &UserQueries,
    name: &str,
    password: &str,
) -> Result<(), AdminError> {
    check_name(name)?;
    let hash = hash_new_password(password)?;

    let rows = database
        .execute(&queries.passwd, &[&hash, name])
        .await
        .map_err(|error| stored_hash_error(error, &hash, "user_passwd_query"))?;
    expect_changed(rows, name, "user_passwd_query")
}

/// Turns the failure of a statement that stores `hash` into the error to print. A hash
/// longer than its column becomes [`AdminError::PasswordColumnTooShort`].
fn stored_hash_error(error: DatabaseError, hash: &str, statement: &'static str) -> AdminError {
    if error.is_value_too_long() {
        return AdminError::PasswordColumnTooShort {
            length: hash.len(),
            statement,
        };
    }
    AdminError::Database(error)
}

/// Disables `name` with the configured statement.
pub async fn disable_user(
    database: &UserDatabase,
    queries: &UserQueries,
    name: &str,
) -> Result<(), AdminError> {
    check_name(name)?;

    let rows = database.execute(&queries.disable, &[name]).await?;
    expect_changed(rows, name, "user_disable_query")
}

// Login rejects the same names, so such a user could never log in.
fn check_name(name: &str) -> Result<(), AdminError> {
    if name.is_empty() || name.len() > MAX_USERNAME_BYTES || name.chars().any(char::is_control) {
        return Err(AdminError::InvalidName(name.to_owned()));
    }
    Ok(())
}

fn hash_new_password(password: &str) -> Result<String, AdminError> {
    if password.is_empty() {
        return Err(AdminError::EmptyPassword);
    }
    Ok(hash_argon2id(password)?)
}

// sqlx requests from MySQL the rows a statement matched, not only those it changed, so
// disabling a user twice still counts one row.
fn expect_changed(rows: u64, name: &str, key: &'static str) -> Result<(), AdminError> {
    if rows == 0 {
        return Err(AdminError::NotFound(name.to_owned(), key));
    }
    Ok(())
}
