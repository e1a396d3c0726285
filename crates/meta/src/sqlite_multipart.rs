//! The multipart half of the embedded store: uploads, parts and the leaf lists of parts.

use std::collections::BTreeMap;
use std::time::SystemTime;

use rusqlite::{OptionalExtension, Row, Transaction, params};
use s3ipfs_cid::Cid;
use s3ipfs_core::{BucketName, ClaimId, MetaError, MultipartUpload, ObjectKey, UploadPart};

use crate::codec::{decode_leaves, encode_leaves, from_millis, millis, prefix_end, upload_checksum};
use crate::sqlite::{SqliteMeta, backend, immediate};
use crate::sqlite_content::{drop_ref, take_claim};
use crate::sqlite_rows::{checksum_params, checksums_at, corrupt, header_params, headers_at};

const UPLOAD_COLUMNS: &str = "id, bucket, key, initiated, content_type, content_encoding, content_disposition, \
     content_language, cache_control, expires, user_meta, checksum_algorithm, checksum_type";
const PART_COLUMNS: &str = "number, size, cid, md5, crc32, crc32c, crc64nvme, sha1, sha256, leaves, modified_at";

fn upload_from_row(row: &Row<'_>) -> rusqlite::Result<MultipartUpload> {
    let user_meta: Option<String> = row.get(10)?;
    Ok(MultipartUpload {
        id: row.get(0)?,
        bucket: BucketName::parse(&row.get::<_, String>(1)?).map_err(|_| corrupt("bucket"))?,
        key: ObjectKey::parse(&row.get::<_, String>(2)?).map_err(|_| corrupt("key"))?,
        initiated: from_millis(row.get(3)?),
        headers: headers_at(row, 4)?,
        user_meta: match user_meta {
            Some(json) => serde_json::from_str::<BTreeMap<String, String>>(&json).map_err(|_| corrupt("user_meta"))?,
            None => BTreeMap::new(),
        },
        checksum: upload_checksum(row.get(11)?, row.get(12)?).map_err(corrupt)?,
    })
}

fn part_from_row(row: &Row<'_>) -> rusqlite::Result<UploadPart> {
    Ok(UploadPart {
        number: row.get(0)?,
        size: u64::try_from(row.get::<_, i64>(1)?).map_err(|_| corrupt("size"))?,
        cid: Cid::from_bytes(&row.get::<_, Vec<u8>>(2)?).map_err(|_| corrupt("cid"))?,
        checksums: checksums_at(row, 3)?,
        leaves: decode_leaves(&row.get::<_, Vec<u8>>(9)?).map_err(corrupt)?,
        modified_at: from_millis(row.get(10)?),
    })
}

fn select_parts(
    tx: &rusqlite::Connection,
    upload_id: &str,
    after: u32,
    limit: i64,
) -> rusqlite::Result<Vec<UploadPart>> {
    let sql = format!(
        "SELECT {PART_COLUMNS} FROM multipart_parts WHERE upload_id = ?1 AND number > ?2 ORDER BY number LIMIT ?3"
    );
    let mut stmt = tx.prepare_cached(&sql)?;
    stmt.query_map(params![upload_id, after, limit], part_from_row)?.collect()
}

fn upload_exists(conn: &rusqlite::Connection, id: &str) -> Result<bool, MetaError> {
    conn.query_row("SELECT EXISTS (SELECT 1 FROM multipart_uploads WHERE id = ?1)", params![id], |r| r.get(0))
        .map_err(backend)
}

/// Removes upload `id` and its parts inside `tx`, dropping the parts' references; returns the parts.
pub(crate) fn remove_upload(tx: &Transaction<'_>, id: &str) -> Result<Vec<UploadPart>, MetaError> {
    if !upload_exists(tx, id)? {
        return Err(MetaError::NoSuchUpload);
    }
    let parts = select_parts(tx, id, 0, i64::MAX).map_err(backend)?;
    for part in &parts {
        drop_ref(tx, &part.cid.to_bytes())?;
    }
    tx.execute("DELETE FROM multipart_uploads WHERE id = ?1", params![id]).map_err(backend)?;
    Ok(parts)
}

