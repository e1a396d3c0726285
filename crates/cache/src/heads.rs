//! Write tokens: what makes a cached head version exact. Every key hashes to one of [`SLOTS`] slots; every write
//! that changes a key's head version gives its slot a new random token *after* the write commits and *before* it is
//! acknowledged. A reader reads the slot's token before it reads the store, and keeps the head under that token; a
//! later reader uses it only while the slot still holds the same token. So a head is reused only if no write to
//! its slot was acknowledged since it was read: read-after-write stays exact, on any replica.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;

use crate::redis::{Bypass, Redis};

/// How many slots keys hash to (collisions only cost extra reads).
pub const SLOTS: u64 = 1 << 16;

/// How long a token lives in Redis when untouched (a missing token is simply made anew).
const TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);

/// Where the tokens live.
#[derive(Clone)]
pub(crate) enum Tokens {
    /// In this process: exact when this process is the only writer (the embedded store, which one server owns).
    Local(Arc<Vec<AtomicU64>>),
    /// In Redis, shared by every replica.
    Shared(Redis),
}

impl Tokens {
    /// Tokens kept in this process.
    pub(crate) fn local() -> Self {
        Tokens::Local(Arc::new((0..SLOTS).map(|_| AtomicU64::new(0)).collect()))
    }

    /// The slot of `key` in `bucket` (FNV-1a: the same on every replica and release).
    pub(crate) fn slot(bucket: &str, key: &str) -> u64 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in bucket.bytes().chain(std::iter::once(0)).chain(key.bytes()) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        hash % SLOTS
    }

    fn redis_key(redis: &Redis, slot: u64) -> String {
        redis.key(&format!("h:{slot}"))
    }

    /// The slot's current token (made if it has none).
    pub(crate) async fn current(&self, slot: u64) -> Result<Bytes, Bypass> {
        match self {
            Tokens::Local(slots) => {
                Ok(Bytes::copy_from_slice(&local(slots, slot).load(Ordering::SeqCst).to_le_bytes()))
            }
            Tokens::Shared(redis) => {
                let fresh = Bytes::copy_from_slice(&rand::random::<u64>().to_le_bytes());
                redis.get_or_set(Self::redis_key(redis, slot), fresh, TOKEN_TTL).await
            }
        }
    }

    /// Gives the slot a new token, and returns it: heads read before now are not used again.
    pub(crate) async fn renew(&self, slot: u64) -> Result<Bytes, Bypass> {
        match self {
            Tokens::Local(slots) => {
                let next = local(slots, slot).fetch_add(1, Ordering::SeqCst).wrapping_add(1);
                Ok(Bytes::copy_from_slice(&next.to_le_bytes()))
            }
            Tokens::Shared(redis) => {
                let fresh = Bytes::copy_from_slice(&rand::random::<u64>().to_le_bytes());
                redis.set_surely(Self::redis_key(redis, slot), fresh.clone(), TOKEN_TTL).await?;
                Ok(fresh)
            }
        }
    }
}

fn local(slots: &[AtomicU64], slot: u64) -> &AtomicU64 {
    // `slot` is below SLOTS, the vector's length.
    &slots[usize::try_from(slot).unwrap_or(0) % slots.len()]
}
