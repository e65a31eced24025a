//! Salt settings of the hex digest encodings: where the salt is stored and on which side
//! of the password it is hashed.

/// Location of the salt of a hex digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaltSource {
    /// No salt: the stored value is the hex digest of the password alone.
    None,
    /// The password query returns the salt as its second column.
    Column,
    /// The stored value is `<salt><separator><hex digest>`.
    Prefix { separator: String },
}

/// Side of the password on which the salt is hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaltPosition {
    /// `digest(salt + password)`, as in most legacy PHP tables.
    Before,
    /// `digest(password + salt)`.
    After,
}

impl SaltSource {
    /// Parses the configuration value `none`, `column` or `prefix:<separator>`. A
    /// separator must be non-empty and contain no hex digit, so that it cannot occur in
    /// the digest after it.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "none" => return Some(Self::None),
            "column" => return Some(Self::Column),
            _ => {}
        }

        let separator = text.strip_prefix("prefix:")?;
        if separator.is_empty() || separator.chars().any(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        Some(Self::Prefix {
            separator: separator.to_owned(),
        })
    }
}

impl SaltPosition {
    /// Parses the configuration value `before` or `after`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "before" => Some(Self::Before),
            "after" => Some(Self::After),
            _ => None,
        }
    }

    /// Returns the bytes to hash: the salt and the password in this order.
    pub fn join(self, salt: &str, password: &str) -> Vec<u8> {
        let (first, second) = match self {
            Self::Before => (salt, password),
            Self::After => (password, salt),
        };
        [first.as_bytes(), second.as_bytes()].concat()
    }
}

/// Splits `<salt><separator><digest>` at the last separator, because the digest never
/// contains it while a salt may.
pub fn split_prefixed<'a>(stored: &'a str, separator: &str) -> Option<(&'a str, &'a str)> {
    stored.rsplit_once(separator)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn salt_source_parses_config_values() {
        assert_eq!(SaltSource::parse("none"), Some(SaltSource::None));
        assert_eq!(SaltSource::parse("column"), Some(SaltSource::Column));
        assert_eq!(
            SaltSource::parse("prefix:$"),
            Some(SaltSource::Prefix {
                separator: "$".into()
            })
        );
        assert_eq!(
            SaltSource::parse("prefix::"),
            Some(SaltSource::Prefix {
                separator: ":".into()
            })
        );
    }

    #[test]
    fn salt_source_rejects_bad_separators() {
        for text in ["prefix:", "prefix:a", "prefix:-0-", "Column", "prefix", ""] {
            assert_eq!(SaltSource::parse(text), None, "{text}");
        }
    }

    #[test]
    fn position_orders_salt_and_password() {
        assert_eq!(SaltPosition::Before.join("s4lt", "pw"), b"s4ltpw");
        assert_eq!(SaltPosition::After.join("s4lt", "pw"), b"pws4lt");
        assert_eq!(SaltPosition::parse("after"), Some(SaltPosition::After));
        assert_eq!(SaltPosition::parse("end"), None);
    }

    #[test]
    fn prefix_splits_at_last_separator() {
        assert_eq!(split_prefixed("ab$cd$0f", "$"), Some(("ab$cd", "0f")));
        assert_eq!(split_prefixed("$0f", "$"), Some(("", "0f")));
        assert_eq!(split_prefixed("0f", "$"), None);
    }
}
