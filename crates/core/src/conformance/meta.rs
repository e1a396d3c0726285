//! The `MetaStore` conformance suite: `pub async fn` test bodies, each on a fresh store.
//!
//! Adapters generate one test per case with [`meta_conformance_tests!`](crate::meta_conformance_tests), so memory,
//! SQLite and PostgreSQL are held to exactly the same observable behaviour and a failure names its case.

use std::time::{Duration, SystemTime};

use s3ipfs_cid::{Cid, cid::RAW};

use crate::meta::{MetaError, MetaStore, NewVersion, StoredContent};
use crate::model::{
    AccessKey, Bucket, MultipartUpload, ObjectMeta, ObjectVersion, PutCondition, UploadChecksum, UploadPart,
    VersionState, Versioning,
};
use crate::names::{BucketName, ObjectKey, UserId, VersionId};

fn bucket_name(name: &str) -> BucketName {
    BucketName::parse(name).expect("test bucket names are valid")
}

pub(super) fn key(name: &str) -> ObjectKey {
    ObjectKey::parse(name).expect("test keys are valid")
}

pub(super) fn cid(seed: u8) -> Cid {
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

pub(super) fn put(id: VersionId, seed: u8, replace_null: bool) -> NewVersion {
    NewVersion::new(id, object(seed), replace_null)
}

pub(super) fn marker(id: VersionId, replace_null: bool) -> NewVersion {
    NewVersion::new(id, VersionState::DeleteMarker, replace_null)
}

pub(super) fn null_put(seed: u8) -> NewVersion {
    put(VersionId::null(), seed, true)
}

fn seeds(versions: &[ObjectVersion]) -> Vec<Option<u64>> {
    versions.iter().map(|v| v.meta().map(|m| m.size)).collect()
}

pub(super) async fn new_bucket(store: &dyn MetaStore, name: &str, versioning: Versioning) -> BucketName {
    let owner = match store.user_by_email("owner@example.com").await.expect("lookup") {
        Some(user) => user.id,
        None => store.create_user("owner@example.com").await.expect("user").id,
    };
    let name = bucket_name(name);
    let bucket = Bucket { name: name.clone(), owner, created_at: SystemTime::now(), versioning };
    store.create_bucket(&bucket).await.expect("bucket");
    name
}

/// Claims the content `new` names, as an upload does once its bytes are in hand.
pub(super) async fn with_claim(store: &dyn MetaStore, mut new: NewVersion) -> NewVersion {
    if let VersionState::Committed(meta) = &new.state
        && let Some(cid) = meta.cid
    {
        new.claim = Some(store.claim_content(&cid, meta.size).await.expect("claim"));
    }
    new
}

/// Uploads `new` as the next version of `k`: begin, claim the content, commit.
pub(super) async fn commit(store: &dyn MetaStore, bucket: &BucketName, k: &str, new: NewVersion) -> ObjectVersion {
    let upload = store.begin_version(bucket, &key(k)).await.expect("begin");
    let new = with_claim(store, new).await;
    store.commit_version(upload, new).await.expect("commit")
}

/// A part of `upload` stored with a claim on its content.
async fn store_part(store: &dyn MetaStore, upload: &str, part: &UploadPart) -> Result<Option<UploadPart>, MetaError> {
    let claim = store.claim_content(&part.cid, part.size).await.expect("claim");
    let stored = store.put_part(upload, part, claim).await;
    if stored.is_err() {
        store.release_claim(claim).await.expect("release");
    }
    stored
}

/// A time safely after every `zero_since` recorded so far (stores may keep only milliseconds).
fn later() -> SystemTime {
    SystemTime::now() + Duration::from_secs(1)
}

async fn collectable(store: &dyn MetaStore) -> Vec<Cid> {
    let found = store.collectable_content(later(), None, 100).await.expect("collectable");
    found.into_iter().map(|c| c.cid).collect()
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
    assert_eq!(store.access_key(&key.id).await.expect("lookup"), Some(key.clone()));
    assert_eq!(store.access_key("AKUNKNOWN").await.expect("lookup"), None);
    assert!(store.remove_access_key(&key.id).await.expect("revoke"));
    assert_eq!(store.access_key(&key.id).await.expect("lookup after revoke"), None);
    assert!(!store.remove_access_key(&key.id).await.expect("revoke again"));
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
    assert_eq!(store.abort_orphans(SystemTime::now() + Duration::from_secs(1)).await.expect("sweep"), 1);
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
    let marker = store.append_version(&b, &key("k"), marker(marker_id.clone(), false)).await.expect("marker");
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
    store.append_version(&b, &key("k"), marker(VersionId::null(), true)).await.expect("null marker");
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
    store.append_version(&b, &key("k"), marker(marker_id.clone(), false)).await.expect("marker");
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
    let mut news = Vec::new();
    for i in 0..uploads.len() {
        news.push(with_claim(store, put(VersionId::generate(), i as u8 + 1, false)).await);
    }
    let commits = uploads.iter().zip(news).map(|(up, new)| store.commit_version(*up, new));
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
        assert_eq!(store_part(store, "u1", &part(n, seed)).await.expect("part"), None);
    }
    assert_eq!(store.content_refs(&cid(2)).await.expect("refs"), 1, "a part holds its content");
    let replaced = store_part(store, "u1", &part(2, 9)).await.expect("replace").expect("old part returned");
    assert_eq!(replaced.cid, cid(2));
    let parts = store.parts("u1", 0, 100).await.expect("parts");
    assert_eq!(
        parts.iter().map(|p| (p.number, p.size)).collect::<Vec<_>>(),
        [(1, 262_145), (2, 262_153), (3, 262_147)]
    );
    assert_eq!(parts[0], part(1, 1).with_time(parts[0].modified_at));
    assert_eq!(store.parts("u1", 1, 1).await.expect("page").iter().map(|p| p.number).collect::<Vec<_>>(), [2]);
    assert_eq!(store_part(store, "nope", &part(1, 1)).await, Err(MetaError::NoSuchUpload));
    assert_eq!(store.content_refs(&cid(1)).await.expect("refs"), 1, "a refused part's claim was released");

    let ids = |list: Vec<MultipartUpload>| list.into_iter().map(|u| u.id).collect::<Vec<_>>();
    assert_eq!(ids(store.multiparts(&b, "", None, 10).await.expect("list")), ["u3", "u1", "u2"]);
    assert_eq!(ids(store.multiparts(&b, "b", Some(("b", "u1")), 10).await.expect("list")), ["u2"]);
    assert_eq!(ids(store.stale_multiparts(SystemTime::now() - Duration::from_secs(60)).await.expect("stale")), ["u1"]);

    assert_eq!(store.content_refs(&cid(9)).await.expect("refs"), 1, "the replacing part's content is held");
    assert_eq!(store.content_refs(&cid(2)).await.expect("refs"), 0, "the replaced part's content is not");
    let removed = store.remove_multipart("u1").await.expect("remove");
    assert_eq!(removed.len(), 3);
    assert_eq!(store.remove_multipart("u1").await, Err(MetaError::NoSuchUpload));
    assert_eq!(store.parts("u1", 0, 10).await, Err(MetaError::NoSuchUpload));
    assert_eq!(store.content_refs(&cid(9)).await.expect("refs"), 0, "removed uploads hold no content");
    store_part(store, "u2", &part(1, 5)).await.expect("part");
    store.delete_bucket(&b).await.expect("uploads do not keep a bucket alive, as in S3");
    assert_eq!(store.multipart("u2").await.expect("get"), None, "deleting the bucket drops its uploads");
    assert_eq!(store.content_refs(&cid(5)).await.expect("refs"), 0, "and their parts' references");
}

