//! SQL access to the user table: a MySQL/MariaDB pool for a configured database, or a
//! SQLite pool for the embedded demo store, each running one-parameter lookups.

use std::path::Path;
use std::time::Duration;

use sqlx::mysql::{MySqlPool, MySqlPoolOptions, MySqlRow};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteRow};
use sqlx::{Column, Row, TypeInfo};

use super::password::{hash_argon2id, PasswordEncoding};

/// How long the embedded store waits for a free connection before it fails.
const SQLITE_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections per pool; logins are short queries, so a few suffice.
const MAX_CONNECTIONS: u32 = 8;

/// Name and password of the user created in an empty embedded store.
pub const DEMO_USER: &str = "demo";
pub const DEMO_PASSWORD: &str = "demo-password";

/// One value of the first column of a result row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnValue {
    Text(String),
    Null,
    /// Neither text nor UTF-8 bytes, so it can never match typed input.
    Undecodable,
}

/// One cell of a result row, with its column's name and SQL type for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub column: String,
    pub type_name: String,
    /// The cell as text: strings, UTF-8 bytes and numbers are read, other types are
    /// [`ColumnValue::Undecodable`].
    pub value: ColumnValue,
}

/// Errors from opening or querying the user database.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error("cannot open the user database; check the setting database_url (or sqlite_path when it is empty): {0}")]
    Connect(sqlx::Error),
    #[error("user database query failed: {0}")]
    Query(#[from] sqlx::Error),
    #[error("user database did not answer within {0:?} (setting database_timeout_seconds)")]
    TimedOut(Duration),
    #[error("cannot create the folder for the SQLite file {path}: {reason}")]
    CreateFolder { path: String, reason: String },
    #[error("cannot hash the demo password: {0}")]
    DemoHash(#[from] super::password::PasswordHashError),
}

impl DatabaseError {
    /// Returns whether a statement failed on a unique key or primary key, as an insert
    /// of a user name that is already in the table does.
    pub fn is_unique_violation(&self) -> bool {
        match self {
            Self::Query(sqlx::Error::Database(error)) => error.is_unique_violation(),
            _ => false,
        }
    }

    /// Returns whether a statement failed because a value was longer than its column
    /// (SQLSTATE 22001, MySQL error 1406), as an Argon2id hash is for the `varchar(45)`
    /// password column of older CAS tables. MySQL and MariaDB raise it in strict SQL
    /// mode, their default. Outside strict mode they cut the value short instead.
    pub fn is_value_too_long(&self) -> bool {
        match self {
            Self::Query(sqlx::Error::Database(error)) => error.code().as_deref() == Some("22001"),
            _ => false,
        }
    }
}

/// A connection pool to the user table.
#[derive(Debug, Clone)]
pub enum UserDatabase {
    MySql(MySqlPool),
    Sqlite(SqlitePool),
}

impl UserDatabase {
    /// Connects to a MySQL or MariaDB server. The server's tables are used as they are.
    /// Waiting for a pooled connection, which includes connecting while the server is
    /// down, fails after `acquire_timeout`.
    ///
    /// A server that cannot be reached at start is not an error: the pool connects when
    /// a login needs it, and logins return 503 until then. A malformed URL, refused
    /// credentials or an unknown database stop the start, because waiting cannot fix them.
    pub async fn connect_mysql(
        url: &str,
        acquire_timeout: Duration,
    ) -> Result<Self, DatabaseError> {
        let pool = MySqlPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(acquire_timeout)
            .connect_lazy(url)
            .map_err(DatabaseError::Connect)?;

        match pool.acquire().await {
            Ok(_) => {}
            Err(error) if is_unreachable(&error) => {
                tracing::warn!(%error, "user database unreachable at start; logins return 503 until it accepts connections");
            }
            Err(error) => return Err(DatabaseError::Connect(error)),
        }
        Ok(Self::MySql(pool))
    }

    /// Opens (creating it if needed) the embedded SQLite demo store at `path`, with its
    /// table and, when the table is empty, the demo user.
    pub async fn open_sqlite_demo(
        path: &Path,
        encoding: PasswordEncoding,
    ) -> Result<Self, DatabaseError> {
        create_parent_folder(path)?;

        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(SQLITE_ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(DatabaseError::Connect)?;

        restrict_to_owner(path);
        create_demo_table(&pool).await?;
        insert_demo_user_if_empty(&pool, encoding).await?;
        Ok(Self::Sqlite(pool))
    }

    /// Runs `query` with `name` bound to its one `?` and returns the first column of
    /// every row.
    pub async fn first_column(
        &self,
        query: &str,
        name: &str,
    ) -> Result<Vec<ColumnValue>, DatabaseError> {
        let values = match self {
            Self::MySql(pool) => {
                let rows = sqlx::query(query).bind(name).fetch_all(pool).await?;
                rows.iter().map(mysql_value).collect()
            }
            Self::Sqlite(pool) => {
                let rows = sqlx::query(query).bind(name).fetch_all(pool).await?;
                rows.iter().map(sqlite_value).collect()
            }
        };
        Ok(values)
    }

    /// Runs `query` with `name` bound to its one `?` and returns every cell of every row.
    pub async fn all_fields(
        &self,
        query: &str,
        name: &str,
    ) -> Result<Vec<Vec<Field>>, DatabaseError> {
        let rows = match self {
            Self::MySql(pool) => {
                let rows = sqlx::query(query).bind(name).fetch_all(pool).await?;
                rows.iter().map(mysql_fields).collect()
            }
            Self::Sqlite(pool) => {
                let rows = sqlx::query(query).bind(name).fetch_all(pool).await?;
                rows.iter().map(sqlite_fields).collect()
            }
        };
        Ok(rows)
    }

    /// Runs the statement `query` with `values` bound to its `?` placeholders in order,
    /// and returns the number of rows it changed.
    pub async fn execute(&self, query: &str, values: &[&str]) -> Result<u64, DatabaseError> {
        let rows = match self {
            Self::MySql(pool) => {
                let mut statement = sqlx::query(query);
                for value in values {
                    statement = statement.bind(*value);
                }
                statement.execute(pool).await?.rows_affected()
            }
            Self::Sqlite(pool) => {
                let mut statement = sqlx::query(query);
                for value in values {
                    statement = statement.bind(*value);
                }
                statement.execute(pool).await?.rows_affected()
            }
        };
        Ok(rows)
    }

    /// Runs `select 1`, for the readiness endpoint.
    pub async fn ping(&self) -> Result<(), DatabaseError> {
        match self {
            Self::MySql(pool) => sqlx::query("select 1").execute(pool).await?,
            Self::Sqlite(pool) => {
                sqlx::query("select 1").execute(pool).await?;
                return Ok(());
            }
        };
        Ok(())
    }

    /// Closes every pooled connection.
    pub async fn close(&self) {
        match self {
            Self::MySql(pool) => pool.close().await,
            Self::Sqlite(pool) => pool.close().await,
        }
    }
}

// A column declared VARBINARY or BLOB does not decode as a string, so bytes are tried
// next and accepted only when they are UTF-8.
fn mysql_value(row: &MySqlRow) -> ColumnValue {
    if let Ok(text) = row.try_get::<Option<String>, _>(0) {
        return text.map_or(ColumnValue::Null, ColumnValue::Text);
    }
    bytes_value(row.try_get::<Option<Vec<u8>>, _>(0).ok())
}

fn sqlite_value(row: &SqliteRow) -> ColumnValue {
    if let Ok(text) = row.try_get::<Option<String>, _>(0) {
        return text.map_or(ColumnValue::Null, ColumnValue::Text);
    }
    bytes_value(row.try_get::<Option<Vec<u8>>, _>(0).ok())
}

fn mysql_fields(row: &MySqlRow) -> Vec<Field> {
    row.columns()
        .iter()
        .map(|column| {
            let index = column.ordinal();
            let type_name = column.type_info().name().to_owned();
            Field {
                column: column.name().to_owned(),
                value: mysql_field_value(row, index, &type_name),
                type_name,
            }
        })
        .collect()
}

// MySQL sends DECIMAL as its decimal text, so that type alone is read unchecked as a
// string. Dates and times arrive in a binary form and stay undecodable.
fn mysql_field_value(row: &MySqlRow, index: usize, type_name: &str) -> ColumnValue {
    let value = mysql_value_at(row, index);
    if value != ColumnValue::Undecodable {
        return value;
    }
    if let Ok(number) = row.try_get::<Option<i64>, _>(index) {
        return number.map_or(ColumnValue::Null, |n| ColumnValue::Text(n.to_string()));
    }
    if let Ok(number) = row.try_get::<Option<u64>, _>(index) {
        return number.map_or(ColumnValue::Null, |n| ColumnValue::Text(n.to_string()));
    }
    if let Ok(number) = row.try_get::<Option<f64>, _>(index) {
        return number.map_or(ColumnValue::Null, |n| ColumnValue::Text(n.to_string()));
    }
    if let Ok(number) = row.try_get::<Option<f32>, _>(index) {
        return number.map_or(ColumnValue::Null, |n| ColumnValue::Text(n.to_string()));
    }
    if type_name.eq_ignore_ascii_case("DECIMAL") {
        if let Ok(text) = row.try_get_unchecked::<Option<String>, _>(index) {
            return text.map_or(ColumnValue::Null, ColumnValue::Text);
        }
    }
    ColumnValue::Undecodable
}

fn mysql_value_at(row: &MySqlRow, index: usize) -> ColumnValue {
    if let Ok(text) = row.try_get::<Option<String>, _>(index) {
        return text.map_or(ColumnValue::Null, ColumnValue::Text);
    }
    bytes_value(row.try_get::<Option<Vec<u8>>, _>(index).ok())
}

fn sqlite_fields(row: &SqliteRow) -> Vec<Field> {
    row.columns()
        .iter()
        .map(|column| {
            let index = column.ordinal();
            Field {
                column: column.name().to_owned(),
                type_name: column.type_info().name().to_owned(),
                value: sqlite_field_value(row, index),
            }
        })
        .collect()
}

fn sqlite_field_value(row: &SqliteRow, index: usize) -> ColumnValue {
    if let Ok(text) = row.try_get::<Option<String>, _>(index) {
        return text.map_or(ColumnValue::Null, ColumnValue::Text);
    }
    if let Ok(number) = row.try_get::<Option<i64>, _>(index) {
        return number.map_or(ColumnValue::Null, |n| ColumnValue::Text(n.to_string()));
    }
    if let Ok(number) = row.try_get::<Option<f64>, _>(index) {
        return number.map_or(ColumnValue::Null, |n| ColumnValue::Text(n.to_string()));
    }
    bytes_value(row.try_get::<Option<Vec<u8>>, _>(index).ok())
}

fn bytes_value(bytes: Option<Option<Vec<u8>>>) -> ColumnValue {
    match bytes {
        Some(Some(bytes)) => {
            String::from_utf8(bytes).map_or(ColumnValue::Undecodable, ColumnValue::Text)
        }
        Some(None) => ColumnValue::Null,
        None => ColumnValue::Undecodable,
    }
}

/// Makes the store readable by its owner only, because it contains password hashes (or
/// plain passwords with `password_encoding = "plain"`). A failure is logged, not fatal.
fn restrict_to_owner(path: &Path) {
    use std::os::unix::fs::PermissionsExt;

    let owner_only = std::fs::Permissions::from_mode(0o600);
    if let Err(error) = std::fs::set_permissions(path, owner_only) {
        tracing::warn!(path = %path.display(), %error, "cannot make the SQLite store private");
    }
}

fn create_parent_folder(path: &Path) -> Result<(), DatabaseError> {
    let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    std::fs::create_dir_all(parent).map_err(|e| DatabaseError::CreateFolder {
        path: parent.display().to_string(),
        reason: e.to_string(),
    })
}

// The classic MySQL schema declares password varchar(45), which cannot hold an Argon2id
// PHC string (about 97 characters with the default cost), so the embedded store widens
// it to varchar(255). SQLite does not enforce the length; the declaration documents it.
const CREATE_DEMO_TABLE: &str =
    "create table if not exists app_user (username varchar(30) primary key, password varchar(255))";

async fn create_demo_table(pool: &SqlitePool) -> Result<(), DatabaseError> {
    sqlx::query(CREATE_DEMO_TABLE).execute(pool).await?;
    Ok(())
}

async fn insert_demo_user_if_empty(
    pool: &SqlitePool,
    encoding: PasswordEncoding,
) -> Result<(), DatabaseError> {
    let count: i64 = sqlx::query_scalar("select count(*) from app_user")
        .fetch_one(pool)
        .await?;
    if count > 0 {
        tracing::info!(users = count, "embedded user store already has users");
        return Ok(());
    }

    // The demo password is stored in plain text under `plain` and as Argon2id otherwise,
    // which every encoding accepts, so that the demo user can log in under any setting.
    let stored = match encoding {
        PasswordEncoding::Plain => DEMO_PASSWORD.to_owned(),
        _ => hash_argon2id(DEMO_PASSWORD)?,
    };
    sqlx::query("insert into app_user (username, password) values (?, ?)")
        .bind(DEMO_USER)
        .bind(stored)
        .execute(pool)
        .await?;

    tracing::info!(
        user = DEMO_USER,
        encoding = encoding.as_str(),
        "created the demo user in the embedded store"
    );
    Ok(())
}

/// Returns whether a connection error means the database server could not be reached,
/// which may pass, rather than that it refused the connection.
fn is_unreachable(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn demo_store_creates_user_once() {
        let folder = tempfile::tempdir().expect("temp dir");
        let path = folder.path().join("nested/demo.db");

        let database = UserDatabase::open_sqlite_demo(&path, PasswordEncoding::Argon2id)
            .await
            .expect("open");
        let passwords = database
            .first_column("select password from app_user where username=?", DEMO_USER)
            .await
            .expect("query");
        database.close().await;

        let reopened = UserDatabase::open_sqlite_demo(&path, PasswordEncoding::Argon2id)
            .await
            .expect("reopen");
        let again = reopened
            .first_column("select password from app_user where username=?", DEMO_USER)
            .await
            .expect("query");

        assert_eq!(passwords.len(), 1);
        assert_eq!(passwords, again);
        assert!(matches!(&passwords[0], ColumnValue::Text(hash) if hash.starts_with("$argon2id$")));
    }

    #[tokio::test]
    async fn sqlite_null_and_bytes_decode() {
        let folder = tempfile::tempdir().expect("temp dir");
        let database =
            UserDatabase::open_sqlite_demo(&folder.path().join("d.db"), PasswordEncoding::Plain)
                .await
                .expect("open");

        let null = database
            .first_column("select null where ? is not null", "x")
            .await
            .expect("query");
        let blob = database
            .first_column("select cast(? as blob)", "abc")
            .await
            .expect("query");
        let bad = database
            .first_column("select x'ff' where ? is not null", "x")
            .await
            .expect("query");

        assert_eq!(null, vec![ColumnValue::Null]);
        assert_eq!(blob, vec![ColumnValue::Text("abc".into())]);
        assert_eq!(bad, vec![ColumnValue::Undecodable]);
    }
}
