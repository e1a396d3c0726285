//! `make bench`: PUT, GET, HEAD and LIST of 4 KiB objects and PUT and GET of 64 MiB ones against the gateway on
//! its embedded store, the gateway on PostgreSQL, the gateway on the Filebase content backend (the stand-in, a
//! second gateway with the `kubo-v0` profile, on loopback), and the reference server s3s-fs 0.17, measured in the
//! same run with the same load generator, reported as ratios. Then one LIST page over a million keys on each store.
//!
//! The load generator is deliberately lean (blocking keep-alive HTTP/1.1, SigV4 with UNSIGNED-PAYLOAD): the AWS SDK
//! costs more CPU per request than a small PUT does. Set `S3IPFS_REF_SERVER` to the s3s-fs binary, and
//! `S3IPFS_REF_PRELOAD` to the TCP_NODELAY shim (`nodelay.c`; s3s-fs sets no TCP_NODELAY, the gateway does).
//! Servers run on the last core and the load generator on the others (when `taskset` is there), and the two servers
//! are measured in alternating pairs; the median ratio of the pairs is reported.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

const ACCESS: &str = "GKBENCHKEY0000000001";
const SECRET: &str = "bench-secret-key-0123456789abcdefghijklm";
const HEX: data_encoding::Encoding = data_encoding::HEXLOWER;

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(data);
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// `YYYYMMDDTHHMMSSZ` for now.
fn amz_date() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// A request head signed with SigV4 (UNSIGNED-PAYLOAD). A query in `path` must be encoded and sorted by name.
fn signed_head(method: &str, host: &str, path: &str, content_length: usize) -> String {
    let date = amz_date();
    let (bare, query) = path.split_once('?').unwrap_or((path, ""));
    let canonical = format!(
        "{method}\n{bare}\n{query}\nhost:{host}\nx-amz-content-sha256:UNSIGNED-PAYLOAD\nx-amz-date:{date}\n\n\
         host;x-amz-content-sha256;x-amz-date\nUNSIGNED-PAYLOAD"
    );
    let scope = format!("{}/us-east-1/s3/aws4_request", &date[..8]);
    let to_sign = format!("AWS4-HMAC-SHA256\n{date}\n{scope}\n{}", HEX.encode(&Sha256::digest(canonical)));
    let mut key = hmac(format!("AWS4{SECRET}").as_bytes(), &date.as_bytes()[..8]);
    for part in ["us-east-1", "s3", "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    let signature = HEX.encode(&hmac(&key, to_sign.as_bytes()));
    format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nx-amz-content-sha256: UNSIGNED-PAYLOAD\r\nx-amz-date: {date}\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential={ACCESS}/{scope}, SignedHeaders=host;x-amz-content-sha256;x-amz-date, \
         Signature={signature}\r\nContent-Length: {content_length}\r\n\r\n"
    )
}

/// One keep-alive connection.
struct Conn {
    host: String,
    reader: BufReader<TcpStream>,
}

impl Conn {
    fn open(host: &str) -> Self {
        let stream = TcpStream::connect(host).expect("connect to server");
        stream.set_nodelay(true).expect("nodelay");
        Conn { host: host.to_owned(), reader: BufReader::with_capacity(256 * 1024, stream) }
    }

