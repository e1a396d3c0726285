//! Every cache layer passes the suite of the port it implements: the content suite with the content cache in memory,
//! on Redis and on disk, and the metadata suite with the metadata cache on the embedded store (head versions under
//! local tokens) and on PostgreSQL with Redis (peers are other replicas: their own caches on the same Redis).

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use s3ipfs_cache::{CachedContent, CachedMeta, ContentCacheSettings, MetaCacheSettings, Sealer};
use s3ipfs_core::{MemoryContent, MetaStore};

fn content_settings(max_memory_object: u64, disk: Option<std::path::PathBuf>) -> ContentCacheSettings {
    ContentCacheSettings {
        max_memory_object,
        memory_budget: 64 * 1024 * 1024,
        redis_ttl: Duration::from_secs(60),
        disk: disk.map(|dir| (dir, 64 * 1024 * 1024)),
        max_disk_object: 32 * 1024 * 1024,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_content_cache_in_memory_passes_the_content_suite() {
    let cached =
        CachedContent::new(Arc::new(MemoryContent::new()), content_settings(1024 * 1024, None), None).expect("cache");
    s3ipfs_core::conformance::content::run_all(&cached).await;
    assert!(cached.stats().memory.counts().hits > 0, "the second reads came from memory");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_content_cache_on_redis_passes_the_content_suite() {
    let redis = support::connect(&support::url(), &support::prefix());
    let source = Arc::new(MemoryContent::new());
    let cached =
        CachedContent::new(source.clone(), content_settings(1024 * 1024, None), Some(redis.clone())).expect("cache");
    s3ipfs_core::conformance::content::run_all(&cached).await;
    // A second process (empty memory) on the same Redis finds what the first kept there.
    let data = vec![7u8; 4096];
    let cid = s3ipfs_core::conformance::content::store_bytes(&cached, &data).await;
    let read = s3ipfs_core::conformance::content::read_all_sized(&cached, &cid, 4096, 0..4096).await.expect("read");
    assert_eq!(read, data);
    let mut kept = false;
    for _ in 0..50 {
        let other = CachedContent::new(source.clone(), content_settings(1024 * 1024, None), Some(redis.clone()))
            .expect("cache");
        let read = s3ipfs_core::conformance::content::read_all_sized(&other, &cid, 4096, 0..4096).await.expect("read");
        assert_eq!(read, data);
        if other.stats().redis.counts().hits == 1 {
            kept = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(kept, "the object was served from Redis to the second cache");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_content_cache_on_disk_passes_the_content_suite() {
    let dir = tempfile::tempdir().expect("dir");
    let cached =
        CachedContent::new(Arc::new(MemoryContent::new()), content_settings(1024, Some(dir.path().to_owned())), None)
            .expect("cache");
    s3ipfs_core::conformance::content::run_all(&cached).await;
    let disk = cached.stats().disk.counts();
    assert!(disk.hits > 0 && disk.misses > 0, "objects above the memory limit went through the disk: {disk:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ranged_get_of_a_large_object_not_on_disk_reads_the_source_and_fills_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let cached =
        CachedContent::new(Arc::new(MemoryContent::new()), content_settings(1024, Some(dir.path().to_owned())), None)
            .expect("cache");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let cid = s3ipfs_core::conformance::content::store_bytes(&cached, &data).await;
    let size = data.len() as u64;
    let part = s3ipfs_core::conformance::content::read_all_sized(&cached, &cid, size, 10..20).await.expect("range");
    assert_eq!(part, data[10..20]);
    assert_eq!(cached.stats().source.counts().bytes, 10, "only the range came from the source");
    let whole = s3ipfs_core::conformance::content::read_all_sized(&cached, &cid, size, 0..size).await.expect("whole");
    assert!(whole == data);
    let part = s3ipfs_core::conformance::content::read_all_sized(&cached, &cid, size, 10..20).await.expect("range");
    assert_eq!(part, data[10..20]);
    assert_eq!(cached.stats().disk.counts().hits, 1, "the range after the whole GET came from disk");
}

fn meta_settings(local_heads: bool) -> MetaCacheSettings {
    MetaCacheSettings {
        ttl: Duration::from_secs(5),
        redis_ttl: Duration::from_secs(60),
        local_heads,
        max_entries: 10_000,
        token_reuse: Duration::ZERO,
    }
}

/// The embedded store behind a cache with local head tokens (one writer process).
mod on_sqlite {
    use super::*;

    type Stores = Mutex<HashMap<String, s3ipfs_meta::SqliteMeta>>;
    static STORES: OnceLock<Stores> = OnceLock::new();

    async fn fresh() -> CachedMeta {
        let store = s3ipfs_meta::SqliteMeta::open_temporary().expect("temporary database");
        STORES.get_or_init(Stores::default).lock().expect("stores").insert(store.replica().to_owned(), store.peer("x"));
        CachedMeta::new(Arc::new(store), meta_settings(true), None)
    }

    fn peer(store: &CachedMeta, replica: &str) -> CachedMeta {
        let stores = STORES.get_or_init(Stores::default).lock().expect("stores");
        let base = stores.get(store.replica()).expect("a store made by fresh()");
        // Same process: the peer shares nothing cached, and writes nothing the suite reads through the first.
        CachedMeta::new(Arc::new(base.peer(replica)), meta_settings(false), None)
    }

    s3ipfs_core::meta_conformance_tests!(fresh, peer);
}

/// PostgreSQL behind a cache on Redis; a peer is another replica with its own cache on the same Redis and prefix.
mod on_postgres_with_redis {
    use super::*;

    type Stores = Mutex<HashMap<String, (s3ipfs_meta::PgMeta, String)>>;
    static STORES: OnceLock<Stores> = OnceLock::new();

    fn cached(store: s3ipfs_meta::PgMeta, prefix: &str) -> CachedMeta {
        let redis = support::connect(&support::url(), prefix);
        CachedMeta::new(Arc::new(store), meta_settings(false), Some((redis, Some(Sealer::new("test seal")))))
    }

    async fn fresh() -> CachedMeta {
        let store = s3ipfs_meta::testing::fresh_store().await;
        let prefix = support::prefix();
        STORES
            .get_or_init(Stores::default)
            .lock()
            .expect("stores")
            .insert(store.replica().to_owned(), (store.peer("x"), prefix.clone()));
        cached(store, &prefix)
    }

    fn peer(store: &CachedMeta, replica: &str) -> CachedMeta {
        let stores = STORES.get_or_init(Stores::default).lock().expect("stores");
        let (base, prefix) = stores.get(store.replica()).expect("a store made by fresh()");
        cached(base.peer(replica), prefix)
    }

    s3ipfs_core::meta_conformance_tests!(fresh, peer);
}
