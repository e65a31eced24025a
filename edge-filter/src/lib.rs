//! CAS 3.0 client filter for Cloudflare Workers / workerd.
//!
//! Per request the filter first removes client-sent `X-CAS-*` headers. A request with a
//! valid `cas_edge_session` cookie goes to the origin with `X-CAS-User` and a signed
//! `X-CAS-Assertion`. A request with a `ticket` parameter has it validated by CAS, which
//! starts a session. Any other request is redirected to the CAS login page. The decisions live in plain Rust modules that are
//! tested natively; the Workers glue at the bottom of this file exists only in wasm builds.

pub mod config;
pub mod cookies;
pub mod flow;
pub mod headers;
pub mod pages;
pub mod reply;
pub mod session;
pub mod urls;

#[cfg(target_arch = "wasm32")]
mod glue {
    use std::time::Duration;

    use futures_util::future::{select, Either};
    use futures_util::pin_mut;
    use worker::wasm_bindgen::JsValue;
    use worker::{
        console_error, console_log, event, AbortController, Context, Date, Delay, Env, Fetch,
        Headers, Method, Request, RequestInit, RequestRedirect, Response, Result,
    };

    use crate::config::{FilterConfig, SettingSource};
    use crate::flow::{
        decide, finish_validation, Decision, Fetched, IncomingRequest, OriginRequest, TicketCheck,
    };
    use crate::pages::Page;
    use crate::reply::Reply;
    use crate::urls::RequestTarget;
    use cas_core::language::Language;

    /// How long the filter waits for the complete CAS validation response, body included.
    const VALIDATION_TIMEOUT: Duration = Duration::from_secs(10);

    /// Settings from the Workers environment: `[vars]` and secrets.
    struct WorkerSettings<'a>(&'a Env);

    impl SettingSource for WorkerSettings<'_> {
        fn var(&self, name: &str) -> Option<String> {
            self.0.var(name).ok().map(|value| value.to_string())
        }

        fn secret(&self, name: &str) -> Option<String> {
            self.0.secret(name).ok().map(|value| value.to_string())
        }
    }

    #[event(fetch)]
    async fn fetch(request: Request, env: Env, _context: Context) -> Result<Response> {
        let lang = cas_core::language::choose_language(
            request.headers().get("accept-language")?.as_deref(),
        );
        let config = match FilterConfig::load(&WorkerSettings(&env)) {
            Ok(config) => config,
            Err(error) => {
                console_error!("{error}");
                return into_response(
                    Page::Misconfigured {
                        settings: error.settings(),
                    }
                    .render(lang),
                );
            }
        };

        let url = request.url()?;
        let target = RequestTarget {
            path: url.path(),
            query: url.query(),
        };
        let headers = request.headers().entries().collect();
        match decide(&config, IncomingRequest { target, headers }, now_seconds()) {
            Decision::Forward(origin) => forward(&request, origin, lang).await,
            Decision::Validate(check) => {
                let fetched = fetch_validation(&check).await;
                let (reply, outcome) = finish_validation(&config, &check, fetched, now_seconds());
                console_log!("{outcome}");
                into_response(reply)
            }
            Decision::Reply(reply) => into_response(reply),
        }
    }

    fn now_seconds() -> u64 {
        Date::now().as_millis() / 1000
    }

    /// Sends the request to the origin with the filter's headers and the client's body, and
    /// returns the origin's response as it is, redirects included.
    async fn forward(request: &Request, origin: OriginRequest, lang: Language) -> Result<Response> {
        let method = request.method();
        let headers: Headers = origin
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();

        let mut init = RequestInit::new();
        init.with_method(method.clone())
            .with_headers(headers)
            .with_redirect(RequestRedirect::Manual);
        if !matches!(method, Method::Get | Method::Head) {
            init.with_body(request.inner().body().map(JsValue::from));
        }

        let outgoing = Request::new_with_init(&origin.url, &init)?;
        match Fetch::Request(outgoing).send().await {
            Ok(response) => Ok(response),
            Err(error) => {
                console_error!("origin request failed for session {}: {error}", origin.sid);
                into_response(Page::OriginUnavailable.render(lang))
            }
        }
    }

    /// Sends the one validation subrequest, aborting it after [`VALIDATION_TIMEOUT`].
    /// Redirects are not followed, so the ticket goes to `CAS_VALIDATE_URL` and nowhere else.
    async fn fetch_validation(check: &TicketCheck) -> Fetched {
        let controller = AbortController::default();
        let signal = controller.signal();

        let exchange = async {
            let mut init = RequestInit::new();
            init.with_method(Method::Get)
                .with_redirect(RequestRedirect::Manual);
            let request = Request::new_with_init(&check.validation_url, &init)?;

            let mut response = Fetch::Request(request).send_with_signal(&signal).await?;
            let status = response.status_code();
            let body = response.text().await?;
            Ok::<_, worker::Error>((status, body))
        };
        let timeout = Delay::from(VALIDATION_TIMEOUT);
        pin_mut!(exchange);

        match select(exchange, timeout).await {
            Either::Left((Ok((status, body)), _)) => Fetched::Response { status, body },
            Either::Left((Err(error), _)) => {
                Fetched::Failed(without_ticket(&error.to_string(), check))
            }
            Either::Right(_) => {
                controller.abort();
                Fetched::TimedOut
            }
        }
    }

    /// Error text from the runtime may quote the URL, so the ticket is cut out before logging.
    fn without_ticket(text: &str, check: &TicketCheck) -> String {
        text.replace(&check.validation_url, "<validation URL>")
            .replace(&check.ticket, "<ticket>")
    }

    fn into_response(reply: Reply) -> Result<Response> {
        let headers: Headers = reply
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        Ok(Response::builder()
            .with_status(reply.status)
            .with_headers(headers)
            .fixed(reply.body.into_bytes()))
    }
}
