//! Unsalted and salted hex digests (MD5, SHA-1, SHA-256, SHA-512), as legacy tables and
//! Apereo CAS's `DEFAULT` password encoder store them.

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

/// A digest algorithm whose output is stored as hex text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HexDigest {
    Md5,
    Sha1,
    Sha256,
    Sha512,
}

impl HexDigest {
    /// Returns the digest of `input`.
    pub fn digest(self, input: &[u8]) -> Vec<u8> {
        match self {
            Self::Md5 => Md5::digest(input).to_vec(),
            Self::Sha1 => Sha1::digest(input).to_vec(),
            Self::Sha256 => Sha256::digest(input).to_vec(),
            Self::Sha512 => Sha512::digest(input).to_vec(),
        }
    }

    /// Returns the digest length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            Self::Md5 => 16,
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }

    /// Compares the digest of `input` with `stored_hex` in constant time. Hex digits of
    /// either letter case are accepted. Returns `None` when `stored_hex` is not a hex
    /// digest of this algorithm's length.
    pub fn verify(self, input: &[u8], stored_hex: &str) -> Option<bool> {
        let stored = hex::decode(stored_hex).ok()?;
        if stored.len() != self.output_len() {
            return None;
        }
        Some(self.digest(input).ct_eq(&stored).into())
    }
}
