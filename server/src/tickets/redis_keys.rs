//! Key layout of the Redis ticket store. Every key starts with the configured prefix
//! and carries its ticket in a hash tag (`{…}`), so a session, its index of service and
//! proxy tickets and its set of proxy-granting tickets fall in the same Redis Cluster
//! slot and can change together in one step.

use cas_core::ticket::{
    LoginTicket, ProxyGrantingTicket, ProxyTicket, ServiceTicket, TicketGrantingTicket,
};

/// Number of hash slots in a Redis Cluster.
const CLUSTER_SLOTS: u16 = 16384;

/// Builds the keys of one store from its prefix.
#[derive(Debug, Clone)]
pub struct RedisKeys {
    prefix: String,
}

impl RedisKeys {
    /// Creates the layout for `prefix`, which must contain no `{` or `}` (the settings
    /// check rejects them), because a brace there would replace the ticket's hash tag.
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn login_ticket(&self, ticket: &LoginTicket) -> String {
        format!("{}lt:{{{}}}", self.prefix, ticket.as_str())
    }

    pub fn session(&self, ticket: &TicketGrantingTicket) -> String {
        format!("{}tgt:{{{}}}", self.prefix, ticket.as_str())
    }

    /// The hash of service or proxy ticket → service for one session, in the session's
    /// slot. The field `@user` contains the session's user.
    pub fn session_index(&self, ticket: &TicketGrantingTicket) -> String {
        format!("{}tgt:{{{}}}:st", self.prefix, ticket.as_str())
    }

    /// Returns the key of the set of proxy-granting tickets issued from one session, in
    /// the session's slot.
    pub fn session_proxy_granting(&self, ticket: &TicketGrantingTicket) -> String {
        format!("{}tgt:{{{}}}:pgt", self.prefix, ticket.as_str())
    }

    pub fn proxy_granting_ticket(&self, ticket: &ProxyGrantingTicket) -> String {
        self.proxy_granting_ticket_text(ticket.as_str())
    }

    /// Returns the key of a proxy-granting ticket read back from a session's set.
    pub fn proxy_granting_ticket_text(&self, ticket: &str) -> String {
        format!("{}pgt:{{{ticket}}}", self.prefix)
    }

    pub fn proxy_ticket(&self, ticket: &ProxyTicket) -> String {
        self.proxy_ticket_text(ticket.as_str())
    }

    /// Returns the key of a proxy ticket read back from a session index.
    pub fn proxy_ticket_text(&self, ticket: &str) -> String {
        format!("{}pt:{{{ticket}}}", self.prefix)
    }

    /// Returns the key of a service or proxy ticket read back from a session index,
    /// chosen by the ticket's prefix.
    pub fn indexed_ticket_text(&self, ticket: &str) -> String {
        match ticket.starts_with(ProxyTicket::PREFIX) {
            true => self.proxy_ticket_text(ticket),
            false => self.service_ticket_text(ticket),
        }
    }

    pub fn service_ticket(&self, ticket: &ServiceTicket) -> String {
        self.service_ticket_text(ticket.as_str())
    }

    /// The key of a service ticket read back from a session index.
    pub fn service_ticket_text(&self, ticket: &str) -> String {
        format!("{}st:{{{ticket}}}", self.prefix)
    }

    /// Returns the key of the sorted set of session deadlines: member a session's ticket,
    /// score the Unix time in milliseconds at which it ends unless it is used. Sweeps read it to find
    /// expired sessions. It is one key in one slot, touched by one command at a time.
    pub fn session_deadlines(&self) -> String {
        format!("{}session-deadlines", self.prefix)
    }

    /// Returns the key of a throttle's sliding-window log, a sorted set of attempts. A
    /// brace inside `name` only moves the log to another slot, which is harmless because
    /// every throttle command and script uses this one key.
    pub fn attempts(&self, name: &str) -> String {
        format!("{}attempts:{{{name}}}", self.prefix)
    }
}

/// Returns the Redis Cluster slot of `key`: CRC16 (XMODEM) of its hash tag, or of the
/// whole key when it has no non-empty `{…}`, modulo 16384.
pub fn cluster_slot(key: &str) -> u16 {
    crc16(hash_tag(key).as_bytes()) % CLUSTER_SLOTS
}

fn hash_tag(key: &str) -> &str {
    let Some(open) = key.find('{') else {
        return key;
    };
    match key[open + 1..].find('}') {
        Some(length) if length > 0 => &key[open + 1..open + 1 + length],
        _ => key,
    }
}

fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in bytes {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_matches_cluster_specification() {
        // Test vector from the Redis Cluster specification.
        assert_eq!(crc16(b"123456789"), 0x31C3);
    }

    #[test]
    fn hash_tag_rules() {
        assert_eq!(hash_tag("{user1000}.following"), "user1000");
        assert_eq!(hash_tag("foo{}{bar}"), "foo{}{bar}");
        assert_eq!(hash_tag("foo{{bar}}zap"), "{bar");
        assert_eq!(hash_tag("plain"), "plain");
    }

    #[test]
    fn session_and_index_share_a_slot() {
        let keys = RedisKeys::new("cas:");
        let session = TicketGrantingTicket::from_random([7; 20]);

        let session_key = keys.session(&session);
        let index_key = keys.session_index(&session);

        let proxying_key = keys.session_proxy_granting(&session);

        assert_ne!(session_key, index_key);
        assert_ne!(proxying_key, index_key);
        assert_eq!(cluster_slot(&session_key), cluster_slot(&index_key));
        assert_eq!(cluster_slot(&session_key), cluster_slot(&proxying_key));
        assert!(session_key.starts_with("cas:tgt:{TGT-"));
    }

    #[test]
    fn indexed_ticket_keys_follow_prefix() {
        let keys = RedisKeys::new("cas:");
        let service = ServiceTicket::from_random([3; 20]);
        let proxy = ProxyTicket::from_random([4; 20]);

        assert_eq!(
            keys.indexed_ticket_text(service.as_str()),
            keys.service_ticket(&service)
        );
        assert_eq!(
            keys.indexed_ticket_text(proxy.as_str()),
            keys.proxy_ticket(&proxy)
        );
    }

    #[test]
    fn tickets_spread_over_slots() {
        let keys = RedisKeys::new("cas:");
        let first = keys.service_ticket(&ServiceTicket::from_random([1; 20]));
        let second = keys.service_ticket(&ServiceTicket::from_random([2; 20]));

        assert_ne!(cluster_slot(&first), cluster_slot(&second));
    }
}
