//! Password encodings and upgrade on login against a real MariaDB user table.

mod common;

use std::time::Duration;

use cas_server::config::Config;
use cas_server::users::password::{
    verify_password, PasswordEncoding, PasswordScheme, SaltPosition, SaltSource,
};
use cas_server::users::sql::UserDatabase;
use cas_server::users::{Authentication, FailureReason, UserDirectory, WorkCounts};
use common::*;
use reqwest::StatusCode;
use sqlx::{Connection, MySqlConnection};

const PASSWORD: &str = "correct horse";

/// Python 3: `hashlib.md5("s4lt!correct horse".encode()).hexdigest()`.
const MD5_SALT_BEFORE: &str = "cac9ede682e0c5f206ec20a48eee91e0";
/// Python 3: `hashlib.md5(b"correct horse").hexdigest()`.
const MD5_UNSALTED: &str = "3cb4e732631f47e6eb961f34554b7cde";
/// Python 3: `hashlib.md5(b"new horse").hexdigest()`.
const MD5_NEW_HORSE: &str = "fdd2088ee2c196594cfc552e3a75452b";

/// A user table wide enough for Argon2id, with a salt column.
const SALTED_SCHEMA: &str = "create table app_user (username varchar(30) primary key, password varchar(255), salt varchar(30))";

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

async fn execute(database: &TestDatabase, statement: &str) {
    let mut connection = MySqlConnection::connect(&database.url())
        .await
        .expect("connect");
    sqlx::query(statement)
        .execute(&mut connection)
        .await
        .expect(statement);
    connection.close().await.expect("close");
}

#[tokio::test]
async fn upgrade_rewrites_weaker_hash_once() {
    let insert = format!("insert into app_user values ('alice', '{MD5_SALT_BEFORE}', 's4lt!')");
    let database = TestDatabase::create(&[SALTED_SCHEMA, &insert]).await;
    let url = database.url();
    let server = TestServer::start(move |config| {
        config.database_url = Some(url);
        config.password_encoding = PasswordEncoding::Md5;
        config.password_salt = SaltSource::Column;
        config.password_query = "select password, salt from app_user where username=?".into();
        config.password_upgrade = true;
    })
    .await;

    let wrong = server.login(Some(APP), "alice", "correct horsE").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        stored_password(&database, "alice").await.as_deref(),
        Some(MD5_SALT_BEFORE),
        "a wrong password upgrades nothing"
    );

    server.login_for_ticket(APP, "alice", PASSWORD).await;
    let upgraded = stored_password(&database, "alice").await.expect("password");
    assert!(upgraded.starts_with("$argon2id$v=19$"), "{upgraded}");
    let argon2id = PasswordScheme::unsalted(PasswordEncoding::Argon2id);
    assert!(verify_password(&argon2id, PASSWORD, &upgraded, None));

    server.login_for_ticket(APP, "alice", PASSWORD).await;
    assert_eq!(
        stored_password(&database, "alice").await.as_deref(),
        Some(upgraded.as_str()),
        "an argon2id hash is not rewritten"
    );
    let wrong = server.login(Some(APP), "alice", "correct horsE").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    server.stop().await;
}

#[tokio::test]
async fn upgrade_off_leaves_hash() {
    let insert = format!("insert into app_user values ('alice', '{MD5_UNSALTED}', null)");
    let database = TestDatabase::create(&[SALTED_SCHEMA, &insert]).await;
    let url = database.url();
    let server = TestServer::start(move |config| {
        config.database_url = Some(url);
        config.password_encoding = PasswordEncoding::Md5;
    })
    .await;

    server.login_for_ticket(APP, "alice", PASSWORD).await;

    assert_eq!(
        stored_password(&database, "alice").await.as_deref(),
        Some(MD5_UNSALTED)
    );
    server.stop().await;
}

