//! Use cases: what the S3 API (and later the admin API) call. Each method checks tenancy, then drives the ports.

mod buckets;
mod error;
mod gc;
mod listing;
mod multipart;
mod multipart_checksum;
mod objects;

use std::sync::Arc;
use std::time::{Duration, Instant};

use s3ipfs_cid::{Block, Cid, Profile};

use crate::content::{ContentStore, ContentWriter};
use crate::meta::{ClaimId, MetaError, MetaStore, NewVersion, UploadId};
use crate::model::ObjectVersion;

pub use error::ServiceError;
pub use gc::GcReport;
pub use listing::{ListParams, Listing, UploadListing, UploadsParams, VersionListing, VersionsParams};
pub use multipart::{MAX_PART_NUMBER, MIN_PART_SIZE};
pub use multipart_checksum::{CompleteClaims, CompletedPart};
pub use objects::{DeleteOutcome, Located, PutObject};

/// How long a writer waits for garbage collection to finish deleting content it is storing again.
const CLAIM_WAIT: Duration = Duration::from_secs(30);

/// The gateway's use cases over one metadata store and one content store.
#[derive(Clone)]
pub struct Gateway {
    meta: Arc<dyn MetaStore>,
    content: Arc<dyn ContentStore>,
    profile: Profile,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").field("profile", &self.profile).finish_non_exhaustive()
    }
}

impl Gateway {
    /// Wires the use cases to their ports; `profile` decides the CIDs of new objects.
    pub fn new(meta: Arc<dyn MetaStore>, content: Arc<dyn ContentStore>, profile: Profile) -> Self {
        Gateway { meta, content, profile }
    }

    /// The metadata store (for auth lookups).
    pub fn meta(&self) -> &Arc<dyn MetaStore> {
        &self.meta
    }

    /// The content store.
    pub fn content(&self) -> &Arc<dyn ContentStore> {
        &self.content
    }

    /// The import profile of new objects.
    pub fn profile(&self) -> Profile {
        self.profile
    }

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
    async fn keep(
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
}

impl Gateway {
    /// Commits the pending version `upload` as `new`, which takes `claim` over; a refused commit releases it.
    async fn commit_claimed(
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
struct HeldClaim {
    meta: Arc<dyn MetaStore>,
    claim: ClaimId,
    /// Whether the claim is still this value's to release.
    open: bool,
}

impl HeldClaim {
    /// The claim, for the commit that takes it over.
    fn id(&self) -> ClaimId {
        self.claim
    }

    /// The commit took the claim over: nothing to release.
    fn taken(mut self) {
        self.open = false;
    }

    /// Releases the claim: the write it belonged to failed.
    async fn release(mut self) {
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
/// Keeps interior nodes (the content store needs them); leaves are dropped, their bytes are the object itself.
fn keep_node(nodes: &mut Vec<s3ipfs_cid::Block>, block: s3ipfs_cid::Block) {
    if block.kind == s3ipfs_cid::BlockKind::Node {
        nodes.push(block);
    }
}

/// Feeds `data` to `importer`, keeping the interior nodes it completes.
fn import_into(importer: &mut s3ipfs_cid::Importer, data: &[u8], nodes: &mut Vec<s3ipfs_cid::Block>) {
    let _ = importer.write_all(data, |block| {
        keep_node(nodes, block);
        Ok::<_, std::convert::Infallible>(())
    });
}

/// Streams a request body into the importer (CID, checksums) and the content writer, keeping interior nodes.
async fn stream_body<S, E>(
    body: &mut S,
    importer: &mut s3ipfs_cid::Importer,
    writer: &mut Box<dyn crate::content::ContentWriter>,
    nodes: &mut Vec<s3ipfs_cid::Block>,
) -> Result<(), ServiceError>
where
    S: futures::Stream<Item = Result<bytes::Bytes, E>> + Send + Unpin,
    E: std::fmt::Display,
{
    use futures::StreamExt as _;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| ServiceError::IncompleteBody(e.to_string()))?;
        import_into(importer, &chunk, nodes);
        writer.write(chunk).await?;
    }
    Ok(())
}
