//! The edge session: who signed in and until when, carried in a signed (not encrypted)
//! cookie so the filter needs no storage.

use cas_core::signing::{open_token, sign_token, KeyRing, SigningKey};
use cas_core::validation::Attributes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How far a session's `iat` may lie in the future, in seconds, to absorb clock skew
/// between Workers instances.
const ISSUED_AT_LEEWAY_SECONDS: u64 = 60;

/// Largest cookie value the filter sets, in bytes. Browsers keep cookies up to about
/// 4096 bytes including name and attributes, so a bigger session is issued without attributes.
pub const MAX_COOKIE_VALUE_BYTES: usize = 3800;

/// The claims of a session cookie. Times are seconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub user: String,
    #[serde(default)]
    pub attributes: Attributes,
    pub iat: u64,
    pub exp: u64,
    /// Session id: a digest of the service ticket that started the session, so logs can
    /// correlate a session with CAS records without the ticket itself.
    pub sid: String,
    /// Last time the cookie was refreshed, for the idle timeout. Cookies from before this
    /// field existed have 0, which counts as `iat`.
    #[serde(default)]
    pub seen: u64,
    /// Whether the session started with a `renew=true` validation: a fresh login.
    #[serde(default)]
    pub renewed: bool,
}

impl Session {
    /// Starts a session for `user` at `now`, lasting `ttl` seconds.
    pub fn start(user: String, attributes: Attributes, ticket: &str, now: u64, ttl: u64) -> Self {
        Self {
            user,
            attributes,
            iat: now,
            exp: now.saturating_add(ttl),
            sid: session_id(ticket),
            seen: now,
            renewed: false,
        }
    }

    /// Returns whether the session is usable at `now`: not expired, not issued in the
    /// future, and, when `idle` is not 0, used within the last `idle` seconds.
    pub fn is_current(&self, now: u64, idle: u64) -> bool {
        let started = self.iat <= now.saturating_add(ISSUED_AT_LEEWAY_SECONDS);
        let active = idle == 0 || now < self.last_seen().saturating_add(idle);
        started && active && now < self.exp && !self.user.is_empty()
    }

    /// Returns whether the cookie should be issued again at `now` to push the idle timeout
    /// back: more than half of the `idle` window has passed since it was last refreshed.
    pub fn needs_refresh(&self, now: u64, idle: u64) -> bool {
        idle != 0 && now.saturating_sub(self.last_seen()) > idle / 2
    }

    /// Returns the seconds until the hard expiry at `now`.
    pub fn remaining(&self, now: u64) -> u64 {
        self.exp.saturating_sub(now)
    }

    fn last_seen(&self) -> u64 {
        self.seen.max(self.iat)
    }
}

/// Derives the session id of a service ticket: the first 16 bytes of its SHA-256, in hex.
pub fn session_id(ticket: &str) -> String {
    let digest = Sha256::digest(ticket.as_bytes());
    hex::encode(&digest[..16])
}

/// Signs `session` into a cookie value. A session whose value would exceed
/// [`MAX_COOKIE_VALUE_BYTES`] is signed without its attributes, and the second result is then `true`.
pub fn seal(key: &SigningKey, session: &Session) -> (String, bool) {
    let value = sign_session(key, session);
    if value.len() <= MAX_COOKIE_VALUE_BYTES {
        return (value, false);
    }

    let trimmed = Session {
        attributes: Attributes::new(),
        ..session.clone()
    };
    (sign_session(key, &trimmed), true)
}

fn sign_session(key: &SigningKey, session: &Session) -> String {
    // serde_json fails only on non-string map keys or failing Serialize impls, and this
    // struct has neither.
    let payload = serde_json::to_vec(session).unwrap_or_default();
    sign_token(key, &payload)
}

