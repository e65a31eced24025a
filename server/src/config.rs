//! Server settings: the layers (built-in defaults, TOML file, environment, command line),
//! their merge, and the checks that turn the merged layer into a [`Config`].

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cas_core::forwarded::{ForwardedHeader, IpNetwork};
use cas_core::registry::{ServiceDefinition, ServiceRegistry};
use serde::{Deserialize, Serialize};

use crate::users::password::{PasswordEncoding, SaltPosition, SaltSource};

/// Default service prefixes: the edge filter under `wrangler dev`, over plain and TLS HTTP.
const DEFAULT_SERVICE_PREFIXES: [&str; 2] = ["http://127.0.0.1:8787/", "https://127.0.0.1:8787/"];

/// One layer of settings. Every field is optional so that a higher layer only overrides
/// what it sets. Field names are the TOML keys. `Serialize` gives the configuration
/// reference test the key names and defaults. An unset field serializes as `null`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigLayer {
    pub listen: Option<String>,
    pub server_name: Option<String>,
    pub base_path: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub database_url: Option<String>,
    pub sqlite_path: Option<PathBuf>,
    pub password_query: Option<String>,
    pub username_query: Option<String>,
    pub attribute_query: Option<String>,
    pub attribute_pairs_query: Option<String>,
    pub password_encoding: Option<String>,
    pub password_salt: Option<String>,
    pub password_salt_position: Option<String>,
    pub password_upgrade: Option<bool>,
    pub password_update_query: Option<String>,
    pub user_add_query: Option<String>,
    pub user_passwd_query: Option<String>,
    pub user_disable_query: Option<String>,
    pub service_ticket_ttl_seconds: Option<u64>,
    pub proxy_ticket_ttl_seconds: Option<u64>,
    pub sso_session_ttl_seconds: Option<u64>,
    pub sso_session_idle_seconds: Option<u64>,
    pub slo_retries: Option<u64>,
    pub throttle_user_failures: Option<u64>,
    pub throttle_address_failures: Option<u64>,
    pub throttle_window_seconds: Option<u64>,
    pub trusted_proxies: Option<Vec<String>>,
    pub forwarded_header: Option<String>,
    pub session_sweep_interval_seconds: Option<u64>,
    pub ticket_store: Option<String>,
    pub memory_max_tickets: Option<u64>,
    pub redis_url: Option<String>,
    pub redis_key_prefix: Option<String>,
    pub redis_pool_size: Option<u64>,
    pub metrics_path: Option<String>,
    pub log_format: Option<String>,
    pub outbound_ca_file: Option<PathBuf>,
    pub theme_dir: Option<PathBuf>,
    pub outbound_timeout_seconds: Option<u64>,
    pub database_timeout_seconds: Option<u64>,
    pub max_connections: Option<u64>,
    pub services: Option<Vec<ServiceDefinition>>,
}

impl ConfigLayer {
    /// Returns the built-in defaults, the lowest layer.
    pub fn defaults() -> Self {
        Self {
            listen: Some("127.0.0.1:8443".into()),
            server_name: Some(String::new()),
            base_path: Some("/cas".into()),
            tls_cert: Some("certs/server.pem".into()),
            tls_key: Some("certs/server-key.pem".into()),
            database_url: Some(String::new()),
            sqlite_path: Some("data/cas-demo.db".into()),
            password_query: Some("select password from app_user where username=?".into()),
            username_query: Some("select username from app_user where username=?".into()),
            attribute_query: Some(String::new()),
            attribute_pairs_query: Some(String::new()),
            password_encoding: Some("argon2id".into()),
            password_salt: Some("none".into()),
            password_salt_position: Some("before".into()),
            password_upgrade: Some(false),
            password_update_query: Some(
                "update app_user set password=? where username=? and password=?".into(),
            ),
            user_add_query: Some("insert into app_user (username, password) values (?, ?)".into()),
            user_passwd_query: Some("update app_user set password=? where username=?".into()),
            user_disable_query: Some("update app_user set password='!' where username=?".into()),
            service_ticket_ttl_seconds: Some(300),
            proxy_ticket_ttl_seconds: Some(300),
            sso_session_ttl_seconds: Some(7200),
            sso_session_idle_seconds: Some(1800),
            slo_retries: Some(2),
            throttle_user_failures: Some(5),
            throttle_address_failures: Some(20),
            throttle_window_seconds: Some(300),
            trusted_proxies: Some(Vec::new()),
            forwarded_header: Some("x-forwarded-for".into()),
            session_sweep_interval_seconds: Some(60),
            ticket_store: Some("memory".into()),
            memory_max_tickets: Some(1_000_000),
            redis_url: Some(String::new()),
            redis_key_prefix: Some("cas:".into()),
            // One multiplexed connection batches the commands of concurrent requests into
            // fewer writes. In scripts/bench-server.sh, 4 connections cost a validation
            // about 4 µs more server CPU than 1.
            redis_pool_size: Some(1),
            metrics_path: Some(String::new()),
            log_format: Some("text".into()),
            outbound_ca_file: None,
            theme_dir: None,
            outbound_timeout_seconds: Some(5),
            database_timeout_seconds: Some(5),
            max_connections: Some(1024),
            services: Some(default_services()),
        }
    }

    /// Reads a TOML file; unknown keys are an error that names the key.
    pub fn from_toml_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.to_owned(),
            reason: source.to_string(),
        })?;
        Self::from_toml_str(&text).map_err(|reason| ConfigError::ParseFile {
            path: path.to_owned(),
            reason,
        })
    }

    /// Parses TOML text, returning the parser's message on failure.
    pub fn from_toml_str(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|error| error.to_string())
    }

    /// Returns `self` with every setting that `higher` sets replaced by its value.
    pub fn overridden_by(self, higher: ConfigLayer) -> ConfigLayer {
        ConfigLayer {
            listen: higher.listen.or(self.listen),
            server_name: higher.server_name.or(self.server_name),
            base_path: higher.base_path.or(self.base_path),
            tls_cert: higher.tls_cert.or(self.tls_cert),
            tls_key: higher.tls_key.or(self.tls_key),
            database_url: higher.database_url.or(self.database_url),
            sqlite_path: higher.sqlite_path.or(self.sqlite_path),
            password_query: higher.password_query.or(self.password_query),
            username_query: higher.username_query.or(self.username_query),
            attribute_query: higher.attribute_query.or(self.attribute_query),
            attribute_pairs_query: higher.attribute_pairs_query.or(self.attribute_pairs_query),
            password_encoding: higher.password_encoding.or(self.password_encoding),
            password_salt: higher.password_salt.or(self.password_salt),
            password_salt_position: higher
                .password_salt_position
                .or(self.password_salt_position),
            password_upgrade: higher.password_upgrade.or(self.password_upgrade),
            password_update_query: higher.password_update_query.or(self.password_update_query),
            user_add_query: higher.user_add_query.or(self.user_add_query),
            user_passwd_query: higher.user_passwd_query.or(self.user_passwd_query),
            user_disable_query: higher.user_disable_query.or(self.user_disable_query),
            service_ticket_ttl_seconds: higher
                .service_ticket_ttl_seconds
                .or(self.service_ticket_ttl_seconds),
            proxy_ticket_ttl_seconds: higher
                .proxy_ticket_ttl_seconds
                .or(self.proxy_ticket_ttl_seconds),
            sso_session_ttl_seconds: higher
                .sso_session_ttl_seconds
                .or(self.sso_session_ttl_seconds),
            sso_session_idle_seconds: higher
                .sso_session_idle_seconds
                .or(self.sso_session_idle_seconds),
            slo_retries: higher.slo_retries.or(self.slo_retries),
            throttle_user_failures: higher
                .throttle_user_failures
                .or(self.throttle_user_failures),
            throttle_address_failures: higher
                .throttle_address_failures
                .or(self.throttle_address_failures),
            throttle_window_seconds: higher
                .throttle_window_seconds
                .or(self.throttle_window_seconds),
            trusted_proxies: higher.trusted_proxies.or(self.trusted_proxies),
            forwarded_header: higher.forwarded_header.or(self.forwarded_header),
            session_sweep_interval_seconds: higher
                .session_sweep_interval_seconds
                .or(self.session_sweep_interval_seconds),
            ticket_store: higher.ticket_store.or(self.ticket_store),
            memory_max_tickets: higher.memory_max_tickets.or(self.memory_max_tickets),
            redis_url: higher.redis_url.or(self.redis_url),
            redis_key_prefix: higher.redis_key_prefix.or(self.redis_key_prefix),
            redis_pool_size: higher.redis_pool_size.or(self.redis_pool_size),
            metrics_path: higher.metrics_path.or(self.metrics_path),
            log_format: higher.log_format.or(self.log_format),
            outbound_ca_file: higher.outbound_ca_file.or(self.outbound_ca_file),
            theme_dir: higher.theme_dir.or(self.theme_dir),
            outbound_timeout_seconds: higher
                .outbound_timeout_seconds
                .or(self.outbound_timeout_seconds),
            database_timeout_seconds: higher
                .database_timeout_seconds
                .or(self.database_timeout_seconds),
            max_connections: higher.max_connections.or(self.max_connections),
            services: higher.services.or(self.services),
        }
    }
}

