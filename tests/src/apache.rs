//! A private Apache httpd with Debian's mod_auth_cas in front of a CGI page, with its own
//! configuration, pid file, logs and session folder in a temporary folder.

use std::fs::File;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's apache2 binary, from the package apache2.
const APACHE_BINARY: &str = "/usr/sbin/apache2";

/// Where Debian's apache2 and libapache2-mod-auth-cas packages put their modules.
const MODULE_DIR: &str = "/usr/lib/apache2/modules";

/// The account the worker processes switch to when the tests run as root.
const WORKER_ACCOUNT: &str = "www-data";

/// The protected page: it prints `REMOTE_USER` and every header that mod_auth_cas adds
/// (`CAS-User` from `CASAuthNHeader`, `CAS-<attribute>` for each attribute), which CGI
/// passes on as `HTTP_CAS_*` variables.
const WHOAMI_CGI: &str = "#!/bin/sh\n\
printf 'Content-Type: text/plain\\r\\n\\r\\n'\n\
printf 'REMOTE_USER=%s\\n' \"$REMOTE_USER\"\n\
env | grep '^HTTP_CAS_' | sort\n";

/// How mod_auth_cas validates tickets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validation {
    /// CAS 2.0: `GET /serviceValidate`, with attributes when the response has them.
    ServiceValidate,
    /// CAS 3.0: `GET /p3/serviceValidate`, read by the same CAS 2.0 parser, which takes
    /// the children of `cas:attributes` as attributes.
    P3ServiceValidate,
    /// SAML 1.1: `POST /samlValidate` (`CASValidateSAML On`), with attributes.
    Saml,
}

/// A running Apache; dropping it stops the server by the PID in its pid file.
pub struct Apache {
    /// Base URL, `http://127.0.0.1:<port>`.
    pub url: String,
    child: Child,
    pid_file: PathBuf,
    error_log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Apache {
    /// Starts Apache on `port` with mod_auth_cas pointed at the CAS server `cas_url` (with
    /// its `/cas` path), trusting `ca_pem` for the back channel. Returns once it listens.
    pub async fn start(port: u16, cas_url: &str, ca_pem: &[u8], validation: Validation) -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temp dir: {e}"));
        let root = dir.path();
        let worker = worker_identity(root);
        prepare_folders(root, ca_pem, worker);

        let config = root.join("httpd.conf");
        let text = configuration(root, port, cas_url, validation, worker);
        std::fs::write(&config, text).unwrap_or_else(|e| panic!("cannot write httpd.conf: {e}"));

        let log = File::create(root.join("apache-console.log"))
            .unwrap_or_else(|e| panic!("cannot create the console log: {e}"));
        let log_err = log.try_clone().unwrap_or_else(|e| panic!("{e}"));
        // Apache's own process group: at shutdown the parent signals its whole group,
        // which would otherwise include the test process.
        let child = Command::new(APACHE_BINARY)
            .process_group(0)
            .arg("-d")
            .arg(root)
            .arg("-f")
            .arg(&config)
            .arg("-DFOREGROUND")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {APACHE_BINARY}: {e}"));

        let mut apache = Self {
            url: format!("http://127.0.0.1:{port}"),
            child,
            pid_file: root.join("httpd.pid"),
            error_log: root.join("error.log"),
            _dir: dir,
        };
        apache.wait_until_ready().await;
        apache
    }

    /// Returns the URL of the protected page.
    pub fn protected_page(&self) -> String {
        format!("{}/protected/whoami.cgi", self.url)
    }

    /// Returns the error log and the console output, for failure messages.
    pub fn logs(&self) -> String {
        let error_log = std::fs::read_to_string(&self.error_log).unwrap_or_default();
        let console = std::fs::read_to_string(self._dir.path().join("apache-console.log"))
            .unwrap_or_default();
        format!("error.log:\n{error_log}\nconsole:\n{console}")
    }

    async fn wait_until_ready(&mut self) {
        let address = self.url.trim_start_matches("http://").to_owned();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("apache2 exited with {status}:\n{}", self.logs());
            }
            let listening = tokio::net::TcpStream::connect(&address).await.is_ok();
            if listening && self.pid_file.exists() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "apache2 did not listen on {address} within 30 s:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Apache {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }

