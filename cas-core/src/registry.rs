//! The service registry: which service URLs may receive tickets and redirects.

use std::collections::BTreeSet;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::service::ServiceUrl;
use crate::theme::{logo_media_type, AccentColor, Theme};
use crate::validation::Attributes;

/// How a registered service matches service URLs. Every rule compares the URL without its fragment.
#[derive(Debug, Clone)]
pub enum ServicePattern {
    /// The whole URL, byte for byte.
    Exact(String),
    /// A leading part of the URL that ends at a boundary: the prefix ends with `/`, or the
    /// URL continues with `/`, `?` or nothing. So `https://app.example.org` never matches
    /// `https://app.example.org.evil.example/`.
    Prefix(String),
    /// A regular expression that must match the whole URL.
    Regex(Regex),
}

/// Reason a service definition is invalid.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("service {id}: invalid regular expression: {source}")]
    BadRegex { id: String, source: regex::Error },
    #[error("service {id}: the match value is empty")]
    EmptyPattern { id: String },
    #[error("service {id}: unknown match kind {kind:?}; use exact, prefix or regex")]
    UnknownKind { id: String, kind: String },
    #[error("service id {id} appears twice")]
    DuplicateId { id: String },
    #[error("service {id}: proxy callback {url:?} is not an https URL without a fragment")]
    BadProxyCallback { id: String, url: String },
    #[error("service {id}: logout_url {url:?} is not an http(s) URL")]
    BadLogoutUrl { id: String, url: String },
    #[error(
        "service {id}: theme_color {color:?} is invalid; write #rgb or #rrggbb, such as #1f5fbf"
    )]
    BadThemeColor { id: String, color: String },
    #[error("service {id}: theme_logo {name:?} is invalid; write a file name of letters, digits, '.', '_' and '-' ending in .png, .svg, .jpg, .jpeg or .webp")]
    BadThemeLogo { id: String, name: String },
}

/// A service definition as written in the configuration file. Only `id`, `name`,
/// `match` and `pattern` are required. It serializes under the same key names, which
/// the server's configuration reference test reads.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceDefinition {
    pub id: String,
    pub name: String,
    /// `exact`, `prefix` or `regex`.
    #[serde(rename = "match")]
    pub kind: String,
    pub pattern: String,
    /// HTTPS URL prefixes this service may pass as `pgtUrl`, each ending at a boundary
    /// as in a `prefix` match. Empty: the service may not obtain proxy-granting tickets.
    #[serde(default)]
    pub proxy_callbacks: Vec<String>,
    /// Whether another service may send this service proxy tickets.
    #[serde(default)]
    pub accept_proxy_tickets: bool,
    /// User attributes released to this service by name; `"*"` releases all of them.
    /// The attributes about the authentication itself are always released.
    #[serde(default)]
    pub attributes: Vec<String>,
    /// Whether the server sends this service a back-channel logout request when an SSO
    /// session that gave it a ticket ends.
    #[serde(default = "default_true")]
    pub single_logout: bool,
    /// Target URL of the logout request; by default the service URL the ticket was
    /// issued for.
    #[serde(default)]
    pub logout_url: Option<String>,
    /// Accent colour of the login page for this service, `#rgb` or `#rrggbb`.
    #[serde(default)]
    pub theme_color: Option<String>,
    /// File name of a logo in the server's `theme_dir`, shown on the login page.
    #[serde(default)]
    pub theme_logo: Option<String>,
}

fn default_true() -> bool {
    true
}

impl Default for ServiceDefinition {
    fn default() -> Self {
        Self {
            id: String::new(),
            name: String::new(),
            kind: String::new(),
            pattern: String::new(),
            proxy_callbacks: Vec::new(),
            accept_proxy_tickets: false,
            attributes: Vec::new(),
            single_logout: true,
            logout_url: None,
            theme_color: None,
            theme_logo: None,
        }
    }
}

/// Release policy: the user attributes a service receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeRelease {
    /// Every attribute the user store returns.
    All,
    /// The named attributes only; empty releases none.
    Only(BTreeSet<String>),
}

