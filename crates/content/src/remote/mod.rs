//! Content on a remote S3-compatible backend, under key = CID: Filebase (which pins every object on IPFS and
//! reports its CID) or any S3 server (whose objects carry no CID: the gateway's is authoritative).
//!
//! A write is spooled to local disk while the service hashes it, so memory stays bounded and an upload can be
//! retried. At `finish` the CID is looked up on the backend and uploaded only if absent (once per CID; writers of
//! the same CID in one process wait for each other). On Filebase the gateway then checks that the CID Filebase
//! reports equals its own: a CIDv0 (the `kubo-v0` profile) goes up as plain bytes, any other CID as a CAR
//! (`x-amz-meta-import: car`) of the DAG, its leaves rebuilt from the spool. A mismatch deletes what was uploaded and
//! fails the write; an object found under the CID but pinned as another is replaced.
//! Reads are ranged GetObjects streamed through. Every call goes through the resilience stack in [`call`].

mod call;
mod stats;
mod upload;

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::config::{Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation};
use bytes::Bytes;
use s3ipfs_cid::{Block, Cid};
use s3ipfs_core::{ByteStream, ContentError, ContentStore, ContentWriter};
use tokio::io::AsyncWriteExt as _;

use call::{Backend, CallError, Limits, RemoteError};
pub use stats::{RemoteCounts, RemoteStats};

/// Which kind of S3 server the backend is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Filebase: pins on IPFS and reports the CID in `x-amz-meta-cid`, which must equal the gateway's.
    Filebase,
    /// Any S3 server: stores bytes; the gateway's CID is authoritative.
    S3,
}

/// Everything the remote backend needs.
#[derive(Clone)]
pub struct RemoteSettings {
    /// The kind of server.
    pub flavor: Flavor,
    /// Its endpoint URL.
    pub endpoint: String,
    /// The region to sign for.
    pub region: String,
    /// The bucket holding the content.
    pub bucket: String,
    /// Access key id.
    pub access_key: String,
    /// Secret key.
    pub secret_key: String,
    /// Address buckets in the path rather than the host name.
    pub path_style: bool,
    /// Where writes are spooled.
    pub spool_dir: PathBuf,
    /// Objects above this size go up as multipart uploads of parts this size.
    pub part_size: u64,
    /// Parts of one upload sent at once.
    pub concurrency: usize,
    /// How long one call may take (uploads get one more second per MiB).
    pub call_timeout: Duration,
    /// How long opening a connection may take.
    pub connect_timeout: Duration,
    /// Calls in flight at once (the bulkhead).
    pub max_in_flight: usize,
    /// Calls per second (the rate limiter).
    pub requests_per_second: usize,
    /// Retries of idempotent calls after transient errors.
    pub retries: usize,
    /// How long the circuit breaker stays open before it probes the backend again.
    pub open_for: Duration,
}

impl std::fmt::Debug for RemoteSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteSettings")
            .field("flavor", &self.flavor)
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}

/// Content on a remote S3-compatible backend. See the module docs.
#[derive(Clone)]
pub struct RemoteStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: aws_sdk_s3::Client,
    bucket: String,
    flavor: Flavor,
    spool_dir: PathBuf,
    part_size: u64,
    concurrency: usize,
    call_timeout: Duration,
    backend: Backend,
    stats: Arc<RemoteStats>,
    /// Uploads in progress by CID: writers of the same CID take turns, so it is uploaded once.
    turns: Mutex<HashMap<Cid, Arc<tokio::sync::Mutex<()>>>>,
    /// Spool files in use (the idle sweep leaves them alone: an upload reads its spool for as long as it runs).
    active: Arc<Mutex<HashSet<PathBuf>>>,
}

impl std::fmt::Debug for RemoteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteStore")
            .field("bucket", &self.inner.bucket)
            .field("flavor", &self.inner.flavor)
            .finish_non_exhaustive()
    }
}

/// Why the remote backend could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("content backend: {0}")]
pub struct RemoteSetupError(String);