        // With -DFOREGROUND the pid file contains the PID of our child, the parent process,
        // and SIGTERM makes it stop its workers and exit.
        let pid = std::fs::read_to_string(&self.pid_file)
            .ok()
            .map(|text| text.trim().to_owned())
            .filter(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
            .unwrap_or_else(|| self.child.id().to_string());
        let _ = Command::new("kill").args(["-TERM", &pid]).status();

        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill").args(["-KILL", &pid]).status();
        let _ = self.child.wait();
    }
}

/// User and group ids for the `User` and `Group` directives, or `None` when the tests do
/// not run as root: then Apache cannot switch accounts and keeps the current one.
fn worker_identity(dir: &Path) -> Option<(u32, u32)> {
    let owner = std::fs::metadata(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .uid();
    if owner != 0 {
        return None;
    }
    Some((id_of("-u"), id_of("-g")))
}

fn id_of(flag: &str) -> u32 {
    let output = Command::new("id")
        .args([flag, WORKER_ACCOUNT])
        .output()
        .unwrap_or_else(|e| panic!("cannot run id: {e}"));
    let text = String::from_utf8_lossy(&output.stdout);
    text.trim().parse().unwrap_or_else(|_| {
        panic!("the account {WORKER_ACCOUNT} is missing: install apache2 with scripts/setup.sh")
    })
}

/// Creates the document root with the CGI page, the session folder and a copy of the CA,
/// readable by the worker account, and the session folder writable by it alone.
fn prepare_folders(root: &Path, ca_pem: &[u8], worker: Option<(u32, u32)>) {
    let protected = root.join("htdocs/protected");
    let cookies = root.join("cas-cookies");
    for folder in [&protected, &cookies, &root.join("run")] {
        std::fs::create_dir_all(folder).unwrap_or_else(|e| panic!("cannot create a folder: {e}"));
    }

    let script = protected.join("whoami.cgi");
    std::fs::write(&script, WHOAMI_CGI).unwrap_or_else(|e| panic!("cannot write the page: {e}"));
    std::fs::write(root.join("cas-ca.pem"), ca_pem).unwrap_or_else(|e| panic!("{e}"));

    set_mode(root, 0o755);
    set_mode(&script, 0o755);
    set_mode(&root.join("cas-ca.pem"), 0o644);
    set_mode(&cookies, 0o700);
    if let Some((uid, gid)) = worker {
        std::os::unix::fs::chown(&cookies, Some(uid), Some(gid))
            .unwrap_or_else(|e| panic!("cannot hand the session folder to {WORKER_ACCOUNT}: {e}"));
    }
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", path.display()));
}

fn configuration(
    root: &Path,
    port: u16,
    cas_url: &str,
    validation: Validation,
    worker: Option<(u32, u32)>,
) -> String {
    let modules = [
        ("mpm_prefork_module", "mod_mpm_prefork.so"),
        ("authn_core_module", "mod_authn_core.so"),
        ("authz_core_module", "mod_authz_core.so"),
        ("authz_user_module", "mod_authz_user.so"),
        ("cgi_module", "mod_cgi.so"),
        ("auth_cas_module", "mod_auth_cas.so"),
    ];
    let load_modules: Vec<String> = modules
        .iter()
        .map(|(name, file)| format!("LoadModule {name} {MODULE_DIR}/{file}"))
        .collect();
    let account = match worker {
        Some(_) => format!("User {WORKER_ACCOUNT}\nGroup {WORKER_ACCOUNT}\n"),
        None => String::new(),
    };
    let (validate_path, saml) = match validation {
        Validation::ServiceValidate => ("serviceValidate", "Off"),
        Validation::P3ServiceValidate => ("p3/serviceValidate", "Off"),
        Validation::Saml => ("samlValidate", "On"),
    };
    let root = root.display();

    format!(
        r#"{load_modules}
ServerRoot "{root}"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile "{root}/httpd.pid"
DefaultRuntimeDir "{root}/run"
ErrorLog "{root}/error.log"
LogLevel warn auth_cas:debug
{account}
StartServers 1
MinSpareServers 1
MaxSpareServers 2
DocumentRoot "{root}/htdocs"

CASLoginURL {cas_url}/login
CASValidateURL {cas_url}/{validate_path}
CASValidateSAML {saml}
CASCertificatePath "{root}/cas-ca.pem"
CASCookiePath "{root}/cas-cookies/"
CASDebug On

<Directory "{root}/htdocs/protected">
    AuthType CAS
    CASAuthNHeader CAS-User
    Require valid-user
    Options +ExecCGI
    SetHandler cgi-script
</Directory>
"#,
        load_modules = load_modules.join("\n"),
    )
}
