//! Resident memory per live service ticket in the in-memory store, measured in this
//! process from /proc/self/statm before and after storing the tickets.

use std::time::{Duration, SystemTime};

use cas_core::service::ServiceUrl;
use cas_core::ticket::{ServiceTicket, TicketGrantingTicket};
use cas_server::tickets::memory::MemoryTicketStore;
use cas_server::tickets::{random_ticket_bytes, ServiceGrant, SsoSession, TicketStore};

use crate::client::BenchError;

const HOUR: Duration = Duration::from_secs(3600);

/// Stores `tickets` service tickets spread over `sessions` sessions and prints the
/// resident bytes they added, per ticket.
pub async fn measure(tickets: usize, sessions: usize, service: &str) -> Result<(), BenchError> {
    let store = MemoryTicketStore::with_max_entries(tickets + sessions + 1);
    let service = ServiceUrl::parse(service).map_err(|e| format!("invalid service: {e}"))?;
    let mut session_tickets = Vec::with_capacity(sessions);
    for _ in 0..sessions.max(1) {
        let ticket = TicketGrantingTicket::from_random(random_ticket_bytes()?);
        let session = SsoSession {
            user: "demo".into(),
            authenticated_at: SystemTime::now(),
            attributes: Default::default(),
        };
        store.put_session(&ticket, session, HOUR).await?;
        session_tickets.push(ticket);
    }
    let before = resident_bytes()?;

    for index in 0..tickets {
        let session = &session_tickets[index % session_tickets.len()];
        let grant = ServiceGrant {
            service: service.clone(),
            user: "demo".into(),
            session: session.clone(),
            authenticated_at: SystemTime::now(),
            from_new_login: false,
            attributes: Default::default(),
        };
        let ticket = ServiceTicket::from_random(random_ticket_bytes()?);
        store.put_service_ticket(&ticket, grant, HOUR).await?;
    }
    let after = resident_bytes()?;

    let live = store
        .live_entries()
        .map(|l| l.service_tickets)
        .unwrap_or_default();
    let per_ticket = after.saturating_sub(before) as f64 / tickets.max(1) as f64;
    println!(
        "figure=memory tickets={live} sessions={sessions} resident_before_mb={:.1} resident_after_mb={:.1} bytes_per_ticket={per_ticket:.0}",
        before as f64 / 1e6,
        after as f64 / 1e6
    );
    Ok(())
}

/// Resident set size from the second field of /proc/self/statm, in bytes. Pages are
/// assumed to be 4 KiB, the size on x86-64 Linux.
fn resident_bytes() -> Result<u64, BenchError> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .ok_or("short /proc/self/statm")?
        .parse()?;
    Ok(pages * 4096)
}
