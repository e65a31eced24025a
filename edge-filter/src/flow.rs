//! The filter's decision for each request, made from the settings, the request and the
//! time alone: forward it to the origin, validate its ticket, or reply directly.

use std::fmt;
use std::rc::Rc;

use cas_core::assertion::{sign_assertion, IdentityClaims};
use cas_core::language::Language;
use cas_core::service::{strip_ticket_params, ticket_params, ServiceUrl};
use cas_core::validation::ValidationResponse;
use cas_core::xml_parse::parse_validation_response;

use crate::config::FilterConfig;
use crate::cookies::{cookie_values, expired_cookie, filter_cookie};
use crate::headers::{anonymous_edits, identity_headers, origin_edits, HeaderEdits};
use crate::login;
use crate::loop_guard;
use crate::options::{Origin, SloMode};
use crate::pages::Page;
use crate::reply::Reply;
use crate::rules::{is_ambiguous_path, Action};
use crate::session::{self, Session};
use crate::session_cache::SessionCache;
use crate::urls::{origin_url, service_url, validation_url, RequestTarget};

/// Issuer of the identity assertions the filter signs.
pub const ASSERTION_ISSUER: &str = "cas-edge-filter";

/// Lifetime of an identity assertion, in seconds: long enough for one origin request.
pub const ASSERTION_TTL_SECONDS: u64 = 60;

/// Maximum length of a ticket sent to CAS, in bytes. CAS 3.0 recommends that services accept tickets
/// of up to 256 characters; a longer one cannot be valid and is rejected without a subrequest.
pub const MAX_TICKET_BYTES: usize = 256;

/// An incoming request, reduced to what the decision needs.
#[derive(Debug, Clone)]
pub struct IncomingRequest<'a> {
    pub method: &'a str,
    pub target: RequestTarget<'a>,
    /// Every header as received, filter headers included. The origin request's
    /// [`HeaderEdits`] delete those, and nothing else reads them.
    pub headers: Vec<(String, String)>,
    /// Session ids revoked by single logout, as far as the caller looked them up.
    pub revoked: Vec<String>,
}

impl IncomingRequest<'_> {
    /// Returns the first value of header `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Returns every `Cookie` header joined into one, or `None` when there is none.
    pub fn cookie_header(&self) -> Option<String> {
        let values: Vec<&str> = self
            .headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("cookie"))
            .map(|(_, value)| value.as_str())
            .collect();
        (!values.is_empty()).then(|| values.join("; "))
    }
}

/// The request to send to the origin, with or without identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginRequest {
    /// The origin URL; for static assets, the service URL, whose path the assets use.
    pub url: String,
    /// Changes to the incoming headers that give the origin request's headers.
    pub headers: HeaderEdits,
    /// The session id, for logs; `None` for anonymous and excluded requests.
    pub sid: Option<String>,
    /// `Set-Cookie` values to add to the origin's response, such as a refreshed session.
    pub set_cookies: Vec<String>,
}

/// A ticket to validate with one subrequest to CAS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketCheck {
    /// The validation URL. It contains the ticket, so it must never be logged.
    pub validation_url: String,
    /// The service URL without tickets: where the browser goes once signed in.
    pub service: String,
    pub ticket: String,
    pub lang: Language,
    /// Whether the path requires a fresh login; the session then records it.
    pub renew: bool,
}

/// The filter's decision for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Forward(OriginRequest),
    Validate(TicketCheck),
    Reply(Reply),
}

/// The session cookie of a request, opened at most once per request because opening
/// checks an HMAC and decodes JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionCookie {
    /// Not opened yet: [`decide_with_session`] opens it where the path needs it.
    Unopened,
    /// Opened by [`session_to_check`]: the valid session, or `None` without one.
    Opened(Option<Rc<Session>>),
}

/// Decides what to do with `request` at `now` (seconds since the Unix epoch).
pub fn decide(config: &FilterConfig, request: IncomingRequest<'_>, now: u64) -> Decision {
    let mut cache = SessionCache::default();
    decide_with_session(config, request, SessionCookie::Unopened, now, &mut cache)
}

/// Decides like [`decide`], using `cookie` when the caller already opened the session,
/// and `cache` for sessions and identity headers made for earlier requests.
pub fn decide_with_session(
    config: &FilterConfig,
    request: IncomingRequest<'_>,
    cookie: SessionCookie,
    now: u64,
    cache: &mut SessionCache,
) -> Decision {
    let lang = cas_core::language::choose_language(request.header("accept-language"));
    let path = request.target.path;
    if is_ambiguous_path(path) || config.rules.depends_on_normalization(path) {
        return Decision::Reply(Page::AmbiguousPath.render(lang));
    }

    let policy = config.rules.policy(path);
    if policy.action == Action::Exclude {
        return Decision::Forward(anonymous_request(config, request));
    }

    let session = match cookie {
        SessionCookie::Unopened => current_session(config, &request, now, cache),
        SessionCookie::Opened(session) => session,
    };
    let session = session
        .filter(|session| !request.revoked.contains(&session.sid))
        .filter(|session| session.renewed || !policy.renew);
    if let Some(session) = session {
        if !policy.allows(&session.attributes) {
            return Decision::Reply(Page::Forbidden.render(lang));
        }
        return Decision::Forward(origin_request(config, request, &session, now, cache));
    }

    let service = service_url(&config.service_base, request.target);
    if ServiceUrl::parse(&service).is_err() {
        return Decision::Reply(Page::BadRequest.render(lang));
    }

    let ticket = ticket_params(request.target.query.unwrap_or_default())
        .into_iter()
        .next();
    match ticket.filter(|ticket| !ticket.is_empty()) {
        None => login::challenge(config, request, &policy, &service, now, lang),
        Some(ticket) if ticket.len() > MAX_TICKET_BYTES => {
            Decision::Reply(Page::TicketRejected { retry_url: service }.render(lang))
        }
        Some(ticket) => {
            let validation_url =
                validation_url(&config.validate_url, &service, &ticket, policy.renew);
            Decision::Validate(TicketCheck {
                validation_url,
                service,
                ticket,
                lang,
                renew: policy.renew,
            })
        }
    }
}

