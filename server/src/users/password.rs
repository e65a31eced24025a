//! Password checks against the stored form. One encoding is configured for the whole
//! store. An Argon2id PHC string is accepted in every encoding as well, because upgrade
//! on login and `cas-server users` write Argon2id into stores of any encoding.

mod argon2id;
mod bcrypt_hash;
pub mod decoy;
mod django_pbkdf2;
mod hex_digest;
pub mod salt;

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::Argon2;
use subtle::ConstantTimeEq;

use argon2id::verify_argon2id;
use hex_digest::HexDigest;
pub use salt::{SaltPosition, SaltSource};

/// Prefix of an Argon2id PHC string, by which a stored value is recognised as Argon2id in
/// any configured encoding.
pub const ARGON2ID_PREFIX: &str = "$argon2id$";

/// First character of a disabled account's stored password. No encoding produces it, so
/// `!` alone or in front of an old hash fails every login.
pub const DISABLED_MARK: char = '!';

/// Password storage format of the user database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordEncoding {
    /// An Argon2id PHC string such as `$argon2id$v=19$m=19456,t=2,p=1$…$…`.
    Argon2id,
    /// bcrypt with the version prefix `$2a$`, `$2b$` or `$2y$`.
    Bcrypt,
    /// PBKDF2-HMAC-SHA256 in Django's format `pbkdf2_sha256$<iterations>$<salt>$<base64>`.
    Pbkdf2Sha256,
    /// Hex digests, optionally salted as [`SaltSource`] and [`SaltPosition`] set.
    Md5,
    Sha1,
    Sha256,
    Sha512,
    /// The password itself. Only for demos and migrations: the server warns at every start.
    Plain,
}

impl PasswordEncoding {
    /// Every configuration value, for messages.
    pub const NAMES: &'static str =
        "argon2id, bcrypt, pbkdf2-sha256, md5, sha1, sha256, sha512 or plain";

    /// Parses a configuration value such as `argon2id` or `pbkdf2-sha256`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "argon2id" => Some(Self::Argon2id),
            "bcrypt" => Some(Self::Bcrypt),
            "pbkdf2-sha256" => Some(Self::Pbkdf2Sha256),
            "md5" => Some(Self::Md5),
            "sha1" => Some(Self::Sha1),
            "sha256" => Some(Self::Sha256),
            "sha512" => Some(Self::Sha512),
            "plain" => Some(Self::Plain),
            _ => None,
        }
    }

    /// Returns the configuration value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Argon2id => "argon2id",
            Self::Bcrypt => "bcrypt",
            Self::Pbkdf2Sha256 => "pbkdf2-sha256",
            Self::Md5 => "md5",
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
            Self::Plain => "plain",
        }
    }

    /// Returns the digest of a hex digest encoding, `None` for the others.
    fn hex_digest(self) -> Option<HexDigest> {
        match self {
            Self::Md5 => Some(HexDigest::Md5),
            Self::Sha1 => Some(HexDigest::Sha1),
            Self::Sha256 => Some(HexDigest::Sha256),
            Self::Sha512 => Some(HexDigest::Sha512),
            _ => None,
        }
    }

    /// Tells whether this is a hex digest encoding, the only kind a salt setting applies to.
    pub fn takes_salt_setting(self) -> bool {
        self.hex_digest().is_some()
    }
}

/// The encoding and, for hex digests, the salt settings of the user store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordScheme {
    pub encoding: PasswordEncoding,
    pub salt: SaltSource,
    pub salt_position: SaltPosition,
}

impl PasswordScheme {
    /// Returns the scheme of `encoding` without a salt.
    pub fn unsalted(encoding: PasswordEncoding) -> Self {
        Self {
            encoding,
            salt: SaltSource::None,
            salt_position: SaltPosition::Before,
        }
    }
}

/// Tells whether `stored` marks a disabled account.
pub fn is_disabled(stored: &str) -> bool {
    stored.starts_with(DISABLED_MARK)
}

