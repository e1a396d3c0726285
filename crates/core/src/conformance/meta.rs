//! The `MetaStore` conformance suite: `pub async fn` test bodies, each on a fresh store.
//!
//! Adapters call [`run_all`] (or each function) from their own tests, so memory, SQLite and PostgreSQL are held to
//! exactly the same observable behaviour.

use std::time::{Duration, SystemTime};

use s3ipfs_cid::{Cid, cid::RAW};

use crate::meta::{MetaError, MetaStore, NewVersion};
use crate::model::{
    AccessKey, Bucket, MultipartUpload, ObjectMeta, ObjectVersion, UploadChecksum, UploadPart, VersionState, Versioning,
};
use crate::names::{BucketName, ObjectKey, UserId, VersionId};

fn bucket_name(name: &str) -> BucketName {
    BucketName::parse(name).expect("test bucket names are valid")
}

fn key(name: &str) -> ObjectKey {
    ObjectKey::parse(name).expect("test keys are valid")
}

fn cid(seed: u8) -> Cid {
    Cid::v1(RAW, [seed; 32])
}

fn object(seed: u8) -> VersionState {
    VersionState::Committed(Box::new(ObjectMeta {
        cid: Some(cid(seed)),
        size: u64::from(seed),
        etag: format!("\"etag-{seed}\""),
        checksums: s3ipfs_cid::Checksums { crc32: Some(u32::from(seed)), ..Default::default() },
        composite_checksum: seed % 2 == 1,
        part_sizes: (0..u64::from(seed % 3)).map(|i| (i + 1) << 20).collect(),
        ..ObjectMeta::default()
    }))
}

fn put(id: VersionId, seed: u8, replace_null: bool) -> NewVersion {
    NewVersion { version_id: id, state: object(seed), replace_null }
}

fn null_put(seed: u8) -> NewVersion {
    put(VersionId::null(), seed, true)
}

fn seeds(versions: &[ObjectVersion]) -> Vec<Option<u64>> {
    versions.iter().map(|v| v.meta().map(|m| m.size)).collect()
}

async fn new_bucket(store: &dyn MetaStore, name: &str, versioning: Versioning) -> BucketName {
    let owner = match store.user_by_email("owner@example.com").await.expect("lookup") {
        Some(user) => user.id,
        None => store.create_user("owner@example.com").await.expect("user").id,
    };
    let name = bucket_name(name);
    let bucket = Bucket { name: name.clone(), owner, created_at: SystemTime::now(), versioning };
    store.create_bucket(&bucket).await.expect("bucket");
    name
}

async fn commit(store: &dyn MetaStore, bucket: &BucketName, k: &str, new: NewVersion) -> ObjectVersion {
    let upload = store.begin_version(bucket, &key(k)).await.expect("begin");
    store.commit_version(upload, new).await.expect("commit")
}

/// Users are unique by email; access keys by id, and they resolve to their user.
pub async fn users_and_access_keys(store: &dyn MetaStore) {
    let alice = store.create_user("alice@example.com").await.expect("create");
    assert_eq!(store.create_user("alice@example.com").await, Err(MetaError::EmailTaken));
    assert_eq!(store.user_by_email("alice@example.com").await.expect("lookup"), Some(alice.clone()));
    assert_eq!(store.user_by_email("bob@example.com").await.expect("lookup"), None);

    let key = AccessKey { id: "AKTESTKEY00000000001".into(), secret: "s".repeat(40), user: alice.id };
    store.add_access_key(&key).await.expect("add key");
    assert_eq!(store.add_access_key(&key).await, Err(MetaError::KeyExists));
    assert_eq!(store.access_key(&key.id).await.expect("lookup"), Some(key));
    assert_eq!(store.access_key("AKUNKNOWN").await.expect("lookup"), None);
}