/// Opens the session in a cookie value. Returns `None` when no key of `keys` signed it, it
/// does not parse, or it is not current at `now` with idle timeout `idle` (0 for none).
pub fn open(keys: &KeyRing, value: &str, now: u64, idle: u64) -> Option<Session> {
    let payload = open_token(keys, value)?;
    let session: Session = serde_json::from_slice(&payload).ok()?;
    session.is_current(now, idle).then_some(session)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(fill: char) -> SigningKey {
        SigningKey::from_secret(&fill.to_string().repeat(40)).expect("long enough")
    }

    fn alice(now: u64) -> Session {
        let mut attributes = Attributes::new();
        attributes.insert("memberOf".into(), vec!["staff".into()]);
        Session::start("alice".into(), attributes, "ST-1-abc", now, 3600)
    }

    #[test]
    fn sealed_session_opens() {
        let (value, trimmed) = seal(&key('s'), &alice(1_000));

        assert!(!trimmed);
        assert_eq!(
            open(&KeyRing::new(key('s'), None), &value, 1_500, 0),
            Some(alice(1_000))
        );
    }

    #[test]
    fn expired_session_is_ignored() {
        let (value, _) = seal(&key('s'), &alice(1_000));
        let ring = KeyRing::new(key('s'), None);

        assert!(open(&ring, &value, 4_599, 0).is_some());
        assert_eq!(open(&ring, &value, 4_600, 0), None);
    }

    #[test]
    fn future_session_is_ignored() {
        let (value, _) = seal(&key('s'), &alice(10_000));
        let ring = KeyRing::new(key('s'), None);

        assert!(open(&ring, &value, 10_000 - ISSUED_AT_LEEWAY_SECONDS, 0).is_some());
        assert_eq!(
            open(&ring, &value, 10_000 - ISSUED_AT_LEEWAY_SECONDS - 1, 0),
            None
        );
    }

    #[test]
    fn foreign_key_session_is_ignored() {
        let (value, _) = seal(&key('x'), &alice(1_000));

        assert_eq!(open(&KeyRing::new(key('s'), None), &value, 1_500, 0), None);
    }

    #[test]
    fn tampered_session_is_ignored() {
        let (value, _) = seal(&key('s'), &alice(1_000));
        let ring = KeyRing::new(key('s'), None);
        let mut forged = value.clone().into_bytes();
        forged[3] = if forged[3] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).expect("ascii");

        for value in [
            forged.as_str(),
            "",
            "garbage",
            "a.b",
            &value[..value.len() - 1],
        ] {
            assert_eq!(open(&ring, value, 1_500, 0), None, "{value}");
        }
    }

    #[test]
    fn signed_non_session_is_ignored() {
        let value = sign_token(&key('s'), b"{\"user\":\"alice\"}");

        assert_eq!(open(&KeyRing::new(key('s'), None), &value, 1_500, 0), None);
    }

    #[test]
    fn previous_key_still_opens_after_rotation() {
        let (old_value, _) = seal(&key('o'), &alice(1_000));
        let rotated = KeyRing::new(key('n'), Some(key('o')));

        assert_eq!(open(&rotated, &old_value, 1_500, 0), Some(alice(1_000)));
        assert_eq!(
            open(&KeyRing::new(key('n'), None), &old_value, 1_500, 0),
            None
        );
    }

    #[test]
    fn oversized_session_drops_attributes() {
        let mut session = alice(1_000);
        session
            .attributes
            .insert("blob".into(), vec!["x".repeat(MAX_COOKIE_VALUE_BYTES)]);

        let (value, trimmed) = seal(&key('s'), &session);
        let opened = open(&KeyRing::new(key('s'), None), &value, 1_500, 0).expect("opens");

        assert!(trimmed);
        assert!(value.len() <= MAX_COOKIE_VALUE_BYTES);
        assert_eq!(opened.user, "alice");
        assert!(opened.attributes.is_empty());
    }

    #[test]
    fn session_id_is_stable_and_hides_ticket() {
        let sid = session_id("ST-1-abc");

        assert_eq!(sid, session_id("ST-1-abc"));
        assert_ne!(sid, session_id("ST-2-abc"));
        assert_eq!(sid.len(), 32);
        assert!(!sid.contains("ST-1"));
    }

    #[test]
    fn idle_session_expires_before_hard_expiry() {
        let (value, _) = seal(&key('s'), &alice(1_000));
        let ring = KeyRing::new(key('s'), None);

        assert!(open(&ring, &value, 1_599, 600).is_some());
        assert_eq!(open(&ring, &value, 1_600, 600), None);
        assert!(open(&ring, &value, 1_600, 0).is_some());
    }

    #[test]
    fn refresh_after_half_idle_window() {
        let mut session = alice(1_000);

        assert!(!session.needs_refresh(1_300, 600));
        assert!(session.needs_refresh(1_301, 600));
        assert!(!session.needs_refresh(1_301, 0));
        session.seen = 1_301;
        assert!(!session.needs_refresh(1_500, 600));
        assert!(session.is_current(1_900, 600));
    }

    #[test]
    fn cookie_without_new_fields_opens() {
        let old = br#"{"user":"alice","iat":1000,"exp":4600,"sid":"x"}"#;
        let value = sign_token(&key('s'), old);

        let session = open(&KeyRing::new(key('s'), None), &value, 1_500, 600).expect("opens");
        assert_eq!(session.seen, 0);
        assert!(!session.renewed);
        assert_eq!(
            open(&KeyRing::new(key('s'), None), &value, 1_600, 600),
            None
        );
    }
}
