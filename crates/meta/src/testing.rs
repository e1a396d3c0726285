//! PostgreSQL for tests and benchmarks: one throwaway cluster per test process (or the one `S3IPFS_TEST_PG_URL`
//! names), a fresh, migrated database per test, and bulk loads of a million keys for listing benchmarks. A test that
//! needs PostgreSQL fails when none can be started: it never skips.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::{PgMeta, PgSettings};

/// A throwaway cluster: its admin URL, and the script that runs it (its stdin pipe keeps it alive until this value
/// is dropped or the process exits).
pub struct Cluster {
    url: String,
    _script: Option<Child>,
}

impl Cluster {
    /// Starts a cluster on loopback; `durable` keeps fsync and synchronous commits on (benchmarks), otherwise they
    /// are off (tests). `cpu` pins the server to one core (`taskset`), when given.
    pub fn start(durable: bool, cpu: Option<usize>) -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/services/pg-cluster.sh");
        let mut command = match cpu {
            Some(cpu) => {
                let mut command = Command::new("taskset");
                command.args(["-c", &cpu.to_string(), "bash", script]);
                command
            }
            None => {
                let mut command = Command::new("bash");
                command.arg(script);
                command
            }
        };
        let mut child = command
            .env("PG_FSYNC", if durable { "on" } else { "off" })
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

    /// The admin URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

/// The admin URL of the test cluster: the one `S3IPFS_TEST_PG_URL` names, or one started on first use.
pub fn cluster_url() -> String {
    CLUSTER
        .get_or_init(|| match std::env::var("S3IPFS_TEST_PG_URL") {
            Ok(url) if !url.is_empty() => Cluster { url, _script: None },
            _ => Cluster::start(false, None),
        })
        .url
        .clone()
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
    create_database(&cluster_url()).await
}

/// The URL of a new, empty database on the cluster at `admin`.
pub async fn create_database(admin: &str) -> String {
    let client = connect(admin).await;
    let name = format!("t_{:016x}", rand_u64());
    client.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap_or_else(|e| panic!("create {name}: {e}"));
    let base = admin.rsplit_once('/').map_or(admin, |(base, _)| base);
    format!("{base}/{name}")
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) =
        tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap_or_else(|e| panic!("{url}: {e}"));
    tokio::spawn(connection);
    client
}

/// The key of the `i`th object of a bulk load: three levels, `a000/b0/c00` … `a999/b9/c99` for a million objects.
pub fn bulk_key(i: u64) -> String {
    format!("a{:03}/b{}/c{:02}", i / 1000, (i / 100) % 10, i % 100)
}

/// Loads `count` empty committed objects named by [`bulk_key`] into `bucket` of the PostgreSQL database at `url`,
/// in one statement (benchmark fixtures; the bucket must exist).
pub async fn bulk_load_postgres(url: &str, bucket: &str, count: u64) {
    let client = connect(url).await;
    let count = i64::try_from(count).unwrap_or(i64::MAX);
    client
        .execute(
            "WITH k AS (SELECT convert_to(format('a%s/b%s/c%s', lpad((i / 1000)::text, 3, '0'), (i / 100) % 10, \
                 lpad((i % 100)::text, 2, '0')), 'UTF8') AS key FROM generate_series(0, $2::bigint - 1) AS i), \
             v AS (INSERT INTO object_versions (bucket, key, seq, version_id, state, modified_at, size, etag) \
                 SELECT $1, key, 1, 'null', 1, 0, 0, '\"d41d8cd98f00b204e9800998ecf8427e\"' FROM k RETURNING id, key) \
             INSERT INTO object_heads (bucket, key, last_seq, latest_id, latest_object) \
                 SELECT $1, key, 1, id, TRUE FROM v",
            &[&bucket, &count],
        )
        .await
        .unwrap_or_else(|e| panic!("bulk load: {e}"));
    // The steady state autovacuum keeps: statistics, and a visibility map that lets index-only scans skip the heap.
    client.batch_execute("VACUUM ANALYZE").await.unwrap_or_else(|e| panic!("vacuum: {e}"));
}

/// What PostgreSQL plans for the listing of one page of `bucket` (EXPLAIN of the store's own statement).
pub async fn explain_listing(url: &str, bucket: &str) -> String {
    let client = connect(url).await;
    let rows = client
        .query(
            "EXPLAIN SELECT v.key, v.seq FROM object_heads h JOIN object_versions v ON v.id = h.latest_id \
             WHERE h.bucket = $1 AND h.latest_object AND h.key > $2 AND h.key < $3 ORDER BY h.key LIMIT 1000",
            &[&bucket, &b"a500".as_slice(), &b"a501".as_slice()],
        )
        .await
        .unwrap_or_else(|e| panic!("explain: {e}"));
    rows.iter().map(|row| row.get::<_, String>(0)).collect::<Vec<_>>().join("\n")
}

/// Loads `count` empty committed objects named by [`bulk_key`] into `bucket` of the SQLite database at `path`, in
/// one transaction (benchmark fixtures; the bucket must exist).
pub fn bulk_load_sqlite(path: &std::path::Path, bucket: &str, count: u64) {
    let mut conn = rusqlite::Connection::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    conn.busy_timeout(Duration::from_secs(30)).unwrap_or_else(|e| panic!("busy timeout: {e}"));
    let tx = conn.transaction().unwrap_or_else(|e| panic!("begin: {e}"));
    {
        let mut version = tx
            .prepare(
                "INSERT INTO object_versions (bucket, key, seq, version_id, state, modified_at, size, etag) \
                 VALUES (?1, ?2, 1, 'null', 1, 0, 0, '\"d41d8cd98f00b204e9800998ecf8427e\"')",
            )
            .unwrap_or_else(|e| panic!("prepare: {e}"));
        let mut head = tx
            .prepare(
                "INSERT INTO object_heads (bucket, key, last_seq, latest_id, latest_object) VALUES (?1, ?2, 1, ?3, 1)",
            )
            .unwrap_or_else(|e| panic!("prepare: {e}"));
        for i in 0..count {
            let key = bulk_key(i);
            version.execute(rusqlite::params![bucket, key]).unwrap_or_else(|e| panic!("insert: {e}"));
            let id = tx.last_insert_rowid();
            head.execute(rusqlite::params![bucket, key, id]).unwrap_or_else(|e| panic!("insert: {e}"));
        }
    }
    tx.commit().unwrap_or_else(|e| panic!("commit: {e}"));
    conn.execute_batch("ANALYZE").unwrap_or_else(|e| panic!("analyze: {e}"));
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
