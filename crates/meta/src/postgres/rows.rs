//! Mapping between PostgreSQL rows and domain values.

use std::collections::BTreeMap;

use s3ipfs_cid::{Checksums, Cid};
use s3ipfs_core::{
    Bucket, BucketName, MetaError, MultipartUpload, ObjectHeaders, ObjectKey, ObjectMeta, ObjectVersion, UploadPart,
    UserId, VersionId, VersionState, Versioning,
};
use tokio_postgres::Row;
use tokio_postgres::types::FromSql;

use crate::codec::{decode_leaves, decode_sizes, from_millis, upload_checksum};

pub(super) const PENDING: i16 = 0;
pub(super) const COMMITTED: i16 = 1;
pub(super) const DELETE_MARKER: i16 = 2;
pub(super) const ABORTED: i16 = 3;

/// Every column [`version_from_row`] reads, in order, of `object_versions` aliased `v`.
pub(super) const VERSION_COLUMNS: &str = "v.bucket, v.key, v.seq, v.version_id, v.state, v.retired, v.modified_at, \
     v.cid, v.size, v.etag, v.md5, v.crc32, v.crc32c, v.crc64nvme, v.sha1, v.sha256, v.content_type, \
     v.content_encoding, v.content_disposition, v.content_language, v.cache_control, v.expires, v.user_meta, \
     v.composite_checksum, v.part_sizes";

/// Every column [`upload_from_row`] reads.
pub(super) const UPLOAD_COLUMNS: &str = "id, bucket, key, initiated, content_type, content_encoding, \
     content_disposition, content_language, cache_control, expires, user_meta, checksum_algorithm, checksum_type";

/// Every column [`part_from_row`] reads.
pub(super) const PART_COLUMNS: &str =
    "number, size, cid, md5, crc32, crc32c, crc64nvme, sha1, sha256, leaves, modified_at";

pub(super) fn corrupt(what: &str) -> MetaError {
    MetaError::Backend { message: format!("corrupt metadata: {what}") }
}

fn get<'a, T: FromSql<'a>>(row: &'a Row, index: usize) -> Result<T, MetaError> {
    row.try_get(index).map_err(|e| corrupt(&e.to_string()))
}

/// A key stored as bytes (keys may hold any character, NUL included, which PostgreSQL text cannot).
fn key_at(row: &Row, index: usize) -> Result<ObjectKey, MetaError> {
    let bytes: Vec<u8> = get(row, index)?;
    let key = String::from_utf8(bytes).map_err(|_| corrupt("key"))?;
    ObjectKey::parse(&key).map_err(|_| corrupt("key"))
}

fn count(value: i64, what: &str) -> Result<u64, MetaError> {
    u64::try_from(value).map_err(|_| corrupt(what))
}

fn fixed<const N: usize>(bytes: Option<Vec<u8>>) -> Result<Option<[u8; N]>, MetaError> {
    bytes.map(|b| <[u8; N]>::try_from(b.as_slice()).map_err(|_| corrupt("digest length"))).transpose()
}

fn user_meta(json: Option<String>) -> Result<BTreeMap<String, String>, MetaError> {
    json.map_or(Ok(BTreeMap::new()), |json| serde_json::from_str(&json).map_err(|_| corrupt("user_meta")))
}

/// `user_meta` as stored.
pub(super) fn user_meta_json(meta: &BTreeMap<String, String>) -> Result<String, MetaError> {
    serde_json::to_string(meta).map_err(|_| corrupt("user_meta"))
}

/// The six checksum columns starting at `first`.
fn checksums_at(row: &Row, first: usize) -> Result<Checksums, MetaError> {
    Ok(Checksums {
        md5: fixed(get(row, first)?)?,
        crc32: get::<Option<i64>>(row, first + 1)?.map(|v| v as u32),
        crc32c: get::<Option<i64>>(row, first + 2)?.map(|v| v as u32),
        crc64nvme: get::<Option<i64>>(row, first + 3)?.map(|v| v as u64),
        sha1: fixed(get(row, first + 4)?)?,
        sha256: fixed(get(row, first + 5)?)?,
    })
}

/// The six checksum values as bound to their columns.
pub(super) struct ChecksumParams {
    pub md5: Option<Vec<u8>>,
    pub crc32: Option<i64>,
    pub crc32c: Option<i64>,
    pub crc64nvme: Option<i64>,
    pub sha1: Option<Vec<u8>>,
    pub sha256: Option<Vec<u8>>,
}

impl ChecksumParams {
    pub(super) fn of(c: &Checksums) -> Self {
        ChecksumParams {
            md5: c.md5.map(|d| d.to_vec()),
            crc32: c.crc32.map(i64::from),
            crc32c: c.crc32c.map(i64::from),
            crc64nvme: c.crc64nvme.map(|v| v as i64),
            sha1: c.sha1.map(|d| d.to_vec()),
            sha256: c.sha256.map(|d| d.to_vec()),
        }
    }
}

