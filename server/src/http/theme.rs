//! `GET {base_path}/themes/{file}`: the logo files of the per-service themes.

use http::{Response, StatusCode};

use super::pages;
use super::response::{self, Body};
use crate::app::App;
use crate::i18n::Language;
use crate::theme::read_logo;

/// Path below the base path under which logo files are served.
pub const THEMES_PATH: &str = "themes/";

/// Serves the logo `name` from the theme directory, or a 404 page.
pub async fn logo(app: &App, name: &str, language: Language) -> Response<Body> {
    match read_logo(app.config.theme_dir.as_deref(), name).await {
        Some(logo) => response::image(logo.media_type, logo.bytes),
        None => pages::error(language, StatusCode::NOT_FOUND, |t| t.not_found),
    }
}
