//! Counters of every cache layer, for the metrics exporter: hits, misses, bypasses (the layer was skipped because it
//! failed or is switched off by its breaker) and bytes served.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one layer.
#[derive(Debug, Default)]
pub struct LayerStats {
    hits: AtomicU64,
    misses: AtomicU64,
    bypasses: AtomicU64,
    bytes: AtomicU64,
}

/// What [`LayerStats`] counted so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerCounts {
    /// Lookups the layer answered.
    pub hits: u64,
    /// Lookups the layer did not hold.
    pub misses: u64,
    /// Lookups that skipped the layer because it failed or its breaker was open.
    pub bypasses: u64,
    /// Bytes served from the layer.
    pub bytes: u64,
}

impl LayerStats {
    /// A hit that served `bytes`.
    pub fn hit(&self, bytes: u64) {
        self.hits.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// A miss.
    pub fn miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }

    /// A bypass.
    pub fn bypass(&self) {
        self.bypasses.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts so far.
    pub fn counts(&self) -> LayerCounts {
        LayerCounts {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            bypasses: self.bypasses.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }
}

/// Counters of the content cache's layers, and of the bytes that came from the content store behind them.
#[derive(Debug, Default)]
pub struct ContentCacheStats {
    /// The in-process layer.
    pub memory: LayerStats,
    /// The Redis layer.
    pub redis: LayerStats,
    /// The local disk layer.
    pub disk: LayerStats,
    /// Reads that went to the content store (a hit there is a read served from the source).
    pub source: LayerStats,
}

/// Counters of the metadata cache: access keys and buckets in process and in Redis, and keys' head versions.
#[derive(Debug, Default)]
pub struct MetaCacheStats {
    /// The in-process layer.
    pub local: LayerStats,
    /// The Redis layer.
    pub redis: LayerStats,
    /// Head versions (validated against their key's write token).
    pub heads: LayerStats,
    /// Invalidations received from other replicas.
    pub invalidations: AtomicU64,
}

impl MetaCacheStats {
    /// Invalidations received so far.
    pub fn invalidations(&self) -> u64 {
        self.invalidations.load(Ordering::Relaxed)
    }
}
