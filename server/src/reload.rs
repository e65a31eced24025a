//! Reloading on SIGHUP, without a restart: the service registry from the configuration
//! file, and the TLS certificate and key from their files. Other settings need a
//! restart.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cas_core::registry::{RegisteredService, ServiceDefinition, ServiceRegistry};
use tokio::signal::unix::{signal, SignalKind};
use tokio::task::JoinHandle;

use crate::app::App;
use crate::config::ConfigLayer;
use crate::theme::check_logo_files;
use crate::tls::ReloadableCertificate;

/// Reads the services of the configuration file as at start: the file's list, or the
/// built-in default services when the file has none. Logo files are looked up in
/// `theme_dir`, the directory the server started with. Returns every problem found.
pub fn read_registry(
    path: &Path,
    theme_dir: Option<&Path>,
) -> Result<ServiceRegistry, Vec<String>> {
    let file = ConfigLayer::from_toml_file(path).map_err(|error| vec![error.to_string()])?;
    let services = ConfigLayer::defaults()
        .overridden_by(file)
        .services
        .unwrap_or_default();

    let mut problems = service_problems(&services);
    if let Err(problem) = check_logo_files(theme_dir, &services) {
        problems.push(format!("theme_dir {:?}: {}", problem.value, problem.fix));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    ServiceRegistry::from_definitions(&services).map_err(|error| vec![error.to_string()])
}

/// Checks each service definition on its own, so that every problem is reported, not
/// only the first.
fn service_problems(services: &[ServiceDefinition]) -> Vec<String> {
    if services.is_empty() {
        return vec!["services: the list is empty; add at least one [[services]] table".into()];
    }

    let mut problems = Vec::new();
    let mut ids = HashSet::new();
    for definition in services {
        if !ids.insert(definition.id.as_str()) {
            problems.push(format!("service id {} appears twice", definition.id));
        }
        if let Err(error) = RegisteredService::from_definition(definition) {
            problems.push(error.to_string());
        }
    }
    problems
}

/// Replaces the app's registry with the file's services, or keeps the current one and
/// logs each problem. Returns whether the registry was replaced.
pub fn reload_services(app: &App, path: &Path) -> bool {
    match read_registry(path, app.config.theme_dir.as_deref()) {
        Ok(registry) => {
            let services = registry.len();
            app.replace_registry(registry);
            tracing::info!(path = %path.display(), services, "service registry reloaded");
            true
        }
        Err(problems) => {
            for problem in &problems {
                tracing::error!(path = %path.display(), %problem, "invalid service configuration");
            }
            tracing::warn!(path = %path.display(), problems = problems.len(), "service registry not reloaded; the previous services stay in use");
            false
        }
    }
}

/// Replaces the TLS certificate and key with the current content of their files, or
/// keeps the current pair and logs why. Returns whether the pair was replaced.
pub fn reload_certificate(certificate: &ReloadableCertificate) -> bool {
    let path = certificate.cert_path().display();
    match certificate.reload() {
        Ok(()) => {
            let fingerprint = certificate.fingerprint();
            tracing::info!(%path, sha256 = %fingerprint, "TLS certificate reloaded");
            true
        }
        Err(error) => {
            tracing::error!(%path, %error, "TLS certificate not reloaded; the previous certificate stays in use");
            false
        }
    }
}

/// Starts a task that, on every SIGHUP, reloads the TLS certificate and, when the
/// server was started with a configuration file at `config_path`, the services from
/// it. Returns `None` when the signal cannot be watched, which is logged.
pub fn spawn_reload_on_hangup(
    app: Arc<App>,
    config_path: Option<PathBuf>,
    certificate: Arc<ReloadableCertificate>,
) -> Option<JoinHandle<()>> {
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(hangups) => hangups,
        Err(error) => {
            tracing::warn!(%error, "cannot watch SIGHUP; services and the TLS certificate reload only with a restart");
            return None;
        }
    };

    Some(tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            tracing::info!("SIGHUP received; reloading");
            reload_certificate(&certificate);
            if let Some(path) = &config_path {
                reload_services(&app, path);
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let folder = tempfile::tempdir().expect("temp dir");
        let path = folder.path().join("cas.toml");
        std::fs::write(&path, text).expect("write");
        (folder, path)
    }

    #[test]
    fn file_services_are_read() {
        let (_folder, path) = write(
            "[[services]]\nid = \"a\"\nname = \"A\"\nmatch = \"prefix\"\npattern = \"https://a.example/\"\n",
        );

        let registry = read_registry(&path, None).expect("valid");

        assert_eq!(registry.len(), 1);
    }

    #[test]
    fn every_problem_is_listed() {
        let (_folder, path) = write(concat!(
            "[[services]]\nid = \"a\"\nname = \"A\"\nmatch = \"regex\"\npattern = \"(\"\n",
            "[[services]]\nid = \"a\"\nname = \"A\"\nmatch = \"prefix\"\npattern = \"https://a/\"\n",
            "[[services]]\nid = \"c\"\nname = \"C\"\nmatch = \"glob\"\npattern = \"x\"\n",
        ));

        let problems = read_registry(&path, None).expect_err("invalid");

        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("regular expression"), "{problems:?}");
        assert!(problems[1].contains("appears twice"), "{problems:?}");
        assert!(problems[2].contains("glob"), "{problems:?}");
    }

    #[test]
    fn unreadable_file_is_one_problem() {
        let (_folder, path) = write("services = 3\n");

        let problems = read_registry(&path, None).expect_err("invalid");

        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("cas.toml"), "{problems:?}");
    }
}
