//! The embedded `MetaStore`: one SQLite file (WAL, `synchronous=FULL`: a commit is on disk before it is
//! acknowledged), migrated with refinery. One writer connection behind a mutex serializes writes, as SQLite does
//! anyway; lookups and listings use a small pool of read-only connections, so they never queue behind an fsync'd
//! commit (WAL lets readers run beside the writer, each seeing every transaction committed before it began). Every
//! call runs on tokio's blocking pool.

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

use crate::codec::{from_millis, millis, prefix_end};
use crate::sqlite_content::{add_ref_to_stored, drop_ref, release_stale_claims, take_claim};
use crate::sqlite_multipart::remove_upload;
use crate::sqlite_rows::{ABORTED, DELETE_MARKER, PENDING, VERSION_COLUMNS, store_committed, version_from_row};
use s3ipfs_core::meta::{heartbeat_lease, list_grouped_by_seeks};

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
    /// A temporary directory could not be created.
    #[error("creating a temporary database: {0}")]
    Temporary(String),
}

/// Read-only connections beside the writer (none for an in-memory database, which only its writer can see).
const READERS: usize = 4;

/// The embedded metadata store.
#[derive(Debug, Clone)]
pub struct SqliteMeta {
    conn: Arc<Mutex<Connection>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    replica: String,
    /// The directory of a temporary database, removed with the last handle.
    _temporary: Option<Arc<tempfile::TempDir>>,
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

/// A row (pending version or claim) whose replica's heartbeat has stopped; `?4` is now.
pub(crate) const ORPHANED: &str = "NOT EXISTS (SELECT 1 FROM leases WHERE leases.name = 'replica:' || replica \
     AND leases.holder = replica AND leases.expires_at > ?4)";

/// [`VERSION_COLUMNS`] of the versions a head names (`v`).
const HEAD_VERSION_COLUMNS: &str = "v.bucket, v.key, v.seq, v.version_id, v.state, v.retired, v.modified_at, v.cid, \
     v.size, v.etag, v.md5, v.crc32, v.crc32c, v.crc64nvme, v.sha1, v.sha256, v.content_type, v.content_encoding, \
     v.content_disposition, v.content_language, v.cache_control, v.expires, v.user_meta, v.composite_checksum, \
     v.part_sizes";

impl SqliteMeta {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: &Path) -> Result<Self, SqliteOpenError> {
        let mut store = Self::configure(Connection::open(path)?)?;
        let readers = (0..READERS).map(|_| Self::reader(path)).collect::<Result<_, _>>()?;
        store.readers = Arc::new(Mutex::new(readers));
        Ok(store)
    }

    /// A database in a new temporary directory, removed when the last handle is dropped (tests and benchmarks).
    pub fn open_temporary() -> Result<Self, SqliteOpenError> {
        let dir = tempfile::tempdir().map_err(|e| SqliteOpenError::Temporary(e.to_string()))?;
        let mut store = Self::open(&dir.path().join("meta.sqlite"))?;
        store._temporary = Some(Arc::new(dir));
        Ok(store)
    }

    /// A private in-memory database (tests).
    pub fn open_in_memory() -> Result<Self, SqliteOpenError> {
        Self::configure(Connection::open_in_memory()?)
    }

    /// A handle on the same database writing for another replica (tests of several processes on one store).
    pub fn peer(&self, replica: &str) -> Self {
        SqliteMeta { replica: replica.to_owned(), ..self.clone() }
    }

