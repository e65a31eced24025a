//! The embedded SQLite demo store and the binary's command line.

mod common;

use std::process::Command;

use common::*;
use reqwest::StatusCode;

#[tokio::test]
async fn demo_user_logs_in() {
    let server = TestServer::start(|config| config.database_url = None).await;

    let (ticket, _) = server.login_for_ticket(APP, "demo", "demo-password").await;
    let xml = server
        .validate(
            "p3/serviceValidate",
            &[("service", APP), ("ticket", &ticket)],
        )
        .await;

    assert!(xml.contains("<cas:user>demo</cas:user>"), "{xml}");
    assert_eq!(
        server.login(Some(APP), "demo", "wrong").await.status(),
        StatusCode::UNAUTHORIZED
    );
    server.stop().await;
}

#[tokio::test]
async fn demo_store_attributes() {
    let server = TestServer::start(|config| {
        config.database_url = None;
        config.attribute_query = Some(
            "select username || '@demo.test' as mail, 42 as age, null as phone, x'ff' as raw \
             from app_user where username=?"
                .into(),
        );
        config.attribute_pairs_query = Some(
            "select 'memberOf', value from (select '演示组' as value union all select 'staff 🎉') \
             where ? is not null"
                .into(),
        );
        let services = config
            .services
            .iter()
            .cloned()
            .map(|mut service| {
                service.attributes = vec!["*".into()];
                service
            })
            .collect();
        *config = config.clone().with_services(services).expect("services");
    })
    .await;

    let (ticket, _) = server.login_for_ticket(APP, "demo", "demo-password").await;
    let xml = server
        .validate(
            "p3/serviceValidate",
            &[("service", APP), ("ticket", &ticket)],
        )
        .await;

    assert!(xml.contains("<cas:mail>demo@demo.test</cas:mail>"), "{xml}");
    assert!(xml.contains("<cas:age>42</cas:age>"), "{xml}");
    assert!(xml.contains("<cas:memberOf>演示组</cas:memberOf>"), "{xml}");
    assert!(
        xml.contains("<cas:memberOf>staff 🎉</cas:memberOf>"),
        "{xml}"
    );
    assert!(!xml.contains("cas:phone"), "NULL skipped: {xml}");
    assert!(!xml.contains("cas:raw"), "non-UTF-8 bytes skipped: {xml}");
    server.stop().await;
}

#[tokio::test]
async fn embedded_store_is_private() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("private.db");
    let store = path.clone();
    let server = TestServer::start(move |config| {
        config.database_url = None;
        config.sqlite_path = store;
    })
    .await;

    let mode = std::fs::metadata(&path)
        .expect("store exists")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "store mode is {:o}", mode & 0o777);
    server.stop().await;
}

#[test]
fn help_describes_every_option() {
    let output = Command::new(env!("CARGO_BIN_EXE_cas-server"))
        .arg("--help")
        .output()
        .expect("run binary");
    let help = String::from_utf8(output.stdout).expect("utf-8");

    assert!(output.status.success());
    for option in [
        "--config",
        "--listen",
        "--base-path",
        "--tls-cert",
        "--tls-key",
        "--database-url",
        "--sqlite-path",
        "--password-query",
        "--username-query",
        "--attribute-query",
        "--attribute-pairs-query",
        "--password-encoding",
        "--service-ticket-ttl-seconds",
        "--sso-session-ttl-seconds",
        "--ticket-store",
        "--memory-max-tickets",
        "--redis-url",
        "--redis-key-prefix",
        "--redis-pool-size",
        "--metrics-path",
        "--log-format",
        "dev-certs",
    ] {
        assert!(help.contains(option), "{option} missing in help");
    }
}

#[test]
fn invalid_setting_stops_startup() {
    let output = Command::new(env!("CARGO_BIN_EXE_cas-server"))
        .args(["run", "--listen", "nowhere"])
        .env_remove("CAS_CONFIG")
        .output()
        .expect("run binary");
    let message = String::from_utf8(output.stderr).expect("utf-8");

    assert_eq!(output.status.code(), Some(2));
    assert!(message.contains("`listen`"), "{message}");
    assert!(!message.contains("panicked"), "{message}");
}

#[test]
fn environment_overrides_file() {
    let folder = tempfile::tempdir().expect("temp dir");
    let file = folder.path().join("cas.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:1\"\npassword_encoding = \"md5\"\n",
    )
    .expect("write");

    let output = Command::new(env!("CARGO_BIN_EXE_cas-server"))
        .arg("--config")
        .arg(&file)
        .env("CAS_PASSWORD_ENCODING", "sha3-256")
        .output()
        .expect("run binary");
    let message = String::from_utf8(output.stderr).expect("utf-8");

    assert_eq!(output.status.code(), Some(2));
    assert!(message.contains("password_encoding"), "{message}");
    assert!(message.contains("sha3-256"), "{message}");
}

#[test]
fn dev_certs_command_is_idempotent() {
    let folder = tempfile::tempdir().expect("temp dir");
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_cas-server"))
            .args(["dev-certs", "--out"])
            .arg(folder.path())
            .output()
            .expect("run binary")
    };

    let first = String::from_utf8(run().stdout).expect("utf-8");
    let second = String::from_utf8(run().stdout).expect("utf-8");

    assert!(
        first.contains("checking development certificates in"),
        "{first}"
    );
    assert!(second.contains("nothing to do"), "{second}");
    assert!(!second.contains("wrote "), "{second}");
    for file in ["ca.pem", "ca-key.pem", "server.pem", "server-key.pem"] {
        assert!(folder.path().join(file).exists(), "{file}");
        let line = format!("wrote {} (", folder.path().join(file).display());
        assert!(first.contains(&line), "{file} is listed: {first}");
    }
}
