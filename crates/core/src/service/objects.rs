//! Object use cases: PUT (intent → stream → verify → commit), GET/HEAD lookups, DELETE and COPY, each following
//! S3's rules for unversioned, enabled and suspended buckets.

use std::collections::BTreeMap;
use std::ops::Range;

use bytes::Bytes;
use futures::Stream;
use s3ipfs_cid::{Algorithm, ChecksumSet, Checksums, Importer};

use crate::content::ByteStream;
use crate::meta::{MetaError, NewVersion, UploadId};
use crate::model::{
    Bucket, ConditionFailure, ObjectHeaders, ObjectMeta, ObjectVersion, PutCondition, VersionState, Versioning,
};
use crate::names::{BucketName, ObjectKey, UserId, VersionId};

use super::{Gateway, ServiceError, car_import, import_body};

/// The largest object one PutObject may store (S3's limit); a CAR import may not describe a larger file.
pub const MAX_PUT_SIZE: u64 = 5 * 1024 * 1024 * 1024;

/// Everything a PUT stores besides the bytes.
#[derive(Debug, Clone, Default)]
pub struct PutObject {
    /// Headers stored with the object.
    pub headers: ObjectHeaders,
    /// `x-amz-meta-*` pairs.
    pub user_meta: BTreeMap<String, String>,
    /// Checksums to compute besides MD5 (those the client sent or asked for).
    pub checksums: ChecksumSet,
    /// An optional precondition.
    pub condition: Option<PutCondition>,
    /// The body is a CAR whose root file is the object (Filebase's `x-amz-meta-import: car`); the object keeps the
    /// CAR's root CID and DAG.
    pub import_car: bool,
}

/// A version together with its bucket's versioning state, which decides whether S3 reports the version id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The version.
    pub version: ObjectVersion,
    /// Its bucket's versioning state when it was read or written.
    pub versioning: Versioning,
}

impl Located {
    /// The `x-amz-version-id` S3 reports: none in a bucket that never had versioning (all its versions are `null`).
    pub fn reported_version_id(&self) -> Option<&VersionId> {
        let reported = self.versioning != Versioning::Unversioned || !self.version.version_id.is_null();
        reported.then_some(&self.version.version_id)
    }
}

/// What a DELETE did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteOutcome {
    /// The version id S3 reports (`x-amz-version-id`), if any.
    pub version_id: Option<VersionId>,
    /// Whether the version created or removed is a delete marker (`x-amz-delete-marker`).
    pub delete_marker: bool,
}

/// A new version of a key written under `versioning`: its id, and whether it replaces the `null` version.
pub(super) fn new_version(versioning: Versioning, state: VersionState) -> NewVersion {
    if versioning.writes_null_version() {
        NewVersion::new(VersionId::null(), state, true)
    } else {
        NewVersion::new(VersionId::generate(), state, false)
    }
}

/// Why a commit that carried a claim, and maybe a condition, was refused.
pub(super) fn commit_error(err: MetaError) -> ServiceError {
    match err {
        MetaError::PreconditionFailed => ServiceError::PreconditionFailed,
        // The object the condition named was deleted while the write ran: AWS answers 409.
        MetaError::NoSuchKey => ServiceError::ConditionalRequestConflict,
        other => other.into(),
    }
}

impl Gateway {
    /// Checks a write condition before any byte is read, so a write that cannot succeed fails at once; the commit
    /// decides it again, atomically.
    pub(super) async fn check_condition(
        &self,
        bucket: &Bucket,
        key: &ObjectKey,
        condition: Option<&PutCondition>,
    ) -> Result<(), ServiceError> {
        let Some(condition) = condition else { return Ok(()) };
        let latest = self.meta.latest_version(&bucket.name, key).await?;
        condition.check(latest.as_ref().and_then(ObjectVersion::meta)).map_err(|failure| match failure {
            ConditionFailure::NoCurrentObject => ServiceError::NoSuchKey { delete_marker: None },
            ConditionFailure::Mismatch => ServiceError::PreconditionFailed,
        })
    }

