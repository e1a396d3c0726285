//! S3 behaviour through the real aws-sdk-s3 client, calling the service in-process (no sockets).

mod common;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketVersioningStatus, Delete, ObjectIdentifier, VersioningConfiguration};
use common::{body_of, client, client_at, code, env, env_with, status};
use s3ipfs_s3::ApiOptions;

#[tokio::test]
async fn buckets_are_created_listed_located_and_deleted_per_owner() {
    let e = env().await;
    e.alice.create_bucket().bucket("alpha").send().await.expect("create");
    e.alice.create_bucket().bucket("beta").send().await.expect("create");
    let err = e.alice.create_bucket().bucket("alpha").send().await.expect_err("duplicate");
    assert_eq!(code(&err), "BucketAlreadyOwnedByYou");
    let err = e.bob.create_bucket().bucket("alpha").send().await.expect_err("taken");
    assert_eq!(code(&err), "BucketAlreadyExists");
    let err = e.alice.create_bucket().bucket("Bad_Name").send().await.expect_err("invalid");
    assert_eq!(code(&err), "InvalidBucketName");

    let names: Vec<String> = e
        .alice
        .list_buckets()
        .send()
        .await
        .expect("list")
        .buckets()
        .iter()
        .filter_map(|b| b.name().map(str::to_owned))
        .collect();
    assert_eq!(names, ["alpha", "beta"]);
    assert!(e.bob.list_buckets().send().await.expect("list").buckets().is_empty(), "bob sees none of alice's buckets");

    e.alice.head_bucket().bucket("alpha").send().await.expect("head");
    let err = e.bob.head_bucket().bucket("alpha").send().await.expect_err("not bob's");
    assert_eq!(status(&err), 403);
    let err = e.alice.head_bucket().bucket("missing").send().await.expect_err("missing");
    assert_eq!(status(&err), 404);
    let location = e.alice.get_bucket_location().bucket("alpha").send().await.expect("location");
    assert!(location.location_constraint().is_none_or(|l| l.as_str().is_empty()), "us-east-1 is reported empty");

    e.alice.put_object().bucket("alpha").key("k").body(ByteStream::from_static(b"x")).send().await.expect("put");
    let err = e.alice.delete_bucket().bucket("alpha").send().await.expect_err("not empty");
    assert_eq!(code(&err), "BucketNotEmpty");
    e.alice.delete_object().bucket("alpha").key("k").send().await.expect("delete object");
    e.alice.delete_bucket().bucket("alpha").send().await.expect("delete bucket");
    let err = e.alice.delete_bucket().bucket("alpha").send().await.expect_err("gone");
    assert_eq!(code(&err), "NoSuchBucket");
}

#[tokio::test]
async fn objects_round_trip_with_metadata_cid_ranges_and_conditions() {
    let e = env().await;
    e.alice.create_bucket().bucket("objects").send().await.expect("create");
    let put = e
        .alice
        .put_object()
        .bucket("objects")
        .key("dir/hello.txt")
        .body(ByteStream::from_static(b"hello world"))
        .content_type("text/plain")
        .cache_control("max-age=60")
        .metadata("Color", "blue")
        .send()
        .await
        .expect("put");
    assert_eq!(put.e_tag(), Some("\"5eb63bbbe01eeed093cb22bb8f5acdc3\""));
    assert_eq!(put.version_id(), None, "unversioned buckets report no version id");

    let got = e.alice.get_object().bucket("objects").key("dir/hello.txt").send().await.expect("get");
    assert_eq!(got.content_type(), Some("text/plain"));
    assert_eq!(got.cache_control(), Some("max-age=60"));
    assert_eq!(got.metadata().and_then(|m| m.get("color")).map(String::as_str), Some("blue"));
    assert_eq!(
        got.metadata().and_then(|m| m.get("cid")).map(String::as_str),
        Some("bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e")
    );
    assert_eq!(got.content_length(), Some(11));
    assert_eq!(body_of(got).await, b"hello world");

    let part =
        e.alice.get_object().bucket("objects").key("dir/hello.txt").range("bytes=6-").send().await.expect("range");
    assert_eq!(part.content_range(), Some("bytes 6-10/11"));
    assert_eq!(body_of(part).await, b"world");
    let err =
        e.alice.get_object().bucket("objects").key("dir/hello.txt").range("bytes=20-30").send().await.expect_err("416");
    assert_eq!((code(&err).as_str(), status(&err)), ("InvalidRange", 416));

    let etag = "\"5eb63bbbe01eeed093cb22bb8f5acdc3\"";
    let err =
        e.alice.get_object().bucket("objects").key("dir/hello.txt").if_none_match(etag).send().await.expect_err("304");
    assert_eq!(status(&err), 304);
    let err = e
        .alice
        .get_object()
        .bucket("objects")
        .key("dir/hello.txt")
        .if_match("\"other\"")
        .send()
        .await
        .expect_err("412");
    assert_eq!(status(&err), 412);
    e.alice.get_object().bucket("objects").key("dir/hello.txt").if_match(etag).send().await.expect("matching etag");

    let head = e.alice.head_object().bucket("objects").key("dir/hello.txt").send().await.expect("head");
    assert_eq!((head.content_length(), head.e_tag()), (Some(11), Some(etag)));
    let err = e.alice.get_object().bucket("objects").key("nope").send().await.expect_err("missing");
    assert_eq!(code(&err), "NoSuchKey");
    let err = e.bob.get_object().bucket("objects").key("dir/hello.txt").send().await.expect_err("other tenant");
    assert_eq!(code(&err), "AccessDenied");

    let once = e
        .alice
        .put_object()
        .bucket("objects")
        .key("dir/hello.txt")
        .if_none_match("*")
        .body(ByteStream::from_static(b"2"));
    assert_eq!(status(&once.send().await.expect_err("exists")), 412);
}