impl AttributeRelease {
    fn from_names(names: &[String]) -> Self {
        if names.iter().any(|name| name == "*") {
            return AttributeRelease::All;
        }
        AttributeRelease::Only(names.iter().cloned().collect())
    }

    /// Returns the attributes of `all` that this policy releases.
    pub fn filter(&self, all: &Attributes) -> Attributes {
        match self {
            AttributeRelease::All => all.clone(),
            AttributeRelease::Only(names) => all
                .iter()
                .filter(|(name, _)| names.contains(name.as_str()))
                .map(|(name, values)| (name.clone(), values.clone()))
                .collect(),
        }
    }
}

/// A service the registry admits, with its proxy, attribute and logout policies.
#[derive(Debug, Clone)]
pub struct RegisteredService {
    pub id: String,
    pub name: String,
    pub pattern: ServicePattern,
    pub proxy_callbacks: Vec<String>,
    pub accept_proxy_tickets: bool,
    pub attributes: AttributeRelease,
    pub single_logout: bool,
    pub logout_url: Option<ServiceUrl>,
    pub theme: Theme,
}

impl RegisteredService {
    /// Builds a service from its definition, compiling a regex anchored at both ends.
    pub fn from_definition(definition: &ServiceDefinition) -> Result<Self, RegistryError> {
        let id = definition.id.clone();
        if definition.pattern.is_empty() {
            return Err(RegistryError::EmptyPattern { id });
        }

        Ok(Self {
            id: definition.id.clone(),
            name: definition.name.clone(),
            pattern: compile_pattern(definition)?,
            proxy_callbacks: checked_callbacks(definition)?,
            accept_proxy_tickets: definition.accept_proxy_tickets,
            attributes: AttributeRelease::from_names(&definition.attributes),
            single_logout: definition.single_logout,
            logout_url: checked_logout_url(definition)?,
            theme: checked_theme(definition)?,
        })
    }

    /// Returns whether this service admits `service`.
    pub fn matches(&self, service: &ServiceUrl) -> bool {
        let url = service.without_fragment();
        match &self.pattern {
            ServicePattern::Exact(exact) => url == exact,
            ServicePattern::Prefix(prefix) => prefix_matches(prefix, url),
            ServicePattern::Regex(regex) => regex.is_match(url),
        }
    }

    /// Returns whether this service may obtain proxy-granting tickets at all.
    pub fn may_proxy(&self) -> bool {
        !self.proxy_callbacks.is_empty()
    }

    /// Returns whether `callback` is an HTTPS URL under one of this service's proxy
    /// callback prefixes.
    pub fn allows_callback(&self, callback: &ServiceUrl) -> bool {
        callback.as_str().starts_with("https://")
            && !callback.as_str().contains('#')
            && self
                .proxy_callbacks
                .iter()
                .any(|prefix| prefix_matches(prefix, callback.as_str()))
    }

    /// Returns where a logout request for a ticket issued to `service` goes, or `None`
    /// when this service takes no single logout.
    pub fn logout_target(&self, service: &ServiceUrl) -> Option<ServiceUrl> {
        if !self.single_logout {
            return None;
        }
        Some(self.logout_url.clone().unwrap_or_else(|| service.clone()))
    }
}

fn compile_pattern(definition: &ServiceDefinition) -> Result<ServicePattern, RegistryError> {
    match definition.kind.as_str() {
        "exact" => Ok(ServicePattern::Exact(definition.pattern.clone())),
        "prefix" => Ok(ServicePattern::Prefix(definition.pattern.clone())),
        "regex" => {
            let anchored = format!("^(?:{})$", definition.pattern);
            Regex::new(&anchored)
                .map(ServicePattern::Regex)
                .map_err(|source| RegistryError::BadRegex {
                    id: definition.id.clone(),
                    source,
                })
        }
        other => Err(RegistryError::UnknownKind {
            id: definition.id.clone(),
            kind: other.to_owned(),
        }),
    }
}

