//! Logo files of the per-service themes: checked at configuration load and on reload,
//! and read for the `{base_path}/themes/` endpoint. Logos come only from `theme_dir`, so
//! the pages' Content-Security-Policy keeps `img-src 'self'`. A symbolic link in
//! `theme_dir` is followed only when its target is inside `theme_dir` too, so write
//! access to the directory does not expose other files the server can read.

use std::path::{Path, PathBuf};

use tokio::io::AsyncReadExt;

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
        check_logo_file(directory, name)?;
    }
    Ok(())
}

fn check_logo_file(directory: &Path, name: &str) -> Result<(), LogoProblem> {
    let path = directory.join(name);
    let problem = |fix: String| LogoProblem {
        value: directory.display().to_string(),
        fix,
    };

    let resolved = match locate(directory, &path) {
        Located::Inside(resolved) => resolved,
        Located::Missing => {
            return Err(problem(format!(
                "the logo file {} is missing",
                path.display()
            )))
        }
        Located::Outside(target) => {
            return Err(problem(format!(
                "the logo file {} is a symbolic link to {}, outside theme_dir; copy the file into theme_dir",
                path.display(),
                target.display()
            )))
        }
    };
    let size = std::fs::metadata(&resolved)
        .ok()
        .filter(|metadata| metadata.is_file())
        .map(|metadata| metadata.len());
    match size {
        None => Err(problem(format!(
            "the logo file {} is not a regular file",
            path.display()
        ))),
        Some(bytes) if bytes > MAX_LOGO_BYTES => Err(problem(format!(
            "the logo file {} has {bytes} bytes; the limit is {MAX_LOGO_BYTES}",
            path.display()
        ))),
        Some(_) => Ok(()),
    }
}

/// The target of a logo path after every symbolic link in it is resolved.
enum Located {
    Missing,
    /// The canonical path, inside the canonical theme directory.
    Inside(PathBuf),
    /// The canonical path, outside the theme directory.
    Outside(PathBuf),
}

fn locate(directory: &Path, path: &Path) -> Located {
    let (Ok(directory), Ok(resolved)) = (
        std::fs::canonicalize(directory),
        std::fs::canonicalize(path),
    ) else {
        return Located::Missing;
    };
    match resolved.starts_with(&directory) {
        true => Located::Inside(resolved),
        false => Located::Outside(resolved),
    }
}

/// A logo file read for a response.
pub struct Logo {
    pub media_type: &'static str,
    pub bytes: Vec<u8>,
}

/// Reads the logo `name` from `theme_dir`, or returns `None` when the name is not a
/// plain logo file name, no directory is configured, the file resolves to a path outside
/// the directory, or it cannot be read.
///
/// NOTE: a hard link is a regular file, so a hard link in `theme_dir` to a file elsewhere
/// on the same file system is served.
pub async fn read_logo(theme_dir: Option<&Path>, name: &str) -> Option<Logo> {
    let media_type = logo_media_type(name)?;
    let directory = theme_dir?.to_owned();
    let path = directory.join(name);

    let located = tokio::task::spawn_blocking(move || locate(&directory, &path)).await;
    let path = match located {
        Ok(Located::Inside(resolved)) => resolved,
        Ok(Located::Missing) => return None,
        Ok(Located::Outside(target)) => {
            tracing::warn!(name, target = %target.display(), "logo not served because it links to a file outside theme_dir");
            return None;
        }
        Err(error) => {
            tracing::error!(%error, "logo lookup task failed");
            return None;
        }
    };
    match read_bounded(&path).await {
        Ok(Some(bytes)) => Some(Logo { media_type, bytes }),
        Ok(None) => {
            tracing::warn!(path = %path.display(), "logo is not a regular file or too large");
            None
        }
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "failed to read logo file");
            None
        }
    }
}

/// Reads a regular file of at most [`MAX_LOGO_BYTES`], or returns `None` for another
/// kind of file or a longer one. The limit applies to the bytes read, not only to the
/// size in the metadata, because files such as those in /proc report a size of 0.
async fn read_bounded(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    let file = tokio::fs::File::open(path).await?;
    if !file.metadata().await?.is_file() {
        return Ok(None);
    }

    let mut bytes = Vec::new();
    file.take(MAX_LOGO_BYTES + 1)
        .read_to_end(&mut bytes)
        .await?;
    if bytes.len() as u64 > MAX_LOGO_BYTES {
        return Ok(None);
    }
    Ok(Some(bytes))
}
