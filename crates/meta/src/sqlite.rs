//! The embedded `MetaStore`: one SQLite file (WAL, `synchronous=FULL`: a commit is on disk before it is
//! acknowledged), migrated with refinery. One connection behind a mutex serializes writers, as SQLite does anyway;
//! every call runs on tokio's blocking pool.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use s3ipfs_cid::Cid;
use s3ipfs_core::{
    AccessKey, Bucket, BucketName, ClaimId, MetaError, MetaStore, MultipartUpload, NewVersion, ObjectKey,
    ObjectVersion, StoredContent, UploadId, UploadPart, User, UserId, VersionId, VersionState, Versioning,
};

use crate::sqlite_content::{add_ref_to_stored, drop_ref, release_stale_claims, take_claim};
use crate::sqlite_multipart::remove_upload;
use crate::sqlite_rows::{
    ABORTED, DELETE_MARKER, PENDING, VERSION_COLUMNS, from_millis, millis, store_committed, version_from_row,
};

mod embedded {
    refinery::embed_migrations!("../../migrations/sqlite");
}

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SqliteOpenError {
    /// SQLite refused to open or configure the file.
    #[error("opening the metadata database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A migration failed.
    #[error("migrating the metadata database: {0}")]
    Migration(#[from] refinery::Error),
}

/// The embedded metadata store.
#[derive(Debug, Clone)]
pub struct SqliteMeta {
    conn: Arc<Mutex<Connection>>,
}

pub(crate) fn backend(err: impl std::fmt::Display) -> MetaError {
    MetaError::Backend { message: err.to_string() }
}

fn is_unique_violation(err: &rusqlite::Error) -> bool {
    matches!(err, rusqlite::Error::SqliteFailure(e, _) if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
        || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

fn versioning_code(v: Versioning) -> i64 {
    match v {
        Versioning::Unversioned => 0,
        Versioning::Enabled => 1,
        Versioning::Suspended => 2,
    }
}

fn versioning_of(code: i64) -> Versioning {
    match code {
        1 => Versioning::Enabled,
        2 => Versioning::Suspended,
        _ => Versioning::Unversioned,
    }
}

fn bucket_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Bucket> {
    let name: String = row.get(0)?;
    Ok(Bucket {
        name: BucketName::parse(&name)
            .map_err(|_| rusqlite::Error::InvalidColumnType(0, "name".into(), rusqlite::types::Type::Text))?,
        owner: UserId(row.get(1)?),
        created_at: from_millis(row.get(2)?),
        versioning: versioning_of(row.get(3)?),
    })
}

/// Visible rows: committed objects and delete markers not retired.
const VISIBLE: &str = "retired = 0 AND state IN (1, 2)";

impl SqliteMeta {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: &Path) -> Result<Self, SqliteOpenError> {
        Self::configure(Connection::open(path)?)
    }

    /// A private in-memory database (tests).
    pub fn open_in_memory() -> Result<Self, SqliteOpenError> {
        Self::configure(Connection::open_in_memory()?)
    }

    fn configure(mut conn: Connection) -> Result<Self, SqliteOpenError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        embedded::migrations::runner().run(&mut conn)?;
        Ok(SqliteMeta { conn: Arc::new(Mutex::new(conn)) })
    }

    /// Runs `f` on the blocking pool without waiting for its commit to reach the disk (`synchronous=NORMAL` for
    /// this call: WAL order is kept, an fsync is not). Only for records a crash may lose because recovery discards
    /// them anyway — a pending version, an abort, a claim and its release — and never for anything acknowledged: the
    /// next durable commit on the connection persists these records with it.
    pub(crate) async fn with_unsynced<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, MetaError> + Send + 'static,
    ) -> Result<T, MetaError> {
        self.with(move |conn| {
            conn.pragma_update(None, "synchronous", "NORMAL").map_err(backend)?;
            let result = f(conn);
            conn.pragma_update(None, "synchronous", "FULL").map_err(backend)?;
            result
        })
        .await
    }

    /// Runs `f` with the connection on the blocking pool.
    pub(crate) async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, MetaError> + Send + 'static,
    ) -> Result<T, MetaError> {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().map_err(|_| backend("metadata connection poisoned"))?;
            f(&mut guard)
        })
        .await
        .map_err(backend)?
    }
}

