//! Command-line interface: `run` (the default), `check-config`, `print-config`,
//! `dev-certs` and `users`. Every `run` option can also come from a `CAS_*` environment
//! variable; a flag wins over its variable. The other commands that read settings take
//! the same options as `run`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, ConfigError, ConfigLayer};

/// CAS 3.0 single sign-on server over HTTPS.
#[derive(Debug, Parser)]
#[command(name = "cas-server", version, args_conflicts_with_subcommands = true)]
#[command(
    after_help = "Settings are layered: built-in defaults < TOML file < CAS_* environment variables < flags."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Options for `run`, accepted without the subcommand name.
    #[command(flatten)]
    pub run: RunArgs,
}

impl Cli {
    /// Returns the subcommand to run, which is `run` when none was named.
    pub fn into_command(self) -> Command {
        self.command.unwrap_or(Command::Run(self.run))
    }
}

// The command is parsed once per process, so the size of its larger variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve HTTPS (the default when no subcommand is given).
    Run(RunArgs),
    /// Check the settings (defaults, file, environment, flags) and print every problem
    /// with its key; exit status 2 when there is one.
    CheckConfig(RunArgs),
    /// Print the effective settings as TOML, with passwords in URLs hidden.
    PrintConfig(RunArgs),
    /// Create a development CA and a server certificate signed by it.
    DevCerts(DevCertsArgs),
    /// Add a user, set a password or disable a user in the configured user database. The
    /// password is read from a terminal prompt, or as one line from standard input.
    #[command(subcommand)]
    Users(UsersCommand),
}

/// Actions of `users`. New passwords are stored as Argon2id in every encoding.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Insert a user with user_add_query.
    Add(UserArgs),
    /// Set a user's password with user_passwd_query; this also enables a disabled user.
    Passwd(UserArgs),
    /// Disable a user with user_disable_query, so that no password verifies.
    Disable(UserArgs),
}

/// A user name and the settings that locate the user database.
#[derive(Debug, Clone, Args)]
pub struct UserArgs {
    /// The user name, exactly as stored.
    #[arg(value_name = "NAME")]
    pub name: String,

    #[command(flatten)]
    pub settings: RunArgs,
}

/// Options of `run`. Each is unset unless given, so lower layers show through.
#[derive(Debug, Clone, Default, Args)]
pub struct RunArgs {
    /// TOML configuration file; see server/cas-server.example.toml for every key.
    #[arg(long, env = "CAS_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address and TCP port to listen on [default: 127.0.0.1:8443].
    #[arg(long, env = "CAS_LISTEN", value_name = "IP:PORT")]
    pub listen: Option<String>,

    /// Public URL of the server without the base path, such as
    /// https://cas.example.org:8443. The SAML 1.1 Issuer is its host. Empty means
    /// https:// and the listen address [default: empty].
    #[arg(long, env = "CAS_SERVER_NAME", value_name = "URL")]
    pub server_name: Option<String>,

    /// URL path prefix of every endpoint and the TGC cookie path [default: /cas].
    #[arg(long, env = "CAS_BASE_PATH", value_name = "PATH")]
    pub base_path: Option<String>,

    /// PEM file with the server certificate, followed by its chain [default: certs/server.pem].
    #[arg(long, env = "CAS_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// PEM file with the server's private key [default: certs/server-key.pem].
    #[arg(long, env = "CAS_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// User database as mysql://user:password@host:port/database; empty selects the
    /// embedded SQLite demo store [default: empty].
    #[arg(
        long,
        env = "CAS_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    /// SQLite file of the embedded demo store, created with its folder if missing
    /// [default: data/cas-demo.db].
    #[arg(long, env = "CAS_SQLITE_PATH", value_name = "FILE")]
    pub sqlite_path: Option<PathBuf>,

    /// SQL returning the stored password; `?` is the typed user name
    /// [default: select password from app_user where username=?].
    #[arg(long, env = "CAS_PASSWORD_QUERY", value_name = "SQL")]
    pub password_query: Option<String>,

