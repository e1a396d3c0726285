//! Counters of the remote backend: what crossed the wire, what was saved, what the resilience layers did. The
//! operations issue exports them; tests read them.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters, shared by every clone of a [`super::RemoteStore`].
#[derive(Debug, Default)]
pub struct RemoteStats {
    uploads: AtomicU64,
    uploaded_bytes: AtomicU64,
    deduplicated: AtomicU64,
    cid_mismatches: AtomicU64,
    retries: AtomicU64,
    rejected: AtomicU64,
    breaker_opened: AtomicU64,
}

/// A snapshot of [`RemoteStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RemoteCounts {
    /// Objects uploaded (one per CID the backend did not have).
    pub uploads: u64,
    /// Bytes sent in those uploads (a CAR's bytes for CAR imports).
    pub uploaded_bytes: u64,
    /// Finished writes whose CID the backend already had: nothing was uploaded.
    pub deduplicated: u64,
    /// Uploads refused because the backend reported another CID.
    pub cid_mismatches: u64,
    /// Backend calls retried.
    pub retries: u64,
    /// Backend calls refused at once: circuit open, bulkhead full or rate limit exceeded.
    pub rejected: u64,
    /// Times the circuit breaker opened.
    pub breaker_opened: u64,
}

impl RemoteStats {
    /// The counters now.
    pub fn snapshot(&self) -> RemoteCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RemoteCounts {
            uploads: get(&self.uploads),
            uploaded_bytes: get(&self.uploaded_bytes),
            deduplicated: get(&self.deduplicated),
            cid_mismatches: get(&self.cid_mismatches),
            retries: get(&self.retries),
            rejected: get(&self.rejected),
            breaker_opened: get(&self.breaker_opened),
        }
    }

    pub(super) fn uploaded(&self, bytes: u64) {
        self.uploads.fetch_add(1, Ordering::Relaxed);
        self.uploaded_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(super) fn deduplicated(&self) {
        self.deduplicated.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn cid_mismatch(&self) {
        self.cid_mismatches.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn retried(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn rejected(&self) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn breaker_opened(&self) {
        self.breaker_opened.fetch_add(1, Ordering::Relaxed);
    }
}
