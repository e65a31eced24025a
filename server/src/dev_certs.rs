//! `cas-server dev-certs`: a development CA and a server certificate signed by it, for
//! running the server and its tests over HTTPS on a developer machine.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData,
};
use time::{Duration, OffsetDateTime};
use x509_parser::extensions::GeneralName;
use x509_parser::pem::parse_x509_pem;

pub const CA_CERT_FILE: &str = "ca.pem";
pub const CA_KEY_FILE: &str = "ca-key.pem";
pub const SERVER_CERT_FILE: &str = "server.pem";
pub const SERVER_KEY_FILE: &str = "server-key.pem";

/// Validity of the development CA, in days.
const CA_VALIDITY_DAYS: i64 = 3650;

/// Validity of a server certificate, in days.
const SERVER_VALIDITY_DAYS: i64 = 365;

/// A server certificate that expires sooner than this is replaced, in days.
const RENEW_BEFORE_DAYS: i64 = 7;

/// Errors from creating development certificates.
#[derive(Debug, thiserror::Error)]
pub enum DevCertsError {
    #[error("cannot write {path}: {reason}")]
    Write { path: PathBuf, reason: String },
    #[error("cannot read {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("the existing CA in {path} is unusable ({reason}); move ca.pem and ca-key.pem away to create a new CA")]
    BadCa { path: PathBuf, reason: String },
    #[error("invalid certificate name {name:?}: {reason}")]
    BadName { name: String, reason: String },
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
}

/// Files written or reused by `ensure_dev_certs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevCertsReport {
    pub created_ca: bool,
    pub created_server_cert: bool,
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

impl DevCertsReport {
    /// Returns the files this run wrote, each with a description, in writing order.
    pub fn written_files(&self) -> Vec<(&Path, &'static str)> {
        let mut written = Vec::new();
        if self.created_ca {
            written.push((
                self.ca_cert.as_path(),
                "development CA certificate; trust it in clients",
            ));
            written.push((
                self.ca_key.as_path(),
                "development CA private key, mode 0600",
            ));
        }
        if self.created_server_cert {
            written.push((self.server_cert.as_path(), "server certificate chain"));
            written.push((self.server_key.as_path(), "server private key, mode 0600"));
        }
        written
    }
}

/// Creates the CA in `out` unless it exists, and a server certificate for `names` unless
/// a valid one for exactly those names, signed by that CA, already exists.
pub fn ensure_dev_certs(out: &Path, names: &[String]) -> Result<DevCertsReport, DevCertsError> {
    check_names(names)?;
    fs::create_dir_all(out).map_err(|e| write_error(out, e))?;

    let (ca_pem, ca_key, created_ca) = load_or_create_ca(out)?;
    let server_cert = out.join(SERVER_CERT_FILE);
    let server_key = out.join(SERVER_KEY_FILE);

    let reusable = !created_ca && server_cert_is_current(&server_cert, &server_key, &ca_pem, names);
    if !reusable {
        create_server_cert(out, names, &ca_pem, ca_key)?;
    }

    Ok(DevCertsReport {
        created_ca,
        created_server_cert: !reusable,
        ca_cert: out.join(CA_CERT_FILE),
        ca_key: out.join(CA_KEY_FILE),
        server_cert,
        server_key,
    })
}

fn check_names(names: &[String]) -> Result<(), DevCertsError> {
    if names.is_empty() {
        return Err(DevCertsError::BadName {
            name: String::new(),
            reason: "give at least one --name".into(),
        });
    }
    for name in names {
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(DevCertsError::BadName {
                name: name.clone(),
                reason: "names are host names or IP addresses".into(),
            });
        }
    }
    Ok(())
}