/// A claim holds content until a commit takes it over or it is released; references count every holder.
pub async fn claims_hold_content_until_taken_over_or_released(store: &dyn MetaStore) {
    let b = new_bucket(store, "claims", Versioning::Enabled).await;
    let first = store.claim_content(&cid(1), 1).await.expect("claim");
    let second = store.claim_content(&cid(1), 1).await.expect("a second writer of the same bytes");
    assert_eq!(store.content_refs(&cid(1)).await.expect("refs"), 2);
    store.release_claim(second).await.expect("release");
    store.release_claim(second).await.expect("releasing twice is fine");
    assert_eq!(store.content_refs(&cid(1)).await.expect("refs"), 1);

    let upload = store.begin_version(&b, &key("k")).await.expect("begin");
    let mut new = put(VersionId::generate(), 1, false);
    new.claim = Some(first);
    store.commit_version(upload, new).await.expect("commit takes the claim over");
    assert_eq!(store.content_refs(&cid(1)).await.expect("refs"), 1, "one reference: the version's");
    store.release_claim(first).await.expect("a taken-over claim is gone");
    assert_eq!(store.content_refs(&cid(1)).await.expect("refs"), 1);

    let other = store.claim_content(&cid(2), 2).await.expect("claim");
    let upload = store.begin_version(&b, &key("k")).await.expect("begin");
    let mut wrong = put(VersionId::generate(), 1, false);
    wrong.claim = Some(other);
    assert!(matches!(store.commit_version(upload, wrong).await, Err(MetaError::Invalid(_))), "a claim on other bytes");
    assert_eq!(store.content_refs(&cid(2)).await.expect("refs"), 1, "the refused commit left the claim open");

    let _crashed = store.claim_content(&cid(3), 3).await.expect("claim");
    store.abort_orphans(later()).await.expect("sweep");
    assert_eq!(store.content_refs(&cid(2)).await.expect("refs"), 0, "a crash's claims are released");
    assert_eq!(store.content_refs(&cid(3)).await.expect("refs"), 0);
}

