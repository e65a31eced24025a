//! `cas-server users` run as a built binary against a MariaDB test database, checked by
//! logging in through the server.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use cas_server::users::password::PasswordEncoding;
use common::*;
use reqwest::StatusCode;
use sqlx::{Connection, MySqlConnection};

/// A user table wide enough for Argon2id PHC strings.
const WIDE_SCHEMA: &str =
    "create table app_user (username varchar(30) primary key, password varchar(255))";

/// Runs `cas-server users ARGS` with `stdin` as its standard input and the database in
/// `CAS_DATABASE_URL`, unless `args` names a configuration file.
async fn run_users(database: &TestDatabase, args: &[&str], stdin: &str) -> Output {
    let url = database.url();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let stdin = stdin.to_owned();

    tokio::task::spawn_blocking(move || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_cas-server"));
        for (key, _) in std::env::vars().filter(|(key, _)| key.starts_with("CAS_")) {
            command.env_remove(key);
        }
        if !args.iter().any(|a| a == "--config") {
            command.env("CAS_DATABASE_URL", url);
        }
        let mut child = command
            .arg("users")
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start cas-server");

        let mut input = child.stdin.take().expect("stdin");
        input.write_all(stdin.as_bytes()).expect("write stdin");
        drop(input);
        child.wait_with_output().expect("wait for cas-server")
    })
    .await
    .expect("command task")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

async fn stored_password(database: &TestDatabase, user: &str) -> Option<String> {
    let mut connection = MySqlConnection::connect(&database.url())
        .await
        .expect("connect");
    let stored: Option<String> =
        sqlx::query_scalar("select password from app_user where username=?")
            .bind(user)
            .fetch_one(&mut connection)
            .await
            .expect("select");
    connection.close().await.expect("close");
    stored
}

async fn server_for(database: &TestDatabase, encoding: PasswordEncoding) -> TestServer {
    let url = database.url();
    TestServer::start(move |config| {
        config.database_url = Some(url);
        config.password_encoding = encoding;
    })
    .await
}

#[tokio::test]
async fn add_stores_argon2id_and_logs_in() {
    let database = TestDatabase::create(&[WIDE_SCHEMA]).await;

    let added = run_users(&database, &["add", "bob"], "bob password 密码\n").await;

    assert!(added.status.success(), "{}", stderr(&added));
    assert!(
        stdout(&added).contains("added user \"bob\""),
        "{}",
        stdout(&added)
    );
    let stored = stored_password(&database, "bob").await.expect("password");
    assert!(stored.starts_with("$argon2id$v=19$"), "{stored}");
    assert!(
        !stderr(&added).contains("bob password"),
        "password in output"
    );

    let server = server_for(&database, PasswordEncoding::Argon2id).await;
    server
        .login_for_ticket(APP, "bob", "bob password 密码")
        .await;
    let wrong = server.login(Some(APP), "bob", "bob password 密码\n").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    server.stop().await;
}

/// The embedded SQLite store of the demo reports a taken name with another error code
/// than MySQL, and gets the same message.
#[tokio::test]
async fn add_of_existing_user_is_named_in_sqlite() {
    let database = TestDatabase::create(&[WIDE_SCHEMA]).await;
    let folder = tempfile::tempdir().expect("temp dir");
    let file = folder.path().join("cas.toml");
    let settings = format!(
        "database_url = \"\"\nsqlite_path = \"{}\"\n",
        folder.path().join("users.db").display()
    );
    std::fs::write(&file, settings).expect("write config");
    let config = file.to_str().expect("UTF-8 path");
    let first = run_users(&database, &["add", "bob", "--config", config], "first\n").await;
    assert!(first.status.success(), "{}", stderr(&first));

    let again = run_users(&database, &["add", "bob", "--config", config], "second\n").await;

    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("user \"bob\" already exists"),
        "{}",
        stderr(&again)
    );
}

