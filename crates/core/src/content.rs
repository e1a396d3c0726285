//! The content port: bytes stored once per CID.
//!
//! # Contract
//! - A writer receives an object's bytes in order, then `finish` with the root CID and the DAG's interior nodes.
//!   Nothing is readable under the CID before `finish` returns; after it returns the content is durable.
//! - `finish` for a CID that is already stored succeeds and keeps one copy (deduplication); several writers may
//!   finish the same CID at once.
//! - A writer dropped or aborted before `finish` leaves nothing behind.
//! - Only garbage collection deletes, and only content the metadata store has marked: the store needs no ordering
//!   of its own between `delete` and `finish` (the metadata store's content lifecycle provides it).
//! - `read` returns exactly the requested byte range of the file the CID names.

use std::ops::Range;
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;
use s3ipfs_cid::{Block, Cid};

/// Why a content operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// No content under this CID.
    #[error("content {0} not found")]
    NotFound(Cid),
    /// The requested range lies outside the content.
    #[error("range {start}..{end} is outside content of {size} bytes")]
    Range {
        /// Requested start.
        start: u64,
        /// Requested end (exclusive).
        end: u64,
        /// Content size.
        size: u64,
    },
    /// The backend cannot be reached or is overloaded: retry later.
    #[error("content store unavailable: {message}")]
    Unavailable {
        /// What the backend said.
        message: String,
        /// When a retry may succeed (an open circuit breaker knows), for `Retry-After`.
        retry_after: Option<std::time::Duration>,
    },
    /// The backend refused a request for a reason retrying does not cure (credentials, a missing bucket).
    #[error("content backend refused {operation}: {message}")]
    Refused {
        /// The backend call.
        operation: &'static str,
        /// What the backend said.
        message: String,
    },
    /// The backend stored the content under another CID than the gateway computed: nothing may be committed.
    #[error("content backend reported CID {reported} for content the gateway computed as {expected}")]
    CidMismatch {
        /// The gateway's CID.
        expected: Cid,
        /// What the backend reported (absent when it reported none).
        reported: String,
    },
    /// Local I/O failed.
    #[error("content store I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// A stream of byte chunks read from a content store.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, ContentError>> + Send + Sync>>;

/// An upload in progress.
#[async_trait]
pub trait ContentWriter: Send {
    /// Appends the next bytes of the object.
    async fn write(&mut self, bytes: Bytes) -> Result<(), ContentError>;
    /// Makes the content durable under `root`, with the DAG's interior nodes (children before parents).
    async fn finish(self: Box<Self>, root: Cid, nodes: Vec<Block>) -> Result<(), ContentError>;
    /// Discards everything written.
    async fn abort(self: Box<Self>);
}

/// Where object bytes live, addressed by CID. See the module docs for the contract.
#[async_trait]
pub trait ContentStore: Send + Sync + 'static {
    /// Starts an upload.
    async fn writer(&self) -> Result<Box<dyn ContentWriter>, ContentError>;
    /// Bytes `range` of the content `cid`.
    async fn read(&self, cid: &Cid, range: Range<u64>) -> Result<ByteStream, ContentError>;
    /// [`read`](Self::read) of content whose whole size the caller knows (an object's GET): a cache decides by the
    /// size what to keep. The size must be the content's.
    async fn read_sized(&self, cid: &Cid, size: u64, range: Range<u64>) -> Result<ByteStream, ContentError> {
        let _ = size;
        self.read(cid, range).await
    }
    /// The size of the content `cid`, or `None` if it is not stored.
    async fn size(&self, cid: &Cid) -> Result<Option<u64>, ContentError>;
    /// Removes the content `cid` (garbage collection only); removing absent content is not an error.
    async fn delete(&self, cid: &Cid) -> Result<(), ContentError>;
}