/// Only content unreferenced since before the cutoff is collectable; marking it refuses claims until it is forgotten.
pub async fn collection_takes_only_content_unreferenced_past_the_cutoff(store: &dyn MetaStore) {
    let b = new_bucket(store, "collect", Versioning::Unversioned).await;
    commit(store, &b, "kept", null_put(1)).await;
    commit(store, &b, "replaced", null_put(2)).await;
    commit(store, &b, "replaced", null_put(3)).await;
    let pending = store.claim_content(&cid(4), 4).await.expect("a write in progress");
    store.create_multipart(&upload("up", &b, "m", SystemTime::now())).await.expect("upload");
    store_part(store, "up", &part(1, 5)).await.expect("part");
    assert_eq!(collectable(store).await, [cid(2)], "only the replaced version's content");
    let early = SystemTime::now() - Duration::from_secs(3600);
    assert!(store.collectable_content(early, None, 100).await.expect("list").is_empty(), "within the grace period");
    assert!(store.mark_collectable(early, 100).await.expect("mark").is_empty());

    store.release_claim(pending).await.expect("release");
    store.retire_version(&b, &key("kept"), &VersionId::null()).await.expect("delete");
    let mut gone = collectable(store).await;
    gone.sort_by_key(Cid::to_bytes);
    let mut expected = [cid(1), cid(2), cid(4)];
    expected.sort_by_key(Cid::to_bytes);
    assert_eq!(gone, expected);
    let page = store.collectable_content(later(), Some(&gone[0]), 1).await.expect("page");
    assert_eq!(page.len(), 1, "pages follow CID byte order");

    let marked = store.mark_collectable(later(), 2).await.expect("mark");
    assert_eq!(marked.len(), 2, "at most the limit");
    let marked_cid = marked[0].cid;
    assert_eq!(marked[0].size, u64::from(marked_cid.digest()[0]), "rows carry their size");
    assert_eq!(store.claim_content(&marked_cid, 1).await, Err(MetaError::ContentBusy));
    let again = store.mark_collectable(later(), 10).await.expect("mark again");
    assert_eq!(again.len(), 3, "rows marked before come back with the rest: {again:?}");
    assert_eq!(collectable(store).await.len(), 3, "a dry run still counts marked rows: the next collection takes them");

    let cids: Vec<Cid> = again.iter().map(|c| c.cid).collect();
    store.forget_content(&cids).await.expect("forget");
    assert!(store.mark_collectable(later(), 10).await.expect("mark").is_empty());
    assert!(collectable(store).await.is_empty());
    let reclaimed = store.claim_content(&marked_cid, 1).await.expect("forgotten content can be stored anew");
    assert_eq!(store.content_refs(&marked_cid).await.expect("refs"), 1);
    store.release_claim(reclaimed).await.expect("release");
    store.forget_content(&[cid(5)]).await.expect("forgetting unmarked content is a no-op");
    assert_eq!(store.content_refs(&cid(5)).await.expect("refs"), 1, "the part still holds it");
}

