//! The production `MetaStore`: PostgreSQL through a `deadpool-postgres` pool, migrated with refinery.
//!
//! Every guarantee of the `MetaStore` contract holds across any number of gateway processes sharing the database:
//! - a key's commits serialize on its `object_heads` row (an upsert that hands out the next sequence number takes
//!   the row lock), so sequence numbers are unique and ordered, and conditions and `null` replacement are decided
//!   against the newest committed state;
//! - a retirement updates only a visible row and a reference is dropped only from a positive count (a CHECK keeps it
//!   from going below zero), so each happens exactly once;
//! - a transaction that loses a deadlock or serialization race is retried whole;
//! - a lost connection or a database that is restarting is [`MetaError::Unavailable`] (S3's 503), and the pool
//!   replaces broken connections, so later requests succeed without restarting the gateway.

mod content;
mod multipart;
mod rows;

use std::str::FromStr;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use s3ipfs_cid::Cid;
use s3ipfs_core::meta::common_prefix;
use s3ipfs_core::{
    AccessKey, Bucket, BucketName, ClaimId, MetaError, MetaStore, MultipartUpload, NewVersion, ObjectKey,
    ObjectVersion, StoredContent, UploadId, UploadPart, User, UserId, VersionId, VersionState, Versioning,
};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use crate::codec::{from_millis, millis, prefix_end};
use rows::{
    ABORTED, COMMITTED, ChecksumParams, DELETE_MARKER, PENDING, VERSION_COLUMNS, bucket_from_row, user_meta_json,
    version_from_row, versioning_code,
};

mod embedded {
    refinery::embed_migrations!("../../migrations/postgres");
}

/// Visible rows of `object_versions` aliased `v`: committed objects and delete markers not retired.
const VISIBLE: &str = "NOT v.retired AND v.state IN (1, 2) AND v.seq > 0";

/// How often a transaction that lost a deadlock or serialization race is tried again.
const RETRIES: u32 = 8;

/// An arbitrary constant: the advisory lock that makes concurrent `migrate` runs take turns.
const MIGRATION_LOCK: i64 = 0x5331_5046_534d_4947;

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct PgSettings {
    /// `postgres://user:password@host:port/database` (libpq URL or key=value form).
    pub url: String,
    /// Most connections the pool opens.
    pub pool_size: usize,
    /// How long opening a connection may take.
    pub connect_timeout: Duration,
    /// How long one statement may run before the server cancels it.
    pub statement_timeout: Duration,
    /// How long a request waits for a free connection.
    pub acquire_timeout: Duration,
}

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum PgOpenError {
    /// The URL does not parse.
    #[error("the database URL is not valid: {0}")]
    Url(String),
    /// The database cannot be reached or refused the login.
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(String),
    /// A migration failed; its transaction was rolled back, so the schema is as it was.
    #[error("migrating the PostgreSQL schema failed (the schema is unchanged): {0}")]
    Migration(String),
    /// The database holds migrations this binary does not know.
    #[error("the PostgreSQL schema is at version {found}, newer than this binary knows ({known}): run a newer s3ipfs")]
    SchemaTooNew {
        /// The database's schema version.
        found: i32,
        /// The newest version this binary has.
        known: i32,
    },
    /// Migrations are off and the database lacks some.
    #[error(
        "the PostgreSQL schema is at version {found}, older than this binary needs ({known}): run `s3ipfs migrate`"
    )]
    SchemaTooOld {
        /// The database's schema version (0: none).
        found: i32,
        /// The newest version this binary has.
        known: i32,
    },
}

/// The PostgreSQL metadata store. Cheap to clone: clones share the pools.
#[derive(Clone)]
pub struct PgMeta {
    /// Connections whose commits are durable before they return (`synchronous_commit` as the server has it).
    pool: Pool,
    /// Connections for records crash recovery discards anyway (a pending version, a claim, their release, a
    /// heartbeat, history pruning): committed without waiting for the WAL flush. The WAL is one sequence, so the next
    /// durable commit (the version that takes a claim over) flushes them first: no durable commit can depend on a
    /// record a crash lost.
    soft: Pool,
    replica: String,
}

impl std::fmt::Debug for PgMeta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgMeta").field("replica", &self.replica).finish_non_exhaustive()
    }
}

/// Why a statement or transaction failed, before it is told to the caller.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The database said no, or the connection broke.
    Db(tokio_postgres::Error),
    /// No connection could be had.
    Pool(PoolError),
    /// A rule of the contract refused the operation.
    Meta(MetaError),
}

impl From<tokio_postgres::Error> for Failure {
    fn from(err: tokio_postgres::Error) -> Self {
        Failure::Db(err)
    }
}

impl From<PoolError> for Failure {
    fn from(err: PoolError) -> Self {
        Failure::Pool(err)
    }
}

impl From<MetaError> for Failure {
    fn from(err: MetaError) -> Self {
        Failure::Meta(err)
    }
}

impl Failure {
    /// Whether trying the whole transaction again can succeed (it lost a race the database detected).
    fn retryable(&self) -> bool {
        let code = match self {
            Failure::Db(err) => err.code(),
            _ => None,
        };
        code.is_some_and(|c| *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE)
    }

    /// Whether the database refused a duplicate key.
    fn is_unique_violation(&self) -> bool {
        matches!(self, Failure::Db(err) if err.code() == Some(&SqlState::UNIQUE_VIOLATION))
    }
}

impl From<Failure> for MetaError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Meta(err) => err,
            Failure::Pool(err) => MetaError::Unavailable { message: format!("no database connection: {err}") },
            Failure::Db(err) => db_error(&err),
        }
    }
}

/// A database error as the contract names it: unreachable, restarting, overloaded or timed out is `Unavailable`.
fn db_error(err: &tokio_postgres::Error) -> MetaError {
    let unavailable = match err.code() {
        Some(code) => [
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::TOO_MANY_CONNECTIONS,
            SqlState::QUERY_CANCELED,
            SqlState::CONNECTION_FAILURE,
            SqlState::CONNECTION_EXCEPTION,
        ]
        .contains(code),
        None => err.is_closed() || std::error::Error::source(err).is_some_and(|s| s.is::<std::io::Error>()),
    };
    if unavailable {
        MetaError::Unavailable { message: err.to_string() }
    } else {
        MetaError::Backend { message: err.to_string() }
    }
}

