//! Mapping between `object_versions` rows and domain versions.

use std::collections::BTreeMap;

use rusqlite::Row;
use s3ipfs_cid::{Checksums, Cid};
use s3ipfs_core::{BucketName, ObjectHeaders, ObjectKey, ObjectMeta, ObjectVersion, VersionId, VersionState};

use crate::codec::{decode_sizes, encode_sizes, from_millis};

pub(crate) const PENDING: i64 = 0;
pub(crate) const COMMITTED: i64 = 1;
pub(crate) const DELETE_MARKER: i64 = 2;
pub(crate) const ABORTED: i64 = 3;

/// Every column `version_from_row` reads, in order.
pub(crate) const VERSION_COLUMNS: &str = "bucket, key, seq, version_id, state, retired, modified_at, cid, size, etag, \
     md5, crc32, crc32c, crc64nvme, sha1, sha256, content_type, content_encoding, content_disposition, \
     content_language, cache_control, expires, user_meta, composite_checksum, part_sizes";

pub(crate) fn corrupt(what: &str) -> rusqlite::Error {
    rusqlite::Error::InvalidColumnType(0, what.to_owned(), rusqlite::types::Type::Null)
}

pub(crate) fn fixed<const N: usize>(bytes: Option<Vec<u8>>) -> rusqlite::Result<Option<[u8; N]>> {
    bytes.map(|b| <[u8; N]>::try_from(b.as_slice()).map_err(|_| corrupt("digest length"))).transpose()
}

pub(crate) fn version_from_row(row: &Row<'_>) -> rusqlite::Result<ObjectVersion> {
    let text = |i: usize| row.get::<_, String>(i);
    let bucket = BucketName::parse(&text(0)?).map_err(|_| corrupt("bucket"))?;
    let key = ObjectKey::parse(&text(1)?).map_err(|_| corrupt("key"))?;
    let version_id = VersionId::parse(&text(3)?).map_err(|_| corrupt("version_id"))?;
    let state = match row.get::<_, i64>(4)? {
        PENDING => VersionState::Pending,
        COMMITTED => VersionState::Committed(Box::new(meta_from_row(row)?)),
        DELETE_MARKER => VersionState::DeleteMarker,
        ABORTED => VersionState::Aborted,
        _ => return Err(corrupt("state")),
    };
    Ok(ObjectVersion {
        bucket,
        key,
        seq: u64::try_from(row.get::<_, i64>(2)?).map_err(|_| corrupt("seq"))?,
        version_id,
        state,
        retired: row.get(5)?,
        modified_at: from_millis(row.get(6)?),
    })
}

fn meta_from_row(row: &Row<'_>) -> rusqlite::Result<ObjectMeta> {
    let cid = row.get::<_, Option<Vec<u8>>>(7)?.map(|b| Cid::from_bytes(&b).map_err(|_| corrupt("cid"))).transpose()?;
    let user_meta: Option<String> = row.get(22)?;
    let user_meta: BTreeMap<String, String> = match user_meta {
        Some(json) => serde_json::from_str(&json).map_err(|_| corrupt("user_meta"))?,
        None => BTreeMap::new(),
    };
    Ok(ObjectMeta {
        cid,
        size: u64::try_from(row.get::<_, i64>(8)?).map_err(|_| corrupt("size"))?,
        etag: row.get(9)?,
        checksums: checksums_at(row, 10)?,
        composite_checksum: row.get(23)?,
        part_sizes: decode_sizes(row.get(24)?).map_err(corrupt)?,
        headers: headers_at(row, 16)?,
        user_meta,
    })
}

/// The six checksum columns (md5, crc32, crc32c, crc64nvme, sha1, sha256) starting at column `first`.
pub(crate) fn checksums_at(row: &Row<'_>, first: usize) -> rusqlite::Result<Checksums> {
    Ok(Checksums {
        md5: fixed(row.get(first)?)?,
        crc32: row.get::<_, Option<i64>>(first + 1)?.map(|v| v as u32),
        crc32c: row.get::<_, Option<i64>>(first + 2)?.map(|v| v as u32),
        crc64nvme: row.get::<_, Option<i64>>(first + 3)?.map(|v| v as u64),
        sha1: fixed(row.get(first + 4)?)?,
        sha256: fixed(row.get(first + 5)?)?,
    })
}

