//! Redis helpers: a random key prefix on the machine's shared Redis whose keys are
//! deleted when it drops, and a private redis-server that a test can stop and restart.

use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cas_server::config::{RedisSettings, TicketStoreSettings};
use tempfile::TempDir;

/// The shared Redis server of the test machine. Tests touch only keys under their prefix.
pub const SHARED_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// A key prefix `cas-test-<random hex>:` on the shared Redis. Dropping it deletes every
/// key under the prefix, also when the test panics.
pub struct RedisPrefix {
    pub prefix: String,
    url: String,
}

impl RedisPrefix {
    pub fn new() -> Self {
        Self::on(SHARED_REDIS_URL)
    }

    pub fn on(url: &str) -> Self {
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).expect("random");
        Self {
            prefix: format!("cas-test-{}:", hex::encode(random)),
            url: url.to_owned(),
        }
    }

    /// Store settings that point a server at this prefix.
    pub fn settings(&self) -> TicketStoreSettings {
        TicketStoreSettings::Redis(RedisSettings {
            url: self.url.clone(),
            key_prefix: self.prefix.clone(),
            pool_size: 2,
        })
    }

    /// Returns every key under the prefix, found with SCAN MATCH.
    pub fn keys(&self) -> Vec<String> {
        let client = redis::Client::open(self.url.as_str()).expect("redis URL");
        let mut connection = client.get_connection().expect("connect to Redis");
        scan_prefix(&mut connection, &self.prefix)
    }

    /// Opens a plain connection for checks such as PTTL.
    pub fn connection(&self) -> redis::Connection {
        let client = redis::Client::open(self.url.as_str()).expect("redis URL");
        client.get_connection().expect("connect to Redis")
    }
}

impl Drop for RedisPrefix {
    fn drop(&mut self) {
        let url = self.url.clone();
        let prefix = self.prefix.clone();
        let cleaned = std::thread::spawn(move || -> redis::RedisResult<()> {
            let client = redis::Client::open(url.as_str())?;
            let mut connection = client.get_connection_with_timeout(Duration::from_secs(2))?;
            for key in scan_prefix(&mut connection, &prefix) {
                redis::cmd("DEL").arg(key).query::<()>(&mut connection)?;
            }
            Ok(())
        })
        .join();
        if !matches!(cleaned, Ok(Ok(()))) {
            eprintln!("could not delete the Redis keys under {}", self.prefix);
        }
    }
}

fn scan_prefix(connection: &mut redis::Connection, prefix: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query(connection)
            .unwrap_or((0, Vec::new()));
        keys.extend(batch);
        if next == 0 {
            return keys;
        }
        cursor = next;
    }
}

/// A redis-server of this test alone, on its own port and data folder, without
/// persistence. It is stopped by its process id.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
    folder: TempDir,
    password: Option<String>,
}

impl PrivateRedis {
    pub fn start() -> Self {
        Self::start_with_password(None)
    }

    /// Starts a server that requires `password` when one is given.
    pub fn start_with_password(password: Option<&str>) -> Self {
        let port = free_port();
        let folder = tempfile::tempdir().expect("temp dir");
        let mut redis = Self {
            port,
            child: None,
            folder,
            password: password.map(str::to_owned),
        };
        redis.restart();
        redis
    }

    /// Returns the URL with the password, when the server has one.
    pub fn url(&self) -> String {
        match &self.password {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    /// Kills the server process.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server on the same port and waits until it answers PING.
    pub fn restart(&mut self) {
        self.stop();
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.folder.path());
        if let Some(password) = &self.password {
            command.args(["--requirepass", password]);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        self.wait_for_ping();
    }

    fn wait_for_ping(&self) {
        let client = redis::Client::open(self.url()).expect("redis URL");
        for _ in 0..100 {
            let answered = client
                .get_connection_with_timeout(Duration::from_millis(200))
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            if answered.is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("private redis-server on port {} did not start", self.port);
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Returns a TCP port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    let listener = StdListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}
