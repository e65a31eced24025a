//! Decoy password checks: a verification of the configured encoding against a fixed
//! stored value that no password matches. It runs when a login fails before its real
//! password check (unknown or disabled user, unusable row), so that such a failure
//! costs the same hash work as a wrong password.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{django_pbkdf2, verify_password, PasswordEncoding, PasswordScheme, SaltSource};

/// Argon2id with the parameters `hash_argon2id` writes (the argon2 crate's defaults:
/// 19 MiB, 2 passes, 1 lane), the salt "decoy-salt-16byt" and a hash of zero bytes.
const ARGON2ID_DECOY: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$ZGVjb3ktc2FsdC0xNmJ5dA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// bcrypt salt (22 characters) and hash (31 characters of zero bits) of the decoy,
/// after its version and cost.
const BCRYPT_DECOY_TAIL: &str = "T78.xVrZ2uX5gGHLlDAuJu...............................";

/// PBKDF2 iterations of the decoy: what Django 5.2 writes for new passwords.
const PBKDF2_DECOY_ITERATIONS: u32 = 1_000_000;

/// Salt of the decoy when salts are read from a column or a prefix.
const DECOY_SALT: &str = "decoy-salt";

/// A stored value of the configured encoding that no typed password matches.
#[derive(Debug, Clone)]
pub struct Decoy {
    scheme: PasswordScheme,
    stored: String,
    column_salt: Option<String>,
    checks: Arc<AtomicU64>,
}

impl Decoy {
    /// Builds the decoy of `scheme`. Nothing is hashed here, so it costs nothing at start.
    pub fn new(scheme: &PasswordScheme) -> Self {
        let (stored, column_salt) = decoy_value(scheme);
        Self {
            scheme: scheme.clone(),
            stored,
            column_salt,
            checks: Arc::default(),
        }
    }

    /// Verifies `typed` against the decoy, which always fails, with the work of a real
    /// check of the configured encoding.
    pub fn verify(&self, typed: &str) {
        let column_salt = self.column_salt.as_deref();
        let matched = verify_password(&self.scheme, typed, &self.stored, column_salt);
        debug_assert!(!matched, "the decoy matched a password");
        self.checks.fetch_add(1, Ordering::Relaxed);
    }

    /// Returns how many decoy checks ran, for tests that observe the decoy path.
    pub fn checks(&self) -> u64 {
        self.checks.load(Ordering::Relaxed)
    }
}

/// Returns the stored value of the decoy and its column salt.
///
/// NOTE: the bcrypt cost and the PBKDF2 iterations are fixed, so a store whose hashes use
/// other costs still fails unknown users in a different time than wrong passwords.
fn decoy_value(scheme: &PasswordScheme) -> (String, Option<String>) {
    let stored = match scheme.encoding {
        PasswordEncoding::Argon2id => ARGON2ID_DECOY.to_owned(),
        PasswordEncoding::Bcrypt => format!("$2b${:02}${BCRYPT_DECOY_TAIL}", bcrypt::DEFAULT_COST),
        PasswordEncoding::Pbkdf2Sha256 => format!(
            "{}${PBKDF2_DECOY_ITERATIONS}${DECOY_SALT}${}",
            django_pbkdf2::ALGORITHM,
            "A".repeat(43) + "="
        ),
        PasswordEncoding::Plain => "\u{0}decoy".to_owned(),
        PasswordEncoding::Md5
        | PasswordEncoding::Sha1
        | PasswordEncoding::Sha256
        | PasswordEncoding::Sha512 => return hex_decoy(scheme),
    };
    (stored, None)
}

fn hex_decoy(scheme: &PasswordScheme) -> (String, Option<String>) {
    let digest = scheme.encoding.hex_digest().map_or(0, |d| d.output_len());
    let zeros = "0".repeat(digest * 2);
    match &scheme.salt {
        SaltSource::None => (zeros, None),
        SaltSource::Column => (zeros, Some(DECOY_SALT.to_owned())),
        SaltSource::Prefix { separator } => (format!("{DECOY_SALT}{separator}{zeros}"), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::password::SaltPosition;

    fn scheme(encoding: PasswordEncoding, salt: SaltSource) -> PasswordScheme {
        PasswordScheme {
            encoding,
            salt,
            salt_position: SaltPosition::Before,
        }
    }

    #[test]
    fn decoy_is_wellformed_for_each_digest() {
        let salts = [
            SaltSource::None,
            SaltSource::Column,
            SaltSource::Prefix {
                separator: "$".into(),
            },
        ];
        for encoding in [
            PasswordEncoding::Md5,
            PasswordEncoding::Sha1,
            PasswordEncoding::Sha256,
            PasswordEncoding::Sha512,
        ] {
            for salt in salts.clone() {
                let scheme = scheme(encoding, salt);
                let (stored, column_salt) = decoy_value(&scheme);
                let verified =
                    super::super::verify_hex_digest(&scheme, "x", &stored, column_salt.as_deref());
                assert_eq!(verified, Some(false), "{scheme:?}");
            }
        }
    }

    #[test]
    fn decoy_is_wellformed_for_hashes() {
        let (bcrypt_stored, _) = decoy_value(&PasswordScheme::unsalted(PasswordEncoding::Bcrypt));
        let (pbkdf2_stored, _) =
            decoy_value(&PasswordScheme::unsalted(PasswordEncoding::Pbkdf2Sha256));
        // One iteration keeps the test fast and checks the same format.
        let cheap_pbkdf2 = pbkdf2_stored.replace("$1000000$", "$1$");

        assert!(bcrypt_stored.starts_with("$2b$12$"), "{bcrypt_stored}");
        assert_eq!(
            super::super::bcrypt_hash::verify("x", &bcrypt_stored),
            Some(false)
        );
        assert_eq!(django_pbkdf2::verify("x", &cheap_pbkdf2), Some(false));
        assert!(!super::super::verify_argon2id("x", ARGON2ID_DECOY));
        assert!(argon2::password_hash::PasswordHash::new(ARGON2ID_DECOY).is_ok());
    }

    #[test]
    fn decoy_counts_its_checks() {
        let decoy = Decoy::new(&PasswordScheme::unsalted(PasswordEncoding::Plain));

        decoy.verify("decoy");
        decoy.verify("");

        assert_eq!(decoy.checks(), 2);
    }
}