    /// SQL returning the stored user name; `?` is the typed user name
    /// [default: select username from app_user where username=?].
    #[arg(long, env = "CAS_USERNAME_QUERY", value_name = "SQL")]
    pub username_query: Option<String>,

    /// SQL returning user attributes as columns, each named after its column. The `?` is
    /// the stored user name, and empty turns it off [default: empty].
    #[arg(long, env = "CAS_ATTRIBUTE_QUERY", value_name = "SQL")]
    pub attribute_query: Option<String>,

    /// SQL returning rows of attribute name and value, for multi-valued attributes. The
    /// `?` is the stored user name, and empty turns it off [default: empty].
    #[arg(long, env = "CAS_ATTRIBUTE_PAIRS_QUERY", value_name = "SQL")]
    pub attribute_pairs_query: Option<String>,

    /// Encoding of stored passwords: argon2id, bcrypt, pbkdf2-sha256 (Django format), md5,
    /// sha1, sha256, sha512 (hex digests) or plain. Argon2id PHC strings are accepted in
    /// every encoding [default: argon2id].
    #[arg(long, env = "CAS_PASSWORD_ENCODING", value_name = "ENCODING")]
    pub password_encoding: Option<String>,

    /// Salt of a hex digest encoding: none, column (the second column of the password
    /// query) or prefix:SEPARATOR (stored as salt, separator, digest) [default: none].
    #[arg(long, env = "CAS_PASSWORD_SALT", value_name = "SALT")]
    pub password_salt: Option<String>,

    /// Side of the password on which the salt is hashed: before (salt + password) or
    /// after (password + salt) [default: before].
    #[arg(long, env = "CAS_PASSWORD_SALT_POSITION", value_name = "POSITION")]
    pub password_salt_position: Option<String>,

    /// Rewrite a correct password stored in another encoding as Argon2id with
    /// password_update_query: true or false [default: false].
    #[arg(long, env = "CAS_PASSWORD_UPGRADE", value_name = "BOOL")]
    pub password_upgrade: Option<bool>,

    /// SQL update of the upgrade; its three `?` are the new hash, the user name and the
    /// old stored password [default: update app_user set password=? where username=? and
    /// password=?].
    #[arg(long, env = "CAS_PASSWORD_UPDATE_QUERY", value_name = "SQL")]
    pub password_update_query: Option<String>,

    /// SQL insert of `users add`; its two `?` are the user name and the Argon2id hash
    /// [default: insert into app_user (username, password) values (?, ?)].
    #[arg(long, env = "CAS_USER_ADD_QUERY", value_name = "SQL")]
    pub user_add_query: Option<String>,

    /// SQL update of `users passwd`; its two `?` are the Argon2id hash and the user name
    /// [default: update app_user set password=? where username=?].
    #[arg(long, env = "CAS_USER_PASSWD_QUERY", value_name = "SQL")]
    pub user_passwd_query: Option<String>,

    /// SQL update of `users disable`; its `?` is the user name. A stored password that
    /// starts with ! never verifies [default: update app_user set password='!' where
    /// username=?].
    #[arg(long, env = "CAS_USER_DISABLE_QUERY", value_name = "SQL")]
    pub user_disable_query: Option<String>,

    /// Lifetime of a service ticket, in seconds [default: 300].
    #[arg(long, env = "CAS_SERVICE_TICKET_TTL_SECONDS", value_name = "SECONDS")]
    pub service_ticket_ttl_seconds: Option<u64>,

    /// Lifetime of a proxy ticket between /proxy and its validation, in seconds
    /// [default: 300].
    #[arg(long, env = "CAS_PROXY_TICKET_TTL_SECONDS", value_name = "SECONDS")]
    pub proxy_ticket_ttl_seconds: Option<u64>,

    /// Lifetime of an SSO session from its login, in seconds [default: 7200].
    #[arg(long, env = "CAS_SSO_SESSION_TTL_SECONDS", value_name = "SECONDS")]
    pub sso_session_ttl_seconds: Option<u64>,

