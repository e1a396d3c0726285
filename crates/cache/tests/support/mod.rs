//! A throwaway Redis for the cache tests: the one `S3IPFS_TEST_REDIS_URL` names, or one started on first use with
//! tests/services/redis-server.sh (its stdin pipe keeps it alive until the test process exits). A Redis that cannot
//! start fails the test: nothing is skipped.

#![allow(dead_code)] // each test binary uses its own part of it

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use s3ipfs_cache::{Redis, RedisSettings};

/// A Redis server run by the test; stopped when dropped.
pub struct Server {
    /// Its URL.
    pub url: String,
    child: Child,
}

impl Server {
    /// Starts one, on `port` when given (a restart comes back on the same port).
    pub fn start(port: Option<u16>) -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/services/redis-server.sh");
        let mut command = Command::new("bash");
        command.arg(script).stdin(Stdio::piped()).stdout(Stdio::piped());
        if let Some(port) = port {
            command.env("REDIS_PORT", port.to_string());
        }
        let mut child = command.spawn().unwrap_or_else(|e| panic!("starting {script}: {e}"));
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("{script} has no stdout"));
        let mut url = String::new();
        BufReader::new(stdout).read_line(&mut url).unwrap_or_else(|e| panic!("reading from {script}: {e}"));
        let url = url.trim().to_owned();
        assert!(url.starts_with("redis://"), "Redis did not start (see {script}'s output above)");
        Server { url, child }
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.url.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("no port in {}", self.url))
    }

    /// Stops it and waits until it is gone.
    pub fn stop(mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

static SHARED: OnceLock<(String, Option<Server>)> = OnceLock::new();

/// The URL of the shared test Redis.
pub fn url() -> String {
    SHARED
        .get_or_init(|| match std::env::var("S3IPFS_TEST_REDIS_URL") {
            Ok(url) if !url.is_empty() => (url, None),
            _ => {
                let server = Server::start(None);
                (server.url.clone(), Some(server))
            }
        })
        .0
        .clone()
}

/// A fresh key prefix.
pub fn prefix() -> String {
    format!("t{:016x}:", rand::random::<u64>())
}

/// A connection to `url` under `prefix`, with the gateway's default timeout.
pub fn connect(url: &str, prefix: &str) -> Redis {
    Redis::connect(&RedisSettings {
        url: url.to_owned(),
        prefix: prefix.to_owned(),
        timeout: Duration::from_millis(200),
        open_for: Duration::from_millis(500),
        pool_size: 4,
    })
    .expect("redis settings")
}