    /// Sends a request and reads the whole response; returns status and body length.
    fn call(&mut self, method: &str, path: &str, body: &[u8]) -> (u16, usize) {
        let head = signed_head(method, &self.host, path, body.len());
        let stream = self.reader.get_mut();
        stream.write_all(head.as_bytes()).expect("send head");
        stream.write_all(body).expect("send body");
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("status line");
        let status: u16 = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let mut length = 0usize;
        loop {
            line.clear();
            self.reader.read_line(&mut line).expect("header");
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut left = if method == "HEAD" { 0 } else { length };
        let mut sink = vec![0u8; 256 * 1024];
        while left > 0 {
            let want = left.min(sink.len());
            let n = self.reader.read(&mut sink[..want]).expect("body");
            assert!(n > 0, "connection closed mid-body");
            left -= n;
        }
        (status, length)
    }
}

/// Runs `ops` requests spread over `conns` connections; returns the wall time.
fn run(
    host: &str,
    conns: usize,
    ops: usize,
    method: &'static str,
    key_of: fn(usize) -> String,
    body: Arc<Vec<u8>>,
) -> Duration {
    let start = Instant::now();
    let workers: Vec<_> = (0..conns)
        .map(|w| {
            let (host, body) = (host.to_owned(), Arc::clone(&body));
            std::thread::spawn(move || {
                let mut conn = Conn::open(&host);
                for i in (w..ops).step_by(conns) {
                    let (status, _) =
                        conn.call(method, &format!("/bench{}", key_of(i)), if method == "PUT" { &body } else { &[] });
                    assert_eq!(status, 200, "{method} {} on {host}", key_of(i));
                }
            })
        })
        .collect();
    workers.into_iter().for_each(|w| w.join().expect("worker"));
    start.elapsed()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

fn wait_for(host: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(host).is_err() {
        assert!(Instant::now() < deadline, "server at {host} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Server {
    name: &'static str,
    child: Child,
    host: String,
    /// The Filebase stand-in behind a gateway on the Filebase backend.
    standin: Option<Box<Server>>,
}

/// Pairs of (gateway, reference) measurements; the median ratio is reported.
const ROUNDS: usize = 3;

/// The core the servers run on, when the machine has more than one and `taskset` exists (the load generator keeps
/// the others).
fn server_core() -> Option<usize> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let taskset = Command::new("taskset").arg("-V").stdout(Stdio::null()).stderr(Stdio::null()).status();
    (cores > 1 && taskset.is_ok_and(|s| s.success())).then_some(cores - 1)
}

/// A command for `program`, pinned to the server core when there is one.
fn server_command(program: &str) -> Command {
    match server_core() {
        Some(core) => {
            let mut command = Command::new("taskset");
            command.args(["-c", &core.to_string(), program]);
            command
        }
        None => Command::new(program),
    }
}

/// Pins this process (the load generator; its threads inherit it) to every core but the server's.
fn pin_load_generator() {
    if let Some(core) = server_core() {
        let others = if core == 1 { "0".to_owned() } else { format!("0-{}", core - 1) };
        let pid = std::process::id().to_string();
        let _ = Command::new("taskset").args(["-p", "-c", &others, &pid]).stdout(Stdio::null()).status();
    }
}

impl Server {
    /// The gateway on `dir`, with its metadata in PostgreSQL at `database` when given (embedded otherwise).
    fn gateway(name: &'static str, dir: &Path, database: Option<&str>) -> Self {
        Self::gateway_with(name, dir, database, &[])
    }

    /// The gateway on the Filebase content backend, against a stand-in of its own (started here, bucket `pins`).
    fn on_filebase(name: &'static str, dir: &Path) -> Self {
        Self::on_filebase_with(name, dir, None, &[])
    }

    /// [`on_filebase`](Self::on_filebase) with metadata in PostgreSQL at `database` and more settings.
    fn on_filebase_with(name: &'static str, dir: &Path, database: Option<&str>, more: &[(&str, &str)]) -> Self {
        let standin = Self::gateway_with("stand-in", &dir.join("standin"), None, &[("S3IPFS_CID_PROFILE", "kubo-v0")]);
        wait_for(&standin.host);
        let (status, _) = Conn::open(&standin.host).call("PUT", "/pins", &[]);
        assert_eq!(status, 200, "create the stand-in's bucket");
        let endpoint = format!("http://{}", standin.host);
        let settings = [
            ("S3IPFS_CONTENT_BACKEND", "filebase"),
            ("FILEBASE_ENDPOINT", endpoint.as_str()),
            ("FILEBASE_BUCKET", "pins"),
            ("FILEBASE_ACCESS_KEY", ACCESS),
            ("FILEBASE_SECRET_KEY", SECRET),
            // The gateway's cost is measured, not Filebase's documented limit of 100 requests a second.
            ("S3IPFS_CONTENT_REQUESTS_PER_SECOND", "1000000"),
        ];
        let settings: Vec<(&str, &str)> = settings.iter().chain(more).copied().collect();
        let mut server = Self::gateway_with(name, &dir.join("gateway"), database, &settings);
        server.standin = Some(Box::new(standin));
        server
    }

    fn gateway_with(name: &'static str, dir: &Path, database: Option<&str>, env: &[(&str, &str)]) -> Self {
        let port = free_port();
        // Another build of the gateway (an earlier commit, for an A/B comparison) when S3IPFS_BENCH_GATEWAY names it.
        let binary = std::env::var("S3IPFS_BENCH_GATEWAY").unwrap_or_else(|_| env!("CARGO_BIN_EXE_s3ipfs").to_owned());
        let mut command = server_command(&binary);
        if let Some(url) = database {
            command.env("DATABASE_URL", url);
        }
        let child = command
            .env_remove("S3IPFS_TEST_PG_URL")
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(dir)
            .env("S3IPFS_ROOT_ACCESS_KEY", ACCESS)
            .env("S3IPFS_ROOT_SECRET_KEY", SECRET)
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .spawn()
            .expect("start the gateway");
        Server { name, child, host: format!("127.0.0.1:{port}"), standin: None }
    }

    fn reference(binary: &str, dir: &Path) -> Self {
        let port = free_port();
        std::fs::create_dir_all(dir).expect("reference root");
        let mut command = server_command(binary);
        if let Ok(shim) = std::env::var("S3IPFS_REF_PRELOAD") {
            command.env("LD_PRELOAD", shim);
        }
        let child = command
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--access-key", ACCESS, "--secret-key", SECRET])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start s3s-fs");
        Server { name: "s3s-fs", child, host: format!("127.0.0.1:{port}"), standin: None }
    }

    fn peak_rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
            .unwrap_or(0.0);
        kib / 1024.0
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// (label, method, object size, connections, operations). Small objects are 4 KiB; LIST pages 1000 of them.
const CASES: [(&str, &str, usize, usize, usize); 6] = [
    ("PUT 4 KiB", "PUT", 4096, 16, 4000),
    ("GET 4 KiB", "GET", 4096, 16, 6000),
    ("HEAD 4 KiB", "HEAD", 4096, 16, 6000),
    ("LIST 1000", "LIST", 4096, 4, 200),
    ("PUT 64 MiB", "PUT", 64 << 20, 4, 12),
    ("GET 64 MiB", "GET", 64 << 20, 4, 12),
];

/// The figure a case reports: operations per second for small objects and listings, MB/s for large objects.
fn measure(server: &Server) -> Vec<f64> {
    wait_for(&server.host);
    let (status, _) = Conn::open(&server.host).call("PUT", "/bench", &[]);
    assert_eq!(status, 200, "create bucket on {}", server.name);
    CASES
        .iter()
        .map(|&(_, method, size, conns, ops)| {
            let mut body = vec![0u8; if method == "PUT" { size } else { 0 }];
            body.iter_mut().enumerate().for_each(|(i, b)| *b = (i.wrapping_mul(2_654_435_761) >> 13) as u8);
            let (method, key_of): (&'static str, fn(usize) -> String) = match (method, size) {
                ("LIST", _) => ("GET", |i| format!("?list-type=2&max-keys=1000&start-after=small-{}", i % 3)),
                (_, 4096) => (method, |i| format!("/small-{}", i % 4000)),
                _ => (method, |i| format!("/large-{i}")),
            };
            let took = run(&server.host, conns, ops, method, key_of, Arc::new(body));
            if size == 4096 { ops as f64 / took.as_secs_f64() } else { (ops * size) as f64 / 1e6 / took.as_secs_f64() }
        })
        .collect()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The servers of one round, in the order they are measured and reported.
const SERVERS: [&str; 4] = ["s3ipfs/sqlite", "s3ipfs/pg", "s3ipfs/filebase", "s3s-fs"];

/// Keys of the listing benchmark, and how many times each listing is timed.
const BIG: u64 = 1_000_000;
const LIST_RUNS: usize = 15;

/// (label, query) of the listings timed over [`BIG`] keys (`a000/b0/c00` … `a999/b9/c99`).
const LISTINGS: [(&str, &str); 3] = [
    ("1000 common prefixes (delimiter /)", "?delimiter=%2F&list-type=2&max-keys=1000"),
    ("100 keys at depth 3 (prefix a123/b4/)", "?delimiter=%2F&list-type=2&max-keys=1000&prefix=a123%2Fb4%2F"),
    ("1000 keys, no delimiter", "?list-type=2&max-keys=1000&start-after=a500"),
];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

/// Median milliseconds of one LIST page, per listing, on a gateway holding [`BIG`] keys in bucket `big`.
fn time_listings(server: &Server) -> Vec<f64> {
    let mut conn = Conn::open(&server.host);
    LISTINGS
        .iter()
        .map(|(label, query)| {
            let times: Vec<f64> = (0..LIST_RUNS)
                .map(|_| {
                    let start = Instant::now();
                    let (status, length) = conn.call("GET", &format!("/big{query}"), &[]);
                    assert_eq!(status, 200, "{label} on {}", server.name);
                    assert!(length > 0);
                    start.elapsed().as_secs_f64() * 1000.0
                })
                .collect();
            median(times)
        })
        .collect()
}

fn main() -> ExitCode {
    let Ok(reference) = std::env::var("S3IPFS_REF_SERVER") else {
        eprintln!("S3IPFS_REF_SERVER must name the s3s-fs 0.17 binary (make bench installs it)");
        return ExitCode::FAILURE;
    };
    if std::env::var("S3IPFS_REF_PRELOAD").is_err() {
        eprintln!("warning: S3IPFS_REF_PRELOAD is unset: s3s-fs runs without TCP_NODELAY and its small requests wait");
    }
    pin_load_generator();
    // Durable like the embedded store (fsync, synchronous commit), on the servers' core.
    let cluster = s3ipfs_meta::testing::Cluster::start(true, server_core());
    let rt = runtime();
    // S3IPFS_BENCH_ONLY=load, =cache or =listing runs only that part;
    // S3IPFS_BENCH_ROUNDS overrides the number of rounds.
    let only = std::env::var("S3IPFS_BENCH_ONLY").unwrap_or_default();
    let rounds = std::env::var("S3IPFS_BENCH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(ROUNDS);
    let rounds = if only.is_empty() || only == "load" { rounds } else { 0 };
    let mut figures: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); CASES.len()]; SERVERS.len()];
    let mut rss = [0f64; SERVERS.len()];
    for round in 0..rounds {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = rt.block_on(s3ipfs_meta::testing::create_database(cluster.url()));
        for (s, name) in SERVERS.iter().enumerate() {
            let server = match s {
                0 => Server::gateway(name, &dir.path().join("sqlite"), None),
                1 => Server::gateway(name, &dir.path().join("pg"), Some(&database)),
                2 => Server::on_filebase(name, &dir.path().join("filebase")),
                _ => Server::reference(&reference, &dir.path().join("s3s-fs")),
            };
            measure(&server).into_iter().enumerate().for_each(|(i, f)| figures[s][i].push(f));
            rss[s] = rss[s].max(server.peak_rss_mib());
        }
        eprintln!("round {} of {rounds} done", round + 1);
    }

    if rounds > 0 {
        report_load(&figures, rss, rounds);
    }
    if only.is_empty() || only == "cache" {
        cache_bench(&rt, &cluster);
    }
    if only.is_empty() || only == "listing" {
        list_scale(&rt, &cluster);
    }
    ExitCode::SUCCESS
}

fn report_load(figures: &[Vec<Vec<f64>>], rss: [f64; SERVERS.len()], rounds: usize) {
    println!("S3 load over loopback, same load generator, same run; the servers (PostgreSQL, the Filebase stand-in)");
    println!("on one core; medians of {rounds} rounds; ratios are medians of the per-round ratios");
    println!(
        "{:<11} {:>16} {:>16} {:>16} {:>16} {:>10} {:>10} {:>10} {:>10}",
        "case", SERVERS[0], SERVERS[1], SERVERS[2], SERVERS[3], "sqlite/ref", "pg/ref", "pg/sqlite", "fb/sqlite"
    );
    let ratio = |a: &Vec<f64>, b: &Vec<f64>| median(a.iter().zip(b).map(|(x, y)| x / y).collect());
    for (i, (label, method, size, conns, ops)) in CASES.iter().enumerate() {
        let unit = if *size == 4096 || *method == "LIST" { "ops/s" } else { "MB/s" };
        println!(
            "{label:<11} {:>10.1} {unit:<5} {:>10.1} {unit:<5} {:>10.1} {unit:<5} {:>10.1} {unit:<5} {:>10.2} {:>10.2} {:>10.2} {:>10.2}  ({ops} ops, {conns} conns)",
            median(figures[0][i].clone()),
            median(figures[1][i].clone()),
            median(figures[2][i].clone()),
            median(figures[3][i].clone()),
            ratio(&figures[0][i], &figures[3][i]),
            ratio(&figures[1][i], &figures[3][i]),
            ratio(&figures[1][i], &figures[0][i]),
            ratio(&figures[2][i], &figures[0][i]),
        );
    }
    println!("peak RSS    {:>10.1} MiB   {:>10.1} MiB   {:>10.1} MiB   {:>10.1} MiB", rss[0], rss[1], rss[2], rss[3]);
}

/// One LIST page over [`BIG`] keys, on each store.
fn list_scale(rt: &tokio::runtime::Runtime, cluster: &s3ipfs_meta::testing::Cluster) {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = rt.block_on(s3ipfs_meta::testing::create_database(cluster.url()));
    let mut listing_ms = Vec::new();
    for (s, name) in SERVERS[..2].iter().enumerate() {
        let data = dir.path().join(name.replace('/', "-"));
        let server = Server::gateway(name, &data, (s == 1).then_some(database.as_str()));
        wait_for(&server.host);
        let (status, _) = Conn::open(&server.host).call("PUT", "/big", &[]);
        assert_eq!(status, 200, "create bucket on {name}");
        let loaded = Instant::now();
        match s {
            0 => s3ipfs_meta::testing::bulk_load_sqlite(&data.join("meta.sqlite"), "big", BIG),
            _ => rt.block_on(s3ipfs_meta::testing::bulk_load_postgres(&database, "big", BIG)),
        }
        eprintln!("{name}: {BIG} keys loaded in {:.1} s", loaded.elapsed().as_secs_f64());
        listing_ms.push(time_listings(&server));
    }
    println!();
    println!("One LIST page over {BIG} keys in one bucket (median of {LIST_RUNS}, milliseconds)");
    println!("{:<40} {:>14} {:>14}", "listing", SERVERS[0], SERVERS[1]);
    for (i, (label, _)) in LISTINGS.iter().enumerate() {
        println!("{label:<40} {:>11.1} ms {:>11.1} ms", listing_ms[0][i], listing_ms[1][i]);
    }
    let plan = rt.block_on(s3ipfs_meta::testing::explain_listing(&database, "big"));
    println!("PostgreSQL plan of a listing page:\n{plan}");
    println!("index scan: {}", if plan.contains("Index") { "yes" } else { "NO" });
}

/// A throwaway Redis (tests/services/redis-server.sh) on the servers' core; gone when dropped.
struct RedisServer {
    url: String,
    child: std::process::Child,
}

impl RedisServer {
    fn start() -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/services/redis-server.sh");
        let mut child = server_command("bash")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start redis");
        let mut url = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().expect("stdout")), &mut url)
            .expect("redis url");
        assert!(url.starts_with("redis://"), "Redis did not start");
        RedisServer { url: url.trim().to_owned(), child }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// GET of one hot object, `ops` times over `conns` connections from `path`: ops/s, or MB/s with `size`.
fn hot_gets(host: &str, path: &'static str, conns: usize, ops: usize, size: Option<usize>) -> f64 {
    let started = Instant::now();
    let workers: Vec<_> = (0..conns)
        .map(|w| {
            let host = host.to_owned();
            std::thread::spawn(move || {
                let mut conn = Conn::open(&host);
                for _ in (w..ops).step_by(conns) {
                    assert_eq!(conn.call("GET", path, &[]).0, 200, "GET {path} on {host}");
                }
            })
        })
        .collect();
    workers.into_iter().for_each(|w| w.join().expect("worker"));
    let took = started.elapsed().as_secs_f64();
    size.map_or(ops as f64 / took, |size| (ops * size) as f64 / 1e6 / took)
}

/// The caches: GET of a hot 4 KiB object on PostgreSQL with the Filebase stand-in, with the caches on Redis (exact,
/// and reusing tokens for 10 ms) and off, against the embedded store (its default caches); GET of a hot 10 MiB object
/// from the disk cache against the same object read from the stand-in directly. All servers run at once and are
/// measured in turn, [`CACHE_PASSES`] times; medians are reported, ratios as medians of the per-pass ratios.
fn cache_bench(rt: &tokio::runtime::Runtime, cluster: &s3ipfs_meta::testing::Cluster) {
    let dir = tempfile::tempdir().expect("temp dir");
    let redis = RedisServer::start();
    let body = |size: usize| -> Vec<u8> { (0..size).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect() };
    let (small, large) = (body(4096), body(10 << 20));
    let names = ["embedded", "pg+filebase, cache off", "pg+filebase, redis", "pg+filebase, redis, reuse 10 ms"];
    let servers: Vec<Server> = (0..names.len())
        .map(|setup| {
            let database = rt.block_on(s3ipfs_meta::testing::create_database(cluster.url()));
            let at = dir.path().join(format!("setup{setup}"));
            let server = match setup {
                0 => Server::gateway("s3ipfs/sqlite", &at, None),
                1 => Server::on_filebase_with("s3ipfs/pg+fb", &at, Some(&database), &[("S3IPFS_CACHE_BACKEND", "off")]),
                2 => Server::on_filebase_with("s3ipfs/pg+fb+redis", &at, Some(&database), &[("REDIS_URL", &redis.url)]),
                _ => Server::on_filebase_with(
                    "s3ipfs/pg+fb+redis+reuse",
                    &at,
                    Some(&database),
                    &[("REDIS_URL", &redis.url), ("S3IPFS_CACHE_HEAD_TOKEN_REUSE_MS", "10")],
                ),
            };
            wait_for(&server.host);
            let mut conn = Conn::open(&server.host);
            assert_eq!(conn.call("PUT", "/bench", &[]).0, 200);
            assert_eq!(conn.call("PUT", "/bench/hot", &small).0, 200);
            assert_eq!(conn.call("PUT", "/bench/large", &large).0, 200);
            hot_gets(&server.host, "/bench/hot", 16, 500, None);
            server
        })
        .collect();
    let standin = servers[2].standin.as_ref().expect("stand-in");
    assert_eq!(Conn::open(&standin.host).call("PUT", "/pins/direct", &large).0, 200);
    hot_gets(&servers[2].host, "/bench/large", 4, 4, None);
    let mut hot = vec![Vec::new(); servers.len()];
    let (mut cached, mut direct) = (Vec::new(), Vec::new());
    for _ in 0..CACHE_PASSES {
        for (s, server) in servers.iter().enumerate() {
            hot[s].push(hot_gets(&server.host, "/bench/hot", 16, 6000, None));
        }
        cached.push(hot_gets(&servers[2].host, "/bench/large", 4, 40, Some(10 << 20)));
        direct.push(hot_gets(&standin.host, "/pins/direct", 4, 40, Some(10 << 20)));
    }
    let ratio = |a: &Vec<f64>, b: &Vec<f64>| median(a.iter().zip(b).map(|(x, y)| x / y).collect());
    println!("Caches: every server at once, measured in turn, {CACHE_PASSES} passes (medians)");
    for (s, name) in names.iter().enumerate() {
        println!(
            "GET hot 4 KiB, {name:<32} {:>9.1} ops/s  /embedded {:.2}  /cache off {:.2}  (6000 ops, 16 conns)",
            median(hot[s].clone()),
            ratio(&hot[s], &hot[0]),
            ratio(&hot[s], &hot[1]),
        );
    }
    println!(
        "GET hot 10 MiB, disk cache {:.1} MB/s, the stand-in directly {:.1} MB/s, ratio {:.2}  (40 ops, 4 conns)",
        median(cached.clone()),
        median(direct.clone()),
        ratio(&cached, &direct),
    );
    println!("peak RSS with the caches on Redis {:.1} MiB", servers[2].peak_rss_mib());
}

/// Passes of the cache benchmark.
const CACHE_PASSES: usize = 3;