    fn reader(path: &Path) -> Result<Connection, SqliteOpenError> {
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        // Opens the WAL and its index now, so a reader holds the same files for its whole life.
        conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |_| Ok(()))?;
        Ok(conn)
    }

    fn configure(mut conn: Connection) -> Result<Self, SqliteOpenError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(Duration::from_secs(5))?;
        embedded::migrations::runner().run(&mut conn)?;
        Ok(SqliteMeta {
            conn: Arc::new(Mutex::new(conn)),
            readers: Arc::default(),
            replica: s3ipfs_core::meta::new_replica_name(),
            _temporary: None,
        })
    }

    /// Runs the read-only `f` on a reader connection (the writer when there is none free) on the blocking pool.
    pub(crate) async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, MetaError> + Send + 'static,
    ) -> Result<T, MetaError> {
        let (readers, writer) = (Arc::clone(&self.readers), Arc::clone(&self.conn));
        tokio::task::spawn_blocking(move || {
            let reader = readers.lock().map_err(|_| backend("metadata readers poisoned"))?.pop();
            match reader {
                Some(conn) => {
                    let result = f(&conn);
                    readers.lock().map_err(|_| backend("metadata readers poisoned"))?.push(conn);
                    result
                }
                None => {
                    let guard = writer.lock().map_err(|_| backend("metadata connection poisoned"))?;
                    f(&guard)
                }
            }
        })
        .await
        .map_err(backend)?
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

/// The newest visible version of a key, through its head row.
fn latest_in(conn: &Connection, bucket: &str, key: &str) -> Result<Option<ObjectVersion>, MetaError> {
    let sql = "id = (SELECT latest_id FROM object_heads WHERE bucket = ?1 AND key = ?2)";
    select_versions(conn, sql, &[&bucket, &key]).map(|mut v| v.pop()).map_err(backend)
}

/// The latest versions the heads of `keys` name, in the order of `keys` (chunks of 500 keys per statement).
fn versions_of_heads(conn: &Connection, bucket: &str, keys: &[String]) -> Result<Vec<ObjectVersion>, MetaError> {
    let mut found = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let sql = format!(
            "SELECT {HEAD_VERSION_COLUMNS} FROM object_heads h JOIN object_versions v ON v.id = h.latest_id \
             WHERE h.bucket = ? AND h.latest_object = 1 AND h.key IN ({marks}) ORDER BY h.key"
        );
        let mut stmt = conn.prepare(&sql).map_err(backend)?;
        let mut values: Vec<&dyn rusqlite::ToSql> = vec![&bucket];
        values.extend(chunk.iter().map(|k| k as &dyn rusqlite::ToSql));
        let rows = stmt.query_map(values.as_slice(), version_from_row).map_err(backend)?;
        found.extend(rows.collect::<Result<Vec<_>, _>>().map_err(backend)?);
    }
    Ok(found)
}

/// Points the head of `bucket`/`key` at its newest visible version (after a retirement).
fn refresh_head(tx: &rusqlite::Transaction<'_>, bucket: &str, key: &str) -> Result<(), MetaError> {
    tx.execute(
        &format!(
            "UPDATE object_heads SET latest_id = (SELECT id FROM object_versions WHERE bucket = ?1 AND key = ?2 \
                 AND {VISIBLE} ORDER BY seq DESC LIMIT 1), \
             latest_object = COALESCE((SELECT state = 1 FROM object_versions WHERE bucket = ?1 AND key = ?2 \
                 AND {VISIBLE} ORDER BY seq DESC LIMIT 1), 0) \
             WHERE bucket = ?1 AND key = ?2"
        ),
        params![bucket, key],
    )
    .map_err(backend)?;
    Ok(())
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
            "INSERT INTO object_heads (bucket, key, last_seq) VALUES (?1, ?2, 1) \
             ON CONFLICT (bucket, key) DO UPDATE SET last_seq = last_seq + 1 RETURNING last_seq",
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
    let is_object = matches!(new.state, VersionState::Committed(_));
    tx.execute(
        "UPDATE object_heads SET latest_id = ?3, latest_object = ?4 WHERE bucket = ?1 AND key = ?2",
        params![bucket, key, id, is_object],
    )
    .map_err(backend)?;
    let mut rows = select_versions(tx, "id = ?1", &[&id]).map_err(backend)?;
    rows.pop().ok_or_else(|| backend("committed row vanished"))
}

/// Retires a visible row and releases its content reference, exactly once: a row that is not visible any more is
/// an error.
fn retire_row(tx: &rusqlite::Transaction<'_>, id: i64) -> Result<(), MetaError> {
    let cid: Option<Option<Vec<u8>>> = tx
        .query_row(
            &format!(
                "UPDATE object_versions SET retired = 1, retired_at = ?2 WHERE id = ?1 AND {VISIBLE} RETURNING cid"
            ),
            params![id, millis(SystemTime::now())],
            |r| r.get(0),
        )
        .optional()
        .map_err(backend)?;
    match cid {
        Some(Some(cid)) => drop_ref(tx, &cid),
        Some(None) => Ok(()),
        None => Err(MetaError::Invalid("only a visible version can be retired")),
    }
}

