//! Redirect loop protection: a short-lived cookie counts the login redirects of one
//! browser, so a browser that never keeps the session cookie gets an error page instead
//! of bouncing between the site and CAS forever.

use crate::cookies::{cookie_values, expired_cookie, filter_cookie};

/// Window in which login redirects are counted, in seconds.
pub const WINDOW_SECONDS: u64 = 60;

/// Login redirects allowed within [`WINDOW_SECONDS`]; the next one shows the error page.
pub const MAX_REDIRECTS: u32 = 3;

/// Whether another login redirect may happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoopCheck {
    /// Redirect, and set this `Set-Cookie` value to count the redirect.
    Allow(String),
    /// Too many redirects in the window: show the error page.
    Tripped,
}

/// Counts one more login redirect at `now` in the cookie `name` of a request with this
/// `Cookie` header.
pub fn count_redirect(
    name: &str,
    cookie_header: Option<&str>,
    now: u64,
    domain: Option<&str>,
) -> LoopCheck {
    let (count, started) = cookie_header
        .and_then(|header| cookie_values(header, name).into_iter().next())
        .and_then(parse)
        .filter(|(_, started)| *started <= now && now - started < WINDOW_SECONDS)
        .unwrap_or((0, now));

    if count >= MAX_REDIRECTS {
        return LoopCheck::Tripped;
    }
    let remaining = WINDOW_SECONDS - (now - started);
    let value = format!("{}.{started}", count + 1);
    LoopCheck::Allow(filter_cookie(name, &value, remaining, domain))
}

/// Returns the `Set-Cookie` value that resets the count after a successful sign-in.
pub fn reset(name: &str, domain: Option<&str>) -> String {
    expired_cookie(name, domain)
}

fn parse(value: &str) -> Option<(u32, u64)> {
    let (count, started) = value.split_once('.')?;
    Some((count.parse().ok()?, started.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: &str = "cas_edge_redirects";

    fn cookie_of(check: &LoopCheck) -> String {
        let LoopCheck::Allow(set_cookie) = check else {
            panic!("expected Allow, got {check:?}");
        };
        set_cookie.split(';').next().expect("pair").to_owned()
    }

    #[test]
    fn fourth_redirect_in_window_trips() {
        let first = count_redirect(NAME, None, 1_000, None);
        let second = count_redirect(NAME, Some(&cookie_of(&first)), 1_010, None);
        let third = count_redirect(NAME, Some(&cookie_of(&second)), 1_020, None);
        let fourth = count_redirect(NAME, Some(&cookie_of(&third)), 1_030, None);

        assert_eq!(cookie_of(&third), "cas_edge_redirects=3.1000");
        assert_eq!(fourth, LoopCheck::Tripped);
    }

    #[test]
    fn count_restarts_after_window() {
        let cookie = "cas_edge_redirects=3.1000";

        assert_eq!(
            count_redirect(NAME, Some(cookie), 1_059, None),
            LoopCheck::Tripped
        );
        assert_eq!(
            cookie_of(&count_redirect(NAME, Some(cookie), 1_060, None)),
            "cas_edge_redirects=1.1060"
        );
    }

    #[test]
    fn cookie_expires_with_window() {
        let first = count_redirect(NAME, None, 1_000, None);
        let LoopCheck::Allow(set_cookie) =
            count_redirect(NAME, Some(&cookie_of(&first)), 1_045, None)
        else {
            panic!("allowed");
        };

        assert!(set_cookie.ends_with("Max-Age=15"), "{set_cookie}");
    }

    #[test]
    fn garbage_and_future_cookies_count_as_none() {
        for cookie in [
            "cas_edge_redirects=x",
            "cas_edge_redirects=9.99999",
            "cas_edge_redirects=",
        ] {
            assert_eq!(
                cookie_of(&count_redirect(NAME, Some(cookie), 1_000, None)),
                "cas_edge_redirects=1.1000",
                "{cookie}"
            );
        }
    }
}