fn default_services() -> Vec<ServiceDefinition> {
    DEFAULT_SERVICE_PREFIXES
        .iter()
        .enumerate()
        .map(|(index, prefix)| ServiceDefinition {
            id: if index == 0 {
                "edge-demo".into()
            } else {
                "edge-demo-https".into()
            },
            name: "Edge demo".into(),
            kind: "prefix".into(),
            pattern: (*prefix).into(),
            ..Default::default()
        })
        .collect()
}

/// A setting that stops startup: the key, the offending value and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {}: {reason}", path.display())]
    ReadFile { path: PathBuf, reason: String },
    #[error("invalid configuration file {}: {reason}", path.display())]
    ParseFile { path: PathBuf, reason: String },
    #[error("invalid setting `{key}` = {value:?}: {fix}")]
    Invalid {
        key: &'static str,
        value: String,
        fix: String,
    },
    #[error("setting `{key}` is missing: {fix}")]
    Missing {
        key: &'static str,
        fix: &'static str,
    },
}

fn invalid(key: &'static str, value: impl fmt::Display, fix: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        value: value.to_string(),
        fix: fix.into(),
    }
}

/// The checked settings the server runs with.
#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// The server's public URL without the base path, where CAS clients reach it.
    pub server_name: ServerName,
    /// Path prefix of every endpoint, with a leading slash and no trailing one ("/cas"),
    /// or empty to serve at the root.
    pub base_path: String,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    /// `mysql://…` URL of the user database; `None` selects the embedded SQLite store.
    pub database_url: Option<String>,
    pub sqlite_path: PathBuf,
    pub password_query: String,
    pub username_query: String,
    /// SQL whose result columns are user attributes, each named after its column.
    pub attribute_query: Option<String>,
    /// SQL returning rows of attribute name and value, for multi-valued attributes.
    pub attribute_pairs_query: Option<String>,
    pub password_encoding: PasswordEncoding,
    /// Storage of the salt of a hex digest encoding.
    pub password_salt: SaltSource,
    /// Side of the password on which a hex digest's salt is hashed.
    pub password_salt_position: SaltPosition,
    /// Whether a correct password stored in another encoding is rewritten as Argon2id.
    pub password_upgrade: bool,
    /// Compare-and-set statement of the upgrade: new hash, user name, old stored value.
    pub password_update_query: String,
    /// Statements of `cas-server users`.
    pub user_queries: UserQueries,
    pub service_ticket_ttl: Duration,
    /// Lifetime of a proxy ticket between `/proxy` and its validation.
    pub proxy_ticket_ttl: Duration,
    /// Hard limit of an SSO session, counted from its password login.
    pub sso_session_ttl: Duration,
    /// Time after its last use (a service ticket issued from it) at which a session ends.
    pub sso_session_idle: Duration,
    /// Retries of a single logout request after its first attempt fails.
    pub slo_retries: u32,
    /// Failed logins per typed user name and per client address before further
    /// attempts get 429, within one window.
    pub throttle: ThrottleLimits,
    /// Reverse proxies whose forwarding header names the client address.
    pub trusted_proxies: Vec<IpNetwork>,
    /// Header that trusted proxies list the forwarding chain in.
    pub forwarded_header: ForwardedHeader,
    /// Interval between sweeps of expired entries and ended sessions.
    pub session_sweep_interval: Duration,
    pub ticket_store: TicketStoreSettings,
    /// Path of the Prometheus metrics endpoint, `{base_path}/metrics` unless set.
    pub metrics_path: String,
    pub log_format: LogFormat,
    /// Extra trusted roots for proxy callbacks and logout requests, beside the system's.
    pub outbound_ca_file: Option<PathBuf>,
    /// Directory of the logo files that services name with `theme_logo`, served under
    /// `{base_path}/themes/`.
    pub theme_dir: Option<PathBuf>,
    /// Time limit of each proxy callback and logout request.
    pub outbound_timeout: Duration,
    /// Time limit of each user database lookup (user name, password, attributes), the
    /// wait for a pooled connection included.
    pub database_timeout: Duration,
    /// Open client connections at most; further clients are dropped until one closes.
    pub max_connections: usize,
    pub services: Vec<ServiceDefinition>,
    /// The registry at start. Handlers use `App::registry()`, which a SIGHUP reload
    /// replaces, so this field can be out of date.
    pub registry: ServiceRegistry,
    /// The TOML file the settings came from. On SIGHUP the server reads its services again.
    pub config_file: Option<PathBuf>,
}

/// Statements that `cas-server users` runs, each with its `?` placeholders in the order
/// given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserQueries {
    /// Inserts a user: user name, then Argon2id hash.
    pub add: String,
    /// Sets a password: Argon2id hash, then user name.
    pub passwd: String,
    /// Disables a user: user name.
    pub disable: String,
}

/// Limits of the login throttle. A limit of 0 is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleLimits {
    /// Failed logins per typed user name within any span of `window`.
    pub user_failures: u64,
    /// Failed logins per client address within any span of `window`.
    pub address_failures: u64,
    /// Length of the sliding window: a failure counts until this long after it.
    pub window: Duration,
}

/// Where tickets live.
#[derive(Clone, PartialEq, Eq)]
pub enum TicketStoreSettings {
    /// In this process, holding at most `max_tickets` entries.
    Memory { max_tickets: usize },
    /// In Redis, shared by every node that uses the same URL and key prefix.
    Redis(RedisSettings),
}

/// Connection settings of the Redis ticket store.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisSettings {
    /// `redis://` or `rediss://` URL, which may carry a password: never log it.
    pub url: String,
    pub key_prefix: String,
    pub pool_size: usize,
}

