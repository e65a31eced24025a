//! Page language: the choice from the Accept-Language header (RFC 9110, section 12.5.4)
//! and the page texts in Simplified Chinese and English.

/// A language the pages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    English,
    SimplifiedChinese,
}

impl Language {
    /// Returns the value of the HTML `lang` attribute.
    pub fn tag(self) -> &'static str {
        match self {
            Self::English => "en",
            Self::SimplifiedChinese => "zh-CN",
        }
    }

    /// Returns the page texts in this language.
    pub fn texts(self) -> &'static Texts {
        match self {
            Self::English => &ENGLISH,
            Self::SimplifiedChinese => &CHINESE,
        }
    }
}

/// Picks the page language from an Accept-Language value: the supported range with the
/// highest quality wins, earlier ranges win ties, and English is the fallback.
/// `zh`, `zh-CN`, `zh-SG` and `zh-Hans…` select Simplified Chinese; `zh-TW`, `zh-HK` and
/// `zh-Hant…` do not, because the pages have no Traditional Chinese text.
pub fn choose_language(accept_language: Option<&str>) -> Language {
    let Some(header) = accept_language else {
        return Language::English;
    };

    let mut best: Option<(u16, Language)> = None;
    for range in header.split(',') {
        let Some((language, quality)) = parse_range(range) else {
            continue;
        };
        if quality > 0 && best.is_none_or(|(best_quality, _)| quality > best_quality) {
            best = Some((quality, language));
        }
    }
    best.map_or(Language::English, |(_, language)| language)
}

/// Parses one range into a supported language and its quality in thousandths, or `None` when the range
/// names no supported language or is malformed.
fn parse_range(range: &str) -> Option<(Language, u16)> {
    let mut parts = range.split(';');
    let tag = parts.next()?.trim().to_ascii_lowercase();
    let language = supported_language(&tag)?;

    let mut quality = 1000;
    for parameter in parts {
        let (name, value) = parameter.trim().split_once('=')?;
        if name.trim() == "q" {
            quality = parse_quality(value.trim())?;
        }
    }
    Some((language, quality))
}

fn supported_language(tag: &str) -> Option<Language> {
    let simplified = ["zh", "zh-cn", "zh-sg", "zh-hans"];
    if simplified.contains(&tag) || tag.starts_with("zh-hans-") {
        return Some(Language::SimplifiedChinese);
    }
    if tag == "en" || tag.starts_with("en-") {
        return Some(Language::English);
    }
    None
}

/// Parses a quality value ("1", "0.8", "0.125") into thousandths.
fn parse_quality(value: &str) -> Option<u16> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }

    let digits = format!("{fraction:0<3}");
    let thousandths: u16 = digits.parse().ok()?;
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// Every text the pages show, in one language.
pub struct Texts {
    pub login_title: &'static str,
    pub login_heading: &'static str,
    pub login_for_service: &'static str,
    pub username_label: &'static str,
    pub password_label: &'static str,
    pub submit_label: &'static str,
    pub bad_credentials: &'static str,
    pub missing_fields: &'static str,
    pub bad_login_ticket: &'static str,
    pub logged_in_title: &'static str,
    pub logged_in_message: &'static str,
    pub logout_link: &'static str,
    pub logged_out_title: &'static str,
    pub logged_out_message: &'static str,
    pub error_title: &'static str,
    pub service_not_allowed: &'static str,
    pub service_invalid: &'static str,
    pub bad_request: &'static str,
    pub not_found: &'static str,
    pub method_not_allowed: &'static str,
    pub body_too_large: &'static str,
    pub unavailable: &'static str,
}