    /// Stores a new version of `key` from `body`. `verify` sees the computed checksums once the body has ended (so
    /// trailer checksums can be compared) and may refuse the upload; nothing becomes visible unless it accepts.
    pub async fn put_object<S, E>(
        &self,
        user: UserId,
        bucket: &BucketName,
        key: &ObjectKey,
        request: PutObject,
        body: S,
        verify: impl FnOnce(&Checksums) -> Result<(), ServiceError> + Send,
    ) -> Result<Located, ServiceError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        let bucket = self.bucket_for(user, bucket).await?;
        self.check_condition(&bucket, key, request.condition.as_ref()).await?;
        // Intent first: a crash from here on leaves only a pending row, which is never visible.
        let pending = self.begin(&bucket.name, key).await?;
        let result = self.upload(pending.id(), &bucket, request, body, verify).await;
        if result.is_ok() {
            pending.committed();
        } else {
            pending.abort().await;
        }
        match result {
            Ok(version) => Ok(Located { version, versioning: bucket.versioning }),
            // The pending version vanished with its bucket while the body arrived.
            Err(ServiceError::Meta(MetaError::NoSuchUpload)) => Err(ServiceError::NoSuchBucket),
            Err(err) => Err(err),
        }
    }

    async fn upload<S, E>(
        &self,
        upload: UploadId,
        bucket: &Bucket,
        request: PutObject,
        mut body: S,
        verify: impl FnOnce(&Checksums) -> Result<(), ServiceError> + Send,
    ) -> Result<ObjectVersion, ServiceError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        let mut writer = self.content.writer().await?;
        let mut checksums = request.checksums.with(Algorithm::Md5);
        if checksums == ChecksumSet::MD5 {
            // S3's default: an object uploaded without a checksum gets a CRC64NVME.
            checksums = checksums.with(Algorithm::Crc64Nvme);
        }
        let (summary, writer) = if request.import_car {
            let failed = |e: E| ServiceError::IncompleteBody(e.to_string());
            let (summary, sent) =
                car_import::unpack_body(&mut body, checksums, MAX_PUT_SIZE, &mut writer, failed).await?;
            // The client's checksums describe what it sent: the CAR.
            if let Err(refused) = verify(&sent) {
                writer.abort().await;
                return Err(refused);
            }
            (summary, writer)
        } else {
            let importer = Importer::new(self.profile).with_checksums(checksums);
            let (summary, nodes, writer) = import_body(&mut body, importer, writer, verify).await?;
            let unpacked =
                car_import::Unpacked { root: summary.root, size: summary.size, checksums: summary.checksums, nodes };
            (unpacked, writer)
        };
        let claim = self.keep(writer, summary.root, summary.size, summary.nodes).await?;
        let meta = ObjectMeta {
            cid: Some(summary.root),
            size: summary.size,
            etag: summary.checksums.etag().unwrap_or_default(),
            checksums: summary.checksums,
            composite_checksum: false,
            part_sizes: Vec::new(),
            headers: request.headers,
            user_meta: request.user_meta,
        };
        let mut new = new_version(bucket.versioning, VersionState::Committed(Box::new(meta)));
        new.condition = request.condition;
        self.commit_claimed(upload, new, claim).await
    }

    /// The version a GET/HEAD addresses: the latest, or the one named by `version_id`.
    pub async fn object_version(
        &self,
        user: UserId,
        bucket: &BucketName,
        key: &ObjectKey,
        version_id: Option<&VersionId>,
    ) -> Result<Located, ServiceError> {
        let (bucket, version) = match version_id {
            // One read for the bucket and the key's newest version: a GET's metadata.
            None => match self.meta.bucket_and_latest(bucket, key).await? {
                None => return Err(ServiceError::NoSuchBucket),
                Some((bucket, _)) if bucket.owner != user => return Err(ServiceError::AccessDenied),
                Some((bucket, latest)) => (bucket, latest.ok_or(ServiceError::NoSuchKey { delete_marker: None })?),
            },
            Some(id) => {
                let bucket = self.bucket_for(user, bucket).await?;
                let version =
                    self.meta.find_version(&bucket.name, key, id).await?.ok_or(ServiceError::NoSuchVersion)?;
                (bucket, version)
            }
        };
        match (version.is_delete_marker(), version_id) {
            (false, _) => Ok(Located { version, versioning: bucket.versioning }),
            (true, None) => Err(ServiceError::NoSuchKey { delete_marker: Some(version.version_id) }),
            (true, Some(_)) => Err(ServiceError::DeleteMarkerVersion { version_id: version.version_id }),
        }
    }

    /// Streams `range` of an object version's bytes.
    pub async fn read_object(&self, version: &ObjectVersion, range: Range<u64>) -> Result<ByteStream, ServiceError> {
        let meta = version.meta().ok_or(ServiceError::NoSuchKey { delete_marker: None })?;
        let cid = meta.cid.ok_or(ServiceError::NoSuchKey { delete_marker: None })?;
        Ok(self.content.read_sized(&cid, meta.size, range).await?)
    }

    /// Deletes `key` (appending a delete marker when versioning is on) or, with `version_id`, removes that version.
    pub async fn delete_object(
        &self,
        user: UserId,
        bucket: &BucketName,
        key: &ObjectKey,
        version_id: Option<&VersionId>,
    ) -> Result<DeleteOutcome, ServiceError> {
        let bucket = self.bucket_for(user, bucket).await?;
        if let Some(id) = version_id {
            let removed = self.meta.retire_version(&bucket.name, key, id).await?;
            let delete_marker = removed.is_some_and(|v| v.is_delete_marker());
            return Ok(DeleteOutcome { version_id: Some(id.clone()), delete_marker });
        }
        if bucket.versioning == Versioning::Unversioned {
            self.meta.retire_version(&bucket.name, key, &VersionId::null()).await?;
            return Ok(DeleteOutcome { version_id: None, delete_marker: false });
        }
        let marker = new_version(bucket.versioning, VersionState::DeleteMarker);
        let marker = self.meta.append_version(&bucket.name, key, marker).await?;
        Ok(DeleteOutcome { version_id: Some(marker.version_id), delete_marker: true })
    }

    /// Copies an object version to `dst_key` as a new version naming the same content (no bytes move). With
    /// `replace`, the new version gets those headers and user metadata instead of the source's; `condition` applies
    /// to the destination, decided in the commit.
    pub async fn copy_object(
        &self,
        user: UserId,
        source: &ObjectVersion,
        dst_bucket: &BucketName,
        dst_key: &ObjectKey,
        replace: Option<(ObjectHeaders, BTreeMap<String, String>)>,
        condition: Option<PutCondition>,
    ) -> Result<Located, ServiceError> {
        let bucket = self.bucket_for(user, dst_bucket).await?;
        self.check_condition(&bucket, dst_key, condition.as_ref()).await?;
        let mut meta = source.meta().cloned().ok_or(ServiceError::NoSuchKey { delete_marker: None })?;
        if let Some((headers, user_meta)) = replace {
            meta.headers = headers;
            meta.user_meta = user_meta;
        }
        let mut new = new_version(bucket.versioning, VersionState::Committed(Box::new(meta)));
        new.condition = condition;
        let version = match self.meta.append_version(&bucket.name, dst_key, new).await {
            Ok(version) => version,
            // The source was deleted and its content collected since it was read.
            Err(MetaError::ContentGone) => return Err(ServiceError::NoSuchKey { delete_marker: None }),
            Err(err) => return Err(commit_error(err)),
        };
        Ok(Located { version, versioning: bucket.versioning })
    }
}
