//! HTML pages of the demo origin, in Simplified Chinese or English.

/// Language of a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    ZhCn,
    En,
}

impl Lang {
    /// Picks the preferred supported language of an `Accept-Language` header (RFC 9110
    /// weights), English when the header names neither Chinese nor English.
    pub fn from_accept_language(header: Option<&str>) -> Self {
        let mut best = (Lang::En, 0.0_f32);
        for entry in header.unwrap_or_default().split(',') {
            let mut parts = entry.split(';');
            let tag = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let weight =
                parts.find_map(|part| part.trim().strip_prefix("q=")).map_or(Some(1.0), |q| q.trim().parse().ok());

            let lang = match tag.split('-').next() {
                Some("zh") => Lang::ZhCn,
                Some("en") => Lang::En,
                _ => continue,
            };
            if let Some(weight) = weight.filter(|weight: &f32| *weight > best.1) {
                best = (lang, weight);
            }
        }
        best.0
    }

    /// Returns the BCP 47 tag, for `lang` and `Content-Language`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::ZhCn => "zh-CN",
            Lang::En => "en",
        }
    }
}

/// Renders the page for a verified user, showing the name and the requested path.
///
/// The page also lists every `X-CAS-User` value the origin received, so a reader (or a test)
/// can see that the edge sent exactly one copy and dropped those the browser forged.
pub fn identity_page(lang: Lang, user: &str, path: &str, user_headers: &[String]) -> String {
    let (title, user_label, path_label, headers_label) = match lang {
        Lang::ZhCn => ("演示源站", "已验证用户：", "请求路径：", "收到的 X-CAS-User 请求头："),
        Lang::En => ("Demo origin", "Verified user: ", "Requested path: ", "X-CAS-User headers received: "),
    };
    let received: Vec<String> = user_headers.iter().map(|value| format!("<li>{}</li>", escape_html(value))).collect();
    let body = format!(
        "<p>{user_label}<strong id=\"user\">{}</strong></p><p>{path_label}<code id=\"path\">{}</code></p>\
         <p>{headers_label}</p><ul id=\"user-headers\">{}</ul>",
        escape_html(user),
        escape_html(path),
        received.concat()
    );
    document(lang, title, &body)
}

/// Renders the page for a request without a valid assertion.
pub fn unauthorized_page(lang: Lang) -> String {
    let (title, message) = match lang {
        Lang::ZhCn => ("未认证", "此请求没有来自边缘过滤器的有效身份断言，请通过网站地址访问并登录。"),
        Lang::En => ("Not authenticated", "This request has no valid identity assertion from the edge filter. Open the site through its public address and sign in."),
    };
    document(lang, title, &format!("<p>{message}</p>"))
}

fn document(lang: Lang, title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><h1>{title}</h1>{body}</body></html>\n",
        lang.code()
    )
}

/// Escapes text for HTML element content and double-quoted attribute values.
pub fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_chinese() {
        assert_eq!(Lang::from_accept_language(Some("zh-CN,zh;q=0.9,en;q=0.5")), Lang::ZhCn);
        assert_eq!(Lang::from_accept_language(Some("en-US,zh;q=0.5")), Lang::En);
        assert_eq!(Lang::from_accept_language(None), Lang::En);
    }

    #[test]
    fn identity_page_escapes_user_and_path() {
        let page = identity_page(Lang::En, "<script>x</script>", "/a\"b", &["<i>".to_owned()]);

        assert!(page.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(page.contains("/a&quot;b"));
        assert!(page.contains("<li>&lt;i&gt;</li>"));
        assert!(!page.contains("<script>"));
    }

    #[test]
    fn pages_follow_language() {
        assert!(identity_page(Lang::ZhCn, "张三", "/", &[]).contains("已验证用户"));
        assert!(unauthorized_page(Lang::En).contains("Not authenticated"));
    }
}
