//! The optional filter settings: CAS endpoint choice, origin kind, session options, path
//! rules, API realm, single logout and the CAS timeout. Each reader returns the default
//! when its variable is unset or empty.

use url::Url;

use crate::config::{problem, SettingError, SettingSource};
use crate::cookies::{CookieNames, FILTER_COOKIE_PREFIX};
use crate::rules::PathRules;

/// Validation endpoints `CAS_VALIDATION_ENDPOINT` may name, relative to `CAS_BASE_URL`.
pub const VALIDATION_ENDPOINTS: [&str; 4] = [
    "p3/serviceValidate",
    "serviceValidate",
    "p3/proxyValidate",
    "proxyValidate",
];

/// Default idle timeout of a session, in seconds.
pub const DEFAULT_IDLE_SECONDS: u64 = 1800;

/// Default time the filter waits for CAS to answer a validation, in milliseconds.
pub const DEFAULT_CAS_TIMEOUT_MS: u64 = 10_000;

/// Default of `REVOCATION_CACHE_SECONDS`.
pub const DEFAULT_REVOCATION_CACHE_SECONDS: u64 = 10;

/// Where authenticated requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `ORIGIN_URL` without a trailing slash.
    Url(String),
    /// The Workers static assets of the `ASSETS` binding (`STATIC_ASSETS = "true"`).
    Assets,
}

/// Which POST requests the filter reads as a CAS back-channel logout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SloMode {
    /// Any POST with a form field `logoutRequest`, as the Apereo Java client does.
    AnyPost,
    /// Only POSTs to this exact path.
    Path(String),
    /// Never: back-channel logout is off.
    Off,
}

