//! The ticket-granting cookie (TGC): reading it from requests and setting or expiring
//! it. Also the warn cookie, which requests a confirmation before single sign-on.

use http::header::{HeaderMap, HeaderValue, COOKIE};

/// Name of the cookie that carries the ticket-granting ticket.
pub const TGC_NAME: &str = "TGC";

/// Maximum number of TGC values read from one request. Each value costs a ticket store
/// lookup, so without a limit one request with thousands of cookies would cost
/// thousands of lookups.
pub const MAX_TGC_VALUES: usize = 8;

/// Returns the first [`MAX_TGC_VALUES`] TGC values in the request's Cookie headers, in
/// order. A browser can send several when cookies with other paths or domains share the
/// name.
pub fn tgc_values(headers: &HeaderMap) -> Vec<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == TGC_NAME)
        .map(|(_, value)| value.trim_matches('"'))
        .take(MAX_TGC_VALUES)
        .collect()
}

/// Builds the `Set-Cookie` value that stores `ticket` for the base path. It lives for the
/// browser session; the server ends it earlier when the SSO session expires.
pub fn set_tgc(ticket: &str, path: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{TGC_NAME}={ticket}; Path={}; Secure; HttpOnly; SameSite=Lax",
        cookie_path(path)
    ))
    .ok()
}

/// Builds the `Set-Cookie` value that removes the TGC, with the attributes it was set with.
pub fn expire_tgc(path: &str) -> Option<HeaderValue> {
    let value = format!(
        "{TGC_NAME}=; Path={}; Secure; HttpOnly; SameSite=Lax; Max-Age=0",
        cookie_path(path)
    );
    HeaderValue::from_str(&value).ok()
}

/// Name of the cookie that a login with `warn` set leaves, as Apereo CAS names it.
pub const WARN_COOKIE_NAME: &str = "CASPRIVACY";

/// Returns whether the request carries the warn cookie.
pub fn has_warn_cookie(headers: &HeaderMap) -> bool {
    cookie_values(headers, WARN_COOKIE_NAME).any(|value| value == "true")
}

/// Builds the `Set-Cookie` value of the warn cookie. Only `/login` under the base path
/// reads it, so its path is that endpoint. It lives for the browser session.
pub fn set_warn_cookie(base_path: &str) -> Option<HeaderValue> {
    let value =
        format!("{WARN_COOKIE_NAME}=true; Path={base_path}/login; Secure; HttpOnly; SameSite=Lax");
    HeaderValue::from_str(&value).ok()
}

/// Builds the `Set-Cookie` value that removes the warn cookie.
pub fn expire_warn_cookie(base_path: &str) -> Option<HeaderValue> {
    let value = format!(
        "{WARN_COOKIE_NAME}=; Path={base_path}/login; Secure; HttpOnly; SameSite=Lax; Max-Age=0"
    );
    HeaderValue::from_str(&value).ok()
}

/// Name of the cookie that binds a login form to the browser that opened it.
pub const LOGIN_COOKIE_NAME: &str = "CASLOGIN";