#[tokio::test]
async fn a_wrong_checksum_is_bad_digest_and_stores_nothing() {
    let e = env().await;
    e.alice.create_bucket().bucket("digest").send().await.expect("create");
    let err = e
        .alice
        .put_object()
        .bucket("digest")
        .key("k")
        .content_md5("AAAAAAAAAAAAAAAAAAAAAA==")
        .body(ByteStream::from_static(b"payload"))
        .send()
        .await
        .expect_err("bad md5");
    assert_eq!(code(&err), "BadDigest");
    let err = e
        .alice
        .put_object()
        .bucket("digest")
        .key("k")
        .checksum_crc32("AAAAAA==")
        .body(ByteStream::from_static(b"payload"))
        .send()
        .await
        .expect_err("bad crc32");
    assert_eq!(code(&err), "BadDigest");
    let err = e.alice.head_object().bucket("digest").key("k").send().await.expect_err("nothing stored");
    assert_eq!(status(&err), 404);

    let ok = e
        .alice
        .put_object()
        .bucket("digest")
        .key("k")
        .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Crc32C)
        .body(ByteStream::from_static(b"hello world"))
        .send()
        .await
        .expect("good checksum");
    assert_eq!(ok.checksum_crc32_c(), Some("yZRlqg=="));
    let head = e
        .alice
        .head_object()
        .bucket("digest")
        .key("k")
        .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
        .send()
        .await
        .expect("head");
    assert_eq!(head.checksum_crc32_c(), Some("yZRlqg=="));
}

