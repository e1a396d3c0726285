//! The metadata port: users, access keys, buckets and every key's version chain.
//!
//! # Contract
//! - Every method is atomic: it takes effect entirely or not at all, and concurrent callers observe it as a whole.
//! - A version is *visible* when it is committed or a delete marker and not retired ([`ObjectVersion::is_visible`]).
//!   Pending and aborted versions are never returned by lookups or listings.
//! - Per key, `seq` is assigned at commit, strictly increasing: the newest visible version is the latest one.
//! - A commit with `replace_null` retires the key's visible `null` version in the same transaction.
//! - A content reference count per CID counts visible committed versions that name it, across all buckets; it moves
//!   in the same transaction as the versions (commit +1, retire −1).

use std::time::SystemTime;

use async_trait::async_trait;
use s3ipfs_cid::Cid;

use crate::model::{AccessKey, Bucket, MultipartUpload, ObjectVersion, UploadPart, User, VersionState, Versioning};
use crate::names::{BucketName, ObjectKey, UserId, VersionId};

/// A pending upload's handle, returned by [`MetaStore::begin_version`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UploadId(pub i64);

/// What a commit writes into the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVersion {
    /// The version id (`null` or generated).
    pub version_id: VersionId,
    /// `Committed` or `DeleteMarker`.
    pub state: VersionState,
    /// Retire the key's visible `null` version in the same transaction.
    pub replace_null: bool,
}

/// Why a metadata operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetaError {
    /// The bucket name is taken (by `owner`).
    #[error("bucket already exists")]
    BucketExists {
        /// Who owns the existing bucket.
        owner: UserId,
    },
    /// The bucket does not exist.
    #[error("no such bucket")]
    NoSuchBucket,
    /// The bucket still holds objects or delete markers.
    #[error("bucket is not empty")]
    BucketNotEmpty,
    /// The pending upload does not exist (aborted, committed, or its bucket was deleted).
    #[error("no such pending upload")]
    NoSuchUpload,
    /// The email address is already registered.
    #[error("email already registered")]
    EmailTaken,
    /// The access key id is already in use.
    #[error("access key id already exists")]
    KeyExists,
    /// A write was refused because the state it relied on is not valid (e.g. committing a pending state).
    #[error("invalid request to the metadata store: {0}")]
    Invalid(&'static str),
    /// The store cannot be reached or is overloaded: retry later.
    #[error("metadata store unavailable: {message}")]
    Unavailable {
        /// What the backend said.
        message: String,
    },
    /// The store failed unexpectedly.
    #[error("metadata store failure: {message}")]
    Backend {
        /// What the backend said.
        message: String,
    },
}

