//! Test harness: throwaway MariaDB databases, an in-process server with a fresh
//! development certificate, and an HTTPS client that does not follow redirects.

#![allow(dead_code)]

pub mod logout_receiver;
pub mod mariadb_server;
pub mod redis_server;
pub mod xml_tree;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use cas_core::registry::ServiceDefinition;
use cas_server::dev_certs::ensure_dev_certs;
use cas_server::Config;
use reqwest::header::{HeaderMap, ACCEPT_LANGUAGE, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{redirect, Client, Response, StatusCode};
use sqlx::{Connection, Executor, MySqlConnection};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The shared MariaDB server of the test machine, as root without a password.
pub const MARIADB_ADMIN_URL: &str = "mysql://root@127.0.0.1:3306";

/// A registered prefix service.
pub const APP: &str = "https://app.example.test/home";
/// A second registered service, matched exactly.
pub const OTHER_APP: &str = "https://other.example.test/page";
/// A valid URL that no registered service admits.
pub const STRANGER: &str = "https://evil.example.test/";

/// A database named `cas_test_<random hex>`, dropped when the value is dropped, also
/// when the test panics.
pub struct TestDatabase {
    pub name: String,
}

impl TestDatabase {
    /// Creates the database and runs `statements` in it.
    pub async fn create(statements: &[&str]) -> Self {
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).expect("random");
        let database = Self {
            name: format!("cas_test_{}", hex::encode(random)),
        };

        let mut admin = MySqlConnection::connect(MARIADB_ADMIN_URL)
            .await
            .expect("connect to MariaDB");
        admin
            .execute(format!("create database `{}`", database.name).as_str())
            .await
            .expect("create database");
        admin.close().await.expect("close");

        let mut connection = MySqlConnection::connect(&database.url())
            .await
            .expect("connect to test database");
        for statement in statements {
            connection
                .execute(*statement)
                .await
                .unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
        connection.close().await.expect("close");
        database
    }

    pub fn url(&self) -> String {
        format!("{MARIADB_ADMIN_URL}/{}", self.name)
    }
}

impl Drop for TestDatabase {
    // Drop cannot await, and the test's runtime may be shutting down, so the drop runs
    // on its own thread with its own runtime.
    fn drop(&mut self) {
        let statement = format!("drop database if exists `{}`", self.name);
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let mut admin = MySqlConnection::connect(MARIADB_ADMIN_URL).await?;
                admin.execute(statement.as_str()).await?;
                admin.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}

/// The classic user table with alice (plain password) and a NULL password row.
pub const CLASSIC_SCHEMA: &str =
    "create table app_user (username varchar(30) primary key, password varchar(45))";

/// Returns the services every test server registers.
pub fn test_services() -> Vec<ServiceDefinition> {
    let definition = |id: &str, kind: &str, pattern: &str| ServiceDefinition {
        id: id.into(),
        name: format!("Service {id}"),
        kind: kind.into(),
        pattern: pattern.into(),
        ..Default::default()
    };
    vec![
        definition("app", "prefix", "https://app.example.test/"),
        definition("other", "exact", OTHER_APP),
    ]
}

/// A server running in this process on 127.0.0.1 with a port the OS chose.
pub struct TestServer {
    pub address: SocketAddr,
    pub client: Client,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), cas_server::ServeError>>>,
    _certs: TempDir,
}

impl TestServer {
    /// Starts a server with the test services and a new certificate; `adjust` changes
    /// the configuration before start.
    pub async fn start(adjust: impl FnOnce(&mut Config)) -> Self {
        let certs = tempfile::tempdir().expect("temp dir");
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let report = ensure_dev_certs(certs.path(), &names).expect("dev certs");

        let mut config = Config::from_defaults()
            .expect("defaults")
            .with_services(test_services())
            .expect("services");
        config.tls_cert = report.server_cert.clone();
        config.tls_key = report.server_key.clone();
        config.sqlite_path = certs.path().join("demo.db");
        adjust(&mut config);

        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(cas_server::serve(listener, config, async {
            let _ = stopped.await;
        }));

        let server = Self {
            address,
            client: client(&report.ca_cert),
            shutdown: Some(shutdown),
            task: Some(task),
            _certs: certs,
        };
        server.wait_until_ready().await;
        server
    }

    async fn wait_until_ready(&self) {
        for _ in 0..100 {
            if self.client.get(self.url("/cas/login")).send().await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("server did not start");
    }

    /// Returns the port the server listens on.
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// Returns the CA certificate that signed the server's certificate.
    pub fn ca_cert(&self) -> std::path::PathBuf {
        self._certs.path().join("ca.pem")
    }

    /// Returns the server's certificate, signed by [`Self::ca_cert`] for `localhost` and
    /// `127.0.0.1`, which test servers of their own can reuse.
    pub fn server_cert(&self) -> std::path::PathBuf {
        self._certs.path().join("server.pem")
    }

    /// Returns the private key of [`Self::server_cert`].
    pub fn server_key(&self) -> std::path::PathBuf {
        self._certs.path().join("server-key.pem")
    }

    /// Returns an absolute URL on this server.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("https://127.0.0.1:{}{path_and_query}", self.address.port())
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server result");
        }
    }

    /// GET `/cas/login` with an optional service, language and cookie.
    pub async fn login_page(
        &self,
        service: Option<&str>,
        language: &str,
        cookie: Option<&str>,
    ) -> Response {
        let mut request = self
            .client
            .get(self.url("/cas/login"))
            .header(ACCEPT_LANGUAGE, language);
        if let Some(service) = service {
            request = request.query(&[("service", service)]);
        }
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        request.send().await.expect("GET login")
    }

    /// POSTs the login form with the given fields.
    pub async fn post_login(&self, fields: &[(&str, &str)], cookie: Option<&str>) -> Response {
        let mut request = self.client.post(self.url("/cas/login")).form(fields);
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        request.send().await.expect("POST login")
    }

    /// GET `/cas/login` without a session and returns the form with its login ticket
    /// and the login cookie that the ticket is bound to.
    pub async fn open_form(&self, service: Option<&str>, language: &str) -> OpenedForm {
        let response = self.login_page(service, language, None).await;
        let cookie = login_cookie_pair(response.headers()).expect("login cookie");
        let page = response.text().await.expect("body");
        OpenedForm {
            login_ticket: login_ticket(&page),
            cookie,
            page,
        }
    }

    /// Fetches a fresh form, then posts the credentials with its login ticket and
    /// login cookie.
    pub async fn login(&self, service: Option<&str>, username: &str, password: &str) -> Response {
        let form = self.open_form(service, "en").await;

        let mut fields = vec![
            ("username", username),
            ("password", password),
            ("lt", form.login_ticket.as_str()),
        ];
        if let Some(service) = service {
            fields.push(("service", service));
        }
        self.post_login(&fields, Some(&form.cookie)).await
    }

    /// Logs in to `service` and returns the service ticket and the TGC cookie pair.
    pub async fn login_for_ticket(
        &self,
        service: &str,
        username: &str,
        password: &str,
    ) -> (String, String) {
        let response = self.login(Some(service), username, password).await;
        assert_eq!(
            response.status(),
            StatusCode::SEE_OTHER,
            "login of {username} failed"
        );

        let cookie = tgc_pair(response.headers()).expect("TGC cookie");
        (ticket_from_location(response.headers()), cookie)
    }

    /// Reads the `cas_live_tickets` gauge of `kind` from `/cas/metrics`.
    pub async fn live_tickets(&self, kind: &str) -> u64 {
        let response = self
            .client
            .get(self.url("/cas/metrics"))
            .send()
            .await
            .expect("metrics");
        let text = response.text().await.expect("metrics body");
        let prefix = format!("cas_live_tickets{{kind=\"{kind}\"}} ");
        let line = text
            .lines()
            .find(|line| line.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no {prefix} in metrics:\n{text}"));
        line[prefix.len()..].parse().expect("gauge value")
    }

    /// GET a validation endpoint (`serviceValidate` or `p3/serviceValidate`).
    pub async fn validate(&self, endpoint: &str, query: &[(&str, &str)]) -> String {
        let response = self
            .client
            .get(self.url(&format!("/cas/{endpoint}")))
            .query(query)
            .send()
            .await
            .expect("validate");
        assert_eq!(response.status(), StatusCode::OK);

        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .expect("content type")
            .to_str()
            .expect("ascii");
        assert!(
            content_type.starts_with("application/xml"),
            "{content_type}"
        );
        assert_eq!(
            response
                .headers()
                .get("cache-control")
                .expect("cache-control"),
            "no-store"
        );
        response.text().await.expect("body")
    }
}

/// A login form as a browser received it.
pub struct OpenedForm {
    pub page: String,
    pub login_ticket: String,
    /// The `CASLOGIN=…` pair of the login cookie, ready for a Cookie header.
    pub cookie: String,
}

/// Builds an HTTPS client that trusts only `ca_cert` and does not follow redirects.
pub fn client(ca_cert: &Path) -> Client {
    let pem = std::fs::read(ca_cert).expect("CA file");
    let ca = reqwest::Certificate::from_pem(&pem).expect("CA certificate");
    Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .redirect(redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// Extracts the login ticket from a login form page.
pub fn login_ticket(page: &str) -> String {
    let marker = "name=\"lt\" value=\"";
    let start = page
        .find(marker)
        .unwrap_or_else(|| panic!("no login ticket in page: {page}"))
        + marker.len();
    let end = page[start..].find('"').expect("end quote");
    page[start..start + end].to_owned()
}

/// Extracts the `TGC=…` pair from a Set-Cookie header, ready for a Cookie header.
pub fn tgc_pair(headers: &HeaderMap) -> Option<String> {
    let cookie = set_cookie(headers)?;
    cookie.split(';').next().map(str::to_owned)
}

/// Name of the cookie that binds a login form to its browser.
pub const LOGIN_COOKIE: &str = "CASLOGIN";

/// Returns the first Set-Cookie header as text, leaving out the login cookie that every
/// login form sets, so that tests can check for the TGC and the warn cookie alone.
pub fn set_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().expect("ascii").to_owned())
        .find(|cookie| !cookie.starts_with(&format!("{LOGIN_COOKIE}=")))
}

/// Extracts the `CASLOGIN=…` pair of the login cookie from the Set-Cookie headers.
pub fn login_cookie_pair(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().expect("ascii"))
        .find(|cookie| cookie.starts_with(&format!("{LOGIN_COOKIE}=")))
        .and_then(|cookie| cookie.split(';').next())
        .map(str::to_owned)
}

/// Returns the Location header as text.
pub fn location(headers: &HeaderMap) -> Option<String> {
    headers
        .get(LOCATION)
        .map(|v| v.to_str().expect("ascii").to_owned())
}

/// Extracts the `ticket` query value of the Location header.
pub fn ticket_from_location(headers: &HeaderMap) -> String {
    let location = location(headers).expect("Location");
    let ticket = location.split("ticket=").nth(1).expect("ticket parameter");
    ticket.split(['&', '#']).next().expect("value").to_owned()
}

/// Replaces the configured services with the test services plus `extra`.
pub fn add_services(config: &mut Config, extra: Vec<ServiceDefinition>) {
    let mut services = test_services();
    services.extend(extra);
    *config = config
        .clone()
        .with_services(services)
        .expect("valid services");
}