fn checked_callbacks(definition: &ServiceDefinition) -> Result<Vec<String>, RegistryError> {
    for url in &definition.proxy_callbacks {
        let valid =
            url.starts_with("https://") && !url.contains('#') && ServiceUrl::parse(url).is_ok();
        if !valid {
            return Err(RegistryError::BadProxyCallback {
                id: definition.id.clone(),
                url: url.clone(),
            });
        }
    }
    Ok(definition.proxy_callbacks.clone())
}

fn checked_logout_url(definition: &ServiceDefinition) -> Result<Option<ServiceUrl>, RegistryError> {
    let Some(url) = &definition.logout_url else {
        return Ok(None);
    };
    ServiceUrl::parse(url)
        .map(Some)
        .map_err(|_| RegistryError::BadLogoutUrl {
            id: definition.id.clone(),
            url: url.clone(),
        })
}

fn checked_theme(definition: &ServiceDefinition) -> Result<Theme, RegistryError> {
    let color = match &definition.theme_color {
        None => None,
        Some(text) => {
            Some(
                AccentColor::parse(text).ok_or_else(|| RegistryError::BadThemeColor {
                    id: definition.id.clone(),
                    color: text.clone(),
                })?,
            )
        }
    };

    if let Some(name) = &definition.theme_logo {
        if logo_media_type(name).is_none() {
            return Err(RegistryError::BadThemeLogo {
                id: definition.id.clone(),
                name: name.clone(),
            });
        }
    }
    Ok(Theme {
        color,
        logo: definition.theme_logo.clone(),
    })
}

/// Returns the logo file names that the services name, each once.
pub fn logo_names(definitions: &[ServiceDefinition]) -> BTreeSet<&str> {
    definitions
        .iter()
        .filter_map(|definition| definition.theme_logo.as_deref())
        .collect()
}

fn prefix_matches(prefix: &str, url: &str) -> bool {
    let Some(rest) = url.strip_prefix(prefix) else {
        return false;
    };
    prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/') || rest.starts_with('?')
}

/// The registered services, checked in order; the first match wins.
#[derive(Debug, Clone, Default)]
pub struct ServiceRegistry {
    services: Vec<RegisteredService>,
}

impl ServiceRegistry {
    /// Builds the registry, rejecting invalid definitions and duplicate ids.
    pub fn from_definitions(definitions: &[ServiceDefinition]) -> Result<Self, RegistryError> {
        let mut services: Vec<RegisteredService> = Vec::with_capacity(definitions.len());
        for definition in definitions {
            if services.iter().any(|s| s.id == definition.id) {
                return Err(RegistryError::DuplicateId {
                    id: definition.id.clone(),
                });
            }
            services.push(RegisteredService::from_definition(definition)?);
        }
        Ok(Self { services })
    }

    /// Finds the first registered service that admits `service`.
    pub fn find(&self, service: &ServiceUrl) -> Option<&RegisteredService> {
        self.services.iter().find(|s| s.matches(service))
    }

    /// Number of registered services.
    pub fn len(&self) -> usize {
        self.services.len()
    }

