//! The short HTML pages the filter serves itself, in Simplified Chinese or English
//! according to `Accept-Language`.

use cas_core::html::escape_html;
use cas_core::language::Language;

use crate::reply::Reply;

/// The pages the filter can serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Page {
    /// 400: the request URL cannot be a service URL (too long, or not a valid URL).
    BadRequest,
    /// 400: the request path has a form that origins may read as another path (an
    /// encoded dot segment, slash or control character, or a second layer of escapes),
    /// so no path rule can be applied to it.
    AmbiguousPath,
    /// 403: CAS rejected the ticket. `retry_url` is the service URL, which starts a new login.
    TicketRejected { retry_url: String },
    /// 403: the user lacks an attribute value that the path rule requires.
    Forbidden,
    /// 429: too many login redirects in a short time, usually because the browser does
    /// not keep the session cookie.
    RedirectLoop,
    /// 500: settings are missing or invalid. Only the names are shown, never values.
    Misconfigured { settings: Vec<&'static str> },
    /// 502: CAS could not be reached or sent no usable validation response.
    CasUnavailable,
    /// 502: the origin could not be reached.
    OriginUnavailable,
    /// 503: a single logout could not be stored, so CAS should retry it.
    RevocationFailed,
    /// 503: the list of revoked sessions could not be read, so the session cookie is
    /// not trusted.
    SessionCheckFailed,
}

impl Page {
    /// Returns the HTTP status of the page.
    pub fn status(&self) -> u16 {
        match self {
            Page::BadRequest | Page::AmbiguousPath => 400,
            Page::TicketRejected { .. } | Page::Forbidden => 403,
            Page::RedirectLoop => 429,
            Page::Misconfigured { .. } => 500,
            Page::CasUnavailable | Page::OriginUnavailable => 502,
            Page::RevocationFailed | Page::SessionCheckFailed => 503,
        }
    }

    /// Renders the page as a response in `lang`.
    pub fn render(&self, lang: Language) -> Reply {
        let (title, message) = self.text(lang);
        let detail = self.detail(lang);
        let body = format!(
            "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\
             <body><h1>{title}</h1><p>{message}</p>{detail}</body></html>\n",
            lang.tag()
        );

        Reply {
            status: self.status(),
            headers: page_headers(lang),
            body,
        }
    }

    fn text(&self, lang: Language) -> (&'static str, &'static str) {
        match (self, lang) {
            (Page::BadRequest, Language::SimplifiedChinese) => ("请求无效", "此请求地址无法用作登录的服务地址。"),
            (Page::BadRequest, Language::English) => {
                ("Bad request", "This request URL cannot be used as a sign-in service URL.")
            }
            (Page::AmbiguousPath, Language::SimplifiedChinese) => ("请求无效", "此请求路径可能被网站服务器解读为另一个路径（例如编码的点、斜杠或控制字符，或经过两次编码），因此无法按访问规则检查。"),
            (Page::AmbiguousPath, Language::English) => (
                "Bad request",
                "This request path may be read as a different path by the site's server (for example an encoded dot, slash or control character, or a second layer of percent-encoding), so the access rules cannot be applied to it.",
            ),
            (Page::TicketRejected { .. }, Language::SimplifiedChinese) => ("登录验证失败", "登录票据无效或已过期。"),
            (Page::TicketRejected { .. }, Language::English) => {
                ("Sign-in failed", "The sign-in ticket is invalid or has expired.")
            }
            (Page::Forbidden, Language::SimplifiedChinese) => ("无权访问", "您已登录，但没有访问此页面的权限。"),
            (Page::Forbidden, Language::English) => {
                ("Access denied", "You are signed in but lack the permission this page requires.")
            }
            (Page::RedirectLoop, Language::SimplifiedChinese) => (
                "登录重定向过多",
                "登录一再被重定向。请确认浏览器允许本站的 Cookie，一分钟后再试。",
            ),
            (Page::RedirectLoop, Language::English) => (
                "Too many sign-in redirects",
                "Sign-in keeps redirecting. Check that your browser accepts cookies from this site, then try again in a minute.",
            ),
            (Page::RevocationFailed, Language::SimplifiedChinese) => ("注销失败", "暂时无法记录注销，请稍后重试。"),
            (Page::RevocationFailed, Language::English) => {
                ("Logout failed", "The logout could not be recorded. Try again later.")
            }
            (Page::SessionCheckFailed, Language::SimplifiedChinese) => ("无法确认登录状态", "暂时无法确认您的登录会话是否仍然有效，请稍后重试。"),
            (Page::SessionCheckFailed, Language::English) => (
                "Session check failed",
                "Your sign-in session could not be checked. Try again later.",
            ),
            (Page::Misconfigured { .. }, Language::SimplifiedChinese) => ("配置错误", "网站的登录过滤器配置有误，以下设置缺失或无效："),
            (Page::Misconfigured { .. }, Language::English) => (
                "Configuration error",
                "The sign-in filter of this site is misconfigured. These settings are missing or invalid:",
            ),
            (Page::CasUnavailable, Language::SimplifiedChinese) => ("登录服务不可用", "暂时无法向登录服务器验证登录，请稍后重试。"),
            (Page::CasUnavailable, Language::English) => (
                "Sign-in service unavailable",
                "The sign-in could not be verified with the sign-in server. Try again later.",
            ),
            (Page::OriginUnavailable, Language::SimplifiedChinese) => ("网站暂时不可用", "无法连接到网站服务器，请稍后重试。"),
            (Page::OriginUnavailable, Language::English) => {
                ("Site unavailable", "The site's server could not be reached. Try again later.")
            }
        }
    }