impl fmt::Debug for TicketStoreSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory { max_tickets } => write!(f, "Memory {{ max_tickets: {max_tickets} }}"),
            Self::Redis(redis) => write!(
                f,
                "Redis {{ url: <redacted>, key_prefix: {:?}, pool_size: {} }}",
                redis.key_prefix, redis.pool_size
            ),
        }
    }
}

/// Format of log lines on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines, coloured on a terminal.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The database URL may carry a password, so only its presence is shown.
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("server_name", &self.server_name.url())
            .field("base_path", &self.base_path)
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .field(
                "database_url",
                &self.database_url.as_ref().map(|_| "<redacted>"),
            )
            .field("sqlite_path", &self.sqlite_path)
            .field("attribute_query", &self.attribute_query)
            .field("attribute_pairs_query", &self.attribute_pairs_query)
            .field("password_encoding", &self.password_encoding)
            .field("password_salt", &self.password_salt)
            .field("password_salt_position", &self.password_salt_position)
            .field("password_upgrade", &self.password_upgrade)
            .field("service_ticket_ttl", &self.service_ticket_ttl)
            .field("proxy_ticket_ttl", &self.proxy_ticket_ttl)
            .field("sso_session_ttl", &self.sso_session_ttl)
            .field("sso_session_idle", &self.sso_session_idle)
            .field("slo_retries", &self.slo_retries)
            .field("throttle", &self.throttle)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("forwarded_header", &self.forwarded_header)
            .field("session_sweep_interval", &self.session_sweep_interval)
            .field("ticket_store", &self.ticket_store)
            .field("metrics_path", &self.metrics_path)
            .field("log_format", &self.log_format)
            .field("outbound_ca_file", &self.outbound_ca_file)
            .field("theme_dir", &self.theme_dir)
            .field("outbound_timeout", &self.outbound_timeout)
            .field("database_timeout", &self.database_timeout)
            .field("max_connections", &self.max_connections)
            .field("services", &self.services.len())
            .field("config_file", &self.config_file)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Checks the defaults alone. Tests start from this and change fields.
    pub fn from_defaults() -> Result<Self, ConfigError> {
        Self::from_layer(ConfigLayer::defaults())
    }

    /// Checks a merged layer; the first invalid or missing setting is the error.
    pub fn from_layer(layer: ConfigLayer) -> Result<Self, ConfigError> {
        let services = required(
            layer.services,
            "services",
            "add at least one [[services]] table",
        )?;
        let registry = build_registry(&services)?;
        crate::theme::check_logo_files(layer.theme_dir.as_deref(), &services)
            .map_err(|problem| invalid("theme_dir", problem.value, problem.fix))?;
        let base_path = parse_base_path(required(layer.base_path, "base_path", "set it to /cas")?)?;
        let metrics_path = parse_metrics_path(layer.metrics_path.unwrap_or_default(), &base_path)?;
        let password_encoding = parse_encoding(required(
            layer.password_encoding,
            "password_encoding",
            ENCODING_FIX,
        )?)?;
        let password_salt = parse_salt(
            required(layer.password_salt, "password_salt", SALT_FIX)?,
            password_encoding,
        )?;

        let listen = parse_listen(required(layer.listen, "listen", "set it to ip:port")?)?;
        let server_name = match layer.server_name.unwrap_or_default() {
            text if text.is_empty() => ServerName::from_listen(listen),
            text => ServerName::parse(&text)?,
        };

        Ok(Self {
            listen,
            server_name,
            base_path,
            tls_cert: required(
                layer.tls_cert,
                "tls_cert",
                "set it to a PEM certificate file",
            )?,
            tls_key: required(layer.tls_key, "tls_key", "set it to a PEM private key file")?,
            database_url: parse_database_url(layer.database_url.unwrap_or_default())?,
            sqlite_path: required(layer.sqlite_path, "sqlite_path", "set it to a file path")?,
            password_query: parse_query(
                "password_query",
                required(layer.password_query, "password_query", QUERY_FIX)?,
            )?,
            username_query: parse_query(
                "username_query",
                required(layer.username_query, "username_query", QUERY_FIX)?,
            )?,
            attribute_query: parse_optional_query("attribute_query", layer.attribute_query)?,
            attribute_pairs_query: parse_optional_query(
                "attribute_pairs_query",
                layer.attribute_pairs_query,
            )?,
            password_encoding,
            password_salt,
            password_salt_position: parse_salt_position(required(
                layer.password_salt_position,
                "password_salt_position",
                "set before or after",
            )?)?,
            password_upgrade: layer.password_upgrade.unwrap_or(false),
            password_update_query: parse_query_with(
                "password_update_query",
                required(
                    layer.password_update_query,
                    "password_update_query",
                    UPDATE_FIX,
                )?,
                3,
                UPDATE_FIX,
            )?,
            user_queries: parse_user_queries(UserQueryLayer {
                add: layer.user_add_query,
                passwd: layer.user_passwd_query,
                disable: layer.user_disable_query,
            })?,
            service_ticket_ttl: parse_ttl(
                "service_ticket_ttl_seconds",
                layer.service_ticket_ttl_seconds,
            )?,
            proxy_ticket_ttl: parse_ttl(
                "proxy_ticket_ttl_seconds",
                layer.proxy_ticket_ttl_seconds,
            )?,
            sso_session_ttl: parse_ttl("sso_session_ttl_seconds", layer.sso_session_ttl_seconds)?,
            sso_session_idle: parse_ttl(
                "sso_session_idle_seconds",
                layer.sso_session_idle_seconds,
            )?,
            slo_retries: parse_slo_retries(layer.slo_retries)?,
            throttle: parse_throttle(
                layer.throttle_user_failures,
                layer.throttle_address_failures,
                layer.throttle_window_seconds,
            )?,
            trusted_proxies: parse_trusted_proxies(layer.trusted_proxies)?,
            forwarded_header: parse_forwarded_header(layer.forwarded_header)?,
            session_sweep_interval: parse_sweep_interval(layer.session_sweep_interval_seconds)?,
            ticket_store: parse_ticket_store(StoreLayer {
                kind: layer.ticket_store,
                memory_max_tickets: layer.memory_max_tickets,
                redis_url: layer.redis_url,
                redis_key_prefix: layer.redis_key_prefix,
                redis_pool_size: layer.redis_pool_size,
            })?,
            metrics_path,
            log_format: parse_log_format(layer.log_format)?,
            outbound_ca_file: layer.outbound_ca_file,
            theme_dir: layer.theme_dir,
            outbound_timeout: parse_ttl(
                "outbound_timeout_seconds",
                layer.outbound_timeout_seconds,
            )?,
            database_timeout: parse_ttl(
                "database_timeout_seconds",
                layer.database_timeout_seconds,
            )?,
            max_connections: parse_max_connections(layer.max_connections)?,
            services,
            registry,
            config_file: None,
        })
    }

    /// Replaces the service list, rebuilding the registry.
    pub fn with_services(mut self, services: Vec<ServiceDefinition>) -> Result<Self, ConfigError> {
        self.registry = build_registry(&services)?;
        self.services = services;
        Ok(self)
    }
}

const QUERY_FIX: &str = "write one SQL select with exactly one ? placeholder for the user name";

/// The server's public URL without the base path, such as `https://cas.example.org:8443`,
/// like `cas.server.name` of Apereo CAS. Responses that name the server take it from
/// here, never from the request's Host header, which the client chooses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerName {
    url: String,
    host: String,
}

