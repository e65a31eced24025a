//! What a request without a session gets: a login redirect, a gateway attempt, an
//! anonymous pass-through, a 401 for API clients, or the redirect loop page.

use cas_core::language::Language;

use crate::api_mode::{is_api_request, unauthorized};
use crate::config::FilterConfig;
use crate::cookies::{cookie_values, filter_cookie};
use crate::flow::{anonymous_request, Decision, IncomingRequest};
use crate::loop_guard::{count_redirect, LoopCheck};
use crate::pages::Page;
use crate::reply::Reply;
use crate::rules::RulePolicy;
use crate::urls::{login_url, LoginMode};

/// How long the gateway mark lasts, in seconds. Within this time an anonymous user is
/// not sent to CAS again, so each page view does not cost a round trip.
pub const GATEWAY_MARK_SECONDS: u64 = 300;

/// Decides for a request without a session or ticket on a protected path.
pub fn challenge(
    config: &FilterConfig,
    request: IncomingRequest<'_>,
    policy: &RulePolicy,
    service: &str,
    now: u64,
    lang: Language,
) -> Decision {
    let api = is_api_request(request.method, |name| {
        request.header(name).map(str::to_owned)
    });
    let cookies = request.cookie_header();
    let domain = config.cookie_domain.as_deref();
    let names = &config.cookie_names;

    if policy.gateway {
        let attempted = cookies
            .as_deref()
            .is_some_and(|header| !cookie_values(header, &names.gateway).is_empty());
        if api || attempted {
            return Decision::Forward(anonymous_request(config, request));
        }
        let location = login_url(&config.login_url, service, LoginMode::Gateway);
        let mark = filter_cookie(&names.gateway, "1", GATEWAY_MARK_SECONDS, domain);
        return Decision::Reply(Reply::redirect(302, &location).with_header("Set-Cookie", &mark));
    }

    let mode = if policy.renew {
        LoginMode::Renew
    } else {
        LoginMode::Plain
    };
    let location = login_url(&config.login_url, service, mode);
    if api {
        return Decision::Reply(unauthorized(&config.realm, &location));
    }

    match count_redirect(&names.redirects, cookies.as_deref(), now, domain) {
        LoopCheck::Tripped => Decision::Reply(Page::RedirectLoop.render(lang)),
        LoopCheck::Allow(counter) => {
            Decision::Reply(Reply::redirect(302, &location).with_header("Set-Cookie", &counter))
        }
    }
}