    /// Returns whether no service is registered.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn definition(id: &str, kind: &str, pattern: &str) -> ServiceDefinition {
        ServiceDefinition {
            id: id.into(),
            name: id.into(),
            kind: kind.into(),
            pattern: pattern.into(),
            ..Default::default()
        }
    }

    fn registry(definitions: &[ServiceDefinition]) -> ServiceRegistry {
        ServiceRegistry::from_definitions(definitions).expect("valid registry")
    }

    fn admits(registry: &ServiceRegistry, url: &str) -> bool {
        let service = ServiceUrl::parse(url).expect("valid service");
        registry.find(&service).is_some()
    }

    #[test]
    fn exact_matches_whole_url_without_fragment() {
        let registry = registry(&[definition("a", "exact", "https://app.example.org/x")]);

        assert!(admits(&registry, "https://app.example.org/x"));
        assert!(admits(&registry, "https://app.example.org/x#frag"));
        assert!(!admits(&registry, "https://app.example.org/x?y=1"));
        assert!(!admits(&registry, "https://app.example.org/xy"));
    }

    #[test]
    fn prefix_stops_at_boundary() {
        let registry = registry(&[definition("a", "prefix", "https://app.example.org")]);

        assert!(admits(&registry, "https://app.example.org"));
        assert!(admits(&registry, "https://app.example.org/"));
        assert!(admits(&registry, "https://app.example.org/deep/path?q=1"));
        assert!(admits(&registry, "https://app.example.org?q=1"));
        assert!(!admits(&registry, "https://app.example.org.evil.example/"));
        assert!(!admits(&registry, "https://app.example.org:8443/"));
        assert!(!admits(&registry, "https://app.example.orgx/"));
    }

    #[test]
    fn prefix_with_slash_matches_below_it() {
        let registry = registry(&[definition("a", "prefix", "https://app.example.org/app/")]);

        assert!(admits(&registry, "https://app.example.org/app/page"));
        assert!(!admits(&registry, "https://app.example.org/application"));
    }

    #[test]
    fn regex_is_anchored() {
        let registry = registry(&[definition("a", "regex", r"https://app\.example\.org/.*")]);

        assert!(admits(&registry, "https://app.example.org/x"));
        assert!(!admits(
            &registry,
            "https://evil.example/?https://app.example.org/x"
        ));
        assert!(!admits(&registry, "https://app.example.org.evil.example/x"));
    }

    #[test]
    fn first_match_wins() {
        let registry = registry(&[
            definition("first", "prefix", "https://a.example/"),
            definition("second", "prefix", "https://a.example/b/"),
        ]);
        let service = ServiceUrl::parse("https://a.example/b/c").expect("valid");

        assert_eq!(
            registry.find(&service).map(|s| s.id.as_str()),
            Some("first")
        );
    }

    #[test]
    fn invalid_definitions_are_rejected() {
        let bad_regex = ServiceRegistry::from_definitions(&[definition("a", "regex", "(")]);
        assert!(matches!(bad_regex, Err(RegistryError::BadRegex { .. })));

        let bad_kind = ServiceRegistry::from_definitions(&[definition("a", "glob", "x")]);
        assert!(matches!(bad_kind, Err(RegistryError::UnknownKind { .. })));

        let empty = ServiceRegistry::from_definitions(&[definition("a", "exact", "")]);
        assert!(matches!(empty, Err(RegistryError::EmptyPattern { .. })));

        let twice = ServiceRegistry::from_definitions(&[
            definition("a", "exact", "x"),
            definition("a", "exact", "y"),
        ]);
        assert!(matches!(twice, Err(RegistryError::DuplicateId { .. })));
    }

    fn service(definition: ServiceDefinition) -> RegisteredService {
        RegisteredService::from_definition(&definition).expect("valid definition")
    }

    fn url(text: &str) -> ServiceUrl {
        ServiceUrl::parse(text).expect("valid URL")
    }

    #[test]
    fn callbacks_need_https_and_a_listed_prefix() {
        let app = service(ServiceDefinition {
            proxy_callbacks: vec!["https://app.example.org/proxy".into()],
            ..definition("a", "prefix", "https://app.example.org/")
        });

        assert!(app.may_proxy());
        assert!(app.allows_callback(&url("https://app.example.org/proxy")));
        assert!(app.allows_callback(&url("https://app.example.org/proxy/cb?x=1")));
        assert!(!app.allows_callback(&url("https://app.example.org/proxyevil")));
        assert!(!app.allows_callback(&url("https://app.example.org.evil.example/proxy")));
        assert!(!app.allows_callback(&url("http://app.example.org/proxy")));
    }

    #[test]
    fn services_without_callbacks_may_not_proxy() {
        let app = service(definition("a", "prefix", "https://app.example.org/"));

        assert!(!app.may_proxy());
        assert!(!app.allows_callback(&url("https://app.example.org/")));
    }

    #[test]
    fn bad_callbacks_and_logout_urls_are_rejected() {
        for callback in [
            "http://app.example.org/cb",
            "https://app.example.org/cb#x",
            "nonsense",
        ] {
            let result = RegisteredService::from_definition(&ServiceDefinition {
                proxy_callbacks: vec![callback.into()],
                ..definition("a", "prefix", "https://app.example.org/")
            });
            assert!(
                matches!(result, Err(RegistryError::BadProxyCallback { .. })),
                "{callback}"
            );
        }

        let result = RegisteredService::from_definition(&ServiceDefinition {
            logout_url: Some("javascript:alert(1)".into()),
            ..definition("a", "prefix", "https://app.example.org/")
        });
        assert!(matches!(result, Err(RegistryError::BadLogoutUrl { .. })));
    }

    #[test]
    fn theme_is_checked() {
        let themed = service(ServiceDefinition {
            theme_color: Some("#0a0".into()),
            theme_logo: Some("app.svg".into()),
            ..definition("a", "prefix", "https://a.example/")
        });
        assert_eq!(
            themed.theme.color.map(AccentColor::css),
            Some("#00aa00".into())
        );
        assert_eq!(themed.theme.logo.as_deref(), Some("app.svg"));

        let bad_color = RegisteredService::from_definition(&ServiceDefinition {
            theme_color: Some("red;}".into()),
            ..definition("a", "prefix", "https://a.example/")
        });
        assert!(matches!(
            bad_color,
            Err(RegistryError::BadThemeColor { .. })
        ));

        let bad_logo = RegisteredService::from_definition(&ServiceDefinition {
            theme_logo: Some("../secret.png".into()),
            ..definition("a", "prefix", "https://a.example/")
        });
        assert!(matches!(bad_logo, Err(RegistryError::BadThemeLogo { .. })));
    }

    #[test]
    fn attribute_release_filters_by_name() {
        let mut all = Attributes::new();
        all.insert("mail".into(), vec!["a@example.org".into()]);
        all.insert("memberOf".into(), vec!["staff".into(), "dev".into()]);

        let none = service(definition("a", "prefix", "https://a.example/"));
        let some = service(ServiceDefinition {
            attributes: vec!["memberOf".into(), "absent".into()],
            ..definition("b", "prefix", "https://b.example/")
        });
        let every = service(ServiceDefinition {
            attributes: vec!["*".into()],
            ..definition("c", "prefix", "https://c.example/")
        });

        assert!(none.attributes.filter(&all).is_empty());
        assert_eq!(
            some.attributes.filter(&all).keys().collect::<Vec<_>>(),
            ["memberOf"]
        );
        assert_eq!(every.attributes.filter(&all), all);
    }

    #[test]
    fn logout_goes_to_the_service_unless_configured() {
        let plain = service(definition("a", "prefix", "https://a.example/"));
        let elsewhere = service(ServiceDefinition {
            logout_url: Some("https://a.example/slo".into()),
            ..definition("b", "prefix", "https://a.example/")
        });
        let silent = service(ServiceDefinition {
            single_logout: false,
            ..definition("c", "prefix", "https://a.example/")
        });
        let issued = url("https://a.example/page?x=1");

        assert_eq!(plain.logout_target(&issued), Some(issued.clone()));
        assert_eq!(
            elsewhere.logout_target(&issued),
            Some(url("https://a.example/slo"))
        );
        assert_eq!(silent.logout_target(&issued), None);
    }

    #[test]
    fn omitted_fields_take_their_defaults() {
        let parsed: ServiceDefinition =
            from_json(r#"{"id":"a","name":"A","match":"exact","pattern":"https://a.example/"}"#);

        assert!(parsed.single_logout);
        assert!(!parsed.accept_proxy_tickets);
        assert!(parsed.proxy_callbacks.is_empty());
    }

    fn from_json(json: &str) -> ServiceDefinition {
        serde_json::from_str(json).expect("valid definition")
    }
}