impl ServerName {
    /// Parses an absolute `https` or `http` URL with a host, an optional port and no user
    /// information, path, query or fragment. A single trailing slash is dropped. The host
    /// is a DNS name, an IPv4 address or an IPv6 address in brackets, and the port is
    /// from 1 to 65535.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let fix = "write the public URL of the server without a path, such as https://cas.example.org:8443";
        if !text.is_ascii() {
            let fix = "write a non-ASCII host name in its punycode form, such as https://xn--caf-dma.example";
            return Err(invalid("server_name", text, fix));
        }

        let trimmed = text.strip_suffix('/').unwrap_or(text);
        let uri: http::Uri = trimmed
            .parse()
            .map_err(|_| invalid("server_name", text, fix))?;
        let scheme_ok = matches!(uri.scheme_str(), Some("https" | "http"));
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
        // http::Uri drops a fragment without an error, so the text is checked for one.
        let bare_origin = uri.path() == "/"
            && !trimmed.ends_with('/')
            && uri.query().is_none()
            && !trimmed.contains('#');
        let host = uri.host().unwrap_or_default();
        if !scheme_ok || host.is_empty() || authority.contains('@') || !bare_origin {
            return Err(invalid("server_name", text, fix));
        }

        check_server_host(host).map_err(|fix| invalid("server_name", text, fix))?;
        // http::Uri takes any text after the host as the port, such as `:99999` or `x`.
        let after_host = authority.strip_prefix(host).unwrap_or_default();
        if !after_host.is_empty() && parse_port(after_host).is_none() {
            let fix = "end the URL with a port from 1 to 65535 or no port, such as https://cas.example.org:8443";
            return Err(invalid("server_name", text, fix));
        }

        Ok(Self {
            url: trimmed.to_owned(),
            host: host.to_owned(),
        })
    }

    /// Returns the name used when `server_name` is empty: `https://` and the listen
    /// address, with `localhost` for an unspecified IP address (0.0.0.0 or ::).
    pub fn from_listen(listen: SocketAddr) -> Self {
        let host = match listen.ip() {
            ip if ip.is_unspecified() => "localhost".to_owned(),
            std::net::IpAddr::V4(ip) => ip.to_string(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        };
        Self {
            url: format!("https://{host}:{}", listen.port()),
            host,
        }
    }

    /// Returns the URL, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Returns the host name or IP address of the URL, without the port. An IPv6 address
    /// keeps its brackets.
    pub fn host(&self) -> &str {
        &self.host
    }
}

/// Checks the host of `server_name`: an IPv6 address in brackets, an IPv4 address, or a
/// DNS name of letters, digits, `-` and `_` in dot-separated labels. http::Uri accepts
/// more, such as `[zz]`, `*` or `999.1.1.1`. Returns the fix on failure.
fn check_server_host(host: &str) -> Result<(), &'static str> {
    if let Some(inner) = host.strip_prefix('[') {
        let address = inner.strip_suffix(']').unwrap_or_default();
        return match address.parse::<std::net::Ipv6Addr>() {
            Ok(_) => Ok(()),
            Err(_) => Err("write an IPv6 address in brackets without a zone, such as https://[2001:db8::1]:8443"),
        };
    }

    let host_fix = "write a host name of letters, digits, -, _ and . or an IP address, such as https://cas.example.org";
    let labels: Vec<&str> = host.split('.').collect();
    let valid_label = |label: &&str| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !labels.iter().all(valid_label) {
        return Err(host_fix);
    }
    // The WHATWG URL Standard parses a name whose last label is a number as an IPv4
    // address and rejects it when that fails, as `1.2.3.4.5` or `999.1.1.1` do.
    let numeric = labels
        .last()
        .is_some_and(|label| label.bytes().all(|b| b.is_ascii_digit()));
    if numeric && host.parse::<std::net::Ipv4Addr>().is_err() {
        return Err(host_fix);
    }
    Ok(())
}

/// Parses `:` and a port from 1 to 65535 written in decimal digits.
fn parse_port(text: &str) -> Option<u16> {
    let digits = text.strip_prefix(':')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u16>().ok().filter(|port| *port != 0)
}

/// Longest accepted ticket or session lifetime: 30 days, in seconds.
const MAX_TTL_SECONDS: u64 = 30 * 24 * 3600;

fn required<T>(value: Option<T>, key: &'static str, fix: &'static str) -> Result<T, ConfigError> {
    value.ok_or(ConfigError::Missing { key, fix })
}

fn parse_listen(text: String) -> Result<SocketAddr, ConfigError> {
    text.parse().map_err(|_| {
        invalid(
            "listen",
            &text,
            "write an IP address and port such as 127.0.0.1:8443 or [::1]:8443",
        )
    })
}

fn parse_base_path(text: String) -> Result<String, ConfigError> {
    if text.is_empty() || text == "/" {
        return Ok(String::new());
    }

    // The prefix also becomes the cookie Path attribute, so only URL path characters
    // that need no quoting in a Set-Cookie header are allowed.
    let safe = text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b));
    if !text.starts_with('/') || text.ends_with('/') || text.contains("//") || !safe {
        return Err(invalid(
            "base_path",
            &text,
            "write a path such as /cas: a leading slash, no trailing slash, only letters, digits and -._~",
        ));
    }
    Ok(text)
}

fn parse_database_url(text: String) -> Result<Option<String>, ConfigError> {
    if text.is_empty() {
        return Ok(None);
    }
    if !text.starts_with("mysql://") && !text.starts_with("mariadb://") {
        // The URL may carry a password, so the value is not repeated in the message.
        return Err(invalid(
            "database_url",
            "<hidden>",
            "write a mysql://user:password@host:port/database URL, or leave it empty for the embedded SQLite store",
        ));
    }
    Ok(Some(text.replacen("mariadb://", "mysql://", 1)))
}

fn parse_query(key: &'static str, text: String) -> Result<String, ConfigError> {
    if text.matches('?').count() != 1 {
        return Err(invalid(key, &text, QUERY_FIX));
    }
    Ok(text)
}

/// Checks an optional query. Unset or empty turns the query off.
fn parse_optional_query(
    key: &'static str,
    text: Option<String>,
) -> Result<Option<String>, ConfigError> {
    match text.filter(|text| !text.trim().is_empty()) {
        Some(text) => parse_query(key, text).map(Some),
        None => Ok(None),
    }
}

const ENCODING_FIX: &str =
    "use argon2id, bcrypt, pbkdf2-sha256, md5, sha1, sha256, sha512 or plain";

const SALT_FIX: &str =
    "use none, column (the password query returns the salt as its second column) or prefix:<separator> with a separator that has no hex digit";

const UPDATE_FIX: &str =
    "write one SQL update with three ? placeholders: the new hash, the user name and the old stored password";

fn parse_encoding(text: String) -> Result<PasswordEncoding, ConfigError> {
    PasswordEncoding::parse(&text).ok_or_else(|| invalid("password_encoding", &text, ENCODING_FIX))
}

/// Parses the salt setting, which only a hex digest encoding takes: the other encodings
/// keep their salt inside the stored value, and plain has none.
fn parse_salt(text: String, encoding: PasswordEncoding) -> Result<SaltSource, ConfigError> {
    let salt = SaltSource::parse(&text).ok_or_else(|| invalid("password_salt", &text, SALT_FIX))?;
    if salt != SaltSource::None && !encoding.takes_salt_setting() {
        return Err(invalid(
            "password_salt",
            &text,
            format!(
                "set none: password_encoding {} stores its own salt or none",
                encoding.as_str()
            ),
        ));
    }
    Ok(salt)
}