/// Tells whether `stored` is already an Argon2id PHC string, which upgrade on login leaves
/// as it is.
pub fn is_argon2id(stored: &str) -> bool {
    stored.starts_with(ARGON2ID_PREFIX)
}

/// Checks whether `typed` matches `stored`, using `column_salt` (the second column of the
/// password query) when the scheme's salt comes from a column. A disabled account never
/// matches. A stored value that the encoding cannot parse never matches and logs a warning.
pub fn verify_password(
    scheme: &PasswordScheme,
    typed: &str,
    stored: &str,
    column_salt: Option<&str>,
) -> bool {
    if is_disabled(stored) {
        return false;
    }
    if is_argon2id(stored) {
        return verify_argon2id(typed, stored);
    }

    let verified = match scheme.encoding {
        PasswordEncoding::Plain => Some(typed.as_bytes().ct_eq(stored.as_bytes()).into()),
        PasswordEncoding::Argon2id => Some(verify_argon2id(typed, stored)),
        PasswordEncoding::Bcrypt => bcrypt_hash::verify(typed, stored),
        PasswordEncoding::Pbkdf2Sha256 => django_pbkdf2::verify(typed, stored),
        PasswordEncoding::Md5
        | PasswordEncoding::Sha1
        | PasswordEncoding::Sha256
        | PasswordEncoding::Sha512 => verify_hex_digest(scheme, typed, stored, column_salt),
    };
    verified.unwrap_or_else(|| {
        tracing::warn!(
            encoding = scheme.encoding.as_str(),
            "stored password is malformed for the configured encoding"
        );
        false
    })
}