/// Splits the request URL into path and query. Returns the 400 page for a URL without a
/// path, which workerd makes of an asterisk-form request such as `OPTIONS *`.
pub fn request_target(url: &str, lang: Language) -> Result<RequestTarget<'_>, Reply> {
    RequestTarget::from_serialized_url(url).ok_or_else(|| Page::BadRequest.render(lang))
}

/// Opens the session cookie when its revocation must be looked up before the decision.
/// Returns [`SessionCookie::Unopened`] without single logout or on excluded paths, and
/// `Opened(None)` without a valid session cookie.
pub fn session_to_check(
    config: &FilterConfig,
    request: &IncomingRequest<'_>,
    now: u64,
    cache: &mut SessionCache,
) -> SessionCookie {
    if config.slo == SloMode::Off {
        return SessionCookie::Unopened;
    }
    if config.rules.policy(request.target.path).action == Action::Exclude {
        return SessionCookie::Unopened;
    }
    SessionCookie::Opened(current_session(config, request, now, cache))
}

/// Returns the first session cookie that a session key signed and that is current at
/// `now`. Tampered, expired, idle and foreign cookies count as no session. The caller
/// checks revocation, because that needs storage.
pub fn current_session(
    config: &FilterConfig,
    request: &IncomingRequest<'_>,
    now: u64,
    cache: &mut SessionCache,
) -> Option<Rc<Session>> {
    let idle = config.idle_timeout;
    request
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("cookie"))
        .flat_map(|(_, value)| cookie_values(value, &config.cookie_names.session))
        .find_map(|value| {
            cache.open(value, now, idle, || {
                session::open(&config.session_keys, value, now, idle)
            })
        })
}

/// Returns the URL the origin request goes to.
fn target_url(config: &FilterConfig, target: RequestTarget<'_>) -> String {
    match &config.origin {
        Origin::Url(base) => origin_url(base, target),
        Origin::Assets => origin_url(&config.service_base, target),
    }
}

/// Builds the origin request of a request passed through without identity.
pub(crate) fn anonymous_request(
    config: &FilterConfig,
    request: IncomingRequest<'_>,
) -> OriginRequest {
    OriginRequest {
        url: target_url(config, request.target),
        headers: anonymous_edits(&request.headers),
        sid: None,
        set_cookies: Vec::new(),
    }
}

fn origin_request(
    config: &FilterConfig,
    request: IncomingRequest<'_>,
    session: &Session,
    now: u64,
    cache: &mut SessionCache,
) -> OriginRequest {
    let identity = cache.identity_headers(session, now, || signed_identity(config, session, now));
    OriginRequest {
        // A ticket that comes with a valid session stays unused, and the origin never receives it.
        url: strip_ticket_params(&target_url(config, request.target)),
        headers: origin_edits(&request.headers, &identity),
        sid: Some(session.sid.clone()),
        set_cookies: refreshed_cookie(config, session, now).into_iter().collect(),
    }
}

/// Signs an identity assertion for `session` at `now` and builds the identity headers
/// that carry it.
fn signed_identity(config: &FilterConfig, session: &Session, now: u64) -> Vec<(String, String)> {
    let claims = IdentityClaims {
        iss: ASSERTION_ISSUER.to_owned(),
        aud: config.audience.clone(),
        sub: session.user.clone(),
        iat: now,
        exp: now + ASSERTION_TTL_SECONDS,
        attributes: session.attributes.clone(),
    };
    let assertion = sign_assertion(&config.assertion_key, &claims);
    identity_headers(&session.user, &assertion, &session.attributes)
}

/// Issues the session cookie again when the idle timeout needs pushing back, keeping
/// the hard expiry.
fn refreshed_cookie(config: &FilterConfig, session: &Session, now: u64) -> Option<String> {
    if !session.needs_refresh(now, config.idle_timeout) {
        return None;
    }
    let refreshed = Session {
        seen: now,
        ..session.clone()
    };
    let (value, _) = session::seal(config.session_keys.current(), &refreshed);
    let domain = config.cookie_domain.as_deref();
    let name = &config.cookie_names.session;
    Some(filter_cookie(
        name,
        &value,
        refreshed.remaining(now),
        domain,
    ))
}

/// Result of the validation subrequest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// CAS responded with this status and body.
    Response { status: u16, body: String },
    /// CAS sent no complete response within the timeout.
    TimedOut,
    /// The subrequest failed: connection refused, TLS failure, and the like. The text
    /// must not contain the validation URL.
    Failed(String),
}

/// The result of a ticket validation, for the log line. Never contains the ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    SignedIn {
        sid: String,
        attributes_dropped: bool,
    },
    Rejected {
        code: String,
    },
    Unusable {
        reason: String,
    },
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::SignedIn {
                sid,
                attributes_dropped: false,
            } => {
                write!(f, "ticket validated, session {sid} started")
            }
            Outcome::SignedIn {
                sid,
                attributes_dropped: true,
            } => {
                write!(
                    f,
                    "ticket validated, session {sid} started without attributes because they exceed the cookie size"
                )
            }
            Outcome::Rejected { code } => write!(f, "CAS rejected the ticket: {code}"),
            Outcome::Unusable { reason } => write!(f, "ticket validation failed: {reason}"),
        }
    }
}

