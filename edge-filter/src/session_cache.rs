//! Sessions and identity headers that this isolate made recently. A returning session
//! cookie then costs a map lookup instead of an HMAC check and a JSON parse, and its
//! signed identity assertion is reused for a few seconds instead of signed again.
//!
//! Only cookies that passed the signature check are kept, keyed by their exact value,
//! so the cache cannot accept a cookie that the keys would reject. Every use checks the
//! session's expiry and idle timeout again. Revocation is checked by the caller on
//! every request, as for a cookie opened anew.

use std::collections::HashMap;
use std::rc::Rc;

use crate::session::Session;

/// Maximum number of entries in each of the two maps. A full map drops the entries that
/// are no longer current, then all of them, which only costs new signature checks.
pub const MAX_ENTRIES: usize = 1_000;

/// How long a signed identity assertion is reused for later requests of the same
/// session, in seconds. The origin then receives an assertion whose `iat` lies up to
/// this far in the past and that stays valid for the rest of its lifetime.
pub const ASSERTION_REUSE_SECONDS: u64 = 10;

/// The identity headers of one session: `X-CAS-User`, `X-CAS-Assertion` and the
/// attribute headers, with the time their assertion was signed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Identity {
    headers: Rc<[(String, String)]>,
    signed_at: u64,
}

/// Recently opened sessions and their identity headers.
#[derive(Debug, Default)]
pub struct SessionCache {
    /// Sessions by the exact cookie value that carried them.
    sessions: HashMap<String, Rc<Session>>,
    /// Identity headers by session id.
    identities: HashMap<String, Identity>,
}

impl SessionCache {
    /// Returns the session of cookie value `value` if it is current at `now` with idle
    /// timeout `idle`. On a miss, `open` checks the cookie, and a session it returns is
    /// kept. Rejected cookies are not kept, so forged cookies cannot fill the cache.
    pub fn open(
        &mut self,
        value: &str,
        now: u64,
        idle: u64,
        open: impl FnOnce() -> Option<Session>,
    ) -> Option<Rc<Session>> {
        if let Some(session) = self.sessions.get(value) {
            return session.is_current(now, idle).then(|| Rc::clone(session));
        }

        let session = Rc::new(open()?);
        if self.sessions.len() >= MAX_ENTRIES {
            self.sessions
                .retain(|_, session| session.is_current(now, idle));
        }
        if self.sessions.len() >= MAX_ENTRIES {
            self.sessions.clear();
        }
        self.sessions.insert(value.to_owned(), Rc::clone(&session));
        Some(session)
    }

    /// Returns the identity headers of `session` at `now`: the kept ones when they were
    /// signed less than [`ASSERTION_REUSE_SECONDS`] ago, else new ones from `sign`.
    pub fn identity_headers(
        &mut self,
        session: &Session,
        now: u64,
        sign: impl FnOnce() -> Vec<(String, String)>,
    ) -> Rc<[(String, String)]> {
        if let Some(identity) = self.identities.get(&session.sid) {
            let age = now.checked_sub(identity.signed_at);
            if age.is_some_and(|age| age < ASSERTION_REUSE_SECONDS) {
                return Rc::clone(&identity.headers);
            }
        }

        let headers: Rc<[(String, String)]> = sign().into();
        if self.identities.len() >= MAX_ENTRIES {
            self.identities.retain(|_, identity| {
                now.saturating_sub(identity.signed_at) < ASSERTION_REUSE_SECONDS
            });
        }
        if self.identities.len() >= MAX_ENTRIES {
            self.identities.clear();
        }
        let identity = Identity {
            headers: Rc::clone(&headers),
            signed_at: now,
        };
        self.identities.insert(session.sid.clone(), identity);
        headers
    }

