//! Raw Argon2id throughput: password verifications per second with the parameters the
//! server uses, on a number of threads, with no HTTP and no database.

use std::time::{Duration, Instant};

use cas_server::users::password::{
    hash_argon2id, verify_password, PasswordEncoding, PasswordScheme,
};

use crate::client::BenchError;

/// Verifies one password against its hash on `threads` threads for `duration` and prints
/// the verifications per second.
pub fn measure(threads: usize, duration: Duration) -> Result<(), BenchError> {
    let stored = hash_argon2id("demo-password")?;
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
    println!(
        "figure=argon2id_raw rate={:.1} operations={total} threads={threads} seconds={elapsed:.2} parameters={}",
        total as f64 / elapsed,
        stored.split('$').nth(3).unwrap_or_default()
    );
    Ok(())
}