/// Runs `$body` in a transaction on a connection of the store's `pool` (or the named one), as `$tx`, committing if
/// it succeeds and trying the whole transaction again when it loses a deadlock or serialization race. `?` in the body takes database errors and
/// [`MetaError`]s alike.
macro_rules! transact {
    ($store:expr, |$tx:ident| $body:expr) => {
        $crate::postgres::transact!($store, pool, |$tx| $body)
    };
    ($store:expr, $pool:ident, |$tx:ident| $body:expr) => {{
        let mut attempt = 0u32;
        loop {
            let outcome: Result<_, $crate::postgres::Failure> = async {
                let mut client = $store.$pool.get().await?;
                let $tx = client.transaction().await?;
                let value = $body;
                $tx.commit().await?;
                Ok(value)
            }
            .await;
            match outcome {
                Err(failure) if failure.retryable() && attempt < $crate::postgres::RETRIES => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(u64::from(attempt) * 3)).await;
                }
                other => break other.map_err(s3ipfs_core::MetaError::from),
            }
        }
    }};
}
pub(crate) use transact;

/// The rows `sql` returns, through the connection's statement cache (one round trip once prepared).
pub(crate) async fn query(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, Failure> {
    let statement = client.prepare_cached(sql).await?;
    Ok(client.query(&statement, params).await?)
}

/// The row `sql` returns, if any.
pub(crate) async fn query_opt(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Option<Row>, Failure> {
    let statement = client.prepare_cached(sql).await?;
    Ok(client.query_opt(&statement, params).await?)
}

/// Runs `sql`; returns how many rows it changed.
pub(crate) async fn execute(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, Failure> {
    let statement = client.prepare_cached(sql).await?;
    Ok(client.execute(&statement, params).await?)
}

/// Maps rows with `f`.
pub(crate) fn map_rows<T>(rows: Vec<Row>, f: impl Fn(&Row) -> Result<T, MetaError>) -> Result<Vec<T>, Failure> {
    rows.iter().map(|row| f(row).map_err(Failure::from)).collect()
}

/// A value that must fit the database's signed 64-bit integers.
pub(crate) fn int(value: u64) -> Result<i64, MetaError> {
    i64::try_from(value).map_err(|_| MetaError::Invalid("a number beyond the database's range"))
}

fn row_limit(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl PgMeta {
    /// Connects (failing fast when the database cannot be reached), applies pending migrations when `migrate` is
    /// set, and checks that the schema is the one this binary knows.
    pub async fn connect(settings: &PgSettings, migrate: bool) -> Result<Self, PgOpenError> {
        let mut config =
            tokio_postgres::Config::from_str(&settings.url).map_err(|e| PgOpenError::Url(e.to_string()))?;
        config.connect_timeout(settings.connect_timeout);
        config.application_name("s3ipfs");
        let statement_ms = settings.statement_timeout.as_millis();
        let timeouts = format!("-c statement_timeout={statement_ms} -c lock_timeout={statement_ms}");
        let pool_of = |options: String, size: usize| {
            let mut config = config.clone();
            config.options(options);
            let manager =
                Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
            Pool::builder(manager)
                .max_size(size.max(1))
                .runtime(Runtime::Tokio1)
                .wait_timeout(Some(settings.acquire_timeout))
                .create_timeout(Some(settings.connect_timeout))
                .recycle_timeout(Some(settings.connect_timeout))
                .build()
                .map_err(|e| PgOpenError::Connect(e.to_string()))
        };
        let pool = pool_of(timeouts.clone(), settings.pool_size)?;
        let soft = pool_of(format!("{timeouts} -c synchronous_commit=off"), settings.pool_size.div_ceil(2))?;
        let store = PgMeta { pool, soft, replica: s3ipfs_core::meta::new_replica_name() };
        let mut client = store.pool.get().await.map_err(|e| PgOpenError::Connect(e.to_string()))?;
        if migrate {
            apply_migrations(&mut client).await?;
        }
        let (found, known) = schema_versions(&client).await?;
        if found > known {
            return Err(PgOpenError::SchemaTooNew { found, known });
        }
        if found < known {
            return Err(PgOpenError::SchemaTooOld { found, known });
        }
        Ok(store)
    }

    /// A handle on the same database writing for another replica (tests of several processes on one store).
    pub fn peer(&self, replica: &str) -> Self {
        PgMeta { pool: self.pool.clone(), soft: self.soft.clone(), replica: replica.to_owned() }
    }
}

/// The schema version the database is at (0: never migrated) and the newest this binary has.
async fn schema_versions(client: &deadpool_postgres::Object) -> Result<(i32, i32), PgOpenError> {
    let known = embedded::migrations::runner().get_migrations().iter().map(|m| m.version()).max().unwrap_or(0);
    let exists: bool = client
        .query_one("SELECT to_regclass('refinery_schema_history') IS NOT NULL", &[])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(|e| PgOpenError::Connect(e.to_string()))?;
    if !exists {
        return Ok((0, known));
    }
    let found: Option<i32> = client
        .query_one("SELECT MAX(version) FROM refinery_schema_history", &[])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(|e| PgOpenError::Connect(e.to_string()))?;
    Ok((found.unwrap_or(0), known))
}

/// Applies pending migrations, one process at a time (an advisory lock), each in its own transaction.
async fn apply_migrations(client: &mut deadpool_postgres::Object) -> Result<(), PgOpenError> {
    let failed = |e: tokio_postgres::Error| PgOpenError::Migration(e.to_string());
    client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK]).await.map_err(failed)?;
    let (found, known) = schema_versions(client).await?;
    let result = if found > known {
        Err(PgOpenError::SchemaTooNew { found, known })
    } else {
        let pg: &mut tokio_postgres::Client = client.as_mut();
        embedded::migrations::runner()
            .run_async(pg)
            .await
            .map(|_| ())
            .map_err(|e| PgOpenError::Migration(e.to_string()))
    };
    client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]).await.map_err(failed)?;
    result
}

