//! Multipart objects through the real aws-sdk-s3 client in-process: checksums (COMPOSITE, FULL_OBJECT and S3's
//! default CRC64NVME), reads by `partNumber`, and ListMultipartUploads grouping.

mod common;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, ChecksumType, CompletedMultipartUpload, CompletedPart};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use common::{body_of, code, env, status};
use s3ipfs_cid::{Algorithm, ChecksumHasher, ChecksumSet};

const PART: usize = 5 << 20;

fn data() -> Vec<u8> {
    (0..PART + 1000).map(|i| (i * 31 % 256) as u8).collect()
}

/// The raw digest of `algorithm` over `bytes`, computed here independently of the server.
fn digest(algorithm: Algorithm, bytes: &[u8]) -> Vec<u8> {
    let mut hasher = ChecksumHasher::new(ChecksumSet::NONE.with(algorithm));
    hasher.update(bytes);
    hasher.finish().bytes(algorithm).expect("computed")
}

/// Uploads `data` in two parts (5 MiB and the rest), the SDK sending `algorithm` checksums when given.
async fn upload_parts(
    c: &Client,
    key: &str,
    id: &str,
    data: &[u8],
    algorithm: Option<ChecksumAlgorithm>,
) -> Vec<CompletedPart> {
    let mut parts = Vec::new();
    for (i, chunk) in data.chunks(PART).enumerate() {
        let n = i as i32 + 1;
        let out = c
            .upload_part()
            .bucket("sums")
            .key(key)
            .upload_id(id)
            .part_number(n)
            .set_checksum_algorithm(algorithm.clone())
            .body(ByteStream::from(chunk.to_vec()))
            .send()
            .await
            .expect("part");
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(out.e_tag().expect("etag"))
                .set_checksum_crc32(out.checksum_crc32().map(str::to_owned))
                .set_checksum_crc32_c(out.checksum_crc32_c().map(str::to_owned))
                .build(),
        );
    }
    parts
}

fn without_checksums(parts: &[CompletedPart]) -> Vec<CompletedPart> {
    parts
        .iter()
        .map(|p| {
            CompletedPart::builder().part_number(p.part_number().unwrap_or(0)).e_tag(p.e_tag().unwrap_or("")).build()
        })
        .collect()
}

#[tokio::test]
async fn composite_crc32_is_the_crc_of_the_part_crcs_with_the_part_count() {
    let e = env().await;
    e.alice.create_bucket().bucket("sums").send().await.expect("bucket");
    let data = data();
    let create = e
        .alice
        .create_multipart_upload()
        .bucket("sums")
        .key("composite")
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .send()
        .await
        .expect("create");
    assert_eq!(create.checksum_algorithm(), Some(&ChecksumAlgorithm::Crc32));
    assert_eq!(create.checksum_type(), Some(&ChecksumType::Composite), "S3's default type for CRC32");
    let id = create.upload_id().expect("id");
    let parts = upload_parts(&e.alice, "composite", id, &data, Some(ChecksumAlgorithm::Crc32)).await;

    let wrong_algorithm = e
        .alice
        .upload_part()
        .bucket("sums")
        .key("composite")
        .upload_id(id)
        .part_number(3)
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .expect_err("another algorithm");
    assert_eq!(code(&wrong_algorithm), "InvalidRequest");
    let listed = e.alice.list_parts().bucket("sums").key("composite").upload_id(id).send().await.expect("list");
    assert_eq!((listed.parts().len(), listed.checksum_type()), (2, Some(&ChecksumType::Composite)));

    let complete = |parts: Vec<CompletedPart>, claim: Option<String>| {
        e.alice
            .complete_multipart_upload()
            .bucket("sums")
            .key("composite")
            .upload_id(id)
            .set_checksum_crc32(claim)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
    };
    let missing = complete(without_checksums(&parts), None).await.expect_err("part checksums required");
    assert_eq!(code(&missing), "InvalidRequest");
    let bad = complete(parts.clone(), Some("AAAAAA==".into())).await.expect_err("wrong object checksum");
    assert_eq!(code(&bad), "BadDigest");

    let part_crcs: Vec<u8> = data.chunks(PART).flat_map(|c| digest(Algorithm::Crc32, c)).collect();
    let expected = format!("{}-2", BASE64.encode(digest(Algorithm::Crc32, &part_crcs)));
    let done = complete(parts, Some(expected.clone())).await.expect("complete");
    assert_eq!(done.checksum_crc32(), Some(expected.as_str()));
    assert_eq!(done.checksum_type(), Some(&ChecksumType::Composite));

    let head = e
        .alice
        .head_object()
        .bucket("sums")
        .key("composite")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .expect("head");
    assert_eq!(
        (head.checksum_crc32(), head.checksum_type()),
        (Some(expected.as_str()), Some(&ChecksumType::Composite))
    );
    let plain = e.alice.head_object().bucket("sums").key("composite").send().await.expect("head");
    assert_eq!(plain.checksum_crc32(), None, "checksums only in checksum mode");
    let listing = e.alice.list_objects_v2().bucket("sums").send().await.expect("list");
    let object = listing.contents().first().expect("one object");
    assert_eq!(object.checksum_algorithm(), [ChecksumAlgorithm::Crc32]);
    assert_eq!(object.checksum_type(), Some(&ChecksumType::Composite));
    let versions = e.alice.list_object_versions().bucket("sums").send().await.expect("versions");
    let version = versions.versions().first().expect("one version");
    assert_eq!(version.checksum_algorithm(), [ChecksumAlgorithm::Crc32]);
    assert_eq!(version.checksum_type(), Some(&ChecksumType::Composite));
}