/// Bucket names are global; each user lists only their own, in name order.
pub async fn buckets_are_global_names_listed_per_owner(store: &dyn MetaStore) {
    let alice = store.create_user("a@example.com").await.expect("user").id;
    let bob = store.create_user("b@example.com").await.expect("user").id;
    for (name, owner) in [("zeta", alice), ("alpha", alice), ("bobs", bob)] {
        let bucket = Bucket {
            name: bucket_name(name),
            owner,
            created_at: SystemTime::now(),
            versioning: Versioning::Unversioned,
        };
        store.create_bucket(&bucket).await.expect("create");
    }
    let dup = Bucket {
        name: bucket_name("alpha"),
        owner: bob,
        created_at: SystemTime::now(),
        versioning: Versioning::Enabled,
    };
    assert_eq!(store.create_bucket(&dup).await, Err(MetaError::BucketExists { owner: alice }));
    let names = |list: Vec<Bucket>| list.into_iter().map(|b| b.name.to_string()).collect::<Vec<_>>();
    assert_eq!(names(store.buckets_of(alice).await.expect("list")), ["alpha", "zeta"]);
    assert_eq!(names(store.buckets_of(bob).await.expect("list")), ["bobs"]);
    assert!(store.buckets_of(UserId(i64::MAX)).await.expect("list").is_empty());

    store.set_versioning(&bucket_name("alpha"), Versioning::Enabled).await.expect("versioning");
    let alpha = store.bucket(&bucket_name("alpha")).await.expect("get").expect("exists");
    assert_eq!(alpha.versioning, Versioning::Enabled);
    assert_eq!(store.set_versioning(&bucket_name("nope"), Versioning::Enabled).await, Err(MetaError::NoSuchBucket));
    assert_eq!(store.delete_bucket(&bucket_name("nope")).await, Err(MetaError::NoSuchBucket));
}

/// A pending version is invisible; once aborted it can no longer commit; a crash's leftovers are aborted by age.
pub async fn pending_versions_are_never_visible(store: &dyn MetaStore) {
    let b = new_bucket(store, "pending", Versioning::Unversioned).await;
    let upload = store.begin_version(&b, &key("k")).await.expect("begin");
    assert_eq!(store.latest_version(&b, &key("k")).await.expect("latest"), None);
    assert!(store.list_latest(&b, "", None, 10).await.expect("list").is_empty());
    assert!(store.list_versions(&b, "", None, 10).await.expect("list").is_empty());
    store.abort_version(upload).await.expect("abort");
    store.abort_version(upload).await.expect("abort twice is fine");
    assert_eq!(store.commit_version(upload, null_put(1)).await, Err(MetaError::NoSuchUpload));

    let crashed = store.begin_version(&b, &key("k2")).await.expect("begin");
    assert_eq!(store.abort_stale(SystemTime::now() + Duration::from_secs(1)).await.expect("sweep"), 1);
    assert_eq!(store.commit_version(crashed, null_put(1)).await, Err(MetaError::NoSuchUpload));
    assert_eq!(store.begin_version(&bucket_name("missing"), &key("k")).await, Err(MetaError::NoSuchBucket));
}

/// Unversioned: a PUT replaces the `null` version and releases its content; a delete by id retires it.
pub async fn unversioned_writes_replace_the_null_version(store: &dyn MetaStore) {
    let b = new_bucket(store, "plain", Versioning::Unversioned).await;
    let first = commit(store, &b, "k", null_put(1)).await;
    let second = commit(store, &b, "k", null_put(2)).await;
    assert!(second.seq > first.seq);
    assert!(second.version_id.is_null());
    let latest = store.latest_version(&b, &key("k")).await.expect("latest").expect("exists");
    assert_eq!(latest, second);
    assert_eq!(seeds(&store.list_versions(&b, "", None, 10).await.expect("list")), [Some(2)]);
    assert_eq!(store.content_refs(&cid(1)).await.expect("refs"), 0);
    assert_eq!(store.content_refs(&cid(2)).await.expect("refs"), 1);

    let retired = store.retire_version(&b, &key("k"), &VersionId::null()).await.expect("retire");
    assert_eq!(retired.map(|v| v.seq), Some(second.seq));
    assert_eq!(store.latest_version(&b, &key("k")).await.expect("latest"), None);
    assert_eq!(store.content_refs(&cid(2)).await.expect("refs"), 0);
    assert_eq!(store.retire_version(&b, &key("k"), &VersionId::null()).await.expect("again"), None);
}