/// The newest visible version of a key, through its head row.
const LATEST_SQL: &str = "SELECT v.bucket, v.key, v.seq, v.version_id, v.state, v.retired, v.modified_at, v.cid, \
     v.size, v.etag, v.md5, v.crc32, v.crc32c, v.crc64nvme, v.sha1, v.sha256, v.content_type, v.content_encoding, \
     v.content_disposition, v.content_language, v.cache_control, v.expires, v.user_meta, v.composite_checksum, \
     v.part_sizes FROM object_heads h JOIN object_versions v ON v.id = h.latest_id \
     WHERE h.bucket = $1 AND h.key = $2";

async fn latest_in(client: &impl GenericClient, bucket: &str, key: &[u8]) -> Result<Option<ObjectVersion>, Failure> {
    let row = query_opt(client, LATEST_SQL, &[&bucket, &key]).await?;
    Ok(row.as_ref().map(version_from_row).transpose()?)
}

/// Points the head of `bucket`/`key` at its newest visible version (after a retirement).
async fn refresh_head(client: &impl GenericClient, bucket: &str, key: &[u8]) -> Result<(), Failure> {
    let sql = format!(
        "UPDATE object_heads h SET latest_id = n.id, latest_object = COALESCE(n.state = 1, FALSE) \
         FROM (SELECT (SELECT v.id FROM object_versions v WHERE v.bucket = $1 AND v.key = $2 AND {VISIBLE} \
                       ORDER BY v.seq DESC LIMIT 1) AS id) AS latest \
         LEFT JOIN object_versions n ON n.id = latest.id \
         WHERE h.bucket = $1 AND h.key = $2"
    );
    execute(client, &sql, &[&bucket, &key]).await?;
    Ok(())
}

/// Retires the visible row `id` and drops its content reference, exactly once: a row that is no longer visible
/// (another request retired it first) changes nothing and is reported as `false`.
async fn retire_row(client: &impl GenericClient, id: i64) -> Result<bool, Failure> {
    let sql = format!(
        "UPDATE object_versions v SET retired = TRUE, retired_at = $2 WHERE v.id = $1 AND {VISIBLE} RETURNING v.cid"
    );
    let Some(row) = query_opt(client, &sql, &[&id, &millis(SystemTime::now())]).await? else { return Ok(false) };
    let cid: Option<Vec<u8>> = row.try_get(0)?;
    if let Some(cid) = cid {
        content::drop_ref(client, &cid).await?;
    }
    Ok(true)
}

/// Inserts a pending row for `bucket`/`key` begun by `replica`, if the bucket exists.
async fn insert_pending(client: &impl GenericClient, bucket: &str, key: &[u8], replica: &str) -> Result<i64, Failure> {
    let row = query_opt(
        client,
        "INSERT INTO object_versions (bucket, key, version_id, state, modified_at, replica) \
         SELECT name, $2, 'null', $3, $4, $5 FROM buckets WHERE name = $1 RETURNING id",
        &[&bucket, &key, &PENDING, &millis(SystemTime::now()), &replica],
    )
    .await?;
    Ok(row.ok_or(MetaError::NoSuchBucket)?.try_get(0)?)
}

/// Writes `new` into the pending row `id`: takes the key's head lock and next sequence number, decides the
/// condition, removes the completed upload, retires the `null` version, stores the version, takes over its claim
/// (or adds a reference to stored content) and moves the head. Any error rolls the transaction back. Statements that
/// need no answer from each other are pipelined: a commit costs a handful of round trips.
async fn commit_row(client: &impl GenericClient, id: i64, new: &NewVersion) -> Result<ObjectVersion, Failure> {
    if !matches!(new.state, VersionState::Committed(_) | VersionState::DeleteMarker) {
        return Err(MetaError::Invalid("only objects and delete markers can be committed").into());
    }
    // The head row's lock serializes this key's commits from here to the end of the transaction.
    let head = query_opt(
        client,
        "WITH p AS (SELECT bucket, key FROM object_versions WHERE id = $1 AND state = $2 FOR UPDATE) \
         INSERT INTO object_heads (bucket, key, last_seq) SELECT bucket, key, 1 FROM p \
         ON CONFLICT (bucket, key) DO UPDATE SET last_seq = object_heads.last_seq + 1 \
         RETURNING bucket, key, last_seq",
        &[&id, &PENDING],
    )
    .await?
    .ok_or(MetaError::NoSuchUpload)?;
    let (bucket, key, seq): (String, Vec<u8>, i64) = (head.try_get(0)?, head.try_get(1)?, head.try_get(2)?);
    if let Some(condition) = &new.condition {
        let latest = latest_in(client, &bucket, &key).await?;
        condition.check(latest.as_ref().and_then(ObjectVersion::meta)).map_err(MetaError::from)?;
    }
    if let Some(upload) = &new.completes {
        multipart::remove_upload(client, upload).await?;
    }
    let now = SystemTime::now();
    if new.replace_null {
        retire_null(client, &bucket, &key, millis(now)).await?;
    }
    let version_id = new.version_id.as_str();
    let is_object = matches!(new.state, VersionState::Committed(_));
    let head_params: [&(dyn ToSql + Sync); 4] = [&bucket, &key, &id, &is_object];
    let move_head = execute(
        client,
        "UPDATE object_heads SET latest_id = $3, latest_object = $4 WHERE bucket = $1 AND key = $2",
        &head_params,
    );
    match &new.state {
        VersionState::Committed(meta) => {
            let store = store_committed(client, id, seq, version_id, millis(now), meta);
            let cid = meta.cid.map(|cid| cid.to_bytes());
            let reference = async {
                match (&cid, new.claim) {
                    (Some(cid), Some(claim)) => content::take_claim(client, claim, cid).await,
                    (Some(cid), None) => content::add_ref_to_stored(client, cid).await,
                    (None, _) => Ok(()),
                }
            };
            futures::try_join!(store, reference, move_head)?;
        }
        _ => {
            let modified = millis(now);
            let mark_params: [&(dyn ToSql + Sync); 5] = [&id, &DELETE_MARKER, &seq, &version_id, &modified];
            let mark = execute(
                client,
                "UPDATE object_versions SET state = $2, seq = $3, version_id = $4, modified_at = $5 WHERE id = $1",
                &mark_params,
            );
            futures::try_join!(mark, move_head)?;
        }
    }
    Ok(ObjectVersion {
        bucket: BucketName::parse(&bucket).map_err(|_| rows::corrupt("bucket"))?,
        key: ObjectKey::parse(std::str::from_utf8(&key).map_err(|_| rows::corrupt("key"))?)
            .map_err(|_| rows::corrupt("key"))?,
        seq: u64::try_from(seq).map_err(|_| rows::corrupt("seq"))?,
        version_id: new.version_id.clone(),
        state: new.state.clone(),
        retired: false,
        modified_at: from_millis(millis(now)),
    })
}

