//! PostgreSQL for tests: one throwaway cluster per test process (or the one `S3IPFS_TEST_PG_URL` names) and a
//! fresh, migrated database per test. A test that needs PostgreSQL fails when none can be started: it never skips.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::{PgMeta, PgSettings};

/// The cluster's admin URL, and the script that runs it (its stdin pipe keeps it alive until this process exits).
struct Cluster {
    url: String,
    _script: Option<Child>,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

fn start_cluster() -> Cluster {
    if let Ok(url) = std::env::var("S3IPFS_TEST_PG_URL")
        && !url.is_empty()
    {
        return Cluster { url, _script: None };
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/services/pg-cluster.sh");
    let mut child = Command::new("bash")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {script}: {e}"));
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("{script} has no stdout"));
    let mut url = String::new();
    BufReader::new(stdout).read_line(&mut url).unwrap_or_else(|e| panic!("reading from {script}: {e}"));
    let url = url.trim().to_owned();
    assert!(url.starts_with("postgres://"), "PostgreSQL did not start (see {script}'s output above)");
    Cluster { url, _script: Some(child) }
}

/// The admin URL of the test cluster, started on first use.
pub fn cluster_url() -> String {
    CLUSTER.get_or_init(start_cluster).url.clone()
}

/// Settings for `url` as tests use them.
pub fn settings(url: &str) -> PgSettings {
    PgSettings {
        url: url.to_owned(),
        pool_size: 16,
        connect_timeout: Duration::from_secs(5),
        statement_timeout: Duration::from_secs(30),
        acquire_timeout: Duration::from_secs(30),
    }
}

/// The URL of a new, empty database on the test cluster.
pub async fn fresh_database_url() -> String {
    let admin = cluster_url();
    let (client, connection) =
        tokio_postgres::connect(&admin, tokio_postgres::NoTls).await.unwrap_or_else(|e| panic!("{admin}: {e}"));
    tokio::spawn(connection);
    let name = format!("t_{:016x}", rand_u64());
    client.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap_or_else(|e| panic!("create {name}: {e}"));
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(base, _)| base);
    format!("{base}/{name}")
}

/// A store on a new, migrated database.
pub async fn fresh_store() -> PgMeta {
    let url = fresh_database_url().await;
    PgMeta::connect(&settings(&url), true).await.unwrap_or_else(|e| panic!("{url}: {e}"))
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    hasher.finish()
}
