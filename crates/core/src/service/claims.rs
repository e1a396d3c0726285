//! Claims on content: a write claims its CID once the bytes are in hand, before it relies on a stored copy, and
//! its commit takes the claim over (see the `meta` module's content lifecycle).

use std::sync::Arc;
use std::time::{Duration, Instant};

use s3ipfs_cid::{Block, Cid};

use crate::content::ContentWriter;
use crate::meta::{ClaimId, MetaError, MetaStore, NewVersion, UploadId};
use crate::model::ObjectVersion;

use super::{Gateway, ServiceError, objects};

/// How long a writer waits for garbage collection to finish deleting content it is storing again.
const CLAIM_WAIT: Duration = Duration::from_secs(30);

impl Gateway {
    /// Claims `cid` for a writer holding its bytes, waiting (up to [`CLAIM_WAIT`]) while GC deletes an earlier copy.
    async fn claim(&self, cid: &Cid, size: u64) -> Result<ClaimId, ServiceError> {
        let deadline = Instant::now() + CLAIM_WAIT;
        let mut pause = Duration::from_millis(2);
        loop {
            match self.meta.claim_content(cid, size).await {
                Err(MetaError::ContentBusy) if Instant::now() < deadline => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(200));
                }
                other => return Ok(other?),
            }
        }
    }

    /// Makes a finished upload durable under `root`. The CID is claimed first, so a copy already stored, which the
    /// writer then keeps instead of its own, cannot be collected in between. Returns the claim, which the caller's
    /// commit takes over or the caller releases.
    pub(super) async fn keep(
        &self,
        writer: Box<dyn ContentWriter>,
        root: Cid,
        size: u64,
        nodes: Vec<Block>,
    ) -> Result<HeldClaim, ServiceError> {
        let claim = match self.claim(&root, size).await {
            Ok(claim) => HeldClaim { meta: Arc::clone(&self.meta), claim, open: true },
            Err(err) => {
                writer.abort().await;
                return Err(err);
            }
        };
        if let Err(err) = writer.finish(root, nodes).await {
            claim.release().await;
            return Err(err.into());
        }
        Ok(claim)
    }

    /// Commits the pending version `upload` as `new`, which takes `claim` over; a refused commit releases it.
    pub(super) async fn commit_claimed(
        &self,
        upload: UploadId,
        mut new: NewVersion,
        claim: HeldClaim,
    ) -> Result<ObjectVersion, ServiceError> {
        new.claim = Some(claim.id());
        match self.meta.commit_version(upload, new).await {
            Ok(version) => {
                claim.taken();
                Ok(version)
            }
            Err(err) => {
                claim.release().await;
                Err(objects::commit_error(err))
            }
        }
    }
}

/// A claim a write holds until its commit takes it over. Dropped unfinished (the request was cancelled: the client
/// went away), it is released in the background; a release that fails only delays collection until the next start.
pub(super) struct HeldClaim {
    meta: Arc<dyn MetaStore>,
    claim: ClaimId,
    /// Whether the claim is still this value's to release.
    open: bool,
}

impl HeldClaim {
    /// The claim, for the commit that takes it over.
    pub(super) fn id(&self) -> ClaimId {
        self.claim
    }

    /// The commit took the claim over: nothing to release.
    pub(super) fn taken(mut self) {
        self.open = false;
    }

    /// Releases the claim: the write it belonged to failed.
    pub(super) async fn release(mut self) {
        self.open = false;
        let _ = self.meta.release_claim(self.claim).await;
    }
}

impl Drop for HeldClaim {
    fn drop(&mut self) {
        if self.open
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let (meta, claim) = (Arc::clone(&self.meta), self.claim);
            runtime.spawn(async move {
                let _ = meta.release_claim(claim).await;
            });
        }
    }
}
