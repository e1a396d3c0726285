//! The dedup race, as a stress test on the embedded stores (SQLite file + local CID store): identical bytes are PUT
//! while multipart uploads holding the same bytes are aborted, have their part replaced or are expired, in the same
//! and in another tenant's bucket, and while garbage collection runs without a grace period. Every acknowledged PUT
//! must read back byte-exact, and in the end GC must have freed exactly the content that no version, part or
//! pending write names.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::TryStreamExt as _;
use s3ipfs_cid::{Block, ChecksumSet, Cid, Profile};
use s3ipfs_content::LocalStore;
use s3ipfs_core::service::PutObject;
use s3ipfs_core::{
    BucketName, ByteStream, ContentError, ContentStore, ContentWriter, Gateway, MetaStore, ObjectKey, UserId,
};
use s3ipfs_meta::SqliteMeta;
use tokio::sync::Notify;

const ROUNDS: usize = 150;
/// Concurrent PUTs of the round's payload, and as many aborted uploads of it.
const PUTS_PER_ROUND: usize = 2;

fn bucket(name: &str) -> BucketName {
    BucketName::parse(name).expect("valid bucket")
}

fn key(name: &str) -> ObjectKey {
    ObjectKey::parse(name).expect("valid key")
}

/// Payload `n`: distinct for every `n`; sizes straddle the 256 KiB chunk so leaves and interior nodes both occur.
fn payload(n: usize) -> Bytes {
    let len = [1_000usize, 262_144, 300_001, 524_288 + 17][n % 4];
    let mut data: Vec<u8> = (0..len).map(|j| (j * 31 + n * 7) as u8).collect();
    data[..8].copy_from_slice(&(n as u64).to_be_bytes());
    Bytes::from(data)
}

fn body(data: &Bytes) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Unpin + Send + use<> {
    // Uneven pieces, as a network delivers them.
    let pieces: Vec<Result<Bytes, std::io::Error>> =
        data.chunks(70_001).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    futures::stream::iter(pieces)
}

/// A pause point in the content store: the next `finish` (after it stored or dropped its bytes) or the next
/// `delete` (before it deletes) waits there until the test lets it go.
#[derive(Default)]
struct Gate {
    armed: AtomicBool,
    reached: Notify,
    released: Notify,
}

impl Gate {
    async fn pass(&self) {
        if self.armed.swap(false, Ordering::SeqCst) {
            self.reached.notify_one();
            self.released.notified().await;
        }
    }
}

/// The local store, with a gate after `finish` and before `delete`, and random delays there: storage that is
/// slower at the worst moments, as a remote backend is.
struct Staged {
    inner: LocalStore,
    after_finish: Arc<Gate>,
    before_delete: Arc<Gate>,
    jitter: bool,
    /// Deletions of these CIDs fail (a disk error, a remote store refusing).
    failing: Arc<std::sync::Mutex<Vec<Cid>>>,
}

async fn jitter(on: bool) {
    if on {
        tokio::time::sleep(Duration::from_micros(rand::random::<u64>() % 4_000)).await;
    }
}

struct StagedWriter {
    inner: Box<dyn ContentWriter>,
    after_finish: Arc<Gate>,
    jitter: bool,
}

#[async_trait::async_trait]
impl ContentWriter for StagedWriter {
    async fn write(&mut self, bytes: Bytes) -> Result<(), ContentError> {
        self.inner.write(bytes).await
    }

    async fn finish(self: Box<Self>, root: Cid, nodes: Vec<Block>) -> Result<(), ContentError> {
        self.inner.finish(root, nodes).await?;
        jitter(self.jitter).await;
        self.after_finish.pass().await;
        Ok(())
    }

    async fn abort(self: Box<Self>) {
        self.inner.abort().await;
    }
}

#[async_trait::async_trait]
impl ContentStore for Staged {
    async fn writer(&self) -> Result<Box<dyn ContentWriter>, ContentError> {
        let inner = self.inner.writer().await?;
        Ok(Box::new(StagedWriter { inner, after_finish: Arc::clone(&self.after_finish), jitter: self.jitter }))
    }

    async fn read(&self, cid: &Cid, range: std::ops::Range<u64>) -> Result<ByteStream, ContentError> {
        self.inner.read(cid, range).await
    }

