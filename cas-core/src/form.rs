//! Strict `application/x-www-form-urlencoded` parsing for query strings and form bodies.
//! Unlike lossy parsers, invalid UTF-8 after percent-decoding is an error, so a password
//! is never silently changed before it is checked.

use std::borrow::Cow;

use percent_encoding::percent_decode;

/// Errors from parsing a query string or form body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    #[error("parameter is not UTF-8 after percent-decoding")]
    NotUtf8,
    #[error("parameter {0} appears more than once")]
    Duplicate(String),
}

/// Decoded name and value pairs in their original order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Parses a query string (without the `?`) or a form body.
    pub fn parse(input: &[u8]) -> Result<Self, ParamsError> {
        let mut pairs = Vec::new();
        for pair in input.split(|&b| b == b'&').filter(|pair| !pair.is_empty()) {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(index) => (&pair[..index], &pair[index + 1..]),
                None => (pair, &pair[pair.len()..]),
            };
            pairs.push((decode_component(name)?, decode_component(value)?));
        }
        Ok(Self { pairs })
    }

    /// Parses an optional query string.
    pub fn from_query(query: Option<&str>) -> Result<Self, ParamsError> {
        Self::parse(query.unwrap_or_default().as_bytes())
    }

    /// Returns the value of `name`, or an error when it appears more than once. Several values
    /// are rejected, not resolved, so that two parsers can never disagree on which counts.
    pub fn single(&self, name: &str) -> Result<Option<&str>, ParamsError> {
        let mut values = self
            .pairs
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str());
        let first = values.next();
        if values.next().is_some() {
            return Err(ParamsError::Duplicate(name.to_owned()));
        }
        Ok(first)
    }

    /// Returns the value of `name` when it is present once and not empty.
    pub fn non_empty(&self, name: &str) -> Result<Option<&str>, ParamsError> {
        Ok(self.single(name)?.filter(|value| !value.is_empty()))
    }

    /// Checks whether a CAS boolean parameter such as `renew` is set: present with any value
    /// other than `false`, as CAS 3.0 recommends for `renew` and `gateway`.
    pub fn flag(&self, name: &str) -> Result<bool, ParamsError> {
        Ok(self.single(name)?.is_some_and(|value| value != "false"))
    }
}

fn decode_component(raw: &[u8]) -> Result<String, ParamsError> {
    let spaced: Cow<'_, [u8]> = match raw.contains(&b'+') {
        true => raw
            .iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect(),
        false => Cow::Borrowed(raw),
    };
    let decoded = Cow::<[u8]>::from(percent_decode(&spaced)).into_owned();
    String::from_utf8(decoded).map_err(|_| ParamsError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_plus_and_percent() {
        let params =
            Params::parse(b"service=https%3A%2F%2Fa%2F%3Fx%3D1&name=a+b%2Bc").expect("valid");

        assert_eq!(params.single("service"), Ok(Some("https://a/?x=1")));
        assert_eq!(params.single("name"), Ok(Some("a b+c")));
        assert_eq!(params.single("missing"), Ok(None));
    }

    #[test]
    fn decodes_utf8() {
        let params = Params::parse("user=%E5%BC%A0%E4%B8%89".as_bytes()).expect("valid");

        assert_eq!(params.single("user"), Ok(Some("张三")));
    }

    #[test]
    fn rejects_invalid_utf8() {
        assert_eq!(Params::parse(b"password=%FF%FE"), Err(ParamsError::NotUtf8));
        assert_eq!(Params::parse(b"pass\xffword=x"), Err(ParamsError::NotUtf8));
    }

    #[test]
    fn duplicates_are_errors() {
        let params = Params::parse(b"ticket=a&ticket=b").expect("valid");

        assert_eq!(
            params.single("ticket"),
            Err(ParamsError::Duplicate("ticket".into()))
        );
    }

    #[test]
    fn handles_empty_and_bare_names() {
        let params = Params::parse(b"&&renew&gateway=false&x=").expect("valid");

        assert_eq!(params.flag("renew"), Ok(true));
        assert_eq!(params.flag("gateway"), Ok(false));
        assert_eq!(params.flag("absent"), Ok(false));
        assert_eq!(params.non_empty("x"), Ok(None));
        assert_eq!(params.single("x"), Ok(Some("")));
    }

    #[test]
    fn keeps_bad_percent_sequences_literal() {
        let params = Params::parse(b"a=%zz%2").expect("valid");

        assert_eq!(params.single("a"), Ok(Some("%zz%2")));
    }
}