static ENGLISH: Texts = Texts {
    login_title: "Sign in",
    login_heading: "Central sign-in",
    login_for_service: "You are signing in to",
    username_label: "User name",
    password_label: "Password",
    submit_label: "Sign in",
    bad_credentials: "The user name or password is incorrect.",
    missing_fields: "Enter your user name and password.",
    bad_login_ticket: "The sign-in form has expired or was already used. Please try again.",
    logged_in_title: "Signed in",
    logged_in_message: "You are signed in. You can now open the applications that use this sign-in service.",
    logout_link: "Sign out",
    logged_out_title: "Signed out",
    logged_out_message: "You have been signed out. Close your browser to end every application session.",
    error_title: "Request rejected",
    service_not_allowed: "The application you came from is not registered with this sign-in service.",
    service_invalid: "The application address in the request is not a valid http or https URL.",
    bad_request: "The request is invalid.",
    not_found: "This page does not exist.",
    method_not_allowed: "This request method is not allowed here.",
    body_too_large: "The submitted form is too large.",
    unavailable: "The sign-in service is temporarily unavailable. Please try again later.",
};

static CHINESE: Texts = Texts {
    login_title: "登录",
    login_heading: "统一身份认证",
    login_for_service: "您正在登录",
    username_label: "用户名",
    password_label: "密码",
    submit_label: "登录",
    bad_credentials: "用户名或密码错误。",
    missing_fields: "请输入用户名和密码。",
    bad_login_ticket: "登录表单已过期或已被使用，请重试。",
    logged_in_title: "已登录",
    logged_in_message: "您已成功登录，现在可以访问使用本认证服务的应用。",
    logout_link: "退出登录",
    logged_out_title: "已退出",
    logged_out_message: "您已退出登录。请关闭浏览器以结束所有应用的会话。",
    error_title: "请求被拒绝",
    service_not_allowed: "您访问的应用未在本认证服务中注册。",
    service_invalid: "请求中的应用地址不是有效的 http 或 https 网址。",
    bad_request: "请求无效。",
    not_found: "页面不存在。",
    method_not_allowed: "此处不允许该请求方法。",
    body_too_large: "提交的表单过大。",
    unavailable: "认证服务暂时不可用，请稍后再试。",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_tags_select_chinese() {
        for header in ["zh", "zh-CN", "zh-Hans", "zh-Hans-CN", "ZH-cn", "zh-CN,zh;q=0.9,en;q=0.8"] {
            assert_eq!(choose_language(Some(header)), Language::SimplifiedChinese, "{header}");
        }
    }

    #[test]
    fn other_tags_select_english() {
        for header in ["en", "en-US,en;q=0.9", "fr-FR", "zh-TW", "zh-Hant", "*", "", "de;q=1,zh;q=0"] {
            assert_eq!(choose_language(Some(header)), Language::English, "{header}");
        }
        assert_eq!(choose_language(None), Language::English);
    }

    #[test]
    fn quality_decides_order() {
        assert_eq!(choose_language(Some("en;q=0.5, zh-CN;q=0.8")), Language::SimplifiedChinese);
        assert_eq!(choose_language(Some("zh;q=0.5, en;q=0.8")), Language::English);
        assert_eq!(choose_language(Some("fr, zh-CN;q=0.3, en;q=0.2")), Language::SimplifiedChinese);
        assert_eq!(choose_language(Some("en, zh")), Language::English);
    }

    #[test]
    fn malformed_ranges_are_skipped() {
        assert_eq!(choose_language(Some("zh;q=2, en")), Language::English);
        assert_eq!(choose_language(Some("zh;q=abc")), Language::English);
        assert_eq!(choose_language(Some("zh;q=0.1234")), Language::English);
        assert_eq!(choose_language(Some(";;;,zh-CN;;q")), Language::English);
    }

    #[test]
    fn quality_parses_thousandths() {
        assert_eq!(parse_quality("1"), Some(1000));
        assert_eq!(parse_quality("1.000"), Some(1000));
        assert_eq!(parse_quality("0.8"), Some(800));
        assert_eq!(parse_quality("0.125"), Some(125));
        assert_eq!(parse_quality("0"), Some(0));
        assert_eq!(parse_quality("1.5"), None);
    }
}
