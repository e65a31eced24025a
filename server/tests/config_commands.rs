//! The `check-config` and `print-config` commands of the built binary.

use std::process::{Command, Output};

fn cas_server(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cas-server"));
    command.args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run cas-server")
}

#[test]
fn check_config_lists_every_problem() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("cas.toml");
    std::fs::write(&file, "listen = \"nowhere\"\nbase_path = \"cas\"\n").expect("write");

    let output = cas_server(
        &["check-config", "--config", file.to_str().expect("utf-8")],
        &[("CAS_SERVICE_TICKET_TTL_SECONDS", "0")],
    );
    let errors = String::from_utf8_lossy(&output.stderr);

    assert_eq!(output.status.code(), Some(2), "{errors}");
    assert!(errors.contains("`listen`"), "{errors}");
    assert!(errors.contains("`base_path`"), "{errors}");
    assert!(errors.contains("`service_ticket_ttl_seconds`"), "{errors}");
}

#[test]
fn check_config_accepts_defaults() {
    let output = cas_server(&["check-config"], &[]);

    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "configuration is valid\n"
    );
}

#[test]
fn check_config_names_unknown_keys() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("cas.toml");
    std::fs::write(&file, "lisen = \"127.0.0.1:8443\"\n").expect("write");

    let output = cas_server(
        &["check-config", "--config", file.to_str().expect("utf-8")],
        &[],
    );
    let errors = String::from_utf8_lossy(&output.stderr);

    assert_eq!(output.status.code(), Some(2), "{errors}");
    assert!(errors.contains("lisen"), "{errors}");
}

#[test]
fn print_config_hides_passwords() {
    let output = cas_server(
        &["print-config", "--listen", "127.0.0.1:9443"],
        &[("CAS_DATABASE_URL", "mysql://cas:s3cret@db.example/cas")],
    );
    let text = String::from_utf8_lossy(&output.stdout);

    assert!(output.status.success());
    assert!(text.contains("listen = \"127.0.0.1:9443\""), "{text}");
    assert!(
        text.contains("mysql://cas:<redacted>@db.example/cas"),
        "{text}"
    );
    assert!(!text.contains("s3cret"), "{text}");
}

#[test]
fn check_config_rejects_bad_theme_colour() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("cas.toml");
    let services = "[[services]]\nid = \"app\"\nname = \"App\"\nmatch = \"prefix\"\npattern = \"https://app.example/\"\ntheme_color = \"blue\"\n";
    std::fs::write(&file, services).expect("write");

    let output = cas_server(
        &["check-config", "--config", file.to_str().expect("utf-8")],
        &[],
    );
    let errors = String::from_utf8_lossy(&output.stderr);

    assert_eq!(output.status.code(), Some(2), "{errors}");
    assert!(
        errors.contains("theme_color \"blue\" is invalid"),
        "{errors}"
    );
    assert!(errors.contains("#rrggbb"), "{errors}");
}
