//! Command line and environment settings of the demo origin.

use std::net::SocketAddr;

use cas_core::signing::{KeyRing, SigningKey};
use clap::Parser;

use crate::Verifier;

/// Issuer name the edge filter writes into its assertions.
pub const EDGE_FILTER_ISSUER: &str = "cas-edge-filter";

/// Command line of `demo-origin`. The key is read from the environment only, so it never
/// shows in the process list.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "demo-origin",
    version,
    about = "Demo origin behind the CAS edge filter: shows the user of a verified X-CAS-Assertion",
    after_help = "Environment: CAS_ASSERTION_KEY (required, the filter's ASSERTION_KEY, at least 32 bytes), \
                  CAS_ASSERTION_KEY_PREVIOUS (optional, the key before a rotation)."
)]
pub struct Args {
    /// Address and port to listen on.
    #[arg(long, env = "DEMO_ORIGIN_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Audience the assertions must name: the filter's ASSERTION_AUDIENCE, by default its ORIGIN_URL.
    #[arg(
        long,
        env = "CAS_ASSERTION_AUDIENCE",
        default_value = "http://127.0.0.1:8080"
    )]
    pub audience: String,

    /// Issuer the assertions must name.
    #[arg(long, env = "CAS_ASSERTION_ISSUER", default_value = EDGE_FILTER_ISSUER)]
    pub issuer: String,
}

/// Setting error that stops the demo origin from starting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("CAS_ASSERTION_KEY is missing; set it to the edge filter's ASSERTION_KEY")]
    MissingKey,
    #[error("{name} is invalid: {reason}")]
    InvalidKey { name: &'static str, reason: String },
}

/// Builds the verifier from `args` and the key variables that `lookup` returns.
pub fn verifier_from(
    args: &Args,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Verifier, SettingsError> {
    let current = lookup("CAS_ASSERTION_KEY")
        .filter(|key| !key.trim().is_empty())
        .ok_or(SettingsError::MissingKey)?;
    let current = parse_key("CAS_ASSERTION_KEY", &current)?;

    let previous = match lookup("CAS_ASSERTION_KEY_PREVIOUS").filter(|key| !key.trim().is_empty()) {
        Some(key) => Some(parse_key("CAS_ASSERTION_KEY_PREVIOUS", &key)?),
        None => None,
    };

    let keys = KeyRing::new(current, previous);
    Ok(Verifier::new(keys, args.audience.clone()).with_issuer(args.issuer.clone()))
}

fn parse_key(name: &'static str, secret: &str) -> Result<SigningKey, SettingsError> {
    SigningKey::from_secret(secret).map_err(|e| SettingsError::InvalidKey {
        name,
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("demo-origin").chain(list.iter().copied()))
            .expect("valid arguments")
    }

    #[test]
    fn defaults_listen_on_loopback() {
        let args = args(&[]);

        assert_eq!(args.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(args.issuer, EDGE_FILTER_ISSUER);
    }

    #[test]
    fn listen_flag_is_parsed() {
        assert_eq!(args(&["--listen", "127.0.0.1:9999"]).listen.port(), 9999);
    }

    #[test]
    fn missing_key_is_reported() {
        let result = verifier_from(&args(&[]), |_| None);

        assert_eq!(result.map(|_| ()), Err(SettingsError::MissingKey));
    }

    #[test]
    fn short_key_is_reported_by_name() {
        let result = verifier_from(&args(&[]), |name| {
            (name == "CAS_ASSERTION_KEY").then(|| "short".to_owned())
        });

        let error = result.map(|_| ()).expect_err("short key");
        assert!(
            error
                .to_string()
                .starts_with("CAS_ASSERTION_KEY is invalid"),
            "{error}"
        );
        assert!(!error.to_string().contains("short\""), "{error}");
    }

    #[test]
    fn valid_keys_build_verifier() {
        let lookup = |name: &str| match name {
            "CAS_ASSERTION_KEY" => Some("n".repeat(40)),
            "CAS_ASSERTION_KEY_PREVIOUS" => Some("o".repeat(40)),
            _ => None,
        };

        assert!(verifier_from(&args(&[]), lookup).is_ok());
    }
}
