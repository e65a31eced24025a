//! Interoperability with python-cas, the CAS client library on PyPI: the script
//! tests/interop/python_cas_client.py signs in at /login as a browser would, validates the
//! ticket with the library, and prints what it received. scripts/setup.sh installs the
//! library into the virtualenv in `.tools/venv`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use e2e_tests::cas_server::{
    CasServer, CasServerOptions, USER_DISPLAY_NAME, USER_GROUPS, USER_MAIL,
};
use e2e_tests::flows::{PASSWORD, USER};
use e2e_tests::process::{free_port, repo_root};

/// Time limit of one script run; python-cas sets no HTTP timeouts of its own.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);

/// A CAS server whose registry admits the script's services, and the port of the
/// script's HTTPS proxy callback, under which those service URLs also lie.
struct Fixture {
    server: CasServer,
    callback_port: u16,
}

impl Fixture {
    async fn start(user_attributes: bool) -> Self {
        let callback_port = free_port();
        let services = format!(
            r#"
[[services]]
id = "python-app"
name = "python-cas application"
match = "prefix"
pattern = "https://127.0.0.1:{callback_port}/app/"
attributes = ["*"]
proxy_callbacks = ["https://127.0.0.1:{callback_port}/"]
single_logout = false

[[services]]
id = "python-backend"
name = "python-cas proxied back end"
match = "prefix"
pattern = "https://127.0.0.1:{callback_port}/backend/"
attributes = ["*"]
accept_proxy_tickets = true
single_logout = false
"#
        );
        let server = CasServer::start(CasServerOptions {
            services,
            user_attributes,
        })
        .await;
        Self {
            server,
            callback_port,
        }
    }

    fn app_service(&self) -> String {
        format!("https://127.0.0.1:{}/app/home", self.callback_port)
    }

    fn backend_service(&self) -> String {
        format!("https://127.0.0.1:{}/backend/api", self.callback_port)
    }

    /// Runs one scenario of the script and returns its outcome.
    fn run(&self, scenario: &str, extra: &[String]) -> ScriptRun {
        let script = repo_root().join("tests/interop/python_cas_client.py");
        let mut command = Command::new(python());
        command
            .arg(&script)
            .arg(scenario)
            .args(["--cas", &format!("{}/", self.server.url)])
            .args(["--service", &self.app_service()])
            .args(["--username", USER, "--password", PASSWORD])
            .args(extra)
            .env("REQUESTS_CA_BUNDLE", self.server.ca_file())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let run = run_with_timeout(command);
        ScriptRun {
            server_log: self.server.log_tail(),
            ..run
        }
    }
}

/// The exit status and output of one script run, with the server log for failure messages.
struct ScriptRun {
    success: bool,
    stdout: String,
    stderr: String,
    server_log: String,
}

impl ScriptRun {
    fn describe(&self) -> String {
        format!(
            "stdout:\n{}\nstderr:\n{}\ncas-server log:\n{}",
            self.stdout, self.stderr, self.server_log
        )
    }

    fn assert_succeeded(&self) {
        assert!(self.success, "the script failed:\n{}", self.describe());
        self.assert_line("result=ok");
    }

    fn assert_line(&self, expected: &str) {
        assert!(
            self.stdout.lines().any(|line| line == expected),
            "no line {expected:?} in the script output:\n{}",
            self.describe()
        );
    }

    fn assert_line_starting(&self, prefix: &str) {
        assert!(
            self.stdout.lines().any(|line| line.starts_with(prefix)),
            "no line starting with {prefix:?} in the script output:\n{}",
            self.describe()
        );
    }
}

/// Returns the virtualenv's python, in `$CAS_TOOLS_DIR/venv` as scripts/env.sh sets it.
fn python() -> PathBuf {
    let tools = std::env::var("CAS_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join(".tools"));
    let python = tools.join("venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup.sh, which installs python-cas there",
        python.display()
    );
    python
}

fn run_with_timeout(mut command: Command) -> ScriptRun {
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start the python-cas script: {e}"));
    let deadline = Instant::now() + SCRIPT_TIMEOUT;
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    let output = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("cannot read the script output: {e}"));
    ScriptRun {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        server_log: String::new(),
    }
}

