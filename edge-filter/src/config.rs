//! Filter settings: wrangler `[vars]` and secrets, parsed and checked before any request
//! is handled. Every problem names the setting, so the 500 page can point at it.

use std::fmt;

use cas_core::signing::{KeyRing, SigningKey};
use url::Url;

use crate::cookies::CookieNames;
use crate::options::{self, Origin, SloMode};
use crate::rules::PathRules;

/// Default lifetime of the session cookie, in seconds.
pub const DEFAULT_SESSION_TTL_SECONDS: u64 = 3600;

/// Maximum session lifetime accepted, in seconds (30 days).
pub const MAX_SESSION_TTL_SECONDS: u64 = 30 * 24 * 3600;

/// Source of settings: plain variables and secrets. The wasm glue reads the Workers
/// environment, and tests use a map.
pub trait SettingSource {
    /// Returns a `[vars]` value, or `None` when it is not set.
    fn var(&self, name: &str) -> Option<String>;
    /// Returns a secret value, or `None` when it is not set.
    fn secret(&self, name: &str) -> Option<String>;
}

/// One missing or invalid setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError {
    /// The variable or secret name, as written in wrangler.toml or `.dev.vars`.
    pub setting: &'static str,
    /// Description of the problem. It never contains the value, which may be a secret.
    pub problem: String,
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.setting, self.problem)
    }
}

/// Every problem found in the settings, in the order they were checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub problems: Vec<SettingError>,
}

impl ConfigError {
    /// Returns the names of the bad settings, for the error page.
    pub fn settings(&self) -> Vec<&'static str> {
        self.problems
            .iter()
            .map(|problem| problem.setting)
            .collect()
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.problems.iter().map(ToString::to_string).collect();
        write!(f, "invalid filter configuration: {}", lines.join("; "))
    }
}

impl std::error::Error for ConfigError {}

/// The checked settings of the filter.
#[derive(Debug, Clone)]
pub struct FilterConfig {
    /// `CAS_LOGIN_URL`, or `CAS_BASE_URL` plus `/login`: where browsers sign in.
    pub login_url: Url,
    /// `CAS_VALIDATE_URL`, or `CAS_BASE_URL` plus `CAS_VALIDATION_ENDPOINT`.
    pub validate_url: Url,
    /// `SERVICE_BASE_URL` without a trailing slash: scheme, host and port of the protected site.
    pub service_base: String,
    /// `ORIGIN_URL`, or the static assets when `STATIC_ASSETS` is `true`.
    pub origin: Origin,
    /// `ASSERTION_AUDIENCE`, or else `ORIGIN_URL`, or else `SERVICE_BASE_URL`.
    pub audience: String,
    /// `SESSION_TTL_SECONDS`: the hard lifetime of a session.
    pub session_ttl: u64,
    /// `SESSION_IDLE_SECONDS`: the idle timeout of a session, 0 for none.
    pub idle_timeout: u64,
    /// `SESSION_COOKIE_DOMAIN`; `None` makes the filter's cookies host-only.
    pub cookie_domain: Option<String>,
    /// The filter's cookie names, from `COOKIE_NAME_PREFIX`.
    pub cookie_names: CookieNames,
    /// `SESSION_KEY`, plus `SESSION_KEY_PREVIOUS` for verification only.
    pub session_keys: KeyRing,
    /// `ASSERTION_KEY`.
    pub assertion_key: SigningKey,
    /// `PATH_RULES`.
    pub rules: PathRules,
    /// `AUTH_REALM`.
    pub realm: String,
    /// `SLO_PATH`.
    pub slo: SloMode,
    /// `CAS_TIMEOUT_MS`.
    pub cas_timeout_ms: u64,
    /// `REVOCATION_CACHE_SECONDS`.
    pub revocation_cache_seconds: u64,
}

impl FilterConfig {
    /// Reads and checks every setting, collecting all problems instead of stopping at the first.
    pub fn load(source: &dyn SettingSource) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();