/// Retires the key's visible `null` version and drops its content reference, in one statement; a reference that
/// would go below zero is an error.
async fn retire_null(client: &impl GenericClient, bucket: &str, key: &[u8], now: i64) -> Result<(), Failure> {
    let sql = format!(
        "WITH r AS (UPDATE object_versions v SET retired = TRUE, retired_at = $3 \
             WHERE v.bucket = $1 AND v.key = $2 AND v.version_id = 'null' AND {VISIBLE} RETURNING v.cid), \
         d AS (UPDATE content c SET refcount = c.refcount - 1, \
                 zero_since = CASE WHEN c.refcount = 1 THEN $3 ELSE c.zero_since END \
             FROM r WHERE c.cid = r.cid AND c.refcount > 0 RETURNING c.cid) \
         SELECT (SELECT COUNT(*) FROM r WHERE r.cid IS NOT NULL), (SELECT COUNT(*) FROM d), \
                (SELECT r.cid FROM r WHERE r.cid IS NOT NULL LIMIT 1)"
    );
    let row = query_opt(client, &sql, &[&bucket, &key, &now]).await?.ok_or_else(|| rows::corrupt("no counts"))?;
    let (held, dropped): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
    if held != dropped {
        let cid: Option<Vec<u8>> = row.try_get(2)?;
        let cid = cid.and_then(|c| Cid::from_bytes(&c).ok()).ok_or_else(|| rows::corrupt("cid"))?;
        return Err(s3ipfs_core::meta::underflow(&cid).into());
    }
    Ok(())
}

/// Turns row `id` into the committed object `meta` at position `seq`, in one statement.
async fn store_committed(
    client: &impl GenericClient,
    id: i64,
    seq: i64,
    version_id: &str,
    modified_at: i64,
    meta: &s3ipfs_core::ObjectMeta,
) -> Result<(), Failure> {
    let c = ChecksumParams::of(&meta.checksums);
    let h = &meta.headers;
    let user_meta = user_meta_json(&meta.user_meta)?;
    let part_sizes = crate::codec::encode_sizes(&meta.part_sizes);
    execute(
        client,
        "UPDATE object_versions SET cid = $2, size = $3, etag = $4, md5 = $5, crc32 = $6, crc32c = $7, \
         crc64nvme = $8, sha1 = $9, sha256 = $10, content_type = $11, content_encoding = $12, \
         content_disposition = $13, content_language = $14, cache_control = $15, expires = $16, user_meta = $17, \
         state = $18, seq = $19, version_id = $20, modified_at = $21, composite_checksum = $22, part_sizes = $23 \
         WHERE id = $1",
        &[
            &id,
            &meta.cid.map(|cid| cid.to_bytes()),
            &int(meta.size)?,
            &meta.etag,
            &c.md5,
            &c.crc32,
            &c.crc32c,
            &c.crc64nvme,
            &c.sha1,
            &c.sha256,
            &h.content_type,
            &h.content_encoding,
            &h.content_disposition,
            &h.content_language,
            &h.cache_control,
            &h.expires,
            &user_meta,
            &COMMITTED,
            &seq,
            &version_id,
            &modified_at,
            &meta.composite_checksum,
            &part_sizes,
        ],
    )
    .await?;
    Ok(())
}

