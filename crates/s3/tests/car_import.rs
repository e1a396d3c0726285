//! CAR import on PutObject and multipart uploads (`x-amz-meta-import: car`, as Filebase offers): the object is the
//! file the CAR's root names, stored under that root CID; a bad CAR is a 400 and stores nothing.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use common::{body_of, code, env, status};
use s3ipfs_cid::{Cid, Importer, MemoryBlocks, Profile, car};

/// The CAR (depth-first) of `data` imported with `profile`, and its root.
fn car_of(profile: Profile, data: &[u8]) -> (Cid, Vec<u8>) {
    let mut importer = Importer::new(profile);
    let mut blocks = MemoryBlocks::new();
    importer
        .write_all(data, |b| {
            blocks.insert(b.cid, b.data);
            Ok::<_, ()>(())
        })
        .expect("import");
    let (last, summary) = importer.finish();
    last.into_iter().for_each(|b| blocks.insert(b.cid, b.data));
    (summary.root, car::write_dag(&summary.root, &mut blocks, Vec::new()).expect("car"))
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 13 % 251) as u8).collect()
}

#[tokio::test]
async fn a_put_with_import_car_stores_the_file_under_the_cars_root() {
    let env = env().await;
    env.alice.create_bucket().bucket("cars").send().await.expect("bucket");
    // The gateway's own profile is kubo-v1; the CAR was built with kubo-v0: the object keeps the CAR's CID.
    for profile in [Profile::KUBO_V0, Profile::KUBO_V1] {
        let content = data(1_300_000);
        let (root, car) = car_of(profile, &content);
        let put = env.alice.put_object().bucket("cars").key("file").metadata("import", "car").body(car.into());
        put.send().await.expect("import");
        let head = env.alice.head_object().bucket("cars").key("file").send().await.expect("head");
        assert_eq!(head.metadata().and_then(|m| m.get("cid")), Some(&root.to_string()), "{profile:?}");
        assert_eq!(head.content_length(), Some(content.len() as i64));
        let got = env.alice.get_object().bucket("cars").key("file").range("bytes=262140-262150").send().await;
        assert_eq!(body_of(got.expect("range")).await, content[262_140..=262_150]);
        let whole = body_of(env.alice.get_object().bucket("cars").key("file").send().await.expect("get")).await;
        assert!(whole == content);
    }
}

#[tokio::test]
async fn a_bad_car_is_refused_with_400_and_stores_nothing() {
    let env = env().await;
    env.alice.create_bucket().bucket("cars").send().await.expect("bucket");
    let (_, car) = car_of(Profile::KUBO_V1, &data(600_000));
    let mut corrupt = car.clone();
    let at = corrupt.len() - 100;
    corrupt[at] ^= 0xff;
    for bad in [corrupt, car[..car.len() / 2].to_vec(), b"not a car at all".to_vec()] {
        let put = env.alice.put_object().bucket("cars").key("bad").metadata("import", "car").body(bad.into());
        let err = put.send().await.expect_err("refused");
        assert_eq!(status(&err), 400, "{err:?}");
        assert_eq!(code(&err), "InvalidArgument");
        let head = env.alice.head_object().bucket("cars").key("bad").send().await.expect_err("nothing stored");
        assert_eq!(status(&head), 404);
    }
}

#[tokio::test]
async fn a_multipart_upload_marked_import_car_imports_the_joined_parts() {
    let env = env().await;
    env.alice.create_bucket().bucket("cars").send().await.expect("bucket");
    let content = data(7_000_000);
    let (root, car) = car_of(Profile::KUBO_V1, &content);
    let create = env.alice.create_multipart_upload().bucket("cars").key("big").metadata("import", "car");
    let upload_id = create.send().await.expect("create").upload_id.expect("id");
    let mut parts = Vec::new();
    for (i, piece) in car.chunks(5 * 1024 * 1024).enumerate() {
        let number = i as i32 + 1;
        let part = env.alice.upload_part().bucket("cars").key("big").upload_id(&upload_id).part_number(number);
        let out = part.body(ByteStream::from(piece.to_vec())).send().await.expect("part");
        parts.push(CompletedPart::builder().part_number(number).set_e_tag(out.e_tag).build());
    }
    let done = CompletedMultipartUpload::builder().set_parts(Some(parts)).build();
    let complete = env.alice.complete_multipart_upload().bucket("cars").key("big").upload_id(&upload_id);
    complete.multipart_upload(done).send().await.expect("complete");
    let head = env.alice.head_object().bucket("cars").key("big").send().await.expect("head");
    assert_eq!(head.metadata().and_then(|m| m.get("cid")), Some(&root.to_string()));
    let whole = body_of(env.alice.get_object().bucket("cars").key("big").send().await.expect("get")).await;
    assert!(whole == content);
}
