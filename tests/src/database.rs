//! A MariaDB database of its own for one test, dropped when the test ends.

use sqlx::mysql::MySqlPoolOptions;
use sqlx::{Executor, MySqlPool};

/// Server URL of the machine's MariaDB, overridable for other setups.
pub fn mysql_server_url() -> String {
    std::env::var("CAS_TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".to_owned())
}

/// A database named `cas_e2e_<random>` holding the classic `app_user` table.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    /// Creates the database and the classic table of CAS 3.x deployments, unchanged.
    pub async fn create() -> Self {
        let mut random = [0u8; 6];
        getrandom::fill(&mut random).unwrap_or_else(|e| panic!("getrandom failed: {e}"));
        let name = format!("cas_e2e_{}", hex::encode(random));

        let admin = connect(&mysql_server_url()).await;
        admin
            .execute(format!("CREATE DATABASE `{name}`").as_str())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        admin.close().await;

        let url = format!("{}/{name}", mysql_server_url());
        let pool = connect(&url).await;
        let table =
            "CREATE TABLE app_user (username varchar(30) primary key, password varchar(45))";
        pool.execute(table).await.unwrap_or_else(|e| panic!("{e}"));
        pool.close().await;
        Self { name, url }
    }

    /// Adds a user with the password stored as plain text, as legacy tables do.
    pub async fn add_plain_user(&self, username: &str, password: &str) {
        let pool = connect(&self.url).await;
        sqlx::query("INSERT INTO app_user (username, password) VALUES (?, ?)")
            .bind(username)
            .bind(password)
            .execute(&pool)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        pool.close().await;
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let statement = format!("DROP DATABASE IF EXISTS `{}`", self.name);
        // Drop runs outside any async context, so a short-lived runtime does the work.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let pool = MySqlPoolOptions::new()
                    .max_connections(1)
                    .connect(&mysql_server_url())
                    .await
                    .ok()?;
                pool.execute(statement.as_str()).await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}

async fn connect(url: &str) -> MySqlPool {
    MySqlPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to MariaDB at {url}: {e}"))
}