impl RemoteStore {
    /// Sets up the client and the spool directory. Reaches nothing remote: an unreachable backend shows on use.
    pub async fn open(settings: RemoteSettings) -> Result<Self, RemoteSetupError> {
        tokio::fs::create_dir_all(&settings.spool_dir)
            .await
            .map_err(|e| RemoteSetupError(format!("spool directory {}: {e}", settings.spool_dir.display())))?;
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let config = aws_sdk_s3::Config::builder()
            .behavior_version_latest()
            .http_client(http)
            .credentials_provider(Credentials::new(
                &settings.access_key,
                &settings.secret_key,
                None,
                None,
                "s3ipfs-configuration",
            ))
            .region(Region::new(settings.region.clone()))
            .endpoint_url(&settings.endpoint)
            .force_path_style(settings.path_style)
            // Non-AWS servers often refuse the trailer checksums the SDK sends by default.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            // Retries are the resilience stack's, not the SDK's: the two would multiply.
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
            .timeout_config(
                aws_sdk_s3::config::timeout::TimeoutConfig::builder().connect_timeout(settings.connect_timeout).build(),
            )
            .build();
        let stats = Arc::new(RemoteStats::default());
        let limits = Limits {
            retries: settings.retries,
            max_in_flight: settings.max_in_flight,
            requests_per_second: settings.requests_per_second,
            max_wait: settings.call_timeout,
            open_for: settings.open_for,
        };
        let backend = Backend::new(&limits, Arc::clone(&stats)).map_err(RemoteSetupError)?;
        Ok(RemoteStore {
            inner: Arc::new(Inner {
                client: aws_sdk_s3::Client::from_conf(config),
                bucket: settings.bucket,
                flavor: settings.flavor,
                spool_dir: settings.spool_dir,
                part_size: settings.part_size.max(5 * 1024 * 1024),
                concurrency: settings.concurrency.max(1),
                call_timeout: settings.call_timeout,
                backend,
                stats,
                turns: Mutex::new(HashMap::new()),
                active: Arc::new(Mutex::new(HashSet::new())),
            }),
        })
    }

    /// Creates the bucket unless it exists (for S3 servers the operator runs; Filebase buckets are made in its
    /// console).
    pub async fn ensure_bucket(&self) -> Result<(), ContentError> {
        let (client, bucket) = (self.inner.client.clone(), self.inner.bucket.clone());
        let head = self.inner.backend.call("HeadBucket", true, self.inner.call_timeout, move || {
            let head = client.head_bucket().bucket(bucket.clone()).send();
            async move { head.await.map(|_| ()).map_err(RemoteError::from_sdk) }
        });
        match head.await {
            Ok(()) => return Ok(()),
            Err(CallError::NotFound) => {}
            Err(CallError::InvalidRange) => {}
            Err(CallError::Failed(err)) => return Err(err),
        }
        let (client, bucket) = (self.inner.client.clone(), self.inner.bucket.clone());
        let create = self.inner.backend.call("CreateBucket", false, self.inner.call_timeout, move || {
            let create = client.create_bucket().bucket(bucket.clone()).send();
            async move { create.await.map(|_| ()).map_err(RemoteError::from_sdk) }
        });
        create.await.map_err(|err| match err {
            CallError::Failed(err) => err,
            other => ContentError::Refused { operation: "CreateBucket", message: format!("{other:?}") },
        })
    }

    /// The kind of server.
    pub fn flavor(&self) -> Flavor {
        self.inner.flavor
    }

    /// The backend's counters.
    pub fn stats(&self) -> RemoteCounts {
        self.inner.stats.snapshot()
    }

    /// Whether `root` goes up as a CAR for Filebase to import: any CIDv1. A CIDv0 goes up as plain bytes, which
    /// Filebase imports as `kubo-v0` does (a CIDv0 DAG of other chunking then fails the CID check).
    fn uploads_car(&self, root: &Cid) -> bool {
        self.inner.flavor == Flavor::Filebase && root.version() != s3ipfs_cid::Version::V0
    }

