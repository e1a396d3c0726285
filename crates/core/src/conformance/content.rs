//! The `ContentStore` conformance suite.

use bytes::Bytes;
use futures::TryStreamExt as _;
use s3ipfs_cid::{BlockKind, Cid, Importer, Profile};

use crate::content::{ContentError, ContentStore};

/// Imports `data` (profile `kubo-v1`) and stores it through a writer fed in uneven pieces; returns the root CID.
pub async fn store_bytes(store: &dyn ContentStore, data: &[u8]) -> Cid {
    store_bytes_as(store, Profile::KUBO_V1, data).await
}

/// Imports `data` with `profile` and stores it through a writer fed in uneven pieces; returns the root CID.
pub async fn store_bytes_as(store: &dyn ContentStore, profile: Profile, data: &[u8]) -> Cid {
    let mut importer = Importer::new(profile);
    let mut writer = store.writer().await.expect("writer");
    let mut nodes = Vec::new();
    for piece in data.chunks(100_003) {
        importer
            .write_all(piece, |block| {
                if block.kind == BlockKind::Node {
                    nodes.push(block);
                }
                Ok::<_, ()>(())
            })
            .expect("infallible sink");
        writer.write(Bytes::copy_from_slice(piece)).await.expect("write");
    }
    let (last, summary) = importer.finish();
    nodes.extend(last.into_iter().filter(|b| b.kind == BlockKind::Node));
    writer.finish(summary.root, nodes).await.expect("finish");
    summary.root
}

/// Reads `range` of `cid` into memory.
pub async fn read_all(
    store: &dyn ContentStore,
    cid: &Cid,
    range: std::ops::Range<u64>,
) -> Result<Vec<u8>, ContentError> {
    let chunks: Vec<Bytes> = store.read(cid, range).await?.try_collect().await?;
    Ok(chunks.concat())
}

/// Reads `range` of `cid`, whose size is `size`, into memory (an object's GET).
pub async fn read_all_sized(
    store: &dyn ContentStore,
    cid: &Cid,
    size: u64,
    range: std::ops::Range<u64>,
) -> Result<Vec<u8>, ContentError> {
    let chunks: Vec<Bytes> = store.read_sized(cid, size, range).await?.try_collect().await?;
    Ok(chunks.concat())
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

/// Stored bytes read back whole and by range; sizes are reported; out-of-range reads are errors.
pub async fn content_reads_back_whole_and_by_range(store: &dyn ContentStore, profile: Profile) {
    let data = pattern(600_000);
    let cid = store_bytes_as(store, profile, &data).await;
    assert_eq!(store.size(&cid).await.expect("size"), Some(600_000));
    assert!(read_all(store, &cid, 0..600_000).await.expect("read") == data);
    assert_eq!(read_all(store, &cid, 262_140..262_150).await.expect("range"), data[262_140..262_150]);
    assert_eq!(read_all(store, &cid, 5..5).await.expect("empty range"), Vec::<u8>::new());
    assert!(matches!(read_all(store, &cid, 0..600_001).await, Err(ContentError::Range { .. })));

    let empty = store_bytes_as(store, profile, b"").await;
    assert_eq!(store.size(&empty).await.expect("size"), Some(0));
    assert_eq!(read_all(store, &empty, 0..0).await.expect("read"), Vec::<u8>::new());
}

/// Reads of known size return what plain reads do, the first time and again (a cache may serve the second), and
/// nothing once the content is deleted.
pub async fn sized_reads_match_plain_reads(store: &dyn ContentStore, profile: Profile) {
    for len in [0usize, 4096, 600_000, 2_500_000] {
        let data: Vec<u8> = pattern(len).into_iter().map(|b| b ^ 0x5a).collect();
        let cid = store_bytes_as(store, profile, &data).await;
        let size = len as u64;
        for _ in 0..2 {
            assert!(read_all_sized(store, &cid, size, 0..size).await.expect("whole") == data, "{len} bytes whole");
            if len > 10 {
                assert_eq!(read_all_sized(store, &cid, size, 3..10).await.expect("range"), data[3..10]);
                let tail = size - 5..size;
                assert_eq!(read_all_sized(store, &cid, size, tail).await.expect("tail"), data[len - 5..]);
                assert_eq!(read_all(store, &cid, 1..4).await.expect("plain range"), data[1..4]);
            }
            assert!(matches!(read_all_sized(store, &cid, size, 0..size + 1).await, Err(ContentError::Range { .. })));
        }
        store.delete(&cid).await.expect("delete");
        assert!(
            matches!(read_all_sized(store, &cid, size, 0..size).await, Err(ContentError::NotFound(_))) || len == 0,
            "deleted content of {len} bytes is not served"
        );
    }
}

/// Identical content stores under one CID; deleting it removes it; deleting again is fine.
pub async fn identical_content_is_stored_once_and_deletable(store: &dyn ContentStore, profile: Profile) {
    let data = pattern(300_000);
    let first = store_bytes_as(store, profile, &data).await;
    let second = store_bytes_as(store, profile, &data).await;
    assert_eq!(first, second);
    assert!(read_all(store, &first, 0..300_000).await.expect("read") == data);
    store.delete(&first).await.expect("delete");
    assert_eq!(store.size(&first).await.expect("size"), None);
    assert!(matches!(read_all(store, &first, 0..1).await, Err(ContentError::NotFound(_))));
    store.delete(&first).await.expect("deleting absent content is fine");
}

/// An aborted or dropped writer leaves nothing readable.
pub async fn unfinished_writes_leave_nothing(store: &dyn ContentStore, profile: Profile) {
    let data = pattern(10_000);
    let cid = s3ipfs_cid::cid_of(profile, &data);
    let mut writer = store.writer().await.expect("writer");
    writer.write(Bytes::from(data.clone())).await.expect("write");
    writer.abort().await;
    assert_eq!(store.size(&cid).await.expect("size"), None);
    let mut writer = store.writer().await.expect("writer");
    writer.write(Bytes::from(data)).await.expect("write");
    drop(writer);
    assert_eq!(store.size(&cid).await.expect("size"), None);
}

/// Runs every content test body against one store, with CIDs of the `kubo-v1` profile.
pub async fn run_all(store: &dyn ContentStore) {
    run_all_as(store, Profile::KUBO_V1).await;
}

/// Runs every content test body against one store, with CIDs of `profile` (a backend that computes CIDs itself
/// checks them against the gateway's, so the gateway's profile matters).
pub async fn run_all_as(store: &dyn ContentStore, profile: Profile) {
    content_reads_back_whole_and_by_range(store, profile).await;
    identical_content_is_stored_once_and_deletable(store, profile).await;
    sized_reads_match_plain_reads(store, profile).await;
    unfinished_writes_leave_nothing(store, profile).await;
}
