//! Attribute release: the attributes sent to the service of a validated ticket. Every
//! response format that carries attributes (CAS 3.0 XML, SAML) builds them here.

use std::time::SystemTime;

use cas_core::registry::ServiceRegistry;
use cas_core::validation::Attributes;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::tickets::ServiceGrant;

/// Names of the attributes about the authentication itself, which every service receives.
pub const AUTHENTICATION_ATTRIBUTES: [&str; 3] = [
    "authenticationDate",
    "isFromNewLogin",
    "longTermAuthenticationRequestTokenUsed",
];

/// Returns the attributes released to the grant's service: the authentication
/// attributes always, and the user attributes that the service's `attributes` policy
/// names. A service that no longer matches any registered service receives no user
/// attributes. A user attribute named like an authentication attribute is replaced by it.
pub fn released_attributes(grant: &ServiceGrant, registry: &ServiceRegistry) -> Attributes {
    let mut released = match registry.find(&grant.service) {
        Some(service) => service.attributes.filter(&grant.attributes),
        None => Attributes::new(),
    };
    released.extend(authentication_attributes(grant));
    released
}

/// Returns the attributes CAS 3.0 servers commonly release about the authentication itself.
pub fn authentication_attributes(grant: &ServiceGrant) -> Attributes {
    let [date, new_login, long_term] = AUTHENTICATION_ATTRIBUTES;
    let mut attributes = Attributes::new();
    attributes.insert(date.into(), vec![rfc3339(grant.authenticated_at)]);
    attributes.insert(new_login.into(), vec![grant.from_new_login.to_string()]);
    attributes.insert(long_term.into(), vec!["false".into()]);
    attributes
}

fn rfc3339(time: SystemTime) -> String {
    OffsetDateTime::from(time)
        .format(&Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use cas_core::registry::ServiceDefinition;
    use cas_core::service::ServiceUrl;
    use cas_core::ticket::TicketGrantingTicket;

    use super::*;

    fn registry(release: &[&str]) -> ServiceRegistry {
        let definition = ServiceDefinition {
            id: "app".into(),
            name: "App".into(),
            kind: "prefix".into(),
            pattern: "https://app.example/".into(),
            attributes: release.iter().map(|name| (*name).to_owned()).collect(),
            ..Default::default()
        };
        ServiceRegistry::from_definitions(&[definition]).expect("valid")
    }

    fn grant(service: &str) -> ServiceGrant {
        let mut attributes = Attributes::new();
        attributes.insert("mail".into(), vec!["a@example.org".into()]);
        attributes.insert("memberOf".into(), vec!["staff".into(), "dev".into()]);
        attributes.insert("isFromNewLogin".into(), vec!["forged".into()]);
        ServiceGrant {
            service: ServiceUrl::parse(service).expect("valid"),
            user: "alice".into(),
            session: TicketGrantingTicket::from_random([1; 20]),
            authenticated_at: SystemTime::UNIX_EPOCH
                + std::time::Duration::from_secs(1_700_000_000),
            from_new_login: true,
            attributes,
        }
    }

    fn names(attributes: &Attributes) -> Vec<&str> {
        attributes.keys().map(String::as_str).collect()
    }

    #[test]
    fn rfc3339_formats_utc() {
        let time = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);

        assert_eq!(rfc3339(time), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn policy_selects_user_attributes() {
        let grant = grant("https://app.example/x");

        let none = released_attributes(&grant, &registry(&[]));
        let listed = released_attributes(&grant, &registry(&["mail"]));
        let all = released_attributes(&grant, &registry(&["*"]));

        assert_eq!(
            names(&none),
            [
                "authenticationDate",
                "isFromNewLogin",
                "longTermAuthenticationRequestTokenUsed"
            ]
        );
        assert_eq!(names(&listed).len(), 4);
        assert!(listed.contains_key("mail"));
        assert_eq!(names(&all).len(), 5);
        assert_eq!(all["memberOf"], ["staff", "dev"]);
    }

    #[test]
    fn authentication_attributes_win() {
        let grant = grant("https://app.example/x");

        let all = released_attributes(&grant, &registry(&["*"]));

        assert_eq!(all["isFromNewLogin"], ["true"]);
    }

    #[test]
    fn unregistered_service_gets_no_user_attributes() {
        let grant = grant("https://gone.example/");

        let released = released_attributes(&grant, &registry(&["*"]));

        assert_eq!(released.len(), 3);
    }
}