    /// Removes spool files that no write of this process uses and nothing has written to for `idle` (their
    /// writer's process crashed). Replicas do not share a spool directory.
    pub async fn clear_spool_idle_for(&self, idle: Duration) -> Result<usize, ContentError> {
        let mut removed = 0;
        let mut entries = tokio::fs::read_dir(&self.inner.spool_dir).await?;
        while let Some(entry) = entries.next_entry().await? {
            if self.inner.active.lock().unwrap_or_else(|p| p.into_inner()).contains(&entry.path()) {
                continue;
            }
            let modified = entry.metadata().await.and_then(|m| m.modified());
            let stale = modified.is_ok_and(|at| at.elapsed().is_ok_and(|age| age >= idle));
            if stale && tokio::fs::remove_file(entry.path()).await.is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Registers `path` as a spool file in use until the returned guard drops (which removes the file).
    fn spool_file(&self, path: PathBuf) -> SpoolFile {
        self.inner.active.lock().unwrap_or_else(|p| p.into_inner()).insert(path.clone());
        SpoolFile { path, active: Arc::clone(&self.inner.active) }
    }

    /// The object's size and, on Filebase, the CID it reports; `None` when absent.
    async fn head(&self, cid: &Cid) -> Result<Option<(u64, Option<String>)>, ContentError> {
        let (client, bucket, key) = (self.inner.client.clone(), self.inner.bucket.clone(), cid.to_string());
        let head = self.inner.backend.call("HeadObject", true, self.inner.call_timeout, move || {
            let head = client.head_object().bucket(bucket.clone()).key(key.clone()).send();
            async move {
                let out = head.await.map_err(RemoteError::from_sdk)?;
                let size = out.content_length.and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
                Ok((size, out.metadata.and_then(|mut m| m.remove("cid"))))
            }
        });
        match head.await {
            Ok(found) => Ok(Some(found)),
            Err(CallError::NotFound) => Ok(None),
            Err(CallError::InvalidRange) => Ok(None),
            Err(CallError::Failed(err)) => Err(err),
        }
    }

    /// Whether the CID the backend reported for the object under `root` is `root`.
    fn reports(&self, root: &Cid, reported: Option<&str>) -> bool {
        reported.and_then(|r| r.parse::<Cid>().ok()).as_ref() == Some(root)
    }

    /// Makes the spooled file `len` bytes long durable under `root` on the backend, unless it is there already.
    async fn keep(&self, spool: &Path, len: u64, root: Cid, nodes: Vec<Block>) -> Result<(), ContentError> {
        let turn = Turn::take(&self.inner, root);
        let _mine = turn.lock.lock().await;
        self.upload_once(spool, len, root, nodes).await
    }

    async fn upload_once(&self, spool: &Path, len: u64, root: Cid, nodes: Vec<Block>) -> Result<(), ContentError> {
        match self.head(&root).await? {
            Some((_, reported)) if self.inner.flavor == Flavor::S3 || self.reports(&root, reported.as_deref()) => {
                self.inner.stats.deduplicated();
                return Ok(());
            }
            // Under the CID but pinned as another: left by a failed write whose cleanup failed. Replaced.
            Some(_) => self.delete(&root).await?,
            None => {}
        }
        let key = root.to_string();
        let sent = if self.uploads_car(&root) {
            let car = spool.with_extension("car");
            let _car_file = self.spool_file(car.clone());
            let (from, to) = (spool.to_path_buf(), car.clone());
            let car_len = tokio::task::spawn_blocking(move || upload::write_car(&from, &to, root, &nodes))
                .await
                .map_err(|e| ContentError::Io(std::io::Error::other(e)))??;
            self.upload_file(&car, car_len, &key, true).await?;
            car_len
        } else {
            self.upload_file(spool, len, &key, false).await?;
            len
        };
        if self.inner.flavor == Flavor::Filebase {
            let reported = self.head(&root).await?.and_then(|(_, cid)| cid).unwrap_or_default();
            if !self.reports(&root, Some(&reported)) {
                self.inner.stats.cid_mismatch();
                tracing::error!(expected = %root, %reported, "the content backend reported another CID; the write fails");
                // Nothing of the failed write may stay under this key: a later write would take it as stored.
                let _ = self.delete(&root).await;
                return Err(ContentError::CidMismatch { expected: root, reported });
            }
        }
        self.inner.stats.uploaded(sent);
        Ok(())
    }
}

/// A writer's place in line for one CID; the last one out (finished or cancelled) removes the CID's entry.
struct Turn<'a> {
    inner: &'a Inner,
    cid: Cid,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl<'a> Turn<'a> {
    fn take(inner: &'a Inner, cid: Cid) -> Self {
        let mut turns = inner.turns.lock().unwrap_or_else(|p| p.into_inner());
        Turn { inner, cid, lock: Arc::clone(turns.entry(cid).or_default()) }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut turns = self.inner.turns.lock().unwrap_or_else(|p| p.into_inner());
        // Only the map and this writer hold it: nobody waits, the entry goes.
        if Arc::strong_count(&self.lock) == 2 {
            turns.remove(&self.cid);
        }
    }
}

/// A spool file in use, removed when dropped (a finished, failed or cancelled write leaves nothing).
struct SpoolFile {
    path: PathBuf,
    active: Arc<Mutex<HashSet<PathBuf>>>,
}

impl Drop for SpoolFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        self.active.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.path);
    }
}

/// A write in progress: the body spooled to a local file.
struct SpoolWriter {
    store: RemoteStore,
    spool: SpoolFile,
    file: Option<tokio::io::BufWriter<tokio::fs::File>>,
    len: u64,
}

fn finished() -> ContentError {
    ContentError::Io(std::io::Error::other("writer already finished"))
}

