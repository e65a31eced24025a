//! Login throttle: counts failed logins per typed user name and per client address in
//! the ticket store, so every node that shares the store reads the same counts.
//!
//! Each count is a sliding window: at most `limit` failures within any span of `window`,
//! whatever the span's start. An attempt takes a place in both windows before its
//! password is checked, in one atomic step per window, so nodes racing on the same user
//! or address cannot together exceed the limit. A successful login gives its place
//! back, and a failed one keeps it until it leaves the window.

use std::net::IpAddr;

use sha2::{Digest, Sha256};

use crate::config::ThrottleLimits;
use crate::tickets::{AttemptId, StoreError, TicketStore};

/// The throttle counters of one login attempt.
pub struct LoginAttempt<'a> {
    /// The user name exactly as typed.
    pub username: &'a str,
    /// The client address: the TCP peer, or the forwarded client of a trusted proxy.
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

/// Places that an admitted attempt takes in the windows of its user name and address.
/// A disabled limit takes no place.
#[derive(Debug)]
#[must_use = "an admission is either kept as a failure or given back"]
pub struct Admission {
    user: Option<AttemptId>,
    address: Option<AttemptId>,
}

/// Takes a place for the attempt in the window of its user name and of its address.
/// Returns `None` when either window is full, in which case no place is held.
pub async fn admit(
    store: &dyn TicketStore,
    limits: &ThrottleLimits,
    attempt: &LoginAttempt<'_>,
) -> Result<Option<Admission>, StoreError> {
    let user_key = attempt.user_key();
    let user = match take_place(store, limits.user_failures, &user_key, limits).await? {
        Place::Full => return Ok(None),
        Place::Taken(id) => id,
    };

    let address_key = attempt.address_key();
    let address = match take_place(store, limits.address_failures, &address_key, limits).await? {
        Place::Full => {
            if let Some(id) = user {
                store.forget_attempt(&user_key, id).await?;
            }
            return Ok(None);
        }
        Place::Taken(id) => id,
    };
    Ok(Some(Admission { user, address }))
}

/// Gives back the places of an attempt whose password was not checked, for instance
/// because the user database failed.
pub async fn withdraw(
    store: &dyn TicketStore,
    attempt: &LoginAttempt<'_>,
    admission: Admission,
) -> Result<(), StoreError> {
    if let Some(id) = admission.user {
        store.forget_attempt(&attempt.user_key(), id).await?;
    }
    if let Some(id) = admission.address {
        store.forget_attempt(&attempt.address_key(), id).await?;
    }
    Ok(())
}

/// Clears the failures of the user name after a successful login and gives back the
/// attempt's place at the address. The address keeps its earlier failures, so logging in
/// to one's own account does not reset an address that guesses the passwords of others.
pub async fn record_success(
    store: &dyn TicketStore,
    attempt: &LoginAttempt<'_>,
    admission: Admission,
) -> Result<(), StoreError> {
    let user_key = attempt.user_key();
    let address_key = attempt.address_key();

    // The two counters are independent, so a shared store gets both commands at once.
    let reset = async {
        match admission.user {
            Some(_) => store.reset_counter(&user_key).await,
            None => Ok(()),
        }
    };
    let forget = async {
        match admission.address {
            Some(id) => store.forget_attempt(&address_key, id).await,
            None => Ok(()),
        }
    };
    let (reset, forget) = tokio::join!(reset, forget);
    reset?;
    forget
}

/// Returns the failures of the attempt's user name and address within the window.
pub async fn recent_failures(
    store: &dyn TicketStore,
    limits: &ThrottleLimits,
    attempt: &LoginAttempt<'_>,
) -> Result<(u64, u64), StoreError> {
    let user = store
        .recent_attempts(&attempt.user_key(), limits.window)
        .await?;
    let address = store
        .recent_attempts(&attempt.address_key(), limits.window)
        .await?;
    Ok((user, address))
}

enum Place {
    Full,
    /// A place was taken, or the limit is off and no place is needed.
    Taken(Option<AttemptId>),
}

