//! The metadata port: users, access keys, buckets and every key's version chain.
//!
//! # Contract
//! - Every method is atomic: it takes effect entirely or not at all, and concurrent callers observe it as a whole.
//! - A version is *visible* when it is committed or a delete marker and not retired ([`ObjectVersion::is_visible`]).
//!   Pending and aborted versions are never returned by lookups or listings.
//! - Per key, `seq` is assigned at commit, unique and strictly increasing under any concurrency, on any number of
//!   processes sharing the store: the newest visible version is the latest one.
//! - A commit with `replace_null` retires the key's visible `null` version in the same transaction. A version is
//!   retired at most once, and its content reference dropped exactly once; a reference count that would go below
//!   zero is an error ([`MetaError::Backend`]), never silently clamped.
//! - Creating a bucket whose name is taken fails with [`MetaError::BucketExists`] naming the owner, however many
//!   creations race.
//! - A commit carrying a [`PutCondition`] decides it inside the commit transaction, against the key's newest visible
//!   version at that moment: of racing conditional writes exactly one can win.
//!
//! # Content lifecycle
//! A content row per CID counts its references across all buckets: visible committed versions, parts of live
//! multipart uploads, and open claims. References move in the same transaction as what holds them. Content is only
//! ever deleted by garbage collection, in three steps that are ordered against every writer:
//! 1. a writer that has the bytes of `cid` in hand *claims* it ([`MetaStore::claim_content`]) before it relies on a
//!    stored copy (or drops its own); the claim is refused with [`MetaError::ContentBusy`] while GC deletes that CID;
//! 2. the claim is consumed by the write that keeps the content (a commit, a part) or released;
//! 3. GC marks content whose count has been zero since before its cutoff ([`MetaStore::mark_collectable`]): a marked
//!    row is never claimed again; only after its bytes are deleted is the row forgotten ([`MetaStore::forget_content`]).
//!
//! # Replicas
//! Any number of processes may share one store. Each handle writes for a replica ([`MetaStore::replica`]) whose
//! heartbeat ([`MetaStore::heartbeat`]) is a lease: pending versions and claims record their replica, and
//! [`MetaStore::abort_orphans`] frees only those whose replica stopped beating (or that are older than a bound), so
//! one process starting or cleaning up never aborts another's uploads in flight.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use s3ipfs_cid::Cid;

use crate::model::{
    AccessKey, Bucket, MultipartUpload, ObjectVersion, PutCondition, UploadPart, User, VersionState, Versioning,
};
use crate::names::{BucketName, ObjectKey, UserId, VersionId};

/// A pending upload's handle, returned by [`MetaStore::begin_version`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UploadId(pub i64);

/// An open claim on content, returned by [`MetaStore::claim_content`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClaimId(pub i64);

/// Stored content as garbage collection sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredContent {
    /// Its CID.
    pub cid: Cid,
    /// Its size in bytes.
    pub size: u64,
}

/// What a commit writes into the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVersion {
    /// The version id (`null` or generated).
    pub version_id: VersionId,
    /// `Committed` or `DeleteMarker`.
    pub state: VersionState,
    /// Retire the key's visible `null` version in the same transaction.
    pub replace_null: bool,
    /// Commit only if this holds for the key's newest visible version, decided inside the commit.
    pub condition: Option<PutCondition>,
    /// The claim on the version's content that the version takes over (an upload). Without one, a committed version
    /// adds a reference to content that must still be stored (a copy), or fails with [`MetaError::ContentGone`].
    pub claim: Option<ClaimId>,
    /// The multipart upload this version completes: removed with its parts' references in the same transaction
    /// (`NoSuchUpload` if it is gone, and then nothing is committed).
    pub completes: Option<String>,
}

impl NewVersion {
    /// A version with no condition, claim or completed upload.
    pub fn new(version_id: VersionId, state: VersionState, replace_null: bool) -> Self {
        NewVersion { version_id, state, replace_null, condition: None, claim: None, completes: None }
    }
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
    /// The commit's condition does not hold (`If-None-Match: *` on an existing object, `If-Match` on another ETag).
    #[error("precondition failed")]
    PreconditionFailed,
    /// The commit's `If-Match` names a key that has no current object.
    #[error("no such key")]
    NoSuchKey,
    /// Garbage collection is deleting this content: claim it again once it is gone.
    #[error("content is being collected")]
    ContentBusy,
    /// A commit without a claim names content that is no longer stored.
    #[error("content is no longer stored")]
    ContentGone,
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

impl From<crate::model::ConditionFailure> for MetaError {
    fn from(failure: crate::model::ConditionFailure) -> Self {
        match failure {
            crate::model::ConditionFailure::NoCurrentObject => MetaError::NoSuchKey,
            crate::model::ConditionFailure::Mismatch => MetaError::PreconditionFailed,
        }
    }
}

/// The error for a reference count that would go below zero: a bookkeeping bug, never hidden.
pub fn underflow(cid: &Cid) -> MetaError {
    MetaError::Backend { message: format!("content reference count underflow for {cid}") }
}

/// The lease a replica's heartbeat renews.
pub fn heartbeat_lease(replica: &str) -> String {
    format!("replica:{replica}")
}

/// A fresh replica name: this host and a random suffix, so a restarted process is a new replica.
pub fn new_replica_name() -> String {
    let host = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "gateway".to_owned());
    format!("{host}-{:08x}", rand::random::<u32>())
}

