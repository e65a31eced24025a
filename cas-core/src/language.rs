//! Page language: Simplified Chinese or English, chosen from the Accept-Language header
//! (RFC 9110, section 12.5.4). The server, the edge filter and the demo origin share it.

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

    /// Parses the value of the `lang` query parameter or the language cookie. Only the
    /// exact tags that [`Language::tag`] returns are accepted, so nothing else a client
    /// sends can reach a page or a header.
    pub fn from_tag(tag: &str) -> Option<Self> {
        match tag {
            "en" => Some(Self::English),
            "zh-CN" => Some(Self::SimplifiedChinese),
            _ => None,
        }
    }

    /// Returns the language that the language switch link offers.
    pub fn other(self) -> Self {
        match self {
            Self::English => Self::SimplifiedChinese,
            Self::SimplifiedChinese => Self::English,
        }
    }

    /// Returns the name of the language in that language, the label of a link to it.
    pub fn native_name(self) -> &'static str {
        match self {
            Self::English => "English",
            Self::SimplifiedChinese => "简体中文",
        }
    }
}

/// Picks the page language by precedence: an explicit `lang` parameter, then the
/// language cookie, then the Accept-Language header, then English. An unsupported
/// parameter or cookie value is skipped as if it were absent.
pub fn choose_page_language(
    parameter: Option<&str>,
    cookie: Option<&str>,
    accept_language: Option<&str>,
) -> Language {
    parameter
        .and_then(Language::from_tag)
        .or_else(|| cookie.and_then(Language::from_tag))
        .unwrap_or_else(|| choose_language(accept_language))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_tags_select_chinese() {
        for header in [
            "zh",
            "zh-CN",
            "zh-Hans",
            "zh-Hans-CN",
            "ZH-cn",
            "zh-CN,zh;q=0.9,en;q=0.8",
        ] {
            assert_eq!(
                choose_language(Some(header)),
                Language::SimplifiedChinese,
                "{header}"
            );
        }
    }

    #[test]
    fn other_tags_select_english() {
        for header in [
            "en",
            "en-US,en;q=0.9",
            "fr-FR",
            "zh-TW",
            "zh-Hant",
            "*",
            "",
            "de;q=1,zh;q=0",
        ] {
            assert_eq!(choose_language(Some(header)), Language::English, "{header}");
        }
        assert_eq!(choose_language(None), Language::English);
    }

    #[test]
    fn quality_decides_order() {
        assert_eq!(
            choose_language(Some("en;q=0.5, zh-CN;q=0.8")),
            Language::SimplifiedChinese
        );
        assert_eq!(
            choose_language(Some("zh;q=0.5, en;q=0.8")),
            Language::English
        );
        assert_eq!(
            choose_language(Some("fr, zh-CN;q=0.3, en;q=0.2")),
            Language::SimplifiedChinese
        );
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
    fn only_exact_tags_parse() {
        assert_eq!(Language::from_tag("en"), Some(Language::English));
        assert_eq!(
            Language::from_tag("zh-CN"),
            Some(Language::SimplifiedChinese)
        );
        for tag in [
            "",
            "EN",
            "zh",
            "zh-cn",
            "zh-TW",
            "en-US",
            "fr",
            "en\r\nX: y",
            "<b>",
        ] {
            assert_eq!(Language::from_tag(tag), None, "{tag:?}");
        }
    }

    #[test]
    fn page_language_precedence() {
        let chinese = Language::SimplifiedChinese;
        let english = Language::English;

        assert_eq!(
            choose_page_language(Some("en"), Some("zh-CN"), Some("zh")),
            english
        );
        assert_eq!(
            choose_page_language(None, Some("zh-CN"), Some("en")),
            chinese
        );
        assert_eq!(choose_page_language(None, None, Some("zh")), chinese);
        assert_eq!(choose_page_language(None, None, None), english);
        assert_eq!(
            choose_page_language(Some("fr"), Some("zh-CN"), None),
            chinese
        );
        assert_eq!(
            choose_page_language(Some("xx"), Some("yy"), Some("zh")),
            chinese
        );
    }

    #[test]
    fn switch_offers_the_other_language() {
        assert_eq!(Language::English.other(), Language::SimplifiedChinese);
        assert_eq!(Language::SimplifiedChinese.other().native_name(), "English");
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