#[tokio::test]
async fn versioning_keeps_versions_and_delete_markers_hide_keys() {
    let e = env().await;
    e.alice.create_bucket().bucket("history").send().await.expect("create");
    let status_of = |c: &Client| c.get_bucket_versioning().bucket("history").send();
    assert_eq!(status_of(&e.alice).await.expect("get").status(), None);
    let enabled = VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build();
    e.alice.put_bucket_versioning().bucket("history").versioning_configuration(enabled).send().await.expect("enable");
    assert_eq!(status_of(&e.alice).await.expect("get").status(), Some(&BucketVersioningStatus::Enabled));

    let v1 = e
        .alice
        .put_object()
        .bucket("history")
        .key("doc")
        .body(ByteStream::from_static(b"one"))
        .send()
        .await
        .expect("v1");
    let v2 = e
        .alice
        .put_object()
        .bucket("history")
        .key("doc")
        .body(ByteStream::from_static(b"two"))
        .send()
        .await
        .expect("v2");
    let (v1, v2) = (v1.version_id().expect("id").to_owned(), v2.version_id().expect("id").to_owned());
    assert_ne!(v1, v2);
    let deleted = e.alice.delete_object().bucket("history").key("doc").send().await.expect("delete");
    assert_eq!(deleted.delete_marker(), Some(true));
    let marker = deleted.version_id().expect("marker id").to_owned();

    let err = e.alice.get_object().bucket("history").key("doc").send().await.expect_err("hidden");
    assert_eq!(code(&err), "NoSuchKey");
    let headers = err.raw_response().map(|r| r.headers().get("x-amz-delete-marker").map(str::to_owned));
    assert_eq!(headers.flatten().as_deref(), Some("true"));
    let old = e.alice.get_object().bucket("history").key("doc").version_id(&v1).send().await.expect("v1 by id");
    assert_eq!(body_of(old).await, b"one");
    let err = e.alice.head_object().bucket("history").key("doc").version_id(&marker).send().await.expect_err("405");
    assert_eq!(status(&err), 405);

    let listing = e.alice.list_object_versions().bucket("history").send().await.expect("versions");
    let ids: Vec<(&str, bool)> = listing
        .versions()
        .iter()
        .map(|v| (v.version_id().unwrap_or_default(), v.is_latest().unwrap_or_default()))
        .collect();
    assert_eq!(ids, [(v2.as_str(), false), (v1.as_str(), false)]);
    let markers: Vec<&str> = listing.delete_markers().iter().filter_map(|m| m.version_id()).collect();
    assert_eq!(markers, [marker.as_str()]);
    assert_eq!(listing.delete_markers()[0].is_latest(), Some(true));

    e.alice.delete_object().bucket("history").key("doc").version_id(&marker).send().await.expect("undelete");
    let current = e.alice.get_object().bucket("history").key("doc").send().await.expect("restored");
    assert_eq!(current.version_id(), Some(v2.as_str()));
    assert_eq!(body_of(current).await, b"two");
}

#[tokio::test]
async fn listings_paginate_group_and_encode_like_s3() {
    let e = env().await;
    e.alice.create_bucket().bucket("listing").send().await.expect("create");
    for key in ["a/1", "a/2", "b+c d", "c/x", "d", "e"] {
        e.alice.put_object().bucket("listing").key(key).body(ByteStream::from_static(b"x")).send().await.expect("put");
    }
    let grouped = e.alice.list_objects_v2().bucket("listing").delimiter("/").send().await.expect("list");
    let keys: Vec<&str> = grouped.contents().iter().filter_map(|o| o.key()).collect();
    let prefixes: Vec<&str> = grouped.common_prefixes().iter().filter_map(|p| p.prefix()).collect();
    assert_eq!((keys, prefixes), (vec!["b+c d", "d", "e"], vec!["a/", "c/"]));
    assert_eq!(grouped.key_count(), Some(5));

    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = e
            .alice
            .list_objects_v2()
            .bucket("listing")
            .max_keys(2)
            .set_continuation_token(token.clone())
            .send()
            .await
            .expect("page");
        seen.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_owned)));
        if page.is_truncated() != Some(true) {
            break;
        }
        token = page.next_continuation_token().map(str::to_owned);
    }
    assert_eq!(seen, ["a/1", "a/2", "b+c d", "c/x", "d", "e"]);

    let flat = e.alice.list_objects().bucket("listing").delimiter("").max_keys(3).send().await.expect("v1");
    assert_eq!(flat.contents().len(), 3, "an empty delimiter means none");
    assert_eq!(flat.is_truncated(), Some(true));
    assert_eq!(flat.next_marker(), Some("b+c d"));
    let rest = e.alice.list_objects().bucket("listing").marker("b+c d").send().await.expect("v1 page 2");
    assert_eq!(rest.contents().iter().filter_map(|o| o.key()).collect::<Vec<_>>(), ["c/x", "d", "e"]);

    let encoded = e
        .alice
        .list_objects_v2()
        .bucket("listing")
        .prefix("b")
        .encoding_type(aws_sdk_s3::types::EncodingType::Url)
        .send()
        .await
        .expect("encoded");
    assert_eq!(encoded.contents().first().and_then(|o| o.key()), Some("b%2Bc%20d"));
}

