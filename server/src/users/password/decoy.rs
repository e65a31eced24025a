//! Decoy password checks: a verification of the configured encoding against a fixed
//! stored value that no password matches. It runs when a login fails before its real
//! password check (unknown or disabled user, unusable row), so that such a failure
//! costs the same hash work as a wrong password.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use argon2::password_hash::PasswordHash;
use argon2::Algorithm;

use super::{
    bcrypt_hash, django_pbkdf2, verify_password, PasswordEncoding, PasswordScheme, SaltSource,
};

/// Argon2id with the parameters `hash_argon2id` writes (the argon2 crate's defaults:
/// 19 MiB, 2 passes, 1 lane), the salt "decoy-salt-16byt" and a hash of zero bytes.
const ARGON2ID_DECOY: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$ZGVjb3ktc2FsdC0xNmJ5dA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// Salt and hash of the Argon2id decoy, after its parameters.
const ARGON2ID_DECOY_TAIL: &str =
    "ZGVjb3ktc2FsdC0xNmJ5dA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

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
    /// The decoy value, with the cost of the stored password verified last.
    stored: Arc<RwLock<String>>,
    column_salt: Option<String>,
    checks: Arc<AtomicU64>,
}

impl Decoy {
    /// Builds the decoy of `scheme`. Nothing is hashed here, so it costs nothing at start.
    pub fn new(scheme: &PasswordScheme) -> Self {
        let (stored, column_salt) = decoy_value(scheme);
        Self {
            scheme: scheme.clone(),
            stored: Arc::new(RwLock::new(stored)),
            column_salt,
            checks: Arc::default(),
        }
    }

    /// Verifies `typed` against the decoy, which always fails, with the work of a real
    /// check of the configured encoding.
    pub fn verify(&self, typed: &str) {
        let stored = self.stored().clone();
        let column_salt = self.column_salt.as_deref();
        let matched = verify_password(&self.scheme, typed, &stored, column_salt);
        debug_assert!(!matched, "the decoy matched a password");
        self.checks.fetch_add(1, Ordering::Relaxed);
    }

    /// Gives the decoy the cost of `stored` (bcrypt cost, PBKDF2 iterations or Argon2id
    /// parameters), a stored password of the configured encoding that was just verified.
    /// The decoy then costs what the store's own hashes cost. Values of another encoding
    /// or out of the accepted range leave the decoy as it is.
    pub fn match_cost(&self, stored: &str) {
        let Some(costed) = costed_decoy(self.scheme.encoding, stored) else {
            return;
        };
        if *self.stored() == costed {
            return;
        }
        *self.stored.write().unwrap_or_else(PoisonError::into_inner) = costed;
    }

    /// Returns the current decoy value.
    pub fn stored(&self) -> std::sync::RwLockReadGuard<'_, String> {
        self.stored.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Returns how many decoy checks ran, for tests that observe the decoy path.
    pub fn checks(&self) -> u64 {
        self.checks.load(Ordering::Relaxed)
    }
}

/// Returns the decoy of `encoding` with the cost of `stored`, or `None` when `stored` is
/// not a hash of that encoding within the accepted costs.
fn costed_decoy(encoding: PasswordEncoding, stored: &str) -> Option<String> {
    match encoding {
        PasswordEncoding::Argon2id => {
            let hash = PasswordHash::new(stored).ok()?;
            if hash.algorithm != Algorithm::Argon2id.ident() {
                return None;
            }
            let version = hash.version?;
            Some(format!(
                "$argon2id$v={version}${}${ARGON2ID_DECOY_TAIL}",
                hash.params
            ))
        }
        PasswordEncoding::Bcrypt => {
            let version = bcrypt_hash::VERSIONS
                .into_iter()
                .find(|version| stored.starts_with(version))?;
            let cost: u32 = stored.get(4..6)?.parse().ok()?;
            if cost > bcrypt_hash::MAX_COST || stored.get(6..7) != Some("$") {
                return None;
            }
            Some(format!("{version}{cost:02}${BCRYPT_DECOY_TAIL}"))
        }
        PasswordEncoding::Pbkdf2Sha256 => {
            let mut parts = stored.split('$');
            if parts.next() != Some(django_pbkdf2::ALGORITHM) {
                return None;
            }
            let iterations: u32 = parts.next()?.parse().ok()?;
            if !(1..=django_pbkdf2::MAX_ITERATIONS).contains(&iterations) {
                return None;
            }
            Some(pbkdf2_decoy(iterations))
        }
        _ => None,
    }
}