    /// Time after which an unused SSO session ends, in seconds; each service ticket
    /// issued from the session restarts it, up to sso_session_ttl_seconds [default: 1800].
    #[arg(long, env = "CAS_SSO_SESSION_IDLE_SECONDS", value_name = "SECONDS")]
    pub sso_session_idle_seconds: Option<u64>,

    /// Retries of a single logout request to a service after its first attempt fails,
    /// from 0 to 10 [default: 2].
    #[arg(long, env = "CAS_SLO_RETRIES", value_name = "RETRIES")]
    pub slo_retries: Option<u64>,

    /// Failed logins per typed user name within the sliding throttle window before
    /// further attempts get 429; 0 turns this limit off, at most 10000 [default: 5].
    #[arg(long, env = "CAS_THROTTLE_USER_FAILURES", value_name = "FAILURES")]
    pub throttle_user_failures: Option<u64>,

    /// Failed logins per client address within the sliding throttle window before
    /// further attempts get 429; 0 turns this limit off, at most 10000 [default: 20].
    #[arg(long, env = "CAS_THROTTLE_ADDRESS_FAILURES", value_name = "FAILURES")]
    pub throttle_address_failures: Option<u64>,

    /// Length of the login throttle window, in seconds, from 1 to 2592000 [default: 300].
    #[arg(long, env = "CAS_THROTTLE_WINDOW_SECONDS", value_name = "SECONDS")]
    pub throttle_window_seconds: Option<u64>,

    /// Interval between sweeps that remove expired tickets and send single logout
    /// requests for expired sessions, in seconds, from 1 to 300 [default: 60].
    #[arg(
        long,
        env = "CAS_SESSION_SWEEP_INTERVAL_SECONDS",
        value_name = "SECONDS"
    )]
    pub session_sweep_interval_seconds: Option<u64>,

    /// Where tickets and SSO sessions live: memory (this process only) or redis (shared
    /// by every node with the same redis_url and redis_key_prefix) [default: memory].
    #[arg(long, env = "CAS_TICKET_STORE", value_name = "STORE")]
    pub ticket_store: Option<String>,

    /// Most entries (tickets, sessions, counters) the memory store holds, in entries;
    /// beyond it new logins get 503 [default: 1000000].
    #[arg(long, env = "CAS_MEMORY_MAX_TICKETS", value_name = "ENTRIES")]
    pub memory_max_tickets: Option<u64>,

    /// Redis URL for ticket_store = redis: redis://[:password@]host:port[/db], or
    /// rediss:// for TLS [default: empty].
    #[arg(
        long,
        env = "CAS_REDIS_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub redis_url: Option<String>,

    /// Prefix of every Redis key this server writes [default: cas:].
    #[arg(long, env = "CAS_REDIS_KEY_PREFIX", value_name = "PREFIX")]
    pub redis_key_prefix: Option<String>,

    /// Number of multiplexed Redis connections, in connections [default: 1].
    #[arg(long, env = "CAS_REDIS_POOL_SIZE", value_name = "CONNECTIONS")]
    pub redis_pool_size: Option<u64>,

    /// Reverse proxies, as IP addresses or CIDR networks separated by commas, whose
    /// forwarding header gives the client address for throttling and the audit log
    /// [default: none].
    #[arg(
        long,
        env = "CAS_TRUSTED_PROXIES",
        value_name = "NETWORKS",
        value_delimiter = ','
    )]
    pub trusted_proxies: Option<Vec<String>>,

    /// Header that trusted proxies list the forwarding chain in: X-Forwarded-For or
    /// Forwarded [default: X-Forwarded-For].
    #[arg(long, env = "CAS_FORWARDED_HEADER", value_name = "HEADER")]
    pub forwarded_header: Option<String>,

    /// URL path of the Prometheus metrics endpoint; empty means {base_path}/metrics
    /// [default: empty].
    #[arg(long, env = "CAS_METRICS_PATH", value_name = "PATH")]
    pub metrics_path: Option<String>,

    /// Format of log lines on stderr: text or json (one object per line) [default: text].
    #[arg(long, env = "CAS_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,

    /// PEM file of certificates trusted for proxy callbacks and logout requests, beside
    /// the system's roots [default: none].
    #[arg(long, env = "CAS_OUTBOUND_CA_FILE", value_name = "FILE")]
    pub outbound_ca_file: Option<PathBuf>,

    /// Directory of the logo files that services name with theme_logo, served under
    /// {base_path}/themes/ [default: none].
    #[arg(long, env = "CAS_THEME_DIR", value_name = "DIRECTORY")]
    pub theme_dir: Option<PathBuf>,

    /// Time limit of each proxy callback and logout request, in seconds [default: 5].
    #[arg(long, env = "CAS_OUTBOUND_TIMEOUT_SECONDS", value_name = "SECONDS")]
    pub outbound_timeout_seconds: Option<u64>,

    /// Time limit of each user database lookup of a login (user name, password,
    /// attributes), in seconds; past it the login gets 503 [default: 5].
    #[arg(long, env = "CAS_DATABASE_TIMEOUT_SECONDS", value_name = "SECONDS")]
    pub database_timeout_seconds: Option<u64>,

    /// Open client connections at most; further clients are dropped until one closes
    /// [default: 1024].
    #[arg(long, env = "CAS_MAX_CONNECTIONS", value_name = "CONNECTIONS")]
    pub max_connections: Option<u64>,
}