    /// Returns the number of sessions and of identities kept.
    pub fn len(&self) -> (usize, usize) {
        (self.sessions.len(), self.identities.len())
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    const NOW: u64 = 1_000_000;

    fn session(ticket: &str) -> Session {
        Session::start("alice".into(), Default::default(), ticket, NOW, 3600)
    }

    fn headers(assertion: &str) -> Vec<(String, String)> {
        vec![("X-CAS-Assertion".to_owned(), assertion.to_owned())]
    }

    #[test]
    fn second_open_skips_the_check() {
        let mut cache = SessionCache::default();
        let checks = Cell::new(0);
        let check = || {
            checks.set(checks.get() + 1);
            Some(session("ST-1"))
        };

        let first = cache.open("cookie", NOW, 0, check);
        let second = cache.open("cookie", NOW + 1, 0, || unreachable!("kept"));

        assert_eq!(checks.get(), 1);
        assert_eq!(first, second);
        assert_eq!(second.expect("kept session").user, "alice");
    }

    #[test]
    fn rejected_cookie_is_not_kept() {
        let mut cache = SessionCache::default();

        assert_eq!(cache.open("forged", NOW, 0, || None), None);

        assert_eq!(cache.len(), (0, 0));
        let opened = cache.open("forged", NOW, 0, || Some(session("ST-1")));
        assert!(opened.is_some());
    }

    #[test]
    fn kept_session_expires() {
        let mut cache = SessionCache::default();
        cache.open("cookie", NOW, 0, || Some(session("ST-1")));

        let after_expiry = cache.open("cookie", NOW + 3600, 0, || unreachable!("kept"));

        assert_eq!(after_expiry, None);
    }

    #[test]
    fn kept_session_honours_idle_timeout() {
        let mut cache = SessionCache::default();
        cache.open("cookie", NOW, 60, || Some(session("ST-1")));

        assert!(cache.open("cookie", NOW + 59, 60, || None).is_some());
        assert_eq!(cache.open("cookie", NOW + 60, 60, || None), None);
    }

    #[test]
    fn other_cookie_value_is_checked() {
        let mut cache = SessionCache::default();
        cache.open("cookie", NOW, 0, || Some(session("ST-1")));

        let other = cache.open("cookie2", NOW, 0, || None);

        assert_eq!(other, None);
    }

    #[test]
    fn identity_is_reused_within_window() {
        let mut cache = SessionCache::default();
        let alice = session("ST-1");

        let first = cache.identity_headers(&alice, NOW, || headers("one"));
        let reused =
            cache.identity_headers(&alice, NOW + ASSERTION_REUSE_SECONDS - 1, || headers("two"));
        let renewed =
            cache.identity_headers(&alice, NOW + ASSERTION_REUSE_SECONDS, || headers("three"));

        assert_eq!(first[0].1, "one");
        assert_eq!(reused[0].1, "one");
        assert_eq!(renewed[0].1, "three");
    }

    #[test]
    fn identity_is_per_session() {
        let mut cache = SessionCache::default();

        cache.identity_headers(&session("ST-1"), NOW, || headers("one"));
        let other = cache.identity_headers(&session("ST-2"), NOW, || headers("two"));

        assert_eq!(other[0].1, "two");
    }

    #[test]
    fn identity_from_the_future_is_not_reused() {
        let mut cache = SessionCache::default();
        let alice = session("ST-1");
        cache.identity_headers(&alice, NOW + 5, || headers("later"));

        let earlier = cache.identity_headers(&alice, NOW, || headers("now"));

        assert_eq!(earlier[0].1, "now");
    }

    #[test]
    fn full_cache_drops_entries() {
        let mut cache = SessionCache::default();
        for index in 0..MAX_ENTRIES {
            let alice = session(&format!("ST-{index}"));
            cache.open(&index.to_string(), NOW, 0, || Some(alice.clone()));
            cache.identity_headers(&alice, NOW, || headers("old"));
        }
        assert_eq!(cache.len(), (MAX_ENTRIES, MAX_ENTRIES));

        let late = NOW + ASSERTION_REUSE_SECONDS;
        cache.open("late", late, 0, || Some(session("ST-late")));
        cache.identity_headers(&session("ST-late"), late, || headers("new"));

        // Every session is still current, so the session map is cleared; every identity
        // is past its reuse time, so those are dropped as expired.
        assert_eq!(cache.len(), (1, 1));
    }
}