fn pbkdf2_decoy(iterations: u32) -> String {
    let key = "A".repeat(43) + "=";
    format!(
        "{}${iterations}${DECOY_SALT}${key}",
        django_pbkdf2::ALGORITHM
    )
}

/// Returns the stored value of the decoy before any stored password was verified, and
/// its column salt.
///
/// NOTE: until the first verification of a stored hash, the bcrypt cost and PBKDF2
/// iterations are these defaults. A store whose hashes use other costs fails unknown
/// users in a different time than wrong passwords until then, and whenever its hashes
/// mix costs or encodings, such as Argon2id values written by upgrade on login.
fn decoy_value(scheme: &PasswordScheme) -> (String, Option<String>) {
    let stored = match scheme.encoding {
        PasswordEncoding::Argon2id => ARGON2ID_DECOY.to_owned(),
        PasswordEncoding::Bcrypt => format!("$2b${:02}${BCRYPT_DECOY_TAIL}", bcrypt::DEFAULT_COST),
        PasswordEncoding::Pbkdf2Sha256 => pbkdf2_decoy(PBKDF2_DECOY_ITERATIONS),
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
        assert_eq!(bcrypt_hash::verify("x", &bcrypt_stored), Some(false));
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

    #[test]
    fn decoy_takes_cost_of_verified_hash() {
        let bcrypt = Decoy::new(&PasswordScheme::unsalted(PasswordEncoding::Bcrypt));
        let pbkdf2 = Decoy::new(&PasswordScheme::unsalted(PasswordEncoding::Pbkdf2Sha256));
        let argon2id = Decoy::new(&PasswordScheme::unsalted(PasswordEncoding::Argon2id));

        bcrypt.match_cost("$2y$04$T78.xVrZ2uX5gGHLlDAuJuHsLnsOtrb//bpq//RYHpM/vta7C3cGm");
        pbkdf2.match_cost(
            "pbkdf2_sha256$1000$Xq3fR9kLm2$j8wKJLAitI1w4/G+PRvjLkyKYYrQIely+FBdAla+lnU=",
        );
        argon2id.match_cost("$argon2id$v=19$m=65536,t=3,p=4$Zml4ZWQtc2FsdC0xNmJ5dA$6JnntlvLfLTd2uPTQyuF34B5Fsvs+a5l1JZNHurObeo");

        assert!(
            bcrypt.stored().starts_with("$2y$04$"),
            "{}",
            *bcrypt.stored()
        );
        assert_eq!(bcrypt_hash::verify("x", &bcrypt.stored()), Some(false));
        assert!(
            pbkdf2.stored().starts_with("pbkdf2_sha256$1000$"),
            "{}",
            *pbkdf2.stored()
        );
        assert_eq!(django_pbkdf2::verify("x", &pbkdf2.stored()), Some(false));
        assert!(
            argon2id.stored().contains("$m=65536,t=3,p=4$"),
            "{}",
            *argon2id.stored()
        );
        assert!(!super::super::verify_argon2id("x", &argon2id.stored()));
    }

    #[test]
    fn decoy_ignores_unusable_costs() {
        let bcrypt = Decoy::new(&PasswordScheme::unsalted(PasswordEncoding::Bcrypt));
        let before = bcrypt.stored().clone();

        bcrypt.match_cost("$2b$31$T78.xVrZ2uX5gGHLlDAuJuHsLnsOtrb//bpq//RYHpM/vta7C3cGm");
        bcrypt.match_cost("$argon2id$v=19$m=65536,t=3,p=4$Zml4ZWQtc2FsdC0xNmJ5dA$6JnntlvLfLTd2uPTQyuF34B5Fsvs+a5l1JZNHurObeo");
        bcrypt.match_cost("not-a-hash");

        assert_eq!(*bcrypt.stored(), before);
    }
}
