//! Multipart uploads and their parts on PostgreSQL.

use std::time::SystemTime;

use deadpool_postgres::GenericClient;
use s3ipfs_core::{BucketName, ClaimId, MetaError, MultipartUpload, UploadPart};

use super::content::{drop_ref, take_claim};
use super::rows::{ChecksumParams, PART_COLUMNS, UPLOAD_COLUMNS, part_from_row, upload_from_row, user_meta_json};
use super::{Failure, PgMeta, execute, int, map_rows, query, query_opt, transact};
use crate::codec::{encode_leaves, millis, prefix_end};

async fn select_parts(
    client: &impl GenericClient,
    upload_id: &str,
    after: u32,
    limit: i64,
) -> Result<Vec<UploadPart>, Failure> {
    let sql = format!(
        "SELECT {PART_COLUMNS} FROM multipart_parts WHERE upload_id = $1 AND number > $2 ORDER BY number LIMIT $3"
    );
    let after = i32::try_from(after).unwrap_or(i32::MAX);
    map_rows(query(client, &sql, &[&upload_id, &after, &limit]).await?, part_from_row)
}

/// Locks upload `id` for the rest of the transaction (`NoSuchUpload` if it is gone).
async fn lock_upload(client: &impl GenericClient, id: &str) -> Result<(), Failure> {
    match query_opt(client, "SELECT 1 FROM multipart_uploads WHERE id = $1 FOR UPDATE", &[&id]).await? {
        Some(_) => Ok(()),
        None => Err(MetaError::NoSuchUpload.into()),
    }
}

/// Removes upload `id` and its parts inside a transaction, dropping the parts' references; returns the parts.
pub(super) async fn remove_upload(client: &impl GenericClient, id: &str) -> Result<Vec<UploadPart>, Failure> {
    lock_upload(client, id).await?;
    let parts = select_parts(client, id, 0, i64::MAX).await?;
    for part in &parts {
        drop_ref(client, &part.cid.to_bytes()).await?;
    }
    execute(client, "DELETE FROM multipart_uploads WHERE id = $1", &[&id]).await?;
    Ok(parts)
}

impl PgMeta {
    pub(super) async fn pg_create_multipart(&self, upload: &MultipartUpload) -> Result<(), MetaError> {
        let h = &upload.headers;
        let user_meta = user_meta_json(&upload.user_meta)?;
        let algorithm = upload.checksum.map(|c| c.algorithm.s3_name());
        let kind = upload.checksum.map(|c| c.kind.s3_name());
        let client = self.pool.get().await.map_err(Failure::from)?;
        let sql = format!(
            "INSERT INTO multipart_uploads ({UPLOAD_COLUMNS}) \
             SELECT $1, name, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13 FROM buckets WHERE name = $2"
        );
        let inserted = execute(
            &client,
            &sql,
            &[
                &upload.id,
                &upload.bucket.as_str(),
                &upload.key.as_str().as_bytes(),
                &millis(upload.initiated),
                &h.content_type,
                &h.content_encoding,
                &h.content_disposition,
                &h.content_language,
                &h.cache_control,
                &h.expires,
                &user_meta,
                &algorithm,
                &kind,
            ],
        )
        .await?;
        if inserted == 0 { Err(MetaError::NoSuchBucket) } else { Ok(()) }
    }

    pub(super) async fn pg_multipart(&self, id: &str) -> Result<Option<MultipartUpload>, MetaError> {
        let client = self.pool.get().await.map_err(Failure::from)?;
        let sql = format!("SELECT {UPLOAD_COLUMNS} FROM multipart_uploads WHERE id = $1");
        let row = query_opt(&client, &sql, &[&id]).await?;
        row.as_ref().map(upload_from_row).transpose()
    }