fn select_versions(
    conn: &Connection,
    where_sql: &str,
    params: &[&dyn rusqlite::ToSql],
) -> rusqlite::Result<Vec<ObjectVersion>> {
    let sql = format!("SELECT {VERSION_COLUMNS} FROM object_versions v WHERE {where_sql}");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params, version_from_row)?;
    rows.collect()
}

/// The smallest string above every string that starts with `prefix` (`None` when there is none): keys with the
/// prefix are exactly those in `prefix..end`, a range the `(bucket, key)` indexes answer, whatever bytes keys hold.
pub(crate) fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match u32::from(last) + 1 {
            0xD800 => 0xE000,
            n => n,
        };
        if let Some(next) = char::from_u32(next) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The newest visible version of a key, inside a transaction.
fn latest_in(tx: &rusqlite::Transaction<'_>, bucket: &str, key: &str) -> Result<Option<ObjectVersion>, MetaError> {
    let sql = format!("bucket = ?1 AND key = ?2 AND {VISIBLE} ORDER BY seq DESC LIMIT 1");
    select_versions(tx, &sql, &[&bucket, &key]).map(|mut v| v.pop()).map_err(backend)
}

/// Writes `new` into the pending row `id`, inside `tx`: decides its condition, takes over its claim (or adds a
/// reference to stored content), removes the upload it completes, retires the null version if asked and assigns the
/// next seq. Any error rolls the whole transaction back.
fn commit_row(tx: &rusqlite::Transaction<'_>, id: i64, new: &NewVersion) -> Result<ObjectVersion, MetaError> {
    let (bucket, key): (String, String) = tx
        .query_row("SELECT bucket, key FROM object_versions WHERE id = ?1 AND state = ?2", params![id, PENDING], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()
        .map_err(backend)?
        .ok_or(MetaError::NoSuchUpload)?;
    if !matches!(new.state, VersionState::Committed(_) | VersionState::DeleteMarker) {
        return Err(MetaError::Invalid("only objects and delete markers can be committed"));
    }
    if let Some(condition) = &new.condition {
        let latest = latest_in(tx, &bucket, &key)?;
        condition.check(latest.as_ref().and_then(ObjectVersion::meta))?;
    }
    if let Some(upload) = &new.completes {
        remove_upload(tx, upload)?;
    }
    if new.replace_null {
        let nulls: Vec<i64> = tx
            .prepare_cached(&format!(
                "SELECT id FROM object_versions WHERE bucket = ?1 AND key = ?2 AND version_id = 'null' AND {VISIBLE}"
            ))
            .and_then(|mut s| s.query_map(params![bucket, key], |r| r.get(0))?.collect())
            .map_err(backend)?;
        for null in nulls {
            retire_row(tx, null)?;
        }
    }
    let seq: i64 = tx
        .query_row(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM object_versions WHERE bucket = ?1 AND key = ?2",
            params![bucket, key],
            |r| r.get(0),
        )
        .map_err(backend)?;
    let now = millis(SystemTime::now());
    let version_id = new.version_id.as_str();
    match &new.state {
        VersionState::Committed(meta) => {
            store_committed(tx, id, seq, version_id, now, meta).map_err(backend)?;
            if let Some(cid) = meta.cid {
                match new.claim {
                    Some(claim) => take_claim(tx, claim, &cid.to_bytes())?,
                    None => add_ref_to_stored(tx, &cid.to_bytes(), meta.size)?,
                }
            }
        }
        _ => {
            tx.execute(
                "UPDATE object_versions SET state = ?2, seq = ?3, version_id = ?4, modified_at = ?5 WHERE id = ?1",
                params![id, DELETE_MARKER, seq, version_id, now],
            )
            .map_err(backend)?;
        }
    }
    let mut rows = select_versions(tx, "id = ?1", &[&id]).map_err(backend)?;
    rows.pop().ok_or_else(|| backend("committed row vanished"))
}

/// Retires a visible row and releases its content reference.
fn retire_row(tx: &rusqlite::Transaction<'_>, id: i64) -> Result<(), MetaError> {
    let cid: Option<Vec<u8>> = tx
        .query_row("UPDATE object_versions SET retired = 1 WHERE id = ?1 RETURNING cid", params![id], |r| r.get(0))
        .map_err(backend)?;
    match cid {
        Some(cid) => drop_ref(tx, &cid),
        None => Ok(()),
    }
}

fn insert_pending(tx: &rusqlite::Transaction<'_>, bucket: &str, key: &str) -> Result<i64, MetaError> {
    let exists: bool = tx
        .query_row("SELECT EXISTS (SELECT 1 FROM buckets WHERE name = ?1)", params![bucket], |r| r.get(0))
        .map_err(backend)?;
    if !exists {
        return Err(MetaError::NoSuchBucket);
    }
    tx.execute(
        "INSERT INTO object_versions (bucket, key, version_id, state, modified_at) VALUES (?1, ?2, 'null', ?3, ?4)",
        params![bucket, key, PENDING, millis(SystemTime::now())],
    )
    .map_err(backend)?;
    Ok(tx.last_insert_rowid())
}

pub(crate) fn immediate(conn: &mut Connection) -> Result<rusqlite::Transaction<'_>, MetaError> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)
}

