//! Recent revocation lookups, kept in the isolate so that a session cookie does not cost a
//! Workers KV read on every request.
//!
//! Only "not revoked" results are kept, each for a few seconds. A revocation received by
//! the same isolate takes effect at once. One received elsewhere takes effect when the
//! kept result expires, on top of the delay with which KV itself spreads writes.

use std::collections::HashMap;

/// Maximum number of session ids kept. A full cache drops its expired entries, then all
/// of them, which only costs KV reads.
pub const MAX_ENTRIES: usize = 10_000;

/// Session ids that KV reported as not revoked, each with the second until which that
/// result is trusted.
#[derive(Debug, Default)]
pub struct RevocationCache {
    not_revoked_until: HashMap<String, u64>,
}

impl RevocationCache {
    /// Returns whether a recent lookup found `sid` not revoked.
    pub fn known_not_revoked(&self, sid: &str, now: u64) -> bool {
        self.not_revoked_until
            .get(sid)
            .is_some_and(|until| now < *until)
    }

    /// Records that KV found `sid` not revoked at `now`, trusted for `seconds`.
    pub fn remember_not_revoked(&mut self, sid: &str, now: u64, seconds: u64) {
        if seconds == 0 {
            return;
        }
        if self.not_revoked_until.len() >= MAX_ENTRIES {
            self.not_revoked_until.retain(|_, until| now < *until);
        }
        if self.not_revoked_until.len() >= MAX_ENTRIES {
            self.not_revoked_until.clear();
        }
        self.not_revoked_until
            .insert(sid.to_owned(), now.saturating_add(seconds));
    }

    /// Drops what is known about `sid`, after a logout request revoked it.
    pub fn forget(&mut self, sid: &str) {
        self.not_revoked_until.remove(sid);
    }

    /// Returns the number of session ids kept.
    pub fn len(&self) -> usize {
        self.not_revoked_until.len()
    }

    /// Returns whether no session id is kept.
    pub fn is_empty(&self) -> bool {
        self.not_revoked_until.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_expires_after_its_seconds() {
        let mut cache = RevocationCache::default();

        cache.remember_not_revoked("a", 100, 5);

        assert!(cache.known_not_revoked("a", 100));
        assert!(cache.known_not_revoked("a", 104));
        assert!(!cache.known_not_revoked("a", 105));
        assert!(!cache.known_not_revoked("b", 100));
    }

    #[test]
    fn forget_takes_effect_at_once() {
        let mut cache = RevocationCache::default();
        cache.remember_not_revoked("a", 100, 5);

        cache.forget("a");

        assert!(!cache.known_not_revoked("a", 101));
    }

    #[test]
    fn zero_seconds_keeps_nothing() {
        let mut cache = RevocationCache::default();

        cache.remember_not_revoked("a", 100, 0);

        assert!(cache.is_empty());
    }

    #[test]
    fn full_cache_drops_expired_then_all() {
        let mut cache = RevocationCache::default();
        for index in 0..MAX_ENTRIES {
            cache.remember_not_revoked(&index.to_string(), 100, 1);
        }

        cache.remember_not_revoked("late", 200, 5);
        assert_eq!(cache.len(), 1);

        for index in 0..MAX_ENTRIES - 1 {
            cache.remember_not_revoked(&index.to_string(), 200, 5);
        }
        cache.remember_not_revoked("last", 200, 5);
        assert_eq!(cache.len(), 1);
        assert!(cache.known_not_revoked("last", 200));
    }
}
