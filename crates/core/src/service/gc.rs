//! Garbage collection: the one place content is deleted. Content whose references (versions, parts, claims) have all
//! been gone for longer than a grace period is marked in the metadata store, deleted from the content store, then
//! forgotten; writers that want the same bytes meanwhile wait for the mark to clear (see the `meta` module's
//! content lifecycle). One collector runs at a time, under a lease.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use crate::meta::StoredContent;

use super::{Gateway, ServiceError};

/// The lease collectors take, so that one replica (or `s3ipfs gc`) collects at a time.
const LEASE: &str = "gc";
/// How long a collector's lease lasts; renewed before every deletion, so a collector that stalls for longer than
/// this stops before deleting anything another collector may have taken over.
const LEASE_TTL: Duration = Duration::from_secs(60);
/// Content rows marked and deleted per batch.
const BATCH: usize = 256;

/// What a collection deleted, or a dry run would delete.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Content objects (CIDs).
    pub objects: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Content whose deletion failed: it stays marked, and the next collection tries again.
    pub failed: u64,
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
    /// The content a collection with `grace` would delete now (including what an unfinished collection marked), in
    /// CID byte order: a dry run, nothing changes.
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

    /// Deletes content no version, part or claim has referenced for longer than `grace`, until done or `stop` is set
    /// (checked before each deletion). `None` when another collector holds the lease. A deletion that fails leaves
    /// its content marked; the next collection retries it.
    pub async fn collect_garbage(&self, grace: Duration, stop: &AtomicBool) -> Result<Option<GcReport>, ServiceError> {
        let holder = format!("{:032x}", rand::random::<u128>());
        if !self.meta.acquire_lease(LEASE, &holder, LEASE_TTL).await? {
            return Ok(None);
        }
        let result = self.collect_batches(grace, &holder, stop).await;
        let _ = self.meta.release_lease(LEASE, &holder).await;
        result.map(Some)
    }

    async fn collect_batches(
        &self,
        grace: Duration,
        holder: &str,
        stop: &AtomicBool,
    ) -> Result<GcReport, ServiceError> {
        let mut report = GcReport::default();
        let mut failed: HashSet<s3ipfs_cid::Cid> = HashSet::new();
        loop {
            let batch = self.meta.mark_collectable(cutoff(grace), BATCH).await?;
            if batch.iter().all(|c| failed.contains(&c.cid)) {
                // Nothing left, or only what failed already in this run.
                return Ok(report);
            }
            let todo: Vec<StoredContent> = batch.into_iter().filter(|c| !failed.contains(&c.cid)).collect();
            for content in &todo {
                // A collector that lost its lease (it stalled for longer than the TTL) deletes nothing more.
                if stop.load(Ordering::Relaxed) || !self.meta.acquire_lease(LEASE, holder, LEASE_TTL).await? {
                    return Ok(report);
                }
                // Each CID is forgotten as soon as its bytes are gone: a writer waiting to store it again waits for
                // one deletion, not for the batch (a remote backend takes a round trip per deletion).
                match self.delete_everywhere(&content.cid).await {
                    Ok(()) => self.forget(std::slice::from_ref(content), &mut report).await?,
                    Err(_) => {
                        failed.insert(content.cid);
                        report.failed += 1;
                    }
                }
            }
        }
    }

    /// Deletes `cid` from the content store and, when parts are staged apart, from the staging store.
    async fn delete_everywhere(&self, cid: &s3ipfs_cid::Cid) -> Result<(), crate::ContentError> {
        if let Some(staging) = &self.staging {
            staging.delete(cid).await?;
        }
        self.content.delete(cid).await
    }

    /// Forgets the rows of content whose bytes are deleted, and counts them.
    async fn forget(&self, deleted: &[StoredContent], report: &mut GcReport) -> Result<(), ServiceError> {
        let cids: Vec<_> = deleted.iter().map(|c| c.cid).collect();
        self.meta.forget_content(&cids).await?;
        report.add(deleted);
        Ok(())
    }
}