/// Enabled: every write is a new version; a delete marker hides the key until it is itself deleted by id.
pub async fn versioned_chains_keep_every_version(store: &dyn MetaStore) {
    let b = new_bucket(store, "versioned", Versioning::Enabled).await;
    let ids: Vec<VersionId> = (0..3).map(|_| VersionId::generate()).collect();
    for (seed, id) in ids.iter().enumerate() {
        commit(store, &b, "k", put(id.clone(), seed as u8 + 1, false)).await;
    }
    assert_eq!(seeds(&store.list_versions(&b, "", None, 10).await.expect("list")), [Some(3), Some(2), Some(1)]);
    let first = store.find_version(&b, &key("k"), &ids[0]).await.expect("find").expect("exists");
    assert_eq!(first.meta().map(|m| m.size), Some(1));

    let marker_id = VersionId::generate();
    let marker = NewVersion { version_id: marker_id.clone(), state: VersionState::DeleteMarker, replace_null: false };
    let marker = store.append_version(&b, &key("k"), marker).await.expect("marker");
    assert!(marker.is_delete_marker());
    let latest = store.latest_version(&b, &key("k")).await.expect("latest").expect("marker is latest");
    assert!(latest.is_delete_marker());
    assert!(store.list_latest(&b, "", None, 10).await.expect("list").is_empty(), "a deleted key is not listed");
    assert_eq!(store.list_versions(&b, "", None, 10).await.expect("list").len(), 4);

    store.retire_version(&b, &key("k"), &marker_id).await.expect("retire marker");
    let latest = store.latest_version(&b, &key("k")).await.expect("latest").expect("exists");
    assert_eq!(latest.version_id, ids[2]);
    store.retire_version(&b, &key("k"), &ids[2]).await.expect("retire newest");
    let latest = store.latest_version(&b, &key("k")).await.expect("latest").expect("exists");
    assert_eq!(latest.version_id, ids[1], "retiring the newest makes the previous one latest");
    assert_eq!(store.content_refs(&cid(3)).await.expect("refs"), 0);
    assert_eq!(store.content_refs(&cid(1)).await.expect("refs"), 1);
}

/// Suspended: writes replace only the `null` version; versions with ids stay.
pub async fn suspended_writes_replace_only_the_null_version(store: &dyn MetaStore) {
    let b = new_bucket(store, "suspended", Versioning::Enabled).await;
    let kept = VersionId::generate();
    commit(store, &b, "k", put(kept.clone(), 1, false)).await;
    store.set_versioning(&b, Versioning::Suspended).await.expect("suspend");
    commit(store, &b, "k", null_put(2)).await;
    commit(store, &b, "k", null_put(3)).await;
    let versions = store.list_versions(&b, "", None, 10).await.expect("list");
    assert_eq!(seeds(&versions), [Some(3), Some(1)]);
    assert_eq!(versions[1].version_id, kept);
    let marker = NewVersion { version_id: VersionId::null(), state: VersionState::DeleteMarker, replace_null: true };
    store.append_version(&b, &key("k"), marker).await.expect("null marker");
    let versions = store.list_versions(&b, "", None, 10).await.expect("list");
    assert_eq!(seeds(&versions), [None, Some(1)], "the null marker replaced the null object");
}

/// A bucket with visible versions cannot be deleted; once they are gone it can, history and all.
pub async fn only_empty_buckets_can_be_deleted(store: &dyn MetaStore) {
    let b = new_bucket(store, "full", Versioning::Enabled).await;
    let id = VersionId::generate();
    commit(store, &b, "k", put(id.clone(), 1, false)).await;
    assert_eq!(store.delete_bucket(&b).await, Err(MetaError::BucketNotEmpty));
    let marker_id = VersionId::generate();
    let marker = NewVersion { version_id: marker_id.clone(), state: VersionState::DeleteMarker, replace_null: false };
    store.append_version(&b, &key("k"), marker).await.expect("marker");
    store.retire_version(&b, &key("k"), &id).await.expect("retire");
    assert_eq!(store.delete_bucket(&b).await, Err(MetaError::BucketNotEmpty), "a delete marker still counts");
    store.retire_version(&b, &key("k"), &marker_id).await.expect("retire marker");
    let pending = store.begin_version(&b, &key("in-flight")).await.expect("begin");
    store.delete_bucket(&b).await.expect("empty bucket deletes");
    assert_eq!(store.bucket(&b).await.expect("get"), None);
    assert_eq!(store.commit_version(pending, null_put(9)).await, Err(MetaError::NoSuchUpload));
}

/// Reference counts follow visible versions across buckets (deduplicated content).
pub async fn content_references_are_counted_across_buckets(store: &dyn MetaStore) {
    let one = new_bucket(store, "one", Versioning::Unversioned).await;
    let two = new_bucket(store, "two", Versioning::Unversioned).await;
    commit(store, &one, "a", null_put(7)).await;
    commit(store, &two, "b", null_put(7)).await;
    commit(store, &two, "c", null_put(7)).await;
    assert_eq!(store.content_refs(&cid(7)).await.expect("refs"), 3);
    store.retire_version(&two, &key("b"), &VersionId::null()).await.expect("retire");
    assert_eq!(store.content_refs(&cid(7)).await.expect("refs"), 2);
    assert_eq!(store.content_refs(&cid(8)).await.expect("refs"), 0);
}

