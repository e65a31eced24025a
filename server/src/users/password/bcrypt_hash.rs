//! bcrypt in its modular crypt format `$2b$<cost>$<22 salt chars><31 hash chars>`.

/// Accepted version prefixes. `$2x$` is left out: it marks hashes from the
/// crypt_blowfish bug for 8-bit characters, which the `bcrypt` crate does not reproduce.
pub(super) const VERSIONS: [&str; 3] = ["$2a$", "$2b$", "$2y$"];

/// Largest accepted cost. Each step doubles the work: cost 16 takes several seconds on
/// a current core, and a tampered row with cost 31 would hold a core for days.
pub(super) const MAX_COST: u32 = 16;

/// Checks `typed` against a stored bcrypt hash. Returns `None` when `stored` is not a
/// bcrypt hash with an accepted version and cost. Like every bcrypt implementation, it
/// uses only the first 72 bytes of the password.
pub fn verify(typed: &str, stored: &str) -> Option<bool> {
    if !VERSIONS.iter().any(|version| stored.starts_with(version)) {
        return None;
    }
    let cost: u32 = stored.get(4..6)?.parse().ok()?;
    if cost > MAX_COST {
        return None;
    }
    bcrypt::verify(typed.as_bytes(), stored).ok()
}