fn parse_salt_position(text: String) -> Result<SaltPosition, ConfigError> {
    SaltPosition::parse(&text)
        .ok_or_else(|| invalid("password_salt_position", &text, "use before or after"))
}

/// Checks a query that must have exactly `placeholders` `?` in it.
fn parse_query_with(
    key: &'static str,
    text: String,
    placeholders: usize,
    fix: &'static str,
) -> Result<String, ConfigError> {
    if text.matches('?').count() != placeholders {
        return Err(invalid(key, &text, fix));
    }
    Ok(text)
}

struct UserQueryLayer {
    add: Option<String>,
    passwd: Option<String>,
    disable: Option<String>,
}

const USER_ADD_FIX: &str =
    "write one SQL insert with two ? placeholders: the user name, then the password hash";
const USER_PASSWD_FIX: &str =
    "write one SQL update with two ? placeholders: the password hash, then the user name";
const USER_DISABLE_FIX: &str = "write one SQL update with one ? placeholder for the user name";

fn parse_user_queries(layer: UserQueryLayer) -> Result<UserQueries, ConfigError> {
    Ok(UserQueries {
        add: parse_query_with(
            "user_add_query",
            required(layer.add, "user_add_query", USER_ADD_FIX)?,
            2,
            USER_ADD_FIX,
        )?,
        passwd: parse_query_with(
            "user_passwd_query",
            required(layer.passwd, "user_passwd_query", USER_PASSWD_FIX)?,
            2,
            USER_PASSWD_FIX,
        )?,
        disable: parse_query_with(
            "user_disable_query",
            required(layer.disable, "user_disable_query", USER_DISABLE_FIX)?,
            1,
            USER_DISABLE_FIX,
        )?,
    })
}

fn parse_ttl(key: &'static str, value: Option<u64>) -> Result<Duration, ConfigError> {
    let seconds = value.ok_or(ConfigError::Missing {
        key,
        fix: "set a number of seconds",
    })?;
    if seconds == 0 || seconds > MAX_TTL_SECONDS {
        return Err(invalid(
            key,
            seconds,
            format!("use a number of seconds from 1 to {MAX_TTL_SECONDS}"),
        ));
    }
    Ok(Duration::from_secs(seconds))
}

/// Largest accepted `max_connections`. Each connection uses a file descriptor and
/// buffers, so a value past this is more likely a typo than a plan.
const MAX_MAX_CONNECTIONS: u64 = 1_000_000;

fn parse_max_connections(value: Option<u64>) -> Result<usize, ConfigError> {
    let connections = value.ok_or(ConfigError::Missing {
        key: "max_connections",
        fix: "set a number of connections such as 1024",
    })?;
    if connections == 0 || connections > MAX_MAX_CONNECTIONS {
        return Err(invalid(
            "max_connections",
            connections,
            format!("use a number of connections from 1 to {MAX_MAX_CONNECTIONS}"),
        ));
    }
    Ok(connections as usize)
}

/// Largest accepted failure threshold of the login throttle. The sliding window stores
/// the time of every failure it counts, so each user name or address keeps at most this
/// many entries.
const MAX_THROTTLE_FAILURES: u64 = 10_000;

fn parse_throttle(
    user: Option<u64>,
    address: Option<u64>,
    window: Option<u64>,
) -> Result<ThrottleLimits, ConfigError> {
    let threshold = |key: &'static str, value: Option<u64>| {
        let failures = value.ok_or(ConfigError::Missing {
            key,
            fix: "set a number of failed logins, or 0 to turn this limit off",
        })?;
        if failures > MAX_THROTTLE_FAILURES {
            return Err(invalid(
                key,
                failures,
                format!("use a number from 0 to {MAX_THROTTLE_FAILURES}"),
            ));
        }
        Ok(failures)
    };

    Ok(ThrottleLimits {
        user_failures: threshold("throttle_user_failures", user)?,
        address_failures: threshold("throttle_address_failures", address)?,
        window: parse_ttl("throttle_window_seconds", window)?,
    })
}

/// Most retries of one single logout request.
const MAX_SLO_RETRIES: u64 = 10;

fn parse_slo_retries(value: Option<u64>) -> Result<u32, ConfigError> {
    let retries = value.ok_or(ConfigError::Missing {
        key: "slo_retries",
        fix: "set a number of retries such as 2",
    })?;
    if retries > MAX_SLO_RETRIES {
        return Err(invalid(
            "slo_retries",
            retries,
            format!("use a number from 0 to {MAX_SLO_RETRIES}"),
        ));
    }
    Ok(retries as u32)
}

/// Longest accepted sweep interval, in seconds. The Redis store keeps a session's index
/// of tickets 15 minutes past the session's end so that a sweep can still read it.
const MAX_SWEEP_INTERVAL_SECONDS: u64 = 300;

fn parse_sweep_interval(value: Option<u64>) -> Result<Duration, ConfigError> {
    let key = "session_sweep_interval_seconds";
    let seconds = value.ok_or(ConfigError::Missing {
        key,
        fix: "set a number of seconds",
    })?;
    if seconds == 0 || seconds > MAX_SWEEP_INTERVAL_SECONDS {
        return Err(invalid(
            key,
            seconds,
            format!("use a number of seconds from 1 to {MAX_SWEEP_INTERVAL_SECONDS}"),
        ));
    }
    Ok(Duration::from_secs(seconds))
}

/// Largest accepted `memory_max_tickets`: at about 300 bytes each, some 30 GB.
const MAX_MEMORY_TICKETS: u64 = 100_000_000;

/// Largest accepted `redis_pool_size`. Each connection is multiplexed, so a few suffice.
const MAX_REDIS_POOL_SIZE: u64 = 64;

/// Longest accepted `redis_key_prefix`, in bytes.
const MAX_KEY_PREFIX_BYTES: usize = 64;

/// The ticket store settings of a merged layer.
struct StoreLayer {
    kind: Option<String>,
    memory_max_tickets: Option<u64>,
    redis_url: Option<String>,
    redis_key_prefix: Option<String>,
    redis_pool_size: Option<u64>,
}

fn parse_ticket_store(layer: StoreLayer) -> Result<TicketStoreSettings, ConfigError> {
    let kind = required(layer.kind, "ticket_store", "set memory or redis")?;
    match kind.as_str() {
        "memory" => {
            let max = required(
                layer.memory_max_tickets,
                "memory_max_tickets",
                "set a number of tickets",
            )?;
            if max == 0 || max > MAX_MEMORY_TICKETS {
                return Err(invalid(
                    "memory_max_tickets",
                    max,
                    format!("use a number of tickets from 1 to {MAX_MEMORY_TICKETS}"),
                ));
            }
            let max_tickets = usize::try_from(max).unwrap_or(usize::MAX);
            Ok(TicketStoreSettings::Memory { max_tickets })
        }
        "redis" => Ok(TicketStoreSettings::Redis(RedisSettings {
            url: parse_redis_url(layer.redis_url.unwrap_or_default())?,
            key_prefix: parse_key_prefix(required(
                layer.redis_key_prefix,
                "redis_key_prefix",
                "set a prefix such as cas:",
            )?)?,
            pool_size: parse_pool_size(required(
                layer.redis_pool_size,
                "redis_pool_size",
                "set a number of connections",
            )?)?,
        })),
        _ => Err(invalid("ticket_store", &kind, "use memory or redis")),
    }
}