/// Returns the login cookie values of the request that have the form of a value this
/// server sets: lowercase hex of [`LOGIN_COOKIE_BYTES`] bytes.
pub fn login_cookie_values(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    cookie_values(headers, LOGIN_COOKIE_NAME).filter(|value| {
        value.len() == 2 * LOGIN_COOKIE_BYTES
            && value
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Random bytes in a login cookie value.
pub const LOGIN_COOKIE_BYTES: usize = 32;

/// Builds the `Set-Cookie` value of the login cookie. Only `/login` under the base path
/// reads it, and it ends with the login tickets it binds, after `max_age_seconds`.
pub fn set_login_cookie(value: &str, base_path: &str, max_age_seconds: u64) -> Option<HeaderValue> {
    let value = format!(
        "{LOGIN_COOKIE_NAME}={value}; Path={base_path}/login; Max-Age={max_age_seconds}; Secure; HttpOnly; SameSite=Lax"
    );
    HeaderValue::from_str(&value).ok()
}

/// Name of the cookie that keeps the language a user picked with the language switch.
pub const LANGUAGE_COOKIE_NAME: &str = "CASLANG";

/// Lifetime of the language cookie: a year, in seconds.
pub const LANGUAGE_COOKIE_MAX_AGE: u64 = 365 * 24 * 60 * 60;

/// Returns the first language cookie value of the request, unchecked.
pub fn language_cookie_value(headers: &HeaderMap) -> Option<&str> {
    cookie_values(headers, LANGUAGE_COOKIE_NAME).next()
}

/// Builds the `Set-Cookie` value of the language cookie. `tag` is a tag that
/// `Language::tag` returned, never a value from the request.
pub fn set_language_cookie(tag: &'static str, base_path: &str) -> Option<HeaderValue> {
    let value = format!(
        "{LANGUAGE_COOKIE_NAME}={tag}; Path={}; Max-Age={LANGUAGE_COOKIE_MAX_AGE}; Secure; HttpOnly; SameSite=Lax",
        cookie_path(base_path)
    );
    HeaderValue::from_str(&value).ok()
}

fn cookie_values<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(move |(cookie, _)| *cookie == name)
        .map(|(_, value)| value.trim_matches('"'))
}

fn cookie_path(base_path: &str) -> &str {
    if base_path.is_empty() {
        "/"
    } else {
        base_path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_tgc() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("a=1; TGC=TGT-one; b=2"));
        headers.append(COOKIE, HeaderValue::from_static("TGC=\"TGT-two\""));

        assert_eq!(tgc_values(&headers), vec!["TGT-one", "TGT-two"]);
    }

    #[test]
    fn reads_at_most_max_tgc_values() {
        let line: Vec<String> = (0..1000).map(|i| format!("TGC=TGT-{i}")).collect();
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_str(&line.join("; ")).expect("header"),
        );

        let values = tgc_values(&headers);

        assert_eq!(values.len(), MAX_TGC_VALUES);
        assert_eq!(values[0], "TGT-0");
    }

    #[test]
    fn ignores_similar_names() {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_static("XTGC=x; TGCX=y; tgc=z"));

        assert!(tgc_values(&headers).is_empty());
    }

    #[test]
    fn warn_cookie_is_narrow() {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_static("TGC=x; CASPRIVACY=true"));

        assert!(has_warn_cookie(&headers));
        assert_eq!(
            set_warn_cookie("/cas").expect("valid"),
            "CASPRIVACY=true; Path=/cas/login; Secure; HttpOnly; SameSite=Lax"
        );
        assert_eq!(
            expire_warn_cookie("").expect("valid"),
            "CASPRIVACY=; Path=/login; Secure; HttpOnly; SameSite=Lax; Max-Age=0"
        );
    }

    #[test]
    fn login_cookie_is_narrow_and_checked() {
        let good = "ab".repeat(LOGIN_COOKIE_BYTES);
        let line = format!(
            "CASLOGIN=short; CASLOGIN={good}; CASLOGIN={}",
            "AB".repeat(32)
        );
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_str(&line).expect("valid"));

        assert_eq!(
            login_cookie_values(&headers).collect::<Vec<_>>(),
            vec![good.as_str()]
        );
        assert_eq!(
            set_login_cookie("v", "/cas", 600).expect("valid"),
            "CASLOGIN=v; Path=/cas/login; Max-Age=600; Secure; HttpOnly; SameSite=Lax"
        );
    }

    #[test]
    fn language_cookie_attributes() {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static("XCASLANG=en; CASLANG=zh-CN"),
        );

        assert_eq!(language_cookie_value(&headers), Some("zh-CN"));
        assert_eq!(
            set_language_cookie("en", "/cas").expect("valid"),
            "CASLANG=en; Path=/cas; Max-Age=31536000; Secure; HttpOnly; SameSite=Lax"
        );
        assert_eq!(
            set_language_cookie("zh-CN", "").expect("valid"),
            "CASLANG=zh-CN; Path=/; Max-Age=31536000; Secure; HttpOnly; SameSite=Lax"
        );
    }

    #[test]
    fn cookie_attributes() {
        let set = set_tgc("TGT-abc", "/cas").expect("valid");
        let expire = expire_tgc("").expect("valid");

        assert_eq!(
            set,
            "TGC=TGT-abc; Path=/cas; Secure; HttpOnly; SameSite=Lax"
        );
        assert_eq!(
            expire,
            "TGC=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0"
        );
    }
}