/// Listings are in byte order, honour prefix, `after` and `limit`, and paginate without gaps or repeats.
pub async fn listings_paginate_in_key_order(store: &dyn MetaStore) {
    let b = new_bucket(store, "listing", Versioning::Enabled).await;
    for k in ["b", "a/2", "a/1", "c", "a/3", "B", "é"] {
        commit(store, &b, k, put(VersionId::generate(), 1, false)).await;
        commit(store, &b, k, put(VersionId::generate(), 2, false)).await;
    }
    let keys = |vs: Vec<ObjectVersion>| vs.into_iter().map(|v| v.key.to_string()).collect::<Vec<_>>();
    assert_eq!(
        keys(store.list_latest(&b, "", None, 100).await.expect("list")),
        ["B", "a/1", "a/2", "a/3", "b", "c", "é"]
    );
    assert_eq!(keys(store.list_latest(&b, "a/", Some("a/1"), 100).await.expect("list")), ["a/2", "a/3"]);
    assert_eq!(keys(store.list_latest(&b, "", Some("b"), 1).await.expect("list")), ["c"]);
    assert!(store.list_latest(&b, "zz", None, 100).await.expect("list").is_empty());
    let latest = store.list_latest(&b, "", None, 100).await.expect("list");
    assert!(latest.iter().all(|v| v.meta().map(|m| m.size) == Some(2)), "only the newest version of each key");

    let mut pages = Vec::new();
    let mut after: Option<(String, u64)> = None;
    loop {
        let page = store.list_versions(&b, "", after.as_ref().map(|(k, s)| (k.as_str(), *s)), 3).await.expect("page");
        let Some(last) = page.last() else { break };
        after = Some((last.key.to_string(), last.seq));
        pages.extend(page.into_iter().map(|v| (v.key.to_string(), v.meta().map(|m| m.size))));
    }
    assert_eq!(pages.len(), 14);
    assert_eq!(
        &pages[..4],
        &[("B".into(), Some(2)), ("B".into(), Some(1)), ("a/1".into(), Some(2)), ("a/1".into(), Some(1))]
    );
}

/// Concurrent commits to one key get distinct, increasing sequence numbers; the last commit is the latest.
pub async fn concurrent_commits_are_totally_ordered(store: &dyn MetaStore) {
    let b = new_bucket(store, "race", Versioning::Enabled).await;
    let mut uploads = Vec::new();
    for _ in 0..16 {
        uploads.push(store.begin_version(&b, &key("hot")).await.expect("begin"));
    }
    let commits = uploads
        .iter()
        .enumerate()
        .map(|(i, up)| store.commit_version(*up, put(VersionId::generate(), i as u8 + 1, false)));
    let versions: Vec<ObjectVersion> =
        futures::future::join_all(commits).await.into_iter().map(|r| r.expect("commit")).collect();
    let mut seqs: Vec<u64> = versions.iter().map(|v| v.seq).collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), 16, "sequence numbers are distinct");
    let newest = versions.iter().max_by_key(|v| v.seq).expect("some");
    assert_eq!(store.latest_version(&b, &key("hot")).await.expect("latest").as_ref(), Some(newest));
}

fn upload(id: &str, bucket: &BucketName, k: &str, initiated: SystemTime) -> MultipartUpload {
    MultipartUpload {
        id: id.to_owned(),
        bucket: bucket.clone(),
        key: key(k),
        initiated,
        headers: crate::model::ObjectHeaders { content_type: Some("text/plain".into()), ..Default::default() },
        user_meta: [("color".to_owned(), "blue".to_owned())].into(),
        // One upload names a checksum, the others none: both must round-trip.
        checksum: (id == "u1").then_some(UploadChecksum {
            algorithm: s3ipfs_cid::Algorithm::Sha256,
            kind: s3ipfs_cid::ChecksumType::Composite,
        }),
    }
}

fn part(number: u32, seed: u8) -> UploadPart {
    let leaf = s3ipfs_cid::DagLink { cid: cid(seed), file_size: 262_144, dag_size: 262_144 };
    UploadPart {
        number,
        size: 262_144 + u64::from(seed),
        cid: cid(seed),
        checksums: s3ipfs_cid::Checksums { md5: Some([seed; 16]), crc32: Some(u32::from(seed)), ..Default::default() },
        leaves: vec![leaf, leaf],
        modified_at: SystemTime::now(),
    }
}

