//! The service registry: which service URLs may receive tickets and redirects.

use regex::Regex;
use serde::Deserialize;

use crate::service::ServiceUrl;

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
}

/// A service definition as written in the configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceDefinition {
    pub id: String,
    pub name: String,
    /// `exact`, `prefix` or `regex`.
    #[serde(rename = "match")]
    pub kind: String,
    pub pattern: String,
}

/// A service the registry admits.
#[derive(Debug, Clone)]
pub struct RegisteredService {
    pub id: String,
    pub name: String,
    pub pattern: ServicePattern,
}

impl RegisteredService {
    /// Builds a service from its definition, compiling a regex anchored at both ends.
    pub fn from_definition(definition: &ServiceDefinition) -> Result<Self, RegistryError> {
        let id = definition.id.clone();
        if definition.pattern.is_empty() {
            return Err(RegistryError::EmptyPattern { id });
        }

        let pattern = match definition.kind.as_str() {
            "exact" => ServicePattern::Exact(definition.pattern.clone()),
            "prefix" => ServicePattern::Prefix(definition.pattern.clone()),
            "regex" => {
                let anchored = format!("^(?:{})$", definition.pattern);
                let regex = Regex::new(&anchored).map_err(|source| RegistryError::BadRegex {
                    id: id.clone(),
                    source,
                })?;
                ServicePattern::Regex(regex)
            }
            other => {
                return Err(RegistryError::UnknownKind {
                    id,
                    kind: other.to_owned(),
                })
            }
        };

        Ok(Self {
            id: definition.id.clone(),
            name: definition.name.clone(),
            pattern,
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
}
