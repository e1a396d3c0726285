//! The content cache: a [`ContentStore`] in front of another, keyed by CID. Content never changes under its CID, so
//! nothing is ever invalidated; garbage collection's deletes drop the copies only to free room.
//!
//! A GET of an object of known size (`read_sized`) looks in memory, then (objects up to the memory limit) in Redis,
//! or (larger objects, with a disk layer) on the local disk; on a miss, one fetch of the whole object per CID fills
//! the layers (single flight) and every waiting reader is served from it. Objects above the disk limit, and reads
//! of unknown size, go to the source, served from memory or disk when they happen to be there.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::StreamExt as _;
use s3ipfs_cid::Cid;
use s3ipfs_core::{ByteStream, ContentError, ContentStore, ContentWriter};

use crate::disk::DiskCache;
use crate::flight::Flights;
use crate::redis::Redis;
use crate::stats::ContentCacheStats;

/// Disk fills at once: bounds the temporary files (and backend downloads) clients can start.
pub const MAX_FILLS: usize = 4;

/// Sizes and places of the content cache.
#[derive(Debug, Clone)]
pub struct ContentCacheSettings {
    /// Objects up to this size are kept in memory (and in Redis).
    pub max_memory_object: u64,
    /// The in-process layer's budget, in bytes.
    pub memory_budget: u64,
    /// How long an object stays in Redis after it was put there.
    pub redis_ttl: Duration,
    /// The disk layer: its root directory and byte budget (`None`: no disk layer).
    pub disk: Option<(std::path::PathBuf, u64)>,
    /// Objects up to this size are kept on disk.
    pub max_disk_object: u64,
}

/// A content store with caches in front.
pub struct CachedContent {
    source: Arc<dyn ContentStore>,
    settings: ContentCacheSettings,
    memory: moka::sync::Cache<Cid, Bytes>,
    redis: Option<Redis>,
    disk: Option<Arc<DiskCache>>,
    small: Flights<Bytes>,
    large: Flights<()>,
    /// Disk fills running at once (each holds a temporary file of up to `max_disk_object`).
    fills: Arc<tokio::sync::Semaphore>,
    stats: Arc<ContentCacheStats>,
}

impl CachedContent {
    /// Caches in front of `source`, with a Redis layer when `redis` is given.
    pub fn new(
        source: Arc<dyn ContentStore>,
        settings: ContentCacheSettings,
        redis: Option<Redis>,
    ) -> std::io::Result<Self> {
        let memory = moka::sync::Cache::builder()
            .max_capacity(settings.memory_budget.div_ceil(1024).max(1))
            .weigher(|_: &Cid, bytes: &Bytes| u32::try_from(bytes.len().div_ceil(1024)).unwrap_or(u32::MAX).max(1))
            .build();
        let disk = match &settings.disk {
            Some((root, budget)) => Some(Arc::new(DiskCache::open(root, *budget)?)),
            None => None,
        };
        Ok(CachedContent {
            source,
            settings,
            memory,
            redis,
            disk,
            small: Flights::new(),
            large: Flights::new(),
            fills: Arc::new(tokio::sync::Semaphore::new(MAX_FILLS)),
            stats: Arc::default(),
        })
    }

    /// The layers' counters.
    pub fn stats(&self) -> Arc<ContentCacheStats> {
        Arc::clone(&self.stats)
    }

    fn redis_key(redis: &Redis, cid: &Cid) -> String {
        redis.key(&format!("c:{cid}"))
    }

    /// A small object, whole: from Redis, else from the source (one fetch per CID at a time), kept in both.
    async fn small_object(&self, cid: &Cid, size: u64) -> Result<Bytes, ContentError> {
        if let Some(redis) = &self.redis {
            match redis.get(Self::redis_key(redis, cid)).await {
                Ok(Some(bytes)) if bytes.len() as u64 == size => {
                    self.stats.redis.hit(size);
                    self.memory.insert(*cid, bytes.clone());
                    return Ok(bytes);
                }
                Ok(_) => self.stats.redis.miss(),
                Err(_) => self.stats.redis.bypass(),
            }
        }
        let source = Arc::clone(&self.source);
        let stats = Arc::clone(&self.stats);
        let (redis, ttl, fetched) = (self.redis.clone(), self.settings.redis_ttl, *cid);
        let bytes = self
            .small
            .run(*cid, move || async move {
                let bytes = collect(source.read(&fetched, 0..size).await?, size).await?;
                stats.source.hit(size);
                if let Some(redis) = redis {
                    // Kept for the other replicas in the background: the reader does not wait for Redis.
                    let value = bytes.clone();
                    tokio::spawn(async move {
                        let _ = redis.set(Self::redis_key(&redis, &fetched), value, ttl).await;
                    });
                }
                Ok(bytes)
            })
            .await?;
        self.memory.insert(*cid, bytes.clone());
        Ok(bytes)
    }