/// Waits until MariaDB runs the login's password query, which sleeps after reading the row.
async fn wait_for_sleeping_query(database: &TestDatabase) {
    let mut connection = MySqlConnection::connect(MARIADB_ADMIN_URL)
        .await
        .expect("connect");
    // The pattern is split so that this query does not match itself.
    let probe = "select count(*) from information_schema.processlist \
                 where db = ? and id <> connection_id() and info like concat('%sle', 'ep(2)%')";
    for _ in 0..200 {
        let running: i64 = sqlx::query_scalar(probe)
            .bind(&database.name)
            .fetch_one(&mut connection)
            .await
            .expect("processlist");
        if running > 0 {
            connection.close().await.expect("close");
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the password query never ran");
}

#[tokio::test]
async fn upgrade_keeps_concurrent_change() {
    let insert = format!("insert into app_user values ('alice', '{MD5_UNSALTED}', null)");
    let database = TestDatabase::create(&[SALTED_SCHEMA, &insert]).await;
    let url = database.url();
    // The password query reads the row, then sleeps, so that the test can change the row
    // between the read and the upgrade's compare-and-set update.
    let server = TestServer::start(move |config| {
        config.database_url = Some(url);
        config.password_encoding = PasswordEncoding::Md5;
        config.password_query =
            "select password from app_user where username=? and sleep(2) = 0".into();
        config.password_upgrade = true;
    })
    .await;

    let form = server.open_form(Some(APP), "en").await;
    let fields = [
        ("username", "alice"),
        ("password", PASSWORD),
        ("lt", form.login_ticket.as_str()),
        ("service", APP),
    ];
    let login = server.post_login(&fields, Some(&form.cookie));
    let change = async {
        wait_for_sleeping_query(&database).await;
        let statement =
            format!("update app_user set password='{MD5_NEW_HORSE}' where username='alice'");
        execute(&database, &statement).await;
    };
    let (response, ()) = tokio::join!(login, change);

    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "the password read before the change was correct"
    );
    assert_eq!(
        stored_password(&database, "alice").await.as_deref(),
        Some(MD5_NEW_HORSE),
        "the concurrent change is not overwritten"
    );
    server.stop().await;
}

/// Stored values of "correct horse" in each encoding, with the settings that read them.
struct EncodingCase {
    encoding: PasswordEncoding,
    salt: SaltSource,
    position: SaltPosition,
    stored: &'static str,
    salt_column: Option<&'static str>,
}

fn encoding_cases() -> Vec<EncodingCase> {
    let case = |encoding, stored| EncodingCase {
        encoding,
        salt: SaltSource::None,
        position: SaltPosition::Before,
        stored,
        salt_column: None,
    };
    vec![
        // The `bcrypt` 5.0.0 PyPI package: bcrypt.hashpw(b"correct horse", bcrypt.gensalt(4)).
        case(
            PasswordEncoding::Bcrypt,
            "$2b$04$T78.xVrZ2uX5gGHLlDAuJuHsLnsOtrb//bpq//RYHpM/vta7C3cGm",
        ),
        // Python 3 hashlib.pbkdf2_hmac("sha256", b"correct horse", b"Xq3fR9kLm2", 1000).
        case(
            PasswordEncoding::Pbkdf2Sha256,
            "pbkdf2_sha256$1000$Xq3fR9kLm2$j8wKJLAitI1w4/G+PRvjLkyKYYrQIely+FBdAla+lnU=",
        ),
        // Python 3 hashlib.sha1(b"correct horse").hexdigest(), in upper case.
        case(
            PasswordEncoding::Sha1,
            "2F9E53523B62ABC141A2B4D6019D23CBA835DBD0",
        ),
        // Python 3 hashlib.sha256("s4lt!correct horse".encode()).hexdigest() after its salt.
        EncodingCase {
            salt: SaltSource::Prefix {
                separator: "$".into(),
            },
            ..case(
                PasswordEncoding::Sha256,
                "s4lt!$aca86dbaca3bec0da7186f68188140beea83bdfff796c7b5c9c9a567485f2331",
            )
        },
        // Python 3 hashlib.sha512("correct horses4lt!".encode()).hexdigest().
        EncodingCase {
            salt: SaltSource::Column,
            position: SaltPosition::After,
            salt_column: Some("s4lt!"),
            ..case(
                PasswordEncoding::Sha512,
                "2fca7fe71071ee1b6e159855a818e1577bfe9369af3e00b76835de589407b5aabe0ce63ecb84986571c6feb4da066c007b95941376397c64c7aae0f6108af529",
            )
        },
    ]
}

#[tokio::test]
async fn each_encoding_logs_in() {
    for case in encoding_cases() {
        let name = case.encoding.as_str();
        let salt = case
            .salt_column
            .map_or("null".to_owned(), |s| format!("'{s}'"));
        let insert = format!(
            "insert into app_user values ('alice', '{}', {salt}), ('bob', 'not-a-hash', {salt})",
            case.stored
        );
        let database = TestDatabase::create(&[SALTED_SCHEMA, &insert]).await;
        let url = database.url();
        let server = TestServer::start(move |config| {
            config.database_url = Some(url);
            config.password_encoding = case.encoding;
            if case.salt == SaltSource::Column {
                config.password_query =
                    "select password, salt from app_user where username=?".into();
            }
            config.password_salt = case.salt;
            config.password_salt_position = case.position;
        })
        .await;

        let right = server.login(Some(APP), "alice", PASSWORD).await;
        let wrong = server.login(Some(APP), "alice", "correct horsE").await;
        let malformed = server.login(Some(APP), "bob", "not-a-hash").await;

        assert_eq!(right.status(), StatusCode::SEE_OTHER, "{name}");
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "{name} wrong");
        assert_eq!(
            malformed.status(),
            StatusCode::UNAUTHORIZED,
            "{name} malformed stored value"
        );
        server.stop().await;
    }
}