/// Multipart uploads keep their parts (a re-upload replaces one) until completed or aborted; listings paginate.
pub async fn multipart_uploads_keep_parts_until_removed(store: &dyn MetaStore) {
    let b = new_bucket(store, "multi", Versioning::Unversioned).await;
    // Whole seconds: stores may keep only milliseconds.
    let now_secs = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(now_secs - 3600);
    for (id, k, when) in [("u2", "b", SystemTime::now()), ("u1", "b", old), ("u3", "a", SystemTime::now())] {
        store.create_multipart(&upload(id, &b, k, when)).await.expect("create");
    }
    assert_eq!(
        store.create_multipart(&upload("x", &bucket_name("gone"), "k", old)).await,
        Err(MetaError::NoSuchBucket)
    );
    let found = store.multipart("u1").await.expect("get").expect("exists");
    assert_eq!(found, upload("u1", &b, "b", old));
    let found = store.multipart("u2").await.expect("get").expect("exists");
    assert_eq!(found.checksum, None);
    assert_eq!(store.multipart("nope").await.expect("get"), None);

    for (n, seed) in [(3, 3), (1, 1), (2, 2)] {
        assert_eq!(store.put_part("u1", &part(n, seed)).await.expect("part"), None);
    }
    let replaced = store.put_part("u1", &part(2, 9)).await.expect("replace").expect("old part returned");
    assert_eq!(replaced.cid, cid(2));
    let parts = store.parts("u1", 0, 100).await.expect("parts");
    assert_eq!(
        parts.iter().map(|p| (p.number, p.size)).collect::<Vec<_>>(),
        [(1, 262_145), (2, 262_153), (3, 262_147)]
    );
    assert_eq!(parts[0], part(1, 1).with_time(parts[0].modified_at));
    assert_eq!(store.parts("u1", 1, 1).await.expect("page").iter().map(|p| p.number).collect::<Vec<_>>(), [2]);
    assert_eq!(store.put_part("nope", &part(1, 1)).await, Err(MetaError::NoSuchUpload));

    let ids = |list: Vec<MultipartUpload>| list.into_iter().map(|u| u.id).collect::<Vec<_>>();
    assert_eq!(ids(store.multiparts(&b, "", None, 10).await.expect("list")), ["u3", "u1", "u2"]);
    assert_eq!(ids(store.multiparts(&b, "b", Some(("b", "u1")), 10).await.expect("list")), ["u2"]);
    assert_eq!(ids(store.stale_multiparts(SystemTime::now() - Duration::from_secs(60)).await.expect("stale")), ["u1"]);

    assert!(store.part_uses(&cid(9)).await.expect("uses"), "the replacing part's content is in use");
    assert!(!store.part_uses(&cid(2)).await.expect("uses"), "the replaced part's content is not");
    let removed = store.remove_multipart("u1").await.expect("remove");
    assert_eq!(removed.len(), 3);
    assert_eq!(store.remove_multipart("u1").await, Err(MetaError::NoSuchUpload));
    assert_eq!(store.parts("u1", 0, 10).await, Err(MetaError::NoSuchUpload));
    assert!(!store.part_uses(&cid(9)).await.expect("uses"), "removed uploads use no content");
    store.delete_bucket(&b).await.expect("uploads do not keep a bucket alive, as in S3");
    assert_eq!(store.multipart("u2").await.expect("get"), None, "deleting the bucket drops its uploads");
}

/// Runs every test body, each on a fresh store from `fresh`.
pub async fn run_all<S: MetaStore, F: Future<Output = S>>(mut fresh: impl FnMut() -> F) {
    users_and_access_keys(&fresh().await).await;
    buckets_are_global_names_listed_per_owner(&fresh().await).await;
    pending_versions_are_never_visible(&fresh().await).await;
    unversioned_writes_replace_the_null_version(&fresh().await).await;
    versioned_chains_keep_every_version(&fresh().await).await;
    suspended_writes_replace_only_the_null_version(&fresh().await).await;
    only_empty_buckets_can_be_deleted(&fresh().await).await;
    content_references_are_counted_across_buckets(&fresh().await).await;
    listings_paginate_in_key_order(&fresh().await).await;
    concurrent_commits_are_totally_ordered(&fresh().await).await;
    multipart_uploads_keep_parts_until_removed(&fresh().await).await;
}
