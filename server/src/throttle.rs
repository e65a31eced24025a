//! Login throttle: counts failed logins per typed user name and per client address in
//! the ticket store, so every node that shares the store reads the same counts.
//!
//! Each counter is a fixed window that starts at the first failure and disappears when
//! it ends, as [`TicketStore::incr_counter`] defines it. So an attacker can make up to
//! twice the limit of attempts around a window boundary.

use std::net::IpAddr;

use sha2::{Digest, Sha256};

use crate::config::ThrottleLimits;
use crate::tickets::{StoreError, TicketStore};

/// The throttle counters of one login attempt.
pub struct LoginAttempt<'a> {
    /// The user name exactly as typed.
    pub username: &'a str,
    /// The client address: the TCP peer.
    pub address: IpAddr,
}

impl LoginAttempt<'_> {
    /// Returns the counter key of the user name: a SHA-256 digest, so the store never
    /// contains the typed name itself.
    fn user_key(&self) -> String {
        let digest = Sha256::digest(self.username.as_bytes());
        format!("login-user:{}", hex::encode(digest))
    }

    /// Returns the counter key of the client address. An IPv4 address mapped into
    /// IPv6 counts as the IPv4 address.
    fn address_key(&self) -> String {
        format!("login-address:{}", self.address.to_canonical())
    }
}

/// Returns whether the attempt is over one of the limits, reading the counters without
/// changing them.
pub async fn is_throttled(
    store: &dyn TicketStore,
    limits: &ThrottleLimits,
    attempt: &LoginAttempt<'_>,
) -> Result<bool, StoreError> {
    if reached(store, limits.user_failures, &attempt.user_key()).await? {
        return Ok(true);
    }
    reached(store, limits.address_failures, &attempt.address_key()).await
}

/// Counts a failed login for the user name and for the address.
pub async fn record_failure(
    store: &dyn TicketStore,
    limits: &ThrottleLimits,
    attempt: &LoginAttempt<'_>,
) -> Result<(), StoreError> {
    if limits.user_failures > 0 {
        store
            .incr_counter(&attempt.user_key(), limits.window)
            .await?;
    }
    if limits.address_failures > 0 {
        store
            .incr_counter(&attempt.address_key(), limits.window)
            .await?;
    }
    Ok(())
}

/// Clears the failures of the user name after a successful login. The address keeps
/// its count, so logging in to one's own account does not reset an address that guesses
/// the passwords of others.
pub async fn record_success(
    store: &dyn TicketStore,
    limits: &ThrottleLimits,
    attempt: &LoginAttempt<'_>,
) -> Result<(), StoreError> {
    if limits.user_failures == 0 {
        return Ok(());
    }
    store.reset_counter(&attempt.user_key()).await
}

async fn reached(store: &dyn TicketStore, limit: u64, key: &str) -> Result<bool, StoreError> {
    if limit == 0 {
        return Ok(false);
    }
    Ok(store.counter_value(key).await? >= limit)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use super::*;
    use crate::tickets::memory::MemoryTicketStore;

    const LIMITS: ThrottleLimits = ThrottleLimits {
        user_failures: 2,
        address_failures: 3,
        window: Duration::from_secs(60),
    };

    fn attempt(username: &str, last_octet: u8) -> LoginAttempt<'_> {
        LoginAttempt {
            username,
            address: IpAddr::V4(Ipv4Addr::new(127, 0, 0, last_octet)),
        }
    }

    #[tokio::test]
    async fn user_limit_applies_per_exact_name() {
        let store = MemoryTicketStore::new();
        for octet in [1, 2] {
            record_failure(&store, &LIMITS, &attempt("alice", octet))
                .await
                .expect("record");
        }

        let same_name = is_throttled(&store, &LIMITS, &attempt("alice", 9)).await;
        let other_case = is_throttled(&store, &LIMITS, &attempt("Alice", 9)).await;
        let padded = is_throttled(&store, &LIMITS, &attempt("alice ", 9)).await;

        assert!(same_name.expect("read"));
        assert!(!other_case.expect("read"));
        assert!(!padded.expect("read"));
    }

    #[tokio::test]
    async fn address_limit_applies_across_names() {
        let store = MemoryTicketStore::new();
        for name in ["a", "b", "c"] {
            record_failure(&store, &LIMITS, &attempt(name, 1))
                .await
                .expect("record");
        }

        let same_address = is_throttled(&store, &LIMITS, &attempt("d", 1)).await;
        let other_address = is_throttled(&store, &LIMITS, &attempt("d", 2)).await;

        assert!(same_address.expect("read"));
        assert!(!other_address.expect("read"));
    }

    #[tokio::test]
    async fn success_resets_user_but_not_address() {
        let store = MemoryTicketStore::new();
        let limits = ThrottleLimits {
            address_failures: 2,
            ..LIMITS
        };
        for _ in 0..2 {
            record_failure(&store, &limits, &attempt("alice", 1))
                .await
                .expect("record");
        }

        record_success(&store, &limits, &attempt("alice", 1))
            .await
            .expect("reset");

        let other_address = is_throttled(&store, &limits, &attempt("alice", 2)).await;
        let same_address = is_throttled(&store, &limits, &attempt("alice", 1)).await;
        assert!(!other_address.expect("read"));
        assert!(same_address.expect("read"));
    }

    #[tokio::test]
    async fn zero_turns_limits_off() {
        let store = MemoryTicketStore::new();
        let off = ThrottleLimits {
            user_failures: 0,
            address_failures: 0,
            ..LIMITS
        };
        for _ in 0..10 {
            record_failure(&store, &off, &attempt("alice", 1))
                .await
                .expect("record");
        }

        let throttled = is_throttled(&store, &off, &attempt("alice", 1)).await;

        assert!(!throttled.expect("read"));
        assert_eq!(store.live_entries().map(|e| e.counters), Some(0));
    }

    #[test]
    fn user_key_omits_name() {
        let key = attempt("alice", 1).user_key();

        assert!(!key.contains("alice"), "{key}");
        assert_eq!(key.len(), "login-user:".len() + 64);
    }

    #[test]
    fn mapped_ipv4_counts_as_ipv4() {
        let mapped = LoginAttempt {
            username: "alice",
            address: "::ffff:127.0.0.1".parse().expect("address"),
        };

        assert_eq!(mapped.address_key(), attempt("alice", 1).address_key());
    }
}