fn parse_redis_url(text: String) -> Result<String, ConfigError> {
    if text.starts_with("redis://") || text.starts_with("rediss://") {
        return Ok(text);
    }
    // The URL may carry a password, so the value is not repeated in the message.
    let shown = if text.is_empty() { "" } else { "<hidden>" };
    Err(invalid(
        "redis_url",
        shown,
        "ticket_store = redis needs a redis://[:password@]host:port[/db] URL, or rediss:// for TLS",
    ))
}

fn parse_key_prefix(text: String) -> Result<String, ConfigError> {
    let printable = text
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'{' && b != b'}');
    if text.is_empty() || text.len() > MAX_KEY_PREFIX_BYTES || !printable {
        return Err(invalid(
            "redis_key_prefix",
            &text,
            format!("use 1 to {MAX_KEY_PREFIX_BYTES} printable ASCII characters without spaces or braces, such as cas:"),
        ));
    }
    Ok(text)
}

fn parse_pool_size(size: u64) -> Result<usize, ConfigError> {
    if size == 0 || size > MAX_REDIS_POOL_SIZE {
        return Err(invalid(
            "redis_pool_size",
            size,
            format!("use a number of connections from 1 to {MAX_REDIS_POOL_SIZE}"),
        ));
    }
    Ok(usize::try_from(size).unwrap_or(1))
}

fn parse_metrics_path(text: String, base_path: &str) -> Result<String, ConfigError> {
    if text.is_empty() {
        return Ok(format!("{base_path}/metrics"));
    }
    let safe = text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b));
    if !text.starts_with('/') || text.len() < 2 || text.ends_with('/') || !safe {
        return Err(invalid(
            "metrics_path",
            &text,
            "write a path such as /metrics: a leading slash, no trailing slash, only letters, digits and -._~; empty means {base_path}/metrics",
        ));
    }
    Ok(text)
}

fn parse_trusted_proxies(values: Option<Vec<String>>) -> Result<Vec<IpNetwork>, ConfigError> {
    let mut networks = Vec::new();
    for value in values.unwrap_or_default() {
        let network = IpNetwork::parse(value.trim()).ok_or_else(|| {
            invalid(
                "trusted_proxies",
                &value,
                "use IP addresses or CIDR networks such as 127.0.0.1/32 or 10.0.0.0/8, with no host bits after the prefix",
            )
        })?;
        networks.push(network);
    }
    Ok(networks)
}

fn parse_forwarded_header(value: Option<String>) -> Result<ForwardedHeader, ConfigError> {
    match value.as_deref().map(str::to_ascii_lowercase).as_deref() {
        Some("x-forwarded-for") | None => Ok(ForwardedHeader::XForwardedFor),
        Some("forwarded") => Ok(ForwardedHeader::Forwarded),
        Some(_) => Err(invalid(
            "forwarded_header",
            value.unwrap_or_default(),
            "use X-Forwarded-For or Forwarded",
        )),
    }
}

fn parse_log_format(value: Option<String>) -> Result<LogFormat, ConfigError> {
    match value.as_deref() {
        Some("text") | None => Ok(LogFormat::Text),
        Some("json") => Ok(LogFormat::Json),
        Some(other) => Err(invalid("log_format", other, "use text or json")),
    }
}