#[async_trait]
impl ContentWriter for SpoolWriter {
    async fn write(&mut self, bytes: Bytes) -> Result<(), ContentError> {
        let file = self.file.as_mut().ok_or_else(finished)?;
        file.write_all(&bytes).await?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    async fn finish(mut self: Box<Self>, root: Cid, nodes: Vec<Block>) -> Result<(), ContentError> {
        let mut file = self.file.take().ok_or_else(finished)?;
        file.flush().await?;
        drop(file);
        self.store.keep(&self.spool.path, self.len, root, nodes).await
    }

    async fn abort(self: Box<Self>) {}
}

fn unavailable(message: String) -> ContentError {
    ContentError::Unavailable { message, retry_after: None }
}

/// The object size a `Content-Range: bytes a-b/size` header names.
fn range_total(content_range: Option<&str>) -> Option<u64> {
    content_range?.rsplit_once('/')?.1.parse().ok()
}

#[async_trait]
impl ContentStore for RemoteStore {
    async fn writer(&self) -> Result<Box<dyn ContentWriter>, ContentError> {
        let path = self.inner.spool_dir.join(format!("{:032x}", rand::random::<u128>()));
        let spool = self.spool_file(path.clone());
        let file = tokio::fs::File::create(&path).await?;
        Ok(Box::new(SpoolWriter {
            store: self.clone(),
            spool,
            file: Some(tokio::io::BufWriter::with_capacity(256 * 1024, file)),
            len: 0,
        }))
    }

    async fn read(&self, cid: &Cid, range: Range<u64>) -> Result<ByteStream, ContentError> {
        let out_of_range = |size| ContentError::Range { start: range.start, end: range.end, size };
        if range.start >= range.end {
            return match self.head(cid).await? {
                None => Err(ContentError::NotFound(*cid)),
                Some((size, _)) if range.start <= range.end && range.end <= size => {
                    Ok(Box::pin(futures::stream::empty()))
                }
                Some((size, _)) => Err(out_of_range(size)),
            };
        }
        let (client, bucket, key) = (self.inner.client.clone(), self.inner.bucket.clone(), cid.to_string());
        let header = format!("bytes={}-{}", range.start, range.end - 1);
        let get = self.inner.backend.call("GetObject", true, self.inner.call_timeout, move || {
            let get = client.get_object().bucket(bucket.clone()).key(key.clone()).range(header.clone()).send();
            async move { get.await.map_err(RemoteError::from_sdk) }
        });
        let out = match get.await {
            Ok(out) => out,
            Err(CallError::NotFound) => return Err(ContentError::NotFound(*cid)),
            Err(CallError::InvalidRange) => {
                let size = self.head(cid).await?.map(|(size, _)| size).ok_or(ContentError::NotFound(*cid))?;
                return Err(out_of_range(size));
            }
            Err(CallError::Failed(err)) => return Err(err),
        };
        let want = range.end - range.start;
        let total = range_total(out.content_range()).or_else(|| out.content_length.and_then(|n| u64::try_from(n).ok()));
        if total.is_some_and(|size| size < range.end) {
            return Err(out_of_range(total.unwrap_or_default()));
        }
        if out.content_length.and_then(|n| u64::try_from(n).ok()) != Some(want) {
            return Err(unavailable(format!("the backend answered a range of {want} bytes with another length")));
        }
        // The SDK's body is not `Sync`: a task pumps it into a channel, ending when the reader goes away.
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, ContentError>>(4);
        let mut body = out.body;
        let stall = self.inner.call_timeout;
        tokio::spawn(async move {
            let mut left = want;
            loop {
                let chunk = tokio::select! {
                    // The reader went away: stop reading from the backend.
                    () = tx.closed() => return,
                    chunk = tokio::time::timeout(stall, body.try_next()) => chunk,
                };
                let Ok(chunk) = chunk else {
                    let _ = tx.send(Err(unavailable("the content backend stopped sending".into()))).await;
                    return;
                };
                let next = match chunk {
                    Ok(Some(chunk)) if chunk.len() as u64 <= left => {
                        left -= chunk.len() as u64;
                        Ok(chunk)
                    }
                    Ok(None) if left == 0 => return,
                    Ok(_) => Err(unavailable("the backend's body does not match the requested range".into())),
                    Err(err) => Err(unavailable(format!("reading from the content backend: {err}"))),
                };
                let stop = next.is_err();
                if tx.send(next).await.is_err() || stop {
                    return;
                }
            }
        });
        Ok(Box::pin(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) })))
    }

    async fn size(&self, cid: &Cid) -> Result<Option<u64>, ContentError> {
        Ok(self.head(cid).await?.map(|(size, _)| size))
    }

    async fn delete(&self, cid: &Cid) -> Result<(), ContentError> {
        let (client, bucket, key) = (self.inner.client.clone(), self.inner.bucket.clone(), cid.to_string());
        // Not retried: a DeleteObject that timed out may still run later, so the caller must treat it as failed
        // (GC keeps the CID marked, and no writer can store it again until a later collection deletes it again).
        let delete = self.inner.backend.call("DeleteObject", false, self.inner.call_timeout, move || {
            let delete = client.delete_object().bucket(bucket.clone()).key(key.clone()).send();
            async move { delete.await.map(|_| ()).map_err(RemoteError::from_sdk) }
        });
        match delete.await {
            Ok(()) | Err(CallError::NotFound) => Ok(()),
            Err(CallError::InvalidRange) => Ok(()),
            Err(CallError::Failed(err)) => Err(err),
        }
    }
}
