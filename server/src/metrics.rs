//! Prometheus metrics: login outcomes, validation results by CAS code, ticket store
//! latency and live entries, rendered in the text exposition format.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::tickets::LiveEntries;

type Labels = [(&'static str, &'static str); 1];

/// Outcome label values of `cas_logins_total`.
pub mod outcome {
    pub const SUCCESS: &str = "success";
    pub const BAD_CREDENTIALS: &str = "bad_credentials";
    pub const BAD_LOGIN_TICKET: &str = "bad_login_ticket";
    pub const MISSING_FIELDS: &str = "missing_fields";
    pub const ERROR: &str = "error";
    /// Rejected by the login throttle before any credential check.
    pub const THROTTLED: &str = "throttled";

    pub const ALL: [&str; 6] = [
        SUCCESS,
        BAD_CREDENTIALS,
        BAD_LOGIN_TICKET,
        MISSING_FIELDS,
        ERROR,
        THROTTLED,
    ];
}

/// Every metric the server exports, registered once at start.
pub struct Metrics {
    registry: Registry,
    logins: Family<Labels, Counter>,
    validations: Family<Labels, Counter>,
    store_latency: Family<Labels, Histogram, fn() -> Histogram>,
    live_tickets: Family<Labels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("cas");
        let logins = Family::<Labels, Counter>::default();
        let validations = Family::<Labels, Counter>::default();
        let store_latency =
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        let live_tickets = Family::<Labels, Gauge>::default();

        registry.register("logins", "Password logins by outcome", logins.clone());
        registry.register(
            "validations",
            "Service ticket validations by result: success or the CAS error code",
            validations.clone(),
        );
        registry.register(
            "ticket_store_operation_seconds",
            "Ticket store operation latency in seconds, by operation",
            store_latency.clone(),
        );
        registry.register(
            "live_tickets",
            "Entries held by the in-memory ticket store, by kind (absent with Redis)",
            live_tickets.clone(),
        );
        // Series that exist from the start read 0 instead of missing, so rates work
        // from the first scrape.
        for name in outcome::ALL {
            logins.get_or_create(&[("outcome", name)]).inc_by(0);
        }
        validations.get_or_create(&[("code", "success")]).inc_by(0);

        Self {
            registry,
            logins,
            validations,
            store_latency,
            live_tickets,
        }
    }

    /// Counts one password login with its outcome, one of the [`outcome`] constants.
    pub fn count_login(&self, outcome: &'static str) {
        self.logins.get_or_create(&[("outcome", outcome)]).inc();
    }

    /// Counts one validation: `success` or a CAS error code such as `INVALID_TICKET`.
    pub fn count_validation(&self, code: &'static str) {
        self.validations.get_or_create(&[("code", code)]).inc();
    }

    /// Records how long one ticket store operation took.
    pub fn observe_store(&self, operation: &'static str, elapsed: Duration) {
        self.store_latency
            .get_or_create(&[("operation", operation)])
            .observe(elapsed.as_secs_f64());
    }

    /// Renders every metric in the Prometheus text format, with the live entry counts
    /// read just before.
    pub fn render(&self, live: Option<LiveEntries>) -> String {
        if let Some(live) = live {
            self.set_live(live);
        }
        let mut text = String::new();
        if let Err(error) = encode(&mut text, &self.registry) {
            tracing::error!(%error, "encoding metrics failed");
        }
        text
    }

    fn set_live(&self, live: LiveEntries) {
        let kinds = [
            ("login_ticket", live.login_tickets),
            ("session", live.sessions),
            ("service_ticket", live.service_tickets),
            ("proxy_granting_ticket", live.proxy_granting_tickets),
            ("proxy_ticket", live.proxy_tickets),
            ("counter", live.counters),
        ];
        for (kind, count) in kinds {
            let value = i64::try_from(count).unwrap_or(i64::MAX);
            self.live_tickets
                .get_or_create(&[("kind", kind)])
                .set(value);
        }
    }
}

/// Buckets from 50 µs doubling up to about 1.6 s, wide enough for memory and Redis.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

/// Shared handle, since the store decorator and the handlers both record.
pub type SharedMetrics = Arc<Metrics>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_lists_every_family() {
        let metrics = Metrics::new();
        metrics.count_login(outcome::SUCCESS);
        metrics.count_validation("INVALID_TICKET");
        metrics.observe_store("take_service_ticket", Duration::from_micros(120));

        let text = metrics.render(Some(LiveEntries {
            service_tickets: 3,
            ..Default::default()
        }));

        assert!(
            text.contains("cas_logins_total{outcome=\"success\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("cas_validations_total{code=\"INVALID_TICKET\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "cas_ticket_store_operation_seconds_count{operation=\"take_service_ticket\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("cas_live_tickets{kind=\"service_ticket\"} 3"),
            "{text}"
        );
    }
}