fn load_or_create_ca(out: &Path) -> Result<(String, KeyPair, bool), DevCertsError> {
    let cert_path = out.join(CA_CERT_FILE);
    let key_path = out.join(CA_KEY_FILE);
    if cert_path.exists() && key_path.exists() {
        let cert_pem = read(&cert_path)?;
        let key = KeyPair::from_pem(&read(&key_path)?).map_err(|e| DevCertsError::BadCa {
            path: key_path.clone(),
            reason: e.to_string(),
        })?;
        return Ok((cert_pem, key, false));
    }

    let key = KeyPair::generate()?;
    let cert = ca_params().self_signed(&key)?;
    write_file(&cert_path, cert.pem().as_bytes(), 0o644)?;
    write_file(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
    Ok((cert.pem(), key, true))
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "CAS server development CA");
    params.distinguished_name = name;

    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params, CA_VALIDITY_DAYS);
    params
}

fn create_server_cert(
    out: &Path,
    names: &[String],
    ca_pem: &str,
    ca_key: KeyPair,
) -> Result<(), DevCertsError> {
    let issuer = Issuer::from_ca_cert_pem(ca_pem, ca_key).map_err(|e| DevCertsError::BadCa {
        path: out.join(CA_CERT_FILE),
        reason: e.to_string(),
    })?;

    let mut params =
        CertificateParams::new(names.to_vec()).map_err(|e| DevCertsError::BadName {
            name: names.join(","),
            reason: e.to_string(),
        })?;
    let mut subject = DistinguishedName::new();
    subject.push(DnType::CommonName, names[0].clone());
    params.distinguished_name = subject;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, SERVER_VALIDITY_DAYS);

    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;

    // The chain file carries the CA after the leaf so that clients that trust the CA
    // by a different path still see the full chain.
    let chain = format!("{}{}", cert.pem(), ca_pem);
    write_file(&out.join(SERVER_CERT_FILE), chain.as_bytes(), 0o644)?;
    write_file(
        &out.join(SERVER_KEY_FILE),
        key.serialize_pem().as_bytes(),
        0o600,
    )
}

// Backdated by a day so that a clock slightly behind still accepts a fresh certificate.
fn set_validity(params: &mut CertificateParams, days: i64) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(days);
}

/// Checks whether the existing server certificate names exactly `names`, is valid for at least
/// a week, was signed by the CA and matches the key file.
fn server_cert_is_current(
    cert_path: &Path,
    key_path: &Path,
    ca_pem: &str,
    names: &[String],
) -> bool {
    let (Ok(cert_pem), Ok(key_pem)) = (fs::read(cert_path), fs::read_to_string(key_path)) else {
        return false;
    };
    let (Ok((_, leaf_pem)), Ok((_, ca_pem))) =
        (parse_x509_pem(&cert_pem), parse_x509_pem(ca_pem.as_bytes()))
    else {
        return false;
    };
    let (Ok(leaf), Ok(ca)) = (leaf_pem.parse_x509(), ca_pem.parse_x509()) else {
        return false;
    };
    let Ok(key) = KeyPair::from_pem(&key_pem) else {
        return false;
    };

    let signed_by_ca = leaf.verify_signature(Some(ca.public_key())).is_ok();
    let key_matches = leaf.public_key().raw == key.subject_public_key_info().as_slice();
    let lasts = leaf
        .validity()
        .time_to_expiration()
        .is_some_and(|left| left > Duration::days(RENEW_BEFORE_DAYS));
    signed_by_ca && key_matches && lasts && certificate_names(&leaf) == requested_names(names)
}

/// Names in a comparable form: DNS names lower-cased, IP addresses in canonical text.
fn requested_names(names: &[String]) -> BTreeSet<String> {
    names
        .iter()
        .map(|name| match name.parse::<IpAddr>() {
            Ok(ip) => format!("ip:{ip}"),
            Err(_) => format!("dns:{}", name.to_ascii_lowercase()),
        })
        .collect()
}

fn certificate_names(cert: &x509_parser::certificate::X509Certificate<'_>) -> BTreeSet<String> {
    let Ok(Some(extension)) = cert.subject_alternative_name() else {
        return BTreeSet::new();
    };
    extension
        .value
        .general_names
        .iter()
        .filter_map(general_name_text)
        .collect()
}

