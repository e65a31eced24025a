//! Password checks against the stored form: plain text compared in constant time, or an
//! Argon2id hash in PHC string format.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2};
use subtle::ConstantTimeEq;

/// Password storage format of the user database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordEncoding {
    /// An Argon2id PHC string such as `$argon2id$v=19$m=19456,t=2,p=1$…$…`.
    Argon2id,
    /// The password itself. Only for demos and migrations: the server warns at every start.
    Plain,
}

impl PasswordEncoding {
    /// Parses the configuration value `argon2id` or `plain`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "argon2id" => Some(Self::Argon2id),
            "plain" => Some(Self::Plain),
            _ => None,
        }
    }

    /// Returns the configuration value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Argon2id => "argon2id",
            Self::Plain => "plain",
        }
    }
}

/// Checks whether `typed` matches `stored`. A stored value that is not a valid Argon2id PHC
/// string never matches.
pub fn verify_password(encoding: PasswordEncoding, typed: &str, stored: &str) -> bool {
    match encoding {
        PasswordEncoding::Plain => typed.as_bytes().ct_eq(stored.as_bytes()).into(),
        PasswordEncoding::Argon2id => verify_argon2id(typed, stored),
    }
}

fn verify_argon2id(typed: &str, stored: &str) -> bool {
    let Ok(hash) = PasswordHash::new(stored) else {
        tracing::warn!("stored password is not a PHC string");
        return false;
    };

    // Only Argon2id is accepted, so a weaker variant written into the table cannot pass.
    if hash.algorithm != Algorithm::Argon2id.ident() {
        tracing::warn!(algorithm = %hash.algorithm, "stored password hash is not argon2id");
        return false;
    }
    Argon2::default()
        .verify_password(typed.as_bytes(), &hash)
        .is_ok()
}

/// Hashes `password` with Argon2id and the crate's default cost (19 MiB, 2 passes),
/// salted with 16 bytes from the operating system.
pub fn hash_argon2id(password: &str) -> Result<String, PasswordHashError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|_| PasswordHashError::Random)?;

    let salt = SaltString::encode_b64(&salt).map_err(|_| PasswordHashError::Hash)?;
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|_| PasswordHashError::Hash)?;
    Ok(hash.to_string())
}

/// Errors from hashing a password.
#[derive(Debug, thiserror::Error)]
pub enum PasswordHashError {
    #[error("the operating system random source failed")]
    Random,
    #[error("argon2 hashing failed")]
    Hash,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made with argon2-cffi 25.1.0 (bindings to the reference C implementation):
    /// `PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4)` hashing
    /// "correct horse" with the salt "fixed-salt-16byt".
    const REFERENCE_HASH: &str =
        "$argon2id$v=19$m=65536,t=3,p=4$Zml4ZWQtc2FsdC0xNmJ5dA$6JnntlvLfLTd2uPTQyuF34B5Fsvs+a5l1JZNHurObeo";

    #[test]
    fn argon2id_accepts_reference_vector() {
        assert!(verify_password(
            PasswordEncoding::Argon2id,
            "correct horse",
            REFERENCE_HASH
        ));
    }

    #[test]
    fn argon2id_rejects_wrong_password() {
        assert!(!verify_password(
            PasswordEncoding::Argon2id,
            "correct horsE",
            REFERENCE_HASH
        ));
        assert!(!verify_password(
            PasswordEncoding::Argon2id,
            "",
            REFERENCE_HASH
        ));
    }

    #[test]
    fn argon2id_rejects_malformed_and_other_variants() {
        let argon2i = REFERENCE_HASH.replacen("$argon2id$", "$argon2i$", 1);

        for stored in [
            "",
            "correct horse",
            "$argon2id$",
            "$argon2id$v=19$m=x$y$z",
            argon2i.as_str(),
        ] {
            assert!(
                !verify_password(PasswordEncoding::Argon2id, "correct horse", stored),
                "{stored}"
            );
        }
    }

    #[test]
    fn plain_compares_exactly() {
        assert!(verify_password(PasswordEncoding::Plain, "s3cret", "s3cret"));
        assert!(!verify_password(
            PasswordEncoding::Plain,
            "s3cret",
            "s3cret "
        ));
        assert!(!verify_password(
            PasswordEncoding::Plain,
            "S3cret",
            "s3cret"
        ));
        assert!(!verify_password(PasswordEncoding::Plain, "", "s3cret"));
    }

    #[test]
    fn hash_round_trips() {
        let stored = hash_argon2id("demo-password").expect("hash");

        assert!(stored.starts_with("$argon2id$v=19$"));
        assert!(verify_password(
            PasswordEncoding::Argon2id,
            "demo-password",
            &stored
        ));
        assert!(!verify_password(
            PasswordEncoding::Argon2id,
            "demo-passwort",
            &stored
        ));
    }

    #[test]
    fn encoding_parses_config_values() {
        assert_eq!(
            PasswordEncoding::parse("argon2id"),
            Some(PasswordEncoding::Argon2id)
        );
        assert_eq!(
            PasswordEncoding::parse("plain"),
            Some(PasswordEncoding::Plain)
        );
        assert_eq!(PasswordEncoding::parse("Argon2id"), None);
    }
}
