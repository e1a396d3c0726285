//! Garbage collection: the one place content is deleted. Content whose references (versions, parts, claims) have all
//! been gone for longer than a grace period is marked in the metadata store, deleted from the content store, then
//! forgotten; writers that want the same bytes meanwhile wait for the mark to clear (see the `meta` module's
//! content lifecycle). One collector runs at a time, under a lease.

use std::time::{Duration, SystemTime};

use crate::meta::StoredContent;

use super::{Gateway, ServiceError};

/// The lease collectors take, so that one replica (or `s3ipfs gc`) collects at a time.
const LEASE: &str = "gc";
/// How long a collector's lease lasts; renewed after every batch.
const LEASE_TTL: Duration = Duration::from_secs(300);
/// Content rows marked and deleted per batch.
const BATCH: usize = 256;

/// What a collection deleted, or a dry run would delete.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Content objects (CIDs).
    pub objects: u64,
    /// Their bytes.
    pub bytes: u64,
}

impl GcReport {
    fn add(&mut self, content: &[StoredContent]) {
        self.objects += content.len() as u64;
        self.bytes += content.iter().map(|c| c.size).sum::<u64>();
    }
}

fn cutoff(grace: Duration) -> SystemTime {
    SystemTime::now().checked_sub(grace).unwrap_or(SystemTime::UNIX_EPOCH)
}

impl Gateway {
    /// The content a collection with `grace` would delete now, in CID byte order (a dry run: nothing changes).
    pub async fn collectable(&self, grace: Duration) -> Result<Vec<StoredContent>, ServiceError> {
        let cutoff = cutoff(grace);
        let mut found: Vec<StoredContent> = Vec::new();
        loop {
            let page = self.meta.collectable_content(cutoff, found.last().map(|c| &c.cid), BATCH).await?;
            let done = page.len() < BATCH;
            found.extend(page);
            if done {
                return Ok(found);
            }
        }
    }

    /// Deletes content no version, part or claim has referenced for longer than `grace`. `None` when another
    /// collector holds the lease. A deletion that fails leaves its content marked; the next collection retries it.
    pub async fn collect_garbage(&self, grace: Duration) -> Result<Option<GcReport>, ServiceError> {
        let holder = format!("{:032x}", rand::random::<u128>());
        if !self.meta.acquire_lease(LEASE, &holder, LEASE_TTL).await? {
            return Ok(None);
        }
        let result = self.collect_batches(grace, &holder).await;
        let _ = self.meta.release_lease(LEASE, &holder).await;
        result.map(Some)
    }

    async fn collect_batches(&self, grace: Duration, holder: &str) -> Result<GcReport, ServiceError> {
        let mut report = GcReport::default();
        loop {
            let batch = self.meta.mark_collectable(cutoff(grace), BATCH).await?;
            if batch.is_empty() {
                return Ok(report);
            }
            for content in &batch {
                self.content.delete(&content.cid).await?;
            }
            let cids: Vec<_> = batch.iter().map(|c| c.cid).collect();
            self.meta.forget_content(&cids).await?;
            report.add(&batch);
            // A collector that lost its lease (it stalled for longer than the TTL) stops before marking more.
            if !self.meta.acquire_lease(LEASE, holder, LEASE_TTL).await? {
                return Ok(report);
            }
        }
    }
}