#[async_trait]
impl MetaStore for PgMeta {
    async fn create_user(&self, email: &str) -> Result<User, MetaError> {
        let now = millis(SystemTime::now());
        let client = self.pool.get().await.map_err(Failure::from)?;
        let inserted = query_opt(
            &client,
            "INSERT INTO users (email, created_at) VALUES ($1, $2) ON CONFLICT (email) DO NOTHING RETURNING id",
            &[&email, &now],
        )
        .await?;
        let row = inserted.ok_or(MetaError::EmailTaken)?;
        let id: i64 = row.try_get(0).map_err(Failure::from)?;
        Ok(User { id: UserId(id), email: email.to_owned(), created_at: from_millis(now) })
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>, MetaError> {
        let client = self.pool.get().await.map_err(Failure::from)?;
        let row = query_opt(&client, "SELECT id, created_at FROM users WHERE email = $1", &[&email]).await?;
        let user = |row: Row| -> Result<User, Failure> {
            Ok(User { id: UserId(row.try_get(0)?), email: email.to_owned(), created_at: from_millis(row.try_get(1)?) })
        };
        Ok(row.map(user).transpose()?)
    }

    async fn add_access_key(&self, key: &AccessKey) -> Result<(), MetaError> {
        let client = self.pool.get().await.map_err(Failure::from)?;
        let sql = "INSERT INTO access_keys (id, secret, user_id) VALUES ($1, $2, $3)";
        match execute(&client, sql, &[&key.id, &key.secret, &key.user.0]).await {
            Ok(_) => Ok(()),
            Err(failure) if failure.is_unique_violation() => Err(MetaError::KeyExists),
            Err(failure) => Err(failure.into()),
        }
    }

    async fn remove_access_key(&self, id: &str) -> Result<bool, MetaError> {
        let client = self.pool.get().await.map_err(Failure::from)?;
        Ok(execute(&client, "DELETE FROM access_keys WHERE id = $1", &[&id]).await? > 0)
    }

    async fn access_key(&self, id: &str) -> Result<Option<AccessKey>, MetaError> {
        let client = self.pool.get().await.map_err(Failure::from)?;
        let row = query_opt(&client, "SELECT secret, user_id FROM access_keys WHERE id = $1", &[&id]).await?;
        let key = |row: Row| -> Result<AccessKey, Failure> {
            Ok(AccessKey { id: id.to_owned(), secret: row.try_get(0)?, user: UserId(row.try_get(1)?) })
        };
        Ok(row.map(key).transpose()?)
    }

    async fn create_bucket(&self, bucket: &Bucket) -> Result<(), MetaError> {
        let (name, owner) = (bucket.name.as_str(), bucket.owner.0);
        let (created, versioning) = (millis(bucket.created_at), versioning_code(bucket.versioning));
        transact!(self, |tx| {
            let inserted = query_opt(
                &tx,
                "INSERT INTO buckets (name, owner, created_at, versioning) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (name) DO NOTHING RETURNING name",
                &[&name, &owner, &created, &versioning],
            )
            .await?;
            if inserted.is_none() {
                // The conflicting row is committed (ON CONFLICT waited for it), so this statement sees it.
                let row = query_opt(&tx, "SELECT owner FROM buckets WHERE name = $1", &[&name]).await?;
                return Err(match row {
                    Some(row) => MetaError::BucketExists { owner: UserId(row.try_get(0)?) }.into(),
                    // Deleted in between: the client may try again.
                    None => MetaError::Unavailable { message: "bucket deleted while being created".into() }.into(),
                });
            }
        })
    }

    async fn bucket(&self, name: &BucketName) -> Result<Option<Bucket>, MetaError> {
        let client = self.pool.get().await.map_err(Failure::from)?;
        let sql = "SELECT name, owner, created_at, versioning FROM buckets WHERE name = $1";
        let row = query_opt(&client, sql, &[&name.as_str()]).await?;
        row.as_ref().map(bucket_from_row).transpose()
    }

    async fn buckets_of(&self, owner: UserId) -> Result<Vec<Bucket>, MetaError> {
        let client = self.pool.get().await.map_err(Failure::from)?;
        let sql = "SELECT name, owner, created_at, versioning FROM buckets WHERE owner = $1 ORDER BY name";
        Ok(map_rows(query(&client, sql, &[&owner.0]).await?, bucket_from_row)?)
    }

    async fn set_versioning(&self, name: &BucketName, versioning: Versioning) -> Result<(), MetaError> {
        let client = self.pool.get().await.map_err(Failure::from)?;
        let sql = "UPDATE buckets SET versioning = $2 WHERE name = $1";
        match execute(&client, sql, &[&name.as_str(), &versioning_code(versioning)]).await? {
            0 => Err(MetaError::NoSuchBucket),
            _ => Ok(()),
        }
    }

    async fn delete_bucket(&self, name: &BucketName) -> Result<(), MetaError> {
        let name = name.as_str();
        transact!(self, |tx| {
            // Lock the bucket: a commit into it (which reads the row to insert its pending version) waits.
            let found = query_opt(&tx, "SELECT name FROM buckets WHERE name = $1 FOR UPDATE", &[&name]).await?;
            if found.is_none() {
                return Err(MetaError::NoSuchBucket.into());
            }
            // And every key's head: a commit to a key that already has one does not touch the bucket row, so it
            // would commit unseen between this check and the delete. Holding the heads, this waits for it instead.
            execute(&tx, "SELECT 1 FROM object_heads WHERE bucket = $1 FOR UPDATE", &[&name]).await?;
            let sql = "SELECT EXISTS (SELECT 1 FROM object_heads WHERE bucket = $1 AND latest_id IS NOT NULL)";
            let nonempty: bool = query_opt(&tx, sql, &[&name]).await?.map_or(Ok(false), |row| row.try_get(0))?;
            if nonempty {
                return Err(MetaError::BucketNotEmpty.into());
            }
            for row in query(&tx, "SELECT id FROM multipart_uploads WHERE bucket = $1", &[&name]).await? {
                let upload: String = row.try_get(0)?;
                multipart::remove_upload(&tx, &upload).await?;
            }
            execute(&tx, "DELETE FROM buckets WHERE name = $1", &[&name]).await?;
        })
    }

    async fn begin_version(&self, bucket: &BucketName, key: &ObjectKey) -> Result<UploadId, MetaError> {
        let client = self.soft.get().await.map_err(Failure::from)?;
        Ok(UploadId(insert_pending(&client, bucket.as_str(), key.as_str().as_bytes(), &self.replica).await?))
    }

    async fn commit_version(&self, upload: UploadId, new: NewVersion) -> Result<ObjectVersion, MetaError> {
        transact!(self, |tx| commit_row(&tx, upload.0, &new).await?)
    }

    async fn abort_version(&self, upload: UploadId) -> Result<(), MetaError> {
        let client = self.soft.get().await.map_err(Failure::from)?;
        let sql = "UPDATE object_versions SET state = $2 WHERE id = $1 AND state = $3";
        execute(&client, sql, &[&upload.0, &ABORTED, &PENDING]).await?;
        Ok(())
    }

    async fn append_version(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        new: NewVersion,
    ) -> Result<ObjectVersion, MetaError> {
        let (bucket, key) = (bucket.as_str(), key.as_str().as_bytes());
        transact!(self, |tx| {
            let id = insert_pending(&tx, bucket, key, &self.replica).await?;
            commit_row(&tx, id, &new).await?
        })
    }

    async fn retire_version(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version_id: &VersionId,
    ) -> Result<Option<ObjectVersion>, MetaError> {
        let (bucket, key, version_id) = (bucket.as_str(), key.as_str().as_bytes(), version_id.as_str());
        transact!(self, |tx| {
            // The head lock orders this against the key's commits and other retirements.
            execute(&tx, "SELECT 1 FROM object_heads WHERE bucket = $1 AND key = $2 FOR UPDATE", &[&bucket, &key])
                .await?;
            let sql = format!(
                "SELECT v.id FROM object_versions v WHERE v.bucket = $1 AND v.key = $2 AND v.version_id = $3 \
                 AND {VISIBLE}"
            );
            match query_opt(&tx, &sql, &[&bucket, &key, &version_id]).await? {
                None => None,
                Some(row) => {
                    let id: i64 = row.try_get(0)?;
                    if !retire_row(&tx, id).await? {
                        return Err(rows::corrupt("a visible version changed under its head lock").into());
                    }
                    refresh_head(&tx, bucket, key).await?;
                    let sql = format!("SELECT {VERSION_COLUMNS} FROM object_versions v WHERE v.id = $1");
                    let row = query_opt(&tx, &sql, &[&id]).await?;
                    row.as_ref().map(version_from_row).transpose()?
                }
            }
        })
    }

    async fn latest_version(&self, bucket: &BucketName, key: &ObjectKey) -> Result<Option<ObjectVersion>, MetaError> {
        let client = self.pool.get().await.map_err(Failure::from)?;
        Ok(latest_in(&client, bucket.as_str(), key.as_str().as_bytes()).await?)
    }

    async fn bucket_and_latest(
        &self,
        name: &BucketName,
        key: &ObjectKey,
    ) -> Result<Option<(Bucket, Option<ObjectVersion>)>, MetaError> {
        let client = self.pool.get().await.map_err(Failure::from)?;
        let sql = format!(
            "SELECT {VERSION_COLUMNS}, b.name, b.owner, b.created_at, b.versioning FROM buckets b \
             LEFT JOIN object_heads h ON h.bucket = b.name AND h.key = $2 \
             LEFT JOIN object_versions v ON v.id = h.latest_id WHERE b.name = $1"
        );
        let Some(row) = query_opt(&client, &sql, &[&name.as_str(), &key.as_str().as_bytes()]).await? else {
            return Ok(None);
        };
        Ok(Some((rows::bucket_at(&row, 25)?, rows::optional_version(&row)?)))
    }

    async fn find_version(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version_id: &VersionId,
    ) -> Result<Option<ObjectVersion>, MetaError> {
        let client = self.pool.get().await.map_err(Failure::from)?;
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM object_versions v WHERE v.bucket = $1 AND v.key = $2 \
             AND v.version_id = $3 AND {VISIBLE} LIMIT 1"
        );
        let key = key.as_str().as_bytes();
        let row = query_opt(&client, &sql, &[&bucket.as_str(), &key, &version_id.as_str()]).await?;
        row.as_ref().map(version_from_row).transpose()
    }

