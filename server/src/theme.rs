//! Logo files of the per-service themes: checked at configuration load and on reload,
//! and read for the `{base_path}/themes/` endpoint. Logos come only from `theme_dir`, so
//! the pages' Content-Security-Policy keeps `img-src 'self'`.

use std::path::{Path, PathBuf};

use cas_core::registry::{logo_names, ServiceDefinition};
use cas_core::theme::logo_media_type;

/// Largest logo file served, in bytes.
pub const MAX_LOGO_BYTES: u64 = 512 * 1024;

/// A logo problem found at configuration load: the offending value and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoProblem {
    pub value: String,
    pub fix: String,
}

/// Checks that every `theme_logo` of `services` is a file in `theme_dir`. The names
/// themselves were checked with the registry.
pub fn check_logo_files(
    theme_dir: Option<&Path>,
    services: &[ServiceDefinition],
) -> Result<(), LogoProblem> {
    let names = logo_names(services);
    let Some(first) = names.iter().next() else {
        return Ok(());
    };
    let Some(directory) = theme_dir else {
        return Err(LogoProblem {
            value: "(unset)".into(),
            fix: format!("a service sets theme_logo = {first:?}; set theme_dir to the directory that contains the logo files"),
        });
    };

    for name in names {
        let path = directory.join(name);
        let size = std::fs::metadata(&path)
            .ok()
            .filter(|metadata| metadata.is_file())
            .map(|metadata| metadata.len());
        match size {
            None => {
                return Err(LogoProblem {
                    value: directory.display().to_string(),
                    fix: format!(
                        "the logo file {} is missing or not a regular file",
                        path.display()
                    ),
                })
            }
            Some(bytes) if bytes > MAX_LOGO_BYTES => {
                return Err(LogoProblem {
                    value: directory.display().to_string(),
                    fix: format!(
                        "the logo file {} has {bytes} bytes; the limit is {MAX_LOGO_BYTES}",
                        path.display()
                    ),
                })
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// A logo file read for a response.
pub struct Logo {
    pub media_type: &'static str,
    pub bytes: Vec<u8>,
}

/// Reads the logo `name` from `theme_dir`, or returns `None` when the name is not a
/// plain logo file name, no directory is configured or the file cannot be read.
pub async fn read_logo(theme_dir: Option<&Path>, name: &str) -> Option<Logo> {
    let media_type = logo_media_type(name)?;
    let path: PathBuf = theme_dir?.join(name);

    let metadata = tokio::fs::metadata(&path).await.ok()?;
    if !metadata.is_file() || metadata.len() > MAX_LOGO_BYTES {
        tracing::warn!(path = %path.display(), "logo is missing, not a regular file or too large");
        return None;
    }
    match tokio::fs::read(&path).await {
        Ok(bytes) => Some(Logo { media_type, bytes }),
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "failed to read logo file");
            None
        }
    }
}
