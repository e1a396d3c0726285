//! The metadata cache: a [`MetaStore`] in front of another.
//!
//! - Access keys and buckets are kept in process for `ttl`, and in Redis (secrets sealed) for `redis_ttl`. A write
//!   that changes one (a revoked key, versioning switched, a bucket deleted) deletes it from Redis and publishes an
//!   invalidation that every replica applies at once; it does both again a second later, for a reader that loaded
//!   the old value while the write ran. A lost message is bounded by `ttl`; after a reconnection to Redis every
//!   replica drops what it holds. Lookups that find nothing are never cached.
//! - Keys' head versions are cached only under write tokens ([`crate::heads`]): exact read-after-write on every
//!   replica. Without Redis they are cached only when this process is the store's only writer (embedded store).
//! - Everything else goes to the store.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use s3ipfs_cid::Cid;
use s3ipfs_core::meta::{ClaimId, NewVersion, StoredContent, UploadId};
use s3ipfs_core::{
    AccessKey, Bucket, BucketName, MetaError, MetaStore, MultipartUpload, ObjectKey, ObjectVersion, UploadPart, User,
    UserId, VersionId, Versioning,
};

use crate::heads::Tokens;
use crate::redis::{Notice, Redis};
use crate::seal::Sealer;
use crate::stats::MetaCacheStats;

/// How the metadata cache behaves.
#[derive(Debug, Clone)]
pub struct MetaCacheSettings {
    /// How long an access key or bucket is kept in process: the bound on a change another replica made when its
    /// invalidation message is lost.
    pub ttl: Duration,
    /// How long an access key or bucket is kept in Redis.
    pub redis_ttl: Duration,
    /// Head versions are cached with tokens in this process (only when it is the store's only writer).
    pub local_heads: bool,
    /// At most this many entries of each kind in process.
    pub max_entries: u64,
    /// How long a replica reuses a Redis write token it read, without asking Redis again. Zero (the default):
    /// never, and read-after-write is exact across replicas. Otherwise a write acknowledged by another replica can
    /// go unseen here for up to this long (never on the replica that wrote it), and hot GETs skip a Redis round trip.
    pub token_reuse: Duration,
}

/// An in-process map of at most `max_entries`, each kept for `ttl`.
fn local<K, V>(settings: &MetaCacheSettings) -> moka::sync::Cache<K, V>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    moka::sync::Cache::builder().max_capacity(settings.max_entries).time_to_live(settings.ttl).build()
}

/// What invalidation messages name.
fn bucket_topic(name: &str) -> String {
    format!("b:{name}")
}

fn key_topic(id: &str) -> String {
    format!("k:{id}")
}

type HeadEntry = (Bytes, Option<ObjectVersion>);

/// A metadata store with caches in front.
pub struct CachedMeta {
    store: Arc<dyn MetaStore>,
    settings: MetaCacheSettings,
    keys: moka::sync::Cache<String, AccessKey>,
    buckets: moka::sync::Cache<BucketName, Bucket>,
    heads: moka::sync::Cache<(BucketName, ObjectKey), HeadEntry>,
    tokens: Option<Tokens>,
    /// Tokens read from Redis, reused for `settings.token_reuse` (`None` when zero).
    recent_tokens: Option<moka::sync::Cache<u64, Bytes>>,
    redis: Option<(Redis, Option<Sealer>)>,
    renew_failing: std::sync::atomic::AtomicBool,
    /// Writes this process made per slot: a head or token read before one of them is not kept.
    writes: Vec<AtomicU64>,
    /// Slots whose token renewal is being retried in the background.
    retrying: Arc<Mutex<HashSet<u64>>>,
    stats: Arc<MetaCacheStats>,
}

