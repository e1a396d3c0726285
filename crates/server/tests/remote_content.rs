//! The remote content backend against real S3 servers on loopback: the Filebase stand-in (a second `s3ipfs serve`
//! with the `kubo-v0` profile, which reports CIDs and imports CARs as Filebase documents) and a third-party S3
//! server (moto's server mode, from the test venv). The ContentStore conformance suite runs on each; then what is
//! particular to a remote backend: uploads once per CID, multipart uploads, CID checks, the circuit breaker.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use s3ipfs_cid::Profile;
use s3ipfs_content::{Flavor, RemoteSettings, RemoteStore};
use s3ipfs_core::conformance::content as suite;
use s3ipfs_core::{ContentError, ContentStore as _};

const STANDIN_KEY: &str = "STANDIN0000000000001";
const STANDIN_SECRET: &str = "standin-secret-key";

/// A server process, killed when dropped.
struct Server {
    child: Child,
    endpoint: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Filebase stand-in: `s3ipfs serve` with the `kubo-v0` profile on a free port.
fn standin() -> Server {
    let dir = tempfile::tempdir().expect("dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_s3ipfs"))
        .args(["serve", "--listen", "127.0.0.1:0", "--cid-profile", "kubo-v0"])
        .env("S3IPFS_DATA_DIR", dir.path())
        .env("S3IPFS_ROOT_ACCESS_KEY", STANDIN_KEY)
        .env("S3IPFS_ROOT_SECRET_KEY", STANDIN_SECRET)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the stand-in");
    let stdout = child.stdout.take().expect("stdout");
    let endpoint = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.split_whitespace().find(|w| w.starts_with("http://")).map(str::to_owned))
        .expect("the stand-in prints its endpoint");
    Server { child, endpoint, _dir: dir }
}

/// moto's S3 server, from the test venv; `None` (or a failure under CI) when it is not installed.
fn moto() -> Option<Server> {
    let path = std::env::var_os("S3IPFS_TEST_MOTO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/moto_server"));
    if !path.exists() {
        assert!(
            std::env::var("CI").is_err(),
            "moto_server is missing at {} (make test-deps installs it)",
            path.display()
        );
        eprintln!("SKIPPED: moto_server not found at {}; run make test-deps", path.display());
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let child = Command::new(path)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(Server { child, endpoint: format!("http://127.0.0.1:{port}"), _dir: tempfile::tempdir().expect("dir") })
}

fn settings(flavor: Flavor, endpoint: &str, spool: &std::path::Path) -> RemoteSettings {
    RemoteSettings {
        flavor,
        endpoint: endpoint.to_owned(),
        region: "us-east-1".into(),
        bucket: "content".into(),
        access_key: STANDIN_KEY.into(),
        secret_key: STANDIN_SECRET.into(),
        path_style: true,
        spool_dir: spool.to_path_buf(),
        part_size: 5 * 1024 * 1024,
        concurrency: 3,
        call_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(2),
        max_in_flight: 32,
        requests_per_second: 1000,
        retries: 2,
        open_for: Duration::from_secs(2),
    }
}

async fn remote(settings: RemoteSettings) -> RemoteStore {
    let store = RemoteStore::open(settings).await.expect("open");
    store.ensure_bucket().await.expect("bucket");
    store
}