fn build_registry(services: &[ServiceDefinition]) -> Result<ServiceRegistry, ConfigError> {
    if services.is_empty() {
        return Err(invalid(
            "services",
            "[]",
            "add at least one [[services]] table, or remove the key to use the default",
        ));
    }
    ServiceRegistry::from_definitions(services)
        .map_err(|error| invalid("services", "…", error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer_from_toml(text: &str) -> ConfigLayer {
        ConfigLayer::from_toml_str(text).expect("valid TOML")
    }

    #[test]
    fn defaults_are_valid() {
        let config = Config::from_defaults().expect("defaults");

        assert_eq!(config.listen.to_string(), "127.0.0.1:8443");
        assert_eq!(config.base_path, "/cas");
        assert_eq!(config.database_url, None);
        assert_eq!(config.password_encoding, PasswordEncoding::Argon2id);
        assert_eq!(config.service_ticket_ttl, Duration::from_secs(300));
        assert_eq!(config.proxy_ticket_ttl, Duration::from_secs(300));
        assert_eq!(config.registry.len(), 2);
    }

    #[test]
    fn higher_layer_wins_per_key() {
        let file = layer_from_toml("listen = \"127.0.0.1:9000\"\nbase_path = \"/sso\"\n");
        let environment = ConfigLayer {
            listen: Some("127.0.0.1:9001".into()),
            ..Default::default()
        };
        let flags = ConfigLayer {
            sso_session_ttl_seconds: Some(60),
            ..Default::default()
        };

        let merged = ConfigLayer::defaults()
            .overridden_by(file)
            .overridden_by(environment)
            .overridden_by(flags);
        let config = Config::from_layer(merged).expect("valid");

        assert_eq!(config.listen.to_string(), "127.0.0.1:9001");
        assert_eq!(config.base_path, "/sso");
        assert_eq!(config.sso_session_ttl, Duration::from_secs(60));
        assert_eq!(config.service_ticket_ttl, Duration::from_secs(300));
    }

    #[test]
    fn file_services_replace_defaults() {
        let file = layer_from_toml(
            "[[services]]\nid = \"app\"\nname = \"App\"\nmatch = \"exact\"\npattern = \"https://app.example/\"\n",
        );
        let config =
            Config::from_layer(ConfigLayer::defaults().overridden_by(file)).expect("valid");

        assert_eq!(config.registry.len(), 1);
        assert_eq!(config.services[0].id, "app");
    }

    #[test]
    fn unknown_key_is_named() {
        let error = ConfigLayer::from_toml_str("lisen = \"x\"").expect_err("unknown key");

        assert!(error.contains("lisen"), "{error}");
    }

    #[test]
    fn invalid_values_name_key() {
        let cases: [(ConfigLayer, &str); 7] = [
            (
                ConfigLayer {
                    listen: Some("localhost".into()),
                    ..Default::default()
                },
                "listen",
            ),
            (
                ConfigLayer {
                    base_path: Some("cas/".into()),
                    ..Default::default()
                },
                "base_path",
            ),
            (
                ConfigLayer {
                    password_encoding: Some("md4".into()),
                    ..Default::default()
                },
                "password_encoding",
            ),
            (
                ConfigLayer {
                    service_ticket_ttl_seconds: Some(0),
                    ..Default::default()
                },
                "service_ticket_ttl_seconds",
            ),
            (
                ConfigLayer {
                    proxy_ticket_ttl_seconds: Some(0),
                    ..Default::default()
                },
                "proxy_ticket_ttl_seconds",
            ),
            (
                ConfigLayer {
                    password_query: Some("select 1".into()),
                    ..Default::default()
                },
                "password_query",
            ),
            (
                ConfigLayer {
                    database_url: Some("postgres://x".into()),
                    ..Default::default()
                },
                "database_url",
            ),
        ];

        for (layer, key) in cases {
            let error =
                Config::from_layer(ConfigLayer::defaults().overridden_by(layer)).expect_err(key);
            assert!(error.to_string().contains(key), "{error}");
        }
    }

    #[test]
    fn session_policy_defaults_and_limits() {
        let config = Config::from_defaults().expect("defaults");
        assert_eq!(config.sso_session_idle, Duration::from_secs(1800));
        assert_eq!(config.slo_retries, 2);
        assert_eq!(config.session_sweep_interval, Duration::from_secs(60));

        let cases = [
            (
                ConfigLayer {
                    sso_session_idle_seconds: Some(0),
                    ..Default::default()
                },
                "sso_session_idle_seconds",
            ),
            (
                ConfigLayer {
                    slo_retries: Some(11),
                    ..Default::default()
                },
                "slo_retries",
            ),
            (
                ConfigLayer {
                    session_sweep_interval_seconds: Some(301),
                    ..Default::default()
                },
                "session_sweep_interval_seconds",
            ),
        ];
        for (layer, key) in cases {
            let error =
                Config::from_layer(ConfigLayer::defaults().overridden_by(layer)).expect_err(key);
            assert!(error.to_string().contains(key), "{error}");
        }
    }

    #[test]
    fn database_url_is_not_echoed() {
        let layer = ConfigLayer {
            database_url: Some("postgres://u:secret@h/db".into()),
            ..Default::default()
        };
        let error =
            Config::from_layer(ConfigLayer::defaults().overridden_by(layer)).expect_err("invalid");

        assert!(!error.to_string().contains("secret"));
    }

    #[test]
    fn example_file_is_valid_and_complete() {
        let text = include_str!("../cas-server.example.toml");
        let layer = layer_from_toml(text);

        assert!(layer.listen.is_some(), "listen");
        assert!(layer.base_path.is_some(), "base_path");
        assert!(layer.tls_cert.is_some(), "tls_cert");
        assert!(layer.tls_key.is_some(), "tls_key");
        assert!(layer.database_url.is_some(), "database_url");
        assert!(layer.sqlite_path.is_some(), "sqlite_path");
        assert!(layer.password_query.is_some(), "password_query");
        assert!(layer.username_query.is_some(), "username_query");
        assert!(layer.attribute_query.is_some(), "attribute_query");
        assert!(
            layer.attribute_pairs_query.is_some(),
            "attribute_pairs_query"
        );
        assert!(layer.password_encoding.is_some(), "password_encoding");
        assert!(layer.password_salt.is_some(), "password_salt");
        assert!(
            layer.password_salt_position.is_some(),
            "password_salt_position"
        );
        assert!(layer.password_upgrade.is_some(), "password_upgrade");
        assert!(
            layer.password_update_query.is_some(),
            "password_update_query"
        );
        assert!(layer.user_add_query.is_some(), "user_add_query");
        assert!(layer.user_passwd_query.is_some(), "user_passwd_query");
        assert!(layer.user_disable_query.is_some(), "user_disable_query");
        assert!(
            layer.service_ticket_ttl_seconds.is_some(),
            "service_ticket_ttl_seconds"
        );
        assert!(
            layer.proxy_ticket_ttl_seconds.is_some(),
            "proxy_ticket_ttl_seconds"
        );
        assert!(
            layer.sso_session_ttl_seconds.is_some(),
            "sso_session_ttl_seconds"
        );
        assert!(
            layer.sso_session_idle_seconds.is_some(),
            "sso_session_idle_seconds"
        );
        assert!(layer.slo_retries.is_some(), "slo_retries");
        assert!(
            layer.throttle_user_failures.is_some(),
            "throttle_user_failures"
        );
        assert!(
            layer.throttle_address_failures.is_some(),
            "throttle_address_failures"
        );
        assert!(
            layer.throttle_window_seconds.is_some(),
            "throttle_window_seconds"
        );
        assert!(layer.trusted_proxies.is_some(), "trusted_proxies");
        assert!(layer.forwarded_header.is_some(), "forwarded_header");
        assert!(
            layer.session_sweep_interval_seconds.is_some(),
            "session_sweep_interval_seconds"
        );
        assert!(layer.ticket_store.is_some(), "ticket_store");
        assert!(layer.memory_max_tickets.is_some(), "memory_max_tickets");
        assert!(layer.redis_url.is_some(), "redis_url");
        assert!(layer.redis_key_prefix.is_some(), "redis_key_prefix");
        assert!(layer.redis_pool_size.is_some(), "redis_pool_size");
        assert!(layer.metrics_path.is_some(), "metrics_path");
        assert!(layer.log_format.is_some(), "log_format");
        assert!(
            layer.database_timeout_seconds.is_some(),
            "database_timeout_seconds"
        );
        assert!(layer.max_connections.is_some(), "max_connections");
        assert_eq!(layer.services.as_ref().map(Vec::len), Some(2), "services");
        assert!(Config::from_layer(ConfigLayer::defaults().overridden_by(layer)).is_ok());
    }

    #[test]
    fn redis_store_settings() {
        let file = layer_from_toml(
            "ticket_store = \"redis\"\nredis_url = \"redis://:pw@127.0.0.1:6379/0\"\nredis_key_prefix = \"sso:\"\nredis_pool_size = 2\n",
        );
        let config =
            Config::from_layer(ConfigLayer::defaults().overridden_by(file)).expect("valid");

        let TicketStoreSettings::Redis(redis) = &config.ticket_store else {
            panic!("expected redis, got {:?}", config.ticket_store);
        };
        assert_eq!(redis.key_prefix, "sso:");
        assert_eq!(redis.pool_size, 2);
        assert!(!format!("{config:?}").contains("pw@"));
    }

    #[test]
    fn memory_store_is_default() {
        let config = Config::from_defaults().expect("defaults");

        assert_eq!(
            config.ticket_store,
            TicketStoreSettings::Memory {
                max_tickets: 1_000_000
            }
        );
        assert_eq!(config.metrics_path, "/cas/metrics");
        assert_eq!(config.log_format, LogFormat::Text);
    }

    #[test]
    fn invalid_store_settings_name_key() {
        let redis = |url: &str, prefix: &str, pool: u64| ConfigLayer {
            ticket_store: Some("redis".into()),
            redis_url: Some(url.into()),
            redis_key_prefix: Some(prefix.into()),
            redis_pool_size: Some(pool),
            ..Default::default()
        };
        let cases: [(ConfigLayer, &str); 7] = [
            (redis("", "cas:", 1), "redis_url"),
            (redis("http://h", "cas:", 1), "redis_url"),
            (redis("redis://h", "ca{s}:", 1), "redis_key_prefix"),
            (redis("redis://h", "", 1), "redis_key_prefix"),
            (redis("redis://h", "cas:", 0), "redis_pool_size"),
            (
                ConfigLayer {
                    memory_max_tickets: Some(0),
                    ..Default::default()
                },
                "memory_max_tickets",
            ),
            (
                ConfigLayer {
                    ticket_store: Some("etcd".into()),
                    ..Default::default()
                },
                "ticket_store",
            ),
        ];

        for (layer, key) in cases {
            let error =
                Config::from_layer(ConfigLayer::defaults().overridden_by(layer)).expect_err(key);
            assert!(error.to_string().contains(key), "{error}");
        }
    }

    #[test]
    fn redis_url_is_not_echoed() {
        let layer = ConfigLayer {
            ticket_store: Some("redis".into()),
            redis_url: Some("http://:secret@h".into()),
            ..Default::default()
        };
        let error =
            Config::from_layer(ConfigLayer::defaults().overridden_by(layer)).expect_err("invalid");

        assert!(!error.to_string().contains("secret"), "{error}");
    }

    #[test]
    fn trusted_proxies_parse() {
        let layer = layer_from_toml(
            "trusted_proxies = [\"127.0.0.1/32\", \"10.0.0.0/8\", \"::1\"]\nforwarded_header = \"Forwarded\"\n",
        );
        let config =
            Config::from_layer(ConfigLayer::defaults().overridden_by(layer)).expect("valid");

        assert_eq!(config.trusted_proxies.len(), 3);
        assert_eq!(config.forwarded_header, ForwardedHeader::Forwarded);

        for bad in [
            "trusted_proxies = [\"10.0.0.1/8\"]\n",
            "trusted_proxies = [\"proxy.example\"]\n",
            "forwarded_header = \"x-real-ip\"\n",
        ] {
            let layer = ConfigLayer::defaults().overridden_by(layer_from_toml(bad));
            let error = Config::from_layer(layer).expect_err("invalid");
            let key = bad.split(' ').next().expect("key");
            assert!(error.to_string().contains(key), "{error}");
        }
    }

    #[test]
    fn server_name_from_setting_or_listen() {
        let layer = layer_from_toml("server_name = \"https://cas.example.org:8443/\"\n");
        let config =
            Config::from_layer(ConfigLayer::defaults().overridden_by(layer)).expect("valid");
        let defaults = Config::from_defaults().expect("defaults");
        let everywhere = ServerName::from_listen("0.0.0.0:443".parse().expect("address"));
        let loopback6 = ServerName::from_listen("[::1]:8443".parse().expect("address"));

        assert_eq!(config.server_name.url(), "https://cas.example.org:8443");
        assert_eq!(config.server_name.host(), "cas.example.org");
        assert_eq!(defaults.server_name.url(), "https://127.0.0.1:8443");
        assert_eq!(defaults.server_name.host(), "127.0.0.1");
        assert_eq!(everywhere.url(), "https://localhost:443");
        assert_eq!(loopback6.url(), "https://[::1]:8443");
        assert_eq!(loopback6.host(), "[::1]");
    }

    #[test]
    fn server_name_rejects_more_than_an_origin() {
        for bad in [
            "cas.example.org",
            "ftp://cas.example.org",
            "https://",
            "https://cas.example.org/cas",
            "https://cas.example.org//",
            "https://cas.example.org/?a=b",
            "https://cas.example.org#top",
            "https://user@cas.example.org",
        ] {
            let error = ServerName::parse(bad).expect_err(bad);
            assert!(error.to_string().contains("server_name"), "{bad}: {error}");
        }
        let accepted = ServerName::parse("http://[::1]:8080").expect("IPv6 origin");
        assert_eq!(accepted.host(), "[::1]");
    }

    #[test]
    fn server_name_rejects_invalid_host_or_port() {
        let cases = [
            ("https://cas.example.org:99999", "port"),
            ("https://cas.example.org:65536", "port"),
            ("https://cas.example.org:0", "port"),
            ("https://cas.example.org:", "port"),
            ("https://cas.example.org:+443", "port"),
            ("https://[zz]", "IPv6"),
            ("https://[::1]x", "port"),
            ("https://[fe80::1%25eth0]", "IPv6"),
            ("https://999.1.1.1", "host"),
            ("https://cas..example.org", "host"),
            ("https://cas_example!$&()*+,;=.org", "host"),
            ("https://*", "host"),
            ("https://cas.exämple.org", "punycode"),
        ];
        for (bad, fix) in cases {
            let error = ServerName::parse(bad).expect_err(bad).to_string();
            assert!(error.contains("server_name"), "{bad}: {error}");
            assert!(error.contains(fix), "{bad}: {error}");
        }

        for good in [
            "https://cas.example.org:1",
            "https://cas.example.org:65535",
            "https://cas-1.example.org",
            "http://10.0.0.1:8080",
            "https://[2001:db8::1]:8443",
            "https://xn--caf-dma.example",
            "https://localhost",
        ] {
            assert!(ServerName::parse(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn metrics_path_and_log_format() {
        let layer = layer_from_toml("metrics_path = \"/metrics\"\nlog_format = \"json\"\n");
        let config =
            Config::from_layer(ConfigLayer::defaults().overridden_by(layer)).expect("valid");

        assert_eq!(config.metrics_path, "/metrics");
        assert_eq!(config.log_format, LogFormat::Json);
        let bad = layer_from_toml("log_format = \"xml\"\n");
        let error =
            Config::from_layer(ConfigLayer::defaults().overridden_by(bad)).expect_err("xml");
        assert!(error.to_string().contains("log_format"), "{error}");
    }

    #[test]
    fn attribute_queries_are_optional_and_checked() {
        let config = Config::from_defaults().expect("defaults");
        assert_eq!(config.attribute_query, None);
        assert_eq!(config.attribute_pairs_query, None);

        let set = layer_from_toml(
            "attribute_query = \"select mail from app_user where username=?\"\nattribute_pairs_query = \"select name, value from attr where username=?\"\n",
        );
        let config = Config::from_layer(ConfigLayer::defaults().overridden_by(set)).expect("valid");
        assert_eq!(
            config.attribute_query.as_deref(),
            Some("select mail from app_user where username=?")
        );
        assert!(config.attribute_pairs_query.is_some());

        for key in ["attribute_query", "attribute_pairs_query"] {
            let bad = layer_from_toml(&format!("{key} = \"select a from b where c=? or d=?\"\n"));
            let error =
                Config::from_layer(ConfigLayer::defaults().overridden_by(bad)).expect_err(key);
            assert!(error.to_string().contains(key), "{error}");
        }
    }

    #[test]
    fn password_settings_default_and_parse() {
        let config = Config::from_defaults().expect("defaults");
        assert_eq!(config.password_salt, SaltSource::None);
        assert_eq!(config.password_salt_position, SaltPosition::Before);
        assert!(!config.password_upgrade);
        assert_eq!(
            config.user_queries.disable,
            "update app_user set password='!' where username=?"
        );

        let set = layer_from_toml(
            "password_encoding = \"sha1\"\npassword_salt = \"prefix:$\"\npassword_salt_position = \"after\"\npassword_upgrade = true\n",
        );
        let config = Config::from_layer(ConfigLayer::defaults().overridden_by(set)).expect("valid");
        assert_eq!(config.password_encoding, PasswordEncoding::Sha1);
        assert_eq!(
            config.password_salt,
            SaltSource::Prefix {
                separator: "$".into()
            }
        );
        assert_eq!(config.password_salt_position, SaltPosition::After);
        assert!(config.password_upgrade);
    }

    #[test]
    fn invalid_password_settings_name_key() {
        let cases = [
            (
                "password_salt = \"prefix:a\"\npassword_encoding = \"md5\"\n",
                "password_salt",
            ),
            (
                "password_salt = \"column\"\npassword_encoding = \"bcrypt\"\n",
                "password_salt",
            ),
            ("password_salt = \"column\"\n", "password_salt"),
            (
                "password_salt_position = \"middle\"\n",
                "password_salt_position",
            ),
            (
                "password_update_query = \"update app_user set password=? where username=?\"\n",
                "password_update_query",
            ),
            (
                "user_add_query = \"insert into app_user (username) values (?)\"\n",
                "user_add_query",
            ),
            (
                "user_passwd_query = \"update app_user set password=?\"\n",
                "user_passwd_query",
            ),
            (
                "user_disable_query = \"delete from app_user\"\n",
                "user_disable_query",
            ),
        ];

        for (text, key) in cases {
            let error =
                Config::from_layer(ConfigLayer::defaults().overridden_by(layer_from_toml(text)))
                    .expect_err(key);
            assert!(error.to_string().contains(key), "{error}");
        }
    }

    #[test]
    fn root_base_path_is_empty() {
        let layer = ConfigLayer {
            base_path: Some("/".into()),
            ..Default::default()
        };
        let config =
            Config::from_layer(ConfigLayer::defaults().overridden_by(layer)).expect("valid");

        assert_eq!(config.base_path, "");
    }
}
