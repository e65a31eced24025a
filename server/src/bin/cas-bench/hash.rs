//! Raw Argon2id throughput: password verifications per second with the parameters the
//! server uses, on a number of threads, with no HTTP and no database. The CPU time per
//! verification is printed too, because it moves far less than the rate when other
//! processes share the cores.

use std::time::{Duration, Instant};

use cas_server::users::password::{
    hash_argon2id, verify_password, PasswordEncoding, PasswordScheme,
};

use crate::client::BenchError;

/// Verifies one password against its hash on `threads` threads for `duration` and prints
/// the verifications per second and the process CPU time per verification.
pub fn measure(threads: usize, duration: Duration) -> Result<(), BenchError> {
    let stored = hash_argon2id("demo-password")?;
    let cpu_before = process_cpu_ms()?;
    let started = Instant::now();

    let workers: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let stored = stored.clone();
            let scheme = PasswordScheme::unsalted(PasswordEncoding::Argon2id);
            std::thread::spawn(move || {
                let mut count = 0u64;
                while started.elapsed() < duration {
                    if verify_password(&scheme, "demo-password", &stored, None) {
                        count += 1;
                    }
                }
                count
            })
        })
        .collect();

    let mut total = 0;
    for worker in workers {
        total += worker.join().map_err(|_| "hash thread panicked")?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_ms = process_cpu_ms()? - cpu_before;
    println!(
        "figure=argon2id_raw rate={:.1} operations={total} threads={threads} seconds={elapsed:.2} cpu_ms_per_op={:.2} parameters={}",
        total as f64 / elapsed,
        cpu_ms as f64 / total.max(1) as f64,
        stored.split('$').nth(3).unwrap_or_default()
    );
    Ok(())
}

/// Returns the user and system CPU time of this process from /proc/self/stat, in
/// milliseconds. The clock tick is taken as 10 ms, the USER_HZ of Linux on x86-64.
fn process_cpu_ms() -> Result<u64, BenchError> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // The command name in brackets may contain spaces, so fields are counted after it.
    let after_name = stat.rsplit_once(')').ok_or("malformed /proc/self/stat")?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let user: u64 = fields.get(11).ok_or("short /proc/self/stat")?.parse()?;
    let system: u64 = fields.get(12).ok_or("short /proc/self/stat")?.parse()?;
    Ok((user + system) * 10)
}