fn spool_is_empty(dir: &std::path::Path) -> bool {
    std::fs::read_dir(dir).expect("spool").next().is_none()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_filebase_mode_passes_the_content_suite_on_the_standin_with_plain_and_car_uploads() {
    let standin = standin();
    for profile in [Profile::KUBO_V0, Profile::KUBO_V1] {
        let spool = tempfile::tempdir().expect("spool");
        let store = remote(settings(Flavor::Filebase, &standin.endpoint, spool.path())).await;
        suite::run_all_as(&store, profile).await;
        assert!(spool_is_empty(spool.path()), "no spool file is left behind");
        assert_eq!(store.stats().cid_mismatches, 0);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_generic_s3_mode_passes_the_content_suite_on_a_third_party_server() {
    let Some(moto) = moto() else { return };
    let spool = tempfile::tempdir().expect("spool");
    let store = remote(settings(Flavor::S3, &moto.endpoint, spool.path())).await;
    suite::run_all(&store).await;
    assert!(spool_is_empty(spool.path()));
}

#[tokio::test(flavor = "multi_thread")]
async fn large_objects_go_up_in_parallel_parts_and_read_back_by_range() {
    let standin = standin();
    let Some(moto) = moto() else { return };
    let data: Vec<u8> = (0..23_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    for (flavor, endpoint, profile) in [
        (Flavor::S3, &moto.endpoint, Profile::KUBO_V1),
        (Flavor::Filebase, &standin.endpoint, Profile::KUBO_V0),
        (Flavor::Filebase, &standin.endpoint, Profile::KUBO_V1),
    ] {
        let spool = tempfile::tempdir().expect("spool");
        let store = remote(settings(flavor, endpoint, spool.path())).await;
        let cid = suite::store_bytes_as(&store, profile, &data).await;
        assert_eq!(store.size(&cid).await.expect("size"), Some(data.len() as u64), "{flavor:?} {profile:?}");
        let whole = suite::read_all(&store, &cid, 0..data.len() as u64).await.expect("read");
        assert!(whole == data, "{flavor:?} {profile:?}: the object reads back");
        let part = suite::read_all(&store, &cid, 5_242_870..5_242_900).await.expect("range");
        assert_eq!(part, data[5_242_870..5_242_900]);
        assert_eq!(store.stats().uploads, 1);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_repeating_its_blocks_goes_up_as_a_car_the_standin_imports() {
    let standin = standin();
    let spool = tempfile::tempdir().expect("spool");
    let store = remote(settings(Flavor::Filebase, &standin.endpoint, spool.path())).await;
    // 7 distinct MiB repeated: leaves and whole subtrees recur far apart, after an importer's memory let them go.
    let block: Vec<u8> = (0..1024 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8).collect();
    let data: Vec<u8> = (0..60).flat_map(|i| [&block[i % 7..], &block[..i % 7]].concat()).collect();
    let cid = suite::store_bytes_as(&store, Profile::KUBO_V1, &data).await;
    assert!(suite::read_all(&store, &cid, 0..data.len() as u64).await.expect("read") == data);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_writers_of_one_cid_upload_it_once() {
    let standin = standin();
    let spool = tempfile::tempdir().expect("spool");
    let store = remote(settings(Flavor::Filebase, &standin.endpoint, spool.path())).await;
    let data = vec![7u8; 900_000];
    let writes = (0..8).map(|_| suite::store_bytes_as(&store, Profile::KUBO_V0, &data));
    let cids = futures::future::join_all(writes).await;
    assert!(cids.windows(2).all(|w| w[0] == w[1]));
    let stats = store.stats();
    assert_eq!((stats.uploads, stats.deduplicated), (1, 7), "{stats:?}");
    assert_eq!(stats.uploaded_bytes, 900_000);
}

/// Stores `data` under `claimed` through `store`'s writer, whatever the bytes' own CID.
async fn finish_as(store: &RemoteStore, claimed: s3ipfs_cid::Cid, data: &[u8]) -> Result<(), ContentError> {
    let mut writer = store.writer().await.expect("writer");
    writer.write(bytes::Bytes::copy_from_slice(data)).await.expect("write");
    writer.finish(claimed, Vec::new()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backend_reporting_another_cid_fails_the_write_and_keeps_nothing() {
    let standin = standin();
    let spool = tempfile::tempdir().expect("spool");
    let plain = remote(settings(Flavor::S3, &standin.endpoint, spool.path())).await;
    let filebase = remote(settings(Flavor::Filebase, &standin.endpoint, spool.path())).await;
    // The bytes go up under a CIDv0 that is not theirs: the stand-in reports the bytes' own CIDv0.
    let claimed = s3ipfs_cid::cid_of(Profile::KUBO_V0, b"other bytes");
    let failed = finish_as(&filebase, claimed, &[3u8; 100_000]).await.expect_err("mismatch");
    assert!(matches!(failed, ContentError::CidMismatch { expected, .. } if expected == claimed), "{failed:?}");
    assert_eq!(filebase.stats().cid_mismatches, 1);
    assert_eq!(plain.size(&claimed).await.expect("size"), None, "what was uploaded under the CID is gone");
    assert!(spool_is_empty(spool.path()));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_object_pinned_under_the_wrong_cid_is_replaced_not_reused() {
    let standin = standin();
    let spool = tempfile::tempdir().expect("spool");
    let plain = remote(settings(Flavor::S3, &standin.endpoint, spool.path())).await;
    let filebase = remote(settings(Flavor::Filebase, &standin.endpoint, spool.path())).await;
    let data = vec![8u8; 70_000];
    let cid = s3ipfs_cid::cid_of(Profile::KUBO_V0, &data);
    // What a failed write whose cleanup failed would leave: other bytes under the CID.
    finish_as(&plain, cid, b"left behind").await.expect("the generic mode checks nothing");
    assert_eq!(suite::store_bytes_as(&filebase, Profile::KUBO_V0, &data).await, cid);
    assert!(suite::read_all(&filebase, &cid, 0..70_000).await.expect("read") == data);
    assert_eq!(filebase.stats().deduplicated, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_backend_opens_the_breaker_and_calls_fail_fast() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let spool = tempfile::tempdir().expect("spool");
    let endpoint = format!("http://127.0.0.1:{port}");
    let mut settings = settings(Flavor::S3, &endpoint, spool.path());
    settings.retries = 0;
    let store = RemoteStore::open(settings).await.expect("open");
    let cid = s3ipfs_cid::cid_of(Profile::KUBO_V1, b"x");
    for _ in 0..6 {
        let err = store.size(&cid).await.expect_err("down");
        assert!(matches!(err, ContentError::Unavailable { .. }), "{err:?}");
    }
    let started = Instant::now();
    let err = store.size(&cid).await.expect_err("open breaker");
    assert!(started.elapsed() < Duration::from_millis(100), "refused at once");
    assert!(matches!(err, ContentError::Unavailable { retry_after: Some(_), .. }), "{err:?}");
    let stats = store.stats();
    assert!(stats.breaker_opened >= 1 && stats.rejected >= 1, "{stats:?}");
}