    async fn list_latest(
        &self,
        bucket: &BucketName,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ObjectVersion>, MetaError> {
        let (lower, strict) = match after {
            Some(after) if after >= prefix => (after, true),
            _ => (prefix, false),
        };
        let (lower, end) = (lower.as_bytes(), prefix_end(prefix).map(String::into_bytes));
        // Bounds as plain range conditions on the index, one statement per shape.
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM object_heads h JOIN object_versions v ON v.id = h.latest_id \
             WHERE h.bucket = $1 AND h.latest_object AND h.key {} $2 {} ORDER BY h.key LIMIT $3",
            if strict { ">" } else { ">=" },
            if end.is_some() { "AND h.key < $4" } else { "AND $4::bytea IS NULL" },
        );
        let client = self.pool.get().await.map_err(Failure::from)?;
        let rows = query(&client, &sql, &[&bucket.as_str(), &lower, &row_limit(limit), &end]).await?;
        Ok(map_rows(rows, version_from_row)?)
    }

    async fn list_latest_grouped(
        &self,
        bucket: &BucketName,
        prefix: &str,
        delimiter: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ObjectVersion>, MetaError> {
        // A loose index scan in one statement: each step seeks the first key past the previous group (its common
        // prefix followed by 0xFF, a byte UTF-8 never holds) or past the previous key.
        let start = match after {
            Some(after) if after >= prefix => [after.as_bytes(), &[0]].concat(),
            _ => prefix.as_bytes().to_vec(),
        };
        // Always an upper bound, so that every step is an index range (past the last key a step finds nothing at
        // once instead of scanning to the bucket's end): without a prefix end, 0xFF, above every UTF-8 key.
        let end = prefix_end(prefix).map_or_else(|| vec![0xFF], String::into_bytes);
        let prefix_len = i32::try_from(prefix.len()).map_err(|_| MetaError::Invalid("prefix too long"))?;
        let steps = row_limit(limit.saturating_add(1));
        let sql = format!(
            "WITH RECURSIVE walk(key, id, n) AS ( \
                 (SELECT h.key, h.latest_id, 1::bigint FROM object_heads h \
                     WHERE h.bucket = $1 AND h.latest_object AND h.key >= $2 AND h.key < $3 ORDER BY h.key LIMIT 1) \
               UNION ALL \
                 SELECT next.key, next.latest_id, w.n + 1 FROM walk w CROSS JOIN LATERAL ( \
                     SELECT h.key, h.latest_id FROM object_heads h WHERE h.bucket = $1 AND h.latest_object \
                     AND h.key >= CASE WHEN position($5 IN substring(w.key FROM $4 + 1)) > 0 \
                         THEN substring(w.key FROM 1 FOR $4 + position($5 IN substring(w.key FROM $4 + 1)) - 1 \
                             + length($5)) || '\\xff'::bytea \
                         ELSE w.key || '\\x00'::bytea END \
                     AND h.key < $3 ORDER BY h.key LIMIT 1) AS next WHERE w.n < $6) \
             SELECT {VERSION_COLUMNS} FROM walk w JOIN object_versions v ON v.id = w.id ORDER BY w.key"
        );
        let client = self.pool.get().await.map_err(Failure::from)?;
        let params: [&(dyn ToSql + Sync); 6] =
            [&bucket.as_str(), &start, &end, &prefix_len, &delimiter.as_bytes(), &steps];
        let mut found = map_rows(query(&client, &sql, &params).await?, version_from_row)?;
        // The first group may be one at or before `after` (a page that ended on it): the walk stepped past it.
        found.retain(|v| common_prefix(v.key.as_str(), prefix, delimiter).is_none_or(|g| after.is_none_or(|a| g > a)));
        found.truncate(limit);
        Ok(found)
    }

    async fn list_versions(
        &self,
        bucket: &BucketName,
        prefix: &str,
        after: Option<(&str, u64)>,
        limit: usize,
    ) -> Result<Vec<ObjectVersion>, MetaError> {
        let end = prefix_end(prefix).map(String::into_bytes);
        let upper = if end.is_some() { "AND v.key < $5" } else { "AND $5::bytea IS NULL" };
        let client = self.pool.get().await.map_err(Failure::from)?;
        let rows = match after {
            Some((key, seq)) if key >= prefix => {
                let sql = format!(
                    "SELECT {VERSION_COLUMNS} FROM object_versions v WHERE v.bucket = $1 AND v.key >= $2 {upper} \
                     AND (v.key > $2 OR v.seq < $3) AND {VISIBLE} ORDER BY v.key, v.seq DESC LIMIT $4"
                );
                let (key, seq) = (key.as_bytes(), i64::try_from(seq).unwrap_or(i64::MAX));
                query(&client, &sql, &[&bucket.as_str(), &key, &seq, &row_limit(limit), &end]).await?
            }
            _ => {
                let sql = format!(
                    "SELECT {VERSION_COLUMNS} FROM object_versions v WHERE v.bucket = $1 AND v.key >= $2 {upper} \
                     AND $3::bigint IS NULL AND {VISIBLE} ORDER BY v.key, v.seq DESC LIMIT $4"
                );
                let prefix = prefix.as_bytes();
                query(&client, &sql, &[&bucket.as_str(), &prefix, &None::<i64>, &row_limit(limit), &end]).await?
            }
        };
        Ok(map_rows(rows, version_from_row)?)
    }

    async fn content_refs(&self, cid: &Cid) -> Result<u64, MetaError> {
        self.pg_content_refs(cid).await
    }

    fn replica(&self) -> &str {
        &self.replica
    }

    async fn heartbeat(&self, ttl: Duration) -> Result<(), MetaError> {
        self.pg_heartbeat(ttl).await
    }

    async fn abort_orphans(&self, before: SystemTime) -> Result<u64, MetaError> {
        self.pg_abort_orphans(before).await
    }

    async fn prune_history(&self, before: SystemTime, limit: usize) -> Result<u64, MetaError> {
        self.pg_prune_history(before, limit).await
    }

    async fn claim_content(&self, cid: &Cid, size: u64) -> Result<ClaimId, MetaError> {
        self.pg_claim_content(cid, size).await
    }

    async fn release_claim(&self, claim: ClaimId) -> Result<(), MetaError> {
        self.pg_release_claim(claim).await
    }

    async fn collectable_content(
        &self,
        cutoff: SystemTime,
        after: Option<&Cid>,
        limit: usize,
    ) -> Result<Vec<StoredContent>, MetaError> {
        self.pg_collectable_content(cutoff, after, limit).await
    }

    async fn mark_collectable(&self, cutoff: SystemTime, limit: usize) -> Result<Vec<StoredContent>, MetaError> {
        self.pg_mark_collectable(cutoff, limit).await
    }

    async fn forget_content(&self, cids: &[Cid]) -> Result<(), MetaError> {
        self.pg_forget_content(cids).await
    }

    async fn acquire_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, MetaError> {
        self.pg_acquire_lease(name, holder, ttl).await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), MetaError> {
        self.pg_release_lease(name, holder).await
    }

    async fn create_multipart(&self, upload: &MultipartUpload) -> Result<(), MetaError> {
        self.pg_create_multipart(upload).await
    }

    async fn multipart(&self, id: &str) -> Result<Option<MultipartUpload>, MetaError> {
        self.pg_multipart(id).await
    }

    async fn put_part(
        &self,
        upload_id: &str,
        part: &UploadPart,
        claim: ClaimId,
    ) -> Result<Option<UploadPart>, MetaError> {
        self.pg_put_part(upload_id, part, claim).await
    }

    async fn parts(&self, upload_id: &str, after: u32, limit: usize) -> Result<Vec<UploadPart>, MetaError> {
        self.pg_parts(upload_id, after, limit).await
    }

    async fn multiparts(
        &self,
        bucket: &BucketName,
        prefix: &str,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<MultipartUpload>, MetaError> {
        self.pg_multiparts(bucket, prefix, after, limit).await
    }

    async fn remove_multipart(&self, id: &str) -> Result<Vec<UploadPart>, MetaError> {
        self.pg_remove_multipart(id).await
    }

    async fn stale_multiparts(&self, before: SystemTime) -> Result<Vec<MultipartUpload>, MetaError> {
        self.pg_stale_multiparts(before).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(store: &PgMeta, replica: &str) -> PgMeta {
        store.peer(replica)
    }

    mod conformance {
        s3ipfs_core::meta_conformance_tests!(crate::testing::fresh_store, super::peer);
    }

    async fn admin(url: &str) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("connect");
        tokio::spawn(connection);
        client
    }

    async fn bucket_with_object(store: &PgMeta) -> (BucketName, ObjectVersion) {
        let user = store.create_user("u@example.com").await.expect("user");
        let name = BucketName::parse("under").expect("valid");
        let bucket = Bucket {
            name: name.clone(),
            owner: user.id,
            created_at: SystemTime::now(),
            versioning: Versioning::Enabled,
        };
        store.create_bucket(&bucket).await.expect("bucket");
        let key = ObjectKey::parse("k").expect("valid");
        let cid = Cid::v1(s3ipfs_cid::cid::RAW, [9; 32]);
        let meta = s3ipfs_core::ObjectMeta { cid: Some(cid), size: 1, etag: "\"e\"".into(), ..Default::default() };
        let mut new = NewVersion::new(VersionId::generate(), VersionState::Committed(Box::new(meta)), false);
        new.claim = Some(store.claim_content(&cid, 1).await.expect("claim"));
        let upload = store.begin_version(&name, &key).await.expect("begin");
        (name, store.commit_version(upload, new).await.expect("commit"))
    }

    #[tokio::test]
    async fn a_reference_count_that_would_go_below_zero_is_an_error_and_changes_nothing() {
        let url = crate::testing::fresh_database_url().await;
        let store = PgMeta::connect(&crate::testing::settings(&url), true).await.expect("store");
        let (bucket, version) = bucket_with_object(&store).await;
        admin(&url).await.batch_execute("UPDATE content SET refcount = 0").await.expect("corrupt the count");
        let retired = store.retire_version(&bucket, &version.key, &version.version_id).await;
        assert!(
            matches!(&retired, Err(MetaError::Backend { message }) if message.contains("underflow")),
            "{retired:?}"
        );
        let latest = store.latest_version(&bucket, &version.key).await.expect("latest");
        assert_eq!(latest, Some(version), "the failed retirement rolled back");
    }

    #[tokio::test]
    async fn replacing_a_null_version_whose_count_is_already_zero_is_an_error_and_changes_nothing() {
        let url = crate::testing::fresh_database_url().await;
        let store = PgMeta::connect(&crate::testing::settings(&url), true).await.expect("store");
        let (bucket, first) = bucket_with_object(&store).await;
        store.set_versioning(&bucket, Versioning::Suspended).await.expect("suspend");
        let null = NewVersion::new(VersionId::null(), VersionState::DeleteMarker, true);
        store.append_version(&bucket, &first.key, null).await.expect("a null marker");
        let cid = Cid::v1(s3ipfs_cid::cid::RAW, [7; 32]);
        let meta = s3ipfs_core::ObjectMeta { cid: Some(cid), size: 1, etag: "\"e\"".into(), ..Default::default() };
        let mut new = NewVersion::new(VersionId::null(), VersionState::Committed(Box::new(meta)), true);
        new.claim = Some(store.claim_content(&cid, 1).await.expect("claim"));
        let upload = store.begin_version(&bucket, &first.key).await.expect("begin");
        store.commit_version(upload, new.clone()).await.expect("replaces the null marker");
        let hex: String = cid.to_bytes().iter().map(|b| format!("{b:02x}")).collect();
        let corrupt = format!("UPDATE content SET refcount = 0 WHERE cid = decode('{hex}', 'hex')");
        admin(&url).await.batch_execute(&corrupt).await.expect("corrupt the count");
        let mut again = new.clone();
        again.claim = Some(store.claim_content(&Cid::v1(s3ipfs_cid::cid::RAW, [8; 32]), 1).await.expect("claim"));
        if let VersionState::Committed(meta) = &mut again.state {
            meta.cid = Some(Cid::v1(s3ipfs_cid::cid::RAW, [8; 32]));
        }
        let upload = store.begin_version(&bucket, &first.key).await.expect("begin");
        let replaced = store.commit_version(upload, again).await;
        assert!(
            matches!(&replaced, Err(MetaError::Backend { message }) if message.contains("underflow")),
            "{replaced:?}"
        );
        let latest = store.latest_version(&bucket, &first.key).await.expect("latest").expect("kept");
        assert_eq!(latest.meta().and_then(|m| m.cid), Some(cid), "the failed replacement rolled back");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deleting_a_bucket_waits_for_a_commit_in_flight_on_an_existing_head() {
        let url = crate::testing::fresh_database_url().await;
        let store = PgMeta::connect(&crate::testing::settings(&url), true).await.expect("store");
        let (bucket, version) = bucket_with_object(&store).await;
        store.retire_version(&bucket, &version.key, &version.version_id).await.expect("retire").expect("retired");
        // A commit in flight on the key's existing head: it holds the head row and has not committed yet.
        let commit = admin(&url).await;
        commit
            .batch_execute(
                "BEGIN; UPDATE object_heads SET latest_id = (SELECT MAX(id) FROM object_versions), \
                 latest_object = TRUE WHERE bucket = 'under'",
            )
            .await
            .expect("a commit in flight");
        let deleting = tokio::spawn({
            let (store, bucket) = (store.clone(), bucket.clone());
            async move { store.delete_bucket(&bucket).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        commit.batch_execute("COMMIT").await.expect("the commit lands");
        let deleted = deleting.await.expect("task");
        assert_eq!(deleted, Err(MetaError::BucketNotEmpty), "the deletion saw the object committed meanwhile");
    }

    #[tokio::test]
    async fn a_schema_newer_than_the_binary_is_refused_at_start() {
        let url = crate::testing::fresh_database_url().await;
        PgMeta::connect(&crate::testing::settings(&url), true).await.expect("migrated");
        admin(&url)
            .await
            .batch_execute(
                "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) \
                 VALUES (999, 'future', '2030-01-01T00:00:00Z', '0')",
            )
            .await
            .expect("a migration from the future");
        for migrate in [true, false] {
            let err = PgMeta::connect(&crate::testing::settings(&url), migrate).await.expect_err("refused");
            assert!(matches!(err, PgOpenError::SchemaTooNew { found: 999, .. }), "{err}");
        }
    }

    #[tokio::test]
    async fn an_unmigrated_database_is_refused_without_migrations_and_a_failed_migration_changes_nothing() {
        let url = crate::testing::fresh_database_url().await;
        let err = PgMeta::connect(&crate::testing::settings(&url), false).await.expect_err("not migrated");
        assert!(matches!(err, PgOpenError::SchemaTooOld { found: 0, .. }), "{err}");
        // A table in the way makes V1 fail half way through.
        admin(&url).await.batch_execute("CREATE TABLE multipart_uploads (x INT)").await.expect("obstacle");
        let err = PgMeta::connect(&crate::testing::settings(&url), true).await.expect_err("migration fails");
        assert!(matches!(err, PgOpenError::Migration(_)), "{err}");
        let row = admin(&url)
            .await
            .query_one("SELECT to_regclass('users') IS NULL AND to_regclass('buckets') IS NULL", &[])
            .await
            .expect("query");
        assert!(row.get::<_, bool>(0), "the tables the migration created before failing were rolled back");
    }

    #[tokio::test]
    async fn an_unreachable_database_is_a_clear_error_at_once() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
        let url = format!("postgres://postgres@127.0.0.1:{port}/none");
        let started = std::time::Instant::now();
        let err = PgMeta::connect(&crate::testing::settings(&url), true).await.expect_err("nothing listens");
        assert!(matches!(err, PgOpenError::Connect(_)), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn lost_connections_are_unavailable_and_replaced() {
        let url = crate::testing::fresh_database_url().await;
        let store = PgMeta::connect(&crate::testing::settings(&url), true).await.expect("store");
        let (bucket, version) = bucket_with_object(&store).await;
        admin(&url)
            .await
            .batch_execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
            )
            .await
            .expect("terminate the pool's connections");
        let mut answers = Vec::new();
        for _ in 0..3 {
            answers.push(store.latest_version(&bucket, &version.key).await);
        }
        assert!(answers.iter().all(|a| matches!(a, Ok(Some(_)) | Err(MetaError::Unavailable { .. }))), "{answers:?}");
        assert!(matches!(answers.last(), Some(Ok(Some(_)))), "the pool reconnected: {answers:?}");
    }
}
