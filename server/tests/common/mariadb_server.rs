//! A mariadbd of one test alone, on its own port and data folder, that the test can stop
//! and restart. The shared MariaDB of the machine is never touched.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sqlx::{Connection, Executor, MySqlConnection};
use tempfile::TempDir;

use super::redis_server::free_port;

/// The database the private server holds for the test.
pub const DATABASE: &str = "cas";

/// A private MariaDB server without grant tables, so root connects without a password.
/// Dropping it stops the process and deletes its data folder, also when the test panics.
pub struct PrivateMariaDb {
    pub port: u16,
    child: Option<Child>,
    folder: TempDir,
}

impl PrivateMariaDb {
    /// Starts a server on a free port with an empty data folder. The server creates its
    /// files on first start, which takes well under a second, instead of running
    /// mariadb-install-db, because grant tables are skipped anyway.
    pub async fn start() -> Self {
        let folder = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(folder.path().join("data")).expect("data folder");
        let mut server = Self {
            port: free_port(),
            child: None,
            folder,
        };
        server.restart().await;
        server
            .admin_execute(&format!("create database {DATABASE}"))
            .await;
        server
    }

    /// Returns the URL of [`DATABASE`] as root.
    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}/{DATABASE}", self.port)
    }

    fn admin_url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}", self.port)
    }

    /// Runs one statement on a new connection without a default database.
    pub async fn admin_execute(&self, statement: &str) {
        let mut connection = MySqlConnection::connect(&self.admin_url())
            .await
            .expect("connect to the private MariaDB");
        connection
            .execute(statement)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
        connection.close().await.expect("close");
    }

    /// Opens a connection to [`DATABASE`], for example to hold a table lock.
    pub async fn connect(&self) -> MySqlConnection {
        MySqlConnection::connect(&self.url())
            .await
            .expect("connect to the private MariaDB")
    }

    /// Stops the server with SIGTERM by its process id and waits until it has exited,
    /// so that its port refuses connections afterwards.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id().to_string();
        let terminated = Command::new("kill").args(["-TERM", &pid]).status();
        if !matches!(terminated, Ok(status) if status.success()) {
            let _ = child.kill();
        }
        let _ = child.wait();
    }

    /// Starts the server on the same port and data folder and waits until it accepts connections.
    pub async fn restart(&mut self) {
        self.stop();
        let folder = self.folder.path();
        let child = Command::new("mariadbd")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", folder.join("data").display()))
            .arg(format!("--socket={}", folder.join("sock").display()))
            .arg(format!("--pid-file={}", folder.join("pid").display()))
            .arg(format!(
                "--log-error={}",
                folder.join("error.log").display()
            ))
            .arg(format!("--port={}", self.port))
            .args(["--bind-address=127.0.0.1", "--skip-grant-tables"])
            .args(["--skip-name-resolve", "--skip-log-bin"])
            .args(["--innodb-buffer-pool-size=8M", "--innodb-log-file-size=4M"])
            // mariadbd rejects running as root unless --user names the account to run as.
            .arg("--user=root")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mariadbd");
        self.child = Some(child);
        self.wait_until_ready().await;
    }

    async fn wait_until_ready(&mut self) {
        for _ in 0..200 {
            if let Ok(connection) = MySqlConnection::connect(&self.admin_url()).await {
                let _ = connection.close().await;
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("{}", self.startup_failure(&format!("exited with {status}")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{}", self.startup_failure("did not answer within 10 s"));
    }

    fn startup_failure(&self, reason: &str) -> String {
        let log = std::fs::read_to_string(self.folder.path().join("error.log"));
        format!(
            "private mariadbd on port {} {reason}; its log:\n{}",
            self.port,
            log.unwrap_or_default()
        )
    }
}

impl Drop for PrivateMariaDb {
    fn drop(&mut self) {
        self.stop();
    }
}