    async fn size(&self, cid: &Cid) -> Result<Option<u64>, ContentError> {
        self.inner.size(cid).await
    }

    async fn delete(&self, cid: &Cid) -> Result<(), ContentError> {
        jitter(self.jitter).await;
        self.before_delete.pass().await;
        if self.failing.lock().expect("lock").contains(cid) {
            return Err(ContentError::Io(std::io::Error::other("injected failure")));
        }
        self.inner.delete(cid).await
    }
}

struct World {
    gw: Gateway,
    meta: Arc<dyn MetaStore>,
    alice: UserId,
    bob: UserId,
    after_finish: Arc<Gate>,
    before_delete: Arc<Gate>,
    failing: Arc<std::sync::Mutex<Vec<Cid>>>,
}

async fn world(dir: &Path) -> World {
    world_with(dir, false).await
}

async fn world_with(dir: &Path, jitter: bool) -> World {
    let meta: Arc<dyn MetaStore> = Arc::new(SqliteMeta::open(&dir.join("meta.sqlite")).expect("metadata"));
    let inner = LocalStore::open(dir.join("content")).await.expect("content store");
    let (after_finish, before_delete) = (Arc::new(Gate::default()), Arc::new(Gate::default()));
    let failing = Arc::new(std::sync::Mutex::new(Vec::new()));
    let content = Staged {
        inner,
        after_finish: Arc::clone(&after_finish),
        before_delete: Arc::clone(&before_delete),
        jitter,
        failing: Arc::clone(&failing),
    };
    let alice = meta.create_user("alice@example.com").await.expect("user").id;
    let bob = meta.create_user("bob@example.com").await.expect("user").id;
    let gw = Gateway::new(Arc::clone(&meta), Arc::new(content), Profile::KUBO_V1);
    gw.create_bucket(alice, &bucket("alice-objects")).await.expect("bucket");
    gw.create_bucket(alice, &bucket("alice-uploads")).await.expect("bucket");
    gw.create_bucket(bob, &bucket("bob-uploads")).await.expect("bucket");
    gw.create_bucket(bob, &bucket("bob-versions")).await.expect("bucket");
    gw.set_versioning(bob, &bucket("bob-versions"), true).await.expect("versioning");
    World { gw, meta, alice, bob, after_finish, before_delete, failing }
}

async fn gc(w: &World, grace: Duration) -> Result<Option<s3ipfs_core::service::GcReport>, s3ipfs_core::ServiceError> {
    w.gw.collect_garbage(grace, &AtomicBool::new(false)).await
}

async fn put(w: &World, user: UserId, b: &str, k: &str, data: &Bytes) -> bool {
    w.gw.put_object(user, &bucket(b), &key(k), PutObject::default(), body(data), |_| Ok(())).await.is_ok()
}

async fn read(w: &World, user: UserId, b: &str, k: &str) -> Option<Vec<u8>> {
    let version = w.gw.object_version(user, &bucket(b), &key(k), None).await.ok()?.version;
    let size = version.meta()?.size;
    let chunks: Vec<Bytes> = w.gw.read_object(&version, 0..size).await.ok()?.try_collect().await.ok()?;
    Some(chunks.concat())
}

/// Starts an upload of `k` and stores `data` as part 1; returns the upload id.
async fn upload_with_part(w: &World, user: UserId, b: &str, k: &str, data: &Bytes) -> Option<String> {
    let upload =
        w.gw.create_multipart(user, &bucket(b), &key(k), Default::default(), Default::default(), None).await.ok()?;
    let (b, k) = (bucket(b), key(k));
    let part = w.gw.upload_part(user, &b, &k, &upload.id, 1, (ChecksumSet::NONE, None), body(data), |_| Ok(()));
    part.await.ok()?;
    Some(upload.id)
}

/// Bob's upload of `p` in his own bucket, aborted at once (another tenant holding and dropping the same bytes).
async fn aborted_upload(w: &World, name: String, p: &Bytes) {
    if let Some(id) = upload_with_part(w, w.bob, "bob-uploads", &name, p).await {
        let _ = w.gw.abort_multipart(w.bob, &bucket("bob-uploads"), &key(&name), &id).await;
    }
}