/// Persistence of users, keys, buckets and version chains. See the module docs for the contract.
#[async_trait]
pub trait MetaStore: Send + Sync + 'static {
    /// Registers a user; `EmailTaken` if the address is known.
    async fn create_user(&self, email: &str) -> Result<User, MetaError>;
    /// The user registered with `email`.
    async fn user_by_email(&self, email: &str) -> Result<Option<User>, MetaError>;
    /// Stores an access key; `KeyExists` if its id is taken.
    async fn add_access_key(&self, key: &AccessKey) -> Result<(), MetaError>;
    /// The access key with this id.
    async fn access_key(&self, id: &str) -> Result<Option<AccessKey>, MetaError>;

    /// Creates a bucket; `BucketExists` if the name is taken.
    async fn create_bucket(&self, bucket: &Bucket) -> Result<(), MetaError>;
    /// The bucket with this name.
    async fn bucket(&self, name: &BucketName) -> Result<Option<Bucket>, MetaError>;
    /// The buckets `owner` owns, ordered by name.
    async fn buckets_of(&self, owner: UserId) -> Result<Vec<Bucket>, MetaError>;
    /// Changes a bucket's versioning state.
    async fn set_versioning(&self, name: &BucketName, versioning: Versioning) -> Result<(), MetaError>;
    /// Deletes a bucket with no visible version (`BucketNotEmpty` otherwise), with its history and pending uploads.
    async fn delete_bucket(&self, name: &BucketName) -> Result<(), MetaError>;

    /// Records the intent to write `key` (a pending version) before any byte is stored.
    async fn begin_version(&self, bucket: &BucketName, key: &ObjectKey) -> Result<UploadId, MetaError>;
    /// Turns a pending version into `new`, assigning its `seq`.
    async fn commit_version(&self, upload: UploadId, new: NewVersion) -> Result<ObjectVersion, MetaError>;
    /// Marks a pending version aborted. Aborting twice, or an unknown upload, is not an error.
    async fn abort_version(&self, upload: UploadId) -> Result<(), MetaError>;
    /// Appends `new` directly (delete markers, copies: nothing to upload first).
    async fn append_version(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        new: NewVersion,
    ) -> Result<ObjectVersion, MetaError>;
    /// Retires the visible version `version_id` of `key` (S3 delete by id); returns it, or `None` if there was none.
    async fn retire_version(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version_id: &VersionId,
    ) -> Result<Option<ObjectVersion>, MetaError>;

    /// The newest visible version of `key` (possibly a delete marker).
    async fn latest_version(&self, bucket: &BucketName, key: &ObjectKey) -> Result<Option<ObjectVersion>, MetaError>;
    /// The visible version `version_id` of `key`.
    async fn find_version(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version_id: &VersionId,
    ) -> Result<Option<ObjectVersion>, MetaError>;
    /// Keys starting with `prefix` and greater than `after`, in byte order, whose latest version is an object (not
    /// a delete marker); that latest version for each, at most `limit`.
    async fn list_latest(
        &self,
        bucket: &BucketName,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ObjectVersion>, MetaError>;
    /// Visible versions of keys starting with `prefix`, ordered by key, then newest first; strictly after the
    /// `(key, seq)` position `after` in that order; at most `limit`.
    async fn list_versions(
        &self,
        bucket: &BucketName,
        prefix: &str,
        after: Option<(&str, u64)>,
        limit: usize,
    ) -> Result<Vec<ObjectVersion>, MetaError>;

    /// How many visible committed versions name `cid`.
    async fn content_refs(&self, cid: &Cid) -> Result<u64, MetaError>;
    /// Aborts pending versions begun before `before` (uploads a crash interrupted); returns how many.
    async fn abort_stale(&self, before: SystemTime) -> Result<u64, MetaError>;

    /// Records a new multipart upload (`NoSuchBucket` if its bucket is gone).
    async fn create_multipart(&self, upload: &MultipartUpload) -> Result<(), MetaError>;
    /// The multipart upload with this id.
    async fn multipart(&self, id: &str) -> Result<Option<MultipartUpload>, MetaError>;
    /// Stores a part (`NoSuchUpload` if the upload is gone), replacing one with the same number; returns the replaced part.
    async fn put_part(&self, upload_id: &str, part: &UploadPart) -> Result<Option<UploadPart>, MetaError>;
    /// Parts numbered above `after`, ascending, at most `limit`.
    async fn parts(&self, upload_id: &str, after: u32, limit: usize) -> Result<Vec<UploadPart>, MetaError>;
    /// Uploads of `bucket` whose key starts with `prefix`, ordered by key then upload id, strictly after the
    /// `(key, upload id)` position `after`; at most `limit`.
    async fn multiparts(
        &self,
        bucket: &BucketName,
        prefix: &str,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<MultipartUpload>, MetaError>;
    /// Removes an upload and its parts (complete or abort); returns the parts it had (`NoSuchUpload` if gone).
    async fn remove_multipart(&self, id: &str) -> Result<Vec<UploadPart>, MetaError>;
    /// Whether any part of a live multipart upload stores its bytes under `cid`.
    async fn part_uses(&self, cid: &Cid) -> Result<bool, MetaError>;
    /// Uploads initiated before `before` (abandoned, for expiry).
    async fn stale_multiparts(&self, before: SystemTime) -> Result<Vec<MultipartUpload>, MetaError>;
}