impl RunArgs {
    /// Returns the environment and flag layer. Clap has already let flags win over variables.
    pub fn layer(&self) -> ConfigLayer {
        ConfigLayer {
            listen: self.listen.clone(),
            server_name: self.server_name.clone(),
            base_path: self.base_path.clone(),
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            database_url: self.database_url.clone(),
            sqlite_path: self.sqlite_path.clone(),
            password_query: self.password_query.clone(),
            username_query: self.username_query.clone(),
            attribute_query: self.attribute_query.clone(),
            attribute_pairs_query: self.attribute_pairs_query.clone(),
            password_encoding: self.password_encoding.clone(),
            password_salt: self.password_salt.clone(),
            password_salt_position: self.password_salt_position.clone(),
            password_upgrade: self.password_upgrade,
            password_update_query: self.password_update_query.clone(),
            user_add_query: self.user_add_query.clone(),
            user_passwd_query: self.user_passwd_query.clone(),
            user_disable_query: self.user_disable_query.clone(),
            service_ticket_ttl_seconds: self.service_ticket_ttl_seconds,
            proxy_ticket_ttl_seconds: self.proxy_ticket_ttl_seconds,
            sso_session_ttl_seconds: self.sso_session_ttl_seconds,
            sso_session_idle_seconds: self.sso_session_idle_seconds,
            slo_retries: self.slo_retries,
            throttle_user_failures: self.throttle_user_failures,
            throttle_address_failures: self.throttle_address_failures,
            throttle_window_seconds: self.throttle_window_seconds,
            trusted_proxies: self.trusted_proxies.clone(),
            forwarded_header: self.forwarded_header.clone(),
            session_sweep_interval_seconds: self.session_sweep_interval_seconds,
            ticket_store: self.ticket_store.clone(),
            memory_max_tickets: self.memory_max_tickets,
            redis_url: self.redis_url.clone(),
            redis_key_prefix: self.redis_key_prefix.clone(),
            redis_pool_size: self.redis_pool_size,
            metrics_path: self.metrics_path.clone(),
            log_format: self.log_format.clone(),
            outbound_ca_file: self.outbound_ca_file.clone(),
            theme_dir: self.theme_dir.clone(),
            outbound_timeout_seconds: self.outbound_timeout_seconds,
            database_timeout_seconds: self.database_timeout_seconds,
            max_connections: self.max_connections,
            services: None,
        }
    }