/// One round: alice PUTs the round's own payload under several keys while other writers hold and drop the same
/// bytes, so its reference count can reach zero while a PUT relies on a stored copy.
async fn round(w: &World, n: usize) -> Vec<(String, Bytes)> {
    let p = payload(n);
    let other = payload(n + ROUNDS);
    let puts = (0..PUTS_PER_ROUND).map(|i| {
        let (k, p) = (format!("k{n}-{i}"), p.clone());
        async move {
            // Staggered, so that other writers' copies are often stored first and then dropped meanwhile.
            jitter(true).await;
            put(w, w.alice, "alice-objects", &k, &p).await.then_some((k, p))
        }
    });
    let aborted = (0..PUTS_PER_ROUND).map(|i| aborted_upload(w, format!("a{n}-{i}"), &p));
    // Alice's upload of the same bytes whose part is replaced by other bytes (same tenant).
    let replaced = async {
        let k = format!("r{n}");
        if let Some(id) = upload_with_part(w, w.alice, "alice-uploads", &k, &p).await {
            let (b, k) = (bucket("alice-uploads"), key(&k));
            let sums = (ChecksumSet::NONE, None);
            let _ = w.gw.upload_part(w.alice, &b, &k, &id, 1, sums, body(&other), |_| Ok(())).await;
        }
    };
    // An upload of the same bytes that the expiry job takes away.
    let expired = async {
        if upload_with_part(w, w.bob, "bob-uploads", &format!("e{n}"), &p).await.is_some() {
            let _ = w.gw.expire_multiparts(SystemTime::now() + Duration::from_secs(1)).await;
        }
    };
    // The same bytes written and deleted again, and overwritten in a versioned bucket then deleted by id.
    let churned = async {
        if put(w, w.alice, "alice-objects", &format!("tmp{n}"), &p).await {
            let _ = w.gw.delete_object(w.alice, &bucket("alice-objects"), &key(&format!("tmp{n}")), None).await;
        }
        if put(w, w.bob, "bob-versions", "churn", &p).await
            && let Ok(v) = w.gw.object_version(w.bob, &bucket("bob-versions"), &key("churn"), None).await
        {
            let id = v.version.version_id.clone();
            let _ = w.gw.delete_object(w.bob, &bucket("bob-versions"), &key("churn"), Some(&id)).await;
        }
    };
    let (acknowledged, _, (), (), ()) =
        tokio::join!(futures::future::join_all(puts), futures::future::join_all(aborted), replaced, expired, churned);
    acknowledged.into_iter().flatten().collect()
}

/// The CIDs of the data files in the local store (each may have a `.nodes` file beside it).
fn stored_cids(content: &Path) -> BTreeSet<String> {
    let files = walk(&content.join("objects"));
    let data = files.iter().filter(|p| p.extension().is_none());
    data.map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()).collect()
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").map(|e| e.expect("entry")) {
        let path = entry.path();
        if path.is_dir() { files.extend(walk(&path)) } else { files.push(path) }
    }
    files
}