#[tokio::test]
async fn copies_reuse_content_and_follow_the_metadata_directive() {
    let e = env().await;
    e.alice.create_bucket().bucket("copies").send().await.expect("create");
    e.alice
        .put_object()
        .bucket("copies")
        .key("src")
        .metadata("a", "1")
        .content_type("text/plain")
        .body(ByteStream::from_static(b"copied"))
        .send()
        .await
        .expect("put");
    let out = e.alice.copy_object().bucket("copies").key("dst").copy_source("copies/src").send().await.expect("copy");
    assert!(out.copy_object_result().and_then(|r| r.e_tag()).is_some());
    let dst = e.alice.get_object().bucket("copies").key("dst").send().await.expect("get copy");
    assert_eq!(dst.metadata().and_then(|m| m.get("a")).map(String::as_str), Some("1"));
    assert_eq!(body_of(dst).await, b"copied");

    let err = e
        .alice
        .copy_object()
        .bucket("copies")
        .key("src")
        .copy_source("copies/src")
        .send()
        .await
        .expect_err("self copy");
    assert_eq!(code(&err), "InvalidRequest");
    e.alice
        .copy_object()
        .bucket("copies")
        .key("src")
        .copy_source("copies/src")
        .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
        .metadata("a", "2")
        .send()
        .await
        .expect("self copy with REPLACE (rclone's mtime update)");
    let head = e.alice.head_object().bucket("copies").key("src").send().await.expect("head");
    assert_eq!(head.metadata().and_then(|m| m.get("a")).map(String::as_str), Some("2"));
    assert_eq!(head.content_length(), Some(6), "content is preserved");
}

#[tokio::test]
async fn delete_objects_reports_each_key() {
    let e = env().await;
    e.alice.create_bucket().bucket("bulk").send().await.expect("create");
    for key in ["x", "y"] {
        e.alice.put_object().bucket("bulk").key(key).body(ByteStream::from_static(b"1")).send().await.expect("put");
    }
    let ids = ["x", "y", "never-existed"].map(|k| ObjectIdentifier::builder().key(k).build().expect("id"));
    let delete = Delete::builder().set_objects(Some(ids.to_vec())).build().expect("delete");
    let out = e.alice.delete_objects().bucket("bulk").delete(delete).send().await.expect("delete objects");
    assert_eq!(out.deleted().len(), 3, "missing keys count as deleted, as in S3");
    assert!(out.errors().is_empty());
    let left = e.alice.list_objects_v2().bucket("bulk").send().await.expect("list");
    assert!(left.contents().is_empty());
}

#[tokio::test]
async fn bad_credentials_are_refused_with_the_aws_error() {
    let e = env().await;
    let wrong_secret = client(&e.service, "AKALICE0000000000001", "not-the-secret");
    let err = wrong_secret.list_buckets().send().await.expect_err("bad signature");
    assert_eq!(code(&err), "SignatureDoesNotMatch");
    let unknown = client(&e.service, "AKUNKNOWN00000000000", "whatever");
    let err = unknown.list_buckets().send().await.expect_err("unknown key");
    assert_eq!(code(&err), "InvalidAccessKeyId");
}

#[tokio::test]
async fn virtual_hosted_style_requests_name_the_bucket_in_the_host() {
    let options = ApiOptions { domains: vec!["s3.example.com".into()], ..ApiOptions::default() };
    let e = env_with(options).await;
    let vhost =
        client_at(&e.service, "AKALICE0000000000001", "AKALICE0000000000001-secret", "http://s3.example.com", false);
    vhost.create_bucket().bucket("hosted").send().await.expect("create via bucket.s3.example.com");
    vhost
        .put_object()
        .bucket("hosted")
        .key("a/b.txt")
        .body(ByteStream::from_static(b"vhost"))
        .send()
        .await
        .expect("put");
    let listed = vhost.list_objects_v2().bucket("hosted").send().await.expect("list");
    assert_eq!(listed.contents().first().and_then(|o| o.key()), Some("a/b.txt"));
    let path =
        client_at(&e.service, "AKALICE0000000000001", "AKALICE0000000000001-secret", "http://s3.example.com", true);
    let got = path.get_object().bucket("hosted").key("a/b.txt").send().await.expect("path style still works");
    assert_eq!(body_of(got).await, b"vhost");
}

#[tokio::test]
async fn response_header_overrides_apply_to_get() {
    let e = env().await;
    e.alice.create_bucket().bucket("overrides").send().await.expect("create");
    e.alice
        .put_object()
        .bucket("overrides")
        .key("k")
        .content_type("text/plain")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .expect("put");
    let got = e
        .alice
        .get_object()
        .bucket("overrides")
        .key("k")
        .response_content_type("application/x-override")
        .response_cache_control("no-store")
        .response_content_disposition("attachment; filename=\"k.bin\"")
        .send()
        .await
        .expect("get");
    assert_eq!(got.content_type(), Some("application/x-override"));
    assert_eq!(got.cache_control(), Some("no-store"));
    assert_eq!(got.content_disposition(), Some("attachment; filename=\"k.bin\""));
}