fn assert_user_attributes(run: &ScriptRun, prefix: &str) {
    run.assert_line(&format!("{prefix}attribute mail={USER_MAIL}"));
    run.assert_line(&format!(
        "{prefix}attribute displayName={USER_DISPLAY_NAME}"
    ));
    for group in USER_GROUPS {
        run.assert_line(&format!("{prefix}attribute memberOf={group}"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn python_cas_v1_validate() {
    let fixture = Fixture::start(false).await;

    let run = fixture.run("v1", &[]);

    run.assert_succeeded();
    run.assert_line("login=ok");
    run.assert_line(&format!("user={USER}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn python_cas_v2_service_validate() {
    let fixture = Fixture::start(false).await;

    let run = fixture.run("v2", &[]);

    run.assert_succeeded();
    run.assert_line("login=ok");
    run.assert_line(&format!("user={USER}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn python_cas_v3_authentication_attributes() {
    let fixture = Fixture::start(false).await;

    let run = fixture.run("v3", &[]);

    run.assert_succeeded();
    run.assert_line(&format!("user={USER}"));
    run.assert_line("attribute isFromNewLogin=true");
    run.assert_line("attribute longTermAuthenticationRequestTokenUsed=false");
    run.assert_line_starting("attribute authenticationDate=20");
}

#[tokio::test(flavor = "multi_thread")]
async fn python_cas_v3_user_attributes() {
    let fixture = Fixture::start(true).await;

    let run = fixture.run("v3", &[]);

    run.assert_succeeded();
    run.assert_line(&format!("user={USER}"));
    assert_user_attributes(&run, "");
}

#[tokio::test(flavor = "multi_thread")]
async fn python_cas_saml_user_attributes() {
    let fixture = Fixture::start(true).await;

    let run = fixture.run("saml", &[]);

    run.assert_succeeded();
    run.assert_line(&format!("user={USER}"));
    assert_user_attributes(&run, "");
}

#[tokio::test(flavor = "multi_thread")]
async fn python_cas_reused_ticket_v1() {
    assert_reuse_rejected(1).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_cas_reused_ticket_v2() {
    assert_reuse_rejected(2).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_cas_reused_ticket_v3() {
    assert_reuse_rejected(3).await;
}

async fn assert_reuse_rejected(version: u8) {
    let fixture = Fixture::start(false).await;

    let run = fixture.run("reuse", &["--version".into(), version.to_string()]);

    run.assert_succeeded();
    run.assert_line(&format!("first user={USER}"));
    run.assert_line("second user=None");
}

#[tokio::test(flavor = "multi_thread")]
async fn python_cas_wrong_service() {
    let fixture = Fixture::start(false).await;
    let other = fixture.backend_service();

    let run = fixture.run("wrong-service", &["--other-service".into(), other]);

    run.assert_succeeded();
    run.assert_line("other service user=None");
}

#[tokio::test(flavor = "multi_thread")]
async fn python_cas_proxy_v2() {
    assert_proxy_chain(2).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_cas_proxy_v3() {
    assert_proxy_chain(3).await;
}

/// Signs in to the application, which receives a proxy-granting ticket at its callback,
/// obtains a proxy ticket for the back end, and validates it as the back end would.
async fn assert_proxy_chain(version: u8) {
    let fixture = Fixture::start(version == 3).await;
    let (cert, key) = fixture.server.certificate_files();
    let extra = [
        "--version".into(),
        version.to_string(),
        "--target".into(),
        fixture.backend_service(),
        "--callback-port".into(),
        fixture.callback_port.to_string(),
        "--cert".into(),
        cert.display().to_string(),
        "--key".into(),
        key.display().to_string(),
    ];

    let run = fixture.run("proxy", &extra);

    run.assert_succeeded();
    run.assert_line(&format!("proxying service user={USER}"));
    run.assert_line("proxy granting ticket=received");
    run.assert_line("proxy ticket=issued");
    run.assert_line(&format!("target user={USER}"));
    run.assert_line(&format!(
        "target proxy=https://127.0.0.1:{}/callback",
        fixture.callback_port
    ));
    run.assert_line("serviceValidate of a proxy ticket user=None");
    if version == 3 {
        assert_user_attributes(&run, "target ");
    }
}