        let cas_base = collect(&mut problems, options::cas_base(source)).flatten();
        let endpoint = collect(&mut problems, options::validation_endpoint(source));
        let login_url = collect(
            &mut problems,
            cas_url(source, "CAS_LOGIN_URL", &cas_base, Some("login")),
        );
        let validate_url = collect(
            &mut problems,
            cas_url(source, "CAS_VALIDATE_URL", &cas_base, endpoint),
        );
        let service_base = collect(&mut problems, site_origin(source, "SERVICE_BASE_URL"));
        let origin = collect(&mut problems, origin(source));
        let audience = collect(
            &mut problems,
            audience(source, origin.as_ref(), service_base.as_deref()),
        );
        let session_ttl = collect(&mut problems, session_ttl(source));
        let idle_timeout = collect(
            &mut problems,
            options::idle_seconds(source, MAX_SESSION_TTL_SECONDS),
        );
        let cookie_domain = collect(
            &mut problems,
            options::cookie_domain(source, service_base.as_deref()),
        );
        let cookie_names = collect(&mut problems, options::cookie_names(source));
        let session_keys = collect(&mut problems, session_keys(source));
        let assertion_key = collect(&mut problems, required_key(source, "ASSERTION_KEY"));
        let rules = collect(&mut problems, options::path_rules(source));
        let realm = collect(&mut problems, options::realm(source));
        let slo = collect(&mut problems, options::slo_mode(source));
        let cas_timeout_ms = collect(&mut problems, options::cas_timeout_ms(source));
        let revocation_cache_seconds =
            collect(&mut problems, options::revocation_cache_seconds(source));

        let keys_differ = collect(&mut problems, keys_differ(source));
        let assembled = (|| {
            keys_differ?;
            let session_keys = site_session_keys(&session_keys?, service_base.as_deref()?);
            Some(Self {
                login_url: login_url?,
                validate_url: validate_url?,
                service_base: service_base?,
                origin: origin?,
                audience: audience?,
                session_ttl: session_ttl?,
                idle_timeout: idle_timeout?,
                cookie_domain: cookie_domain?,
                cookie_names: cookie_names?,
                session_keys,
                assertion_key: assertion_key?,
                rules: rules?,
                realm: realm?,
                slo: slo?,
                cas_timeout_ms: cas_timeout_ms?,
                revocation_cache_seconds: revocation_cache_seconds?,
            })
        })();

        match assembled {
            Some(config) if problems.is_empty() => Ok(config),
            _ => Err(ConfigError { problems }),
        }
    }
}

fn collect<T>(problems: &mut Vec<SettingError>, result: Result<T, SettingError>) -> Option<T> {
    result.map_err(|problem| problems.push(problem)).ok()
}

pub(crate) fn problem(setting: &'static str, text: impl Into<String>) -> SettingError {
    SettingError {
        setting,
        problem: text.into(),
    }
}

fn required_var(source: &dyn SettingSource, setting: &'static str) -> Result<String, SettingError> {
    let value = source
        .var(setting)
        .map(|value| value.trim().to_owned())
        .unwrap_or_default();
    if value.is_empty() {
        return Err(problem(
            setting,
            "is missing; set it under [vars] in wrangler.toml",
        ));
    }
    Ok(value)
}

fn http_url(source: &dyn SettingSource, setting: &'static str) -> Result<Url, SettingError> {
    let text = required_var(source, setting)?;
    let url =
        Url::parse(&text).map_err(|e| problem(setting, format!("is not an absolute URL ({e})")))?;

    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(problem(
            setting,
            "must be an http:// or https:// URL with a host",
        ));
    }
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(problem(
            setting,
            "must not contain a fragment or user credentials",
        ));
    }
    Ok(url)
}