    /// A large object from the disk layer. A whole-object GET of one not there fills it from the source first (one
    /// fetch per CID at a time, at most [`MAX_FILLS`] CIDs at once); `None` sends the caller to the source: a ranged
    /// GET of an object not on disk (a client asking for one byte never makes the gateway fetch them all), all fill
    /// slots busy, or a fill that failed.
    async fn large_object(&self, disk: &Arc<DiskCache>, cid: &Cid, size: u64, range: Range<u64>) -> Option<ByteStream> {
        if disk.contains(cid)
            && let Ok(Some(stream)) = disk.read(cid, range.clone()).await
        {
            self.stats.disk.hit(range.end - range.start);
            return Some(stream);
        }
        self.stats.disk.miss();
        if range != (0..size) {
            return None;
        }
        let (source, stats, fills) = (Arc::clone(&self.source), Arc::clone(&self.stats), Arc::clone(&self.fills));
        let (filling, fetched) = (Arc::clone(disk), *cid);
        let filled = self
            .large
            .run(*cid, move || {
                // Taken when this call starts the fetch; callers that join a fetch in progress take none.
                let slot = fills.try_acquire_owned();
                async move {
                    let _slot = slot
                        .map_err(|_| ContentError::Io(std::io::Error::other("every disk cache fill slot is busy")))?;
                    filling.fill(&fetched, size, source.read(&fetched, 0..size).await?).await?;
                    stats.source.hit(size);
                    Ok(())
                }
            })
            .await;
        if let Err(err) = filled {
            tracing::debug!(%cid, error = %err, "filling the disk cache failed; reading the source");
            return None;
        }
        disk.read(cid, range).await.ok().flatten()
    }
}

/// Reads a whole small object into one buffer, checking its length.
async fn collect(mut stream: ByteStream, size: u64) -> Result<Bytes, ContentError> {
    let mut buf = BytesMut::with_capacity(usize::try_from(size).unwrap_or(0));
    while let Some(chunk) = stream.next().await {
        buf.extend_from_slice(&chunk?);
        if buf.len() as u64 > size {
            break;
        }
    }
    if buf.len() as u64 != size {
        return Err(ContentError::Io(std::io::Error::other(format!(
            "the content store returned {} bytes, not {size}",
            buf.len()
        ))));
    }
    Ok(buf.freeze())
}

/// One slice of `bytes` as a stream, checked against its size.
fn slice(bytes: &Bytes, range: Range<u64>) -> Result<ByteStream, ContentError> {
    let size = bytes.len() as u64;
    if range.start > range.end || range.end > size {
        return Err(ContentError::Range { start: range.start, end: range.end, size });
    }
    #[allow(clippy::cast_possible_truncation)] // both bounds are at most the buffer's length
    let part = bytes.slice(range.start as usize..range.end as usize);
    Ok(Box::pin(futures::stream::iter(std::iter::once(Ok(part)).filter(|p| matches!(p, Ok(b) if !b.is_empty())))))
}

#[async_trait]
impl ContentStore for CachedContent {
    async fn writer(&self) -> Result<Box<dyn ContentWriter>, ContentError> {
        self.source.writer().await
    }

    async fn read(&self, cid: &Cid, range: Range<u64>) -> Result<ByteStream, ContentError> {
        if let Some(bytes) = self.memory.get(cid) {
            self.stats.memory.hit(range.end.saturating_sub(range.start));
            return slice(&bytes, range);
        }
        if let Some(disk) = self.disk.as_ref().filter(|d| d.contains(cid))
            && let Ok(Some(stream)) = disk.read(cid, range.clone()).await
        {
            self.stats.disk.hit(range.end.saturating_sub(range.start));
            return Ok(stream);
        }
        self.stats.source.hit(range.end.saturating_sub(range.start));
        self.source.read(cid, range).await
    }

    async fn read_sized(&self, cid: &Cid, size: u64, range: Range<u64>) -> Result<ByteStream, ContentError> {
        if range.start > range.end || range.end > size {
            return Err(ContentError::Range { start: range.start, end: range.end, size });
        }
        if let Some(bytes) = self.memory.get(cid) {
            self.stats.memory.hit(range.end - range.start);
            return slice(&bytes, range);
        }
        self.stats.memory.miss();
        if size <= self.settings.max_memory_object {
            let bytes = self.small_object(cid, size).await?;
            return slice(&bytes, range);
        }
        if let Some(disk) = self.disk.as_ref().filter(|_| size <= self.settings.max_disk_object)
            && let Some(stream) = self.large_object(disk, cid, size, range.clone()).await
        {
            return Ok(stream);
        }
        self.stats.source.hit(range.end - range.start);
        self.source.read(cid, range).await
    }

    async fn size(&self, cid: &Cid) -> Result<Option<u64>, ContentError> {
        // Whether content is stored is the source's to say: garbage collection and copies rely on it.
        self.source.size(cid).await
    }

    async fn delete(&self, cid: &Cid) -> Result<(), ContentError> {
        self.source.delete(cid).await?;
        self.memory.invalidate(cid);
        if let Some(disk) = &self.disk {
            disk.remove(cid);
        }
        if let Some(redis) = &self.redis {
            let _ = redis.del(Self::redis_key(redis, cid)).await;
        }
        Ok(())
    }
}
