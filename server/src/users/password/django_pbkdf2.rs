//! PBKDF2-HMAC-SHA256 in Django's stored format
//! `pbkdf2_sha256$<iterations>$<salt>$<base64 of the 32-byte key>`.

use base64ct::{Base64, Encoding};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Prefix of every stored value.
pub const ALGORITHM: &str = "pbkdf2_sha256";

/// Largest accepted iteration count. Django 5.2 writes 1,000,000, and a tampered row
/// with billions of iterations would otherwise hold a core for minutes.
pub(super) const MAX_ITERATIONS: u32 = 10_000_000;

/// Length of the derived key: one SHA-256 output, as Django stores it.
const KEY_LEN: usize = 32;

/// Checks `typed` against a stored Django value. Returns `None` when `stored` is not in
/// that format.
pub fn verify(typed: &str, stored: &str) -> Option<bool> {
    let mut parts = stored.split('$');
    let (Some(algorithm), Some(iterations), Some(salt), Some(key), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    if algorithm != ALGORITHM || salt.is_empty() {
        return None;
    }

    let iterations: u32 = iterations.parse().ok()?;
    if !(1..=MAX_ITERATIONS).contains(&iterations) {
        return None;
    }
    let stored_key = Base64::decode_vec(key).ok()?;
    if stored_key.len() != KEY_LEN {
        return None;
    }

    let mut derived = [0u8; KEY_LEN];
    pbkdf2::pbkdf2_hmac::<Sha256>(typed.as_bytes(), salt.as_bytes(), iterations, &mut derived);
    Some(derived.ct_eq(&stored_key).into())
}
