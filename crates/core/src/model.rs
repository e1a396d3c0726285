//! Entities of the gateway: users, access keys, buckets and object versions.

use std::collections::BTreeMap;
use std::time::SystemTime;

use s3ipfs_cid::{Algorithm, ChecksumType, Checksums, Cid};

use crate::names::{BucketName, ObjectKey, UserId, VersionId};

/// A registered user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Store-assigned id.
    pub id: UserId,
    /// The address the user registered with (unique).
    pub email: String,
    /// When the user was created.
    pub created_at: SystemTime,
}

/// An access key pair that signs S3 requests for its user.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessKey {
    /// The public key id (`AKIA…`-like, 20 characters).
    pub id: String,
    /// The signing secret (40 characters).
    pub secret: String,
    /// Whose key this is.
    pub user: UserId,
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .field("user", &self.user)
            .finish()
    }
}

/// A bucket's versioning state, as S3 defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Versioning {
    /// Never enabled: writes replace the `null` version.
    #[default]
    Unversioned,
    /// Every write gets a new version id.
    Enabled,
    /// Was enabled; writes replace the `null` version, older versions stay.
    Suspended,
}

impl Versioning {
    /// Whether a new write (PUT or DELETE marker) gets the `null` id and replaces the existing `null` version.
    pub fn writes_null_version(self) -> bool {
        self != Versioning::Enabled
    }
}

/// A bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// The bucket's name (global across users).
    pub name: BucketName,
    /// The user who owns it.
    pub owner: UserId,
    /// When it was created.
    pub created_at: SystemTime,
    /// Its versioning state.
    pub versioning: Versioning,
}

/// Everything S3 returns about a stored object besides its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectMeta {
    /// The CID of the content (under the gateway's profile).
    pub cid: Option<Cid>,
    /// Size in bytes.
    pub size: u64,
    /// The ETag, quoted (`"md5hex"` or `"md5hex-N"`).
    pub etag: String,
    /// The object's checksums: MD5 (single-part objects) and the S3 checksum the upload asked for (CRC64NVME when
    /// it asked for none).
    pub checksums: Checksums,
    /// Whether the checksum (MD5 aside) is S3's COMPOSITE checksum of the parts' checksums, not one of the whole
    /// content.
    pub composite_checksum: bool,
    /// The sizes of the parts a multipart upload joined, in order; empty for an object written at once.
    pub part_sizes: Vec<u64>,
    /// HTTP headers stored with the object.
    pub headers: ObjectHeaders,
    /// `x-amz-meta-*` pairs, names lowercased without the prefix.
    pub user_meta: BTreeMap<String, String>,
}

impl ObjectMeta {
    /// The `x-amz-checksum-*` value of `algorithm` (MD5 excluded): base64, plus `-N` for a composite checksum.
    pub fn checksum_value(&self, algorithm: Algorithm) -> Option<String> {
        if algorithm == Algorithm::Md5 {
            return None;
        }
        let value = self.checksums.base64(algorithm)?;
        Some(if self.composite_checksum { format!("{value}-{}", self.part_sizes.len()) } else { value })
    }

    /// The bytes of part `number` (1-based), as GET `?partNumber=` addresses them; an object written at once is one
    /// part. `None` past the last part.
    pub fn part_range(&self, number: u32) -> Option<std::ops::Range<u64>> {
        if self.part_sizes.is_empty() {
            return (number == 1).then_some(0..self.size);
        }
        let index = usize::try_from(number.checked_sub(1)?).ok()?;
        let start: u64 = self.part_sizes.get(..index)?.iter().sum();
        Some(start..start + self.part_sizes.get(index)?)
    }

    /// The `x-amz-checksum-type` of the object's checksum, when it has one besides MD5.
    pub fn checksum_type(&self) -> Option<ChecksumType> {
        let any = Algorithm::ALL.into_iter().any(|a| a != Algorithm::Md5 && self.checksums.bytes(a).is_some());
        any.then_some(if self.composite_checksum { ChecksumType::Composite } else { ChecksumType::FullObject })
    }
}

