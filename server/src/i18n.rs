//! Page texts of the server in Simplified Chinese and English.

pub use cas_core::language::{choose_language, Language};

/// Access to the server's page texts for a [`Language`].
pub trait LanguageTexts {
    /// Returns the page texts in this language.
    fn texts(self) -> &'static Texts;
}

impl LanguageTexts for Language {
    fn texts(self) -> &'static Texts {
        match self {
            Self::English => &ENGLISH,
            Self::SimplifiedChinese => &CHINESE,
        }
    }
}

/// Every text the pages show, in one language.
pub struct Texts {
    pub login_title: &'static str,
    pub login_heading: &'static str,
    /// Start of the heading "Sign in to <service name>".
    pub login_to_service: &'static str,
    pub username_label: &'static str,
    pub password_label: &'static str,
    pub submit_label: &'static str,
    pub warn_label: &'static str,
    pub post_title: &'static str,
    pub post_message: &'static str,
    pub continue_label: &'static str,
    pub confirm_title: &'static str,
    pub confirm_message: &'static str,
    pub confirm_reason: &'static str,
    pub confirm_expired: &'static str,
    pub bad_credentials: &'static str,
    pub missing_fields: &'static str,
    pub bad_login_ticket: &'static str,
    pub login_cookie_missing: &'static str,
    pub throttled: &'static str,
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
    pub uri_too_long: &'static str,
    pub head_too_large: &'static str,
    pub unavailable: &'static str,
}

static ENGLISH: Texts = Texts {
    login_title: "Sign in",
    login_heading: "Central sign-in",
    login_to_service: "Sign in to",
    username_label: "User name",
    password_label: "Password",
    submit_label: "Sign in",
    warn_label: "Warn me before signing me in to other sites",
    post_title: "Continue to the application",
    post_message:
        "Your browser is taking you to the application. If nothing happens, press Continue.",
    continue_label: "Continue",
    confirm_title: "Confirm sign-in",
    confirm_message: "You are about to be signed in to",
    confirm_reason: "You asked to be warned before being signed in to other sites.",
    confirm_expired: "This confirmation has expired or was already used. Please confirm again.",
    bad_credentials: "The user name or password is incorrect.",
    missing_fields: "Enter your user name and password.",
    bad_login_ticket: "The sign-in form has expired, was already used or was opened in another browser. Please try again.",
    login_cookie_missing: "The sign-in form did not come back with its browser cookie. Allow cookies for this site and sign in from the same browser that opened the form.",
    throttled: "Too many failed sign-in attempts. Please wait a few minutes before you try again.",
    logged_in_title: "Signed in",
    logged_in_message:
        "You are signed in. You can now open the applications that use this sign-in service.",
    logout_link: "Sign out",
    logged_out_title: "Signed out",
    logged_out_message: "You have been signed out. Applications that accept single logout have ended your session too. Close your browser to end it in any others.",
    error_title: "Request rejected",
    service_not_allowed:
        "The application you came from is not registered with this sign-in service.",
    service_invalid: "The application address in the request is not a valid http or https URL.",
    bad_request: "The request is invalid.",
    not_found: "This page does not exist.",
    method_not_allowed: "This request method is not allowed here.",
    body_too_large: "The submitted form is too large.",
    uri_too_long: "The requested address is too long.",
    head_too_large: "The request headers are too large. Clearing this site's cookies may help.",
    unavailable: "The sign-in service is temporarily unavailable. Please try again later.",
};

static CHINESE: Texts = Texts {
    login_title: "登录",
    login_heading: "统一身份认证",
    login_to_service: "登录到",
    username_label: "用户名",
    password_label: "密码",
    submit_label: "登录",
    warn_label: "登录其他网站前提醒我",
    post_title: "继续前往应用",
    post_message: "浏览器正在将您转到应用。如果页面没有跳转，请点击“继续”。",
    continue_label: "继续",
    confirm_title: "确认登录",
    confirm_message: "您即将登录",
    confirm_reason: "您要求在登录其他网站前收到提醒。",
    confirm_expired: "此确认已过期或已被使用，请重新确认。",
    bad_credentials: "用户名或密码错误。",
    missing_fields: "请输入用户名和密码。",
    bad_login_ticket: "登录表单已过期、已被使用或是在其他浏览器中打开的，请重试。",
    login_cookie_missing:
        "提交登录表单时缺少浏览器 Cookie。请允许本站使用 Cookie，并在打开表单的同一浏览器中登录。",
    throttled: "登录失败次数过多，请等待几分钟后再试。",
    logged_in_title: "已登录",
    logged_in_message: "您已成功登录，现在可以访问使用本认证服务的应用。",
    logout_link: "退出登录",
    logged_out_title: "已退出",
    logged_out_message:
        "您已退出登录。支持单点注销的应用也已结束您的会话。请关闭浏览器，以结束其他应用中的会话。",
    error_title: "请求被拒绝",
    service_not_allowed: "您访问的应用未在本认证服务中注册。",
    service_invalid: "请求中的应用地址不是有效的 http 或 https 网址。",
    bad_request: "请求无效。",
    not_found: "页面不存在。",
    method_not_allowed: "此处不允许该请求方法。",
    body_too_large: "提交的表单过大。",
    uri_too_long: "请求的地址过长。",
    head_too_large: "请求头过大。清除本网站的 Cookie 可能有帮助。",
    unavailable: "认证服务暂时不可用，请稍后再试。",
};