#[tokio::test]
async fn full_object_and_default_checksums_are_checksums_of_the_whole_content() {
    let e = env().await;
    e.alice.create_bucket().bucket("sums").send().await.expect("bucket");
    let data = data();

    let create = e
        .alice
        .create_multipart_upload()
        .bucket("sums")
        .key("full")
        .checksum_algorithm(ChecksumAlgorithm::Crc32C)
        .checksum_type(ChecksumType::FullObject)
        .send()
        .await
        .expect("create");
    let id = create.upload_id().expect("id");
    let parts = upload_parts(&e.alice, "full", id, &data, Some(ChecksumAlgorithm::Crc32C)).await;
    let whole = BASE64.encode(digest(Algorithm::Crc32c, &data));
    let done = e
        .alice
        .complete_multipart_upload()
        .bucket("sums")
        .key("full")
        .upload_id(id)
        .checksum_type(ChecksumType::FullObject)
        .checksum_crc32_c(&whole)
        .mpu_object_size(data.len() as i64)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(without_checksums(&parts))).build())
        .send()
        .await
        .expect("full-object uploads need no part checksums in Complete");
    assert_eq!(
        (done.checksum_crc32_c(), done.checksum_type()),
        (Some(whole.as_str()), Some(&ChecksumType::FullObject))
    );

    // No algorithm named: S3 gives the object a full-object CRC64NVME.
    let create = e.alice.create_multipart_upload().bucket("sums").key("plain").send().await.expect("create");
    assert_eq!(create.checksum_algorithm(), None);
    let id = create.upload_id().expect("id");
    let parts = upload_parts(&e.alice, "plain", id, &data, None).await;
    let done = e
        .alice
        .complete_multipart_upload()
        .bucket("sums")
        .key("plain")
        .upload_id(id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(without_checksums(&parts))).build())
        .send()
        .await
        .expect("complete");
    let crc64 = BASE64.encode(digest(Algorithm::Crc64Nvme, &data));
    assert_eq!(
        (done.checksum_crc64_nvme(), done.checksum_type()),
        (Some(crc64.as_str()), Some(&ChecksumType::FullObject))
    );
    // The SDK validates a full-object checksum it is sent against the body it reads.
    let got = e
        .alice
        .get_object()
        .bucket("sums")
        .key("plain")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .expect("get");
    assert_eq!(got.checksum_crc64_nvme(), Some(crc64.as_str()));
    assert!(body_of(got).await == data);

    let single = e.alice.put_object().bucket("sums").key("single").body(ByteStream::from_static(b"abc")).send();
    let single = single.await.expect("put");
    assert_eq!(single.checksum_type(), Some(&ChecksumType::FullObject));
}

#[tokio::test]
async fn checksum_requests_that_s3_refuses_are_refused() {
    let e = env().await;
    e.alice.create_bucket().bucket("sums").send().await.expect("bucket");
    let create = || e.alice.create_multipart_upload().bucket("sums").key("k");
    let err = create().checksum_type(ChecksumType::FullObject).send().await.expect_err("type without algorithm");
    assert_eq!(code(&err), "InvalidRequest");
    let err = create()
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .checksum_type(ChecksumType::FullObject)
        .send()
        .await
        .expect_err("SHA-256 has no full-object form");
    assert_eq!(code(&err), "InvalidRequest");
    let err = create()
        .checksum_algorithm(ChecksumAlgorithm::Crc64Nvme)
        .checksum_type(ChecksumType::Composite)
        .send()
        .await
        .expect_err("CRC64NVME is full-object only");
    assert_eq!(code(&err), "InvalidRequest");
    let uploads = e.alice.list_multipart_uploads().bucket("sums").send().await.expect("list");
    assert!(uploads.uploads().is_empty(), "refused requests create nothing");

    let upload = create().checksum_algorithm(ChecksumAlgorithm::Sha1).send().await.expect("create");
    let id = upload.upload_id().expect("id");
    let parts = upload_parts(&e.alice, "k", id, b"small", Some(ChecksumAlgorithm::Sha1)).await;
    let err = e
        .alice
        .complete_multipart_upload()
        .bucket("sums")
        .key("k")
        .upload_id(id)
        .checksum_type(ChecksumType::FullObject)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
        .send()
        .await
        .expect_err("another checksum type than the upload's");
    assert_eq!(code(&err), "InvalidRequest");
    let listed = e.alice.list_multipart_uploads().bucket("sums").send().await.expect("list");
    let shown = listed.uploads().first().expect("the upload is still there");
    assert_eq!(
        (shown.checksum_algorithm(), shown.checksum_type()),
        (Some(&ChecksumAlgorithm::Sha1), Some(&ChecksumType::Composite))
    );
}