/// Reads the protected site's base URL. It must be scheme, host and port only, because the
/// request path is appended to it unchanged.
fn site_origin(source: &dyn SettingSource, setting: &'static str) -> Result<String, SettingError> {
    let url = http_url(source, setting)?;
    if url.path() != "/" || url.query().is_some() {
        return Err(problem(
            setting,
            "must be scheme, host and port only, such as https://app.example.org",
        ));
    }
    Ok(without_slash(&url))
}

fn without_slash(url: &Url) -> String {
    url.as_str().trim_end_matches('/').to_owned()
}

/// Reads a CAS endpoint: its own variable when set, else `CAS_BASE_URL` plus `path`.
/// `path` is `None` when `CAS_VALIDATION_ENDPOINT` is invalid, which is reported already.
fn cas_url(
    source: &dyn SettingSource,
    setting: &'static str,
    base: &Option<String>,
    path: Option<&str>,
) -> Result<Url, SettingError> {
    if options::optional_var(source, setting).is_some() {
        return http_url(source, setting);
    }
    let (Some(base), Some(path)) = (base, path) else {
        return Err(problem(
            setting,
            "is missing; set it or CAS_BASE_URL under [vars] in wrangler.toml",
        ));
    };
    Url::parse(&format!("{base}/{path}")).map_err(|e| problem("CAS_BASE_URL", e.to_string()))
}

fn origin(source: &dyn SettingSource) -> Result<Origin, SettingError> {
    if options::static_assets(source)? {
        if options::optional_var(source, "ORIGIN_URL").is_some() {
            return Err(problem(
                "ORIGIN_URL",
                "must be unset when STATIC_ASSETS is true",
            ));
        }
        return Ok(Origin::Assets);
    }
    let url = http_url(source, "ORIGIN_URL")?;
    Ok(Origin::Url(without_slash(&url)))
}

fn audience(
    source: &dyn SettingSource,
    origin: Option<&Origin>,
    service_base: Option<&str>,
) -> Result<String, SettingError> {
    if let Some(audience) = options::optional_var(source, "ASSERTION_AUDIENCE") {
        return Ok(audience);
    }
    // A bad ORIGIN_URL or SERVICE_BASE_URL is already reported, so it is not named again.
    match origin {
        Some(Origin::Url(base)) => Ok(base.clone()),
        _ => Ok(service_base.unwrap_or_default().to_owned()),
    }
}

fn session_ttl(source: &dyn SettingSource) -> Result<u64, SettingError> {
    const SETTING: &str = "SESSION_TTL_SECONDS";
    let Some(text) = source
        .var(SETTING)
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
    else {
        return Ok(DEFAULT_SESSION_TTL_SECONDS);
    };

    let ttl: u64 = text
        .parse()
        .map_err(|_| problem(SETTING, "must be a whole number of seconds"))?;
    if ttl == 0 || ttl > MAX_SESSION_TTL_SECONDS {
        return Err(problem(
            SETTING,
            format!("must be between 1 and {MAX_SESSION_TTL_SECONDS} seconds"),
        ));
    }
    Ok(ttl)
}

fn required_key(
    source: &dyn SettingSource,
    setting: &'static str,
) -> Result<SigningKey, SettingError> {
    let Some(secret) = source.secret(setting) else {
        return Err(problem(
            setting,
            "is missing; set it with `wrangler secret put` or in .dev.vars",
        ));
    };
    SigningKey::from_secret(&secret).map_err(|e| problem(setting, e.to_string()))
}

fn session_keys(source: &dyn SettingSource) -> Result<KeyRing, SettingError> {
    let current = required_key(source, "SESSION_KEY")?;
    let previous = match source
        .secret("SESSION_KEY_PREVIOUS")
        .filter(|secret| !secret.trim().is_empty())
    {
        Some(secret) => Some(
            SigningKey::from_secret(&secret)
                .map_err(|e| problem("SESSION_KEY_PREVIOUS", e.to_string()))?,
        ),
        None => None,
    };
    Ok(KeyRing::new(current, previous))
}