fn general_name_text(name: &GeneralName<'_>) -> Option<String> {
    match name {
        GeneralName::DNSName(dns) => Some(format!("dns:{}", dns.to_ascii_lowercase())),
        GeneralName::IPAddress(bytes) => ip_from_bytes(bytes).map(|ip| format!("ip:{ip}")),
        _ => None,
    }
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        return Some(IpAddr::from(v4));
    }
    <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from)
}

fn read(path: &Path) -> Result<String, DevCertsError> {
    fs::read_to_string(path).map_err(|e| DevCertsError::Read {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// Writes `contents` to `path` with permission `mode`, also on an existing file.
fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), DevCertsError> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(|e| write_error(path, e))?;

    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(|e| write_error(path, e))?;
    file.write_all(contents).map_err(|e| write_error(path, e))
}

fn write_error(path: &Path, error: std::io::Error) -> DevCertsError {
    DevCertsError::Write {
        path: path.to_owned(),
        reason: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn creates_then_reuses() {
        let folder = tempfile::tempdir().expect("temp dir");
        let wanted = names(&["localhost", "127.0.0.1"]);

        let first = ensure_dev_certs(folder.path(), &wanted).expect("first run");
        let cert_before = fs::read(&first.server_cert).expect("read");
        let second = ensure_dev_certs(folder.path(), &wanted).expect("second run");

        assert!(first.created_ca);
        assert!(first.created_server_cert);
        assert!(!second.created_ca);
        assert!(!second.created_server_cert);
        assert_eq!(fs::read(&second.server_cert).expect("read"), cert_before);
    }

    #[test]
    fn keys_are_private() {
        let folder = tempfile::tempdir().expect("temp dir");
        let report = ensure_dev_certs(folder.path(), &names(&["localhost"])).expect("run");

        for key in [folder.path().join(CA_KEY_FILE), report.server_key] {
            let mode = fs::metadata(&key).expect("metadata").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", key.display());
        }
    }

    #[test]
    fn new_names_make_new_cert_with_same_ca() {
        let folder = tempfile::tempdir().expect("temp dir");
        ensure_dev_certs(folder.path(), &names(&["localhost"])).expect("first");
        let ca_before = fs::read(folder.path().join(CA_CERT_FILE)).expect("read");

        let report =
            ensure_dev_certs(folder.path(), &names(&["localhost", "::1"])).expect("second");

        assert!(!report.created_ca);
        assert!(report.created_server_cert);
        assert_eq!(
            fs::read(folder.path().join(CA_CERT_FILE)).expect("read"),
            ca_before
        );
    }

    #[test]
    fn ip_names_become_ip_sans() {
        let folder = tempfile::tempdir().expect("temp dir");
        let report =
            ensure_dev_certs(folder.path(), &names(&["localhost", "127.0.0.1"])).expect("run");

        let pem = fs::read(report.server_cert).expect("read");
        let (_, leaf) = parse_x509_pem(&pem).expect("pem");
        let cert = leaf.parse_x509().expect("x509");
        let found = certificate_names(&cert);

        assert!(found.contains("ip:127.0.0.1"), "{found:?}");
        assert!(found.contains("dns:localhost"), "{found:?}");
    }

    #[test]
    fn chain_and_key_load_into_rustls() {
        let folder = tempfile::tempdir().expect("temp dir");
        let report = ensure_dev_certs(folder.path(), &names(&["localhost"])).expect("run");

        assert!(crate::tls::load_server_config(&report.server_cert, &report.server_key).is_ok());
    }

    #[test]
    fn empty_names_are_rejected() {
        let folder = tempfile::tempdir().expect("temp dir");

        assert!(matches!(
            ensure_dev_certs(folder.path(), &[]),
            Err(DevCertsError::BadName { .. })
        ));
        assert!(matches!(
            ensure_dev_certs(folder.path(), &names(&["a b"])),
            Err(DevCertsError::BadName { .. })
        ));
    }
}