#[tokio::test]
async fn list_multipart_uploads_groups_keys_by_delimiter_and_pages() {
    let e = env().await;
    e.alice.create_bucket().bucket("sums").send().await.expect("bucket");
    for key in ["a/1", "a/2", "b", "c/x/y", "c/z"] {
        e.alice.create_multipart_upload().bucket("sums").key(key).send().await.expect("create");
    }
    let list = || e.alice.list_multipart_uploads().bucket("sums").delimiter("/");
    let all = list().send().await.expect("list");
    let keys = |out: &aws_sdk_s3::operation::list_multipart_uploads::ListMultipartUploadsOutput| {
        let uploads: Vec<String> = out.uploads().iter().filter_map(|u| u.key().map(str::to_owned)).collect();
        let prefixes: Vec<String> =
            out.common_prefixes().iter().filter_map(|p| p.prefix().map(str::to_owned)).collect();
        (uploads, prefixes)
    };
    assert_eq!(keys(&all), (vec!["b".to_owned()], vec!["a/".to_owned(), "c/".to_owned()]));
    let nested = list().prefix("c/").send().await.expect("list");
    assert_eq!(keys(&nested), (vec!["c/z".to_owned()], vec!["c/x/".to_owned()]));

    let mut seen = (Vec::new(), Vec::new());
    let (mut key_marker, mut id_marker) = (None, None);
    loop {
        let page = list()
            .max_uploads(1)
            .set_key_marker(key_marker.clone())
            .set_upload_id_marker(id_marker.clone())
            .send()
            .await
            .expect("page");
        let (uploads, prefixes) = keys(&page);
        assert_eq!(uploads.len() + prefixes.len(), 1, "one entry per page");
        seen.0.extend(uploads);
        seen.1.extend(prefixes);
        if !page.is_truncated().unwrap_or(false) {
            break;
        }
        key_marker = page.next_key_marker().map(str::to_owned);
        id_marker = page.next_upload_id_marker().map(str::to_owned);
    }
    assert_eq!(seen, (vec!["b".to_owned()], vec!["a/".to_owned(), "c/".to_owned()]));
}

#[tokio::test]
async fn part_numbers_address_the_parts_of_a_multipart_object() {
    let e = env().await;
    e.alice.create_bucket().bucket("sums").send().await.expect("bucket");
    let data = data();
    let create = e.alice.create_multipart_upload().bucket("sums").key("two").send().await.expect("create");
    let id = create.upload_id().expect("id");
    let parts = upload_parts(&e.alice, "two", id, &data, None).await;
    e.alice
        .complete_multipart_upload()
        .bucket("sums")
        .key("two")
        .upload_id(id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
        .send()
        .await
        .expect("complete");

    let get = |key: &str, n: i32| e.alice.get_object().bucket("sums").key(key).part_number(n).send();
    let second = get("two", 2).await.expect("part 2");
    let total = data.len();
    assert_eq!(second.content_range(), Some(format!("bytes {PART}-{}/{total}", total - 1).as_str()));
    assert_eq!(second.parts_count(), Some(2));
    assert!(body_of(second).await == data[PART..]);
    let head = e.alice.head_object().bucket("sums").key("two").part_number(1).send().await.expect("head part 1");
    assert_eq!((head.content_length(), head.parts_count()), (Some(PART as i64), Some(2)));
    let err = get("two", 3).await.expect_err("past the last part");
    assert_eq!((code(&err).as_str(), status(&err)), ("InvalidPartNumber", 416));
    let err = e
        .alice
        .get_object()
        .bucket("sums")
        .key("two")
        .part_number(1)
        .range("bytes=0-1")
        .send()
        .await
        .expect_err("range and part number");
    assert_eq!(code(&err), "InvalidRequest");

    e.alice.put_object().bucket("sums").key("one").body(ByteStream::from_static(b"whole")).send().await.expect("put");
    let only = get("one", 1).await.expect("an object written at once is part 1");
    assert_eq!((only.content_range(), only.parts_count()), (Some("bytes 0-4/5"), None));
    assert_eq!(body_of(only).await, b"whole");
    assert_eq!(status(&get("one", 2).await.expect_err("no part 2")), 416);
}