/// A copy (a commit without a claim) needs its content still stored: collected or marked content is `ContentGone`.
pub async fn copies_of_collected_content_are_refused(store: &dyn MetaStore) {
    let b = new_bucket(store, "copies", Versioning::Unversioned).await;
    commit(store, &b, "src", null_put(1)).await;
    store.append_version(&b, &key("copy"), null_put(1)).await.expect("a copy adds a reference");
    assert_eq!(store.content_refs(&cid(1)).await.expect("refs"), 2);
    store.retire_version(&b, &key("src"), &VersionId::null()).await.expect("delete");
    store.retire_version(&b, &key("copy"), &VersionId::null()).await.expect("delete");
    let marked: Vec<StoredContent> = store.mark_collectable(later(), 10).await.expect("mark");
    assert_eq!(marked.len(), 1);
    assert_eq!(store.append_version(&b, &key("late"), null_put(1)).await, Err(MetaError::ContentGone));
    store.forget_content(&[cid(1)]).await.expect("forget");
    assert_eq!(store.append_version(&b, &key("late"), null_put(1)).await, Err(MetaError::ContentGone));
    assert_eq!(store.latest_version(&b, &key("late")).await.expect("latest"), None, "nothing was committed");
}

/// Write conditions are decided in the commit: of racing `If-None-Match: *` commits exactly one wins.
pub async fn conditional_commits_are_decided_in_the_commit(store: &dyn MetaStore) {
    let b = new_bucket(store, "cond", Versioning::Enabled).await;
    let mut uploads = Vec::new();
    for i in 0..16u8 {
        let upload = store.begin_version(&b, &key("new")).await.expect("begin");
        let mut new = with_claim(store, put(VersionId::generate(), i + 1, false)).await;
        new.condition = Some(PutCondition::IfNoneMatchAny);
        uploads.push((upload, new));
    }
    let commits = uploads.into_iter().map(|(up, new)| store.commit_version(up, new));
    let results = futures::future::join_all(commits).await;
    let won: Vec<&ObjectVersion> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(won.len(), 1, "exactly one winner: {results:?}");
    assert!(results.iter().filter(|r| r.is_err()).all(|r| r == &Err(MetaError::PreconditionFailed)));
    assert_eq!(store.list_versions(&b, "new", None, 100).await.expect("list").len(), 1);
    let etag = won[0].meta().map(|m| m.etag.clone()).expect("object");

    let if_match = |etag: &str| Some(PutCondition::IfMatch(etag.to_owned()));
    for (condition, expected) in [
        (if_match("\"other\""), Err(MetaError::PreconditionFailed)),
        (Some(PutCondition::IfNoneMatchAny), Err(MetaError::PreconditionFailed)),
        (if_match(&etag), Ok(())),
    ] {
        let upload = store.begin_version(&b, &key("new")).await.expect("begin");
        let mut new = with_claim(store, put(VersionId::generate(), 40, false)).await;
        new.condition = condition;
        let claim = new.claim;
        let result = store.commit_version(upload, new).await;
        assert_eq!(result.as_ref().map(|_| ()).map_err(Clone::clone), expected);
        if let (Err(_), Some(claim)) = (result, claim) {
            store.release_claim(claim).await.expect("release");
        }
    }
    store.append_version(&b, &key("new"), marker(VersionId::generate(), false)).await.expect("delete marker");
    let upload = store.begin_version(&b, &key("new")).await.expect("begin");
    let mut new = with_claim(store, put(VersionId::generate(), 41, false)).await;
    new.condition = if_match(&etag);
    assert_eq!(store.commit_version(upload, new.clone()).await, Err(MetaError::NoSuchKey), "a delete marker");
    new.condition = Some(PutCondition::IfNoneMatchAny);
    store.commit_version(upload, new).await.expect("If-None-Match: * passes over a delete marker");
}