#[tokio::test]
async fn passwd_from_config_file_replaces_md5() {
    // Python 3: hashlib.md5(b"correct horse").hexdigest()
    let database = TestDatabase::create(&[
        WIDE_SCHEMA,
        "insert into app_user values ('alice', '3cb4e732631f47e6eb961f34554b7cde')",
    ])
    .await;
    let folder = tempfile::tempdir().expect("temp dir");
    let file = folder.path().join("cas.toml");
    let settings = format!(
        "database_url = \"{}\"\npassword_encoding = \"md5\"\n",
        database.url()
    );
    std::fs::write(&file, settings).expect("write config");
    let config = file.to_str().expect("UTF-8 path");

    let changed = run_users(
        &database,
        &["passwd", "alice", "--config", config],
        "new horse\r\n",
    )
    .await;

    assert!(changed.status.success(), "{}", stderr(&changed));
    let server = server_for(&database, PasswordEncoding::Md5).await;
    server.login_for_ticket(APP, "alice", "new horse").await;
    let old = server.login(Some(APP), "alice", "correct horse").await;
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    server.stop().await;
}

#[tokio::test]
async fn disable_blocks_login_until_passwd() {
    let database = TestDatabase::create(&[WIDE_SCHEMA]).await;
    let added = run_users(&database, &["add", "carol"], "carol-password\n").await;
    assert!(added.status.success(), "{}", stderr(&added));

    let disabled = run_users(&database, &["disable", "carol"], "").await;

    assert!(disabled.status.success(), "{}", stderr(&disabled));
    assert_eq!(
        stored_password(&database, "carol").await.as_deref(),
        Some("!")
    );
    let server = server_for(&database, PasswordEncoding::Plain).await;
    for password in ["carol-password", "!"] {
        let response = server.login(Some(APP), "carol", password).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{password}");
    }

    let enabled = run_users(&database, &["passwd", "carol"], "carol-again\n").await;
    assert!(enabled.status.success(), "{}", stderr(&enabled));
    server.login_for_ticket(APP, "carol", "carol-again").await;
    server.stop().await;
}

/// The classic CAS table of the migration guide, too narrow for an Argon2id hash.
const CLASSIC_SCHEMA: &str =
    "create table app_user (username varchar(30) primary key, password varchar(45))";

#[tokio::test]
async fn narrow_password_column_is_named() {
    let database =
        TestDatabase::create(&[CLASSIC_SCHEMA, "insert into app_user values ('alice', 'x')"]).await;

    for (args, statement) in [
        (["add", "bob"], "user_add_query"),
        (["passwd", "alice"], "user_passwd_query"),
    ] {
        let output = run_users(&database, &args, "long enough\n").await;

        assert!(!output.status.success(), "{args:?}");
        let message = stderr(&output);
        assert!(
            message.contains("the password column is too short"),
            "{args:?}: {message}"
        );
        assert!(message.contains("varchar(255)"), "{args:?}: {message}");
        assert!(message.contains(statement), "{args:?}: {message}");
    }
    assert_eq!(
        stored_password(&database, "alice").await.as_deref(),
        Some("x")
    );
}

#[tokio::test]
async fn users_errors_exit_nonzero() {
    let database =
        TestDatabase::create(&[WIDE_SCHEMA, "insert into app_user values ('alice', 'x')"]).await;

    let cases: [(&[&str], &str, &str); 5] = [
        (&["add", "alice"], "pw\n", "user \"alice\" already exists"),
        (&["passwd", "nobody"], "pw\n", "no user \"nobody\""),
        (&["disable", "nobody"], "", "no user \"nobody\""),
        (&["add", "dave"], "\n", "the password is empty"),
        (&["add", "eve\u{1}"], "pw\n", "invalid user name"),
    ];
    for (args, input, expected) in cases {
        let output = run_users(&database, args, input).await;

        assert!(!output.status.success(), "{args:?}");
        assert!(
            stderr(&output).contains(expected),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    assert_eq!(
        stored_password(&database, "alice").await.as_deref(),
        Some("x")
    );
}
