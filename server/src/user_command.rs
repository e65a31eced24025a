//! `cas-server users`: reads the new password without echo and runs the user management
//! action against the configured user database.

use std::io::{BufRead, IsTerminal};

use crate::cli::UsersCommand;
use crate::users::admin::{add_user, disable_user, set_password, AdminError};
use crate::users::sql::{DatabaseError, UserDatabase};
use crate::Config;

/// Errors of `cas-server users`, each printed as one line.
#[derive(Debug, thiserror::Error)]
pub enum UserCommandError {
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot read the password: {0}")]
    ReadPassword(std::io::Error),
    #[error("the two passwords differ")]
    PasswordMismatch,
    #[error(transparent)]
    Database(#[from] DatabaseError),
    #[error(transparent)]
    Admin(#[from] AdminError),
}

/// Runs one `users` action and returns the line to print on success.
pub async fn run_users(command: &UsersCommand) -> Result<String, UserCommandError> {
    let (args, action) = match command {
        UsersCommand::Add(args) => (args, "added"),
        UsersCommand::Passwd(args) => (args, "set the password of"),
        UsersCommand::Disable(args) => (args, "disabled"),
    };
    let config = args.settings.load_config()?;

    // The password is read before connecting, so a wrong password prompt costs no
    // database connection, and a database error does not come between the prompts.
    let password = match command {
        UsersCommand::Disable(_) => None,
        _ => Some(read_new_password()?),
    };

    let database = open_database(&config).await?;
    let done = apply(command, &database, &config, password.as_deref()).await;
    database.close().await;

    done?;
    Ok(format!("{action} user {:?}", args.name))
}

async fn apply(
    command: &UsersCommand,
    database: &UserDatabase,
    config: &Config,
    password: Option<&str>,
) -> Result<(), AdminError> {
    let queries = &config.user_queries;
    let password = password.unwrap_or_default();
    match command {
        UsersCommand::Add(args) => add_user(database, queries, &args.name, password).await,
        UsersCommand::Passwd(args) => set_password(database, queries, &args.name, password).await,
        UsersCommand::Disable(args) => disable_user(database, queries, &args.name).await,
    }
}

/// Opens the configured MySQL database, or the embedded SQLite store when
/// `database_url` is empty.
async fn open_database(config: &Config) -> Result<UserDatabase, DatabaseError> {
    match &config.database_url {
        Some(url) => UserDatabase::connect_mysql(url, config.database_timeout).await,
        None => UserDatabase::open_sqlite_demo(&config.sqlite_path, config.password_encoding).await,
    }
}

/// Reads the new password: twice from a prompt without echo on a terminal, otherwise as
/// the first line of standard input without its line ending.
fn read_new_password() -> Result<String, UserCommandError> {
    if std::io::stdin().is_terminal() {
        return prompt_twice();
    }

    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(UserCommandError::ReadPassword)?;
    Ok(strip_line_ending(line))
}

fn prompt_twice() -> Result<String, UserCommandError> {
    let first =
        rpassword::prompt_password("New password: ").map_err(UserCommandError::ReadPassword)?;
    let second =
        rpassword::prompt_password("Repeat it: ").map_err(UserCommandError::ReadPassword)?;
    if first != second {
        return Err(UserCommandError::PasswordMismatch);
    }
    Ok(first)
}

fn strip_line_ending(mut line: String) -> String {
    if line.ends_with('\n') {
        line.pop();
        if line.ends_with('\r') {
            line.pop();
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_ending_is_stripped_once() {
        assert_eq!(strip_line_ending("pw\n".into()), "pw");
        assert_eq!(strip_line_ending("pw\r\n".into()), "pw");
        assert_eq!(strip_line_ending("pw".into()), "pw");
        assert_eq!(strip_line_ending(" pw \n\n".into()), " pw \n");
    }
}
