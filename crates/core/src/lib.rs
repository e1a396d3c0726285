//! `s3ipfs-core`: the gateway's domain. Validated names, users, buckets and the per-key version chain, the ports
//! the adapters implement, an in-memory adapter and the conformance suite every adapter must pass.
//! No I/O crate appears here: no s3s, hyper, database or SDK.

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod content;
pub mod memory;
pub mod memory_content;
pub mod meta;
pub mod model;
pub mod names;
pub mod service;

pub use content::{ByteStream, ContentError, ContentStore, ContentWriter};
pub use memory::MemoryMeta;
pub use memory_content::MemoryContent;
pub use meta::{ClaimId, MetaError, MetaStore, NewVersion, StoredContent, UploadId};
pub use model::{
    AccessKey, Bucket, ConditionFailure, MultipartUpload, ObjectHeaders, ObjectMeta, ObjectVersion, PutCondition,
    UploadChecksum, UploadPart, User, VersionState, Versioning,
};
pub use names::{BucketName, NameError, ObjectKey, UserId, VersionId};
pub use service::{Gateway, ServiceError};

#[cfg(test)]
mod memory_meta_conformance {
    async fn fresh() -> crate::MemoryMeta {
        crate::MemoryMeta::new()
    }

    fn peer(store: &crate::MemoryMeta, replica: &str) -> crate::MemoryMeta {
        store.peer(replica)
    }

    crate::meta_conformance_tests!(fresh, peer);
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn the_memory_content_store_passes_the_content_suite() {
        crate::conformance::content::run_all(&crate::MemoryContent::new()).await;
    }
}
