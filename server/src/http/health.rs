//! Operations endpoints: `{base}/health` (liveness), `{base}/ready` (readiness: the user
//! database and the ticket store answer) and the Prometheus metrics.

use std::time::Duration;

use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Response, StatusCode};

use super::response::{self, Body};
use crate::app::App;

/// Time each dependency gets to answer the readiness check.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Content type of the Prometheus text exposition format, version 0.0.4.
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Returns 200 while the server accepts requests, whatever the state of its dependencies.
pub fn health() -> Response<Body> {
    response::plain(StatusCode::OK, "ok\n")
}

/// Returns 200 when the user database and the ticket store both answer, 503 otherwise.
/// The body names the failing dependency; the log gets the error.
pub async fn ready(app: &App) -> Response<Body> {
    let database = tokio::time::timeout(READY_TIMEOUT, app.users.ping());
    let store = tokio::time::timeout(READY_TIMEOUT, app.store().ping());
    let (database, store) = tokio::join!(database, store);

    let database_ok = match database {
        Ok(Ok(())) => true,
        Ok(Err(error)) => log_not_ready("user database", &error),
        Err(_) => log_not_ready("user database", &"timed out"),
    };
    let store_ok = match store {
        Ok(Ok(())) => true,
        Ok(Err(error)) => log_not_ready("ticket store", &error),
        Err(_) => log_not_ready("ticket store", &"timed out"),
    };

    match (database_ok, store_ok) {
        (true, true) => response::plain(StatusCode::OK, "ready\n"),
        (false, true) => response::plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: user database\n",
        ),
        (true, false) => {
            response::plain(StatusCode::SERVICE_UNAVAILABLE, "not ready: ticket store\n")
        }
        (false, false) => response::plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: user database, ticket store\n",
        ),
    }
}

fn log_not_ready(dependency: &'static str, error: &dyn std::fmt::Display) -> bool {
    tracing::warn!(dependency, %error, "readiness check failed");
    false
}

/// Returns every metric in the Prometheus text format, with the security headers of
/// every other response.
pub fn metrics(app: &App) -> Response<Body> {
    let text = app.metrics.render(app.store().live_entries());
    let mut response = response::text(text);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(METRICS_CONTENT_TYPE));
    response
}
