//! The caches the configuration selects, put in front of the stores in one place: every other module sees only
//! the ports.

use std::sync::Arc;
use std::time::Duration;

use s3ipfs_cache::{
    CachedContent, CachedMeta, ContentCacheSettings, ContentCacheStats, MetaCacheSettings, MetaCacheStats, Redis,
    RedisSettings, Sealer,
};
use s3ipfs_core::MetaStore;

use crate::config::{CacheBackend, Config};
use crate::stores::{ContentStores, StoreError};

/// The configured caches and their counters.
#[derive(Default)]
pub struct Caches {
    enabled: bool,
    redis: Option<Redis>,
    sealer: Option<Sealer>,
    /// The content cache's counters, once it wraps a store.
    pub content_stats: Option<Arc<ContentCacheStats>>,
    /// The metadata cache's counters, once it wraps a store.
    pub meta_stats: Option<Arc<MetaCacheStats>>,
}

impl Caches {
    /// Connects to Redis when it is selected, waiting a moment for the first connection (a Redis that is down never
    /// stops the start: the caches bypass it until it is back).
    pub async fn connect(config: &Config) -> Result<Self, StoreError> {
        let c = &config.cache;
        let selected = c.selected();
        let redis = match (&c.redis_url, selected) {
            (Some(url), CacheBackend::Redis) => Some(
                Redis::connect(&RedisSettings {
                    url: url.expose().to_owned(),
                    prefix: c.redis_prefix.clone(),
                    timeout: Duration::from_millis(c.redis_timeout_ms),
                    open_for: Duration::from_secs(c.redis_breaker_open_secs),
                    pool_size: 8,
                })
                .map_err(|e| StoreError::Cache(e.to_string()))?,
            ),
            _ => None,
        };
        if let Some(redis) = &redis
            && !redis.wait_connected(Duration::from_secs(2)).await
        {
            tracing::warn!("redis is not reachable yet: caches bypass it until it is");
        }
        let sealer = c.redis_seal_key.as_ref().map(|key| Sealer::new(key.expose()));
        if redis.is_some() && sealer.is_none() {
            tracing::info!("no cache.redis_seal_key: access keys are cached in process only, not in Redis");
        }
        Ok(Caches { enabled: selected != CacheBackend::Off, redis, sealer, ..Caches::default() })
    }

    /// `store` behind the metadata cache. `sole_writer`: this process is the store's only writer (the embedded
    /// store), so head versions can be cached without Redis.
    pub fn meta(&mut self, config: &Config, store: Arc<dyn MetaStore>, sole_writer: bool) -> Arc<dyn MetaStore> {
        if !self.enabled {
            return store;
        }
        let settings = MetaCacheSettings {
            ttl: Duration::from_secs(config.cache.meta_ttl_secs),
            // As short as in process: a value a racing reader put back after an invalidation lives no longer.
            redis_ttl: Duration::from_secs(config.cache.meta_ttl_secs),
            local_heads: sole_writer,
            max_entries: 100_000,
            token_reuse: Duration::from_millis(config.cache.head_token_reuse_ms),
        };
        let redis = self.redis.clone().map(|r| (r, self.sealer.clone()));
        let cached = CachedMeta::new(store, settings, redis);
        self.meta_stats = Some(cached.stats());
        Arc::new(cached)
    }

    /// The content stores with the content cache in front; a disk layer with a remote backend when `serving` (an
    /// admin command keeps no copies: it only needs its deletions to reach Redis).
    pub fn content(
        &mut self,
        config: &Config,
        mut stores: ContentStores,
        serving: bool,
    ) -> Result<ContentStores, StoreError> {
        if !self.enabled {
            return Ok(stores);
        }
        let c = &config.cache;
        let disk_dir = c.disk_dir.clone().unwrap_or_else(|| config.server.data_dir.join("cache"));
        let settings = ContentCacheSettings {
            max_memory_object: c.max_object_kib * 1024,
            memory_budget: c.memory_mib * 1024 * 1024,
            redis_ttl: Duration::from_secs(c.content_ttl_secs),
            disk: (serving && stores.remote.is_some() && c.disk_mib > 0).then(|| (disk_dir, c.disk_mib * 1024 * 1024)),
            max_disk_object: c.max_disk_object_mib * 1024 * 1024,
        };
        let cached = CachedContent::new(Arc::clone(&stores.content), settings, self.redis.clone())
            .map_err(|source| StoreError::DataDir { path: "cache.disk_dir".into(), source })?;
        self.content_stats = Some(cached.stats());
        stores.content = Arc::new(cached);
        Ok(stores)
    }

    /// Logs what the caches counted (at shutdown).
    pub fn log_counts(&self) {
        if let Some(stats) = &self.content_stats {
            let (memory, redis, disk, source) =
                (stats.memory.counts(), stats.redis.counts(), stats.disk.counts(), stats.source.counts());
            tracing::info!(?memory, ?redis, ?disk, ?source, "content cache");
        }
        if let Some(stats) = &self.meta_stats {
            let (local, redis, heads) = (stats.local.counts(), stats.redis.counts(), stats.heads.counts());
            tracing::info!(?local, ?redis, ?heads, invalidations = stats.invalidations(), "metadata cache");
        }
    }
}