    /// Merges defaults, the configuration file and these options, without checking them.
    pub fn merged_layer(&self) -> Result<ConfigLayer, ConfigError> {
        let file = match &self.config {
            Some(path) => ConfigLayer::from_toml_file(path)?,
            None => ConfigLayer::default(),
        };
        Ok(ConfigLayer::defaults()
            .overridden_by(file)
            .overridden_by(self.layer()))
    }

    /// Merges defaults, the configuration file and these options, then checks the result.
    pub fn load_config(&self) -> Result<Config, ConfigError> {
        let mut config = Config::from_layer(self.merged_layer()?)?;
        config.config_file = self.config.clone();
        Ok(config)
    }
}

/// Options of `dev-certs`.
#[derive(Debug, Clone, Args)]
pub struct DevCertsArgs {
    /// Folder for ca.pem, ca-key.pem, server.pem and server-key.pem; created if missing.
    #[arg(long, value_name = "DIR", default_value = "certs")]
    pub out: PathBuf,

    /// Host name or IP address the server certificate is valid for; repeat for several.
    /// IP addresses become IP subject alternative names.
    #[arg(long = "name", value_name = "NAME", default_values_t = ["localhost".to_owned(), "127.0.0.1".to_owned()])]
    pub names: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(arguments: &[&str]) -> Command {
        let mut argv = vec!["cas-server"];
        argv.extend_from_slice(arguments);
        Cli::try_parse_from(argv)
            .expect("valid command line")
            .into_command()
    }

    #[test]
    fn run_is_the_default() {
        let Command::Run(args) = parse(&["--listen", "127.0.0.1:9443"]) else {
            panic!("expected run");
        };

        assert_eq!(args.listen.as_deref(), Some("127.0.0.1:9443"));
    }

    #[test]
    fn run_subcommand_takes_same_flags() {
        let Command::Run(args) = parse(&["run", "--service-ticket-ttl-seconds", "5"]) else {
            panic!("expected run");
        };

        assert_eq!(args.service_ticket_ttl_seconds, Some(5));
    }

    #[test]
    fn dev_certs_defaults_names() {
        let Command::DevCerts(args) = parse(&["dev-certs", "--out", "x"]) else {
            panic!("expected dev-certs");
        };

        assert_eq!(
            args.names,
            vec!["localhost".to_owned(), "127.0.0.1".to_owned()]
        );
        assert_eq!(args.out, PathBuf::from("x"));
    }

    #[test]
    fn users_subcommands_take_name_and_settings() {
        let Command::Users(UsersCommand::Add(args)) =
            parse(&["users", "add", "bob", "--password-encoding", "md5"])
        else {
            panic!("expected users add");
        };
        assert_eq!(args.name, "bob");
        assert_eq!(args.settings.password_encoding.as_deref(), Some("md5"));

        assert!(matches!(
            parse(&["users", "passwd", "bob"]),
            Command::Users(UsersCommand::Passwd(_))
        ));
        assert!(matches!(
            parse(&["users", "disable", "bob"]),
            Command::Users(UsersCommand::Disable(_))
        ));
    }

    #[test]
    fn users_takes_no_password_flag() {
        let argv = ["cas-server", "users", "add", "bob", "--password", "x"];

        assert!(Cli::try_parse_from(argv).is_err());
    }

    #[test]
    fn flags_override_file() {
        let folder = tempfile::tempdir().expect("temp dir");
        let file = folder.path().join("cas.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:1000\"\nbase_path = \"/sso\"\n")
            .expect("write");
        let args = RunArgs {
            config: Some(file),
            listen: Some("127.0.0.1:2000".into()),
            ..Default::default()
        };

        let config = args.load_config().expect("valid");

        assert_eq!(config.listen.to_string(), "127.0.0.1:2000");
        assert_eq!(config.base_path, "/sso");
    }

    #[test]
    fn help_names_units() {
        let help = <Cli as clap::CommandFactory>::command()
            .render_long_help()
            .to_string();

        assert!(help.contains("in seconds"));
        assert!(help.contains("CAS_SERVICE_TICKET_TTL_SECONDS"));
    }
}