/// Completing an upload removes it and its parts' references in the commit; a gone upload commits nothing.
pub async fn completing_an_upload_is_part_of_the_commit(store: &dyn MetaStore) {
    let b = new_bucket(store, "complete", Versioning::Unversioned).await;
    store.create_multipart(&upload("done", &b, "k", SystemTime::now())).await.expect("upload");
    store_part(store, "done", &part(1, 6)).await.expect("part");
    let upload = store.begin_version(&b, &key("k")).await.expect("begin");
    let mut new = with_claim(store, null_put(7)).await;
    new.completes = Some("missing".into());
    assert_eq!(store.commit_version(upload, new.clone()).await, Err(MetaError::NoSuchUpload));
    assert_eq!(store.latest_version(&b, &key("k")).await.expect("latest"), None);
    new.completes = Some("done".into());
    store.commit_version(upload, new).await.expect("complete");
    assert_eq!(store.multipart("done").await.expect("get"), None, "the upload is gone");
    assert_eq!(store.content_refs(&cid(6)).await.expect("refs"), 0, "and its parts' references");
    assert_eq!(store.content_refs(&cid(7)).await.expect("refs"), 1);
}

/// A lease excludes other holders until it expires; its holder renews it; released leases are free.
pub async fn leases_exclude_other_holders_until_they_expire(store: &dyn MetaStore) {
    let long = Duration::from_secs(60);
    assert!(store.acquire_lease("gc", "a", long).await.expect("acquire"));
    assert!(!store.acquire_lease("gc", "b", long).await.expect("taken"));
    assert!(store.acquire_lease("gc", "a", long).await.expect("renew"));
    assert!(store.acquire_lease("other", "b", long).await.expect("another lease"));
    store.release_lease("gc", "b").await.expect("not b's to release");
    assert!(!store.acquire_lease("gc", "b", long).await.expect("still a's"));
    store.release_lease("gc", "a").await.expect("release");
    assert!(store.acquire_lease("gc", "b", Duration::ZERO).await.expect("free"));
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert!(store.acquire_lease("gc", "c", long).await.expect("an expired lease is free"));
}

/// Generates one `#[tokio::test]` per `MetaStore` conformance case, each on a fresh store from `$fresh().await`.
/// `$peer(&store, name)` opens a second handle on the same data writing for replica `name`.
#[macro_export]
macro_rules! meta_conformance_tests {
    ($fresh:path, $peer:path) => {
        $crate::meta_conformance_tests!(@cases $fresh; meta;
            users_and_access_keys,
            buckets_are_global_names_listed_per_owner,
            pending_versions_are_never_visible,
            unversioned_writes_replace_the_null_version,
            versioned_chains_keep_every_version,
            suspended_writes_replace_only_the_null_version,
            only_empty_buckets_can_be_deleted,
            content_references_are_counted_across_buckets,
            listings_paginate_in_key_order,
            concurrent_commits_are_totally_ordered,
            multipart_uploads_keep_parts_until_removed,
            claims_hold_content_until_taken_over_or_released,
            collection_takes_only_content_unreferenced_past_the_cutoff,
            copies_of_collected_content_are_refused,
            conditional_commits_are_decided_in_the_commit,
            completing_an_upload_is_part_of_the_commit,
            leases_exclude_other_holders_until_they_expire
        );
        $crate::meta_conformance_tests!(@cases $fresh; meta_shared;
            racing_commits_to_one_key_get_distinct_ordered_seqs,
            racing_null_writes_leave_one_version_and_exact_references,
            racing_deletes_by_id_retire_once,
            racing_if_none_match_writes_have_one_winner,
            racing_if_match_writes_have_one_winner,
            racing_bucket_creations_have_one_winner,
            keys_with_wildcards_and_multibyte_characters_are_exact,
            grouped_listings_return_one_key_per_common_prefix,
            retiring_the_latest_version_uncovers_the_previous_one,
            a_get_reads_the_bucket_and_the_latest_version_together,
            history_is_pruned_but_visible_versions_stay
        );
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn orphans_are_only_those_of_stopped_replicas() {
            let store = $fresh().await;
            let peer = $peer(&store, "peer-replica");
            $crate::conformance::meta_shared::orphans_are_only_those_of_stopped_replicas(&store, &peer).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn delimiter_listings_page_through_prefixes_and_delete_markers() {
            let store = ::std::sync::Arc::new($fresh().await);
            $crate::conformance::meta_shared::delimiter_listings_page_through_prefixes_and_delete_markers(store).await;
        }
    };
    (@cases $fresh:path; $module:ident; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let store = $fresh().await;
                $crate::conformance::$module::$case(&store).await;
            }
        )*
    };
}