impl SqliteMeta {
    pub(crate) async fn sql_create_multipart(&self, upload: &MultipartUpload) -> Result<(), MetaError> {
        let upload = upload.clone();
        self.with(move |conn| {
            let tx = immediate(conn)?;
            let exists: bool = tx
                .query_row("SELECT EXISTS (SELECT 1 FROM buckets WHERE name = ?1)", params![upload.bucket.as_str()], |r| {
                    r.get(0)
                })
                .map_err(backend)?;
            if !exists {
                return Err(MetaError::NoSuchBucket);
            }
            let (content_type, content_encoding, content_disposition, content_language, cache_control, expires) =
                header_params(&upload.headers);
            let user_meta = serde_json::to_string(&upload.user_meta).map_err(backend)?;
            tx.execute(
                &format!("INSERT INTO multipart_uploads ({UPLOAD_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"),
                params![
                    upload.id,
                    upload.bucket.as_str(),
                    upload.key.as_str(),
                    millis(upload.initiated),
                    content_type,
                    content_encoding,
                    content_disposition,
                    content_language,
                    cache_control,
                    expires,
                    user_meta,
                    upload.checksum.map(|c| c.algorithm.s3_name()),
                    upload.checksum.map(|c| c.kind.s3_name()),
                ],
            )
            .map_err(backend)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    pub(crate) async fn sql_multipart(&self, id: &str) -> Result<Option<MultipartUpload>, MetaError> {
        let id = id.to_owned();
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT {UPLOAD_COLUMNS} FROM multipart_uploads WHERE id = ?1"),
                params![id],
                upload_from_row,
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    pub(crate) async fn sql_put_part(
        &self,
        upload_id: &str,
        part: &UploadPart,
        claim: ClaimId,
    ) -> Result<Option<UploadPart>, MetaError> {
        let (upload_id, part) = (upload_id.to_owned(), part.clone());
        self.with(move |conn| {
            let tx = immediate(conn)?;
            if !upload_exists(&tx, &upload_id)? {
                return Err(MetaError::NoSuchUpload);
            }
            take_claim(&tx, claim, &part.cid.to_bytes())?;
            let previous = select_parts(&tx, &upload_id, part.number.saturating_sub(1), 1)
                .map_err(backend)?
                .into_iter()
                .find(|p| p.number == part.number);
            let (md5, crc32, crc32c, crc64nvme, sha1, sha256) = checksum_params(&part.checksums);
            tx.execute(
                &format!(
                    "INSERT OR REPLACE INTO multipart_parts (upload_id, {PART_COLUMNS}) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
                ),
                params![
                    upload_id,
                    part.number,
                    i64::try_from(part.size).map_err(backend)?,
                    part.cid.to_bytes(),
                    md5,
                    crc32,
                    crc32c,
                    crc64nvme,
                    sha1,
                    sha256,
                    encode_leaves(&part.leaves),
                    millis(part.modified_at)
                ],
            )
            .map_err(backend)?;
            if let Some(replaced) = &previous {
                drop_ref(&tx, &replaced.cid.to_bytes())?;
            }
            tx.commit().map_err(backend)?;
            Ok(previous)
        })
        .await
    }

    pub(crate) async fn sql_parts(
        &self,
        upload_id: &str,
        after: u32,
        limit: usize,
    ) -> Result<Vec<UploadPart>, MetaError> {
        let upload_id = upload_id.to_owned();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            if !upload_exists(conn, &upload_id)? {
                return Err(MetaError::NoSuchUpload);
            }
            select_parts(conn, &upload_id, after, limit).map_err(backend)
        })
        .await
    }

    pub(crate) async fn sql_multiparts(
        &self,
        bucket: &BucketName,
        prefix: &str,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<MultipartUpload>, MetaError> {
        let (bucket, prefix) = (bucket.clone(), prefix.to_owned());
        let (after_key, after_id) = after.map_or((None, String::new()), |(k, id)| (Some(k.to_owned()), id.to_owned()));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let end = prefix_end(&prefix);
        self.read(move |conn| {
            let sql = format!(
                "SELECT {UPLOAD_COLUMNS} FROM multipart_uploads WHERE bucket = ?1 AND key >= ?2 \
                 AND (?6 IS NULL OR key < ?6) AND (?3 IS NULL OR key > ?3 OR (key = ?3 AND id > ?4)) \
                 ORDER BY key, id LIMIT ?5"
            );
            let mut stmt = conn.prepare_cached(&sql).map_err(backend)?;
            let params = params![bucket.as_str(), prefix, after_key, after_id, limit, end];
            let rows = stmt.query_map(params, upload_from_row);
            rows.map_err(backend)?.collect::<Result<_, _>>().map_err(backend)
        })
        .await
    }

    pub(crate) async fn sql_remove_multipart(&self, id: &str) -> Result<Vec<UploadPart>, MetaError> {
        let id = id.to_owned();
        self.with(move |conn| {
            let tx = immediate(conn)?;
            let parts = remove_upload(&tx, &id)?;
            tx.commit().map_err(backend)?;
            Ok(parts)
        })
        .await
    }

    pub(crate) async fn sql_stale_multiparts(&self, before: SystemTime) -> Result<Vec<MultipartUpload>, MetaError> {
        self.read(move |conn| {
            let sql = format!("SELECT {UPLOAD_COLUMNS} FROM multipart_uploads WHERE initiated < ?1 ORDER BY initiated");
            let mut stmt = conn.prepare_cached(&sql).map_err(backend)?;
            let rows = stmt.query_map(params![millis(before)], upload_from_row);
            rows.map_err(backend)?.collect::<Result<_, _>>().map_err(backend)
        })
        .await
    }
}
