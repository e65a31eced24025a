//! The state every request handler shares.

use std::sync::{Arc, PoisonError, RwLock};

use cas_core::registry::ServiceRegistry;

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
    /// The service registry in use, which a reload replaces as a whole.
    pub registry: RwLock<Arc<ServiceRegistry>>,
}

impl App {
    /// Returns the service registry in use. A request keeps the snapshot it got, so a
    /// reload never changes the registry halfway through a request.
    pub fn registry(&self) -> Arc<ServiceRegistry> {
        let registry = self.registry.read().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(&registry)
    }

    /// Replaces the service registry for the requests that start from now on.
    pub fn replace_registry(&self, registry: ServiceRegistry) {
        let mut current = self
            .registry
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        *current = Arc::new(registry);
    }

    /// Returns the path of an endpoint under the base path, such as `/cas/login`.
    pub fn endpoint(&self, name: &str) -> String {
        format!("{}/{name}", self.config.base_path)
    }

    /// Returns the ticket store as the trait object reference that the flow functions take.
    pub fn store(&self) -> &dyn TicketStore {
        self.tickets.as_ref()
    }
}
