//! The validation subrequest to CAS, bounded in time.

use std::time::Duration;

use futures_util::future::{select, Either};
use futures_util::pin_mut;
use worker::{AbortController, Delay, Fetch, Method, Request, RequestInit, RequestRedirect};

use crate::flow::{Fetched, TicketCheck};

/// Sends the one validation subrequest, aborting it after `timeout_ms` milliseconds for
/// the complete response, body included. Redirects are not followed, so the ticket goes
/// to the validation URL and nowhere else.
pub async fn fetch_validation(check: &TicketCheck, timeout_ms: u64) -> Fetched {
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
    let timeout = Delay::from(Duration::from_millis(timeout_ms));
    pin_mut!(exchange);

    match select(exchange, timeout).await {
        Either::Left((Ok((status, body)), _)) => Fetched::Response { status, body },
        Either::Left((Err(error), _)) => Fetched::Failed(without_ticket(&error.to_string(), check)),
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