#[tokio::test]
async fn date_conditions_and_stored_headers_follow_s3() {
    let e = env().await;
    e.alice.create_bucket().bucket("dates").send().await.expect("create");
    e.alice
        .put_object()
        .bucket("dates")
        .key("k")
        .content_disposition("inline")
        .content_language("fr")
        .expires(aws_sdk_s3::primitives::DateTime::from_secs(4_102_444_800))
        .body(ByteStream::from_static(b"dated"))
        .send()
        .await
        .expect("put");
    let head = e.alice.head_object().bucket("dates").key("k").send().await.expect("head");
    assert_eq!((head.content_disposition(), head.content_language()), (Some("inline"), Some("fr")));
    assert_eq!(head.expires_string(), Some("Fri, 01 Jan 2100 00:00:00 GMT"));
    let modified = head.last_modified().expect("last modified").secs();
    let at = aws_sdk_s3::primitives::DateTime::from_secs;
    let get = || e.alice.get_object().bucket("dates").key("k");
    assert_eq!(status(&get().if_modified_since(at(modified)).send().await.expect_err("not modified")), 304);
    get().if_modified_since(at(modified - 3600)).send().await.expect("modified since an hour earlier");
    assert_eq!(status(&get().if_unmodified_since(at(modified - 3600)).send().await.expect_err("modified")), 412);
    get().if_unmodified_since(at(modified + 3600)).send().await.expect("unmodified");
}

#[tokio::test]
async fn start_after_and_fetch_owner_shape_list_v2() {
    let e = env().await;
    e.alice.create_bucket().bucket("startafter").send().await.expect("create");
    for key in ["a", "b", "c"] {
        e.alice
            .put_object()
            .bucket("startafter")
            .key(key)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .expect("put");
    }
    let out = e.alice.list_objects_v2().bucket("startafter").start_after("a").send().await.expect("list");
    assert_eq!(out.contents().iter().filter_map(|o| o.key()).collect::<Vec<_>>(), ["b", "c"]);
    assert!(out.contents().iter().all(|o| o.owner().is_none()), "no owner unless fetch-owner");
    let owned = e.alice.list_objects_v2().bucket("startafter").fetch_owner(true).send().await.expect("list");
    assert!(owned.contents().iter().all(|o| o.owner().and_then(|w| w.id()).is_some()));
    let err = e
        .alice
        .list_objects_v2()
        .bucket("startafter")
        .continuation_token("!!not-a-token!!")
        .send()
        .await
        .expect_err("bad token");
    assert_eq!(code(&err), "InvalidArgument");
}

#[tokio::test]
async fn suspended_versioning_writes_the_null_version_and_keeps_older_ones() {
    let e = env().await;
    e.alice.create_bucket().bucket("suspend").send().await.expect("create");
    let set = |status| {
        e.alice
            .put_bucket_versioning()
            .bucket("suspend")
            .versioning_configuration(VersioningConfiguration::builder().status(status).build())
            .send()
    };
    set(BucketVersioningStatus::Enabled).await.expect("enable");
    let kept =
        e.alice.put_object().bucket("suspend").key("k").body(ByteStream::from_static(b"v1")).send().await.expect("v1");
    set(BucketVersioningStatus::Suspended).await.expect("suspend");
    for body in [&b"n1"[..], b"n2"] {
        let out = e
            .alice
            .put_object()
            .bucket("suspend")
            .key("k")
            .body(ByteStream::from_static(body))
            .send()
            .await
            .expect("put");
        assert_eq!(out.version_id(), Some("null"));
    }
    let listing = e.alice.list_object_versions().bucket("suspend").send().await.expect("versions");
    let ids: Vec<&str> = listing.versions().iter().filter_map(|v| v.version_id()).collect();
    assert_eq!(ids, ["null", kept.version_id().expect("id")], "the second null write replaced the first");
    let current = e.alice.get_object().bucket("suspend").key("k").send().await.expect("get");
    assert_eq!(body_of(current).await, b"n2");
}

