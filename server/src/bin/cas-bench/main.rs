//! `cas-bench`: the load generator and micro-benchmarks behind scripts/bench-server.sh.
//! Every figure is printed as one `figure=… key=value …` line.

mod ceiling;
mod client;
mod cpu;
mod hash;
mod load;
mod memory;
mod scenarios;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

use client::{BenchError, Target};
use scenarios::{FixedGet, FullLogin, SsoIssue, Validate};

/// Maximum service tickets kept from the SSO run for the validation run.
const MAX_KEPT_TICKETS: usize = 2_000_000;

/// Load generator and micro-benchmarks for the CAS server.
#[derive(Parser)]
#[command(name = "cas-bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a fixed 200 over the CAS server's TLS settings (the ceiling).
    CeilingServer {
        #[arg(long, value_name = "IP:PORT")]
        listen: SocketAddr,
        #[arg(long, value_name = "FILE")]
        cert: PathBuf,
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
    },
    /// Load the ceiling server with GET requests.
    Ceiling {
        /// URL of the ceiling server, such as https://127.0.0.1:9443/
        #[arg(long)]
        url: String,
        #[command(flatten)]
        load: LoadArgs,
    },
    /// Log in once, issue service tickets by single sign-on, then validate them all.
    Tickets {
        #[command(flatten)]
        cas: CasArgs,
        /// Label appended to the figure names, such as memory or redis.
        #[arg(long, default_value = "memory")]
        label: String,
    },
    /// Full password logins: login form, then the credentials.
    Logins {
        #[command(flatten)]
        cas: CasArgs,
    },
    /// Raw Argon2id verifications per second with the server's parameters.
    Hash {
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Duration in seconds.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Resident memory per live service ticket in the in-memory store.
    Memory {
        #[arg(long, default_value_t = 1_000_000)]
        tickets: usize,
        #[arg(long, default_value_t = 10_000)]
        sessions: usize,
        #[arg(long, default_value = "https://app.example.test/home")]
        service: String,
    },
}

#[derive(Args, Clone)]
struct LoadArgs {
    /// PEM file of the CA that signed the server certificate.
    #[arg(long, value_name = "FILE")]
    ca: PathBuf,
    /// Number of keep-alive connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Duration of each measured run, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Process id of the measured server on this machine. Each figure then reports the
    /// server's CPU time per operation beside this load generator's own.
    #[arg(long, value_name = "PID")]
    server_pid: Option<u32>,
}

#[derive(Args, Clone)]
struct CasArgs {
    /// Base URL of the CAS server, such as https://127.0.0.1:8443/cas
    #[arg(long)]
    base: String,
    /// A registered service URL.
    #[arg(long)]
    service: String,
    #[arg(long, default_value = "demo")]
    user: String,
    #[arg(long, default_value = "demo-password")]
    password: String,
    #[command(flatten)]
    load: LoadArgs,
}

impl CasArgs {
    fn path(&self) -> String {
        let after_scheme = self.base.trim_start_matches("https://");
        after_scheme
            .find('/')
            .map(|slash| after_scheme[slash..].trim_end_matches('/').to_owned())
            .unwrap_or_default()
    }

    fn service_query(&self) -> String {
        utf8_percent_encode(&self.service, NON_ALPHANUMERIC).to_string()
    }

    fn form_tail(&self) -> String {
        let user = utf8_percent_encode(&self.user, NON_ALPHANUMERIC);
        let password = utf8_percent_encode(&self.password, NON_ALPHANUMERIC);
        format!("username={user}&password={password}")
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cas-bench: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };

    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("cas-bench: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<(), BenchError> {
    match command {
        Command::CeilingServer { listen, cert, key } => ceiling::serve(listen, &cert, &key).await,
        Command::Ceiling { url, load } => {
            let target = Target::new(&url, &load.ca)?;
            let path = url
                .trim_start_matches("https://")
                .find('/')
                .map_or("/".to_owned(), |i| {
                    url.trim_start_matches("https://")[i..].to_owned()
                });
            let report = load::run(
                &target,
                load.connections,
                seconds(load.seconds),
                Arc::new(FixedGet { path }),
                load.server_pid,
            )
            .await;
            report.print("ceiling");
            Ok(())
        }
        Command::Tickets { cas, label } => tickets(&cas, &label).await,
        Command::Logins { cas } => logins(&cas).await,
        Command::Hash {
            threads,
            seconds: duration,
        } => hash::measure(threads, seconds(duration)),
        Command::Memory {
            tickets,
            sessions,
            service,
        } => memory::measure(tickets, sessions, &service).await,
    }
}

/// Measures SSO issue for the run's duration, then validates every ticket it kept.
async fn tickets(cas: &CasArgs, label: &str) -> Result<(), BenchError> {
    let target = Target::new(&cas.base, &cas.load.ca)?;
    let mut connection = target.connect().await?;
    let (_, _, cookie) = scenarios::log_in(
        &mut connection,
        &cas.path(),
        &cas.service_query(),
        &cas.form_tail(),
    )
    .await?;
    let cookie = cookie.ok_or("the login set no TGC; check the user and password")?;

    let issue = Arc::new(SsoIssue {
        path: format!("{}/login?service={}", cas.path(), cas.service_query()),
        cookie,
        keep: MAX_KEPT_TICKETS,
        tickets: Mutex::new(Vec::new()),
    });
    let report = load::run(
        &target,
        cas.load.connections,
        seconds(cas.load.seconds),
        Arc::clone(&issue) as Arc<dyn load::Step>,
        cas.load.server_pid,
    )
    .await;
    report.print(&format!("sso_issue_{label}"));

    let issued = std::mem::take(
        &mut *issue
            .tickets
            .lock()
            .map_err(|_| "ticket list lock poisoned")?,
    );
    let validate = Arc::new(Validate {
        base: cas.path(),
        service_query: cas.service_query(),
        tickets: Mutex::new(issued),
    });
    // The run ends when the tickets run out, so the duration is only an upper bound.
    let report = load::run(
        &target,
        cas.load.connections,
        seconds(cas.load.seconds * 10),
        validate,
        cas.load.server_pid,
    )
    .await;
    report.print(&format!("validate_{label}"));
    Ok(())
}

async fn logins(cas: &CasArgs) -> Result<(), BenchError> {
    let target = Target::new(&cas.base, &cas.load.ca)?;
    let step = Arc::new(FullLogin {
        base: cas.path(),
        service_query: cas.service_query(),
        form_tail: cas.form_tail(),
    });
    let report = load::run(
        &target,
        cas.load.connections,
        seconds(cas.load.seconds),
        step,
        cas.load.server_pid,
    )
    .await;
    report.print("full_login");
    Ok(())
}

fn seconds(value: u64) -> Duration {
    Duration::from_secs(value)
}