/// The standard HTTP headers S3 stores with an object and returns on GET/HEAD.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectHeaders {
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Content-Encoding`, without `aws-chunked`.
    pub content_encoding: Option<String>,
    /// `Content-Disposition`.
    pub content_disposition: Option<String>,
    /// `Content-Language`.
    pub content_language: Option<String>,
    /// `Cache-Control`.
    pub cache_control: Option<String>,
    /// `Expires`, as the client sent it.
    pub expires: Option<String>,
}

/// A conditional write (`PutObject`, `CompleteMultipartUpload`), decided inside the commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutCondition {
    /// `If-None-Match: *`: only if the key has no current object.
    IfNoneMatchAny,
    /// `If-Match: "etag"`: only if the current object has this ETag.
    IfMatch(String),
}

/// Why a [`PutCondition`] does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionFailure {
    /// `If-Match` on a key with no current object (S3: NoSuchKey).
    NoCurrentObject,
    /// An object exists for `If-None-Match: *`, or has another ETag for `If-Match` (S3: PreconditionFailed).
    Mismatch,
}

impl PutCondition {
    /// Checks the condition against the key's newest visible version (`None`: no version, or a delete marker).
    pub fn check(&self, current: Option<&ObjectMeta>) -> Result<(), ConditionFailure> {
        let holds = match (self, current) {
            (PutCondition::IfNoneMatchAny, current) => current.is_none(),
            (PutCondition::IfMatch(_), None) => return Err(ConditionFailure::NoCurrentObject),
            (PutCondition::IfMatch(etag), Some(meta)) => meta.etag.trim_matches('"') == etag.trim_matches('"'),
        };
        if holds { Ok(()) } else { Err(ConditionFailure::Mismatch) }
    }
}

/// Where a version is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionState {
    /// Upload in progress: recorded before the first byte is stored, never visible.
    Pending,
    /// Stored and visible.
    Committed(Box<ObjectMeta>),
    /// An S3 delete marker.
    DeleteMarker,
    /// The upload failed or was interrupted; never visible.
    Aborted,
}

/// One entry of a key's version chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectVersion {
    /// The bucket.
    pub bucket: BucketName,
    /// The key.
    pub key: ObjectKey,
    /// Position in the key's chain; assigned when the version commits (0 while pending).
    pub seq: u64,
    /// The S3 version id (`null` or generated).
    pub version_id: VersionId,
    /// Where the version is in its life.
    pub state: VersionState,
    /// Whether a later write or a delete-by-id retired it: kept as history, no longer visible, content released.
    pub retired: bool,
    /// When the version was committed (or began, while pending).
    pub modified_at: SystemTime,
}

impl ObjectVersion {
    /// Whether S3 clients can see this version (an object or a delete marker).
    pub fn is_visible(&self) -> bool {
        !self.retired && matches!(self.state, VersionState::Committed(_) | VersionState::DeleteMarker)
    }

    /// Whether this is a delete marker.
    pub fn is_delete_marker(&self) -> bool {
        matches!(self.state, VersionState::DeleteMarker)
    }

    /// The stored object's metadata, when this version holds one.
    pub fn meta(&self) -> Option<&ObjectMeta> {
        match &self.state {
            VersionState::Committed(meta) => Some(meta),
            _ => None,
        }
    }
}

/// A multipart upload in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartUpload {
    /// The upload id clients quote (32 generated characters).
    pub id: String,
    /// Target bucket.
    pub bucket: BucketName,
    /// Target key.
    pub key: ObjectKey,
    /// When CreateMultipartUpload ran.
    pub initiated: SystemTime,
    /// Headers the completed object will carry.
    pub headers: ObjectHeaders,
    /// User metadata the completed object will carry.
    pub user_meta: BTreeMap<String, String>,
    /// The checksum the client asked the object to carry (`x-amz-checksum-algorithm` and `-type`), if any.
    pub checksum: Option<UploadChecksum>,
}

/// The checksum a multipart upload was created with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadChecksum {
    /// Every part carries a checksum of this algorithm.
    pub algorithm: Algorithm,
    /// How the object's checksum is formed from the parts'.
    pub kind: ChecksumType,
}

/// One uploaded part of a multipart upload. Its bytes are stored as content under `cid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadPart {
    /// 1 to 10000.
    pub number: u32,
    /// Part size in bytes.
    pub size: u64,
    /// The content holding the part's bytes (its CID under the gateway's profile).
    pub cid: Cid,
    /// The part's MD5 (its ETag) and the checksums the client sent.
    pub checksums: Checksums,
    /// The part's leaves, so an aligned upload's DAG is assembled without re-hashing.
    pub leaves: Vec<s3ipfs_cid::DagLink>,
    /// When the part was (last) uploaded.
    pub modified_at: SystemTime,
}

impl UploadPart {
    /// The same part with another modification time (tests compare parts whose times come from a store).
    pub fn with_time(mut self, modified_at: SystemTime) -> Self {
        self.modified_at = modified_at;
        self
    }

    /// The part's ETag: its hex MD5 in quotes.
    pub fn etag(&self) -> String {
        self.checksums.etag().unwrap_or_default()
    }
}
