//! Claims on content: a write claims its CID once the bytes are in hand, before it relies on a stored copy, and
//! its commit takes the claim over (see the `meta` module's content lifecycle).

use std::sync::Arc;
use std::time::{Duration, Instant};

use s3ipfs_cid::{Block, Cid};

use crate::content::ContentWriter;
use crate::meta::{ClaimId, MetaError, MetaStore, NewVersion, UploadId};
use crate::model::ObjectVersion;
use crate::names::{BucketName, ObjectKey};

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
            Ok(claim) => HeldClaim::new(&self.meta, claim),
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

/// What a write in progress holds in the metadata store, and gives back if it does not finish.
#[derive(Debug, Clone, Copy)]
enum Hold {
    /// A claim on content, released.
    Claim(ClaimId),
    /// A pending version, aborted.
    Pending(UploadId),
}

impl Hold {
    async fn let_go(self, meta: &dyn MetaStore) {
        let _ = match self {
            Hold::Claim(claim) => meta.release_claim(claim).await,
            Hold::Pending(upload) => meta.abort_version(upload).await,
        };
    }
}

/// A [`Hold`] until a commit takes it over. Dropped unfinished (the request was cancelled: the client went away), it
/// is let go in the background at once; one that fails to go is freed by the orphan cleanup.
struct Held {
    meta: Arc<dyn MetaStore>,
    hold: Hold,
    /// Whether the hold is still this value's to let go.
    open: bool,
}

impl Held {
    async fn let_go(mut self) {
        self.open = false;
        self.hold.let_go(self.meta.as_ref()).await;
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.open
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let (meta, hold) = (Arc::clone(&self.meta), self.hold);
            runtime.spawn(async move { hold.let_go(meta.as_ref()).await });
        }
    }
}

/// A claim a write holds until its commit takes it over (released if the write fails or is cancelled).
pub(super) struct HeldClaim {
    held: Held,
    claim: ClaimId,
}

impl HeldClaim {
    fn new(meta: &Arc<dyn MetaStore>, claim: ClaimId) -> Self {
        HeldClaim { held: Held { meta: Arc::clone(meta), hold: Hold::Claim(claim), open: true }, claim }
    }

    /// The claim, for the commit that takes it over.
    pub(super) fn id(&self) -> ClaimId {
        self.claim
    }

    /// The commit took the claim over: nothing to release.
    pub(super) fn taken(mut self) {
        self.held.open = false;
    }

    /// Releases the claim: the write it belonged to failed.
    pub(super) async fn release(self) {
        self.held.let_go().await;
    }
}

/// A pending version a write holds until it commits (aborted if the write fails or is cancelled).
pub(super) struct PendingVersion {
    held: Held,
    upload: UploadId,
}

impl PendingVersion {
    /// The pending version, for its commit.
    pub(super) fn id(&self) -> UploadId {
        self.upload
    }

    /// The version committed: nothing to abort.
    pub(super) fn committed(mut self) {
        self.held.open = false;
    }

    /// Aborts the version: the write failed.
    pub(super) async fn abort(self) {
        self.held.let_go().await;
    }
}

impl Gateway {
    /// Records the intent to write `key` (a pending version), held until the write commits or fails.
    pub(super) async fn begin(&self, bucket: &BucketName, key: &ObjectKey) -> Result<PendingVersion, ServiceError> {
        let upload = self.meta.begin_version(bucket, key).await?;
        let held = Held { meta: Arc::clone(&self.meta), hold: Hold::Pending(upload), open: true };
        Ok(PendingVersion { held, upload })
    }
}