fn insert_pending(tx: &rusqlite::Transaction<'_>, bucket: &str, key: &str, replica: &str) -> Result<i64, MetaError> {
    let exists: bool = tx
        .query_row("SELECT EXISTS (SELECT 1 FROM buckets WHERE name = ?1)", params![bucket], |r| r.get(0))
        .map_err(backend)?;
    if !exists {
        return Err(MetaError::NoSuchBucket);
    }
    tx.execute(
        "INSERT INTO object_versions (bucket, key, version_id, state, modified_at, replica) \
         VALUES (?1, ?2, 'null', ?3, ?4, ?5)",
        params![bucket, key, PENDING, millis(SystemTime::now()), replica],
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
        self.read(move |conn| {
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

    async fn remove_access_key(&self, id: &str) -> Result<bool, MetaError> {
        let id = id.to_owned();
        self.with(move |conn| {
            conn.execute("DELETE FROM access_keys WHERE id = ?1", params![id]).map(|n| n > 0).map_err(backend)
        })
        .await
    }

    async fn access_key(&self, id: &str) -> Result<Option<AccessKey>, MetaError> {
        let id = id.to_owned();
        self.read(move |conn| {
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
        self.read(move |conn| {
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
        self.read(move |conn| {
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
        let (bucket, key, replica) = (bucket.clone(), key.clone(), self.replica.clone());
        // A crash before the commit loses nothing a client was told: recovery would abort the pending row anyway.
        self.with_unsynced(move |conn| {
            let tx = immediate(conn)?;
            let id = insert_pending(&tx, bucket.as_str(), key.as_str(), &replica)?;
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
        let (bucket, key, replica) = (bucket.clone(), key.clone(), self.replica.clone());
        // Acknowledged once it returns: durable like every commit.
        self.with(move |conn| {
            let tx = immediate(conn)?;
            let id = insert_pending(&tx, bucket.as_str(), key.as_str(), &replica)?;
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
            refresh_head(&tx, bucket.as_str(), key.as_str())?;
            let version = select_versions(&tx, "id = ?1", &[&id]).map_err(backend)?.pop();
            tx.commit().map_err(backend)?;
            Ok(version)
        })
        .await
    }

    async fn latest_version(&self, bucket: &BucketName, key: &ObjectKey) -> Result<Option<ObjectVersion>, MetaError> {
        let (bucket, key) = (bucket.clone(), key.clone());
        self.read(move |conn| latest_in(conn, bucket.as_str(), key.as_str())).await
    }

    async fn find_version(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version_id: &VersionId,
    ) -> Result<Option<ObjectVersion>, MetaError> {
        let (bucket, key, version_id) = (bucket.clone(), key.clone(), version_id.clone());
        self.read(move |conn| {
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
        // Lower and upper bounds as plain range conditions, so the planner walks the index between them.
        let (lower, strict) = match after {
            Some(after) if after >= prefix => (after, true),
            _ => (prefix, false),
        };
        self.read(move |conn| {
            let sql = format!(
                "SELECT {HEAD_VERSION_COLUMNS} FROM object_heads h JOIN object_versions v ON v.id = h.latest_id \
                 WHERE h.bucket = ?1 AND h.latest_object = 1 AND h.key {} ?2 {} ORDER BY h.key LIMIT ?3",
                if strict { ">" } else { ">=" },
                if end.is_some() { "AND h.key < ?4" } else { "AND ?4 IS NULL" },
            );
            let mut stmt = conn.prepare_cached(&sql).map_err(backend)?;
            let rows =
                stmt.query_map(params![bucket.as_str(), lower, limit, end], version_from_row).map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)
        })
        .await
    }

    async fn list_latest_grouped(
        &self,
        bucket: &BucketName,
        prefix: &str,
        delimiter: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ObjectVersion>, MetaError> {
        let (bucket, prefix, delimiter) = (bucket.clone(), prefix.to_owned(), delimiter.to_owned());
        let after = after.map(str::to_owned);
        let end = prefix_end(&prefix);
        // Every seek in one call on a reader, and on the key index alone: a group costs one index seek, not a trip
        // through the blocking pool. The versions of the keys found are read afterwards in one statement.
        self.read(move |conn| {
            // One read transaction: the seeks and the versions read after them see one snapshot.
            let snapshot = conn.unchecked_transaction().map_err(backend)?;
            let keys = list_grouped_by_seeks(&prefix, &delimiter, after.as_deref(), limit, String::as_str, |cursor| {
                let (lower, strict) = match cursor {
                    Some(cursor) if cursor >= prefix.as_str() => (cursor, true),
                    _ => (prefix.as_str(), false),
                };
                let sql = format!(
                    "SELECT h.key FROM object_heads h WHERE h.bucket = ?1 AND h.latest_object = 1 AND h.key {} ?2 {} \
                     ORDER BY h.key LIMIT 1",
                    if strict { ">" } else { ">=" },
                    if end.is_some() { "AND h.key < ?3" } else { "AND ?3 IS NULL" },
                );
                let mut stmt = conn.prepare_cached(&sql).map_err(backend)?;
                stmt.query_row(params![bucket.as_str(), lower, end], |r| r.get(0)).optional().map_err(backend)
            })?;
            let versions = versions_of_heads(conn, bucket.as_str(), &keys)?;
            snapshot.finish().map_err(backend)?;
            Ok(versions)
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
        self.read(move |conn| {
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
        self.read(move |conn| {
            let count: Option<i64> = conn
                .query_row("SELECT refcount FROM content WHERE cid = ?1", params![cid], |r| r.get(0))
                .optional()
                .map_err(backend)?;
            Ok(count.map_or(0, |c| u64::try_from(c).unwrap_or(0)))
        })
        .await
    }

    fn replica(&self) -> &str {
        &self.replica
    }

    async fn heartbeat(&self, ttl: Duration) -> Result<(), MetaError> {
        let replica = self.replica.clone();
        self.with_unsynced(move |conn| {
            let now = SystemTime::now();
            conn.execute(
                "INSERT INTO leases (name, holder, expires_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (name) DO UPDATE SET holder = ?2, expires_at = ?3",
                params![heartbeat_lease(&replica), replica, millis(now + ttl)],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn abort_orphans(&self, before: SystemTime) -> Result<u64, MetaError> {
        self.with(move |conn| {
            let tx = immediate(conn)?;
            let n = tx
                .execute(
                    &format!(
                        "UPDATE object_versions SET state = ?1 WHERE state = ?2 AND (modified_at < ?3 OR {ORPHANED})"
                    ),
                    params![ABORTED, PENDING, millis(before), millis(SystemTime::now())],
                )
                .map_err(backend)?;
            release_stale_claims(&tx, before)?;
            tx.commit().map_err(backend)?;
            Ok(n as u64)
        })
        .await
    }

    async fn prune_history(&self, before: SystemTime, limit: usize) -> Result<u64, MetaError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with_unsynced(move |conn| {
            // Deleting history changes nothing a client can see: a crash that loses it prunes it again.
            let n = conn
                .execute(
                    "DELETE FROM object_versions WHERE id IN ( \
                         SELECT id FROM object_versions WHERE state = ?1 AND modified_at < ?2 \
                         UNION ALL SELECT id FROM object_versions WHERE retired = 1 AND retired_at < ?2 \
                     LIMIT ?3)",
                    params![ABORTED, millis(before), limit],
                )
                .map_err(backend)?;
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

    fn peer(store: &SqliteMeta, replica: &str) -> SqliteMeta {
        store.peer(replica)
    }

    /// On a file, with the reader pool beside the writer.
    mod conformance {
        async fn fresh() -> crate::SqliteMeta {
            crate::SqliteMeta::open_temporary().expect("temporary database")
        }

        s3ipfs_core::meta_conformance_tests!(fresh, super::peer);
    }

    /// In memory, where the writer also reads.
    mod conformance_in_memory {
        async fn fresh() -> crate::SqliteMeta {
            crate::SqliteMeta::open_in_memory().expect("in-memory database")
        }

        s3ipfs_core::meta_conformance_tests!(fresh, super::peer);
    }

    #[tokio::test]
    async fn a_reference_count_that_would_go_below_zero_is_an_error_and_changes_nothing() {
        let store = SqliteMeta::open_in_memory().expect("store");
        let user = store.create_user("u@example.com").await.expect("user");
        let bucket = BucketName::parse("under").expect("valid");
        let b = Bucket {
            name: bucket.clone(),
            owner: user.id,
            created_at: SystemTime::now(),
            versioning: Versioning::Enabled,
        };
        store.create_bucket(&b).await.expect("bucket");
        let key = ObjectKey::parse("k").expect("valid");
        let cid = Cid::v1(s3ipfs_cid::cid::RAW, [9; 32]);
        let meta = s3ipfs_core::ObjectMeta { cid: Some(cid), size: 1, etag: "\"e\"".into(), ..Default::default() };
        let mut new = NewVersion::new(VersionId::generate(), VersionState::Committed(Box::new(meta)), false);
        new.claim = Some(store.claim_content(&cid, 1).await.expect("claim"));
        let upload = store.begin_version(&bucket, &key).await.expect("begin");
        let version = store.commit_version(upload, new).await.expect("commit");
        store.with(|conn| conn.execute("UPDATE content SET refcount = 0", []).map_err(backend)).await.expect("corrupt");
        let retired = store.retire_version(&bucket, &key, &version.version_id).await;
        assert!(
            matches!(&retired, Err(MetaError::Backend { message }) if message.contains("underflow")),
            "{retired:?}"
        );
        assert_eq!(store.latest_version(&bucket, &key).await.expect("latest"), Some(version), "rolled back");
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
        assert_eq!(store.abort_orphans(SystemTime::now() + std::time::Duration::from_secs(1)).await.expect("sweep"), 1);
    }
}