/// The checksum values as bound to the six checksum columns, in the same order.
pub(crate) type ChecksumParams =
    (Option<Vec<u8>>, Option<i64>, Option<i64>, Option<i64>, Option<Vec<u8>>, Option<Vec<u8>>);

/// `checksums` as column values for the six checksum columns.
pub(crate) fn checksum_params(c: &Checksums) -> ChecksumParams {
    (
        c.md5.map(|d| d.to_vec()),
        c.crc32.map(i64::from),
        c.crc32c.map(i64::from),
        c.crc64nvme.map(|v| v as i64),
        c.sha1.map(|d| d.to_vec()),
        c.sha256.map(|d| d.to_vec()),
    )
}

/// The header values as bound to the six stored-header columns, in the same order.
pub(crate) type HeaderParams<'a> = (
    &'a Option<String>,
    &'a Option<String>,
    &'a Option<String>,
    &'a Option<String>,
    &'a Option<String>,
    &'a Option<String>,
);

/// `headers` as column values for the six stored-header columns (content_type … expires).
pub(crate) fn header_params(h: &ObjectHeaders) -> HeaderParams<'_> {
    (&h.content_type, &h.content_encoding, &h.content_disposition, &h.content_language, &h.cache_control, &h.expires)
}

/// The six stored-header columns (content_type … expires) starting at column `first`.
pub(crate) fn headers_at(row: &Row<'_>, first: usize) -> rusqlite::Result<ObjectHeaders> {
    Ok(ObjectHeaders {
        content_type: row.get(first)?,
        content_encoding: row.get(first + 1)?,
        content_disposition: row.get(first + 2)?,
        content_language: row.get(first + 3)?,
        cache_control: row.get(first + 4)?,
        expires: row.get(first + 5)?,
    })
}

/// Turns row `id` into the committed object `meta` at position `seq`, in one statement (the CHECK constraint ties
/// the committed state to its metadata).
pub(crate) fn store_committed(
    tx: &rusqlite::Transaction<'_>,
    id: i64,
    seq: i64,
    version_id: &str,
    modified_at: i64,
    meta: &ObjectMeta,
) -> rusqlite::Result<()> {
    let (md5, crc32, crc32c, crc64nvme, sha1, sha256) = checksum_params(&meta.checksums);
    let (content_type, content_encoding, content_disposition, content_language, cache_control, expires) =
        header_params(&meta.headers);
    let user_meta = serde_json::to_string(&meta.user_meta).map_err(|_| corrupt("user_meta"))?;
    tx.execute(
        "UPDATE object_versions SET cid = ?2, size = ?3, etag = ?4, md5 = ?5, crc32 = ?6, crc32c = ?7, \
         crc64nvme = ?8, sha1 = ?9, sha256 = ?10, content_type = ?11, content_encoding = ?12, \
         content_disposition = ?13, content_language = ?14, cache_control = ?15, expires = ?16, user_meta = ?17, \
         state = ?18, seq = ?19, version_id = ?20, modified_at = ?21, composite_checksum = ?22, \
         part_sizes = ?23 WHERE id = ?1",
        rusqlite::params![
            id,
            meta.cid.map(|cid| cid.to_bytes()),
            i64::try_from(meta.size).map_err(|_| corrupt("size"))?,
            meta.etag,
            md5,
            crc32,
            crc32c,
            crc64nvme,
            sha1,
            sha256,
            content_type,
            content_encoding,
            content_disposition,
            content_language,
            cache_control,
            expires,
            user_meta,
            COMMITTED,
            seq,
            version_id,
            modified_at,
            meta.composite_checksum,
            encode_sizes(&meta.part_sizes),
        ],
    )?;
    Ok(())
}
