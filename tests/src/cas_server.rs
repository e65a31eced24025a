//! The CAS server alone on a free loopback port, on a MariaDB database of its own, for
//! tests that bring their own CAS client instead of the edge filter.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sqlx::mysql::MySqlPoolOptions;
use sqlx::Executor;

use crate::database::TestDatabase;
use crate::flows::{PASSWORD, USER};
use crate::process::{repo_root, start_listening, ManagedProcess, SERVER_READY};

/// The `mail` attribute of [`USER`] when the server reads attributes from SQL.
pub const USER_MAIL: &str = "alice@example.org";

/// The `displayName` attribute of [`USER`].
pub const USER_DISPLAY_NAME: &str = "Alice Example";

/// The values of the multi-valued `memberOf` attribute of [`USER`], in insertion order.
pub const USER_GROUPS: [&str; 2] = ["staff", "developers"];

/// Settings of one server start.
#[derive(Default)]
pub struct CasServerOptions {
    /// `[[services]]` tables in TOML, the whole service registry of the server.
    pub services: String,
    /// Whether the server reads the user attributes above from SQL.
    pub user_attributes: bool,
}

/// A running CAS server; dropping it stops the server and drops the database.
pub struct CasServer {
    /// Base URL with the `/cas` path and no trailing slash.
    pub url: String,
    pub ca_pem: Vec<u8>,
    process: ManagedProcess,
    _database: TestDatabase,
    dir: tempfile::TempDir,
}

impl CasServer {
    /// Starts the server with the user [`USER`] (password [`PASSWORD`]) in MariaDB, the
    /// services of `options`, and the development CA as the trust root of its proxy
    /// callbacks. Returns once `/login` responds.
    pub async fn start(options: CasServerOptions) -> Self {
        let binary = server_binary();
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temp dir: {e}"));
        let database = TestDatabase::create().await;
        database.add_plain_user(USER, PASSWORD).await;

        let mut attribute_settings = String::new();
        if options.user_attributes {
            add_user_attributes(&database).await;
            attribute_settings = user_attribute_settings();
        }

        make_certificates(&binary, dir.path());
        let (process, port) = start_on_free_port(
            &binary,
            dir.path(),
            &database.url,
            &attribute_settings,
            &options,
        )
        .await;

        let ca_pem =
            std::fs::read(dir.path().join("ca.pem")).unwrap_or_else(|e| panic!("no CA: {e}"));
        let mut server = Self {
            url: format!("https://127.0.0.1:{port}/cas"),
            ca_pem,
            process,
            _database: database,
            dir,
        };
        server.wait_until_ready().await;
        server
    }

    /// Returns the development CA certificate that signed the server's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Returns the server's certificate and key files, which are also valid for any
    /// other HTTPS listener on 127.0.0.1.
    pub fn certificate_files(&self) -> (PathBuf, PathBuf) {
        (
            self.dir.path().join("server.pem"),
            self.dir.path().join("server-key.pem"),
        )
    }

    /// Returns the last lines of the server log, for failure messages.
    pub fn log_tail(&self) -> String {
        self.process.log_tail()
    }

    async fn wait_until_ready(&mut self) {
        let ca = reqwest::Certificate::from_pem(&self.ca_pem).unwrap_or_else(|e| panic!("{e}"));
        let client = reqwest::Client::builder()
            .add_root_certificate(ca)
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let login = format!("{}/login", self.url);

        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            self.process.assert_running();
            if client.get(&login).send().await.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{login} did not answer within 60 s:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Writes the configuration for a free port and starts the server on it, trying new
/// ports when another process took the port before the server could bind it. Returns
/// once the server logs that it listens.
async fn start_on_free_port(
    binary: &Path,
    dir: &Path,
    database_url: &str,
    attribute_settings: &str,
    options: &CasServerOptions,
) -> (ManagedProcess, u16) {
    start_listening("cas-server", SERVER_READY, dir, |port| {
        let config = format!(
            r#"listen = "127.0.0.1:{port}"
base_path = "/cas"
tls_cert = "{dir}/server.pem"
tls_key = "{dir}/server-key.pem"
outbound_ca_file = "{dir}/ca.pem"
database_url = "{database_url}"
password_encoding = "plain"
{attribute_settings}
{services}"#,
            dir = dir.display(),
            services = options.services,
        );
        let config_path = dir.join("cas-server.toml");
        std::fs::write(&config_path, config)
            .unwrap_or_else(|e| panic!("cannot write server config: {e}"));

        let mut command = Command::new(binary);
        command
            .arg("run")
            .arg("--config")
            .arg(&config_path)
            .env("RUST_LOG", "info")
            .current_dir(dir);
        command
    })
    .await
}

/// Locates the cas-server binary, which scripts/test.sh builds before the tests run.
pub fn server_binary() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("target"));
    let binary = target.join("debug/cas-server");
    assert!(
        binary.exists(),
        "{} is missing: run scripts/test.sh, which builds it first",
        binary.display()
    );
    binary
}

/// Makes a development CA and a server certificate for localhost and 127.0.0.1 in `dir`.
pub(crate) fn make_certificates(server: &Path, dir: &Path) {
    let status = Command::new(server)
        .args(["dev-certs", "--out"])
        .arg(dir)
        .args(["--name", "localhost", "--name", "127.0.0.1"])
        .status()
        .unwrap_or_else(|e| panic!("cannot run cas-server dev-certs: {e}"));
    assert!(status.success(), "cas-server dev-certs failed: {status}");
}

/// Returns the settings that read the attributes [`add_user_attributes`] stores: one
/// row of single-valued columns, and name-value rows for the multi-valued `memberOf`.
fn user_attribute_settings() -> String {
    r#"attribute_query = "select mail, displayName from app_user_profile where username=?"
attribute_pairs_query = "select name, value from app_user_attribute where username=? order by id"
"#
    .to_owned()
}

async fn add_user_attributes(database: &TestDatabase) {
    let pool = MySqlPoolOptions::new()
        .max_connections(1)
        .connect(&database.url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", database.name));

    let statements = [
        "CREATE TABLE app_user_profile (username varchar(30) primary key, \
         mail varchar(100), displayName varchar(100))"
            .to_owned(),
        "CREATE TABLE app_user_attribute (id int auto_increment primary key, \
         username varchar(30), name varchar(64), value varchar(255))"
            .to_owned(),
        format!(
            "INSERT INTO app_user_profile VALUES ('{USER}', '{USER_MAIL}', '{USER_DISPLAY_NAME}')"
        ),
    ];
    for statement in &statements {
        pool.execute(statement.as_str())
            .await
            .unwrap_or_else(|e| panic!("{statement} failed: {e}"));
    }

    for group in USER_GROUPS {
        sqlx::query("INSERT INTO app_user_attribute (username, name, value) VALUES (?, ?, ?)")
            .bind(USER)
            .bind("memberOf")
            .bind(group)
            .execute(&pool)
            .await
            .unwrap_or_else(|e| panic!("cannot add group {group}: {e}"));
    }
    pool.close().await;
}
