//! Argon2id verification with working memory that is kept between verifications.
//!
//! The argon2 crate's `verify_password` allocates and zero-fills the whole working
//! memory (19 MiB with the default parameters) for every check, and a large allocation
//! often comes fresh from the operating system, so every page faults in. On a 2-core VM
//! under other load, a small test program measured 17 to 21 ms of CPU per check through
//! tokio's `spawn_blocking` with fresh memory and 14 to 15.5 ms with kept memory. Argon2
//! overwrites every block in its first pass, so the content left from an earlier check
//! never changes a result.

use std::sync::{Mutex, OnceLock, PoisonError};

use argon2::password_hash::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;

/// Largest working memory kept for reuse, in 1 KiB blocks: 64 MiB, above the 19 MiB that
/// `hash_argon2id` writes. A hash that needs more gets memory of its own that is freed
/// after the check.
const MAX_KEPT_BLOCKS: usize = 64 * 1024;

/// Largest Argon2 output, in bytes, that a PHC string carries.
const MAX_OUTPUT_BYTES: usize = 64;

/// Room for a decoded salt, in bytes: a PHC salt has at most 64 Base64 characters
/// (`Salt::MAX_LENGTH` of the password-hash crate).
const MAX_SALT_BYTES: usize = 64;

/// Working memory of finished checks, at most one buffer per core, because the server
/// runs at most one check per core at a time.
///
/// NOTE: the kept buffers stay resident while the process runs (19 MiB per core with
/// the default parameters), and they still contain blocks derived from the last
/// password checked in them, as freed memory did before.
static IDLE_MEMORY: Mutex<Vec<Vec<Block>>> = Mutex::new(Vec::new());

/// Checks `typed` against an Argon2id PHC string.
pub fn verify_argon2id(typed: &str, stored: &str) -> bool {
    let Ok(hash) = PasswordHash::new(stored) else {
        tracing::warn!("stored password is not a PHC string");
        return false;
    };

    // Only Argon2id is accepted, so a weaker variant written into the table cannot pass.
    if hash.algorithm != Algorithm::Argon2id.ident() {
        tracing::warn!(algorithm = %hash.algorithm, "stored password hash is not argon2id");
        return false;
    }
    let Some(expected) = hash.hash else {
        return false;
    };
    let Some(salt) = hash.salt else {
        return false;
    };
    let Some((argon2, params)) = hasher(&hash) else {
        tracing::warn!("stored argon2id hash has invalid parameters or version");
        return false;
    };

    let mut salt_bytes = [0u8; MAX_SALT_BYTES];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let mut computed = [0u8; MAX_OUTPUT_BYTES];
    let Some(computed) = computed.get_mut(..expected.len()) else {
        return false;
    };

    let mut memory = take_memory(params.block_count());
    let hashed =
        argon2.hash_password_into_with_memory(typed.as_bytes(), salt, computed, &mut memory);
    keep_memory(memory);

    hashed.is_ok() && bool::from(computed.ct_eq(expected.as_bytes()))
}

/// Builds the hasher from the version and parameters of `hash`, with the output length
/// of its stored hash. A missing version means 0x13, as in the argon2 crate.
fn hasher(hash: &PasswordHash<'_>) -> Option<(Argon2<'static>, Params)> {
    let params = Params::try_from(hash).ok()?;
    let version = match hash.version {
        Some(number) => Version::try_from(number).ok()?,
        None => Version::default(),
    };
    let argon2 = Argon2::new(Algorithm::Argon2id, version, params.clone());
    Some((argon2, params))
}

/// Returns a buffer of at least `blocks` blocks, a kept one when there is one.
fn take_memory(blocks: usize) -> Vec<Block> {
    let kept = IDLE_MEMORY
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .pop();
    let mut memory = kept.unwrap_or_default();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    memory
}

/// Keeps `memory` for the next check unless it is too large or enough are kept.
fn keep_memory(memory: Vec<Block>) {
    if memory.len() > MAX_KEPT_BLOCKS {
        return;
    }
    let mut idle = IDLE_MEMORY.lock().unwrap_or_else(PoisonError::into_inner);
    if idle.len() < max_kept_buffers() {
        idle.push(memory);
    }
}

fn max_kept_buffers() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};

    fn hash_with(version: Version, params: Params, password: &str) -> String {
        let salt = SaltString::encode_b64(b"fixed-salt-16byt").expect("salt");
        Argon2::new(Algorithm::Argon2id, version, params)
            .hash_password(password.as_bytes(), &salt)
            .expect("hash")
            .to_string()
    }

    fn small(m_cost: u32, t_cost: u32, p_cost: u32, output: usize) -> Params {
        Params::new(m_cost, t_cost, p_cost, Some(output)).expect("params")
    }

    #[test]
    fn kept_memory_matches_crate_verifier() {
        let cases = [
            (Version::V0x13, small(64, 1, 1, 32)),
            (Version::V0x13, small(256, 3, 4, 16)),
            (Version::V0x10, small(128, 2, 2, 64)),
            (Version::V0x13, small(96, 2, 1, 10)),
        ];
        // Each case runs after the others have left their blocks in the kept memory.
        for round in 0..2 {
            for (version, params) in cases.clone() {
                let stored = hash_with(version, params, "correct horse");
                let parsed = PasswordHash::new(&stored).expect("phc");

                for typed in ["correct horse", "correct horsE", ""] {
                    let crate_result = Argon2::default()
                        .verify_password(typed.as_bytes(), &parsed)
                        .is_ok();
                    assert_eq!(
                        verify_argon2id(typed, &stored),
                        crate_result,
                        "round {round}, {stored}, {typed:?}"
                    );
                }
                assert!(verify_argon2id("correct horse", &stored), "{stored}");
            }
        }
    }

    #[test]
    fn missing_version_means_0x13() {
        let stored = hash_with(Version::V0x13, small(64, 1, 1, 32), "pw");
        let without_version = stored.replacen("v=19$", "", 1);

        assert!(verify_argon2id("pw", &without_version));
    }

    #[test]
    fn unusable_hashes_fail() {
        let stored = hash_with(Version::V0x13, small(64, 1, 1, 32), "pw");
        let bad_version = stored.replacen("v=19", "v=18", 1);
        let too_little_memory = stored.replacen("m=64", "m=4", 1);
        let unknown_param = stored.replacen("p=1", "p=1,z=1", 1);
        let no_hash = stored.rsplit_once('$').expect("hash part").0.to_owned();

        for stored in [bad_version, too_little_memory, unknown_param, no_hash] {
            assert!(!verify_argon2id("pw", &stored), "{stored}");
        }
    }

    #[test]
    fn large_memory_is_not_kept() {
        let memory = vec![Block::default(); MAX_KEPT_BLOCKS + 1];

        keep_memory(memory);

        let idle = IDLE_MEMORY.lock().unwrap_or_else(PoisonError::into_inner);
        assert!(idle.iter().all(|kept| kept.len() <= MAX_KEPT_BLOCKS));
    }
}
