//! The state every request handler shares.

use std::sync::Arc;

use crate::config::Config;
use crate::metrics::SharedMetrics;
use crate::outbound::Outbound;
use crate::slo::SingleLogout;
use crate::tickets::TicketStore;
use crate::users::UserDirectory;

/// Settings, the user directory, the ticket store, the metrics and the outbound client.
pub struct App {
    pub config: Config,
    pub users: UserDirectory,
    pub tickets: Arc<dyn TicketStore>,
    pub metrics: SharedMetrics,
    /// Client for proxy callbacks and single logout requests.
    pub outbound: Outbound,
    /// Sender of single logout requests, which uses `outbound`.
    pub slo: SingleLogout,
}

impl App {
    /// Returns the path of an endpoint under the base path, such as `/cas/login`.
    pub fn endpoint(&self, name: &str) -> String {
        format!("{}/{name}", self.config.base_path)
    }

    /// Returns the ticket store as the trait object reference that the flow functions take.
    pub fn store(&self) -> &dyn TicketStore {
        self.tickets.as_ref()
    }
}