impl CachedMeta {
    /// Caches in front of `store`; with `redis`, shared and invalidated across replicas (access keys kept there only
    /// with a `sealer`).
    pub fn new(store: Arc<dyn MetaStore>, settings: MetaCacheSettings, redis: Option<(Redis, Option<Sealer>)>) -> Self {
        let (keys, buckets, heads) = (local(&settings), local(&settings), local(&settings));
        let tokens = match &redis {
            Some((redis, _)) => Some(Tokens::Shared(redis.clone())),
            None if settings.local_heads => Some(Tokens::local()),
            None => None,
        };
        let recent_tokens = (!settings.token_reuse.is_zero() && redis.is_some()).then(|| {
            moka::sync::Cache::builder().max_capacity(crate::heads::SLOTS).time_to_live(settings.token_reuse).build()
        });
        let stats: Arc<MetaCacheStats> = Arc::default();
        if let Some((redis, _)) = &redis {
            let (keys, buckets, heads, stats) = (keys.clone(), buckets.clone(), heads.clone(), Arc::clone(&stats));
            let recent = recent_tokens.clone();
            let listen = Arc::new(move |notice: Notice| {
                stats.invalidations.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                match notice {
                    Notice::Changed(topic) => {
                        if let Some(name) = topic.strip_prefix("b:").and_then(|n| BucketName::parse(n).ok()) {
                            buckets.invalidate(&name);
                        } else if let Some(id) = topic.strip_prefix("k:") {
                            keys.invalidate(id);
                        }
                    }
                    Notice::Reset => {
                        keys.invalidate_all();
                        buckets.invalidate_all();
                        heads.invalidate_all();
                        if let Some(recent) = &recent {
                            recent.invalidate_all();
                        }
                    }
                }
            });
            if let Err(err) = redis.subscribe(listen) {
                tracing::warn!(error = %err, "no cache invalidations from other replicas: entries live their TTL");
            }
        }
        let tokens_present = tokens.is_some();
        CachedMeta {
            store,
            settings,
            keys,
            buckets,
            heads,
            tokens,
            recent_tokens,
            redis,
            renew_failing: Default::default(),
            writes: (0..if tokens_present { crate::heads::SLOTS } else { 0 }).map(|_| AtomicU64::new(0)).collect(),
            retrying: Arc::default(),
            stats,
        }
    }

    /// The cache's counters.
    pub fn stats(&self) -> Arc<MetaCacheStats> {
        Arc::clone(&self.stats)
    }

