//! `s3ipfs-cache`: caches that implement the ports they sit in front of, so the configuration wires them in one
//! place and nothing else knows they exist.
//!
//! - [`CachedContent`]: content by CID in memory, in Redis and on a local disk, with single-flight fills.
//! - [`CachedMeta`]: access keys and buckets in process and in Redis, invalidated on every replica; head versions
//!   under write tokens, so read-after-write stays exact.
//! - [`Redis`]: the shared connection, which never fails a request: a command that does not answer at once is a
//!   counted bypass to the source.

mod content;
mod disk;
mod flight;
mod heads;
mod meta;
mod redis;
mod seal;
mod stats;

pub use content::{CachedContent, ContentCacheSettings};
pub use heads::SLOTS;
pub use meta::{CachedMeta, MetaCacheSettings};
pub use redis::{Bypass, Notice, Redis, RedisSettings, RedisSetupError};
pub use seal::Sealer;
pub use stats::{ContentCacheStats, LayerCounts, LayerStats, MetaCacheStats};
