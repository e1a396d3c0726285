//! The metadata cache across replicas (two caches on one PostgreSQL and one Redis), and Redis failing under it.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use s3ipfs_cache::{CachedMeta, MetaCacheSettings, Redis, Sealer};
use s3ipfs_core::meta::NewVersion;
use s3ipfs_core::{
    AccessKey, Bucket, BucketName, MetaStore, ObjectKey, ObjectMeta, VersionId, VersionState, Versioning,
};

fn settings() -> MetaCacheSettings {
    MetaCacheSettings {
        ttl: Duration::from_secs(30),
        redis_ttl: Duration::from_secs(60),
        local_heads: false,
        max_entries: 1000,
        token_reuse: Duration::ZERO,
    }
}

fn replica(store: &s3ipfs_meta::PgMeta, name: &str, redis: Redis) -> CachedMeta {
    CachedMeta::new(Arc::new(store.peer(name)), settings(), Some((redis, Some(Sealer::new("seal")))))
}

async fn put(store: &dyn MetaStore, bucket: &BucketName, key: &ObjectKey, size: u64) -> VersionId {
    let upload = store.begin_version(bucket, key).await.expect("begin");
    let meta = ObjectMeta { size, ..ObjectMeta::default() };
    let new = NewVersion::new(VersionId::generate(), VersionState::Committed(Box::new(meta)), false);
    store.commit_version(upload, new).await.expect("commit").version_id
}

/// Polls `check` until it holds; returns how long that took.
async fn within(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < limit, "did not happen within {limit:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    start.elapsed()
}

struct Setup {
    one: CachedMeta,
    two: CachedMeta,
    bucket: BucketName,
    user: s3ipfs_core::UserId,
}

async fn setup(url: &str) -> Setup {
    let store = s3ipfs_meta::testing::fresh_store().await;
    let prefix = support::prefix();
    let one = replica(&store, "one", support::connect(url, &prefix));
    let two = replica(&store, "two", support::connect(url, &prefix));
    let user = one.create_user("u@example.com").await.expect("user").id;
    let bucket = BucketName::parse("shared").expect("name");
    let b =
        Bucket { name: bucket.clone(), owner: user, created_at: SystemTime::now(), versioning: Versioning::Enabled };
    one.create_bucket(&b).await.expect("bucket");
    // Let both subscribers connect before anything is invalidated.
    tokio::time::sleep(Duration::from_millis(300)).await;
    Setup { one, two, bucket, user }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_one_replica_is_what_the_next_read_on_the_other_returns() {
    let Setup { one, two, bucket, .. } = setup(&support::url()).await;
    let key = ObjectKey::parse("hot").expect("key");
    for round in 0..200u64 {
        let written = put(&one, &bucket, &key, round).await;
        let read = two.latest_version(&bucket, &key).await.expect("read").expect("present");
        assert_eq!(read.version_id, written, "round {round}: the other replica returned an older head");
        // And the cached path: a second read on the other replica is a hit with the same answer.
        assert_eq!(two.latest_version(&bucket, &key).await.expect("read").map(|v| v.version_id), Some(written.clone()));
        let (_, latest) = two.bucket_and_latest(&bucket, &key).await.expect("read").expect("bucket");
        assert_eq!(latest.map(|v| v.version_id), Some(written));
        // Writes through the other replica too.
        let written = put(&two, &bucket, &key, round).await;
        assert_eq!(one.latest_version(&bucket, &key).await.expect("read").map(|v| v.version_id), Some(written));
    }
    let heads = two.stats().heads.counts();
    assert!(heads.hits >= 200 && heads.misses >= 200, "{heads:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_and_a_versioning_change_reach_the_other_replica_within_the_bound() {
    let Setup { one, two, bucket, user } = setup(&support::url()).await;
    let key = AccessKey { id: "GKREVOKEME0000000001".into(), secret: "s".repeat(40), user };
    one.add_access_key(&key).await.expect("key");
    assert_eq!(two.access_key(&key.id).await.expect("lookup"), Some(key.clone()));
    assert_eq!(two.access_key(&key.id).await.expect("lookup"), Some(key.clone()), "cached");
    assert!(one.remove_access_key(&key.id).await.expect("revoke"));
    let took = within(Duration::from_secs(2), async || two.access_key(&key.id).await.expect("lookup").is_none()).await;
    println!("revocation reached the other replica in {took:?}");

    assert_eq!(two.bucket(&bucket).await.expect("bucket").map(|b| b.versioning), Some(Versioning::Enabled));
    one.set_versioning(&bucket, Versioning::Suspended).await.expect("suspend");
    let took = within(Duration::from_secs(2), async || {
        two.bucket(&bucket).await.expect("bucket").map(|b| b.versioning) == Some(Versioning::Suspended)
    })
    .await;
    println!("a versioning change reached the other replica in {took:?}");
    assert!(two.stats().invalidations() >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_going_away_fails_nothing_and_the_cache_comes_back_with_it() {
    let server = support::Server::start(None);
    let (url, port) = (server.url.clone(), server.port());
    let Setup { one, two, bucket, .. } = setup(&url).await;
    let key = ObjectKey::parse("k").expect("key");
    put(&one, &bucket, &key, 1).await;
    assert!(two.latest_version(&bucket, &key).await.expect("read").is_some());

    server.stop();
    let started = Instant::now();
    for round in 0..50u64 {
        let written = put(&one, &bucket, &key, round).await;
        let read = two.latest_version(&bucket, &key).await.expect("read while redis is down");
        assert_eq!(read.map(|v| v.version_id), Some(written), "exact while redis is down");
        assert!(two.bucket(&bucket).await.expect("bucket").is_some());
    }
    let per_round = started.elapsed() / 50;
    println!("with redis down: {per_round:?} per write and read");
    assert!(two.stats().heads.counts().bypasses > 0, "the outage was counted as bypasses");

    let _back = support::Server::start(Some(port));
    let hits = two.stats().heads.counts().hits;
    within(Duration::from_secs(10), async || {
        two.latest_version(&bucket, &key).await.expect("read");
        two.stats().heads.counts().hits > hits + 2
    })
    .await;
    let written = put(&one, &bucket, &key, 99).await;
    assert_eq!(two.latest_version(&bucket, &key).await.expect("read").map(|v| v.version_id), Some(written));
}