    /// Drops `topic`'s entry here, in Redis and on every replica; again a second later, for readers that loaded it
    /// from the store while the write ran.
    async fn invalidate(&self, redis_key: String, topic: String) {
        let Some((redis, _)) = &self.redis else { return };
        let once = |redis: Redis, redis_key: String, topic: String| async move {
            let _ = redis.del_surely(redis_key).await;
            let _ = redis.publish_surely(topic).await;
        };
        once(redis.clone(), redis_key.clone(), topic.clone()).await;
        let again = redis.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            once(again, redis_key, topic).await;
        });
    }

    async fn forget_bucket(&self, name: &BucketName) {
        self.buckets.invalidate(name);
        if let Some((redis, _)) = &self.redis {
            self.invalidate(redis.key(&bucket_topic(name.as_str())), bucket_topic(name.as_str())).await;
        }
    }

    /// After a write that may have changed `key`'s head version: a new token, before the write is acknowledged. A
    /// renewal that fails is retried in the background for the cache TTL (the bound on what it can leave stale).
    async fn head_changed(&self, bucket: &BucketName, key: &ObjectKey) {
        let Some(tokens) = &self.tokens else { return };
        self.heads.invalidate(&(bucket.clone(), key.clone()));
        let slot = Tokens::slot(bucket.as_str(), key.as_str());
        let renewed = tokens.renew(slot).await;
        // Readers in this process that read before now keep nothing they read.
        self.generation(slot).fetch_add(1, Ordering::SeqCst);
        let renewed = match renewed {
            Ok(token) => {
                if let Some(recent) = &self.recent_tokens {
                    recent.insert(slot, token);
                }
                true
            }
            Err(_) => {
                if let Some(recent) = &self.recent_tokens {
                    recent.invalidate(&slot);
                }
                self.stats.heads.bypass();
                self.retry_renewal(tokens, slot);
                false
            }
        };
        // Logged when renewals start and stop failing, not once per write.
        if renewed == self.renew_failing.swap(!renewed, std::sync::atomic::Ordering::Relaxed) {
            if renewed {
                tracing::info!("write tokens are renewed in redis again");
            } else {
                tracing::warn!(
                    "cannot renew write tokens in redis: other replicas that still reach it may serve a key's \
                     previous version until a retry lands (at most the cache TTL)"
                );
            }
        }
    }

    /// This process's write count of `slot`.
    fn generation(&self, slot: u64) -> &AtomicU64 {
        static NONE: AtomicU64 = AtomicU64::new(0);
        usize::try_from(slot).ok().and_then(|i| self.writes.get(i)).unwrap_or(&NONE)
    }

    /// Retries a failed renewal of `slot` in the background, every 100 ms for the cache TTL (one retry per slot).
    fn retry_renewal(&self, tokens: &Tokens, slot: u64) {
        if !self.retrying.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(slot) {
            return;
        }
        let (tokens, retrying, until) =
            (tokens.clone(), Arc::clone(&self.retrying), std::time::Instant::now() + self.settings.ttl);
        tokio::spawn(async move {
            while std::time::Instant::now() < until && tokens.renew(slot).await.is_err() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            retrying.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&slot);
        });
    }

    /// `key`'s head version: cached under its slot's token, else from the store.
    async fn head(&self, bucket: &BucketName, key: &ObjectKey) -> Result<Option<ObjectVersion>, MetaError> {
        let Some(tokens) = &self.tokens else { return self.store.latest_version(bucket, key).await };
        let slot = Tokens::slot(bucket.as_str(), key.as_str());
        let generation = self.generation(slot).load(Ordering::SeqCst);
        let unchanged = || self.generation(slot).load(Ordering::SeqCst) == generation;
        let reused = self.recent_tokens.as_ref().and_then(|recent| recent.get(&slot));
        let token = match reused {
            Some(token) => token,
            None => match tokens.current(slot).await {
                Ok(token) => {
                    if let Some(recent) = self.recent_tokens.as_ref().filter(|_| unchanged()) {
                        recent.insert(slot, token.clone());
                    }
                    token
                }
                Err(_) => {
                    self.stats.heads.bypass();
                    return self.store.latest_version(bucket, key).await;
                }
            },
        };
        let entry = (bucket.clone(), key.clone());
        if let Some((held, version)) = self.heads.get(&entry)
            && held == token
        {
            self.stats.heads.hit(0);
            return Ok(version);
        }
        self.stats.heads.miss();
        let version = self.store.latest_version(bucket, key).await?;
        if unchanged() {
            self.heads.insert(entry, (token, version.clone()));
        }
        Ok(version)
    }

    /// The entry `topic` in Redis, decoded; a value that does not decode counts as a miss.
    async fn lookup_in_redis<T>(
        &self,
        redis: &Redis,
        topic: &str,
        decode: impl FnOnce(&[u8]) -> Option<T>,
    ) -> Option<T> {
        let found = match redis.get(redis.key(topic)).await {
            Ok(value) => value.and_then(|v| decode(&v)),
            Err(_) => {
                self.stats.redis.bypass();
                return None;
            }
        };
        if found.is_some() {
            self.stats.redis.hit(0)
        } else {
            self.stats.redis.miss()
        }
        found
    }

    async fn redis_bucket(&self, name: &BucketName) -> Option<Bucket> {
        let (redis, _) = self.redis.as_ref()?;
        self.lookup_in_redis(redis, &bucket_topic(name.as_str()), |v| decode_bucket(name, v)).await
    }

    async fn redis_key(&self, id: &str) -> Option<AccessKey> {
        let (redis, Some(sealer)) = self.redis.as_ref()? else { return None };
        self.lookup_in_redis(redis, &key_topic(id), |v| sealer.open(id, v)).await
    }

    fn keep_in_redis(&self, key: String, value: Vec<u8>) {
        if let Some((redis, _)) = &self.redis {
            let (redis, ttl) = (redis.clone(), self.settings.redis_ttl);
            tokio::spawn(async move {
                let _ = redis.set(key, Bytes::from(value), ttl).await;
            });
        }
    }
}

fn versioning_code(versioning: Versioning) -> u8 {
    match versioning {
        Versioning::Unversioned => 0,
        Versioning::Enabled => 1,
        Versioning::Suspended => 2,
    }
}

/// `owner created-millis versioning`, the bucket as Redis keeps it.
fn encode_bucket(bucket: &Bucket) -> Vec<u8> {
    let created = bucket.created_at.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    format!("{} {created} {}", bucket.owner.0, versioning_code(bucket.versioning)).into_bytes()
}

fn decode_bucket(name: &BucketName, value: &[u8]) -> Option<Bucket> {
    let text = std::str::from_utf8(value).ok()?;
    let mut fields = text.split(' ');
    let owner = UserId(fields.next()?.parse().ok()?);
    let created = SystemTime::UNIX_EPOCH + Duration::from_millis(fields.next()?.parse().ok()?);
    let versioning = match fields.next()? {
        "0" => Versioning::Unversioned,
        "1" => Versioning::Enabled,
        "2" => Versioning::Suspended,
        _ => return None,
    };
    Some(Bucket { name: name.clone(), owner, created_at: created, versioning })
}

