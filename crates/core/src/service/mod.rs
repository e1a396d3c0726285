//! Use cases: what the S3 API (and later the admin API) call. Each method checks tenancy, then drives the ports.

mod buckets;
mod car_import;
mod claims;
mod error;
mod gc;
mod listing;
mod multipart;
mod multipart_checksum;
mod objects;

use std::sync::Arc;

use s3ipfs_cid::Profile;

use crate::content::ContentStore;
use crate::meta::MetaStore;

pub use error::ServiceError;
pub use gc::GcReport;
pub use listing::{ListParams, Listing, UploadListing, UploadsParams, VersionListing, VersionsParams};
pub use multipart::{MAX_PART_NUMBER, MIN_PART_SIZE};
pub use multipart_checksum::{CompleteClaims, CompletedPart};
pub use objects::{DeleteOutcome, Located, PutObject};

/// The gateway's use cases over one metadata store and one content store.
#[derive(Clone)]
pub struct Gateway {
    meta: Arc<dyn MetaStore>,
    content: Arc<dyn ContentStore>,
    /// Where multipart parts are staged until Complete, when not in `content` (a remote backend).
    staging: Option<Arc<dyn ContentStore>>,
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
        Gateway { meta, content, staging: None, profile }
    }

    /// Stages multipart parts in `staging` instead of the content store: with a remote backend, parts are never
    /// uploaded (or pinned) one by one, and the joined object goes up once at Complete.
    pub fn with_staging(mut self, staging: Arc<dyn ContentStore>) -> Self {
        self.staging = Some(staging);
        self
    }

    /// Where multipart parts are stored.
    fn parts(&self) -> &Arc<dyn ContentStore> {
        self.staging.as_ref().unwrap_or(&self.content)
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

/// An imported body: its summary, the DAG's interior nodes, and the content writer holding its bytes.
type Imported = (s3ipfs_cid::ImportSummary, Vec<s3ipfs_cid::Block>, Box<dyn crate::content::ContentWriter>);

/// Streams a request body into `importer` (CID, checksums) and `writer`, then lets `verify` see the checksums: a
/// refused body aborts the writer (one dropped on a failed body cleans up after itself).
async fn import_body<S, E>(
    body: &mut S,
    mut importer: s3ipfs_cid::Importer,
    mut writer: Box<dyn crate::content::ContentWriter>,
    verify: impl FnOnce(&s3ipfs_cid::Checksums) -> Result<(), ServiceError>,
) -> Result<Imported, ServiceError>
where
    S: futures::Stream<Item = Result<bytes::Bytes, E>> + Send + Unpin,
    E: std::fmt::Display,
{
    use futures::StreamExt as _;
    let mut nodes = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| ServiceError::IncompleteBody(e.to_string()))?;
        import_into(&mut importer, &chunk, &mut nodes);
        writer.write(chunk).await?;
    }
    let (last, summary) = importer.finish();
    last.into_iter().for_each(|b| keep_node(&mut nodes, b));
    if let Err(refused) = verify(&summary.checksums) {
        writer.abort().await;
        return Err(refused);
    }
    Ok((summary, nodes, writer))
}