#[tokio::test]
async fn malformed_versioning_xml_is_rejected_and_changes_nothing() {
    let e = env().await;
    e.alice.create_bucket().bucket("xml").send().await.expect("create");
    let config = VersioningConfiguration::builder().status(BucketVersioningStatus::from("Sideways")).build();
    let err = e
        .alice
        .put_bucket_versioning()
        .bucket("xml")
        .versioning_configuration(config)
        .send()
        .await
        .expect_err("bad status");
    assert_eq!(code(&err), "MalformedXML");
    let status = e.alice.get_bucket_versioning().bucket("xml").send().await.expect("get");
    assert_eq!(status.status(), None);
}

async fn multipart_put(c: &Client, bucket: &str, key: &str, data: &[u8], part_size: usize) -> String {
    let upload = c.create_multipart_upload().bucket(bucket).key(key).send().await.expect("create");
    let id = upload.upload_id().expect("upload id").to_owned();
    let mut completed = Vec::new();
    for (i, chunk) in data.chunks(part_size).enumerate() {
        let n = i as i32 + 1;
        let part = c
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from(chunk.to_vec()))
            .send()
            .await
            .expect("part");
        completed.push(
            aws_sdk_s3::types::CompletedPart::builder().part_number(n).e_tag(part.e_tag().expect("etag")).build(),
        );
    }
    let parts = aws_sdk_s3::types::CompletedMultipartUpload::builder().set_parts(Some(completed)).build();
    let done =
        c.complete_multipart_upload().bucket(bucket).key(key).upload_id(&id).multipart_upload(parts).send().await;
    done.expect("complete").e_tag().expect("etag").to_owned()
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[tokio::test]
async fn a_multipart_object_has_the_cid_of_the_same_bytes_put_at_once() {
    let e = env().await;
    e.alice.create_bucket().bucket("parts").send().await.expect("create");
    for (name, part_size, total) in
        [("aligned", 8 << 20, (16 << 20) + 12_345), ("unaligned", (5 << 20) + 1, (11 << 20) + 7)]
    {
        let data = pattern(total);
        e.alice
            .put_object()
            .bucket("parts")
            .key(format!("{name}-single"))
            .body(ByteStream::from(data.clone()))
            .send()
            .await
            .expect("put");
        let etag = multipart_put(&e.alice, "parts", &format!("{name}-multi"), &data, part_size).await;
        assert!(etag.ends_with("-3\""), "{name}: multipart ETag is md5-of-md5s-N, got {etag}");
        let cid_of = |key: String| {
            let c = e.alice.clone();
            async move {
                let head = c.head_object().bucket("parts").key(key).send().await.expect("head");
                head.metadata().and_then(|m| m.get("cid")).cloned().expect("cid")
            }
        };
        assert_eq!(cid_of(format!("{name}-multi")).await, cid_of(format!("{name}-single")).await, "{name} parts");
        let back = e.alice.get_object().bucket("parts").key(format!("{name}-multi")).send().await.expect("get");
        assert!(body_of(back).await == data, "{name}: bytes read back");
    }
}