/// The common prefix `key` falls under: the key up to and including the first `delimiter` after `prefix` (`None`
/// without a delimiter, or when none follows the prefix).
pub fn common_prefix<'a>(key: &'a str, prefix: &str, delimiter: &str) -> Option<&'a str> {
    if delimiter.is_empty() {
        return None;
    }
    let rest = key.get(prefix.len()..)?;
    rest.find(delimiter).map(|pos| &key[..prefix.len() + pos + delimiter.len()])
}

/// [`MetaStore::list_latest_grouped`] over `seek(after)`, which returns the first listed key after `after` (or from
/// the prefix when `None`), as whatever the store reads (`key_of` names its key): one seek per group and per plain
/// key.
pub fn list_grouped_by_seeks<T>(
    prefix: &str,
    delimiter: &str,
    after: Option<&str>,
    limit: usize,
    key_of: fn(&T) -> &str,
    mut seek: impl FnMut(Option<&str>) -> Result<Option<T>, MetaError>,
) -> Result<Vec<T>, MetaError> {
    let mut found: Vec<T> = Vec::new();
    let mut cursor = after.map(str::to_owned);
    let mut last_group: Option<String> = None;
    while found.len() < limit {
        let Some(next) = seek(cursor.as_deref())? else { break };
        let key = key_of(&next);
        let Some(group) = common_prefix(key, prefix, delimiter).map(str::to_owned) else {
            cursor = Some(key.to_owned());
            found.push(next);
            continue;
        };
        let again = last_group.as_deref() == Some(group.as_str());
        // Seek past the group at once; a key beyond that seek (one holding U+10FFFF) is stepped over singly.
        cursor = Some(if again { key.to_owned() } else { format!("{group}\u{10FFFF}") });
        if !again && after.is_none_or(|a| group.as_str() > a) {
            found.push(next);
        }
        last_group = Some(group);
    }
    Ok(found)
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
    /// Revokes the access key `id`: it signs nothing from now on. `false` if there was no such key.
    async fn remove_access_key(&self, id: &str) -> Result<bool, MetaError>;

    /// Creates a bucket; `BucketExists` if the name is taken.
    async fn create_bucket(&self, bucket: &Bucket) -> Result<(), MetaError>;
    /// The bucket with this name.
    async fn bucket(&self, name: &BucketName) -> Result<Option<Bucket>, MetaError>;
    /// The buckets `owner` owns, ordered by name.
    async fn buckets_of(&self, owner: UserId) -> Result<Vec<Bucket>, MetaError>;
    /// Changes a bucket's versioning state.
    async fn set_versioning(&self, name: &BucketName, versioning: Versioning) -> Result<(), MetaError>;
    /// Deletes a bucket with no visible version (`BucketNotEmpty` otherwise), with its history and pending uploads
    /// (their parts' references dropped).
    async fn delete_bucket(&self, name: &BucketName) -> Result<(), MetaError>;

    /// Records the intent to write `key` (a pending version) before any byte is stored.
    async fn begin_version(&self, bucket: &BucketName, key: &ObjectKey) -> Result<UploadId, MetaError>;
    /// Turns a pending version into `new`, assigning its `seq`; takes over `new.claim`, decides `new.condition` and
    /// removes `new.completes`, all in one transaction.
    async fn commit_version(&self, upload: UploadId, new: NewVersion) -> Result<ObjectVersion, MetaError>;
    /// Marks a pending version aborted. Aborting twice, or an unknown upload, is not an error.
    async fn abort_version(&self, upload: UploadId) -> Result<(), MetaError>;
    /// Appends `new` directly (delete markers, copies: nothing to upload first), as `commit_version` would.
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
    /// The bucket `name` and the newest visible version of `key` in it (`None`: no such bucket), in one read where
    /// the store can: the metadata of a GET or HEAD.
    async fn bucket_and_latest(
        &self,
        name: &BucketName,
        key: &ObjectKey,
    ) -> Result<Option<(Bucket, Option<ObjectVersion>)>, MetaError> {
        let Some(bucket) = self.bucket(name).await? else { return Ok(None) };
        Ok(Some((bucket, self.latest_version(name, key).await?)))
    }
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
    /// [`list_latest`](Self::list_latest) grouped by `delimiter`: of the keys sharing a common prefix (the key up to
    /// and including the first `delimiter` after `prefix`) only the first is returned, and the listing goes on past
    /// the group; a group whose common prefix is at or before `after` is skipped whole. At most `limit` entries.
    /// One index seek per group, never a page of a group's keys read and thrown away ([`list_grouped_by_seeks`]).
    async fn list_latest_grouped(
        &self,
        bucket: &BucketName,
        prefix: &str,
        delimiter: &str,
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

    /// How many references `cid` has: visible committed versions, live parts and open claims.
    async fn content_refs(&self, cid: &Cid) -> Result<u64, MetaError>;

    /// The replica this handle writes for: pending versions and claims record it.
    fn replica(&self) -> &str;
    /// Renews this replica's heartbeat for `ttl`: while it beats, its pending versions and claims are its own.
    async fn heartbeat(&self, ttl: Duration) -> Result<(), MetaError>;
    /// Aborts pending versions and releases claims that no live replica holds (its heartbeat expired or never
    /// beat), or that were made before `before` whoever holds them; returns how many versions were aborted.
    async fn abort_orphans(&self, before: SystemTime) -> Result<u64, MetaError>;
    /// Deletes up to `limit` history rows that can never be read again: aborted versions begun before `before`,
    /// and versions retired before `before`. Returns how many were deleted.
    async fn prune_history(&self, before: SystemTime, limit: usize) -> Result<u64, MetaError>;

    /// Claims `cid` (`size` bytes) for a write that holds its bytes: from now until the claim is consumed or
    /// released, the content cannot be collected. `ContentBusy` while GC is deleting it.
    async fn claim_content(&self, cid: &Cid, size: u64) -> Result<ClaimId, MetaError>;
    /// Releases a claim no write took over; releasing twice, or an unknown claim, is not an error.
    async fn release_claim(&self, claim: ClaimId) -> Result<(), MetaError>;
    /// Content a collection with `cutoff` would delete: unreferenced since before `cutoff`, or marked by a collection
    /// that has not finished; CIDs above `after` in byte order, at most `limit` (what a dry run reports).
    async fn collectable_content(
        &self,
        cutoff: SystemTime,
        after: Option<&Cid>,
        limit: usize,
    ) -> Result<Vec<StoredContent>, MetaError>;
    /// Marks up to `limit` collectable content rows (no reference since before `cutoff`) as being deleted and returns
    /// them, after any rows a previous collection marked and did not forget. Claims on marked rows are refused.
    async fn mark_collectable(&self, cutoff: SystemTime, limit: usize) -> Result<Vec<StoredContent>, MetaError>;
    /// Forgets marked content rows whose bytes are deleted (unmarked rows are kept).
    async fn forget_content(&self, cids: &[Cid]) -> Result<(), MetaError>;
    /// Takes the lease `name` for `holder` for `ttl`, or renews it if `holder` has it; `false` while another holder's
    /// lease has not expired. Background jobs run under a lease so that one replica runs each.
    async fn acquire_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, MetaError>;
    /// Gives up the lease `name` if `holder` has it.
    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), MetaError>;

    /// Records a new multipart upload (`NoSuchBucket` if its bucket is gone).
    async fn create_multipart(&self, upload: &MultipartUpload) -> Result<(), MetaError>;
    /// The multipart upload with this id.
    async fn multipart(&self, id: &str) -> Result<Option<MultipartUpload>, MetaError>;
    /// Stores a part, taking over `claim` on its content (`NoSuchUpload` if the upload is gone, and the claim stays
    /// open); a part with the same number is replaced and its reference dropped. Returns the replaced part.
    async fn put_part(
        &self,
        upload_id: &str,
        part: &UploadPart,
        claim: ClaimId,
    ) -> Result<Option<UploadPart>, MetaError>;
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
    /// Removes an upload and its parts, dropping their references (abort, expiry); returns the parts it had
    /// (`NoSuchUpload` if gone).
    async fn remove_multipart(&self, id: &str) -> Result<Vec<UploadPart>, MetaError>;
    /// Uploads initiated before `before` (abandoned, for expiry).
    async fn stale_multiparts(&self, before: SystemTime) -> Result<Vec<MultipartUpload>, MetaError>;
}