async fn take_place(
    store: &dyn TicketStore,
    limit: u64,
    key: &str,
    limits: &ThrottleLimits,
) -> Result<Place, StoreError> {
    if limit == 0 {
        return Ok(Place::Taken(None));
    }
    match store.record_attempt(key, limit, limits.window).await? {
        Some(id) => Ok(Place::Taken(Some(id))),
        None => Ok(Place::Full),
    }
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

    /// Admits the attempt and counts it as a failure; returns whether it was admitted.
    async fn fail(
        store: &MemoryTicketStore,
        limits: &ThrottleLimits,
        attempt: &LoginAttempt<'_>,
    ) -> bool {
        admit(store, limits, attempt)
            .await
            .expect("admit")
            .is_some()
    }

    #[tokio::test]
    async fn user_limit_applies_per_exact_name() {
        let store = MemoryTicketStore::new();
        for octet in [1, 2] {
            assert!(fail(&store, &LIMITS, &attempt("alice", octet)).await);
        }

        assert!(!fail(&store, &LIMITS, &attempt("alice", 9)).await);
        assert!(fail(&store, &LIMITS, &attempt("Alice", 9)).await);
        assert!(fail(&store, &LIMITS, &attempt("alice ", 9)).await);
    }

    #[tokio::test]
    async fn address_limit_applies_across_names() {
        let store = MemoryTicketStore::new();
        for name in ["a", "b", "c"] {
            assert!(fail(&store, &LIMITS, &attempt(name, 1)).await);
        }

        assert!(!fail(&store, &LIMITS, &attempt("d", 1)).await);
        assert!(fail(&store, &LIMITS, &attempt("d", 2)).await);
    }

    #[tokio::test]
    async fn full_address_gives_back_user_place() {
        let store = MemoryTicketStore::new();
        for name in ["a", "b", "c"] {
            assert!(fail(&store, &LIMITS, &attempt(name, 1)).await);
        }

        assert!(!fail(&store, &LIMITS, &attempt("d", 1)).await);

        let (user, address) = recent_failures(&store, &LIMITS, &attempt("d", 1))
            .await
            .expect("read");
        assert_eq!(user, 0);
        assert_eq!(address, 3);
    }

    #[tokio::test]
    async fn success_resets_user_but_not_address() {
        let store = MemoryTicketStore::new();
        for _ in 0..2 {
            assert!(fail(&store, &LIMITS, &attempt("alice", 1)).await);
        }
        // The user window is full, so this login could not even be tried; a new
        // window lets the successful attempt through.
        let limits = ThrottleLimits {
            user_failures: 3,
            ..LIMITS
        };
        let admission = admit(&store, &limits, &attempt("alice", 1))
            .await
            .expect("admit");

        record_success(&store, &attempt("alice", 1), admission.expect("admitted"))
            .await
            .expect("success");

        let (user, address) = recent_failures(&store, &LIMITS, &attempt("alice", 1))
            .await
            .expect("read");
        assert_eq!(user, 0);
        assert_eq!(address, 2, "the success itself is not counted");
    }

    #[tokio::test]
    async fn withdrawn_attempt_is_not_counted() {
        let store = MemoryTicketStore::new();
        let admission = admit(&store, &LIMITS, &attempt("alice", 1))
            .await
            .expect("admit");

        withdraw(&store, &attempt("alice", 1), admission.expect("admitted"))
            .await
            .expect("withdraw");

        let failures = recent_failures(&store, &LIMITS, &attempt("alice", 1)).await;
        assert_eq!(failures.expect("read"), (0, 0));
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
            assert!(fail(&store, &off, &attempt("alice", 1)).await);
        }

        assert_eq!(store.live_entries().map(|e| e.counters), Some(0));
    }

    #[tokio::test(start_paused = true)]
    async fn window_slides_past_boundary() {
        let store = MemoryTicketStore::new();
        let limits = ThrottleLimits {
            user_failures: 3,
            address_failures: 0,
            ..LIMITS
        };
        assert!(fail(&store, &limits, &attempt("alice", 1)).await);
        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(fail(&store, &limits, &attempt("alice", 1)).await);
        assert!(fail(&store, &limits, &attempt("alice", 1)).await);

        // A fixed window that started with the first failure would end here.
        tokio::time::advance(Duration::from_secs(2)).await;

        assert!(
            fail(&store, &limits, &attempt("alice", 1)).await,
            "first failure left"
        );
        assert!(!fail(&store, &limits, &attempt("alice", 1)).await);
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(fail(&store, &limits, &attempt("alice", 1)).await);
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