#[tokio::test]
async fn multipart_rules_and_listings_follow_s3() {
    let e = env().await;
    e.alice.create_bucket().bucket("rules").send().await.expect("create");
    let upload = e.alice.create_multipart_upload().bucket("rules").key("k").send().await.expect("create");
    let id = upload.upload_id().expect("id").to_owned();
    let put_part = |n: i32, data: Vec<u8>| {
        e.alice.upload_part().bucket("rules").key("k").upload_id(&id).part_number(n).body(ByteStream::from(data)).send()
    };
    let small1 = put_part(1, vec![1; 1024]).await.expect("part 1");
    let p2 = put_part(2, vec![2; 2048]).await.expect("part 2");
    let replaced = put_part(1, vec![3; 4096]).await.expect("part 1 again");
    assert_ne!(small1.e_tag(), replaced.e_tag());
    let err = put_part(10_001, vec![0]).await.expect_err("part number too high");
    assert_eq!(code(&err), "InvalidArgument");

    let listed = e.alice.list_parts().bucket("rules").key("k").upload_id(&id).send().await.expect("list parts");
    let sizes: Vec<(i32, i64)> =
        listed.parts().iter().map(|p| (p.part_number().unwrap_or(0), p.size().unwrap_or(0))).collect();
    assert_eq!(sizes, [(1, 4096), (2, 2048)]);
    let uploads = e.alice.list_multipart_uploads().bucket("rules").send().await.expect("list uploads");
    assert_eq!(uploads.uploads().iter().filter_map(|u| u.upload_id()).collect::<Vec<_>>(), [id.as_str()]);

    let complete = |parts: Vec<(i32, &str)>| {
        let parts = parts
            .into_iter()
            .map(|(n, etag)| aws_sdk_s3::types::CompletedPart::builder().part_number(n).e_tag(etag).build())
            .collect();
        e.alice
            .complete_multipart_upload()
            .bucket("rules")
            .key("k")
            .upload_id(&id)
            .multipart_upload(aws_sdk_s3::types::CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
    };
    let (e1, e2) = (replaced.e_tag().expect("etag"), p2.e_tag().expect("etag"));
    assert_eq!(code(&complete(vec![(1, e1), (2, e2)]).await.expect_err("too small")), "EntityTooSmall");
    assert_eq!(code(&complete(vec![(2, e2), (1, e1)]).await.expect_err("order")), "InvalidPartOrder");
    assert_eq!(code(&complete(vec![(1, small1.e_tag().expect("etag"))]).await.expect_err("stale etag")), "InvalidPart");
    let single = complete(vec![(1, e1)]).await.expect("one small part is fine: the last may be small");
    assert!(single.e_tag().is_some_and(|t| t.ends_with("-1\"")));
    assert_eq!(body_of(e.alice.get_object().bucket("rules").key("k").send().await.expect("get")).await, vec![3; 4096]);
    let err = e.alice.list_parts().bucket("rules").key("k").upload_id(&id).send().await.expect_err("gone");
    assert_eq!(code(&err), "NoSuchUpload");

    let second = e.alice.create_multipart_upload().bucket("rules").key("other").send().await.expect("create");
    let second_id = second.upload_id().expect("id");
    e.alice.abort_multipart_upload().bucket("rules").key("other").upload_id(second_id).send().await.expect("abort");
    let err = e
        .alice
        .abort_multipart_upload()
        .bucket("rules")
        .key("other")
        .upload_id(second_id)
        .send()
        .await
        .expect_err("again");
    assert_eq!(code(&err), "NoSuchUpload");
    let err = e.bob.list_multipart_uploads().bucket("rules").send().await.expect_err("tenant");
    assert_eq!(code(&err), "AccessDenied");
}

#[tokio::test]
async fn upload_part_copy_takes_a_byte_range_of_an_object() {
    let e = env().await;
    e.alice.create_bucket().bucket("pcopy").send().await.expect("create");
    let data = pattern(6 << 20);
    e.alice.put_object().bucket("pcopy").key("src").body(ByteStream::from(data.clone())).send().await.expect("put");
    let upload = e.alice.create_multipart_upload().bucket("pcopy").key("dst").send().await.expect("create");
    let id = upload.upload_id().expect("id");
    let first = e
        .alice
        .upload_part_copy()
        .bucket("pcopy")
        .key("dst")
        .upload_id(id)
        .part_number(1)
        .copy_source("pcopy/src")
        .copy_source_range(format!("bytes=0-{}", (5 << 20) - 1))
        .send()
        .await
        .expect("copy part 1");
    let second = e
        .alice
        .upload_part_copy()
        .bucket("pcopy")
        .key("dst")
        .upload_id(id)
        .part_number(2)
        .copy_source("pcopy/src")
        .copy_source_range(format!("bytes={}-{}", 5 << 20, (6 << 20) - 1))
        .send()
        .await
        .expect("copy part 2");
    let err = e
        .alice
        .upload_part_copy()
        .bucket("pcopy")
        .key("dst")
        .upload_id(id)
        .part_number(3)
        .copy_source("pcopy/src")
        .copy_source_range("bytes=0-99999999")
        .send()
        .await
        .expect_err("range beyond the source");
    assert_eq!(code(&err), "InvalidRange");
    let parts = [first, second]
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let etag = p.copy_part_result().and_then(|r| r.e_tag()).expect("etag");
            aws_sdk_s3::types::CompletedPart::builder().part_number(i as i32 + 1).e_tag(etag).build()
        })
        .collect();
    e.alice
        .complete_multipart_upload()
        .bucket("pcopy")
        .key("dst")
        .upload_id(id)
        .multipart_upload(aws_sdk_s3::types::CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
        .send()
        .await
        .expect("complete");
    assert!(body_of(e.alice.get_object().bucket("pcopy").key("dst").send().await.expect("get")).await == data);
}
