//! Per-service look of the login page: an accent colour and a logo file. Both are checked
//! strictly at configuration load, so a page can put them into its `<style>` element and
//! markup without loosening the Content-Security-Policy.

/// An accent colour written as `#rgb` or `#rrggbb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccentColor {
    red: u8,
    green: u8,
    blue: u8,
}

impl AccentColor {
    /// Parses `#rgb` or `#rrggbb` with hexadecimal digits in either case. Every other
    /// form, named colours and `rgb()` included, is rejected.
    pub fn parse(text: &str) -> Option<Self> {
        let digits = text.strip_prefix('#')?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }

        let channel = |hex: &str| u8::from_str_radix(hex, 16).ok();
        match digits.len() {
            3 => {
                let doubled: Vec<String> = digits.chars().map(|c| format!("{c}{c}")).collect();
                Some(Self {
                    red: channel(&doubled[0])?,
                    green: channel(&doubled[1])?,
                    blue: channel(&doubled[2])?,
                })
            }
            6 => Some(Self {
                red: channel(&digits[0..2])?,
                green: channel(&digits[2..4])?,
                blue: channel(&digits[4..6])?,
            }),
            _ => None,
        }
    }

    /// Returns the colour as `#rrggbb` in lowercase.
    pub fn css(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.red, self.green, self.blue)
    }

    /// Returns the text colour for a button filled with this colour: black or white,
    /// whichever has the higher contrast ratio as WCAG 2.1 defines it.
    pub fn text_css(self) -> &'static str {
        let background = self.relative_luminance();
        let with_white = 1.05 / (background + 0.05);
        let with_black = (background + 0.05) / 0.05;
        if with_white >= with_black {
            "#ffffff"
        } else {
            "#000000"
        }
    }

    /// Relative luminance as WCAG 2.1 defines it, from 0 (black) to 1 (white).
    fn relative_luminance(self) -> f64 {
        let linear = |channel: u8| {
            let value = f64::from(channel) / 255.0;
            if value <= 0.039_28 {
                value / 12.92
            } else {
                ((value + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * linear(self.red) + 0.7152 * linear(self.green) + 0.0722 * linear(self.blue)
    }
}

/// File name extensions a logo may have, with the media type it is served as.
pub const LOGO_TYPES: [(&str, &str); 5] = [
    ("png", "image/png"),
    ("svg", "image/svg+xml"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("webp", "image/webp"),
];

/// Longest accepted logo file name, in bytes.
pub const MAX_LOGO_NAME_BYTES: usize = 100;

/// Returns the media type of a logo file name, or `None` when the name is not a plain
/// file name: ASCII letters, digits, `.`, `_` and `-`, starting with a letter or digit,
/// with one of the [`LOGO_TYPES`] extensions. Such a name cannot leave the theme
/// directory and needs no escaping in a URL path.
pub fn logo_media_type(name: &str) -> Option<&'static str> {
    if name.is_empty() || name.len() > MAX_LOGO_NAME_BYTES {
        return None;
    }
    if !name.as_bytes()[0].is_ascii_alphanumeric() {
        return None;
    }
    let plain = |b: u8| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-';
    if !name.bytes().all(plain) {
        return None;
    }

    let (_, extension) = name.rsplit_once('.')?;
    let extension = extension.to_ascii_lowercase();
    LOGO_TYPES
        .iter()
        .find(|(known, _)| *known == extension)
        .map(|(_, media_type)| *media_type)
}

/// The look of the login page for one service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Theme {
    pub color: Option<AccentColor>,
    /// File name of the logo in the server's theme directory.
    pub logo: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_parse_strictly() {
        assert_eq!(
            AccentColor::parse("#1f5fbf").map(AccentColor::css),
            Some("#1f5fbf".into())
        );
        assert_eq!(
            AccentColor::parse("#ABC").map(AccentColor::css),
            Some("#aabbcc".into())
        );
        for bad in [
            "",
            "#",
            "1f5fbf",
            "#12",
            "#1234",
            "#12345",
            "#1234567",
            "#ggg",
            "red",
            "rgb(1,2,3)",
            "#fff;",
            "#fff}body{",
            " #fff",
            "#fff ",
            "#+1f5fb",
        ] {
            assert_eq!(AccentColor::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn button_text_keeps_contrast() {
        let text = |colour: &str| AccentColor::parse(colour).expect("valid").text_css();

        assert_eq!(text("#1f5fbf"), "#ffffff");
        assert_eq!(text("#000"), "#ffffff");
        assert_eq!(text("#ffff00"), "#000000");
        assert_eq!(text("#fff"), "#000000");
    }

    #[test]
    fn logo_names_stay_in_their_directory() {
        assert_eq!(logo_media_type("acme.png"), Some("image/png"));
        assert_eq!(logo_media_type("Acme_Logo-2.SVG"), Some("image/svg+xml"));
        assert_eq!(logo_media_type("a.jpeg"), Some("image/jpeg"));
        for bad in [
            "",
            ".png",
            "../a.png",
            "a/b.png",
            "a\\b.png",
            "a.png/",
            "a.gif",
            "a",
            "a.html",
            "a b.png",
            "%2e%2e.png",
            "-a.png",
            "a.png?x",
        ] {
            assert_eq!(logo_media_type(bad), None, "{bad:?}");
        }
        assert_eq!(logo_media_type(&format!("{}.png", "a".repeat(100))), None);
    }
}
