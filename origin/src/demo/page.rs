//! HTML pages of the demo origin, in Simplified Chinese or English.

use cas_core::html::escape_html;
use cas_core::language::Language;
use cas_core::validation::Attributes;

/// Headers and cookies the origin received besides the verified identity, shown so a
/// reader (or a test) can see what the edge forwarded.
#[derive(Debug, Clone, Default)]
pub struct Received {
    /// Every `X-CAS-User` value.
    pub user_headers: Vec<String>,
    /// Every `X-CAS-Attr-*` header, as lowercase name and value.
    pub attribute_headers: Vec<(String, String)>,
    /// The names of the cookies in the `Cookie` header.
    pub cookie_names: Vec<String>,
}

/// Renders the page for a verified user, showing the name, the requested path and the
/// attributes of the assertion.
///
/// The page also lists every `X-CAS-User` value the origin received, so a reader (or a test)
/// can see that the edge sent exactly one copy and dropped those the browser forged.
pub fn identity_page(
    lang: Language,
    user: &str,
    path: &str,
    attributes: &Attributes,
    received: &Received,
) -> String {
    let (title, user_label, path_label, headers_label) = match lang {
        Language::SimplifiedChinese => (
            "演示源站",
            "已验证用户：",
            "请求路径：",
            "收到的 X-CAS-User 请求头：",
        ),
        Language::English => (
            "Demo origin",
            "Verified user: ",
            "Requested path: ",
            "X-CAS-User headers received: ",
        ),
    };
    let user_headers: Vec<String> = received
        .user_headers
        .iter()
        .map(|value| format!("<li>{}</li>", escape_html(value)))
        .collect();
    let attributes: Vec<String> = attributes
        .iter()
        .map(|(name, values)| {
            format!(
                "<li>{}={}</li>",
                escape_html(name),
                escape_html(&values.join("|"))
            )
        })
        .collect();
    let body = format!(
        "<p>{user_label}<strong id=\"user\">{}</strong></p><p>{path_label}<code id=\"path\">{}</code></p>\
         <p>{headers_label}</p><ul id=\"user-headers\">{}</ul><ul id=\"attributes\">{}</ul>{}",
        escape_html(user),
        escape_html(path),
        user_headers.concat(),
        attributes.concat(),
        received_lists(received),
    );
    document(lang, title, &body)
}

/// Renders the page of a public path for a request without a valid assertion.
pub fn anonymous_page(lang: Language, path: &str, received: &Received) -> String {
    let title = match lang {
        Language::SimplifiedChinese => "公开页面（匿名）",
        Language::English => "Public page (anonymous)",
    };
    let body = format!(
        "<p id=\"anonymous\"><code id=\"path\">{}</code></p>{}",
        escape_html(path),
        received_lists(received)
    );
    document(lang, title, &body)
}

fn received_lists(received: &Received) -> String {
    let headers: Vec<String> = received
        .attribute_headers
        .iter()
        .map(|(name, value)| format!("<li>{}: {}</li>", escape_html(name), escape_html(value)))
        .collect();
    let cookies: Vec<String> = received
        .cookie_names
        .iter()
        .map(|name| format!("<li>{}</li>", escape_html(name)))
        .collect();
    format!(
        "<ul id=\"attribute-headers\">{}</ul><ul id=\"cookie-names\">{}</ul>",
        headers.concat(),
        cookies.concat()
    )
}

/// Renders the page for a request without a valid assertion.
pub fn unauthorized_page(lang: Language) -> String {
    let (title, message) = match lang {
        Language::SimplifiedChinese => ("未认证", "此请求没有来自边缘过滤器的有效身份断言，请通过网站地址访问并登录。"),
        Language::English => ("Not authenticated", "This request has no valid identity assertion from the edge filter. Open the site through its public address and sign in."),
    };
    document(lang, title, &format!("<p>{message}</p>"))
}

fn document(lang: Language, title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><h1>{title}</h1>{body}</body></html>\n",
        lang.tag()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_page_escapes_user_and_path() {
        let received = Received {
            user_headers: vec!["<i>".to_owned()],
            ..Default::default()
        };
        let page = identity_page(
            Language::English,
            "<script>x</script>",
            "/a\"b",
            &Attributes::new(),
            &received,
        );

        assert!(page.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(page.contains("/a&quot;b"));
        assert!(page.contains("<li>&lt;i&gt;</li>"));
        assert!(!page.contains("<script>"));
    }

    #[test]
    fn pages_follow_language() {
        let page = identity_page(
            Language::SimplifiedChinese,
            "张三",
            "/",
            &Attributes::new(),
            &Received::default(),
        );
        assert!(page.contains("已验证用户"));
        assert!(
            anonymous_page(Language::English, "/public/", &Received::default())
                .contains("anonymous")
        );
        assert!(unauthorized_page(Language::English).contains("Not authenticated"));
    }
}
