//! The load loop: a fixed number of keep-alive connections, each running one step after
//! another until the duration ends or the work runs out, with latency percentiles.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::client::{BenchError, Connection, Target};
use crate::cpu::{cpu_time, Process};

/// Maximum latency samples kept per connection, so a long run cannot exhaust memory.
const MAX_SAMPLES_PER_CONNECTION: usize = 1_000_000;

/// The result of one step.
pub enum Outcome {
    /// One operation completed and counts.
    Done,
    /// No work is left, such as no pre-issued ticket; the connection stops.
    Exhausted,
}

/// One operation of a scenario, such as one validation.
#[async_trait]
pub trait Step: Send + Sync + 'static {
    async fn run(&self, connection: &mut Connection) -> Result<Outcome, BenchError>;
}

/// Throughput and latency of one run.
pub struct Report {
    pub operations: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p99: Duration,
    /// CPU time this load generator used during the run.
    pub client_cpu: Option<Duration>,
    /// CPU time the measured server used during the run, when its process id is known.
    pub server_cpu: Option<Duration>,
}

impl Report {
    pub fn rate(&self) -> f64 {
        self.operations as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Prints one line that scripts/bench-server.sh parses. The CPU fields are
    /// microseconds per operation and appear only when they were measured.
    pub fn print(&self, figure: &str) {
        let mut line = format!(
            "figure={figure} rate={:.1} p50_ms={:.3} p99_ms={:.3} operations={} errors={} seconds={:.2}",
            self.rate(),
            self.p50.as_secs_f64() * 1000.0,
            self.p99.as_secs_f64() * 1000.0,
            self.operations,
            self.errors,
            self.elapsed.as_secs_f64(),
        );
        if let Some(client) = self.client_cpu {
            line += &format!(" client_cpu_us={:.2}", self.micros_per_operation(client));
        }
        if let Some(server) = self.server_cpu {
            line += &format!(" server_cpu_us={:.2}", self.micros_per_operation(server));
        }
        println!("{line}");
    }

    fn micros_per_operation(&self, cpu: Duration) -> f64 {
        cpu.as_secs_f64() * 1e6 / self.operations.max(1) as f64
    }
}

struct ConnectionResult {
    done: u64,
    samples: Vec<u32>,
    errors: u64,
    last_done: Duration,
}

/// Runs `step` on `connections` connections for at most `duration`. The report gives
/// the CPU time of this process and of the `server` process during the run.
pub async fn run(
    target: &Target,
    connections: usize,
    duration: Duration,
    step: Arc<dyn Step>,
    server: Option<u32>,
) -> Report {
    let cpu_before = CpuSample::take(server);
    let started = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let target = target.clone();
            let step = Arc::clone(&step);
            tokio::spawn(async move { drive(target, step, started, duration).await })
        })
        .collect();

    let mut samples = Vec::new();
    let mut done = 0;
    let mut errors = 0;
    let mut elapsed = Duration::ZERO;
    for task in tasks {
        let Ok(result) = task.await else {
            errors += 1;
            continue;
        };
        done += result.done;
        samples.extend(result.samples);
        errors += result.errors;
        elapsed = elapsed.max(result.last_done);
    }
    let mut report = summarize(samples, done, errors, elapsed);
    let cpu_after = CpuSample::take(server);
    report.client_cpu = cpu_after
        .client
        .zip(cpu_before.client)
        .map(|(a, b)| a.saturating_sub(b));
    report.server_cpu = cpu_after
        .server
        .zip(cpu_before.server)
        .map(|(a, b)| a.saturating_sub(b));
    report
}

/// CPU times read at one moment. A time that cannot be read stays `None` and is left
/// out of the report, because the throughput figures are valid without it.
struct CpuSample {
    client: Option<Duration>,
    server: Option<Duration>,
}

impl CpuSample {
    fn take(server: Option<u32>) -> Self {
        let read = |process| match cpu_time(process) {
            Ok(time) => Some(time),
            Err(error) => {
                eprintln!("CPU time not measured: {error}");
                None
            }
        };
        Self {
            client: read(Process::This),
            server: server.and_then(|pid| read(Process::Other(pid))),
        }
    }
}

async fn drive(
    target: Target,
    step: Arc<dyn Step>,
    started: Instant,
    duration: Duration,
) -> ConnectionResult {
    let mut result = ConnectionResult {
        done: 0,
        samples: Vec::new(),
        errors: 0,
        last_done: Duration::ZERO,
    };
    let mut connection = None;

    while started.elapsed() < duration {
        let Some(open) = connection.as_mut() else {
            match target.connect().await {
                Ok(opened) => connection = Some(opened),
                Err(error) => {
                    if result.errors < 3 {
                        eprintln!("connect failed: {error}");
                    }
                    result.errors += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            continue;
        };

        let begun = Instant::now();
        match step.run(open).await {
            Ok(Outcome::Done) => {
                result.done += 1;
                if result.samples.len() < MAX_SAMPLES_PER_CONNECTION {
                    let micros = begun.elapsed().as_micros();
                    result
                        .samples
                        .push(u32::try_from(micros).unwrap_or(u32::MAX));
                }
                result.last_done = started.elapsed();
            }
            Ok(Outcome::Exhausted) => break,
            Err(error) => {
                if result.errors < 3 {
                    eprintln!("request failed: {error}");
                }
                result.errors += 1;
                connection = None;
            }
        }
    }
    result
}

fn summarize(mut samples: Vec<u32>, done: u64, errors: u64, elapsed: Duration) -> Report {
    samples.sort_unstable();
    let percentile = |p: f64| -> Duration {
        if samples.is_empty() {
            return Duration::ZERO;
        }
        let index = ((samples.len() - 1) as f64 * p).round() as usize;
        Duration::from_micros(u64::from(samples[index]))
    };
    Report {
        operations: done,
        errors,
        elapsed,
        p50: percentile(0.50),
        p99: percentile(0.99),
        client_cpu: None,
        server_cpu: None,
    }
}
