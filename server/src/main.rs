//! `cas-server` binary: parses the command line and runs the chosen subcommand.

use std::process::ExitCode;

use clap::Parser;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use cas_server::cli::{Cli, Command, DevCertsArgs, RunArgs, UsersCommand};
use cas_server::config::LogFormat;
use cas_server::config_check;
use cas_server::dev_certs::ensure_dev_certs;
use cas_server::log_writer;

fn main() -> ExitCode {
    match Cli::parse().into_command() {
        Command::Run(args) => run(&args),
        Command::CheckConfig(args) => check_config(&args),
        Command::PrintConfig(args) => print_config(&args),
        Command::DevCerts(args) => {
            init_tracing(LogFormat::Text);
            dev_certs(&args)
        }
        Command::Users(command) => {
            init_tracing(LogFormat::Text);
            users(&command)
        }
    }
}

/// Logs to stderr at `info` unless `RUST_LOG` sets another filter: readable lines without
/// colours, or one JSON object per line.
fn init_tracing(format: LogFormat) {
    init_tracing_with(format, std::io::stderr);
}

/// Logs through `writer` as [`init_tracing`] describes.
fn init_tracing_with<W>(format: LogFormat, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);

    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().with_current_span(true).init(),
    }
}

fn check_config(args: &RunArgs) -> ExitCode {
    let layer = match args.merged_layer() {
        Ok(layer) => layer,
        Err(error) => {
            eprintln!("cas-server: {error}");
            return ExitCode::from(2);
        }
    };

    let problems = config_check::problems(&layer);
    if problems.is_empty() {
        println!("configuration is valid");
        return ExitCode::SUCCESS;
    }
    for problem in &problems {
        eprintln!("cas-server: {problem}");
    }
    ExitCode::from(2)
}

fn print_config(args: &RunArgs) -> ExitCode {
    match args.merged_layer() {
        Ok(layer) => {
            print!("{}", config_check::printable(&layer));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("cas-server: {error}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &RunArgs) -> ExitCode {
    // The log format is a setting, so logging starts once the settings are read.
    let config = match args.load_config() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("cas-server: {error}");
            return ExitCode::from(2);
        }
    };
    // The server writes an audit line per issued and validated ticket, so its log lines
    // go out in batches. The guard writes the last ones when `run` returns.
    let _log_guard = match log_writer::batched(std::io::stderr()) {
        Ok((writer, guard)) => {
            init_tracing_with(config.log_format, writer);
            Some(guard)
        }
        Err(error) => {
            init_tracing(config.log_format);
            tracing::warn!(%error, "starting the log writer thread failed; writing each log line at once");
            None
        }
    };

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cas-server: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(config))
}

async fn serve(config: cas_server::Config) -> ExitCode {
    let listener = match TcpListener::bind(config.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!(
                "cas-server: cannot listen on {} (setting listen): {error}",
                config.listen
            );
            return ExitCode::FAILURE;
        }
    };

    // The handlers are installed before the server starts, so a SIGTERM that arrives
    // right after the "listening" log line stops the server gracefully instead of
    // killing it.
    let terminate = signal(SignalKind::terminate());
    let interrupt = signal(SignalKind::interrupt());
    match cas_server::serve(listener, config, shutdown_signal(terminate, interrupt)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("cas-server: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Completes on ctrl-c (SIGINT) or SIGTERM. A signal that cannot be watched is logged
/// and never completes.
async fn shutdown_signal(terminate: std::io::Result<Signal>, interrupt: std::io::Result<Signal>) {
    tokio::select! {
        () = receive(interrupt, "SIGINT") => tracing::info!("ctrl-c received"),
        () = receive(terminate, "SIGTERM") => tracing::info!("SIGTERM received"),
    }
}

async fn receive(signal: std::io::Result<Signal>, name: &'static str) {
    match signal {
        Ok(mut signal) => {
            signal.recv().await;
        }
        Err(error) => {
            tracing::warn!(%error, signal = name, "cannot listen for this signal");
            std::future::pending::<()>().await;
        }
    }
}

fn dev_certs(args: &DevCertsArgs) -> ExitCode {
    println!(
        "checking development certificates in {} for {}",
        args.out.display(),
        args.names.join(", ")
    );
    let report = match ensure_dev_certs(&args.out, &args.names) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("cas-server dev-certs: {error}");
            return ExitCode::FAILURE;
        }
    };

    if !report.created_ca {
        println!("reusing development CA {}", report.ca_cert.display());
    }
    for (path, description) in report.written_files() {
        println!("wrote {} ({description})", path.display());
    }
    if !report.created_server_cert {
        println!(
            "server certificate {} is valid for {}; nothing to do",
            report.server_cert.display(),
            args.names.join(", ")
        );
    }
    ExitCode::SUCCESS
}

fn users(command: &UsersCommand) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cas-server users: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };

    match runtime.block_on(cas_server::user_command::run_users(command)) {
        Ok(done) => {
            println!("{done}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("cas-server users: {error}");
            ExitCode::FAILURE
        }
    }
}