fn verify_hex_digest(
    scheme: &PasswordScheme,
    typed: &str,
    stored: &str,
    column_salt: Option<&str>,
) -> Option<bool> {
    let digest = scheme.encoding.hex_digest()?;
    let (salt, stored_hex) = match &scheme.salt {
        SaltSource::None => ("", stored),
        SaltSource::Column => (column_salt?, stored),
        SaltSource::Prefix { separator } => salt::split_prefixed(stored, separator)?,
    };

    let input = scheme.salt_position.join(salt, typed);
    digest.verify(&input, stored_hex)
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

    const PASSWORD: &str = "correct horse";
    /// A password with CJK and Latin-1 letters, hashed from its UTF-8 bytes.
    const UTF8_PASSWORD: &str = "密码 pässword";
    /// The salt of the salted vectors.
    const SALT: &str = "s4lt!";

    fn verify(encoding: PasswordEncoding, typed: &str, stored: &str) -> bool {
        verify_password(&PasswordScheme::unsalted(encoding), typed, stored, None)
    }

    fn salted(
        encoding: PasswordEncoding,
        salt: SaltSource,
        position: SaltPosition,
    ) -> PasswordScheme {
        PasswordScheme {
            encoding,
            salt,
            salt_position: position,
        }
    }

    #[test]
    fn argon2id_accepts_reference_vector() {
        assert!(verify(PasswordEncoding::Argon2id, PASSWORD, REFERENCE_HASH));
    }

    #[test]
    fn argon2id_rejects_wrong_password() {
        assert!(!verify(
            PasswordEncoding::Argon2id,
            "correct horsE",
            REFERENCE_HASH
        ));
        assert!(!verify(PasswordEncoding::Argon2id, "", REFERENCE_HASH));
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
                !verify(PasswordEncoding::Argon2id, PASSWORD, stored),
                "{stored}"
            );
        }
    }

    #[test]
    fn plain_compares_exactly() {
        assert!(verify(PasswordEncoding::Plain, "s3cret", "s3cret"));
        assert!(!verify(PasswordEncoding::Plain, "s3cret", "s3cret "));
        assert!(!verify(PasswordEncoding::Plain, "S3cret", "s3cret"));
        assert!(!verify(PasswordEncoding::Plain, "", "s3cret"));
    }

    #[test]
    fn hash_round_trips() {
        let stored = hash_argon2id("demo-password").expect("hash");

        assert!(stored.starts_with("$argon2id$v=19$"));
        assert!(verify(PasswordEncoding::Argon2id, "demo-password", &stored));
        assert!(!verify(
            PasswordEncoding::Argon2id,
            "demo-passwort",
            &stored
        ));
    }

    /// Vectors from Python 3 `hashlib.new(name, data).hexdigest()`, where `data` is the
    /// UTF-8 encoding of the password, of salt + password, or of password + salt.
    const HEX_VECTORS: [(PasswordEncoding, [&str; 4]); 4] = [
        (
            PasswordEncoding::Md5,
            [
                "3cb4e732631f47e6eb961f34554b7cde",
                "1633e800471becd33646a76163c381b8",
                "cac9ede682e0c5f206ec20a48eee91e0",
                "ed84b954c5930b688ec5c118a95dfec9",
            ],
        ),
        (
            PasswordEncoding::Sha1,
            [
                "2f9e53523b62abc141a2b4d6019d23cba835dbd0",
                "64a11b32fb87401a1d0503635efb28b3d49c00dc",
                "8ce026a5de3caa4fb0d5ed89d70b105ba40104fd",
                "9d86dac5858693a0c46968733a169ecf0bd24e67",
            ],
        ),
        (
            PasswordEncoding::Sha256,
            [
                "4104d36f8da2c254349f85836793ebe029e0c957063a34c91c2e9203187b5631",
                "93d49e35536aa34496e0cddb1227f04673c831584877642781ef3bfe523a7f41",
                "aca86dbaca3bec0da7186f68188140beea83bdfff796c7b5c9c9a567485f2331",
                "c97a240596ecb2c5cf350045cf1e66adaa283c8742bdf3fda2af69fbc6746170",
            ],
        ),
        (
            PasswordEncoding::Sha512,
            [
                "56b698defedb5a435b634afe3320bbaf3fdcd920b6c503a446fc7b7a776b298d479d1ba6a8b617808eb0bf579ce9a95d668347bcab7149085ac93cb27995197b",
                "d0b863d9819035b018b56a58a51de469b38c2615b2e2fad547fdfb1011e40f4c93af34c93158f1517ff1fa67d091e6d949aa5d0b47270bb170379e100a43595a",
                "c03d562ca795934cb2c773ee33e77571c0b730b8744f4f2662f481f215d94c5cdf2a0be0317abba3574fa705b2e92b166105058dd290e85ea48ffa53e9425f9d",
                "2fca7fe71071ee1b6e159855a818e1577bfe9369af3e00b76835de589407b5aabe0ce63ecb84986571c6feb4da066c007b95941376397c64c7aae0f6108af529",
            ],
        ),
    ];

    #[test]
    fn hex_digests_match_hashlib_vectors() {
        for (encoding, [plain, utf8, _, _]) in HEX_VECTORS {
            let name = encoding.as_str();

            assert!(verify(encoding, PASSWORD, plain), "{name}");
            assert!(
                verify(encoding, PASSWORD, &plain.to_uppercase()),
                "{name} upper case"
            );
            assert!(verify(encoding, UTF8_PASSWORD, utf8), "{name} UTF-8");
            assert!(!verify(encoding, "correct horsE", plain), "{name} wrong");
            assert!(!verify(encoding, PASSWORD, utf8), "{name} other");
        }
    }

    #[test]
    fn hex_digests_salt_from_column() {
        for (encoding, [_, _, before, after]) in HEX_VECTORS {
            let name = encoding.as_str();
            let first = salted(encoding, SaltSource::Column, SaltPosition::Before);
            let last = salted(encoding, SaltSource::Column, SaltPosition::After);

            assert!(
                verify_password(&first, PASSWORD, before, Some(SALT)),
                "{name}"
            );
            assert!(
                verify_password(&last, PASSWORD, after, Some(SALT)),
                "{name}"
            );
            assert!(
                !verify_password(&first, PASSWORD, after, Some(SALT)),
                "{name} side"
            );
            assert!(
                !verify_password(&first, PASSWORD, before, Some("s4lt")),
                "{name} salt"
            );
            assert!(
                !verify_password(&first, PASSWORD, before, None),
                "{name} NULL salt"
            );
        }
    }

    #[test]
    fn hex_digests_salt_from_prefix() {
        let prefix = |separator: &str| SaltSource::Prefix {
            separator: separator.into(),
        };
        for (encoding, [_, _, before, after]) in HEX_VECTORS {
            let name = encoding.as_str();
            let first = salted(encoding, prefix("$"), SaltPosition::Before);
            let last = salted(encoding, prefix("::"), SaltPosition::After);

            assert!(
                verify_password(&first, PASSWORD, &format!("{SALT}${before}"), None),
                "{name}"
            );
            assert!(
                verify_password(&last, PASSWORD, &format!("{SALT}::{after}"), None),
                "{name}"
            );
            assert!(
                !verify_password(&first, PASSWORD, before, None),
                "{name} no separator"
            );
            assert!(
                !verify_password(&first, PASSWORD, &format!("x{SALT}${before}"), None),
                "{name} salt"
            );
        }
    }

    #[test]
    fn hex_digests_reject_malformed() {
        let md5 = "3cb4e732631f47e6eb961f34554b7cde";
        for stored in [
            "",
            "3cb4e732631f47e6eb961f34554b7cd",
            &format!("{md5}00"),
            "zzb4e732631f47e6eb961f34554b7cde",
            &format!(" {md5}"),
        ] {
            assert!(
                !verify(PasswordEncoding::Md5, PASSWORD, stored),
                "{stored:?}"
            );
        }
        let sha1 = "2f9e53523b62abc141a2b4d6019d23cba835dbd0";
        assert!(
            !verify(PasswordEncoding::Sha256, PASSWORD, sha1),
            "length of another digest"
        );
    }

    /// Python 3 `hashlib.pbkdf2_hmac("sha256", password, b"Xq3fR9kLm2", 1000)`, written in
    /// Django's format with `base64.b64encode`.
    const DJANGO_VECTOR: &str =
        "pbkdf2_sha256$1000$Xq3fR9kLm2$j8wKJLAitI1w4/G+PRvjLkyKYYrQIely+FBdAla+lnU=";
    const DJANGO_UTF8_VECTOR: &str =
        "pbkdf2_sha256$1000$Xq3fR9kLm2$x9rDjSuiaTGodUN7o5oYEp8g5oxF0q5C4xb+knZATGo=";

    #[test]
    fn pbkdf2_matches_hashlib_vectors() {
        let encoding = PasswordEncoding::Pbkdf2Sha256;

        assert!(verify(encoding, PASSWORD, DJANGO_VECTOR));
        assert!(verify(encoding, UTF8_PASSWORD, DJANGO_UTF8_VECTOR));
        assert!(!verify(encoding, "correct horsE", DJANGO_VECTOR));
        assert!(!verify(encoding, PASSWORD, DJANGO_UTF8_VECTOR));
    }

    #[test]
    fn pbkdf2_rejects_malformed() {
        let encoding = PasswordEncoding::Pbkdf2Sha256;
        let key = "j8wKJLAitI1w4/G+PRvjLkyKYYrQIely+FBdAla+lnU=";

        for stored in [
            String::new(),
            format!("pbkdf2_sha1$1000$Xq3fR9kLm2${key}"),
            format!("pbkdf2_sha256$0$Xq3fR9kLm2${key}"),
            format!("pbkdf2_sha256$-1$Xq3fR9kLm2${key}"),
            format!("pbkdf2_sha256$99999999999$Xq3fR9kLm2${key}"),
            format!("pbkdf2_sha256$1000$${key}"),
            format!("pbkdf2_sha256$1000$Xq3fR9kLm2${key}$"),
            "pbkdf2_sha256$1000$Xq3fR9kLm2$j8wKJLAitI1w4/G+".to_owned(),
            "pbkdf2_sha256$1000$Xq3fR9kLm2$!!!!".to_owned(),
        ] {
            assert!(!verify(encoding, PASSWORD, &stored), "{stored}");
        }
    }

    /// `$2b$` and `$2a$` vectors from the `bcrypt` 5.0.0 PyPI package:
    /// `bcrypt.hashpw(password, bcrypt.gensalt(rounds, prefix))`. The `$2y$` vector is from
    /// Apache's `htpasswd -bnBC 4 u "correct horse"` (httpd 2.4).
    const BCRYPT_2B: &str = "$2b$04$T78.xVrZ2uX5gGHLlDAuJuHsLnsOtrb//bpq//RYHpM/vta7C3cGm";
    const BCRYPT_2A: &str = "$2a$05$9c50wYv5HIOWz5tlQKlHRuxjrcbZe2fTOdPjiscnhXjk.3QywfCsO";
    const BCRYPT_2Y: &str = "$2y$04$wwb5t8KmQF94gWVanyMreuLkdb7.IzS33QFoc86rpsSeFymppXusG";
    const BCRYPT_UTF8: &str = "$2b$04$ThnJ/o.6cob7nrG6bBxsReronZNfl8ph9J5PmjarjgUweR4cXd7iW";

    #[test]
    fn bcrypt_matches_reference_vectors() {
        let encoding = PasswordEncoding::Bcrypt;

        for stored in [BCRYPT_2B, BCRYPT_2A, BCRYPT_2Y] {
            assert!(verify(encoding, PASSWORD, stored), "{stored}");
            assert!(!verify(encoding, "correct horsE", stored), "{stored}");
        }
        assert!(verify(encoding, UTF8_PASSWORD, BCRYPT_UTF8));
        assert!(!verify(encoding, PASSWORD, BCRYPT_UTF8));
    }

    #[test]
    fn bcrypt_rejects_malformed() {
        let encoding = PasswordEncoding::Bcrypt;
        let buggy_variant = BCRYPT_2B.replacen("$2b$", "$2x$", 1);
        let too_costly = BCRYPT_2B.replacen("$04$", "$31$", 1);
        let truncated = &BCRYPT_2B[..40];

        for stored in [
            "",
            "$2b$",
            truncated,
            &buggy_variant,
            &too_costly,
            "$2b$04$!",
        ] {
            assert!(!verify(encoding, PASSWORD, stored), "{stored}");
        }
    }

    #[test]
    fn argon2id_accepted_in_every_encoding() {
        for name in [
            "bcrypt",
            "pbkdf2-sha256",
            "md5",
            "sha1",
            "sha256",
            "sha512",
            "plain",
        ] {
            let encoding = PasswordEncoding::parse(name).expect("encoding");
            let scheme = salted(encoding, SaltSource::Column, SaltPosition::Before);

            assert!(verify(encoding, PASSWORD, REFERENCE_HASH), "{name}");
            assert!(
                verify_password(&scheme, PASSWORD, REFERENCE_HASH, None),
                "{name} salted"
            );
            assert!(
                !verify(encoding, "correct horsE", REFERENCE_HASH),
                "{name} wrong"
            );
        }
    }

    #[test]
    fn disabled_mark_never_verifies() {
        let md5 = "3cb4e732631f47e6eb961f34554b7cde";

        assert!(!verify(PasswordEncoding::Plain, "!", "!"));
        assert!(!verify(PasswordEncoding::Plain, "!pw", "!pw"));
        assert!(!verify(PasswordEncoding::Md5, PASSWORD, &format!("!{md5}")));
        assert!(!verify(
            PasswordEncoding::Argon2id,
            PASSWORD,
            &format!("!{REFERENCE_HASH}")
        ));
        assert!(is_disabled("!"));
        assert!(!is_disabled(md5));
    }

    #[test]
    fn encoding_parses_config_values() {
        for name in [
            "argon2id",
            "bcrypt",
            "pbkdf2-sha256",
            "md5",
            "sha1",
            "sha256",
            "sha512",
            "plain",
        ] {
            let encoding = PasswordEncoding::parse(name).expect(name);
            assert_eq!(encoding.as_str(), name);
        }
        assert_eq!(PasswordEncoding::parse("Argon2id"), None);
        assert_eq!(PasswordEncoding::parse("pbkdf2"), None);
    }
}