/// Returns a trimmed, non-empty variable, or `None`.
pub fn optional_var(source: &dyn SettingSource, setting: &str) -> Option<String> {
    source
        .var(setting)
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// Reads `CAS_BASE_URL`, the CAS server's base URL without a trailing slash.
pub fn cas_base(source: &dyn SettingSource) -> Result<Option<String>, SettingError> {
    const SETTING: &str = "CAS_BASE_URL";
    let Some(text) = optional_var(source, SETTING) else {
        return Ok(None);
    };

    let url =
        Url::parse(&text).map_err(|e| problem(SETTING, format!("is not an absolute URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none()
        || url.query().is_some()
    {
        return Err(problem(
            SETTING,
            "must be an http:// or https:// URL with a host and no query",
        ));
    }
    Ok(Some(url.as_str().trim_end_matches('/').to_owned()))
}

/// Reads `CAS_VALIDATION_ENDPOINT`; `p3/serviceValidate` by default.
pub fn validation_endpoint(source: &dyn SettingSource) -> Result<&'static str, SettingError> {
    const SETTING: &str = "CAS_VALIDATION_ENDPOINT";
    let Some(text) = optional_var(source, SETTING) else {
        return Ok(VALIDATION_ENDPOINTS[0]);
    };
    let text = text.trim_start_matches('/');
    VALIDATION_ENDPOINTS
        .into_iter()
        .find(|endpoint| *endpoint == text)
        .ok_or_else(|| {
            problem(
                SETTING,
                format!("must be one of {}", VALIDATION_ENDPOINTS.join(", ")),
            )
        })
}

/// Reads `SESSION_IDLE_SECONDS`: 0 turns the idle timeout off.
pub fn idle_seconds(source: &dyn SettingSource, max: u64) -> Result<u64, SettingError> {
    const SETTING: &str = "SESSION_IDLE_SECONDS";
    let Some(text) = optional_var(source, SETTING) else {
        return Ok(DEFAULT_IDLE_SECONDS);
    };
    let idle: u64 = text
        .parse()
        .map_err(|_| problem(SETTING, "must be a whole number of seconds, 0 for none"))?;
    if idle > max {
        return Err(problem(SETTING, format!("must be at most {max} seconds")));
    }
    Ok(idle)
}

/// Reads `SESSION_COOKIE_DOMAIN`, which must be the service host or a parent domain of it.
pub fn cookie_domain(
    source: &dyn SettingSource,
    service_base: Option<&str>,
) -> Result<Option<String>, SettingError> {
    const SETTING: &str = "SESSION_COOKIE_DOMAIN";
    let Some(text) = optional_var(source, SETTING) else {
        return Ok(None);
    };

    let domain = text.trim_start_matches('.').to_ascii_lowercase();
    let valid = domain.contains('.')
        && domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if !valid {
        return Err(problem(
            SETTING,
            "must be a domain name such as example.org",
        ));
    }

    let host = service_base
        .and_then(|base| Url::parse(base).ok())
        .and_then(|url| url.host_str().map(str::to_owned))
        .unwrap_or_default();
    if host != domain && !host.ends_with(&format!(".{domain}")) {
        return Err(problem(
            SETTING,
            "must be the host of SERVICE_BASE_URL or a parent domain of it",
        ));
    }
    Ok(Some(domain))
}

/// Reads `COOKIE_NAME_PREFIX`, which gives each site behind one host name or one
/// `SESSION_COOKIE_DOMAIN` its own cookies. It must start with `cas_edge_`, so that every
/// site's filter still removes the others' cookies before forwarding.
pub fn cookie_names(source: &dyn SettingSource) -> Result<CookieNames, SettingError> {
    const SETTING: &str = "COOKIE_NAME_PREFIX";
    const MAX_BYTES: usize = 64;
    let Some(prefix) = optional_var(source, SETTING) else {
        return Ok(CookieNames::default());
    };

    if !prefix.starts_with(FILTER_COOKIE_PREFIX) {
        return Err(problem(
            SETTING,
            format!("must start with {FILTER_COOKIE_PREFIX}, such as {FILTER_COOKIE_PREFIX}wiki_"),
        ));
    }
    let valid_characters = prefix
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid_characters || prefix.len() > MAX_BYTES {
        return Err(problem(
            SETTING,
            format!("must be at most {MAX_BYTES} letters, digits, '_' or '-'"),
        ));
    }
    Ok(CookieNames::with_prefix(&prefix))
}

/// Reads `PATH_RULES`.
pub fn path_rules(source: &dyn SettingSource) -> Result<PathRules, SettingError> {
    let text = optional_var(source, "PATH_RULES").unwrap_or_default();
    PathRules::parse(&text).map_err(|e| problem("PATH_RULES", e))
}

/// Reads `AUTH_REALM`, the realm of the API mode's `WWW-Authenticate` header; `CAS` by default.
pub fn realm(source: &dyn SettingSource) -> Result<String, SettingError> {
    let Some(realm) = optional_var(source, "AUTH_REALM") else {
        return Ok("CAS".to_owned());
    };
    let quotable = realm
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
    if !quotable {
        return Err(problem(
            "AUTH_REALM",
            "must be printable ASCII without \" or \\",
        ));
    }
    Ok(realm)
}

/// Reads `SLO_PATH`: unset for any POST, a path, or `off`.
pub fn slo_mode(source: &dyn SettingSource) -> Result<SloMode, SettingError> {
    match optional_var(source, "SLO_PATH") {
        None => Ok(SloMode::AnyPost),
        Some(off) if off.eq_ignore_ascii_case("off") => Ok(SloMode::Off),
        Some(path) if path.starts_with('/') => Ok(SloMode::Path(path)),
        Some(_) => Err(problem(
            "SLO_PATH",
            "must be a path starting with /, or off",
        )),
    }
}

/// Reads `CAS_TIMEOUT_MS`, the time allowed for the whole validation response.
pub fn cas_timeout_ms(source: &dyn SettingSource) -> Result<u64, SettingError> {
    const SETTING: &str = "CAS_TIMEOUT_MS";
    let Some(text) = optional_var(source, SETTING) else {
        return Ok(DEFAULT_CAS_TIMEOUT_MS);
    };
    match text.parse::<u64>() {
        Ok(ms) if (100..=60_000).contains(&ms) => Ok(ms),
        _ => Err(problem(
            SETTING,
            "must be a whole number of milliseconds from 100 to 60000",
        )),
    }
}

/// Reads `REVOCATION_CACHE_SECONDS`: how long an isolate trusts a "not revoked" result
/// from KV, 0 to read KV on every request.
pub fn revocation_cache_seconds(source: &dyn SettingSource) -> Result<u64, SettingError> {
    const SETTING: &str = "REVOCATION_CACHE_SECONDS";
    let Some(text) = optional_var(source, SETTING) else {
        return Ok(DEFAULT_REVOCATION_CACHE_SECONDS);
    };
    match text.parse::<u64>() {
        Ok(seconds) if seconds <= 60 => Ok(seconds),
        _ => Err(problem(
            SETTING,
            "must be a whole number of seconds from 0 to 60",
        )),
    }
}

/// Returns whether `STATIC_ASSETS` is `true`.
pub fn static_assets(source: &dyn SettingSource) -> Result<bool, SettingError> {
    match optional_var(source, "STATIC_ASSETS").as_deref() {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(problem("STATIC_ASSETS", "must be true or false")),
    }
}