/// Derives the session cookie keys of the site at `service_base` from `SESSION_KEY` (and
/// `SESSION_KEY_PREVIOUS`). Browsers send a cookie to every port of its host, and to every
/// subdomain of a `Domain`, so sites that share a secret would otherwise accept each
/// other's sessions, with attributes that CAS released only to the other site.
fn site_session_keys(keys: &KeyRing, service_base: &str) -> KeyRing {
    let context = format!("cas-edge-filter session cookie\n{service_base}");
    keys.derive(context.as_bytes())
}

/// Rejects equal session and assertion keys: with one key, a leaked key or a signing bug in
/// one role would compromise the other too.
fn keys_differ(source: &dyn SettingSource) -> Result<(), SettingError> {
    let session = source
        .secret("SESSION_KEY")
        .map(|secret| secret.trim().to_owned());
    let assertion = source
        .secret("ASSERTION_KEY")
        .map(|secret| secret.trim().to_owned());
    if session.is_some() && session == assertion {
        return Err(problem("ASSERTION_KEY", "must differ from SESSION_KEY"));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashMap;

    use super::*;

    /// Settings in a map; secrets are the names listed in `SECRETS`.
    #[derive(Default, Clone)]
    pub(crate) struct MapSource(pub HashMap<&'static str, String>);

    const SECRETS: [&str; 3] = ["SESSION_KEY", "SESSION_KEY_PREVIOUS", "ASSERTION_KEY"];

    impl SettingSource for MapSource {
        fn var(&self, name: &str) -> Option<String> {
            (!SECRETS.contains(&name))
                .then(|| self.0.get(name).cloned())
                .flatten()
        }

        fn secret(&self, name: &str) -> Option<String> {
            SECRETS
                .contains(&name)
                .then(|| self.0.get(name).cloned())
                .flatten()
        }
    }

    pub(crate) fn demo_source() -> MapSource {
        let mut map = HashMap::new();
        map.insert(
            "CAS_LOGIN_URL",
            "https://127.0.0.1:8443/cas/login".to_owned(),
        );
        map.insert(
            "CAS_VALIDATE_URL",
            "https://127.0.0.1:8443/cas/p3/serviceValidate".to_owned(),
        );
        map.insert("SERVICE_BASE_URL", "http://127.0.0.1:8787".to_owned());
        map.insert("ORIGIN_URL", "http://127.0.0.1:8080".to_owned());
        map.insert("SESSION_KEY", "s".repeat(40));
        map.insert("ASSERTION_KEY", "a".repeat(40));
        MapSource(map)
    }

    pub(crate) fn demo_config() -> FilterConfig {
        FilterConfig::load(&demo_source()).expect("demo settings are valid")
    }

    fn problems_with(change: impl FnOnce(&mut HashMap<&'static str, String>)) -> Vec<&'static str> {
        let mut source = demo_source();
        change(&mut source.0);
        FilterConfig::load(&source)
            .expect_err("settings are invalid")
            .settings()
    }

    #[test]
    fn demo_settings_load_with_defaults() {
        let config = demo_config();

        assert_eq!(config.service_base, "http://127.0.0.1:8787");
        assert_eq!(
            config.origin,
            Origin::Url("http://127.0.0.1:8080".to_owned())
        );
        assert_eq!(config.audience, "http://127.0.0.1:8080");
        assert_eq!(config.session_ttl, DEFAULT_SESSION_TTL_SECONDS);
        assert_eq!(config.idle_timeout, options::DEFAULT_IDLE_SECONDS);
        assert_eq!(config.cookie_domain, None);
        assert_eq!(config.realm, "CAS");
        assert_eq!(config.slo, SloMode::AnyPost);
        assert_eq!(config.cas_timeout_ms, options::DEFAULT_CAS_TIMEOUT_MS);
        assert_eq!(
            config.revocation_cache_seconds,
            options::DEFAULT_REVOCATION_CACHE_SECONDS
        );
    }

    #[test]
    fn base_url_replaces_endpoint_urls() {
        let mut source = demo_source();
        source.0.remove("CAS_LOGIN_URL");
        source.0.remove("CAS_VALIDATE_URL");
        source
            .0
            .insert("CAS_BASE_URL", "https://cas.example/cas/".to_owned());
        source
            .0
            .insert("CAS_VALIDATION_ENDPOINT", "proxyValidate".to_owned());
        let config = FilterConfig::load(&source).expect("valid");

        assert_eq!(config.login_url.as_str(), "https://cas.example/cas/login");
        assert_eq!(
            config.validate_url.as_str(),
            "https://cas.example/cas/proxyValidate"
        );
    }

    #[test]
    fn base_url_default_endpoint_is_p3() {
        let mut source = demo_source();
        source.0.remove("CAS_VALIDATE_URL");
        source
            .0
            .insert("CAS_BASE_URL", "https://cas.example/cas".to_owned());
        let config = FilterConfig::load(&source).expect("valid");

        assert_eq!(
            config.login_url.as_str(),
            "https://127.0.0.1:8443/cas/login"
        );
        assert_eq!(
            config.validate_url.as_str(),
            "https://cas.example/cas/p3/serviceValidate"
        );
    }

    #[test]
    fn optional_settings_are_checked() {
        for (setting, value) in [
            ("CAS_BASE_URL", "cas.example"),
            ("CAS_VALIDATION_ENDPOINT", "validate"),
            ("SESSION_IDLE_SECONDS", "soon"),
            ("SESSION_COOKIE_DOMAIN", "other.example"),
            ("SESSION_COOKIE_DOMAIN", "a b"),
            ("COOKIE_NAME_PREFIX", "wiki_"),
            ("COOKIE_NAME_PREFIX", "cas_edge"),
            ("COOKIE_NAME_PREFIX", "cas_edge_wiki;"),
            ("COOKIE_NAME_PREFIX", "cas_edge_wiki="),
            ("COOKIE_NAME_PREFIX", "cas_edge_维基_"),
            (
                "COOKIE_NAME_PREFIX",
                &format!("cas_edge_{}", "x".repeat(56)),
            ),
            ("PATH_RULES", "[{\"pattern\": \"x\"}]"),
            ("AUTH_REALM", "a\"b"),
            ("SLO_PATH", "slo"),
            ("CAS_TIMEOUT_MS", "5"),
            ("REVOCATION_CACHE_SECONDS", "61"),
            ("STATIC_ASSETS", "yes"),
            ("ORIGIN_URL", ""),
        ] {
            let settings = problems_with(|map| {
                map.insert(setting, value.to_owned());
            });
            assert_eq!(settings, vec![setting], "{setting}={value}");
        }
    }

    #[test]
    fn static_assets_replace_origin() {
        let mut source = demo_source();
        source.0.remove("ORIGIN_URL");
        source.0.insert("STATIC_ASSETS", "true".to_owned());
        let config = FilterConfig::load(&source).expect("valid");

        assert_eq!(config.origin, Origin::Assets);
        assert_eq!(config.audience, "http://127.0.0.1:8787");

        source
            .0
            .insert("ORIGIN_URL", "http://127.0.0.1:8080".to_owned());
        assert_eq!(
            FilterConfig::load(&source).expect_err("both").settings(),
            vec!["ORIGIN_URL"]
        );
    }

    #[test]
    fn cookie_domain_may_be_parent() {
        let mut source = demo_source();
        source
            .0
            .insert("SERVICE_BASE_URL", "https://app.example.org".to_owned());
        source
            .0
            .insert("SESSION_COOKIE_DOMAIN", ".Example.org".to_owned());
        let config = FilterConfig::load(&source).expect("valid");

        assert_eq!(config.cookie_domain.as_deref(), Some("example.org"));
    }

    #[test]
    fn cookie_name_prefix_names_every_cookie() {
        let mut source = demo_source();
        source
            .0
            .insert("COOKIE_NAME_PREFIX", "cas_edge_wiki-2_".to_owned());
        let config = FilterConfig::load(&source).expect("valid");

        assert_eq!(config.cookie_names.session, "cas_edge_wiki-2_session");
        assert_eq!(config.cookie_names.redirects, "cas_edge_wiki-2_redirects");
        assert_eq!(config.cookie_names.gateway, "cas_edge_wiki-2_gateway");
        assert_eq!(demo_config().cookie_names.session, "cas_edge_session");
    }

    #[test]
    fn explicit_audience_and_ttl_are_used() {
        let mut source = demo_source();
        source
            .0
            .insert("ASSERTION_AUDIENCE", "urn:example:origin".to_owned());
        source.0.insert("SESSION_TTL_SECONDS", "600".to_owned());
        let config = FilterConfig::load(&source).expect("valid");

        assert_eq!(config.audience, "urn:example:origin");
        assert_eq!(config.session_ttl, 600);
    }

    #[test]
    fn missing_settings_are_all_named() {
        let settings = problems_with(|map| {
            map.remove("CAS_LOGIN_URL");
            map.remove("ORIGIN_URL");
            map.remove("SESSION_KEY");
        });

        assert_eq!(settings, vec!["CAS_LOGIN_URL", "ORIGIN_URL", "SESSION_KEY"]);
    }

    #[test]
    fn invalid_urls_are_rejected() {
        for (setting, value) in [
            ("CAS_VALIDATE_URL", "not a url"),
            ("CAS_LOGIN_URL", "ftp://127.0.0.1/cas/login"),
            ("ORIGIN_URL", "http://user:pw@127.0.0.1:8080"),
            ("SERVICE_BASE_URL", "http://127.0.0.1:8787/app"),
            ("SERVICE_BASE_URL", "http://127.0.0.1:8787/?a=1"),
        ] {
            let settings = problems_with(|map| {
                map.insert(setting, value.to_owned());
            });
            assert_eq!(settings, vec![setting], "{setting}={value}");
        }
    }

    #[test]
    fn service_base_trailing_slash_is_trimmed() {
        let mut source = demo_source();
        source
            .0
            .insert("SERVICE_BASE_URL", "https://app.example.org/".to_owned());

        assert_eq!(
            FilterConfig::load(&source).expect("valid").service_base,
            "https://app.example.org"
        );
    }

    #[test]
    fn bad_ttl_values_are_rejected() {
        for value in ["0", "-5", "1h", "99999999999"] {
            let settings = problems_with(|map| {
                map.insert("SESSION_TTL_SECONDS", value.to_owned());
            });
            assert_eq!(settings, vec!["SESSION_TTL_SECONDS"], "{value}");
        }
    }

    #[test]
    fn short_keys_are_rejected() {
        let settings = problems_with(|map| {
            map.insert("ASSERTION_KEY", "short".to_owned());
            map.insert("SESSION_KEY_PREVIOUS", "also short".to_owned());
        });

        assert_eq!(settings, vec!["SESSION_KEY_PREVIOUS", "ASSERTION_KEY"]);
    }

    #[test]
    fn previous_session_key_is_optional() {
        let mut source = demo_source();
        source.0.insert("SESSION_KEY_PREVIOUS", "p".repeat(40));

        assert!(FilterConfig::load(&source).is_ok());
    }

    #[test]
    fn equal_keys_are_rejected() {
        let settings = problems_with(|map| {
            map.insert("ASSERTION_KEY", "s".repeat(40));
        });

        assert_eq!(settings, vec!["ASSERTION_KEY"]);
    }

    #[test]
    fn error_text_never_contains_values() {
        let mut source = demo_source();
        source.0.insert("ASSERTION_KEY", "tiny-secret".to_owned());

        let text = FilterConfig::load(&source)
            .expect_err("invalid")
            .to_string();
        assert!(text.contains("ASSERTION_KEY"));
        assert!(!text.contains("tiny-secret"));
    }
}