/// The six stored-header columns starting at `first`.
fn headers_at(row: &Row, first: usize) -> Result<ObjectHeaders, MetaError> {
    Ok(ObjectHeaders {
        content_type: get(row, first)?,
        content_encoding: get(row, first + 1)?,
        content_disposition: get(row, first + 2)?,
        content_language: get(row, first + 3)?,
        cache_control: get(row, first + 4)?,
        expires: get(row, first + 5)?,
    })
}

/// A version from the [`VERSION_COLUMNS`] of a row, or `None` when an outer join found none.
pub(super) fn optional_version(row: &Row) -> Result<Option<ObjectVersion>, MetaError> {
    match get::<Option<String>>(row, 0)? {
        Some(_) => version_from_row(row).map(Some),
        None => Ok(None),
    }
}

/// A version from the [`VERSION_COLUMNS`] of a row.
pub(super) fn version_from_row(row: &Row) -> Result<ObjectVersion, MetaError> {
    let bucket = BucketName::parse(get(row, 0)?).map_err(|_| corrupt("bucket"))?;
    let key = key_at(row, 1)?;
    let version_id = VersionId::parse(get(row, 3)?).map_err(|_| corrupt("version_id"))?;
    let state = match get::<i16>(row, 4)? {
        PENDING => VersionState::Pending,
        COMMITTED => VersionState::Committed(Box::new(meta_from_row(row)?)),
        DELETE_MARKER => VersionState::DeleteMarker,
        ABORTED => VersionState::Aborted,
        _ => return Err(corrupt("state")),
    };
    Ok(ObjectVersion {
        bucket,
        key,
        seq: count(get(row, 2)?, "seq")?,
        version_id,
        state,
        retired: get(row, 5)?,
        modified_at: from_millis(get(row, 6)?),
    })
}

fn meta_from_row(row: &Row) -> Result<ObjectMeta, MetaError> {
    let cid: Option<Vec<u8>> = get(row, 7)?;
    Ok(ObjectMeta {
        cid: cid.map(|b| Cid::from_bytes(&b).map_err(|_| corrupt("cid"))).transpose()?,
        size: count(get(row, 8)?, "size")?,
        etag: get(row, 9)?,
        checksums: checksums_at(row, 10)?,
        composite_checksum: get(row, 23)?,
        part_sizes: decode_sizes(get(row, 24)?).map_err(corrupt)?,
        headers: headers_at(row, 16)?,
        user_meta: user_meta(get(row, 22)?)?,
    })
}

/// A bucket from `name, owner, created_at, versioning`.
pub(super) fn bucket_from_row(row: &Row) -> Result<Bucket, MetaError> {
    bucket_at(row, 0)
}

/// A bucket from `name, owner, created_at, versioning` starting at column `first`.
pub(super) fn bucket_at(row: &Row, first: usize) -> Result<Bucket, MetaError> {
    Ok(Bucket {
        name: BucketName::parse(get(row, first)?).map_err(|_| corrupt("bucket name"))?,
        owner: UserId(get(row, first + 1)?),
        created_at: from_millis(get(row, first + 2)?),
        versioning: match get::<i16>(row, first + 3)? {
            1 => Versioning::Enabled,
            2 => Versioning::Suspended,
            _ => Versioning::Unversioned,
        },
    })
}

/// The stored code of a versioning state.
pub(super) fn versioning_code(v: Versioning) -> i16 {
    match v {
        Versioning::Unversioned => 0,
        Versioning::Enabled => 1,
        Versioning::Suspended => 2,
    }
}

/// An upload from the [`UPLOAD_COLUMNS`] of a row.
pub(super) fn upload_from_row(row: &Row) -> Result<MultipartUpload, MetaError> {
    Ok(MultipartUpload {
        id: get(row, 0)?,
        bucket: BucketName::parse(get(row, 1)?).map_err(|_| corrupt("bucket"))?,
        key: key_at(row, 2)?,
        initiated: from_millis(get(row, 3)?),
        headers: headers_at(row, 4)?,
        user_meta: user_meta(get(row, 10)?)?,
        checksum: upload_checksum(get(row, 11)?, get(row, 12)?).map_err(corrupt)?,
    })
}

/// A part from the [`PART_COLUMNS`] of a row.
pub(super) fn part_from_row(row: &Row) -> Result<UploadPart, MetaError> {
    let cid: Vec<u8> = get(row, 2)?;
    let leaves: Vec<u8> = get(row, 9)?;
    Ok(UploadPart {
        number: u32::try_from(get::<i32>(row, 0)?).map_err(|_| corrupt("part number"))?,
        size: count(get(row, 1)?, "size")?,
        cid: Cid::from_bytes(&cid).map_err(|_| corrupt("cid"))?,
        checksums: checksums_at(row, 3)?,
        leaves: decode_leaves(&leaves).map_err(corrupt)?,
        modified_at: from_millis(get(row, 10)?),
    })
}