/// Runs one check and returns its outcome with the lookups and decoy checks it caused.
async fn check_work(
    directory: &UserDirectory,
    username: &str,
    password: &str,
) -> (Authentication, WorkCounts) {
    let before = directory.work_counts();
    let outcome = directory
        .authenticate(username, password)
        .await
        .expect("authenticate");
    let after = directory.work_counts();
    let work = WorkCounts {
        lookups: after.lookups - before.lookups,
        decoy_checks: after.decoy_checks - before.decoy_checks,
    };
    (outcome, work)
}

/// An unknown user, a disabled user and a wrong password each cost two lookups and one
/// password verification in every encoding: the first two verify the decoy. The
/// failure reasons stay distinct for the audit log.
#[tokio::test]
async fn failures_cost_equal_work() {
    let argon2id = cas_server::users::password::hash_argon2id(PASSWORD).expect("hash");
    let mut cases = encoding_cases();
    cases.push(EncodingCase {
        encoding: PasswordEncoding::Argon2id,
        salt: SaltSource::None,
        position: SaltPosition::Before,
        stored: Box::leak(argon2id.into_boxed_str()),
        salt_column: None,
    });
    cases.push(EncodingCase {
        encoding: PasswordEncoding::Plain,
        salt: SaltSource::None,
        position: SaltPosition::Before,
        stored: PASSWORD,
        salt_column: None,
    });

    for case in cases {
        let name = case.encoding.as_str();
        let salt = case
            .salt_column
            .map_or("null".to_owned(), |s| format!("'{s}'"));
        let insert = format!(
            "insert into app_user values ('alice', '{stored}', {salt}), ('dora', '!{stored}', {salt})",
            stored = case.stored
        );
        let database = TestDatabase::create(&[SALTED_SCHEMA, &insert]).await;
        let mut config = Config::from_defaults().expect("defaults");
        config.password_encoding = case.encoding;
        config.password_salt = case.salt.clone();
        config.password_salt_position = case.position;
        if case.salt == SaltSource::Column {
            config.password_query = "select password, salt from app_user where username=?".into();
        }
        let connection = UserDatabase::connect_mysql(&database.url(), Duration::from_secs(5))
            .await
            .expect("connect");
        let directory = UserDirectory::new(connection, &config);

        // The wrong password comes first, so the decoy has the cost of the stored hash.
        let (wrong, wrong_work) = check_work(&directory, "alice", "correct horsE").await;
        let (unknown, unknown_work) = check_work(&directory, "nobody", PASSWORD).await;
        let (disabled, disabled_work) = check_work(&directory, "dora", PASSWORD).await;
        let (right, right_work) = check_work(&directory, "alice", PASSWORD).await;

        let failure = Authentication::Failure;
        assert_eq!(unknown, failure(FailureReason::UnknownUser), "{name}");
        assert_eq!(disabled, failure(FailureReason::Disabled), "{name}");
        assert_eq!(wrong, failure(FailureReason::WrongPassword), "{name}");
        assert!(matches!(right, Authentication::Success { .. }), "{name}");
        for (label, work) in [
            ("unknown", unknown_work),
            ("disabled", disabled_work),
            ("wrong", wrong_work),
            ("right", right_work),
        ] {
            assert_eq!(work.lookups, 2, "{name} {label}");
        }
        assert_eq!(unknown_work.decoy_checks, 1, "{name}");
        assert_eq!(disabled_work.decoy_checks, 1, "{name}");
        assert_eq!(wrong_work.decoy_checks, 0, "{name}");
        assert_eq!(right_work.decoy_checks, 0, "{name}");
        directory.close().await;
    }
}

/// The login page does not tell an unknown or disabled user from a wrong password.
#[tokio::test]
async fn failures_show_same_page() {
    let insert = format!(
        "insert into app_user values ('alice', '{MD5_UNSALTED}', null), ('dora', '!{MD5_UNSALTED}', null)"
    );
    let database = TestDatabase::create(&[SALTED_SCHEMA, &insert]).await;
    let url = database.url();
    let server = TestServer::start(move |config| {
        config.database_url = Some(url);
        config.password_encoding = PasswordEncoding::Md5;
    })
    .await;

    let mut messages = Vec::new();
    for (username, password) in [("nobody", PASSWORD), ("dora", PASSWORD), ("alice", "wrong")] {
        let response = server.login(Some(APP), username, password).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{username}");
        let page = response.text().await.expect("body");
        let message = page
            .lines()
            .find(|line| line.contains("role=\"alert\"") || line.contains("class=\"error\""))
            .unwrap_or_default()
            .to_owned();
        messages.push(message);
    }

    assert!(!messages[0].is_empty(), "{messages:?}");
    assert_eq!(messages[0], messages[1]);
    assert_eq!(messages[0], messages[2]);
    server.stop().await;
}