/// The CIDs that visible versions and live parts name, over every bucket.
async fn named_cids(w: &World) -> BTreeSet<String> {
    let mut named = BTreeSet::new();
    for b in ["alice-objects", "alice-uploads", "bob-uploads", "bob-versions"] {
        for version in w.meta.list_versions(&bucket(b), "", None, 100_000).await.expect("versions") {
            named.extend(version.meta().and_then(|m| m.cid).map(|c| c.to_string()));
        }
        for upload in w.meta.multiparts(&bucket(b), "", None, 100_000).await.expect("uploads") {
            for part in w.meta.parts(&upload.id, 0, 10_000).await.expect("parts") {
                named.insert(part.cid.to_string());
            }
        }
    }
    named
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_puts_survive_concurrent_aborts_replacements_expiry_and_gc() {
    let dir = tempfile::tempdir().expect("temp dir");
    let w = Arc::new(world_with(dir.path(), true).await);
    let running = Arc::new(AtomicBool::new(true));
    let collector = {
        let (w, running) = (Arc::clone(&w), Arc::clone(&running));
        tokio::spawn(async move {
            let mut runs = 0u32;
            while running.load(Ordering::Relaxed) {
                gc(&w, Duration::ZERO).await.expect("collection");
                runs += 1;
                tokio::task::yield_now().await;
            }
            runs
        })
    };
    let mut acknowledged = Vec::new();
    for n in 0..ROUNDS {
        let stored = round(&w, n).await;
        // Reading back at once, while the collector keeps running, catches bytes lost a moment ago.
        for (k, p) in &stored {
            assert_eq!(read(&w, w.alice, "alice-objects", k).await.as_deref(), Some(&p[..]), "{k} right after");
        }
        acknowledged.extend(stored);
    }
    running.store(false, Ordering::Relaxed);
    let runs = collector.await.expect("collector");
    assert!(runs > 1, "the collector ran throughout ({runs} runs)");
    assert_eq!(acknowledged.len(), ROUNDS * PUTS_PER_ROUND, "every PUT was acknowledged");
    for (k, p) in &acknowledged {
        assert_eq!(read(&w, w.alice, "alice-objects", k).await.as_deref(), Some(&p[..]), "{k} reads back");
    }

    gc(&w, Duration::ZERO).await.expect("final collection").expect("lease");
    let stored = stored_cids(&dir.path().join("content"));
    let named = named_cids(&w).await;
    assert_eq!(stored, named, "GC freed exactly the content nothing names");
    assert!(w.gw.collectable(Duration::ZERO).await.expect("dry run").is_empty());
    let tmp: Vec<_> = std::fs::read_dir(dir.path().join("content").join("tmp")).expect("tmp").collect();
    assert!(tmp.is_empty(), "no upload left a temp file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_that_found_its_bytes_stored_keeps_them_when_their_holder_lets_go_and_gc_runs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let w = Arc::new(world(dir.path()).await);
    let p = payload(1);
    let held = upload_with_part(&w, w.bob, "bob-uploads", "held", &p).await.expect("bob's part holds the bytes");
    w.after_finish.armed.store(true, Ordering::SeqCst);
    let put = tokio::spawn({
        let (w, p) = (Arc::clone(&w), p.clone());
        async move { put(&w, w.alice, "alice-objects", "k", &p).await }
    });
    // Alice's writer found the bytes stored and dropped its own copy; now bob lets go and GC runs.
    w.after_finish.reached.notified().await;
    w.gw.abort_multipart(w.bob, &bucket("bob-uploads"), &key("held"), &held).await.expect("abort");
    let report = gc(&w, Duration::ZERO).await.expect("gc").expect("lease");
    assert_eq!(report.objects, 0, "alice's claim holds the content");
    w.after_finish.released.notify_one();
    assert!(put.await.expect("task"), "acknowledged");
    assert_eq!(read(&w, w.alice, "alice-objects", "k").await.as_deref(), Some(&p[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_of_bytes_gc_is_deleting_waits_and_stores_its_own_copy() {
    let dir = tempfile::tempdir().expect("temp dir");
    let w = Arc::new(world(dir.path()).await);
    let p = payload(3);
    let held = upload_with_part(&w, w.bob, "bob-uploads", "held", &p).await.expect("part");
    w.gw.abort_multipart(w.bob, &bucket("bob-uploads"), &key("held"), &held).await.expect("abort");
    w.before_delete.armed.store(true, Ordering::SeqCst);
    let gc = tokio::spawn({
        let w = Arc::clone(&w);
        async move { gc(&w, Duration::ZERO).await.expect("gc").expect("lease") }
    });
    // GC has marked the content and is about to delete it; alice stores the same bytes now.
    w.before_delete.reached.notified().await;
    let put = tokio::spawn({
        let (w, p) = (Arc::clone(&w), p.clone());
        async move { put(&w, w.alice, "alice-objects", "k", &p).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!put.is_finished(), "the PUT waits for the collection of its bytes to end");
    w.before_delete.released.notify_one();
    assert_eq!(gc.await.expect("task").objects, 1);
    assert!(put.await.expect("task"), "acknowledged");
    assert_eq!(read(&w, w.alice, "alice-objects", "k").await.as_deref(), Some(&p[..]));
}

#[tokio::test]
async fn content_is_kept_through_the_grace_period_and_deleted_after_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let w = world(dir.path()).await;
    let data = payload(2);
    assert!(put(&w, w.alice, "alice-objects", "gone", &data).await);
    w.gw.delete_object(w.alice, &bucket("alice-objects"), &key("gone"), None).await.expect("delete");
    let content = dir.path().join("content");
    assert_eq!(stored_cids(&content).len(), 1);

    let report = gc(&w, Duration::from_secs(3600)).await.expect("gc").expect("lease");
    assert_eq!(report.objects, 0, "within the grace period nothing goes");
    let would = w.gw.collectable(Duration::ZERO).await.expect("dry run");
    assert_eq!((would.len(), would[0].size), (1, data.len() as u64), "a dry run reports it and its size");
    assert_eq!(stored_cids(&content).len(), 1, "a dry run deletes nothing");

    let report = gc(&w, Duration::ZERO).await.expect("gc").expect("lease");
    assert_eq!((report.objects, report.bytes), (1, data.len() as u64));
    assert!(stored_cids(&content).is_empty());
    let leftovers: Vec<_> = walk(&content.join("objects"));
    assert!(leftovers.is_empty(), "the nodes file went with the data: {leftovers:?}");

    assert!(put(&w, w.alice, "alice-objects", "again", &data).await, "the same bytes can be stored again");
    assert_eq!(read(&w, w.alice, "alice-objects", "again").await.as_deref(), Some(&data[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_cancelled_after_its_claim_releases_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let w = Arc::new(world(dir.path()).await);
    let p = payload(5);
    w.after_finish.armed.store(true, Ordering::SeqCst);
    let put = tokio::spawn({
        let (w, p) = (Arc::clone(&w), p.clone());
        async move { put(&w, w.alice, "alice-objects", "k", &p).await }
    });
    w.after_finish.reached.notified().await;
    let cid = s3ipfs_cid::cid_of(Profile::KUBO_V1, &p);
    assert_eq!(w.meta.content_refs(&cid).await.expect("refs"), 1, "the PUT holds its claim");
    put.abort(); // the client went away
    assert!(put.await.is_err(), "cancelled");
    let released = async {
        while w.meta.content_refs(&cid).await.expect("refs") > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), released).await.expect("the claim is released");
    assert_eq!(gc(&w, Duration::ZERO).await.expect("gc").expect("lease").objects, 1, "and the content collected");
}

#[tokio::test]
async fn a_deletion_that_fails_leaves_its_content_marked_and_the_rest_collected() {
    let dir = tempfile::tempdir().expect("temp dir");
    let w = world(dir.path()).await;
    for n in 0..3 {
        assert!(put(&w, w.alice, "alice-objects", "k", &payload(n)).await);
    }
    w.gw.delete_object(w.alice, &bucket("alice-objects"), &key("k"), None).await.expect("delete");
    let stuck = s3ipfs_cid::cid_of(Profile::KUBO_V1, &payload(1));
    w.failing.lock().expect("lock").push(stuck);
    let report = gc(&w, Duration::ZERO).await.expect("gc").expect("lease");
    assert_eq!((report.objects, report.failed), (2, 1));
    let dry = w.gw.collectable(Duration::from_secs(3600)).await.expect("dry run");
    assert_eq!(dry.iter().map(|c| c.cid).collect::<Vec<_>>(), [stuck], "a dry run counts what is left marked");
    w.failing.lock().expect("lock").clear();
    let report = gc(&w, Duration::from_secs(3600)).await.expect("gc").expect("lease");
    assert_eq!((report.objects, report.failed), (1, 0), "the next collection finishes it");
    assert!(stored_cids(&dir.path().join("content")).is_empty());
}

#[tokio::test]
async fn a_second_collector_waits_for_the_lease() {
    let dir = tempfile::tempdir().expect("temp dir");
    let w = world(dir.path()).await;
    assert!(w.meta.acquire_lease("gc", "another replica", Duration::from_secs(60)).await.expect("lease"));
    assert_eq!(gc(&w, Duration::ZERO).await.expect("gc"), None);
    w.meta.release_lease("gc", "another replica").await.expect("release");
    assert!(gc(&w, Duration::ZERO).await.expect("gc").is_some());
}