    fn detail(&self, lang: Language) -> String {
        match self {
            Page::TicketRejected { retry_url } => {
                let label = if lang == Language::SimplifiedChinese {
                    "重新登录"
                } else {
                    "Sign in again"
                };
                format!("<p><a href=\"{}\">{label}</a></p>", escape_html(retry_url))
            }
            Page::Misconfigured { settings } => {
                let items: Vec<String> = settings
                    .iter()
                    .map(|name| format!("<li><code>{}</code></li>", escape_html(name)))
                    .collect();
                format!("<ul>{}</ul>", items.concat())
            }
            Page::BadRequest
            | Page::AmbiguousPath
            | Page::Forbidden
            | Page::RedirectLoop
            | Page::CasUnavailable
            | Page::OriginUnavailable
            | Page::RevocationFailed
            | Page::SessionCheckFailed => String::new(),
        }
    }
}

fn page_headers(lang: Language) -> Vec<(String, String)> {
    [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Language", lang.tag()),
        ("Vary", "Accept-Language"),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
        ("Content-Security-Policy", "default-src 'none'"),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_have_status_and_language() {
        let reply = Page::CasUnavailable.render(Language::SimplifiedChinese);

        assert_eq!(reply.status, 502);
        assert_eq!(reply.header("content-language"), Some("zh-CN"));
        assert!(reply.body.contains("登录服务不可用"));
    }

    #[test]
    fn ambiguous_path_page_differs_from_bad_url() {
        let ambiguous = Page::AmbiguousPath.render(Language::SimplifiedChinese);
        let bad_url = Page::BadRequest.render(Language::SimplifiedChinese);

        assert_eq!(ambiguous.status, 400);
        assert!(ambiguous.body.contains("无法按访问规则检查"));
        assert!(!bad_url.body.contains("无法按访问规则检查"));
    }

    #[test]
    fn rejected_page_escapes_retry_url() {
        let page = Page::TicketRejected {
            retry_url: "http://a/?x=\"><script>".to_owned(),
        };
        let reply = page.render(Language::English);

        assert_eq!(reply.status, 403);
        assert!(reply
            .body
            .contains("href=\"http://a/?x=&quot;&gt;&lt;script&gt;\""));
    }

    #[test]
    fn misconfigured_page_lists_settings() {
        let page = Page::Misconfigured {
            settings: vec!["CAS_LOGIN_URL", "SESSION_KEY"],
        };
        let reply = page.render(Language::English);

        assert_eq!(reply.status, 500);
        assert!(reply.body.contains("<code>CAS_LOGIN_URL</code>"));
        assert!(reply.body.contains("<code>SESSION_KEY</code>"));
    }
}