/// Builds the reply to the browser after validating `check` at `now`: a session cookie and
/// a redirect to the clean URL on success, 403 when CAS rejects the ticket, 502 otherwise.
pub fn finish_validation(
    config: &FilterConfig,
    check: &TicketCheck,
    fetched: Fetched,
    now: u64,
) -> (Reply, Outcome) {
    let unavailable = |reason: String| {
        (
            Page::CasUnavailable.render(check.lang),
            Outcome::Unusable { reason },
        )
    };

    let body = match fetched {
        Fetched::Response { status: 200, body } => body,
        Fetched::Response { status, .. } => {
            return unavailable(format!("CAS returned HTTP {status}"))
        }
        Fetched::TimedOut => return unavailable("CAS did not answer in time".to_owned()),
        Fetched::Failed(error) => return unavailable(format!("subrequest to CAS failed: {error}")),
    };

    match parse_validation_response(&body) {
        Err(error) => unavailable(format!("CAS response is unusable: {error}")),
        Ok(ValidationResponse::Failure(failure)) => {
            let page = Page::TicketRejected {
                retry_url: check.service.clone(),
            };
            (
                page.render(check.lang),
                Outcome::Rejected {
                    code: failure.code.to_string(),
                },
            )
        }
        Ok(ValidationResponse::Success(success)) => {
            let session = Session {
                renewed: check.renew,
                ..Session::start(
                    success.user,
                    success.attributes,
                    &check.ticket,
                    now,
                    config.session_ttl,
                )
            };
            let (cookie, attributes_dropped) =
                session::seal(config.session_keys.current(), &session);
            let domain = config.cookie_domain.as_deref();
            let names = &config.cookie_names;
            let reply = Reply::redirect(302, &check.service)
                .with_header(
                    "Set-Cookie",
                    &filter_cookie(&names.session, &cookie, config.session_ttl, domain),
                )
                .with_header("Set-Cookie", &loop_guard::reset(&names.redirects, domain))
                .with_header("Set-Cookie", &expired_cookie(&names.gateway, domain));
            (
                reply,
                Outcome::SignedIn {
                    sid: session.sid,
                    attributes_dropped,
                },
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use cas_core::assertion::open_assertion;
    use cas_core::signing::KeyRing;
    use cas_core::validation::{AuthenticationSuccess, ErrorCode};
    use cas_core::xml_write::write_validation_response;

    use super::*;
    use crate::config::tests::{demo_config, demo_source};
    use crate::headers::{ASSERTION_HEADER, USER_HEADER};
    use crate::session::seal;

    const NOW: u64 = 1_800_000_000;

    fn request<'a>(
        path: &'a str,
        query: Option<&'a str>,
        headers: &[(&str, &str)],
    ) -> IncomingRequest<'a> {
        let headers = headers
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        IncomingRequest {
            method: "GET",
            target: RequestTarget { path, query },
            headers,
            revoked: Vec::new(),
        }
    }

    fn session_cookie(config: &FilterConfig, user: &str, issued: u64) -> String {
        let session = Session::start(
            user.to_owned(),
            Default::default(),
            "ST-1",
            issued,
            config.session_ttl,
        );
        let (value, _) = seal(config.session_keys.current(), &session);
        format!("{}={value}", config.cookie_names.session)
    }

    /// Returns the headers the origin receives for `incoming`.
    fn sent(origin: &OriginRequest, incoming: &[(&str, &str)]) -> Vec<(String, String)> {
        let incoming = incoming
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        origin.headers.apply(incoming)
    }

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
        headers
            .iter()
            .filter(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
            .collect()
    }

    fn check(config: &FilterConfig, query: &str) -> TicketCheck {
        match decide(config, request("/a", Some(query), &[]), NOW) {
            Decision::Validate(check) => check,
            other => panic!("expected validation, got {other:?}"),
        }
    }

    fn cas_success(user: &str) -> Fetched {
        let success = AuthenticationSuccess {
            user: user.to_owned(),
            ..Default::default()
        };
        Fetched::Response {
            status: 200,
            body: write_validation_response(&ValidationResponse::Success(success), true),
        }
    }

    #[test]
    fn url_without_path_is_bad_request() {
        let Err(reply) = request_target("http://127.0.0.1:8787*", Language::SimplifiedChinese)
        else {
            panic!("expected the 400 page");
        };

        assert_eq!(reply.status, 400);
        assert_eq!(reply.header("content-language"), Some("zh-CN"));
    }

    #[test]
    fn url_with_path_gives_target() {
        let target =
            request_target("http://127.0.0.1:8787/a?b=1", Language::English).expect("a path");

        assert_eq!((target.path, target.query), ("/a", Some("b=1")));
    }

    #[test]
    fn no_session_redirects_to_login() {
        let config = demo_config();

        let Decision::Reply(reply) = decide(&config, request("/docs", Some("a=1"), &[]), NOW)
        else {
            panic!("expected a redirect");
        };

        assert_eq!(reply.status, 302);
        assert_eq!(
            reply.header("location"),
            Some("https://127.0.0.1:8443/cas/login?service=http%3A%2F%2F127.0.0.1%3A8787%2Fdocs%3Fa%3D1")
        );
    }

    #[test]
    fn login_redirect_ignores_host_header() {
        let config = demo_config();
        let headers = [
            ("Host", "evil.example"),
            ("X-Forwarded-Host", "evil.example"),
        ];

        let Decision::Reply(reply) = decide(&config, request("/", None, &headers), NOW) else {
            panic!("expected a redirect");
        };

        let location = reply.header("location").expect("location");
        assert!(
            location.ends_with("service=http%3A%2F%2F127.0.0.1%3A8787%2F"),
            "{location}"
        );
    }

    #[test]
    fn decoded_dot_segment_is_bad_request() {
        let config = demo_config();
        let cookie = session_cookie(&config, "alice", NOW - 10);
        let headers = [("Cookie", cookie.as_str())];

        for path in ["/public/..%2Fstaff/a", "/x/.%2Fstaff", "/docs/..;/admin"] {
            let Decision::Reply(reply) = decide(&config, request(path, None, &headers), NOW) else {
                panic!("{path}: expected the 400 page");
            };
            assert_eq!(reply.status, 400, "{path}");
            assert!(
                reply.body.contains("access rules cannot be applied"),
                "{path}"
            );
        }
    }

    /// Rules with each kind of policy, one path prefix each.
    const POLICY_RULES: &str = r#"[
        {"pattern": "/public/", "action": "exclude"},
        {"pattern": "/news/", "gateway": true},
        {"pattern": "/staff/", "require": {"memberOf": ["staff"]}},
        {"pattern": "/fresh/", "renew": true}
    ]"#;

    #[test]
    fn ambiguous_path_is_bad_request() {
        let config = with_rules(POLICY_RULES);
        let cookie = session_cookie(&config, "alice", NOW - 10);
        let headers = [("Cookie", cookie.as_str())];

        for prefix in ["/public/", "/news/", "/staff/", "/fresh/", "/"] {
            for rest in [
                "%252e%252e/staff/x",
                "..%252Fstaff/x",
                "..%255Cstaff/x",
                "%2561dmin",
                "a%25u002e",
                "x%00.html",
                "x%0a",
                "x%0D%0Ay",
                "x\u{0}y",
                "x%5Cy",
                "x\\y",
                "%C0%AE%C0%AE/staff/x",
                "x%FF",
                "..%20%2Fstaff/x",
                ".%20;x/staff/x",
            ] {
                let path = format!("{prefix}{rest}");
                let reply = reply_of(decide(&config, request(&path, None, &headers), NOW));
                assert_eq!(reply.status, 400, "{path}");
            }
        }
    }

    #[test]
    fn decoded_query_mark_is_bad_request() {
        let config = with_rules(
            r#"[
                {"match": "glob", "pattern": "/**/*.js", "action": "exclude"},
                {"match": "exact", "pattern": "/admin", "require": {"memberOf": ["staff"]}}
            ]"#,
        );
        let cookie = session_cookie(&config, "alice", NOW - 10);
        let headers = [("Cookie", cookie.as_str())];

        // A proxy that puts the decoded path into its upstream URL serves these as
        // `/staff/report` and `/admin`, which the rules protect.
        for (path, headers) in [
            ("/staff/report%3F.js", &[][..]),
            ("/staff/report%23.js", &[][..]),
            ("/admin%3F", &headers[..]),
        ] {
            let reply = reply_of(decide(&config, request(path, None, headers), NOW));
            assert_eq!(reply.status, 400, "{path}");
        }
    }

    #[test]
    fn trailing_dot_path_is_bad_request() {
        let config = with_rules(POLICY_RULES);
        let cookie = session_cookie(&config, "alice", NOW - 10);
        let headers = [("Cookie", cookie.as_str())];

        // IIS serves each of these from the path without the trailing dots and spaces,
        // which falls under a rule that the path as sent misses.
        for path in [
            "/public./x",
            "/news%20/x",
            "/staff./x",
            "/staff.%20/x",
            "/fresh%20./x",
            "/staff.;v=1/x",
        ] {
            let reply = reply_of(decide(&config, request(path, None, &headers), NOW));
            assert_eq!(reply.status, 400, "{path}");
        }
    }

    #[test]
    fn ordinary_encoded_paths_pass() {
        let config = with_rules(POLICY_RULES);
        let cookie = session_cookie(&config, "alice", NOW - 10);
        let headers = [("Cookie", cookie.as_str())];

        for (prefix, expected) in [
            ("/public/", 200),
            ("/news/", 200),
            ("/staff/", 403),
            ("/fresh/", 302),
            ("/", 200),
        ] {
            for rest in [
                "my%20file.pdf",
                "a%2ejs",
                "a%2Ejs",
                "%E6%96%87%E6%A1%A3/%E9%A1%B5",
                "文档",
                "Washington,_D.C.",
                "notes%20",
                "100%25.html",
                "50%25off",
            ] {
                let path = format!("{prefix}{rest}");
                let status = match decide(&config, request(&path, None, &headers), NOW) {
                    Decision::Forward(_) => 200,
                    Decision::Reply(reply) => reply.status,
                    Decision::Validate(_) => panic!("{path}: unexpected ticket validation"),
                };
                assert_eq!(status, expected, "{path}");
            }
        }
    }

    #[test]
    fn slash_dependent_path_is_bad_request() {
        let config = with_rules(
            r#"[{"pattern": "/public/admin/"}, {"pattern": "/public/", "action": "exclude"}]"#,
        );

        for path in ["/public//admin/x", "/public/%5Cadmin/x"] {
            let Decision::Reply(reply) = decide(&config, request(path, None, &[]), NOW) else {
                panic!("{path}: expected the 400 page");
            };
            assert_eq!(reply.status, 400, "{path}");
        }
        let same = decide(&config, request("/public//page", None, &[]), NOW);
        assert!(matches!(same, Decision::Forward(_)));
    }

    #[test]
    fn parameter_dependent_path_is_bad_request() {
        let config = with_rules(r#"[{"pattern": "/admin/", "require": {"memberOf": ["staff"]}}]"#);
        let cookie = session_cookie(&config, "alice", NOW - 10);
        let headers = [("Cookie", cookie.as_str())];

        // Tomcat serves this as /admin/secret, which alice may not open.
        let Decision::Reply(reply) =
            decide(&config, request("/admin;x/secret", None, &headers), NOW)
        else {
            panic!("expected the 400 page");
        };
        assert_eq!(reply.status, 400);
        let same = decide(&config, request("/docs;v=1/a", None, &headers), NOW);
        assert!(matches!(same, Decision::Forward(_)));
    }

    #[test]
    fn case_dependent_path_is_bad_request() {
        let config = with_rules(r#"[{"pattern": "/admin/", "require": {"memberOf": ["staff"]}}]"#);
        let cookie = session_cookie(&config, "alice", NOW - 10);
        let headers = [("Cookie", cookie.as_str())];

        // Express serves this as /admin/secret, which alice may not open.
        let Decision::Reply(reply) = decide(&config, request("/ADMIN/secret", None, &headers), NOW)
        else {
            panic!("expected the 400 page");
        };
        assert_eq!(reply.status, 400);
        let same = decide(&config, request("/Docs/A", None, &headers), NOW);
        assert!(matches!(same, Decision::Forward(_)));
    }

    #[test]
    fn valid_session_forwards_with_identity() {
        let config = demo_config();
        let cookie = format!("a=1; {}", session_cookie(&config, "张三", NOW - 10));
        let headers = [
            ("Cookie", cookie.as_str()),
            ("X-CAS-User", "admin"),
            ("x-cas-user", "root"),
        ];

        let Decision::Forward(origin) = decide(&config, request("/p", Some("q=1"), &headers), NOW)
        else {
            panic!("expected forwarding");
        };

        let sent = sent(&origin, &headers);
        assert_eq!(origin.url, "http://127.0.0.1:8080/p?q=1");
        assert_eq!(header(&sent, USER_HEADER), vec!["%E5%BC%A0%E4%B8%89"]);
        assert_eq!(header(&sent, "cookie"), vec!["a=1"]);
        let assertion = header(&sent, ASSERTION_HEADER);
        assert_eq!(assertion.len(), 1);

        let claims = open_assertion(
            &KeyRing::new(config.assertion_key.clone(), None),
            assertion[0],
        )
        .expect("signed");
        assert_eq!(claims.sub, "张三");
        assert_eq!(claims.iss, ASSERTION_ISSUER);
        assert_eq!(claims.aud, "http://127.0.0.1:8080");
        assert_eq!((claims.iat, claims.exp), (NOW, NOW + ASSERTION_TTL_SECONDS));
    }

    #[test]
    fn expired_session_redirects_to_login() {
        let config = demo_config();
        let cookie = session_cookie(&config, "alice", NOW - config.session_ttl);

        let decision = decide(&config, request("/", None, &[("Cookie", &cookie)]), NOW);

        assert!(matches!(decision, Decision::Reply(reply) if reply.status == 302));
    }

    #[test]
    fn tampered_cookie_counts_as_no_session() {
        let config = demo_config();
        let cookie = session_cookie(&config, "alice", NOW).replacen('.', "x.", 1);

        let decision = decide(&config, request("/", None, &[("Cookie", &cookie)]), NOW);

        assert!(matches!(decision, Decision::Reply(reply) if reply.status == 302));
    }

    #[test]
    fn other_site_cookie_counts_as_no_session() {
        let config = demo_config();
        let mut source = demo_source();
        source
            .0
            .insert("SERVICE_BASE_URL", "http://127.0.0.1:8788".to_owned());
        let other_site = FilterConfig::load(&source).expect("valid settings");
        let cookie = session_cookie(&other_site, "alice", NOW);

        let decision = decide(&config, request("/", None, &[("Cookie", &cookie)]), NOW);

        assert!(matches!(decision, Decision::Reply(reply) if reply.status == 302));
    }

    #[test]
    fn later_valid_cookie_copy_is_used() {
        let config = demo_config();
        let cookie = format!(
            "cas_edge_session=garbage; {}",
            session_cookie(&config, "alice", NOW)
        );

        let decision = decide(&config, request("/", None, &[("Cookie", &cookie)]), NOW);

        assert!(matches!(decision, Decision::Forward(_)));
    }

    #[test]
    fn ticket_is_validated_with_clean_service() {
        let config = demo_config();

        let check = check(&config, "ticket=ST-1&ticketing=1&ticket=ST-2");

        assert_eq!(check.ticket, "ST-1");
        assert_eq!(check.service, "http://127.0.0.1:8787/a?ticketing=1");
        assert_eq!(
            check.validation_url,
            "https://127.0.0.1:8443/cas/p3/serviceValidate?service=http%3A%2F%2F127.0.0.1%3A8787%2Fa%3Fticketing%3D1&ticket=ST-1"
        );
    }

    #[test]
    fn empty_ticket_redirects_to_login() {
        let config = demo_config();

        let Decision::Reply(reply) = decide(&config, request("/a", Some("ticket="), &[]), NOW)
        else {
            panic!("expected a redirect");
        };

        assert_eq!(reply.status, 302);
        assert!(reply
            .header("location")
            .expect("location")
            .ends_with("service=http%3A%2F%2F127.0.0.1%3A8787%2Fa"));
    }

    #[test]
    fn oversized_ticket_is_rejected_without_subrequest() {
        let config = demo_config();
        let query = format!("ticket=ST-{}", "x".repeat(MAX_TICKET_BYTES));

        let decision = decide(&config, request("/a", Some(&query), &[]), NOW);

        assert!(matches!(decision, Decision::Reply(reply) if reply.status == 403));
    }

    #[test]
    fn overlong_url_is_a_bad_request() {
        let config = demo_config();
        let query = format!("q={}", "x".repeat(3000));

        let decision = decide(&config, request("/a", Some(&query), &[]), NOW);

        assert!(matches!(decision, Decision::Reply(reply) if reply.status == 400));
    }

    #[test]
    fn validation_success_sets_cookie_and_redirects() {
        let config = demo_config();
        let check = check(&config, "x=1&ticket=ST-1");

        let (reply, outcome) = finish_validation(&config, &check, cas_success("alice"), NOW);

        assert_eq!(reply.status, 302);
        assert_eq!(
            reply.header("location"),
            Some("http://127.0.0.1:8787/a?x=1")
        );
        let set_cookie = reply.header("set-cookie").expect("cookie");
        assert!(set_cookie.starts_with("cas_edge_session="));
        assert!(set_cookie.ends_with("; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=3600"));
        assert!(matches!(
            outcome,
            Outcome::SignedIn {
                attributes_dropped: false,
                ..
            }
        ));
    }

    #[test]
    fn cookie_name_prefix_keeps_sites_apart() {
        let mut config = with_rules(r#"[{"pattern": "/", "gateway": true}]"#);
        config.cookie_names = crate::cookies::CookieNames::with_prefix("cas_edge_wiki_");
        let check = check(&config, "ticket=ST-1");

        let (reply, _) = finish_validation(&config, &check, cas_success("alice"), NOW);
        let set_cookies: Vec<&str> = reply
            .headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, value)| value.as_str())
            .collect();
        assert!(
            set_cookies[0].starts_with("cas_edge_wiki_session="),
            "{set_cookies:?}"
        );
        assert!(
            set_cookies[1].starts_with("cas_edge_wiki_redirects=;"),
            "{set_cookies:?}"
        );
        assert!(
            set_cookies[2].starts_with("cas_edge_wiki_gateway=;"),
            "{set_cookies:?}"
        );

        // Another site's cookie of the default name is neither opened nor forwarded.
        let other_site =
            session_cookie(&config, "alice", NOW).replacen("cas_edge_wiki_", "cas_edge_", 1);
        let incoming = [("Cookie", other_site.as_str())];
        let first = reply_of(decide(&config, request("/news", None, &incoming), NOW));
        let mark = first.header("set-cookie").expect("mark");
        assert!(mark.starts_with("cas_edge_wiki_gateway=1;"), "{mark}");

        let incoming = [(
            "Cookie",
            "cas_edge_wiki_gateway=1; cas_edge_gateway=1; app=1",
        )];
        let origin = forward_of(decide(&config, request("/news", None, &incoming), NOW));
        let sent = sent(&origin, &incoming);
        assert_eq!(origin.sid, None);
        assert_eq!(header(&sent, "cookie"), vec!["app=1"]);
    }

    #[test]
    fn issued_cookie_opens_a_session() {
        let config = demo_config();
        let check = check(&config, "ticket=ST-1");
        let (reply, _) = finish_validation(&config, &check, cas_success("alice"), NOW);
        let cookie = reply
            .header("set-cookie")
            .expect("cookie")
            .split(';')
            .next()
            .expect("pair")
            .to_owned();

        let decision = decide(
            &config,
            request("/a", None, &[("Cookie", &cookie)]),
            NOW + 1,
        );

        assert!(
            matches!(decision, Decision::Forward(origin) if header(&sent(&origin, &[]), USER_HEADER) == vec!["alice"])
        );
    }

    #[test]
    fn validation_failure_is_forbidden() {
        let config = demo_config();
        let check = check(&config, "ticket=ST-1");
        let body = write_validation_response(
            &ValidationResponse::failure(ErrorCode::InvalidTicket, "no"),
            true,
        );

        let (reply, outcome) = finish_validation(
            &config,
            &check,
            Fetched::Response { status: 200, body },
            NOW,
        );

        assert_eq!(reply.status, 403);
        assert_eq!(reply.header("set-cookie"), None);
        assert_eq!(
            outcome,
            Outcome::Rejected {
                code: "INVALID_TICKET".to_owned()
            }
        );
    }

    #[test]
    fn unusable_cas_answers_are_bad_gateway() {
        let config = demo_config();
        let check = check(&config, "ticket=ST-1");
        let html = Fetched::Response {
            status: 200,
            body: "<html>maintenance</html>".to_owned(),
        };
        let Fetched::Response { body: success, .. } = cas_success("alice") else {
            unreachable!()
        };

        for fetched in [
            html,
            Fetched::Response {
                status: 500,
                body: success,
            },
            Fetched::TimedOut,
            Fetched::Failed("connection refused".to_owned()),
        ] {
            let (reply, outcome) = finish_validation(&config, &check, fetched.clone(), NOW);
            assert_eq!(reply.status, 502, "{fetched:?}");
            assert_eq!(reply.header("set-cookie"), None, "{fetched:?}");
            assert!(matches!(outcome, Outcome::Unusable { .. }), "{fetched:?}");
        }
    }

    #[test]
    fn outcome_text_never_contains_ticket() {
        let config = demo_config();
        let check = check(&config, "ticket=ST-SECRET");

        let (_, outcome) = finish_validation(&config, &check, cas_success("alice"), NOW);

        assert!(!outcome.to_string().contains("ST-SECRET"));
    }

    fn with_rules(rules: &str) -> FilterConfig {
        let mut config = demo_config();
        config.rules = crate::rules::PathRules::parse(rules).expect("valid rules");
        config
    }

    #[test]
    fn revocation_lookup_only_where_session_counts() {
        let mut config = with_rules(r#"[{"pattern": "/public/", "action": "exclude"}]"#);
        let cookie = session_cookie(&config, "alice", NOW);
        let headers = [("Cookie", cookie.as_str())];

        let cache = &mut SessionCache::default();

        let protected = session_to_check(&config, &request("/a", None, &headers), NOW, cache);
        let excluded = session_to_check(&config, &request("/public/x", None, &headers), NOW, cache);
        let anonymous = session_to_check(&config, &request("/a", None, &[]), NOW, cache);
        config.slo = SloMode::Off;
        let without_slo = session_to_check(&config, &request("/a", None, &headers), NOW, cache);

        let SessionCookie::Opened(Some(session)) = protected else {
            panic!("expected an opened session, got {protected:?}");
        };
        assert_eq!(session.user, "alice");
        assert_eq!(excluded, SessionCookie::Unopened);
        assert_eq!(anonymous, SessionCookie::Opened(None));
        assert_eq!(without_slo, SessionCookie::Unopened);
    }

    #[test]
    fn opened_session_is_not_opened_again() {
        let config = demo_config();
        let cookie = session_cookie(&config, "alice", NOW);
        let headers = [("Cookie", cookie.as_str())];

        let cache = &mut SessionCache::default();

        let opened = session_to_check(&config, &request("/a", None, &headers), NOW, cache);
        let with_session =
            decide_with_session(&config, request("/a", None, &headers), opened, NOW, cache);
        let without = decide_with_session(
            &config,
            request("/a", None, &headers),
            SessionCookie::Opened(None),
            NOW,
            cache,
        );

        let origin = forward_of(with_session);
        assert_eq!(header(&sent(&origin, &headers), USER_HEADER), vec!["alice"]);
        assert_eq!(reply_of(without).status, 302);
    }

    #[test]
    fn kept_assertion_is_reused_then_signed_again() {
        let config = demo_config();
        let cookie = session_cookie(&config, "alice", NOW);
        let headers = [("Cookie", cookie.as_str())];
        let cache = &mut SessionCache::default();
        let mut assertion_at = |now: u64| {
            let request = request("/a", None, &headers);
            let decision =
                decide_with_session(&config, request, SessionCookie::Unopened, now, cache);
            let sent = sent(&forward_of(decision), &headers);
            let values: Vec<String> = header(&sent, ASSERTION_HEADER)
                .into_iter()
                .map(str::to_owned)
                .collect();
            values
        };

        let first = assertion_at(NOW);
        let reused = assertion_at(NOW + 1);
        let later = assertion_at(NOW + crate::session_cache::ASSERTION_REUSE_SECONDS);

        assert_eq!(first, reused);
        assert_ne!(first, later);
        let keys = KeyRing::new(config.assertion_key.clone(), None);
        let claims = open_assertion(&keys, &later[0]).expect("signed");
        assert_eq!(
            claims.iat,
            NOW + crate::session_cache::ASSERTION_REUSE_SECONDS
        );
    }

    #[test]
    fn kept_session_still_honours_revocation() {
        let config = demo_config();
        let cookie = session_cookie(&config, "alice", NOW);
        let headers = [("Cookie", cookie.as_str())];
        let cache = &mut SessionCache::default();
        let accepted = decide_with_session(
            &config,
            request("/a", None, &headers),
            SessionCookie::Unopened,
            NOW,
            cache,
        );
        assert!(forward_of(accepted).sid.is_some());

        let mut revoked = request("/a", None, &headers);
        revoked.revoked = vec![session::session_id("ST-1")];
        let refused = decide_with_session(&config, revoked, SessionCookie::Unopened, NOW, cache);

        assert_eq!(reply_of(refused).status, 302);
    }

    fn session_cookie_with(config: &FilterConfig, session: &Session) -> String {
        format!(
            "cas_edge_session={}",
            seal(config.session_keys.current(), session).0
        )
    }

    fn reply_of(decision: Decision) -> Reply {
        match decision {
            Decision::Reply(reply) => reply,
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    fn forward_of(decision: Decision) -> OriginRequest {
        match decision {
            Decision::Forward(origin) => origin,
            other => panic!("expected forwarding, got {other:?}"),
        }
    }

    #[test]
    fn session_request_drops_ticket_parameters() {
        let config = demo_config();
        let cookie = session_cookie(&config, "alice", NOW);
        let headers = [("Cookie", cookie.as_str())];

        let target = request("/t", Some("ticketing=1&ticket=ST-unused"), &headers);
        let origin = forward_of(decide(&config, target, NOW));

        assert_eq!(origin.url, "http://127.0.0.1:8080/t?ticketing=1");
    }

    #[test]
    fn excluded_path_passes_without_identity() {
        let config = with_rules(r#"[{"pattern": "/public/", "action": "exclude"}]"#);
        let cookie = format!("a=1; {}", session_cookie(&config, "alice", NOW));
        let headers = [("Cookie", cookie.as_str()), ("X-CAS-User", "admin")];

        let origin = forward_of(decide(&config, request("/public/a", None, &headers), NOW));

        assert_eq!(origin.url, "http://127.0.0.1:8080/public/a");
        assert_eq!(
            sent(&origin, &headers),
            vec![("Cookie".to_owned(), "a=1".to_owned())]
        );
        assert_eq!(origin.sid, None);
    }

    #[test]
    fn gateway_redirects_once_then_passes() {
        let config = with_rules(r#"[{"pattern": "/", "gateway": true}]"#);

        let first = reply_of(decide(&config, request("/news", None, &[]), NOW));
        assert_eq!(first.status, 302);
        assert!(first
            .header("location")
            .expect("location")
            .ends_with("%2Fnews&gateway=true"));
        let mark = first.header("set-cookie").expect("mark");
        assert!(mark.starts_with("cas_edge_gateway=1;"), "{mark}");

        let incoming = [("Cookie", "cas_edge_gateway=1")];
        let origin = forward_of(decide(&config, request("/news", None, &incoming), NOW));
        let sent = sent(&origin, &incoming);
        assert_eq!(origin.sid, None);
        assert!(header(&sent, USER_HEADER).is_empty());
        assert!(header(&sent, "cookie").is_empty());
    }

    #[test]
    fn gateway_with_session_identifies() {
        let config = with_rules(r#"[{"pattern": "/", "gateway": true}]"#);
        let cookie = session_cookie(&config, "alice", NOW);

        let origin = forward_of(decide(
            &config,
            request("/", None, &[("Cookie", &cookie)]),
            NOW,
        ));

        assert_eq!(header(&sent(&origin, &[]), USER_HEADER), vec!["alice"]);
    }

    #[test]
    fn renew_path_needs_renewed_session() {
        let config = with_rules(r#"[{"pattern": "/admin/", "renew": true}]"#);
        let cookie = session_cookie(&config, "alice", NOW);

        let reply = reply_of(decide(
            &config,
            request("/admin/x", None, &[("Cookie", &cookie)]),
            NOW,
        ));
        assert!(reply
            .header("location")
            .expect("location")
            .ends_with("&renew=true"));

        let check = match decide(&config, request("/admin/x", Some("ticket=ST-9"), &[]), NOW) {
            Decision::Validate(check) => check,
            other => panic!("expected validation, got {other:?}"),
        };
        assert!(check.renew);
        assert!(check.validation_url.ends_with("&renew=true"));

        let (reply, _) = finish_validation(&config, &check, cas_success("alice"), NOW);
        let renewed = reply
            .header("set-cookie")
            .expect("cookie")
            .split(';')
            .next()
            .expect("pair")
            .to_owned();
        let decision = decide(
            &config,
            request("/admin/x", None, &[("Cookie", &renewed)]),
            NOW,
        );
        assert!(matches!(decision, Decision::Forward(_)));
    }

    #[test]
    fn missing_attribute_is_forbidden() {
        let config = with_rules(r#"[{"pattern": "/staff/", "require": {"memberOf": ["staff"]}}]"#);
        let mut session = Session::start("alice".into(), Default::default(), "ST-1", NOW, 3600);
        let plain = session_cookie_with(&config, &session);
        session
            .attributes
            .insert("memberOf".into(), vec!["staff".into()]);
        let staff = session_cookie_with(&config, &session);

        let denied = reply_of(decide(
            &config,
            request("/staff/a", None, &[("Cookie", &plain)]),
            NOW,
        ));
        assert_eq!(denied.status, 403);
        let allowed = forward_of(decide(
            &config,
            request("/staff/a", None, &[("Cookie", &staff)]),
            NOW,
        ));
        assert_eq!(
            header(&sent(&allowed, &[]), "X-CAS-Attr-memberOf"),
            vec!["staff"]
        );
    }

    #[test]
    fn api_request_gets_401_with_login_hint() {
        let config = demo_config();
        let mut api = request("/api/items", None, &[("Accept", "application/json")]);
        api.method = "GET";

        let reply = reply_of(decide(&config, api, NOW));

        assert_eq!(reply.status, 401);
        let challenge = reply.header("www-authenticate").expect("challenge");
        assert!(
            challenge.starts_with(
                "CAS realm=\"CAS\", login=\"https://127.0.0.1:8443/cas/login?service="
            ),
            "{challenge}"
        );
        assert_eq!(reply.header("set-cookie"), None);
    }

    /// Headers of a WebSocket handshake as a client outside a browser sends them.
    const WEBSOCKET_HANDSHAKE: [(&str, &str); 4] = [
        ("Connection", "Upgrade"),
        ("Upgrade", "websocket"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];

    #[test]
    fn websocket_without_session_gets_401() {
        let config = demo_config();

        let reply = reply_of(decide(
            &config,
            request("/ws", None, &WEBSOCKET_HANDSHAKE),
            NOW,
        ));

        assert_eq!(reply.status, 401);
        assert_eq!(reply.header("set-cookie"), None);
    }

    #[test]
    fn websocket_with_session_forwards_handshake() {
        let config = demo_config();
        let cookie = session_cookie(&config, "alice", NOW);
        let mut headers = WEBSOCKET_HANDSHAKE.to_vec();
        headers.extend([("Cookie", cookie.as_str()), ("X-CAS-User", "admin")]);

        let origin = forward_of(decide(&config, request("/ws", None, &headers), NOW));

        let sent = sent(&origin, &headers);
        assert_eq!(header(&sent, USER_HEADER), vec!["alice"]);
        assert_eq!(header(&sent, ASSERTION_HEADER).len(), 1);
        for (name, value) in WEBSOCKET_HANDSHAKE {
            assert_eq!(header(&sent, name), vec![value], "{name}");
        }
        assert!(origin.set_cookies.is_empty());
    }

    #[test]
    fn websocket_on_gateway_path_passes_anonymously() {
        let config = with_rules(r#"[{"pattern": "/ws/", "gateway": true}]"#);

        let origin = forward_of(decide(
            &config,
            request("/ws/feed", None, &WEBSOCKET_HANDSHAKE),
            NOW,
        ));

        assert_eq!(origin.sid, None);
        assert!(header(&sent(&origin, &WEBSOCKET_HANDSHAKE), USER_HEADER).is_empty());
    }

    #[test]
    fn fourth_login_redirect_shows_loop_page() {
        let config = demo_config();
        let mut cookie = String::new();
        for _ in 0..3 {
            let reply = reply_of(decide(
                &config,
                request("/", None, &[("Cookie", &cookie)]),
                NOW,
            ));
            assert_eq!(reply.status, 302);
            cookie = reply
                .header("set-cookie")
                .expect("counter")
                .split(';')
                .next()
                .expect("pair")
                .to_owned();
        }

        let reply = reply_of(decide(
            &config,
            request("/", None, &[("Cookie", &cookie)]),
            NOW + 5,
        ));
        assert_eq!(reply.status, 429);
    }

    #[test]
    fn revoked_session_counts_as_none() {
        let config = demo_config();
        let cookie = session_cookie(&config, "alice", NOW);
        let mut revoked = request("/", None, &[("Cookie", &cookie)]);
        revoked.revoked = vec![session::session_id("ST-1")];

        let reply = reply_of(decide(&config, revoked, NOW));

        assert_eq!(reply.status, 302);
    }

    #[test]
    fn session_refreshed_after_half_idle() {
        let config = demo_config();
        let cookie = session_cookie(&config, "alice", NOW);
        let half = config.idle_timeout / 2;

        let early = forward_of(decide(
            &config,
            request("/", None, &[("Cookie", &cookie)]),
            NOW + half,
        ));
        assert!(early.set_cookies.is_empty());

        let later = forward_of(decide(
            &config,
            request("/", None, &[("Cookie", &cookie)]),
            NOW + half + 1,
        ));
        let refreshed = later.set_cookies.first().expect("refreshed cookie");
        let max_age = format!("Max-Age={}", config.session_ttl - half - 1);
        assert!(refreshed.ends_with(&max_age), "{refreshed}");

        let idle = decide(
            &config,
            request("/", None, &[("Cookie", &cookie)]),
            NOW + config.idle_timeout,
        );
        assert!(matches!(idle, Decision::Reply(reply) if reply.status == 302));
    }

    #[test]
    fn sign_in_clears_loop_and_gateway_cookies() {
        let config = demo_config();
        let check = check(&config, "ticket=ST-1");

        let (reply, _) = finish_validation(&config, &check, cas_success("alice"), NOW);

        let cookies = header(&reply.headers, "set-cookie");
        assert_eq!(cookies.len(), 3);
        assert!(
            cookies[1].starts_with("cas_edge_redirects=;"),
            "{}",
            cookies[1]
        );
        assert!(cookies[1].ends_with("Max-Age=0"), "{}", cookies[1]);
        assert!(
            cookies[2].starts_with("cas_edge_gateway=;"),
            "{}",
            cookies[2]
        );
        assert!(cookies[2].ends_with("Max-Age=0"), "{}", cookies[2]);
    }

    #[test]
    fn static_assets_use_service_url() {
        let mut config = demo_config();
        config.origin = Origin::Assets;
        let cookie = session_cookie(&config, "alice", NOW);

        let origin = forward_of(decide(
            &config,
            request("/a.html", None, &[("Cookie", &cookie)]),
            NOW,
        ));

        assert_eq!(origin.url, "http://127.0.0.1:8787/a.html");
    }
}