    pub(super) async fn pg_put_part(
        &self,
        upload_id: &str,
        part: &UploadPart,
        claim: ClaimId,
    ) -> Result<Option<UploadPart>, MetaError> {
        let c = ChecksumParams::of(&part.checksums);
        let number = i32::try_from(part.number).map_err(|_| MetaError::Invalid("part number out of range"))?;
        let (cid, leaves, size) = (part.cid.to_bytes(), encode_leaves(&part.leaves), int(part.size)?);
        let modified = millis(part.modified_at);
        transact!(self, |tx| {
            // The upload's lock orders this part against Complete and Abort, which remove the upload.
            lock_upload(&tx, upload_id).await?;
            take_claim(&tx, claim, &cid).await?;
            let previous = select_parts(&tx, upload_id, part.number.saturating_sub(1), 1)
                .await?
                .into_iter()
                .find(|p| p.number == part.number);
            let sql = format!(
                "INSERT INTO multipart_parts (upload_id, {PART_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                 ON CONFLICT (upload_id, number) DO UPDATE SET size = $3, cid = $4, md5 = $5, crc32 = $6, \
                 crc32c = $7, crc64nvme = $8, sha1 = $9, sha256 = $10, leaves = $11, modified_at = $12"
            );
            execute(
                &tx,
                &sql,
                &[
                    &upload_id,
                    &number,
                    &size,
                    &cid,
                    &c.md5,
                    &c.crc32,
                    &c.crc32c,
                    &c.crc64nvme,
                    &c.sha1,
                    &c.sha256,
                    &leaves,
                    &modified,
                ],
            )
            .await?;
            if let Some(replaced) = &previous {
                drop_ref(&tx, &replaced.cid.to_bytes()).await?;
            }
            previous
        })
    }

    pub(super) async fn pg_parts(
        &self,
        upload_id: &str,
        after: u32,
        limit: usize,
    ) -> Result<Vec<UploadPart>, MetaError> {
        let client = self.pool.get().await.map_err(Failure::from)?;
        if query_opt(&client, "SELECT 1 FROM multipart_uploads WHERE id = $1", &[&upload_id]).await?.is_none() {
            return Err(MetaError::NoSuchUpload);
        }
        Ok(select_parts(&client, upload_id, after, super::row_limit(limit)).await?)
    }

    pub(super) async fn pg_multiparts(
        &self,
        bucket: &BucketName,
        prefix: &str,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<MultipartUpload>, MetaError> {
        let end = prefix_end(prefix).map(String::into_bytes);
        let upper = if end.is_some() { "AND key < $5" } else { "AND $5::bytea IS NULL" };
        let (after_key, after_id) = after.unwrap_or(("", ""));
        let (prefix, after_key) = (prefix.as_bytes(), after_key.as_bytes());
        let sql = format!(
            "SELECT {UPLOAD_COLUMNS} FROM multipart_uploads WHERE bucket = $1 AND key >= $2 {upper} \
             AND (key > $3 OR (key = $3 AND id > $4)) ORDER BY key, id LIMIT $6"
        );
        let limit = super::row_limit(limit);
        let client = self.pool.get().await.map_err(Failure::from)?;
        let rows = query(&client, &sql, &[&bucket.as_str(), &prefix, &after_key, &after_id, &end, &limit]).await?;
        Ok(map_rows(rows, upload_from_row)?)
    }

    pub(super) async fn pg_remove_multipart(&self, id: &str) -> Result<Vec<UploadPart>, MetaError> {
        transact!(self, |tx| remove_upload(&tx, id).await?)
    }

    pub(super) async fn pg_stale_multiparts(&self, before: SystemTime) -> Result<Vec<MultipartUpload>, MetaError> {
        let client = self.pool.get().await.map_err(Failure::from)?;
        let sql = format!("SELECT {UPLOAD_COLUMNS} FROM multipart_uploads WHERE initiated < $1 ORDER BY initiated");
        Ok(map_rows(query(&client, &sql, &[&millis(before)]).await?, upload_from_row)?)
    }
}