#[async_trait]
impl MetaStore for SqliteMeta {
    async fn create_user(&self, email: &str) -> Result<User, MetaError> {
        let email = email.to_owned();
        self.with(move |conn| {
            let now = SystemTime::now();
            match conn.execute("INSERT INTO users (email, created_at) VALUES (?1, ?2)", params![email, millis(now)]) {
                Ok(_) => Ok(User { id: UserId(conn.last_insert_rowid()), email, created_at: from_millis(millis(now)) }),
                Err(e) if is_unique_violation(&e) => Err(MetaError::EmailTaken),
                Err(e) => Err(backend(e)),
            }
        })
        .await
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>, MetaError> {
        let email = email.to_owned();
        self.with(move |conn| {
            conn.query_row("SELECT id, email, created_at FROM users WHERE email = ?1", params![email], |r| {
                Ok(User { id: UserId(r.get(0)?), email: r.get(1)?, created_at: from_millis(r.get(2)?) })
            })
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn add_access_key(&self, key: &AccessKey) -> Result<(), MetaError> {
        let key = key.clone();
        self.with(move |conn| {
            match conn.execute(
                "INSERT INTO access_keys (id, secret, user_id) VALUES (?1, ?2, ?3)",
                params![key.id, key.secret, key.user.0],
            ) {
                Ok(_) => Ok(()),
                Err(e) if is_unique_violation(&e) => Err(MetaError::KeyExists),
                Err(e) => Err(backend(e)),
            }
        })
        .await
    }

    async fn access_key(&self, id: &str) -> Result<Option<AccessKey>, MetaError> {
        let id = id.to_owned();
        self.with(move |conn| {
            conn.query_row("SELECT id, secret, user_id FROM access_keys WHERE id = ?1", params![id], |r| {
                Ok(AccessKey { id: r.get(0)?, secret: r.get(1)?, user: UserId(r.get(2)?) })
            })
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn create_bucket(&self, bucket: &Bucket) -> Result<(), MetaError> {
        let bucket = bucket.clone();
        self.with(move |conn| {
            let tx = immediate(conn)?;
            let owner: Option<i64> = tx
                .query_row("SELECT owner FROM buckets WHERE name = ?1", params![bucket.name.as_str()], |r| r.get(0))
                .optional()
                .map_err(backend)?;
            if let Some(owner) = owner {
                return Err(MetaError::BucketExists { owner: UserId(owner) });
            }
            tx.execute(
                "INSERT INTO buckets (name, owner, created_at, versioning) VALUES (?1, ?2, ?3, ?4)",
                params![
                    bucket.name.as_str(),
                    bucket.owner.0,
                    millis(bucket.created_at),
                    versioning_code(bucket.versioning)
                ],
            )
            .map_err(backend)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn bucket(&self, name: &BucketName) -> Result<Option<Bucket>, MetaError> {
        let name = name.clone();
        self.with(move |conn| {
            conn.query_row(
                "SELECT name, owner, created_at, versioning FROM buckets WHERE name = ?1",
                params![name.as_str()],
                bucket_from_row,
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn buckets_of(&self, owner: UserId) -> Result<Vec<Bucket>, MetaError> {
        self.with(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT name, owner, created_at, versioning FROM buckets WHERE owner = ?1 ORDER BY name",
                )
                .map_err(backend)?;
            let rows = stmt.query_map(params![owner.0], bucket_from_row).map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)
        })
        .await
    }

    async fn set_versioning(&self, name: &BucketName, versioning: Versioning) -> Result<(), MetaError> {
        let name = name.clone();
        self.with(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE buckets SET versioning = ?2 WHERE name = ?1",
                    params![name.as_str(), versioning_code(versioning)],
                )
                .map_err(backend)?;
            if changed == 0 { Err(MetaError::NoSuchBucket) } else { Ok(()) }
        })
        .await
    }

    async fn delete_bucket(&self, name: &BucketName) -> Result<(), MetaError> {
        let name = name.clone();
        self.with(move |conn| {
            let tx = immediate(conn)?;
            let nonempty: bool = tx
                .query_row(
                    &format!("SELECT EXISTS (SELECT 1 FROM object_versions WHERE bucket = ?1 AND {VISIBLE})"),
                    params![name.as_str()],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            if nonempty {
                return Err(MetaError::BucketNotEmpty);
            }
            let uploads: Vec<String> = tx
                .prepare("SELECT id FROM multipart_uploads WHERE bucket = ?1")
                .and_then(|mut s| s.query_map(params![name.as_str()], |r| r.get(0))?.collect())
                .map_err(backend)?;
            for upload in uploads {
                remove_upload(&tx, &upload)?;
            }
            if tx.execute("DELETE FROM buckets WHERE name = ?1", params![name.as_str()]).map_err(backend)? == 0 {
                return Err(MetaError::NoSuchBucket);
            }
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn begin_version(&self, bucket: &BucketName, key: &ObjectKey) -> Result<UploadId, MetaError> {
        let (bucket, key) = (bucket.clone(), key.clone());
        // A crash before the commit loses nothing a client was told: recovery would abort the pending row anyway.
        self.with_unsynced(move |conn| {
            let tx = immediate(conn)?;
            let id = insert_pending(&tx, bucket.as_str(), key.as_str())?;
            tx.commit().map_err(backend)?;
            Ok(UploadId(id))
        })
        .await
    }

    async fn commit_version(&self, upload: UploadId, new: NewVersion) -> Result<ObjectVersion, MetaError> {
        self.with(move |conn| {
            let tx = immediate(conn)?;
            let version = commit_row(&tx, upload.0, &new)?;
            tx.commit().map_err(backend)?;
            Ok(version)
        })
        .await
    }

    async fn abort_version(&self, upload: UploadId) -> Result<(), MetaError> {
        self.with_unsynced(move |conn| {
            conn.execute(
                "UPDATE object_versions SET state = ?2 WHERE id = ?1 AND state = ?3",
                params![upload.0, ABORTED, PENDING],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn append_version(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        new: NewVersion,
    ) -> Result<ObjectVersion, MetaError> {
        let (bucket, key) = (bucket.clone(), key.clone());
        // A crash before the commit loses nothing a client was told: recovery would abort the pending row anyway.
        self.with_unsynced(move |conn| {
            let tx = immediate(conn)?;
            let id = insert_pending(&tx, bucket.as_str(), key.as_str())?;
            let version = commit_row(&tx, id, &new)?;
            tx.commit().map_err(backend)?;
            Ok(version)
        })
        .await
    }

    async fn retire_version(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version_id: &VersionId,
    ) -> Result<Option<ObjectVersion>, MetaError> {
        let (bucket, key, version_id) = (bucket.clone(), key.clone(), version_id.clone());
        self.with(move |conn| {
            let tx = immediate(conn)?;
            let id: Option<i64> = tx
                .query_row(
                    &format!("SELECT id FROM object_versions WHERE bucket = ?1 AND key = ?2 AND version_id = ?3 AND {VISIBLE}"),
                    params![bucket.as_str(), key.as_str(), version_id.as_str()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend)?;
            let Some(id) = id else { return Ok(None) };
            retire_row(&tx, id)?;
            let version = select_versions(&tx, "id = ?1", &[&id]).map_err(backend)?.pop();
            tx.commit().map_err(backend)?;
            Ok(version)
        })
        .await
    }

    async fn latest_version(&self, bucket: &BucketName, key: &ObjectKey) -> Result<Option<ObjectVersion>, MetaError> {
        let (bucket, key) = (bucket.clone(), key.clone());
        self.with(move |conn| {
            let found = select_versions(
                conn,
                &format!("bucket = ?1 AND key = ?2 AND {VISIBLE} ORDER BY seq DESC LIMIT 1"),
                &[&bucket.as_str(), &key.as_str()],
            );
            found.map(|mut v| v.pop()).map_err(backend)
        })
        .await
    }

    async fn find_version(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version_id: &VersionId,
    ) -> Result<Option<ObjectVersion>, MetaError> {
        let (bucket, key, version_id) = (bucket.clone(), key.clone(), version_id.clone());
        self.with(move |conn| {
            let found = select_versions(
                conn,
                &format!("bucket = ?1 AND key = ?2 AND version_id = ?3 AND {VISIBLE} LIMIT 1"),
                &[&bucket.as_str(), &key.as_str(), &version_id.as_str()],
            );
            found.map(|mut v| v.pop()).map_err(backend)
        })
        .await
    }

    async fn list_latest(
        &self,
        bucket: &BucketName,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ObjectVersion>, MetaError> {
        let (bucket, prefix, after) = (bucket.clone(), prefix.to_owned(), after.map(str::to_owned));
        let end = prefix_end(&prefix);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(move |conn| {
            let sql = format!(
                "bucket = ?1 AND key >= ?2 AND (?5 IS NULL OR key < ?5) AND (?3 IS NULL OR key > ?3) \
                 AND state = 1 AND retired = 0 AND seq = (SELECT MAX(w.seq) FROM object_versions w \
                     WHERE w.bucket = v.bucket AND w.key = v.key AND w.{VISIBLE}) \
                 ORDER BY key LIMIT ?4"
            );
            select_versions(conn, &sql, &[&bucket.as_str(), &prefix, &after, &limit, &end]).map_err(backend)
        })
        .await
    }

    async fn list_versions(
        &self,
        bucket: &BucketName,
        prefix: &str,
        after: Option<(&str, u64)>,
        limit: usize,
    ) -> Result<Vec<ObjectVersion>, MetaError> {
        let (bucket, prefix) = (bucket.clone(), prefix.to_owned());
        let (after_key, after_seq) = match after {
            Some((k, s)) => (Some(k.to_owned()), i64::try_from(s).unwrap_or(i64::MAX)),
            None => (None, 0),
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let end = prefix_end(&prefix);
        self.with(move |conn| {
            let sql = format!(
                "bucket = ?1 AND key >= ?2 AND (?6 IS NULL OR key < ?6) AND {VISIBLE} \
                 AND (?3 IS NULL OR key > ?3 OR (key = ?3 AND seq < ?4)) ORDER BY key, seq DESC LIMIT ?5"
            );
            let params: [&dyn rusqlite::ToSql; 6] = [&bucket.as_str(), &prefix, &after_key, &after_seq, &limit, &end];
            select_versions(conn, &sql, &params).map_err(backend)
        })
        .await
    }

    async fn content_refs(&self, cid: &Cid) -> Result<u64, MetaError> {
        let cid = cid.to_bytes();
        self.with(move |conn| {
            let count: Option<i64> = conn
                .query_row("SELECT refcount FROM content WHERE cid = ?1", params![cid], |r| r.get(0))
                .optional()
                .map_err(backend)?;
            Ok(count.map_or(0, |c| u64::try_from(c).unwrap_or(0)))
        })
        .await
    }

    async fn abort_stale(&self, before: SystemTime) -> Result<u64, MetaError> {
        self.with(move |conn| {
            let tx = immediate(conn)?;
            let n = tx
                .execute(
                    "UPDATE object_versions SET state = ?1 WHERE state = ?2 AND modified_at < ?3",
                    params![ABORTED, PENDING, millis(before)],
                )
                .map_err(backend)?;
            release_stale_claims(&tx, before)?;
            tx.commit().map_err(backend)?;
            Ok(n as u64)
        })
        .await
    }

    async fn claim_content(&self, cid: &Cid, size: u64) -> Result<ClaimId, MetaError> {
        self.sql_claim_content(cid, size).await
    }

    async fn release_claim(&self, claim: ClaimId) -> Result<(), MetaError> {
        self.sql_release_claim(claim).await
    }

    async fn collectable_content(
        &self,
        cutoff: SystemTime,
        after: Option<&Cid>,
        limit: usize,
    ) -> Result<Vec<StoredContent>, MetaError> {
        self.sql_collectable_content(cutoff, after, limit).await
    }

    async fn mark_collectable(&self, cutoff: SystemTime, limit: usize) -> Result<Vec<StoredContent>, MetaError> {
        self.sql_mark_collectable(cutoff, limit).await
    }

    async fn forget_content(&self, cids: &[Cid]) -> Result<(), MetaError> {
        self.sql_forget_content(cids).await
    }

    async fn acquire_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, MetaError> {
        self.sql_acquire_lease(name, holder, ttl).await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), MetaError> {
        self.sql_release_lease(name, holder).await
    }

    async fn create_multipart(&self, upload: &MultipartUpload) -> Result<(), MetaError> {
        self.sql_create_multipart(upload).await
    }

    async fn multipart(&self, id: &str) -> Result<Option<MultipartUpload>, MetaError> {
        self.sql_multipart(id).await
    }

    async fn put_part(
        &self,
        upload_id: &str,
        part: &UploadPart,
        claim: ClaimId,
    ) -> Result<Option<UploadPart>, MetaError> {
        self.sql_put_part(upload_id, part, claim).await
    }

    async fn parts(&self, upload_id: &str, after: u32, limit: usize) -> Result<Vec<UploadPart>, MetaError> {
        self.sql_parts(upload_id, after, limit).await
    }

    async fn multiparts(
        &self,
        bucket: &BucketName,
        prefix: &str,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<MultipartUpload>, MetaError> {
        self.sql_multiparts(bucket, prefix, after, limit).await
    }

    async fn remove_multipart(&self, id: &str) -> Result<Vec<UploadPart>, MetaError> {
        self.sql_remove_multipart(id).await
    }

    async fn stale_multiparts(&self, before: SystemTime) -> Result<Vec<MultipartUpload>, MetaError> {
        self.sql_stale_multiparts(before).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    mod conformance {
        async fn fresh() -> crate::SqliteMeta {
            crate::SqliteMeta::open_in_memory().expect("in-memory database")
        }

        s3ipfs_core::meta_conformance_tests!(fresh);
    }

    #[tokio::test]
    async fn committed_versions_survive_reopening_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("meta.sqlite");
        let bucket = BucketName::parse("durable").expect("valid");
        let key = ObjectKey::parse("k").expect("valid");
        {
            let store = SqliteMeta::open(&path).expect("open");
            let user = store.create_user("d@example.com").await.expect("user");
            let b = Bucket {
                name: bucket.clone(),
                owner: user.id,
                created_at: SystemTime::now(),
                versioning: Versioning::Enabled,
            };
            store.create_bucket(&b).await.expect("bucket");
            let up = store.begin_version(&bucket, &key).await.expect("begin");
            let meta = s3ipfs_core::ObjectMeta { size: 3, etag: "\"e\"".into(), ..Default::default() };
            let new = NewVersion::new(VersionId::generate(), VersionState::Committed(Box::new(meta)), false);
            store.commit_version(up, new).await.expect("commit");
            store.begin_version(&bucket, &key).await.expect("an upload a crash interrupts");
        }
        let store = SqliteMeta::open(&path).expect("reopen");
        let latest = store.latest_version(&bucket, &key).await.expect("latest").expect("survived");
        assert_eq!(latest.meta().map(|m| m.size), Some(3));
        assert_eq!(store.abort_stale(SystemTime::now() + std::time::Duration::from_secs(1)).await.expect("sweep"), 1);
    }
}
