//! Use cases over the in-memory adapters: S3 semantics without any protocol.

use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt as _;
use s3ipfs_cid::{Algorithm, Profile};
use s3ipfs_core::service::{ListParams, PutObject, VersionsParams};
use s3ipfs_core::{
    BucketName, Gateway, MemoryContent, MemoryMeta, MetaStore as _, ObjectKey, PutCondition, ServiceError, UserId,
    VersionId,
};

struct World {
    gw: Gateway,
    alice: UserId,
    bob: UserId,
}

async fn world() -> World {
    let meta = Arc::new(MemoryMeta::new());
    let alice = meta.create_user("alice@example.com").await.expect("user").id;
    let bob = meta.create_user("bob@example.com").await.expect("user").id;
    World { gw: Gateway::new(meta, Arc::new(MemoryContent::new()), Profile::KUBO_V1), alice, bob }
}

fn b(name: &str) -> BucketName {
    BucketName::parse(name).expect("valid bucket")
}

fn k(name: &str) -> ObjectKey {
    ObjectKey::parse(name).expect("valid key")
}

fn body(pieces: &[&'static [u8]]) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
    futures::stream::iter(pieces.iter().map(|p| Ok(Bytes::from_static(p))).collect::<Vec<_>>())
}

async fn put(
    w: &World,
    bucket: &str,
    key: &str,
    data: &'static [u8],
) -> Result<s3ipfs_core::ObjectVersion, ServiceError> {
    w.gw.put_object(w.alice, &b(bucket), &k(key), PutObject::default(), body(&[data]), |_| Ok(()))
        .await
        .map(|l| l.version)
}

async fn get(w: &World, bucket: &str, key: &str) -> Result<Vec<u8>, ServiceError> {
    let v = w.gw.object_version(w.alice, &b(bucket), &k(key), None).await?.version;
    let size = v.meta().map_or(0, |m| m.size);
    let chunks: Vec<Bytes> = w.gw.read_object(&v, 0..size).await?.try_collect().await.map_err(ServiceError::Content)?;
    Ok(chunks.concat())
}

#[tokio::test]
async fn a_put_stores_bytes_under_the_cid_ipfs_add_gives_with_an_md5_etag() {
    let w = world().await;
    w.gw.create_bucket(w.alice, &b("photos")).await.expect("bucket");
    let v = w
        .gw
        .put_object(w.alice, &b("photos"), &k("hello.txt"), PutObject::default(), body(&[b"hello ", b"world"]), |_| {
            Ok(())
        })
        .await
        .expect("put");
    let meta = v.version.meta().expect("object");
    assert_eq!(
        meta.cid.map(|c| c.to_string()).as_deref(),
        Some("bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e")
    );
    assert_eq!(meta.etag, "\"5eb63bbbe01eeed093cb22bb8f5acdc3\"");
    assert!(v.version.version_id.is_null(), "unversioned buckets write the null version");
    assert_eq!(v.reported_version_id(), None, "and S3 reports no version id for it");
    assert_eq!(get(&w, "photos", "hello.txt").await.expect("get"), b"hello world");
}

#[tokio::test]
async fn another_users_bucket_is_access_denied_and_a_missing_one_is_no_such_bucket() {
    let w = world().await;
    w.gw.create_bucket(w.alice, &b("private")).await.expect("bucket");
    assert!(matches!(w.gw.create_bucket(w.alice, &b("private")).await, Err(ServiceError::BucketAlreadyOwnedByYou)));
    assert!(matches!(w.gw.create_bucket(w.bob, &b("private")).await, Err(ServiceError::BucketAlreadyExists)));
    let denied = w.gw.put_object(w.bob, &b("private"), &k("x"), PutObject::default(), body(&[b"x"]), |_| Ok(())).await;
    assert!(matches!(denied, Err(ServiceError::AccessDenied)));
    assert!(matches!(
        w.gw.list_objects(w.bob, &b("private"), &ListParams::default()).await,
        Err(ServiceError::AccessDenied)
    ));
    assert!(matches!(put(&w, "missing", "x", b"x").await, Err(ServiceError::NoSuchBucket)));
    assert!(w.gw.list_buckets(w.bob).await.expect("list").is_empty());
}

#[tokio::test]
async fn a_refused_checksum_or_a_broken_body_leaves_nothing_visible() {
    let w = world().await;
    w.gw.create_bucket(w.alice, &b("strict")).await.expect("bucket");
    let request = PutObject { checksums: s3ipfs_cid::ChecksumSet::NONE.with(Algorithm::Crc32), ..Default::default() };
    let refused =
        w.gw.put_object(w.alice, &b("strict"), &k("k"), request, body(&[b"data"]), |sums| {
            assert!(sums.crc32.is_some(), "the requested checksum was computed");
            Err(ServiceError::BadDigest(Algorithm::Crc32))
        })
        .await;
    assert!(matches!(refused, Err(ServiceError::BadDigest(Algorithm::Crc32))));
    assert!(matches!(get(&w, "strict", "k").await, Err(ServiceError::NoSuchKey { .. })));

    let broken =
        futures::stream::iter(vec![Ok(Bytes::from_static(b"part")), Err(std::io::Error::other("connection reset"))]);
    let result = w.gw.put_object(w.alice, &b("strict"), &k("k"), PutObject::default(), broken, |_| Ok(())).await;
    assert!(matches!(result, Err(ServiceError::IncompleteBody(_))));
    assert!(matches!(get(&w, "strict", "k").await, Err(ServiceError::NoSuchKey { .. })));
    assert!(
        w.gw.list_objects(w.alice, &b("strict"), &ListParams { max_keys: 10, ..Default::default() })
            .await
            .expect("list")
            .objects
            .is_empty()
    );
}

#[tokio::test]
async fn deletes_follow_the_buckets_versioning_state() {
    let w = world().await;
    w.gw.create_bucket(w.alice, &b("vers")).await.expect("bucket");
    put(&w, "vers", "plain", b"1").await.expect("put");
    let out = w.gw.delete_object(w.alice, &b("vers"), &k("plain"), None).await.expect("delete");
    assert_eq!((out.version_id, out.delete_marker), (None, false), "unversioned: the object is simply gone");
    assert!(matches!(get(&w, "vers", "plain").await, Err(ServiceError::NoSuchKey { delete_marker: None })));

    w.gw.set_versioning(w.alice, &b("vers"), true).await.expect("enable");
    let v1 = put(&w, "vers", "doc", b"one").await.expect("put");
    put(&w, "vers", "doc", b"two").await.expect("put");
    assert!(!v1.version_id.is_null());
    let out = w.gw.delete_object(w.alice, &b("vers"), &k("doc"), None).await.expect("delete");
    assert!(out.delete_marker);
    let marker = out.version_id.expect("marker id");
    assert!(
        matches!(get(&w, "vers", "doc").await, Err(ServiceError::NoSuchKey { delete_marker: Some(ref m) }) if *m == marker)
    );
    let by_id = w.gw.object_version(w.alice, &b("vers"), &k("doc"), Some(&marker)).await;
    assert!(matches!(by_id, Err(ServiceError::DeleteMarkerVersion { .. })));
    let old = w.gw.object_version(w.alice, &b("vers"), &k("doc"), Some(&v1.version_id)).await.expect("old version");
    assert_eq!(old.version.meta().map(|m| m.size), Some(3));
    assert_eq!(old.reported_version_id(), Some(&v1.version_id));
    w.gw.delete_object(w.alice, &b("vers"), &k("doc"), Some(&marker)).await.expect("remove marker");
    assert_eq!(get(&w, "vers", "doc").await.expect("restored"), b"two");
    let missing = w.gw.object_version(w.alice, &b("vers"), &k("doc"), Some(&VersionId::generate())).await;
    assert!(matches!(missing, Err(ServiceError::NoSuchVersion)));

    let listing =
        w.gw.list_versions(w.alice, &b("vers"), &VersionsParams { max_keys: 100, ..Default::default() })
            .await
            .expect("versions");
    let flags: Vec<(String, bool)> = listing.versions.iter().map(|(v, latest)| (v.key.to_string(), *latest)).collect();
    assert_eq!(flags, [("doc".to_string(), true), ("doc".to_string(), false)]);
}

#[tokio::test]
async fn conditional_puts_are_refused_when_their_condition_fails() {
    let w = world().await;
    w.gw.create_bucket(w.alice, &b("cond")).await.expect("bucket");
    let first = put(&w, "cond", "k", b"v1").await.expect("put");
    let etag = first.meta().expect("object").etag.clone();
    let once = PutObject { condition: Some(PutCondition::IfNoneMatchAny), ..Default::default() };
    let refused = w.gw.put_object(w.alice, &b("cond"), &k("k"), once.clone(), body(&[b"v2"]), |_| Ok(())).await;
    assert!(matches!(refused, Err(ServiceError::PreconditionFailed)));
    w.gw.put_object(w.alice, &b("cond"), &k("new"), once, body(&[b"v2"]), |_| Ok(())).await.expect("absent key");
    let wrong = PutObject { condition: Some(PutCondition::IfMatch("\"nope\"".into())), ..Default::default() };
    assert!(matches!(
        w.gw.put_object(w.alice, &b("cond"), &k("k"), wrong, body(&[b"v3"]), |_| Ok(())).await,
        Err(ServiceError::PreconditionFailed)
    ));
    let right = PutObject { condition: Some(PutCondition::IfMatch(etag)), ..Default::default() };
    w.gw.put_object(w.alice, &b("cond"), &k("k"), right, body(&[b"v3"]), |_| Ok(())).await.expect("matching etag");
    assert_eq!(get(&w, "cond", "k").await.expect("get"), b"v3");
}

#[tokio::test]
async fn listings_group_by_delimiter_and_paginate_like_s3() {
    let w = world().await;
    w.gw.create_bucket(w.alice, &b("tree")).await.expect("bucket");
    for key in ["a/1", "a/2", "b", "c/d/e", "c/x", "d"] {
        put(&w, "tree", key, b"x").await.expect("put");
    }
    let list = |after: Option<&str>, max_keys| ListParams {
        prefix: String::new(),
        delimiter: Some("/".into()),
        after: after.map(str::to_owned),
        max_keys,
    };
    let all = w.gw.list_objects(w.alice, &b("tree"), &list(None, 1000)).await.expect("list");
    let keys: Vec<String> = all.objects.iter().map(|v| v.key.to_string()).collect();
    assert_eq!(keys, ["b", "d"]);
    assert_eq!(all.common_prefixes, ["a/", "c/"]);
    assert!(!all.truncated);

    let page1 = w.gw.list_objects(w.alice, &b("tree"), &list(None, 2)).await.expect("page 1");
    assert_eq!(
        (page1.common_prefixes.clone(), page1.objects.len(), page1.truncated),
        (vec!["a/".to_string()], 1, true)
    );
    assert_eq!(page1.next_after.as_deref(), Some("b"));
    let page2 = w.gw.list_objects(w.alice, &b("tree"), &list(Some("b"), 2)).await.expect("page 2");
    assert_eq!(page2.common_prefixes, ["c/"]);
    assert_eq!(page2.objects.iter().map(|v| v.key.to_string()).collect::<Vec<_>>(), ["d"]);
    assert!(!page2.truncated, "exactly full and nothing left");
    let from_prefix =
        w.gw.list_objects(w.alice, &b("tree"), &list(Some("a/"), 10)).await.expect("after a common prefix");
    assert_eq!(from_prefix.common_prefixes, ["c/"], "a group at the marker is not repeated");

    let nested = ListParams { prefix: "c/".into(), delimiter: Some("/".into()), after: None, max_keys: 10 };
    let nested = w.gw.list_objects(w.alice, &b("tree"), &nested).await.expect("nested");
    assert_eq!(nested.common_prefixes, ["c/d/"]);
    assert_eq!(nested.objects.iter().map(|v| v.key.to_string()).collect::<Vec<_>>(), ["c/x"]);
    let flat = ListParams { delimiter: Some(String::new()), max_keys: 10, ..Default::default() };
    assert_eq!(
        w.gw.list_objects(w.alice, &b("tree"), &flat).await.expect("flat").objects.len(),
        6,
        "empty delimiter means none"
    );
}

#[tokio::test]
async fn a_copy_names_the_same_content_as_a_new_version() {
    let w = world().await;
    w.gw.create_bucket(w.alice, &b("src")).await.expect("bucket");
    let source = put(&w, "src", "orig", b"shared bytes").await.expect("put");
    let copy = w.gw.copy_object(w.alice, &source, &b("src"), &k("copy"), None, None).await.expect("copy");
    assert_eq!(copy.version.meta().and_then(|m| m.cid), source.meta().and_then(|m| m.cid));
    assert_eq!(w.gw.meta().content_refs(&source.meta().and_then(|m| m.cid).expect("cid")).await.expect("refs"), 2);
    assert_eq!(get(&w, "src", "copy").await.expect("get"), b"shared bytes");
}