#[async_trait]
impl MetaStore for CachedMeta {
    async fn create_user(&self, email: &str) -> Result<User, MetaError> {
        self.store.create_user(email).await
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>, MetaError> {
        self.store.user_by_email(email).await
    }

    async fn add_access_key(&self, key: &AccessKey) -> Result<(), MetaError> {
        self.store.add_access_key(key).await
    }

    async fn access_key(&self, id: &str) -> Result<Option<AccessKey>, MetaError> {
        if let Some(key) = self.keys.get(id) {
            self.stats.local.hit(0);
            return Ok(Some(key));
        }
        self.stats.local.miss();
        if let Some(key) = self.redis_key(id).await {
            self.keys.insert(id.to_owned(), key.clone());
            return Ok(Some(key));
        }
        let found = self.store.access_key(id).await?;
        if let Some(key) = &found {
            self.keys.insert(id.to_owned(), key.clone());
            if let Some((redis, Some(sealer))) = &self.redis
                && let Some(sealed) = sealer.seal(key)
            {
                self.keep_in_redis(redis.key(&key_topic(id)), sealed);
            }
        }
        Ok(found)
    }

    async fn remove_access_key(&self, id: &str) -> Result<bool, MetaError> {
        let removed = self.store.remove_access_key(id).await?;
        self.keys.invalidate(id);
        if let Some((redis, _)) = &self.redis {
            self.invalidate(redis.key(&key_topic(id)), key_topic(id)).await;
        }
        Ok(removed)
    }

    async fn create_bucket(&self, bucket: &Bucket) -> Result<(), MetaError> {
        self.store.create_bucket(bucket).await?;
        self.forget_bucket(&bucket.name).await;
        Ok(())
    }

    async fn bucket(&self, name: &BucketName) -> Result<Option<Bucket>, MetaError> {
        if let Some(bucket) = self.buckets.get(name) {
            self.stats.local.hit(0);
            return Ok(Some(bucket));
        }
        self.stats.local.miss();
        if let Some(bucket) = self.redis_bucket(name).await {
            self.buckets.insert(name.clone(), bucket.clone());
            return Ok(Some(bucket));
        }
        let found = self.store.bucket(name).await?;
        if let Some(bucket) = &found {
            self.buckets.insert(name.clone(), bucket.clone());
            if let Some((redis, _)) = &self.redis {
                self.keep_in_redis(redis.key(&bucket_topic(name.as_str())), encode_bucket(bucket));
            }
        }
        Ok(found)
    }

    async fn buckets_of(&self, owner: UserId) -> Result<Vec<Bucket>, MetaError> {
        self.store.buckets_of(owner).await
    }

    async fn set_versioning(&self, name: &BucketName, versioning: Versioning) -> Result<(), MetaError> {
        self.store.set_versioning(name, versioning).await?;
        self.forget_bucket(name).await;
        Ok(())
    }

    async fn delete_bucket(&self, name: &BucketName) -> Result<(), MetaError> {
        self.store.delete_bucket(name).await?;
        self.forget_bucket(name).await;
        Ok(())
    }

    async fn begin_version(&self, bucket: &BucketName, key: &ObjectKey) -> Result<UploadId, MetaError> {
        self.store.begin_version(bucket, key).await
    }

    async fn commit_version(&self, upload: UploadId, new: NewVersion) -> Result<ObjectVersion, MetaError> {
        let version = self.store.commit_version(upload, new).await?;
        self.head_changed(&version.bucket, &version.key).await;
        Ok(version)
    }

    async fn abort_version(&self, upload: UploadId) -> Result<(), MetaError> {
        self.store.abort_version(upload).await
    }

    async fn append_version(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        new: NewVersion,
    ) -> Result<ObjectVersion, MetaError> {
        let version = self.store.append_version(bucket, key, new).await?;
        self.head_changed(bucket, key).await;
        Ok(version)
    }

    async fn retire_version(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version_id: &VersionId,
    ) -> Result<Option<ObjectVersion>, MetaError> {
        let retired = self.store.retire_version(bucket, key, version_id).await?;
        if retired.is_some() {
            self.head_changed(bucket, key).await;
        }
        Ok(retired)
    }

    async fn latest_version(&self, bucket: &BucketName, key: &ObjectKey) -> Result<Option<ObjectVersion>, MetaError> {
        self.head(bucket, key).await
    }

    async fn bucket_and_latest(
        &self,
        name: &BucketName,
        key: &ObjectKey,
    ) -> Result<Option<(Bucket, Option<ObjectVersion>)>, MetaError> {
        if self.tokens.is_none() && !self.buckets.contains_key(name) {
            // Nothing cached for either: one read of both.
            let found = self.store.bucket_and_latest(name, key).await?;
            if let Some((bucket, _)) = &found {
                self.buckets.insert(name.clone(), bucket.clone());
            }
            return Ok(found);
        }
        let Some(bucket) = self.bucket(name).await? else { return Ok(None) };
        Ok(Some((bucket, self.head(name, key).await?)))
    }

    async fn find_version(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version_id: &VersionId,
    ) -> Result<Option<ObjectVersion>, MetaError> {
        self.store.find_version(bucket, key, version_id).await
    }

    async fn list_latest(
        &self,
        bucket: &BucketName,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ObjectVersion>, MetaError> {
        self.store.list_latest(bucket, prefix, after, limit).await
    }

    async fn list_latest_grouped(
        &self,
        bucket: &BucketName,
        prefix: &str,
        delimiter: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ObjectVersion>, MetaError> {
        self.store.list_latest_grouped(bucket, prefix, delimiter, after, limit).await
    }

    async fn list_versions(
        &self,
        bucket: &BucketName,
        prefix: &str,
        after: Option<(&str, u64)>,
        limit: usize,
    ) -> Result<Vec<ObjectVersion>, MetaError> {
        self.store.list_versions(bucket, prefix, after, limit).await
    }

    async fn content_refs(&self, cid: &Cid) -> Result<u64, MetaError> {
        self.store.content_refs(cid).await
    }

    fn replica(&self) -> &str {
        self.store.replica()
    }

    async fn heartbeat(&self, ttl: Duration) -> Result<(), MetaError> {
        self.store.heartbeat(ttl).await
    }

    async fn abort_orphans(&self, before: SystemTime) -> Result<u64, MetaError> {
        self.store.abort_orphans(before).await
    }

    async fn prune_history(&self, before: SystemTime, limit: usize) -> Result<u64, MetaError> {
        self.store.prune_history(before, limit).await
    }

    async fn claim_content(&self, cid: &Cid, size: u64) -> Result<ClaimId, MetaError> {
        self.store.claim_content(cid, size).await
    }

    async fn release_claim(&self, claim: ClaimId) -> Result<(), MetaError> {
        self.store.release_claim(claim).await
    }

    async fn collectable_content(
        &self,
        cutoff: SystemTime,
        after: Option<&Cid>,
        limit: usize,
    ) -> Result<Vec<StoredContent>, MetaError> {
        self.store.collectable_content(cutoff, after, limit).await
    }

    async fn mark_collectable(&self, cutoff: SystemTime, limit: usize) -> Result<Vec<StoredContent>, MetaError> {
        self.store.mark_collectable(cutoff, limit).await
    }

    async fn forget_content(&self, cids: &[Cid]) -> Result<(), MetaError> {
        self.store.forget_content(cids).await
    }

    async fn acquire_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, MetaError> {
        self.store.acquire_lease(name, holder, ttl).await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), MetaError> {
        self.store.release_lease(name, holder).await
    }

    async fn create_multipart(&self, upload: &MultipartUpload) -> Result<(), MetaError> {
        self.store.create_multipart(upload).await
    }

    async fn multipart(&self, id: &str) -> Result<Option<MultipartUpload>, MetaError> {
        self.store.multipart(id).await
    }

    async fn put_part(
        &self,
        upload_id: &str,
        part: &UploadPart,
        claim: ClaimId,
    ) -> Result<Option<UploadPart>, MetaError> {
        self.store.put_part(upload_id, part, claim).await
    }

    async fn parts(&self, upload_id: &str, after: u32, limit: usize) -> Result<Vec<UploadPart>, MetaError> {
        self.store.parts(upload_id, after, limit).await
    }

    async fn multiparts(
        &self,
        bucket: &BucketName,
        prefix: &str,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<MultipartUpload>, MetaError> {
        self.store.multiparts(bucket, prefix, after, limit).await
    }

    async fn remove_multipart(&self, id: &str) -> Result<Vec<UploadPart>, MetaError> {
        self.store.remove_multipart(id).await
    }

    async fn stale_multiparts(&self, before: SystemTime) -> Result<Vec<MultipartUpload>, MetaError> {
        self.store.stale_multiparts(before).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_survives_its_redis_encoding() {
        let name = BucketName::parse("photos").expect("name");
        let bucket = Bucket {
            name: name.clone(),
            owner: UserId(42),
            created_at: SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
            versioning: Versioning::Suspended,
        };
        assert_eq!(decode_bucket(&name, &encode_bucket(&bucket)), Some(bucket));
        assert_eq!(decode_bucket(&name, b"42 1 9"), None);
        assert_eq!(decode_bucket(&name, b"garbage"), None);
    }
}
